package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/service"
)

// Store is the order service's read model in PostgreSQL: orders with their lines and
// timelines, the names and prices of products, the customers' carts (cart.go), and the
// checkpoint. Its Apply only records what the events say; the
// saga (saga.go) applies events through the same helpers and decides as it goes. A Store
// is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ eventclient.ReadModel = (*Store)(nil)

// schema is the read model's tables. Raise its Version with every change of them (or of
// what Apply writes): the read model is then rebuilt from the events at start.
var schema = postgres.Schema{Name: "order", Version: 2,
	Tables: []string{"orders", "order_lines", "timeline", "prices", "carts", "cart_versions", "checkpoint"}, Create: `
CREATE TABLE orders (
	id          text PRIMARY KEY,
	customer    text NOT NULL,
	total_cents bigint NOT NULL,
	status      text NOT NULL,
	reason      text NOT NULL DEFAULT '',
	placed_at   timestamptz NOT NULL,
	version     bigint NOT NULL
);
CREATE INDEX orders_newest ON orders (placed_at DESC, id DESC);
CREATE INDEX orders_of_customer ON orders (customer, placed_at DESC, id DESC);
CREATE INDEX orders_pending ON orders (placed_at) WHERE status = 'pending';
CREATE TABLE order_lines (
	order_id         text NOT NULL,
	line             integer NOT NULL,
	product_id       text NOT NULL,
	name             text NOT NULL,
	quantity         bigint NOT NULL,
	unit_price_cents bigint NOT NULL,
	PRIMARY KEY (order_id, line)
);
CREATE TABLE timeline (
	order_id   text NOT NULL,
	step       text NOT NULL,
	product_id text NOT NULL DEFAULT '',
	at         timestamptz NOT NULL,
	position   bigint NOT NULL,
	reason     text NOT NULL DEFAULT '',
	PRIMARY KEY (order_id, step, product_id)
);
CREATE TABLE prices (
	product_id  text PRIMARY KEY,
	name        text NOT NULL,
	price_cents bigint NOT NULL,
	deleted     boolean NOT NULL,
	version     bigint NOT NULL
);
CREATE TABLE carts (
	customer   text NOT NULL,
	product_id text NOT NULL,
	quantity   bigint NOT NULL,
	added      bigint NOT NULL,
	PRIMARY KEY (customer, product_id)
);
CREATE TABLE cart_versions (
	customer text PRIMARY KEY,
	version  bigint NOT NULL
);
CREATE TABLE checkpoint (
	one      integer PRIMARY KEY CHECK (one = 1),
	store_id text NOT NULL,
	position bigint NOT NULL
);
INSERT INTO checkpoint (one, store_id, position) VALUES (1, '', 0);
`}

// OpenStore opens the read model in database on the PostgreSQL server of serverURL,
// creating the database when missing, and the tables when missing or of another schema
// version (postgres.Schema.Ensure: the read model is then empty and is rebuilt as the
// service catches up). Close releases it.
func OpenStore(ctx context.Context, serverURL, database string) (*Store, error) {
	pool, err := postgres.Open(ctx, serverURL, database)
	if err != nil {
		return nil, err
	}
	if _, err := schema.Ensure(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open the order read model in %s: %w", database, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the connections.
func (s *Store) Close() { s.pool.Close() }

// Checkpoint returns the store id and the position of the last event applied.
func (s *Store) Checkpoint(ctx context.Context) (storeID string, position int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT store_id, position FROM checkpoint`).Scan(&storeID, &position)
	if err != nil {
		return "", 0, fmt.Errorf("read the checkpoint: %w", err)
	}
	return storeID, position, nil
}

// Reset empties the read model, which then follows storeID from position 0.
func (s *Store) Reset(ctx context.Context, storeID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `TRUNCATE orders, order_lines, timeline, prices, carts, cart_versions`); err != nil {
			return fmt.Errorf("empty the read model: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE checkpoint SET store_id = $1, position = 0`, storeID); err != nil {
			return fmt.Errorf("reset the checkpoint: %w", err)
		}
		return nil
	})
}

// Apply records e (idempotently: order events by stream version, participants' steps
// once per order and step, prices by product version) and the checkpoint in one
// transaction. It decides nothing: Rebuild uses it, the running service uses Saga.Apply.
func (s *Store) Apply(ctx context.Context, storeID string, e event.Stored) error {
	if id, entry, ok := stepOfAnswer(e); ok {
		// Two writes and no reads: one batch, which PostgreSQL runs as an implicit
		// transaction, in one round trip instead of four.
		b := &pgx.Batch{}
		b.Queue(recordStepSQL, id, entry.Step, entry.ProductID, entry.At, e.Position, entry.Reason)
		b.Queue(setCheckpointSQL, storeID, e.Position)
		if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("apply %s (position %d) to order %s: %w", e.Type, e.Position, id, err)
		}
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := applyEvent(ctx, tx, e); err != nil {
			return fmt.Errorf("apply %s v%d of %s (position %d): %w", e.Type, e.Version, e.Stream, e.Position, err)
		}
		return setCheckpoint(ctx, tx, storeID, e.Position)
	})
}

