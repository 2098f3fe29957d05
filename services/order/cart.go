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
// Checking out appends cart.checked-out, with the cart's lines at its prices and the
// order's id, at the version of the cart that was read (so the event empties the cart): it is the one record of the checkout, and a cart
// changed meanwhile (another tab) is a conflict, not an order of lines nobody saw. The
// order itself, order.placed, is appended after it, by the request and again, if it is
// missing, by the read model when it applies cart.checked-out (Saga.placeCheckedOut: an
// outbox), so a process that dies between the two appends loses no order. The order's
// id is made from the customer and the cart's version (CartOrderID) and its events' ids
// from the order's, so every try places one order.

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

// checkedOutData is the data of cart.checked-out: the order's id and its lines, priced.
type checkedOutData struct {
	OrderID OrderID `json:"order_id"`
	Lines   []Line  `json:"lines"`
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
	case event.CartCheckedOut: // appended at the version of the cart it orders: all of it
		_, err = tx.Exec(ctx, `DELETE FROM carts WHERE customer = $1`, customer)
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

// Cart returns customer's cart (empty, at version 0, when there is none): its version
// and lines as of one moment (one statement, so one snapshot, in one round trip).
func (s *Store) Cart(ctx context.Context, customer string) (Cart, error) {
	// One row per line, each with the version; one row of NULLs with the version when the
	// cart is empty.
	rows, err := s.pool.Query(ctx, `SELECT coalesce(v.version, 0), c.product_id, coalesce(p.name, ''),
			coalesce(c.quantity, 0), coalesce(p.price_cents, 0), coalesce(NOT p.deleted, false)
		FROM (SELECT $1::text AS customer) k
		LEFT JOIN cart_versions v ON v.customer = k.customer
		LEFT JOIN carts c ON c.customer = k.customer
		LEFT JOIN prices p ON p.product_id = c.product_id
		ORDER BY c.added`, customer)
	if err != nil {
		return Cart{}, fmt.Errorf("read the cart of %s: %w", customer, err)
	}
	c := Cart{Lines: []CartLine{}}
	var (
		productID *string
		l         CartLine
	)
	_, err = pgx.ForEachRow(rows, []any{&c.Version, &productID, &l.Name, &l.Quantity, &l.UnitPriceCents, &l.Available}, func() error {
		if productID != nil {
			l.ProductID = *productID
			c.Lines = append(c.Lines, l)
		}
		return nil
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

// checkCartLine returns FieldErrors when l may not go into a cart: a malformed product id
// or quantity, or a product that does not exist or was deleted.
func checkCartLine(ctx context.Context, rt *service.Runtime, store *Store, l LineInput) error {
	if errs := map[string]string{}; !l.check(errs, "") {
		return service.FieldErrors(errs)
	}
	_, err := priceForOrder(ctx, rt, store, *l.ProductID)
	return err
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
// same cart came first; after that it is a 409, to be sent again.
const maxCartTries = 5

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
		if err := checkCartLine(r.Context(), rt, store, LineInput{ProductID: &productID, Quantity: in.Quantity}); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		c, _ := auth.FromContext(r.Context())
		set := service.NewEvent(event.CartLineSet, cartLineData{ProductID: productID, Quantity: *in.Quantity})
		writeCart(w, r, rt, store, logger, c.User, func(cart Cart) (*event.New, error) {
			if len(cart.Lines) >= MaxLines && cart.quantityOf(productID) == 0 {
				return nil, service.FieldErrors{"product_id": fmt.Sprintf("the cart holds %d products at most", MaxLines)}
			}
			return &set, nil
		})
	})
}

// cartAddition is the body of POST /cart/lines.
type cartAddition struct {
	ProductID *string `json:"product_id"`
	Quantity  *int64  `json:"quantity"`
}

// handleCartAdd serves POST /cart/lines {product_id, quantity}: that many more units of
// the product in the caller's cart (what "Add to cart" does: two adds at once both
// count); 200 with the cart. It is refused (400, the cart unchanged) as PUT is, and when
// the line would exceed MaxQuantity.
func handleCartAdd(rt *service.Runtime, store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in cartAddition
		if err := service.Decode(r, &in); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		if err := checkCartLine(r.Context(), rt, store, LineInput(in)); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		c, _ := auth.FromContext(r.Context())
		writeCart(w, r, rt, store, logger, c.User, func(cart Cart) (*event.New, error) {
			had := cart.quantityOf(*in.ProductID)
			switch {
			case had == 0 && len(cart.Lines) >= MaxLines:
				return nil, service.FieldErrors{"product_id": fmt.Sprintf("the cart holds %d products at most", MaxLines)}
			case had+*in.Quantity > MaxQuantity:
				return nil, service.FieldErrors{"quantity": fmt.Sprintf("the cart would hold %d: at most %d of a product", had+*in.Quantity, MaxQuantity)}
			}
			set := service.NewEvent(event.CartLineSet, cartLineData{ProductID: *in.ProductID, Quantity: had + *in.Quantity})
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
			if cart.quantityOf(productID) == 0 {
				return nil, nil
			}
			return &removed, nil
		})
	})
}

