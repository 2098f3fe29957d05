package accounting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
)

// eventTypes are the events the ledger applies.
var eventTypes = []string{typeOrderApproved, typeInvoiceIssued}

// appendTimeout bounds the wait for the event store's reply to an invoice.
const appendTimeout = 10 * time.Second

// ledger keeps the read model up to date, and issues the invoice of each approved order
// while doing so: it is the subscription's eventclient.ReadModel.
//
// order.approved: unless the read model has the order's invoice, append invoice.issued to
// "invoice-<order_id>" with expected version 0 and the order's fixed event id, then store
// the invoice and the approval's position in one transaction (the service applies its own
// write at once). A redelivered approval finds the invoice and changes nothing; one that
// comes before the invoice reached the read model (after a crash, or a rebuild) gets the
// store's "duplicate" reply, or a version conflict, and stores the invoice then.
//
// invoice.issued: stored unless the read model has that version of the invoice's stream
// (it usually has: the service issued it itself).
//
// An event whose data breaks the contract is dead-lettered at once (bus.ErrPermanent).
// During catch-up, which has no queue to reject into, the ledger publishes it to the
// dead-letter queue itself and goes on; the managers see and replay it the same way.
type ledger struct {
	store  *Store
	logger *slog.Logger
	// events issues invoices; nil (Rebuild) only applies what the store holds.
	events *eventclient.Client
	// bus and queue dead-letter malformed events during catch-up: nil bus logs them.
	bus   *bus.Conn
	queue string
	// caughtUp is closed when the subscription follows the bus live.
	caughtUp <-chan struct{}
	// beforeIssue, if set, runs before each invoice is issued; an error fails the
	// approval's handling (tests use it to hold a cause of failure).
	beforeIssue func(ctx context.Context, id OrderID) error
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
	case typeInvoiceIssued:
		inv, err := ParseIssued(e.Stream, e.Data)
		if err != nil {
			return err
		}
		return l.store.AddInvoice(ctx, storeID, e.Position, inv, e.Version)
	case typeOrderApproved:
		a, err := ParseApproved(e.Stream, e.Data)
		if err != nil {
			return err
		}
		if l.events == nil {
			return l.store.Skip(ctx, storeID, e.Position) // its invoice.issued follows in the feed
		}
		if has, err := l.store.HasInvoice(ctx, a.OrderID); err != nil || has {
			if err != nil {
				return err
			}
			return l.store.Skip(ctx, storeID, e.Position)
		}
		inv, version, err := l.issue(ctx, a, e)
		if err != nil {
			return err
		}
		return l.store.AddInvoice(ctx, storeID, e.Position, inv, version)
	default:
		return l.store.Skip(ctx, storeID, e.Position)
	}
}

// issue appends the invoice of the approval a (event approved) and returns it with its
// stream version.
func (l *ledger) issue(ctx context.Context, a Approved, approved event.Stored) (Invoice, int64, error) {
	if l.beforeIssue != nil {
		if err := l.beforeIssue(ctx, a.OrderID); err != nil {
			return Invoice{}, 0, fmt.Errorf("issue invoice for order %s: %w", a.OrderID, err)
		}
	}
	inv := a.Invoice(approved.RecordedAt)
	data, err := json.Marshal(inv)
	if err != nil {
		return Invoice{}, 0, fmt.Errorf("encode invoice %s: %w", a.OrderID, err)
	}
	none := int64(0)
	req := event.AppendRequest{Stream: InvoiceStream(a.OrderID), ExpectedVersion: &none, Events: []event.New{{
		ID: InvoiceEventID(a.OrderID), Type: typeInvoiceIssued, Data: data,
		Metadata: event.Metadata{CorrelationID: approved.Metadata.CorrelationID, CausationID: approved.ID,
			User: approved.Metadata.User},
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
		if e.Type == typeInvoiceIssued {
			inv, err := ParseIssued(e.Stream, e.Data)
			return inv, e.Version, err
		}
	}
	return Invoice{}, 0, fmt.Errorf("stream %s exists but holds no %s", InvoiceStream(id), typeInvoiceIssued)
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