// errGap says an order event came before one of its stream's earlier events; the saga
// then reads the stream from the event store.
var errGap = errors.New("an earlier event of the order stream is missing")

// applyEvent records e in tx, whatever it is about.
func applyEvent(ctx context.Context, tx pgx.Tx, e event.Stored) error {
	orderID, isOrder := event.Order.ID(e.Stream)
	switch {
	case e.Type == event.ProductAdded || e.Type == event.ProductUpdated || e.Type == event.ProductDeleted:
		return applyPrice(ctx, tx, e)
	case event.TypeMatches([]string{event.Cart.Types()}, e.Type):
		return applyCart(ctx, tx, e)
	case isOrder:
		id := OrderID(orderID)
		version, err := lockOrder(ctx, tx, id)
		if err != nil {
			return err
		}
		return applyOrderEvent(ctx, tx, id, version, e)
	}
	if id, entry, ok := stepOfAnswer(e); ok {
		return recordStep(ctx, tx, id, entry, e.Position)
	}
	return nil // not the saga's, or not about an order of this service
}

// stepOfAnswer returns the step that e, an event of another service's stream about an
// order (a participant's answer, an invoice), records, with the product of a product's
// event (the line it answers); ok is false for any other event.
func stepOfAnswer(e event.Stored) (id OrderID, entry TimelineEntry, ok bool) {
	_, isOrder := event.Order.ID(e.Stream)
	step, ok := stepOf[e.Type]
	if !ok || isOrder {
		return "", TimelineEntry{}, false
	}
	var r Reply
	if err := json.Unmarshal(e.Data, &r); err != nil || !validOrderID(string(r.OrderID)) {
		return "", TimelineEntry{}, false
	}
	product, isProduct := event.Product.ID(e.Stream)
	if !isProduct {
		product = ""
	}
	return r.OrderID, TimelineEntry{Step: step, ProductID: product, At: e.RecordedAt, Reason: r.Reason}, true
}

// lockOrder locks the row of order id for the transaction and returns its version (0
// when there is no such order yet).
func lockOrder(ctx context.Context, tx pgx.Tx, id OrderID) (int64, error) {
	var version int64
	err := tx.QueryRow(ctx, `SELECT version FROM orders WHERE id = $1 FOR UPDATE`, id).Scan(&version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("lock order %s: %w", id, err)
	}
	return version, nil
}

// applyOrderEvent applies e of order id's stream, whose row is at version: only the next
// version changes the order; an event applied before refreshes the time of its step
// (the saga records its own decisions at once, with the time it decided, and the event
// store's recorded_at replaces that when the event comes back from the bus).
func applyOrderEvent(ctx context.Context, tx pgx.Tx, id OrderID, version int64, e event.Stored) error {
	step := stepOf[e.Type]
	switch {
	case e.Version <= version:
		if step == "" {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE timeline SET at = $3, position = $4
			WHERE order_id = $1 AND step = $2 AND (at <> $3 OR position <> $4)`, id, step, e.RecordedAt, e.Position)
		return err
	case e.Version > version+1:
		return fmt.Errorf("order %s is at version %d, event is version %d: %w", id, version, e.Version, errGap)
	}
	var err error
	switch e.Type {
	case event.OrderPlaced:
		var p Placed
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return fmt.Errorf("decode %s: %v: %w", e.Type, err, bus.ErrPermanent)
		}
		_, err = tx.Exec(ctx, `INSERT INTO orders (id, customer, total_cents, status, placed_at, version)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, p.Customer, p.TotalCents, Pending, e.RecordedAt, e.Version)
		for i, l := range p.All() {
			if err != nil {
				break
			}
			_, err = tx.Exec(ctx, `INSERT INTO order_lines (order_id, line, product_id, name, quantity,
				unit_price_cents) VALUES ($1, $2, $3, $4, $5, $6)`, id, i+1, l.ProductID, l.Name, l.Quantity, l.UnitPriceCents)
		}
	case event.OrderApproved:
		_, err = tx.Exec(ctx, `UPDATE orders SET status = $2, version = $3 WHERE id = $1`, id, Approved, e.Version)
	case event.OrderRejected:
		var r RejectedData
		if err := json.Unmarshal(e.Data, &r); err != nil {
			return fmt.Errorf("decode %s: %v: %w", e.Type, err, bus.ErrPermanent)
		}
		_, err = tx.Exec(ctx, `UPDATE orders SET status = $2, reason = $3, version = $4 WHERE id = $1`,
			id, Rejected, r.Reason, e.Version)
		if err == nil {
			err = recordStep(ctx, tx, id, TimelineEntry{Step: step, At: e.RecordedAt, Reason: r.Reason}, e.Position)
		}
		return err
	default: // a later order.* type this version does not know: it moves the version only
		_, err = tx.Exec(ctx, `UPDATE orders SET version = $2 WHERE id = $1`, id, e.Version)
	}
	if err == nil && step != "" {
		err = recordStep(ctx, tx, id, TimelineEntry{Step: step, At: e.RecordedAt}, e.Position)
	}
	if err != nil {
		return fmt.Errorf("apply %s to order %s: %w", e.Type, id, err)
	}
	return nil
}

