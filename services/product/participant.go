package product

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
)

// participant is the read model as the running service keeps it: it applies events like
// Store.Apply and takes the product's part in the order saga (DESIGN.md, "The order
// saga") while it does:
//
//   - order.placed: the order's product reserves the units (product.stock-reserved,
//     which takes them from the stock at once) or rejects the order
//     (product.stock-rejected: "product deleted", "price changed" or "out of stock"); an
//     unknown product is logged and skipped (the order service refuses those before they
//     are placed; the saga timeout covers the rest); an order answered before changes
//     nothing.
//   - order.rejected: a reservation held for the order is released
//     (product.stock-released).
//
// A decision is appended to the product's stream with the read model's version of it as
// the expected version, and with an id made from the order id (ReserveStock), so that a
// decision made again after a crash is stored once. The appended event is applied at
// once, in the transaction that moves the checkpoint past the order event, so the next
// order of the product is decided on the units left. When the stream has moved on (a
// manager updated the product meanwhile), the participant reads the stream from the
// event store, applies what the read model lacks and decides again.
type participant struct {
	store  *Store
	events *eventclient.Client
	logger *slog.Logger
}

var _ eventclient.ReadModel = (*participant)(nil)

// Checkpoint returns the read model's checkpoint.
func (p *participant) Checkpoint(ctx context.Context) (string, int64, error) {
	return p.store.Checkpoint(ctx)
}

// Reset empties the read model.
func (p *participant) Reset(ctx context.Context, storeID string) error {
	return p.store.Reset(ctx, storeID)
}

// Apply applies e, and the saga's decision it leads to, with the checkpoint.
func (p *participant) Apply(ctx context.Context, storeID string, e event.Stored) error {
	switch e.Type {
	case event.OrderPlaced:
		var o OrderPlacedData
		if err := json.Unmarshal(e.Data, &o); err != nil || o.OrderID == "" {
			p.logger.Error("order.placed without a usable order_id: skipped", "stream", e.Stream,
				"position", e.Position, "error", err)
			break
		}
		if !validID(string(o.ProductID)) {
			p.logger.Warn("order of an unknown product: not answered", "order_id", o.OrderID, "product_id", o.ProductID)
			break
		}
		return p.settle(ctx, storeID, e, o.ProductID, o.OrderID, func(s Stock, r Reservation, found bool) (event.New, bool) {
			if !found {
				p.logger.Warn("order of an unknown product: not answered", "order_id", o.OrderID, "product_id", o.ProductID)
				return event.New{}, false
			}
			return ReserveStock(s, r, o)
		})
	case event.OrderRejected:
		var o OrderRejectedData
		if err := json.Unmarshal(e.Data, &o); err != nil || o.OrderID == "" {
			p.logger.Error("order.rejected without a usable order_id: skipped", "stream", e.Stream,
				"position", e.Position, "error", err)
			break
		}
		r, found, err := p.store.OrderReservation(ctx, o.OrderID)
		if err != nil {
			return err
		}
		if !found {
			break // this service never answered the order: nothing to release
		}
		return p.settle(ctx, storeID, e, r.ProductID, o.OrderID, func(_ Stock, r Reservation, _ bool) (event.New, bool) {
			return ReleaseStock(r)
		})
	}
	return p.store.Apply(ctx, storeID, e)
}

// settle applies order event e with the decision about product id's record of order
// orderID that decide makes; when the product's stream has moved on, it catches the
// product up from the event store and decides again (eventclient.DecideOnStream).
func (p *participant) settle(ctx context.Context, storeID string, e event.Stored, id ProductID, orderID string,
	decide func(Stock, Reservation, bool) (event.New, bool)) error {
	write := func(ctx context.Context, version int64, decision event.New) (*event.Stored, error) {
		return p.append(ctx, id, version, decision, e)
	}
	err := p.events.DecideOnStream(ctx, productStream(id),
		func() error { return p.store.decideOrder(ctx, storeID, e, id, orderID, decide, write) },
		func(events []event.Stored) error {
			p.logger.Debug("product stream moved on: catching up", "product_id", id, "order_id", orderID)
			return p.store.applyStream(ctx, events)
		})
	if err != nil {
		return fmt.Errorf("answer order %s for product %s: %w", orderID, id, err)
	}
	return nil
}

// append appends decision d, caused by trigger, to product id's stream at version
// (eventclient.AppendDecision).
func (p *participant) append(ctx context.Context, id ProductID, version int64, d event.New, trigger event.Stored) (*event.Stored, error) {
	stored, err := p.events.AppendDecision(ctx, productStream(id), version, d, &trigger)
	if stored != nil {
		p.logger.Debug("order answered", "product_id", id, "type", d.Type, "version", stored.Version)
	}
	return stored, err
}
