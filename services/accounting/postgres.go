package accounting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/service"
)

// Store is the accounting read model in PostgreSQL: each invoice as a JSON document
// (JSONB, the seed kept them in CouchDB) beside the columns the queries need, the
// approvals whose invoice is still to be issued (pending_invoices), and the checkpoint. A
// change made while applying an event and the checkpoint are written in one transaction.
// Storing an invoice, by whichever path, drops the order's pending row in the same
// transaction, and an approval is recorded pending only while its invoice is missing (a
// row recorded while an issuer stored the invoice is dropped by stillPending). A Store is
// safe for concurrent use: the subscription applies events one at a time while issuers
// store invoices.
type Store struct {
	db *pgxpool.Pool
}

// schema is the read model's tables. Raise its Version with every change of them (or of
// what the store writes): the read model is then rebuilt from the events at start.
//
// pending_invoices is kept across versions: its rows are work still
// to do, approvals whose invoice is to be issued, which a rebuild by `msdemo rebuild`
// does not record again (it issues nothing). A change of its shape needs a real
// migration: ALTER TABLE in Create, which runs once per version.
var schema = postgres.Schema{Name: "accounting", Version: 2, Tables: []string{"invoices", "checkpoint"},
	Kept: []string{"pending_invoices"}, Create: `
CREATE TABLE invoices (
	order_id    text PRIMARY KEY,
	customer    text NOT NULL,
	total_cents bigint NOT NULL,
	issued_at   timestamptz NOT NULL,
	version     bigint NOT NULL,
	doc         jsonb NOT NULL
);
CREATE INDEX invoices_newest ON invoices (issued_at DESC, order_id DESC);
CREATE INDEX invoices_customer_newest ON invoices (customer, issued_at DESC, order_id DESC);
CREATE TABLE IF NOT EXISTS pending_invoices (
	order_id    text PRIMARY KEY,
	approval    jsonb NOT NULL,       -- the order.approved data (Approved)
	event_id    text NOT NULL,        -- the approval's event id, metadata and recorded_at
	metadata    jsonb NOT NULL,
	approved_at timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now(), -- when it became pending
	handed_at   timestamptz NOT NULL DEFAULT now()  -- when it was last handed to an issuer
);
CREATE INDEX IF NOT EXISTS pending_invoices_handed ON pending_invoices (handed_at);
CREATE TABLE checkpoint (
	one      boolean PRIMARY KEY DEFAULT true CHECK (one),
	store_id text NOT NULL,
	position bigint NOT NULL
);
INSERT INTO checkpoint (store_id, position) VALUES ('', 0);
`}

// NewStore creates the tables in db when missing or of another schema version
// (postgres.Schema.Ensure: the read model is then empty, but for the pending approvals,
// and is rebuilt as the service catches up) and returns the store. The caller closes db
// after the store's last use.
func NewStore(ctx context.Context, db *pgxpool.Pool) (*Store, error) {
	if _, err := schema.Ensure(ctx, db); err != nil {
		return nil, fmt.Errorf("open the accounting read model: %w", err)
	}
	return &Store{db: db}, nil
}

// Checkpoint returns the store id and position of the last event applied.
func (s *Store) Checkpoint(ctx context.Context) (storeID string, position int64, err error) {
	err = s.db.QueryRow(ctx, `SELECT store_id, position FROM checkpoint`).Scan(&storeID, &position)
	if err != nil {
		return "", 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return storeID, position, nil
}

// Reset empties the read model, which then follows storeID from position 0. The pending
// approvals are kept when storeID is the store followed until now (a rebuild, which
// records none, must not forget invoices still to be issued), and dropped with the rest
// when it is another store.
func (s *Store) Reset(ctx context.Context, storeID string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `TRUNCATE invoices`); err != nil {
			return fmt.Errorf("reset invoices: %w", err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM pending_invoices
			WHERE NOT EXISTS (SELECT 1 FROM checkpoint WHERE store_id = $1)`, storeID)
		if err != nil {
			return fmt.Errorf("reset pending invoices: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE checkpoint SET store_id = $1, position = 0`, storeID); err != nil {
			return fmt.Errorf("reset checkpoint: %w", err)
		}
		return nil
	})
}

