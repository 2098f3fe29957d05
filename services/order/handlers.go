package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// placed is the body of the 202 that answers POST /orders.
type placed struct {
	ID     OrderID `json:"id"`
	Status Status  `json:"status"`
}

// handleOrderPlace serves POST /orders {lines: [{product_id, quantity}, ...]} (or the
// one-product form {product_id, quantity}): 202 {id, status: pending} with Location
// /order/orders/<id>, once the read model shows the order. Bad input, and a product that
// does not exist or was deleted, is 400 with the fields, and nothing is appended.
func handleOrderPlace(rt *service.Runtime, store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in PlaceOrder
		if err := service.Decode(r, &in); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		wanted, errs := in.Wanted()
		if len(errs) > 0 {
			service.Error(w, r, logger, service.FieldErrors(errs))
			return
		}
		field := func(i int, name string) string { return fmt.Sprintf("lines.%d.%s", i, name) }
		if len(in.Lines) == 0 {
			field = func(_ int, name string) string { return name }
		}
		lines, err := priceLines(r.Context(), rt, store, wanted, field)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		c, _ := auth.FromContext(r.Context())
		for try := 1; ; try++ {
			id := newOrderID()
			err := placeOrder(r.Context(), rt, id, c.User, lines)
			var conflict *service.ConflictError
			if errors.As(err, &conflict) && try < 3 {
				continue // the random id is taken: draw another
			}
			if err != nil {
				service.Error(w, r, logger, err)
				return
			}
			writePlaced(w, id)
			return
		}
	})
}

// placeOrder appends order id of customer with lines to a new stream; a stream of that id
// that holds other events is a *service.ConflictError.
func placeOrder(ctx context.Context, rt *service.Runtime, id OrderID, customer string, lines []Line) error {
	expectNew := int64(0)
	_, err := rt.Write(ctx, Stream(id), &expectNew, Place(id, customer, lines)...)
	return err
}

// writePlaced answers that order id was placed: 202 {id, status: pending}.
func writePlaced(w http.ResponseWriter, id OrderID) {
	w.Header().Set("Location", "/order/orders/"+string(id))
	httpjson.Write(w, http.StatusAccepted, placed{ID: id, Status: Pending})
}

// priceLines prices the wanted lines for a new order, or returns FieldErrors (keyed by
// field(i, "product_id"), i the line's place in the input) for the products that do not
// exist or were deleted: such an order is refused, not placed.
func priceLines(ctx context.Context, rt *service.Runtime, store *Store, wanted []Wanted, field func(i int, name string) string) ([]Line, error) {
	lines := make([]Line, 0, len(wanted))
	errs := service.FieldErrors{}
	for _, w := range wanted {
		p, err := priceForOrder(ctx, rt, store, w.ProductID)
		var fields service.FieldErrors
		switch {
		case errors.As(err, &fields):
			errs[field(w.at, "product_id")] = fields["product_id"]
			continue
		case err != nil:
			return nil, err
		}
		lines = append(lines, Line{ProductID: w.ProductID, Name: p.Name, Quantity: w.Quantity, UnitPriceCents: p.Cents})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return lines, nil
}

// priceForOrder returns the name and price of product id for a new order, or
// FieldErrors{"product_id": ...} when the product does not exist or was deleted. The
// prices are a read model, which may not have heard yet of a product just added: one it
// does not know is looked up in the event store and, if the store holds it, waited for
// (Runtime.WaitApplied).
func priceForOrder(ctx context.Context, rt *service.Runtime, store *Store, id string) (Price, error) {
	p, err := store.Price(ctx, id)
	if err != nil || p.Known && !p.Deleted {
		return p, err
	}
	if p.Deleted {
		return Price{}, service.FieldErrors{"product_id": "the product was deleted"}
	}
	switch found, err := rt.WaitForStream(ctx, event.Product.Stream(id)); {
	case err != nil:
		return Price{}, err
	case !found:
		return Price{}, service.FieldErrors{"product_id": "no such product"}
	}
	switch p, err = store.Price(ctx, id); {
	case err != nil:
		return Price{}, err
	case p.Deleted:
		return Price{}, service.FieldErrors{"product_id": "the product was deleted"}
	case !p.Known:
		return Price{}, fmt.Errorf("product %s is in the event store but not in the prices: %w", id, service.ErrUnavailable)
	}
	return p, nil
}

// orderPage is the body of GET /orders.
type orderPage struct {
	Orders    []Order `json:"orders"`
	NextAfter string  `json:"next_after"` // "" on the last page
}

// handleOrderList serves GET /orders[?status=&limit=&after=]: a customer's own orders, or
// every order for a manager, newest first, without timelines.
func handleOrderList(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, after, err := service.PageParams(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		f := OrderFilter{Status: Status(r.URL.Query().Get("status"))}
		switch f.Status {
		case "", Pending, Approved, Rejected:
		default:
			service.Error(w, r, logger, service.FieldErrors{"status": "must be pending, approved or rejected"})
			return
		}
		if after != "" && !validOrderID(after) {
			service.Error(w, r, logger, service.FieldErrors{"after": "is not an order id"})
			return
		}
		c, _ := auth.FromContext(r.Context())
		if c.Role != auth.Manager {
			f.Customer = c.User
		}
		orders, more, err := store.Orders(r.Context(), f, limit, OrderID(after))
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		page := orderPage{Orders: orders}
		if page.Orders == nil {
			page.Orders = []Order{}
		}
		if more {
			page.NextAfter = string(orders[len(orders)-1].ID)
		}
		httpjson.Write(w, http.StatusOK, page)
	})
}

// handleOrderShow serves GET /orders/{id}: the order with its timeline, for its customer
// or a manager; anyone else gets 404, as for an order that does not exist. With "Prefer:
// wait=<seconds>" (RFC 7240) a pending order is shown once it is decided, or as it is
// after the wait (at most maxWait), so that a client need not poll; when maxWaiting
// requests wait already, it is shown at once.
func handleOrderShow(store *Store, watch *orderWatch, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := OrderID(chi.URLParam(r, "id"))
		if !validOrderID(string(id)) {
			service.Error(w, r, logger, service.ErrNotFound)
			return
		}
		o, err := store.Order(r.Context(), id)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		if c, _ := auth.FromContext(r.Context()); !c.May(o.Customer) {
			service.Error(w, r, logger, service.ErrNotFound)
			return
		}
		if wait := preferredWait(r); wait > 0 && o.Status == Pending {
			if done, ok := watch.startWaiting(); ok {
				o, err = awaitDecision(r, store, watch, id, wait)
				done()
				if err != nil {
					service.Error(w, r, logger, err)
					return
				}
				w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
			}
		}
		if o.Timeline == nil {
			o.Timeline = []TimelineEntry{}
		}
		httpjson.Write(w, http.StatusOK, o)
	})
}

// awaitDecision reads order id until it is no longer pending, the wait is over or the
// request ends, and returns it as last read.
func awaitDecision(r *http.Request, store *Store, watch *orderWatch, id OrderID, wait time.Duration) (Order, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		changed, stop := watch.watch(id)
		o, err := store.Order(r.Context(), id) // read after watching: no change is missed
		if err != nil || o.Status != Pending {
			stop()
			return o, err
		}
		select {
		case <-changed:
		case <-time.After(recheckEvery):
		case <-deadline.C:
			stop()
			return o, nil
		case <-r.Context().Done(): // the client left: what is written goes nowhere
			stop()
			return o, nil
		}
		stop()
	}
}
