package accounting

import (
	"log/slog"
	"net/http"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// invoicePage is the body of GET /invoices.
type invoicePage struct {
	Invoices  []StoredInvoice `json:"invoices"`
	NextAfter string          `json:"next_after"` // "" on the last page
}

// handleInvoiceList serves GET /invoices[?limit=&after=]: newest first, a customer's own
// or, for a manager, everyone's. after is the order_id of the previous page's last invoice.
func handleInvoiceList(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, after, err := service.PageParams(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		c, _ := auth.FromContext(r.Context())
		customer := c.User
		if c.Role == auth.Manager {
			customer = ""
		}
		list, more, err := store.Invoices(r.Context(), customer, limit, OrderID(after))
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		page := invoicePage{Invoices: list}
		if more {
			page.NextAfter = string(list[len(list)-1].OrderID)
		}
		httpjson.Write(w, http.StatusOK, page)
	})
}

// handleInvoiceShow serves GET /invoices/{order_id}: to its customer or a manager; to
// anyone else it does not exist (404, so that order ids cannot be probed).
func handleInvoiceShow(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inv, err := store.Invoice(r.Context(), OrderID(r.PathValue("order_id")))
		if c, _ := auth.FromContext(r.Context()); err == nil && !c.May(inv.Customer) {
			err = service.ErrNotFound
		}
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusOK, inv)
	})
}

// handleRevenue serves GET /revenue: {revenue_cents, invoices}, the sum and number of all
// invoices.
func handleRevenue(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rev, err := store.Revenue(r.Context())
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusOK, rev)
	})
}