// Skip records position as applied without changing anything else: the event needed no
// change. The checkpoint never moves back (a replayed dead letter is behind it).
func (s *Store) Skip(ctx context.Context, storeID string, position int64) error {
	err := s.write(ctx, func(b *pgx.Batch) error { queueAdvance(b, storeID, position); return nil })
	if err != nil {
		return fmt.Errorf("advance checkpoint to %d: %w", position, err)
	}
	return nil
}

// AddInvoice stores inv at the invoice stream's version, unless the store has that version
// or a later one, drops the order's pending approval, and records position as applied,
// in one transaction.
func (s *Store) AddInvoice(ctx context.Context, storeID string, position int64, inv Invoice, version int64) error {
	err := s.write(ctx, func(b *pgx.Batch) error {
		queueAdvance(b, storeID, position)
		return queueInvoice(b, inv, version)
	})
	if err != nil {
		return fmt.Errorf("store invoice %s: %w", inv.OrderID, err)
	}
	return nil
}

// addIssued is AddInvoice for an invoice an issuer appended: the checkpoint stays, for
// the subscription to move when the invoice.issued event comes back (it then changes
// nothing else).
func (s *Store) addIssued(ctx context.Context, inv Invoice, version int64) error {
	if err := s.write(ctx, func(b *pgx.Batch) error { return queueInvoice(b, inv, version) }); err != nil {
		return fmt.Errorf("store invoice %s: %w", inv.OrderID, err)
	}
	return nil
}

// write runs the writes that queue adds to a batch as one transaction in one round trip:
// PostgreSQL runs a batch as an implicit transaction.
func (s *Store) write(ctx context.Context, queue func(b *pgx.Batch) error) error {
	b := &pgx.Batch{}
	if err := queue(b); err != nil {
		return err
	}
	return s.db.SendBatch(ctx, b).Close()
}

// queueInvoice queues storing inv at version, unless the store has that version or a
// later one, and dropping the order's pending approval.
func queueInvoice(b *pgx.Batch, inv Invoice, version int64) error {
	doc, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encode invoice %s: %w", inv.OrderID, err)
	}
	b.Queue(`
		INSERT INTO invoices (order_id, customer, total_cents, issued_at, version, doc)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (order_id) DO UPDATE SET customer = excluded.customer,
			total_cents = excluded.total_cents, issued_at = excluded.issued_at,
			version = excluded.version, doc = excluded.doc
		WHERE invoices.version < excluded.version`,
		string(inv.OrderID), inv.Customer, inv.TotalCents, inv.IssuedAt, version, doc)
	b.Queue(`DELETE FROM pending_invoices WHERE order_id = $1`, string(inv.OrderID))
	return nil
}

// pendingInvoice is an approval whose invoice is still to be issued: a row of
// pending_invoices, with what its invoice.issued is made of.
type pendingInvoice struct {
	approval   Approved
	eventID    string         // the approval's event id: the invoice's causation
	metadata   event.Metadata // the approval's: the invoice's correlation and user
	approvedAt time.Time      // the approval's recorded_at: the invoice's issued_at
}

