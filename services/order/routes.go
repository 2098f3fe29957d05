package order

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// newServer returns the service's HTTP API. Every route but /healthz answers 503 until
// ready() (the read model has caught up), so that no order is priced or shown from an old
// state. Roles are checked here as well as at the gateway: placing an order needs a
// customer's token (a manager gets 403), reading needs any token, and a customer sees
// only their own orders. The cart is the caller's own, for customers only.
func newServer(logger *slog.Logger, rt *service.Runtime, store *Store, watch *orderWatch, ready func() bool) http.Handler {
	r := chi.NewRouter()
	customer := auth.Require(auth.Customer)
	loggedIn := auth.Require(auth.Customer, auth.Manager)
	r.With(customer).Method(http.MethodPost, "/orders", handleOrderPlace(rt, store, logger))
	r.With(loggedIn).Method(http.MethodGet, "/orders", handleOrderList(store, logger))
	r.With(loggedIn).Method(http.MethodGet, "/orders/{id}", handleOrderShow(store, watch, logger))
	r.With(customer).Method(http.MethodGet, "/cart", handleCartShow(store, logger))
	r.With(customer).Method(http.MethodPost, "/cart/lines", handleCartAdd(rt, store, logger))
	r.With(customer).Method(http.MethodPut, "/cart/lines/{product_id}", handleCartSet(rt, store, logger))
	r.With(customer).Method(http.MethodDelete, "/cart/lines/{product_id}", handleCartRemove(rt, store, logger))
	r.With(customer).Method(http.MethodPost, "/cart/checkout", handleCheckout(rt, store, logger))
	rt.MountDeadLetters(r)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "no such route; see GET /orders")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	return service.API(logger, rt.TokenKey, ready, r)
}
