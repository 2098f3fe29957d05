package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Saga is the read model as the running service keeps it: it applies events like
// Store.Apply and, while it does, makes the saga's decisions and appends them.
//
// Decisions are made while applying, so a crash anywhere resumes: the triggering event is
// marked applied only in the transaction that also applies the decision, and a decision
// made again has the same event id (the event store deduplicates it). Every decision is
// appended with the order stream's expected version, so when several replicas' sweepers
// and the subscription decide at once, exactly one decision wins; the others read the
// stream, apply what they lacked, and decide again (which then appends nothing).
type Saga struct {
	store  *Store
	events *eventclient.Client
	logger *slog.Logger
	// answered holds the orders whose participants answered, for the deciders (Decide).
	answered chan answer
	// watch wakes the requests waiting for an order's decision (GET with Prefer: wait).
	watch *orderWatch
	// metrics counts the decisions this replica stored (msdemo_orders_total) and their
	// sagas' durations; nil: none.
	metrics *telemetry.Component
}

// answer is a participant's event about an order, waiting to be decided on.
type answer struct {
	id      OrderID
	trigger event.Stored
}

var _ eventclient.ReadModel = (*Saga)(nil)

// NewSaga returns the deciding read model over store, appending with events.
func NewSaga(store *Store, events *eventclient.Client, logger *slog.Logger) *Saga {
	return &Saga{store: store, events: events, logger: logger, answered: make(chan answer, 4096),
		watch: newOrderWatch(maxWaiting)}
}

// Checkpoint returns the store's checkpoint.
func (s *Saga) Checkpoint(ctx context.Context) (string, int64, error) { return s.store.Checkpoint(ctx) }

// Reset empties the store.
func (s *Saga) Reset(ctx context.Context, storeID string) error { return s.store.Reset(ctx, storeID) }

// Apply applies e with the checkpoint. An event of an order's own stream is applied with
// the decision it leads to, if any, in one transaction; one the service applied at once
// when it wrote it, and that leads to no decision, only moves the checkpoint
// (Store.skipApplied). A participant's answer is recorded
// and handed to the deciders (Decide), so that the queue, applied one event at a time, does
// not wait for the decision's append round trip; a decision lost in a crash is made by the
// sweeper (Sweep), which looks at every pending order.
func (s *Saga) Apply(ctx context.Context, storeID string, e event.Stored) error {
	id, now, ok := aboutOrder(e)
	if !ok {
		if e.Type == event.CartCheckedOut {
			if err := s.placeCheckedOut(ctx, e); err != nil {
				return err
			}
		}
		return s.store.Apply(ctx, storeID, e)
	}
	if _, isOrder := event.Order.ID(e.Stream); !isOrder {
		if err := s.store.Apply(ctx, storeID, e); err != nil {
			return err
		}
		select {
		case s.answered <- answer{id: id, trigger: e}:
		default: // the deciders are behind: the sweeper finds the order
		}
		return nil
	}
	if skipped, err := s.store.skipApplied(ctx, storeID, id, e); err != nil || skipped {
		return err
	}
	err := s.settle(ctx, id, now, &e, func(tx pgx.Tx) error {
		if err := applyEvent(ctx, tx, e); err != nil {
			return err
		}
		return setCheckpoint(ctx, tx, storeID, e.Position)
	})
	if err != nil {
		return fmt.Errorf("apply %s v%d of %s (position %d): %w", e.Type, e.Version, e.Stream, e.Position, err)
	}
	return nil
}

