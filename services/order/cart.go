package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/service"
)

// A customer's cart is the stream cart-<username> of the order service: cart.line-set,
// cart.line-removed and cart.checked-out (internal/event, types.go). It lives in events,
// like everything else the shop keeps, so it is the same on every device and replica,
// survives any restart, and is rebuilt with the read model; the tables carts and
// cart_versions are its read model. The order service owns it because checking out is
// placing an order: one service, one write path, no call between services.
//
// Checking out is two appends, order.placed and then cart.checked-out, made safe to
// repeat: the order's id is made from the customer and the cart's version (CartOrderID),
// and its events' ids from the order's, so a checkout sent again, or retried after a
// crash between the two appends, places the same order once and empties the cart once.
// cart.checked-out takes out the ordered quantities, not everything: what another tab
// added meanwhile stays in the cart.

// cartStream returns the stream of customer's cart.
func cartStream(customer string) string { return event.Cart.Stream(customer) }

// CartLine is a line of a cart as GET /cart shows it: the product's current name and
// price; Available is false for a product deleted since it was put in the cart (checkout
// refuses it until it is removed).
type CartLine struct {
	ProductID      string `json:"product_id"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	Available      bool   `json:"available"`
}

// Cart is a customer's cart: its lines in the order they were first put in, the total of
// the available ones at today's prices, and the version of its stream.
type Cart struct {
	Lines      []CartLine `json:"lines"`
	TotalCents int64      `json:"total_cents"`
	Version    int64      `json:"version"`
}

// cartLineData is the data of cart.line-set (and of cart.line-removed, without quantity).
type cartLineData struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity,omitempty"`
}

// checkedOutData is the data of cart.checked-out.
type checkedOutData struct {
	OrderID OrderID  `json:"order_id"`
	Lines   []Wanted `json:"lines"`
}

// cartNamespace makes the id of the order of a checkout (CartOrderID).
var cartNamespace = idgen.NewNamespace("0c5d7e2a-9b41-4f6e-8a3d-5e1f7c9b2d48")

// CartOrderID is the id of the order placed by checking out customer's cart at version:
// the same for every try of that checkout.
func CartOrderID(customer string, version int64) OrderID {
	return OrderID(cartNamespace.ShortID(customer+"/"+strconv.FormatInt(version, 10), idLen))
}

// applyCart applies e, an event of a customer's cart, unless the read model has applied
// it (by the cart's version).
func applyCart(ctx context.Context, tx pgx.Tx, e event.Stored) error {
	customer, ok := event.Cart.ID(e.Stream)
	if !ok {
		return nil
	}
	var version int64
	err := tx.QueryRow(ctx, `SELECT version FROM cart_versions WHERE customer = $1 FOR UPDATE`, customer).Scan(&version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read the cart of %s: %w", customer, err)
	}
	if e.Version <= version {
		return nil
	}
	switch e.Type {
	case event.CartLineSet, event.CartLineRemoved:
		var d cartLineData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("decode %s: %v: %w", e.Type, err, bus.ErrPermanent)
		}
		if e.Type == event.CartLineRemoved {
			_, err = tx.Exec(ctx, `DELETE FROM carts WHERE customer = $1 AND product_id = $2`, customer, d.ProductID)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO carts (customer, product_id, quantity, added) VALUES ($1, $2, $3, $4)
				ON CONFLICT (customer, product_id) DO UPDATE SET quantity = $3`, customer, d.ProductID, d.Quantity, e.Position)
		}
	case event.CartCheckedOut:
		var d checkedOutData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("decode %s: %v: %w", e.Type, err, bus.ErrPermanent)
		}
		for _, l := range d.Lines {
			if err != nil {
				break
			}
			_, err = tx.Exec(ctx, `UPDATE carts SET quantity = quantity - $3 WHERE customer = $1 AND product_id = $2`,
				customer, l.ProductID, l.Quantity)
		}
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM carts WHERE customer = $1 AND quantity <= 0`, customer)
		}
	}
	if err == nil {
		_, err = tx.Exec(ctx, `INSERT INTO cart_versions (customer, version) VALUES ($1, $2)
			ON CONFLICT (customer) DO UPDATE SET version = $2`, customer, e.Version)
	}
	if err != nil {
		return fmt.Errorf("apply %s to the cart of %s: %w", e.Type, customer, err)
	}
	return nil
}

