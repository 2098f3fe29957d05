package storefront

import (
	"cmp"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/web"
)

// The cart is the order service's (GET /order/cart, PUT and DELETE
// /order/cart/lines/{product_id}, POST /order/cart/checkout): it is kept in the
// customer's events, so it is the same on every device and after every restart. These
// pages show it and change it with plain forms.

// handleCartAdd serves POST /products/{id}/cart {quantity}: that many more units of the
// product in the cart; then the cart. A bad quantity (more than in stock, too) shows the
// product again with what was wrong.
func (s *server) handleCartAdd(w http.ResponseWriter, r *http.Request) {
	v, qty, ok := s.productForm(w, r)
	if !ok || !s.postProductForm(w, r, v, "/order/cart/lines", map[string]any{"product_id": v.Product.ID, "quantity": qty}, nil) {
		return
	}
	s.sessions.AddFlash(r.Context(), web.FlashSuccess, v.Product.Name+" is in your cart.")
	web.Redirect(w, r, "/cart")
}

// handleCart serves GET /cart: the lines with their quantities, the total and the
// checkout button.
func (s *server) handleCart(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	var c cart
	if err := s.api.Get(r.Context(), u.Token, "/order/cart", nil, &c); err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.renderCart(w, r, http.StatusOK, c, "")
}

// renderCart renders the cart page of c with a message for the form ("" for none).
func (s *server) renderCart(w http.ResponseWriter, r *http.Request, status int, c cart, formError string) {
	v := cartView{Total: web.Money(c.TotalCents), FormError: formError, Version: strconv.FormatInt(c.Version, 10)}
	for _, l := range c.Lines {
		v.Lines = append(v.Lines, cartLineView{ProductID: l.ProductID, Name: cmp.Or(l.Name, l.ProductID),
			Quantity: strconv.FormatInt(l.Quantity, 10), UnitPrice: web.Money(l.UnitPriceCents),
			Total: web.Money(l.Quantity * l.UnitPriceCents), Available: l.Available})
		v.Blocked = v.Blocked || !l.Available
	}
	s.site.Render(w, r, status, "Your cart", cartPage(v))
}

// fieldsMessage is the API's field errors in one sentence, for the cart's form: its
// fields are the lines', which the page shows as rows, not as inputs.
func fieldsMessage(fields map[string]string) string {
	msgs := slices.Sorted(maps.Values(fields))
	return "Your cart cannot be ordered as it is: " + strings.Join(slices.Compact(msgs), "; ") + "."
}

// handleCartLine serves POST /cart/lines/{product_id} {quantity}: the line's new
// quantity (0 removes it); then the cart.
func (s *server) handleCartLine(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	id := chi.URLParam(r, "product_id")
	qty, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("quantity")), 10, 64)
	switch {
	case err != nil || qty < 0:
		s.cartError(w, r, "Enter a whole number of at least 0 (0 removes the product).")
		return
	case qty == 0:
		err = s.api.Do(r.Context(), u.Token, http.MethodDelete, "/order/cart/lines/"+url.PathEscape(id), nil, nil)
	default:
		err = s.api.Put(r.Context(), u.Token, "/order/cart/lines/"+url.PathEscape(id), map[string]int64{"quantity": qty}, nil)
	}
	if fields := web.FieldErrors(err); fields != nil {
		s.cartError(w, r, fieldsMessage(fields))
		return
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	web.Redirect(w, r, "/cart")
}

// handleCartRemove serves POST /cart/lines/{product_id}/remove; then the cart.
func (s *server) handleCartRemove(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	id := chi.URLParam(r, "product_id")
	if err := s.api.Do(r.Context(), u.Token, http.MethodDelete, "/order/cart/lines/"+url.PathEscape(id), nil, nil); err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	web.Redirect(w, r, "/cart")
}

// handleCheckout serves POST /cart/checkout {version}: one order of the whole cart as
// the customer saw it (version); then the order's page, where its status updates live. A
// cart changed meanwhile (in another tab) is shown again, to be checked out as it is.
func (s *server) handleCheckout(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		s.cartError(w, r, "Please check your cart and check out again.")
		return
	}
	var placed struct {
		ID string `json:"id"`
	}
	err = s.api.Post(r.Context(), u.Token, "/order/cart/checkout", map[string]int64{"version": version}, &placed)
	if fields := web.FieldErrors(err); fields != nil {
		s.cartError(w, r, fieldsMessage(fields))
		return
	}
	if web.StatusOf(err) == http.StatusConflict {
		s.cartError(w, r, "Your cart changed meanwhile (in another window?). Please check it and check out again.")
		return
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Thank you! Your order is placed; its status updates below.")
	web.Redirect(w, r, "/orders/"+placed.ID)
}

// cartError shows the cart again, as it is now, with message.
func (s *server) cartError(w http.ResponseWriter, r *http.Request, message string) {
	u, _ := s.sessions.User(r.Context())
	var c cart
	if err := s.api.Get(r.Context(), u.Token, "/order/cart", nil, &c); err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.renderCart(w, r, http.StatusUnprocessableEntity, c, message)
}

// handleReorder serves POST /orders/{id}/reorder: the lines of the customer's order
// (a rejected one, say) go into the cart again, each added to what the cart holds; then
// the cart. Products that are gone, or would exceed a line's limit, are named in the
// message and left out.
func (s *server) handleReorder(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	o, err := s.api.Order(r.Context(), u.Token, chi.URLParam(r, "id"))
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	var left []string
	for _, l := range o.Lines {
		err := s.api.Post(r.Context(), u.Token, "/order/cart/lines", map[string]any{"product_id": l.ProductID, "quantity": l.Quantity}, nil)
		switch {
		case web.FieldErrors(err) != nil:
			left = append(left, cmp.Or(l.Name, l.ProductID))
		case err != nil:
			s.site.Error(w, r, err)
			return
		}
	}
	if len(left) > 0 {
		s.sessions.AddFlash(r.Context(), web.FlashInfo, "Not put in the cart again (no longer sold, or too many): "+strings.Join(left, ", ")+".")
	} else {
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "The order's products are in your cart again.")
	}
	web.Redirect(w, r, "/cart")
}