// placeCheckedOut places the order of checkout e (cart.checked-out) unless the read
// model or the event store has it: the outbox of a checkout whose request died between
// its two appends (cart.go). It runs before e is marked applied, so a crash here places
// the order when e comes again; the order's event id makes a second placing a duplicate.
func (s *Saga) placeCheckedOut(ctx context.Context, e event.Stored) error {
	customer, isCart := event.Cart.ID(e.Stream)
	var d checkedOutData
	if err := json.Unmarshal(e.Data, &d); err != nil || !isCart || !validOrderID(string(d.OrderID)) || len(d.Lines) == 0 {
		s.logger.Error("cart.checked-out without a usable order: skipped", "stream", e.Stream, "position", e.Position, "error", err)
		return nil
	}
	switch _, err := s.store.Order(ctx, d.OrderID); {
	case err == nil:
		return nil // placed and applied
	case !errors.Is(err, service.ErrNotFound):
		return err
	}
	placed, err := s.events.AppendDecision(ctx, Stream(d.OrderID), 0, Place(d.OrderID, customer, d.Lines)[0], &e)
	if placed != nil {
		// Usual, not a failure: the read model often applies cart.checked-out before the
		// request appends order.placed, whose append is then the duplicate.
		s.logger.Debug("checkout's order placed from cart.checked-out", "order_id", d.OrderID)
	}
	return err
}

// aboutOrder returns the order e is about and its step: its stream's for an order event,
// the data's order_id for a participant's.
func aboutOrder(e event.Stored) (id OrderID, now TimelineEntry, ok bool) {
	if rest, isOrder := event.Order.ID(e.Stream); isOrder {
		step, ok := stepOf[e.Type]
		return OrderID(rest), TimelineEntry{Step: step, At: e.RecordedAt}, ok
	}
	return stepOfAnswer(e)
}

// maxTries bounds how often settle re-reads an order stream that moved meanwhile.
const maxTries = 5

// settle runs record (may be nil) in a transaction that holds the order's row, then
// decides on the order as it is after it (Decide with now, the step that happens). A decision is
// appended with the expected version while the row is held, and applied at once in the
// same transaction. When the stream has moved on (a version conflict, a duplicate of a
// decision made before a crash, or a gap in the order events), it rolls back, reads the
// stream from the event store, applies what the read model lacks, and starts over.
// trigger, if not nil, is the event that caused the decision (its causation).
func (s *Saga) settle(ctx context.Context, id OrderID, now TimelineEntry, trigger *event.Stored, record func(pgx.Tx) error) error {
	if record == nil {
		// A decider's or the sweeper's look: most decide nothing (the first of two
		// answers, an invoice), and one read says so without a transaction. An order
		// only moves towards a decision (its timeline grows, its status leaves pending
		// once), and the answer that completes it has a decider of its own that runs
		// after the answer is recorded, so a look that finds nothing to decide misses
		// nothing.
		o, err := loadOrder(ctx, s.store.pool, id, false)
		switch {
		case errors.Is(err, service.ErrNotFound):
			return nil
		case err != nil:
			return err
		case Decide(o, now).None():
			return nil
		}
	}
	for try := 1; ; try++ {
		var behind bool
		err := pgx.BeginFunc(ctx, s.store.pool, func(tx pgx.Tx) error {
			if record != nil {
				if _, err := lockOrder(ctx, tx, id); err != nil {
					return err
				}
				if err := record(tx); err != nil {
					return err
				}
			}
			o, err := loadOrder(ctx, tx, id, record == nil) // held already when recorded
			if errors.Is(err, service.ErrNotFound) {
				return nil // no such order (yet): nothing to decide
			} else if err != nil {
				return err
			}
			d := Decide(o, now)
			if d.None() {
				return nil
			}
			decided, err := s.append(ctx, o, d, trigger)
			if err != nil {
				return err
			}
			if decided == nil {
				behind = true
				return errBehind
			}
			return applyOrderEvent(ctx, tx, id, o.Version, *decided)
		})
		switch {
		case err == nil:
			s.watch.changed(id)
			return nil
		case !behind && !errors.Is(err, errGap):
			return err
		case try == maxTries:
			return fmt.Errorf("decide order %s: its stream kept moving (%d tries)", id, try)
		}
		if err := s.catchUpOrder(ctx, id); err != nil {
			return err
		}
	}
}

// errBehind rolls back a transaction whose decision lost to one already stored.
var errBehind = errors.New("the order stream has moved on")