// recordStep adds entry to the timeline of order id unless it is there (a step is
// recorded once per order, and once per line for a line's step), with the position of
// the event that says it.
const recordStepSQL = `INSERT INTO timeline (order_id, step, product_id, at, position, reason)
	VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id, step, product_id) DO NOTHING`

func recordStep(ctx context.Context, tx pgx.Tx, id OrderID, entry TimelineEntry, position int64) error {
	_, err := tx.Exec(ctx, recordStepSQL, id, entry.Step, entry.ProductID, entry.At, position, entry.Reason)
	if err != nil {
		return fmt.Errorf("record %s of order %s: %w", entry.Step, id, err)
	}
	return nil
}

// applyPrice records the price of a product event that is newer than the one recorded
// (the service sees only some types of a product's stream, so versions jump).
func applyPrice(ctx context.Context, tx pgx.Tx, e event.Stored) error {
	id, _ := event.Product.ID(e.Stream)
	var p struct {
		Name       *string `json:"name"`
		PriceCents *int64  `json:"price_cents"`
	}
	if e.Type != event.ProductDeleted {
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return fmt.Errorf("decode %s: %v: %w", e.Type, err, bus.ErrPermanent)
		}
	}
	deleted := e.Type == event.ProductDeleted
	_, err := tx.Exec(ctx, `INSERT INTO prices AS p (product_id, name, price_cents, deleted, version)
		VALUES ($1, coalesce($5, ''), coalesce($2, 0), $3, $4)
		ON CONFLICT (product_id) DO UPDATE SET price_cents = coalesce($2, p.price_cents),
			name = coalesce($5, p.name), deleted = $3, version = $4
		WHERE p.version < $4`, id, p.PriceCents, deleted, e.Version, p.Name)
	if err != nil {
		return fmt.Errorf("record the price of product %s: %w", id, err)
	}
	return nil
}

// answerSteps are the participants' answers: the steps that can make a pending order
// decidable.
var answerSteps = []string{string(StepStockReserved), string(StepStockRejected),
	string(StepCreditReserved), string(StepCreditRejected)}

