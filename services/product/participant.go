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
//   - order.placed: each line's product reserves the units (product.stock-reserved,
//     which takes them from the stock at once) or rejects the line
//     (product.stock-rejected: "product deleted", "price changed" or "out of stock"),
//     until a line is rejected (reserve); an unknown product is logged and skipped (the
//     order service refuses those before they are placed; the saga timeout covers the
//     rest); a line answered before changes nothing.
//   - order.rejected: every reservation held for the order is released
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

// Apply applies e, and the saga's decisions it leads to, with the checkpoint.
func (p *participant) Apply(ctx context.Context, storeID string, e event.Stored) error {
	switch e.Type {
	case event.OrderPlaced:
		var o OrderPlacedData
		if err := json.Unmarshal(e.Data, &o); err != nil || o.OrderID == "" {
			p.logger.Error("order.placed without a usable order_id: skipped", "stream", e.Stream,
				"position", e.Position, "error", err)
			break
		}
		return p.reserve(ctx, storeID, e, o)
	case event.OrderRejected:
		var o OrderRejectedData
		if err := json.Unmarshal(e.Data, &o); err != nil || o.OrderID == "" {
			p.logger.Error("order.rejected without a usable order_id: skipped", "stream", e.Stream,
				"position", e.Position, "error", err)
			break
		}
		return p.release(ctx, storeID, e, o.OrderID)
	}
	return p.store.Apply(ctx, storeID, e)
}

// reserve answers order.placed e of order o, line by line in the order's order: each
// line's product reserves its units or rejects the line. After the first line that
// cannot be reserved (rejected, or of an unknown product) the rest are not answered: the
// order will be rejected, and what the earlier lines hold released (release). The
// checkpoint moves past e with the last answer, so a crash between two lines answers the
// rest when e comes again (the lines answered before are not answered twice).
func (p *participant) reserve(ctx context.Context, storeID string, e event.Stored, o OrderPlacedData) error {
	lines := o.All()
	for i, l := range lines {
		id := ProductID(l.ProductID)
		if !validID(string(id)) {
			p.logger.Warn("order of an unknown product: not answered", "order_id", o.OrderID, "product_id", id)
			break
		}
		last, stop := i == len(lines)-1, false
		err := p.settle(ctx, storeID, e, id, o.OrderID, last, func(s Stock, r Reservation, found bool) (event.New, bool) {
			if !found {
				p.logger.Warn("order of an unknown product: not answered", "order_id", o.OrderID, "product_id", id)
				stop = true
				return event.New{}, false
			}
			d, ok := ReserveStock(s, r, o.OrderID, l)
			stop = ok && d.Type == event.ProductStockRejected || !ok && r.State == Rejected
			return d, ok
		})
		if err != nil || last {
			return err
		}
		if stop {
			break
		}
	}
	return p.store.Apply(ctx, storeID, e)
}

// release answers order.rejected e of order orderID: every line's reservation held for it
// is released (product.stock-released), the checkpoint moving with the last.
func (p *participant) release(ctx context.Context, storeID string, e event.Stored, orderID string) error {
	rs, err := p.store.OrderReservations(ctx, orderID)
	if err != nil {
		return err
	}
	for i, r := range rs { // none: this service never answered the order, nothing to release
		last := i == len(rs)-1
		err := p.settle(ctx, storeID, e, r.ProductID, orderID, last, func(_ Stock, r Reservation, _ bool) (event.New, bool) {
			return ReleaseStock(r)
		})
		if err != nil || last {
			return err
		}
	}
	return p.store.Apply(ctx, storeID, e)
}

// settle applies order event e with the decision about product id's record of order
// orderID that decide makes, moving the checkpoint past e if last; when the product's
// stream has moved on, it catches the product up from the event store and decides again
// (eventclient.DecideOnStream).
func (p *participant) settle(ctx context.Context, storeID string, e event.Stored, id ProductID, orderID string,
	last bool, decide func(Stock, Reservation, bool) (event.New, bool)) error {
	write := func(ctx context.Context, version int64, decision event.New) (*event.Stored, error) {
		return p.append(ctx, id, version, decision, e)
	}
	err := p.events.DecideOnStream(ctx, productStream(id),
		func() error { return p.store.decideOrder(ctx, storeID, e, id, orderID, last, decide, write) },
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