// addPending records p as pending unless the order has its invoice or is pending already,
// and records position as applied, in one transaction. It reports whether it recorded p.
func (s *Store) addPending(ctx context.Context, storeID string, position int64, p pendingInvoice) (added bool, err error) {
	approval, err := json.Marshal(p.approval)
	if err != nil {
		return false, fmt.Errorf("encode approval %s: %w", p.approval.OrderID, err)
	}
	metadata, err := json.Marshal(p.metadata)
	if err != nil {
		return false, fmt.Errorf("encode approval %s: %w", p.approval.OrderID, err)
	}
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO pending_invoices (order_id, approval, event_id, metadata, approved_at)
		SELECT $1, $2, $3, $4, $5
		WHERE NOT EXISTS (SELECT 1 FROM invoices WHERE order_id = $1)
		ON CONFLICT (order_id) DO NOTHING`,
		string(p.approval.OrderID), approval, p.eventID, metadata, p.approvedAt).Exec(func(tag pgconn.CommandTag) error {
		added = tag.RowsAffected() == 1
		return nil
	})
	queueAdvance(b, storeID, position)
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("record approval %s as pending: %w", p.approval.OrderID, err)
	}
	return added, nil
}

// stillPending reports whether the order's approval is pending. A pending row whose
// invoice is stored (recorded while an issuer stored the invoice) is dropped, and is not
// pending.
func (s *Store) stillPending(ctx context.Context, id OrderID) (bool, error) {
	// The SELECT sees the table as it was before the DELETE of the same statement.
	var pending bool
	err := s.db.QueryRow(ctx, `
		WITH stale AS (
			DELETE FROM pending_invoices p WHERE p.order_id = $1
				AND EXISTS (SELECT 1 FROM invoices i WHERE i.order_id = $1)
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM pending_invoices WHERE order_id = $1)
			AND NOT EXISTS (SELECT 1 FROM stale)`, string(id)).Scan(&pending)
	if err != nil {
		return false, fmt.Errorf("look up pending approval %s: %w", id, err)
	}
	return pending, nil
}

// claimPending returns up to limit pending approvals last handed to an issuer before the
// given time, oldest first, and marks them handed now (by the database's clock, which
// should agree with the callers'), so that neither this sweeper nor another replica's
// takes them again soon. Rows another transaction holds are skipped.
func (s *Store) claimPending(ctx context.Context, before time.Time, limit int) ([]pendingInvoice, error) {
	rows, err := s.db.Query(ctx, `
		UPDATE pending_invoices SET handed_at = now()
		WHERE order_id IN (
			SELECT order_id FROM pending_invoices WHERE handed_at < $1
			ORDER BY handed_at LIMIT $2
			FOR UPDATE SKIP LOCKED)
		RETURNING approval, event_id, metadata, approved_at`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("claim pending approvals: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pendingInvoice, error) {
		var p pendingInvoice
		err := row.Scan(&p.approval, &p.eventID, &p.metadata, &p.approvedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim pending approvals: %w", err)
	}
	return list, nil
}

// queueAdvance queues recording position as applied; the checkpoint never moves back.
func queueAdvance(b *pgx.Batch, storeID string, position int64) {
	b.Queue(`UPDATE checkpoint SET store_id = $1, position = GREATEST(position, $2)`, storeID, position)
}

// StoredInvoice is an invoice with the version of its stream.
type StoredInvoice struct {
	Invoice
	Version int64 `json:"version"`
}

// Invoice returns the order's invoice, or service.ErrNotFound.
func (s *Store) Invoice(ctx context.Context, id OrderID) (StoredInvoice, error) {
	var inv StoredInvoice
	err := s.db.QueryRow(ctx, `SELECT doc, version FROM invoices WHERE order_id = $1`, string(id)).
		Scan(&inv.Invoice, &inv.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return inv, service.ErrNotFound
	}
	if err != nil {
		return inv, fmt.Errorf("read invoice %s: %w", id, err)
	}
	return inv, nil
}

// Invoices returns up to limit invoices, newest first, of customer ("" for everyone's),
// after the invoice of order after ("" from the start; an unknown one gives none). more
// says whether there are further ones.
func (s *Store) Invoices(ctx context.Context, customer string, limit int, after OrderID) (list []StoredInvoice, more bool, err error) {
	rows, err := s.db.Query(ctx, `
		SELECT doc, version FROM invoices i
		WHERE ($1 = '' OR i.customer = $1)
		  AND ($2 = '' OR (i.issued_at, i.order_id) <
		       (SELECT a.issued_at, a.order_id FROM invoices a WHERE a.order_id = $2))
		ORDER BY i.issued_at DESC, i.order_id DESC
		LIMIT $3`, customer, string(after), limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list invoices: %w", err)
	}
	list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (StoredInvoice, error) {
		var inv StoredInvoice
		err := row.Scan(&inv.Invoice, &inv.Version)
		return inv, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list invoices: %w", err)
	}
	if len(list) > limit {
		return list[:limit], true, nil
	}
	return list, false, nil
}

// Revenue is the sum of all invoices.
type Revenue struct {
	RevenueCents int64 `json:"revenue_cents"`
	Invoices     int64 `json:"invoices"`
}

// Revenue returns the total and the number of invoices.
func (s *Store) Revenue(ctx context.Context) (Revenue, error) {
	var r Revenue
	err := s.db.QueryRow(ctx, `SELECT COALESCE(SUM(total_cents), 0)::bigint, COUNT(*) FROM invoices`).
		Scan(&r.RevenueCents, &r.Invoices)
	if err != nil {
		return r, fmt.Errorf("sum invoices: %w", err)
	}
	return r, nil
}
