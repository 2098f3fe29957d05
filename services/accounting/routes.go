package accounting

import (
	"log/slog"
	"net/http"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// newServer returns the service's HTTP API. Every route but /healthz answers 503 until
// ready() (the read model has caught up). Roles are checked here as well as at the
// gateway: invoices need a token (a customer sees their own), revenue and the dead
// letters a manager's. deadLetters serves /dead-letters (service.Runtime.MountDeadLetters).
func newServer(logger *slog.Logger, key auth.Key, store *Store, deadLetters http.Handler, ready func() bool) http.Handler {
	loggedIn := auth.Require(auth.Customer, auth.Manager)
	manager := auth.Require(auth.Manager)
	api := http.NewServeMux()
	api.Handle("GET /invoices", loggedIn(handleInvoiceList(store, logger)))
	api.Handle("GET /invoices/{order_id}", loggedIn(handleInvoiceShow(store, logger)))
	api.Handle("GET /revenue", manager(handleRevenue(store, logger)))
	api.Handle("/dead-letters", deadLetters)
	api.Handle("/dead-letters/", deadLetters)
	api.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "no such route; see GET /invoices and GET /revenue")
	}))

	var h http.Handler = whenReady(ready, api)
	mw := service.Middleware(logger, key)
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", service.Health(ready))
	mux.Handle("/", h)
	return mux
}

// whenReady answers 503 until ready() is true.
func whenReady(ready func() bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			w.Header().Set("Retry-After", "1")
			httpjson.Error(w, http.StatusServiceUnavailable, "catching up with the event store; try again shortly")
			return
		}
		next.ServeHTTP(w, r)
	})
}
