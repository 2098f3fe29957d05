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

	return service.API(logger, key, ready, api)
}
