package order

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/view"
)

// announcer tells the sites which orders changed (view.Change on the view exchange, routing
// key view.Orders), so that they read an order once per change instead of every browser
// polling it.
//
// An order is announced after the read model committed the event that changed it: the
// subscription's Apply (announcing.Apply) records it only once Apply returned, so a GET
// that the announcement causes sees the change. Decisions that the saga applies at once
// (settle) come back through the subscription as events, and are announced then.
// Announcing is off the apply path: changes wait in memory, several changes of one order
// become one announcement, and a goroutine publishes them in batches (run). What a crash
// loses from memory is covered by the announcement of All that run makes when the service
// has caught up after it starts (view.Change.All), and what a broker outage delays is
// published again with backoff.
//
// Its methods are safe for concurrent use.
type announcer struct {
	conn     *bus.Conn
	exchange string
	store    *Store
	logger   *slog.Logger
	wake     chan struct{} // holds a value when changes wait

	mu      sync.Mutex
	live    bool                    // caught up: changes are announced one by one
	all     bool                    // announce All next
	pending map[OrderID]view.Change // the orders changed and not announced yet
	queue   []OrderID               // pending's keys, in the order they changed
	// traces holds the traceparent of the event of each pending order's last change, if
	// it had one: its announcement carries it as a header (docs/tracing.md).
	traces map[OrderID]string
}

// announceBatch bounds the announcements of one publish.
const announceBatch = 256

func newAnnouncer(conn *bus.Conn, exchange string, store *Store, logger *slog.Logger) *announcer {
	return &announcer{conn: conn, exchange: exchange, store: store, logger: logger,
		wake: make(chan struct{}, 1), pending: map[OrderID]view.Change{}, traces: map[OrderID]string{}}
}

// readModel returns rm announcing what it applies.
func (a *announcer) readModel(rm eventclient.ReadModel) eventclient.ReadModel {
	return announcing{ReadModel: rm, a: a}
}

// announcing is a read model whose applied events are announced.
type announcing struct {
	eventclient.ReadModel
	a *announcer
}

// Apply applies e, and once that committed, records the order e changed, if any.
func (m announcing) Apply(ctx context.Context, storeID string, e event.Stored) error {
	if err := m.ReadModel.Apply(ctx, storeID, e); err != nil {
		return err
	}
	if id, _, ok := aboutOrder(e); ok {
		m.a.changed(view.Change{View: view.Orders, ID: string(id), Position: e.Position, Created: e.Type == event.OrderPlaced},
			e.Metadata.TraceParent)
	}
	return nil
}

// Reset empties the read model; every order may have changed.
func (m announcing) Reset(ctx context.Context, storeID string) error {
	if err := m.ReadModel.Reset(ctx, storeID); err != nil {
		return err
	}
	m.a.mu.Lock()
	m.a.all = m.a.live
	m.a.mu.Unlock()
	m.a.signal()
	return nil
}

// changed records c, made by an event with traceparent (may be ""), for the next
// announcement; before the read model caught up it is dropped (All covers it).
func (a *announcer) changed(c view.Change, traceparent string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.live {
		return
	}
	id := OrderID(c.ID)
	if traceparent != "" {
		a.traces[id] = traceparent
	}
	if before, ok := a.pending[id]; ok {
		a.pending[id] = before.Merge(c)
		return
	}
	a.pending[id] = c
	a.queue = append(a.queue, id)
	a.signal()
}

func (a *announcer) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run declares the view exchange, waits until caughtUp is closed (the read model caught up
// with the event store: changes before that are not announced one by one), announces All,
// and then announces the changes as they come, until ctx is done. A publish that fails is
// tried again with backoff, so nothing recorded is lost while the service runs. It returns
// an error only when the exchange cannot be declared.
func (a *announcer) run(ctx context.Context, caughtUp <-chan struct{}) error {
	if err := a.conn.DeclareExchange(ctx, a.exchange, "topic"); err != nil {
		return fmt.Errorf("declare the view exchange %s: %w", a.exchange, err)
	}
	select {
	case <-caughtUp:
	case <-ctx.Done():
		return nil
	}
	a.mu.Lock()
	a.live, a.all = true, true
	a.mu.Unlock()
	a.signal()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.wake:
		}
		for {
			msgs, err := a.take(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				a.logger.Warn("announce changed orders: read them (trying again in 1 s)", "error", err)
				time.AfterFunc(time.Second, a.signal)
				break
			}
			if len(msgs) == 0 {
				break
			}
			if err := a.publish(ctx, msgs); err != nil {
				return nil // only ctx ends publish's retries
			}
		}
	}
}