// skipApplied moves the checkpoint past e, an event of order id's own stream, in one
// statement when the read model has applied e already (the service applies its own
// writes at once) and e cannot lead to a decision: the order is decided, or no
// participant has answered yet (an answer comes later through the same queue and is
// decided then). It also sets e's step to e's recorded_at, which the service's own apply
// could only guess. It reports whether it did; if not, e needs the whole treatment.
func (s *Store) skipApplied(ctx context.Context, storeID string, id OrderID, e event.Stored) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		WITH known AS (
			SELECT 1 FROM orders
			WHERE id = $3 AND version >= $4 AND (status <> $7 OR NOT EXISTS (
				SELECT 1 FROM timeline WHERE order_id = $3 AND step = ANY($8)))
		), timed AS (
			UPDATE timeline SET at = $5, position = $2
			WHERE order_id = $3 AND step = $6 AND (at <> $5 OR position <> $2) AND EXISTS (SELECT 1 FROM known)
		)
		UPDATE checkpoint SET store_id = $1, position = greatest(position, $2)
		WHERE EXISTS (SELECT 1 FROM known)`,
		storeID, e.Position, id, e.Version, e.RecordedAt, string(stepOf[e.Type]), string(Pending), answerSteps)
	if err != nil {
		return false, fmt.Errorf("apply %s of order %s: %w", e.Type, id, err)
	}
	return tag.RowsAffected() == 1, nil
}

const setCheckpointSQL = `UPDATE checkpoint SET store_id = $1, position = greatest(position, $2)`

func setCheckpoint(ctx context.Context, tx pgx.Tx, storeID string, position int64) error {
	_, err := tx.Exec(ctx, setCheckpointSQL, storeID, position)
	if err != nil {
		return fmt.Errorf("move the checkpoint: %w", err)
	}
	return nil
}

// Price returns what the read model knows of the price of product id.
func (s *Store) Price(ctx context.Context, id string) (Price, error) {
	var p Price
	err := s.pool.QueryRow(ctx, `SELECT name, price_cents, deleted FROM prices WHERE product_id = $1`, id).
		Scan(&p.Name, &p.Cents, &p.Deleted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Price{}, nil
	case err != nil:
		return Price{}, fmt.Errorf("read the price of product %s: %w", id, err)
	}
	p.Known = true
	return p, nil
}

// orderColumns are the columns of an order, its lines as JSON of event.OrderLine.
const orderColumns = `id, customer, total_cents, status, reason, placed_at, version,
	(SELECT coalesce(json_agg(json_build_object('product_id', l.product_id, 'name', l.name,
		'quantity', l.quantity, 'unit_price_cents', l.unit_price_cents) ORDER BY l.line), '[]')
	 FROM order_lines l WHERE l.order_id = orders.id)`

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	err := row.Scan(&o.ID, &o.Customer, &o.TotalCents, &o.Status, &o.Reason, &o.PlacedAt, &o.Version, &o.Lines)
	o.PlacedAt = o.PlacedAt.UTC()
	return o, err
}

// Order returns order id with its timeline, or service.ErrNotFound.
func (s *Store) Order(ctx context.Context, id OrderID) (Order, error) {
	return loadOrder(ctx, s.pool, id, false)
}

// batcher is a pool or a transaction.
type batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// loadOrder reads order id with its timeline, in the order the steps happened, in one
// round trip; with lock (in a transaction) it holds the order's row until the transaction
// ends, as lockOrder does. A missing order is service.ErrNotFound.
func loadOrder(ctx context.Context, q batcher, id OrderID, lock bool) (Order, error) {
	orderSQL := `SELECT ` + orderColumns + ` FROM orders WHERE id = $1`
	if lock {
		orderSQL += ` FOR UPDATE OF orders`
	}
	b := &pgx.Batch{}
	b.Queue(orderSQL, id)
	// Each step is recorded by an event of its own, and an event is stored after the one
	// that caused it: the order of positions is causal (times are not: clocks differ).
	b.Queue(`SELECT step, product_id, at, reason FROM timeline WHERE order_id = $1 ORDER BY position`, id)
	results := q.SendBatch(ctx, b)
	defer results.Close()
	o, err := scanOrder(results.QueryRow())
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Order{}, service.ErrNotFound
	case err != nil:
		return Order{}, fmt.Errorf("read order %s: %w", id, err)
	}
	rows, err := results.Query()
	if err != nil {
		return Order{}, fmt.Errorf("read the timeline of order %s: %w", id, err)
	}
	o.Timeline, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (TimelineEntry, error) {
		var e TimelineEntry
		err := row.Scan(&e.Step, &e.ProductID, &e.At, &e.Reason)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return Order{}, fmt.Errorf("read the timeline of order %s: %w", id, err)
	}
	if err := results.Close(); err != nil {
		return Order{}, fmt.Errorf("read order %s: %w", id, err)
	}
	return o, nil
}

// OrderFilter selects orders: of one customer ("" = all), with one status ("" = any).
type OrderFilter struct {
	Customer string
	Status   Status
}

// Orders returns up to limit orders that match f, newest first, starting after the order
// with id after ("" = from the newest), without their timelines; more says whether
// another page follows.
func (s *Store) Orders(ctx context.Context, f OrderFilter, limit int, after OrderID) ([]Order, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+orderColumns+` FROM orders
		WHERE ($1 = '' OR customer = $1) AND ($2 = '' OR status = $2)
		  AND ($3 = '' OR (placed_at, id) < (SELECT placed_at, id FROM orders WHERE id = $3))
		ORDER BY placed_at DESC, id DESC LIMIT $4`, f.Customer, string(f.Status), string(after), limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list orders: %w", err)
	}
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Order, error) { return scanOrder(row) })
	if err != nil {
		return nil, false, fmt.Errorf("list orders: %w", err)
	}
	if len(orders) > limit {
		return orders[:limit], true, nil
	}
	return orders, false, nil
}

// pendingSince returns up to limit orders that have been pending since before t.
func (s *Store) pendingSince(ctx context.Context, t time.Time, limit int) ([]OrderID, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM orders WHERE status = 'pending' AND placed_at < $1
		ORDER BY placed_at LIMIT $2`, t, limit)
	if err != nil {
		return nil, fmt.Errorf("find orders pending since %s: %w", t, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[OrderID])
	if err != nil {
		return nil, fmt.Errorf("find orders pending since %s: %w", t, err)
	}
	return ids, nil
}
