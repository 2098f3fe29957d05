package accounting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// eventTypes are the events the ledger applies.
var eventTypes = []string{event.OrderApproved, event.InvoiceIssued}

// appendTimeout bounds the wait for the event store's reply to an invoice.
const appendTimeout = 10 * time.Second

// ledger keeps the read model up to date and, in the running service, has the invoice of
// each approved order issued: it is the subscription's eventclient.ReadModel.
//
// order.approved: unless the read model has the order's invoice, record the approval as
// pending together with its position (one transaction), and hand it to the issuers
// (Issue) without waiting, so that the queue, applied one event at a time, does not wait
// for the invoice's append round trip. An issuer appends invoice.issued to
// "invoice-<order_id>" with expected version 0 and the order's fixed event id, then
// stores the invoice and drops the pending row in one transaction. An approval the
// issuers did not get (they were behind, or the process stopped) or failed to issue stays
// pending and is issued by the sweeper (Sweep). However often an approval is delivered,
// handed or swept, and by however many replicas, the event store keeps one invoice: a
// second append gets its "duplicate" reply (or a version conflict), and stores the same
// invoice again, which changes nothing.
//
// invoice.issued: stored unless the read model has that version of the invoice's stream
// (it usually has: the service issued it itself), and the order's pending row dropped.
//
// An event whose data breaks the contract is dead-lettered at once (bus.ErrPermanent):
// a malformed approval is never recorded as pending. During catch-up, which has no queue
// to reject into, the ledger publishes it to the dead-letter queue itself and goes on;
// the managers see and replay it the same way.
type ledger struct {
	store  *Store
	logger *slog.Logger
	// events issues invoices; nil (Rebuild) only applies what the store holds and records
	// nothing pending.
	events *eventclient.Client
	// approved hands recorded approvals to the issuers; see newLedger.
	approved chan pendingInvoice
	// bus and queue dead-letter malformed events during catch-up: nil bus logs them.
	bus   *bus.Conn
	queue string
	// caughtUp is closed when the subscription follows the bus live.
	caughtUp <-chan struct{}
	// beforeIssue, if set, runs before each invoice is issued; an error fails that try,
	// and the approval stays pending (tests use it to hold a cause of failure).
	beforeIssue func(ctx context.Context, id OrderID) error
}

// handedApprovals is how many recorded approvals may wait for an issuer; beyond, the
// sweeper finds them.
const handedApprovals = 4096

// newLedger returns the ledger of the running service, issuing with events.
func newLedger(store *Store, events *eventclient.Client, logger *slog.Logger) *ledger {
	return &ledger{store: store, events: events, logger: logger, approved: make(chan pendingInvoice, handedApprovals)}
}

var _ eventclient.ReadModel = (*ledger)(nil)

func (l *ledger) Checkpoint(ctx context.Context) (string, int64, error) {
	return l.store.Checkpoint(ctx)
}

func (l *ledger) Reset(ctx context.Context, storeID string) error { return l.store.Reset(ctx, storeID) }

// Apply applies e; see ledger.
func (l *ledger) Apply(ctx context.Context, storeID string, e event.Stored) error {
	err := l.apply(ctx, storeID, e)
	if !errors.Is(err, ErrMalformed) {
		return err
	}
	if l.live() {
		return fmt.Errorf("%s %s: %w: %w", e.Type, e.ID, err, bus.ErrPermanent)
	}
	if err := l.deadLetter(ctx, e, err); err != nil {
		return err
	}
	return l.store.Skip(ctx, storeID, e.Position)
}

func (l *ledger) live() bool {
	if l.caughtUp == nil {
		return false
	}
	select {
	case <-l.caughtUp:
		return true
	default:
		return false
	}
}

func (l *ledger) apply(ctx context.Context, storeID string, e event.Stored) error {
	switch e.Type {
	case event.InvoiceIssued:
		inv, err := ParseIssued(e.Stream, e.Data)
		if err != nil {
			return err
		}
		return l.store.AddInvoice(ctx, storeID, e.Position, inv, e.Version)
	case event.OrderApproved:
		a, err := ParseApproved(e.Stream, e.Data)
		if err != nil {
			return err
		}
		if l.events == nil {
			return l.store.Skip(ctx, storeID, e.Position) // its invoice.issued follows in the feed
		}
		p := pendingInvoice{approval: a, eventID: e.ID, metadata: e.Metadata,
			approvedAt: e.RecordedAt.UTC().Truncate(time.Millisecond)}
		added, err := l.store.addPending(ctx, storeID, e.Position, p)
		if err != nil || !added {
			return err
		}
		select {
		case l.approved <- p:
		default: // the issuers are behind: the sweeper finds it
		}
		return nil
	default:
		return l.store.Skip(ctx, storeID, e.Position)
	}
}

// Issue runs workers that issue, in parallel, the invoices of the approvals handed to
// them (by Apply and Sweep), until ctx is done. A failed issue is logged; the approval
// stays pending for the sweeper.
func (l *ledger) Issue(ctx context.Context, workers int) error {
	service.Workers(ctx, workers, l.approved, func(ctx context.Context, p pendingInvoice) {
		if err := l.issuePending(ctx, p); err != nil && ctx.Err() == nil {
			l.logger.Warn("issue an invoice (the sweeper tries again)", "order_id", p.approval.OrderID, "error", err)
		}
	})
	return nil
}