// take removes up to announceBatch pending changes (All first) and returns them as
// messages, with each order's owner and version as the read model has them now. An order
// the read model does not have (an answer about an order it never saw) is not announced.
// On an error the changes are pending again.
func (a *announcer) take(ctx context.Context) ([]bus.Routed, error) {
	a.mu.Lock()
	all := a.all
	n := min(len(a.queue), announceBatch)
	ids := a.queue[:n:n]
	changes := make([]view.Change, 0, n)
	traces := make(map[OrderID]string, n)
	for _, id := range ids {
		changes = append(changes, a.pending[id])
		delete(a.pending, id)
		if tp, ok := a.traces[id]; ok {
			traces[id] = tp
			delete(a.traces, id)
		}
	}
	a.queue, a.all = a.queue[n:], false
	a.mu.Unlock()

	var msgs []bus.Routed
	if all {
		msgs = append(msgs, announcement(view.Change{View: view.Orders, All: true}, ""))
	}
	if len(changes) == 0 {
		return msgs, nil
	}
	owners, err := a.store.owners(ctx, ids)
	if err != nil {
		a.mu.Lock()
		a.all = a.all || all
		for _, c := range changes {
			if tp, ok := traces[OrderID(c.ID)]; ok {
				if _, newer := a.traces[OrderID(c.ID)]; !newer {
					a.traces[OrderID(c.ID)] = tp
				}
			}
			if _, ok := a.pending[OrderID(c.ID)]; !ok {
				a.queue = append(a.queue, OrderID(c.ID))
			} else {
				c = c.Merge(a.pending[OrderID(c.ID)])
			}
			a.pending[OrderID(c.ID)] = c
		}
		a.mu.Unlock()
		return nil, err
	}
	for _, c := range changes {
		o, ok := owners[OrderID(c.ID)]
		if !ok {
			continue
		}
		c.Owner, c.Version = o.Customer, o.Version
		msgs = append(msgs, announcement(c, traces[OrderID(c.ID)]))
	}
	return msgs, nil
}

// publish publishes msgs, trying again with backoff until it succeeds or ctx is done
// (then its error is ctx's).
func (a *announcer) publish(ctx context.Context, msgs []bus.Routed) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, a.conn.PublishBatch(ctx, a.exchange, msgs)
	}, backoff.WithBackOff(bus.NewBackoff(100*time.Millisecond, 5*time.Second)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			a.logger.Warn("announce changed orders (trying again)", "error", err, "retry_in_ms", next.Milliseconds())
		}))
	return err
}

// announcement is the message of c: transient (a site's queue of announcements lives only
// as long as its connection), with the view as routing key, and traceparent (if not "")
// as its header, so that the sites' handling of it joins the trace of the change.
func announcement(c view.Change, traceparent string) bus.Routed {
	body, _ := json.Marshal(c)
	m := bus.Message{Type: view.MessageType, Body: body, Transient: true}
	if traceparent != "" {
		m.Headers = map[string]any{"traceparent": traceparent}
	}
	return bus.Routed{Key: c.View, Message: m}
}

// owner is who owns an order and its version, for its announcement.
type owner struct {
	Customer string
	Version  int64
}

// owners returns the customer and version of each of ids that the read model has.
func (s *Store) owners(ctx context.Context, ids []OrderID) (map[OrderID]owner, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = string(id)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, customer, version FROM orders WHERE id = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("read the owners of %d orders: %w", len(ids), err)
	}
	defer rows.Close()
	out := make(map[OrderID]owner, len(ids))
	for rows.Next() {
		var id OrderID
		var o owner
		if err := rows.Scan(&id, &o.Customer, &o.Version); err != nil {
			return nil, fmt.Errorf("read the owners of %d orders: %w", len(ids), err)
		}
		out[id] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the owners of %d orders: %w", len(ids), err)
	}
	return out, nil
}