// Cart returns customer's cart (empty, at version 0, when there is none).
func (s *Store) Cart(ctx context.Context, customer string) (Cart, error) {
	c := Cart{Lines: []CartLine{}}
	err := s.pool.QueryRow(ctx, `SELECT version FROM cart_versions WHERE customer = $1`, customer).Scan(&c.Version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Cart{}, fmt.Errorf("read the cart of %s: %w", customer, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT c.product_id, coalesce(p.name, ''), c.quantity, coalesce(p.price_cents, 0),
			coalesce(NOT p.deleted, false)
		FROM carts c LEFT JOIN prices p ON p.product_id = c.product_id
		WHERE c.customer = $1 ORDER BY c.added`, customer)
	if err != nil {
		return Cart{}, fmt.Errorf("read the cart of %s: %w", customer, err)
	}
	c.Lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (CartLine, error) {
		var l CartLine
		err := row.Scan(&l.ProductID, &l.Name, &l.Quantity, &l.UnitPriceCents, &l.Available)
		return l, err
	})
	if err != nil {
		return Cart{}, fmt.Errorf("read the cart of %s: %w", customer, err)
	}
	for _, l := range c.Lines {
		if l.Available {
			c.TotalCents += l.Quantity * l.UnitPriceCents
		}
	}
	return c, nil
}

// cartQuantity is the body of PUT /cart/lines/{product_id}.
type cartQuantity struct {
	Quantity *int64 `json:"quantity"`
}

// handleCartShow serves GET /cart: the caller's cart.
func handleCartShow(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.FromContext(r.Context())
		cart, err := store.Cart(r.Context(), c.User)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusOK, cart)
	})
}

// maxCartTries bounds how often a cart write is tried again when another write to the
// same cart came first.
const maxCartTries = 3

// handleCartSet serves PUT /cart/lines/{product_id} {quantity}: the product is in the
// caller's cart with that quantity (1 to MaxQuantity); 200 with the cart. A product that
// does not exist or was deleted, a bad quantity, or a product more than MaxLines in the
// cart is 400, and the cart does not change.
func handleCartSet(rt *service.Runtime, store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		productID := chi.URLParam(r, "product_id")
		var in cartQuantity
		if err := service.Decode(r, &in); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		if errs := map[string]string{}; !(LineInput{ProductID: &productID, Quantity: in.Quantity}).check(errs, "") {
			service.Error(w, r, logger, service.FieldErrors(errs))
			return
		}
		if _, err := priceForOrder(r.Context(), rt, store, productID); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		c, _ := auth.FromContext(r.Context())
		set := service.NewEvent(event.CartLineSet, cartLineData{ProductID: productID, Quantity: *in.Quantity})
		writeCart(w, r, rt, store, logger, c.User, func(cart Cart) (*event.New, error) {
			if len(cart.Lines) >= MaxLines && !cart.has(productID) {
				return nil, service.FieldErrors{"product_id": fmt.Sprintf("the cart holds %d products at most", MaxLines)}
			}
			return &set, nil
		})
	})
}

// handleCartRemove serves DELETE /cart/lines/{product_id}: the product leaves the
// caller's cart; 200 with the cart (also when it was not in it).
func handleCartRemove(rt *service.Runtime, store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		productID := chi.URLParam(r, "product_id")
		c, _ := auth.FromContext(r.Context())
		removed := service.NewEvent(event.CartLineRemoved, cartLineData{ProductID: productID})
		writeCart(w, r, rt, store, logger, c.User, func(cart Cart) (*event.New, error) {
			if !cart.has(productID) {
				return nil, nil
			}
			return &removed, nil
		})
	})
}

// has reports whether product id is in the cart.
func (c Cart) has(id string) bool {
	for _, l := range c.Lines {
		if l.ProductID == id {
			return true
		}
	}
	return false
}

// writeCart appends what change makes of customer's cart (nil: nothing) at the version it
// was read at, reading it again when another write came first, and answers 200 with the
// cart as it is then.
func writeCart(w http.ResponseWriter, r *http.Request, rt *service.Runtime, store *Store, logger *slog.Logger,
	customer string, change func(Cart) (*event.New, error)) {
	for try := 1; ; try++ {
		cart, err := store.Cart(r.Context(), customer)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		e, err := change(cart)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		if e == nil {
			httpjson.Write(w, http.StatusOK, cart)
			return
		}
		_, err = rt.Write(r.Context(), cartStream(customer), &cart.Version, *e)
		var conflict *service.ConflictError
		switch {
		case errors.As(err, &conflict) && try < maxCartTries:
			if err := waitForStream(r.Context(), rt, cartStream(customer)); err != nil {
				service.Error(w, r, logger, err)
				return
			}
			continue
		case err != nil:
			service.Error(w, r, logger, err)
			return
		}
		if cart, err = store.Cart(r.Context(), customer); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusOK, cart)
		return
	}
}

// waitForStream waits until the read model has applied every event of stream that the
// event store holds now (one written by another request or replica).
func waitForStream(ctx context.Context, rt *service.Runtime, stream string) error {
	events, found, err := rt.Events.Stream(ctx, stream)
	switch {
	case err != nil:
		return errors.Join(err, service.ErrUnavailable)
	case !found:
		return nil
	}
	if err := rt.WaitApplied(ctx, events[len(events)-1].Position); err != nil {
		return errors.Join(err, service.ErrUnavailable)
	}
	return nil
}

// handleCheckout serves POST /cart/checkout: one order of every line of the caller's
// cart, which then leaves the cart; 202 {id, status: pending} as POST /orders. An empty
// cart, or one with a product deleted since, is 400 and places nothing. Sent again after
// a failure half-way, it places no second order (CartOrderID).
func handleCheckout(rt *service.Runtime, store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.FromContext(r.Context())
		cart, err := store.Cart(r.Context(), c.User)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		if len(cart.Lines) == 0 {
			service.Error(w, r, logger, service.FieldErrors{"lines": "the cart is empty"})
			return
		}
		wanted := make([]Wanted, len(cart.Lines))
		for i, l := range cart.Lines {
			wanted[i] = Wanted{ProductID: l.ProductID, Quantity: l.Quantity}
		}
		lines, err := priceLines(r.Context(), rt, store, wanted, func(i int, name string) string {
			return fmt.Sprintf("lines.%d.%s", i, name)
		})
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		id := CartOrderID(c.User, cart.Version)
		if err := placeOrder(r.Context(), rt, id, c.User, lines); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		checkedOut := newEvent(decisionNamespace.ID(string(id)+"/checked-out"), event.CartCheckedOut,
			checkedOutData{OrderID: id, Lines: wanted})
		if _, err := rt.Write(r.Context(), cartStream(c.User), nil, checkedOut); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		writePlaced(w, id)
	})
}
