package customer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
)

// participant is the read model as the running service keeps it: it applies events like
// store.Apply and takes the customer's part in the order saga (DESIGN.md, "The order
// saga") while it does:
//
//   - order.placed: the order's customer reserves the order's total
//     (customer.credit-reserved, which takes the credit at once) or rejects it
//     (customer.credit-rejected, "not enough credit"); an unknown customer is logged
//     and skipped (the order times out); an order answered before changes nothing.
//   - order.rejected: a reservation held for the order is released
//     (customer.credit-released).
//
// A decision is appended to the customer's stream with the read model's version of it as
// the expected version, and with an id made from the order id (ReserveCredit), so that a
// decision made again after a crash is stored once. The appended event is applied at
// once, in the MULTI/EXEC that moves the checkpoint past the order event, so the next
// order of the customer is decided on the credit left. When the stream has moved on (a
// manager set the credit meanwhile), the participant reads the stream from the event
// store, applies what the read model lacks and decides again.
type participant struct {
	users  *store
	events *eventclient.Client
	logger *slog.Logger
}

var _ eventclient.ReadModel = (*participant)(nil)

// Checkpoint returns the read model's checkpoint.
func (p *participant) Checkpoint(ctx context.Context) (string, int64, error) {
	return p.users.Checkpoint(ctx)
}

// Reset empties the read model.
func (p *participant) Reset(ctx context.Context, storeID string) error {
	return p.users.Reset(ctx, storeID)
}

// Apply applies e, and the saga's decision it leads to, with the checkpoint.
func (p *participant) Apply(ctx context.Context, storeID string, e event.Stored) error {
	switch e.Type {
	case event.OrderPlaced:
		var o OrderPlaced
		if !p.decode(e, &o, &o.OrderID, &o.Customer) {
			break
		}
		return p.settle(ctx, storeID, e, o.Customer, o.OrderID, func(c Customer, r Reservation) (event.New, bool) {
			if c.Version == 0 {
				p.logger.Warn("order of an unknown customer: not answered", "order_id", o.OrderID, "customer", o.Customer)
				return event.New{}, false
			}
			return ReserveCredit(c, r, o)
		})
	case event.OrderRejected:
		var o OrderRejected
		if !p.decode(e, &o, &o.OrderID, &o.Customer) {
			break
		}
		return p.settle(ctx, storeID, e, o.Customer, o.OrderID, func(_ Customer, r Reservation) (event.New, bool) {
			return ReleaseCredit(r, o.OrderID)
		})
	}
	if username, isCustomer := UsernameOf(e.Stream); isCustomer {
		// Most customer events come back from the bus after the service applied them at
		// once (its own decisions): those only move the checkpoint.
		if skipped, err := p.users.skipApplied(ctx, storeID, username, e); err != nil || skipped {
			return err
		}
	}
	return p.users.Apply(ctx, storeID, e)
}

// decode reads e's data into v and reports whether the order id and the customer it
// names are usable; an event that is not is logged (and then only moves the checkpoint).
func (p *participant) decode(e event.Stored, v any, orderID, customer *string) bool {
	err := json.Unmarshal(e.Data, v)
	if err == nil && *orderID != "" && ValidUsername(*customer) {
		return true
	}
	p.logger.Error("order event without a usable order_id and customer: skipped", "type", e.Type,
		"stream", e.Stream, "position", e.Position, "error", err)
	return false
}

// settle applies order event e with the decision about username's order orderID that
// decide makes; when the customer's stream has moved on, it catches the customer up from
// the event store and decides again (eventclient.DecideOnStream).
func (p *participant) settle(ctx context.Context, storeID string, e event.Stored, username, orderID string,
	decide func(Customer, Reservation) (event.New, bool)) error {
	write := func(ctx context.Context, c Customer, decision event.New) (*event.Stored, error) {
		return p.append(ctx, c, decision, e)
	}
	err := p.events.DecideOnStream(ctx, Stream(username),
		func() error { return p.users.decideOrder(ctx, storeID, e, username, orderID, decide, write) },
		func(events []event.Stored) error {
			p.logger.Debug("customer stream moved on: catching up", "customer", username, "order_id", orderID)
			return p.users.applyStream(ctx, username, events)
		})
	if err != nil {
		return fmt.Errorf("answer order %s for %s: %w", orderID, username, err)
	}
	return nil
}

// append appends decision d, caused by trigger, to c's stream at c's version
// (eventclient.AppendDecision).
func (p *participant) append(ctx context.Context, c Customer, d event.New, trigger event.Stored) (*event.Stored, error) {
	stored, err := p.events.AppendDecision(ctx, Stream(c.Username), c.Version, d, &trigger)
	if stored != nil {
		p.logger.Debug("order answered", "customer", c.Username, "type", d.Type, "version", stored.Version)
	}
	return stored, err
}