// orderLines returns the cart's lines as an order's, at the prices the cart shows, or
// FieldErrors ("lines.<i>.product_id") for the products deleted since they were put in
// (every product was known when it was put in: handleCartSet, handleCartAdd).
func (c Cart) orderLines() ([]Line, error) {
	lines := make([]Line, 0, len(c.Lines))
	errs := service.FieldErrors{}
	for i, l := range c.Lines {
		if !l.Available {
			errs[fmt.Sprintf("lines.%d.product_id", i)] = "the product was deleted"
			continue
		}
		lines = append(lines, Line{ProductID: l.ProductID, Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPriceCents})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return lines, nil
}

// quantityOf returns how many of product id the cart holds (0: it is not in the cart).
func (c Cart) quantityOf(id string) int64 {
	for _, l := range c.Lines {
		if l.ProductID == id {
			return l.Quantity
		}
	}
	return 0
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
			if _, err := rt.WaitForStream(r.Context(), cartStream(customer)); err != nil {
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

// checkoutRequest is the body of POST /cart/checkout, which may be empty.
type checkoutRequest struct {
	// Version, if set, is the version of the cart the customer saw: a cart at another
	// version is not checked out (409).
	Version *int64 `json:"version"`
}

// handleCheckout serves POST /cart/checkout [{version}]: one order of every line of the
// caller's cart, which then leaves the cart; 202 {id, status: pending} as POST /orders.
// An empty cart, or one with a product deleted since, is 400 and places nothing; a cart
// that is not at the version given, or that changed while it was checked out, is 409.
func handleCheckout(rt *service.Runtime, store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in checkoutRequest
		if r.ContentLength != 0 {
			if err := service.Decode(r, &in); err != nil {
				service.Error(w, r, logger, err)
				return
			}
		}
		c, _ := auth.FromContext(r.Context())
		stream := cartStream(c.User)
		for try := 1; ; try++ {
			cart, err := store.Cart(r.Context(), c.User)
			if err == nil && in.Version != nil && cart.Version < *in.Version && try == 1 {
				// This replica's read model may be behind the one that showed the cart.
				if _, err = rt.WaitForStream(r.Context(), stream); err == nil {
					continue
				}
			}
			if err != nil {
				service.Error(w, r, logger, err)
				return
			}
			if in.Version != nil && cart.Version != *in.Version {
				service.Error(w, r, logger, &service.ConflictError{Stream: stream, Current: cart.Version})
				return
			}
			if len(cart.Lines) == 0 {
				service.Error(w, r, logger, service.FieldErrors{"lines": "the cart is empty"})
				return
			}
			lines, err := cart.orderLines()
			if err != nil {
				service.Error(w, r, logger, err)
				return
			}
			id := CartOrderID(c.User, cart.Version)
			checkedOut := newEvent(decisionNamespace.ID(string(id)+"/checked-out"), event.CartCheckedOut,
				checkedOutData{OrderID: id, Lines: lines})
			_, err = rt.Write(r.Context(), stream, &cart.Version, checkedOut)
			var conflict *service.ConflictError
			switch {
			case errors.As(err, &conflict) && in.Version == nil && try < maxCartTries:
				if _, err := rt.WaitForStream(r.Context(), stream); err != nil {
					service.Error(w, r, logger, err)
					return
				}
				continue // the cart changed since it was read: check out what it holds now
			case err != nil:
				service.Error(w, r, logger, err)
				return
			}
			// The read model placed the order when it applied cart.checked-out (the
			// outbox); this append is its duplicate, and waits until the order shows.
			if err := placeOrder(r.Context(), rt, id, c.User, lines); err != nil {
				service.Error(w, r, logger, err)
				return
			}
			writePlaced(w, id)
			return
		}
	})
}