// pendingAfter is how long an approval waits after it was handed to an issuer before the
// sweeper hands it again (the issuers normally issued it at once).
const pendingAfter = 2 * time.Second

// sweepBatch is how many pending approvals one claim takes at most.
const sweepBatch = 100

// Sweep hands to the issuers, at once and then every interval until ctx is done, the
// approvals that are still pending: at first everything pending (left by a stopped
// process), then those handed more than pendingAfter ago (lost hand-overs and failed
// issues). It takes no more than the issuers have room for, and claims what it takes
// (claimPending), so that several replicas may sweep at once. A failed sweep is logged
// and tried again at the next tick.
func (l *ledger) Sweep(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for before := time.Now(); ; before = time.Now().Add(-pendingAfter) {
		if err := l.sweep(ctx, before); err != nil && ctx.Err() == nil {
			l.logger.Warn("sweep pending invoices", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sweep hands the approvals last handed before the given time to the issuers, batch by
// batch while batches come full and the issuers have room.
func (l *ledger) sweep(ctx context.Context, before time.Time) error {
	for {
		room := min(sweepBatch, cap(l.approved)-len(l.approved))
		if room == 0 {
			return nil
		}
		claimed, err := l.store.claimPending(ctx, before, room)
		if err != nil {
			return err
		}
		for _, p := range claimed {
			select {
			case l.approved <- p:
			case <-ctx.Done():
				return nil
			}
		}
		if len(claimed) < room {
			return nil
		}
	}
}

// issuePending issues the invoice of p unless it is no longer pending, and stores it, in
// a span of the approval's trace (its metadata's traceparent), so that the invoice joins
// the order's trace though an issuer, not the consumer, writes it.
func (l *ledger) issuePending(ctx context.Context, p pendingInvoice) (err error) {
	ctx, span := telemetry.StartSpanAfter(ctx, p.metadata.TraceParent, "accounting issue invoice", registry.Accounting,
		attribute.String("msdemo.order_id", string(p.approval.OrderID)))
	defer func() { telemetry.EndSpan(span, err) }()
	pending, err := l.store.stillPending(ctx, p.approval.OrderID)
	if err != nil || !pending {
		return err
	}
	inv, version, err := l.issue(ctx, p)
	if err != nil {
		return err
	}
	return l.store.addIssued(ctx, inv, version)
}

// issue appends the invoice of the pending approval p and returns it with its stream
// version.
func (l *ledger) issue(ctx context.Context, p pendingInvoice) (Invoice, int64, error) {
	a := p.approval
	if l.beforeIssue != nil {
		if err := l.beforeIssue(ctx, a.OrderID); err != nil {
			return Invoice{}, 0, fmt.Errorf("issue invoice for order %s: %w", a.OrderID, err)
		}
	}
	inv := a.Invoice(p.approvedAt)
	data, err := json.Marshal(inv)
	if err != nil {
		return Invoice{}, 0, fmt.Errorf("encode invoice %s: %w", a.OrderID, err)
	}
	none := int64(0)
	req := event.AppendRequest{Stream: InvoiceStream(a.OrderID), ExpectedVersion: &none, Events: []event.New{{
		ID: InvoiceEventID(a.OrderID), Type: event.InvoiceIssued, Data: data,
		Metadata: event.Metadata{CorrelationID: p.metadata.CorrelationID, CausationID: p.eventID,
			User: p.metadata.User},
	}}}
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	reply, err := l.events.Append(ctx, req)
	switch {
	case err != nil:
		return Invoice{}, 0, fmt.Errorf("issue invoice for order %s: %w", a.OrderID, err)
	case reply.OK: // new, or a duplicate of the same (deterministic) invoice
		return inv, reply.FirstVersion, nil
	case reply.Error == event.ErrWrongExpectedVersion:
		return l.storedInvoice(ctx, a.OrderID)
	default:
		return Invoice{}, 0, fmt.Errorf("issue invoice for order %s: the event store answered %s %s",
			a.OrderID, reply.Error, reply.Message)
	}
}

// storedInvoice reads the order's invoice from its stream in the event store: the one
// that is there, when the stream was written by an event other than ours.
func (l *ledger) storedInvoice(ctx context.Context, id OrderID) (Invoice, int64, error) {
	events, _, err := l.events.Stream(ctx, InvoiceStream(id))
	if err != nil {
		return Invoice{}, 0, fmt.Errorf("read the invoice of order %s: %w", id, err)
	}
	for _, e := range events {
		if e.Type == event.InvoiceIssued {
			inv, err := ParseIssued(e.Stream, e.Data)
			return inv, e.Version, err
		}
	}
	return Invoice{}, 0, fmt.Errorf("stream %s exists but holds no %s", InvoiceStream(id), event.InvoiceIssued)
}

// deadLetter puts e into the dead-letter queue of the service's event queue, as the bus
// does with a message that failed live, so that a manager sees it and can replay it.
func (l *ledger) deadLetter(ctx context.Context, e event.Stored, cause error) error {
	l.logger.ErrorContext(ctx, "malformed event; dead-lettered", "type", e.Type, "event_id", e.ID,
		"position", e.Position, "error", cause)
	if l.bus == nil {
		return nil
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	msg := bus.Message{ID: e.ID, Type: e.Type, Body: body, Headers: map[string]any{"x-msdemo-error": cause.Error()}}
	if err := l.bus.Publish(ctx, bus.DeadExchange, l.queue, msg); err != nil {
		return fmt.Errorf("dead-letter %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}