// append appends decision d about o, caused by trigger (nil for a timeout), at o's
// version (eventclient.AppendDecision).
func (s *Saga) append(ctx context.Context, o Order, d Decision, trigger *event.Stored) (*event.Stored, error) {
	e := decisionEvent(o, d)
	stored, err := s.events.AppendDecision(ctx, Stream(o.ID), o.Version, e, trigger)
	if stored != nil {
		s.logger.Debug("order decided", "order_id", o.ID, "type", e.Type, "reason", d.Reason)
		s.metrics.OrderDecided(outcome(d), o.PlacedAt)
	}
	return stored, err
}

// outcome is d's outcome label (telemetry.Outcome*).
func outcome(d Decision) string {
	switch {
	case d.Approve:
		return telemetry.OutcomeApproved
	case d.Reason == ReasonTimedOut:
		return telemetry.OutcomeTimedOut
	default:
		return telemetry.OutcomeRejected
	}
}

// catchUpOrder reads order id's stream from the event store and applies the events the
// read model lacks (without moving the checkpoint: the bus brings them again, and they
// are skipped by version).
func (s *Saga) catchUpOrder(ctx context.Context, id OrderID) error {
	events, _, err := s.events.Stream(ctx, Stream(id))
	if err != nil {
		return fmt.Errorf("catch up order %s: %w", id, err)
	}
	return pgx.BeginFunc(ctx, s.store.pool, func(tx pgx.Tx) error {
		version, err := lockOrder(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, e := range events {
			if err := applyOrderEvent(ctx, tx, id, version, e); err != nil {
				return fmt.Errorf("catch up order %s: %w", id, err)
			}
			version = max(version, e.Version)
		}
		return nil
	})
}

// Decide runs workers that decide, in parallel, the orders whose participants answered,
// until ctx is done. Different orders are decided at once; one order's decisions are
// serialised by its row lock and its stream's expected version.
func (s *Saga) Decide(ctx context.Context, workers int) error {
	service.Workers(ctx, workers, s.answered, func(ctx context.Context, a answer) {
		// In the trace of the answer (docs/tracing.md): a worker, not its delivery, decides.
		ctx, span := telemetry.StartSpanAfter(ctx, a.trigger.Metadata.TraceParent, "order decide", registry.Order,
			attribute.String("msdemo.order_id", string(a.id)))
		err := s.settle(ctx, a.id, TimelineEntry{}, &a.trigger, nil)
		telemetry.EndSpan(span, err)
		if err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "decide an order (the sweeper tries again)", "order_id", a.id, "error", err)
		}
	})
	return nil
}

// sweepBatch is how many orders one sweep handles at most, of each kind.
const sweepBatch = 100

// undecidedAfter is how long a pending order waits before the sweeper, too, looks at
// whether its participants' answers decide it (the deciders normally did at once).
const undecidedAfter = 2 * time.Second

// Sweep decides, every interval until ctx is done, the orders pending longer than
// undecidedAfter whose participants' answers decide them (a decision lost in a crash),
// and rejects ("timed out") those pending longer than timeout. Every replica may sweep:
// the expected version lets one decision win. A failed sweep is logged and tried again at
// the next tick.
func (s *Saga) Sweep(ctx context.Context, interval, timeout time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, sweep := range []struct {
			since time.Duration
			step  Step
		}{{undecidedAfter, ""}, {timeout, StepTimedOut}} {
			ids, err := s.store.pendingSince(ctx, time.Now().Add(-sweep.since), sweepBatch)
			if err != nil {
				if ctx.Err() == nil {
					s.logger.Warn("sweep pending orders", "error", err)
				}
				continue
			}
			for _, id := range ids {
				if err := s.settle(ctx, id, TimelineEntry{Step: sweep.step}, nil, nil); err != nil && ctx.Err() == nil {
					s.logger.Warn("sweep an order", "order_id", id, "step", sweep.step, "error", err)
				}
			}
		}
	}
}
