package product

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// newServer returns the service's HTTP API. Every route but /healthz answers 503 until
// ready() (the read model has caught up), so that no decision is made on an old state.
// Reads are open to anyone; writes need a manager's token (401 without one, 403 for
// another role), checked here as well as at the gateway. deadLetters serves the managers'
// /dead-letters routes of the service's event queue (service.Runtime.MountDeadLetters).
//
// barrier, if not nil, runs before every API request: it waits until this instance's read
// model has applied what the event store held when the request came (Client.Barrier), so
// that a write made through another replica is seen here; its error is the answer.
//
// GET /images/{id} is served before the gate and the barrier: a picture is in PostgreSQL,
// not in the read model, and never changes, so it needs neither (and a page of thumbnails
// costs no feed read per picture).
func newServer(logger *slog.Logger, key auth.Key, store *Store, c *catalog, deadLetters http.Handler, ready func() bool,
	barrier func(context.Context) error) http.Handler {
	manager := auth.Require(auth.Manager)
	api := http.NewServeMux()
	api.Handle("GET /categories", handleCategoryList(store, logger))
	api.Handle("GET /categories/{id}", handleCategoryShow(store, logger))
	api.Handle("POST /categories", manager(handleCategoryCreate(c, logger)))
	api.Handle("PUT /categories/{id}", manager(handleCategoryUpdate(c, logger)))
	api.Handle("DELETE /categories/{id}", manager(handleCategoryDelete(c, logger)))
	api.Handle("GET /products", handleProductList(store, logger))
	api.Handle("GET /products/{id}", handleProductShow(store, logger))
	api.Handle("GET /search", handleSearch(store, logger))
	api.Handle("POST /products", manager(handleProductCreate(c, logger)))
	api.Handle("PUT /products/{id}", manager(handleProductUpdate(c, logger)))
	api.Handle("DELETE /products/{id}", manager(handleProductDelete(c, logger)))
	api.Handle("PUT /products/{id}/image", manager(handleImageSet(c, logger))) // body: largeBodies
	api.Handle("/dead-letters", deadLetters)
	api.Handle("/dead-letters/", deadLetters)
	api.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "no such route; see GET /categories and GET /products")
	}))

	var image http.Handler = handleImageShow(c.images, logger)
	mw := service.Middleware(logger, key)
	for i := len(mw) - 1; i >= 0; i-- {
		image = mw[i](image)
	}
	images := http.NewServeMux()
	images.Handle("GET /images/{id}", image)
	root := http.NewServeMux()
	root.Handle("GET /images/{id}", telemetry.Routes(images)) // its pattern labels the metrics
	root.Handle("/", service.API(logger, key, ready, api, barrier))
	return root
}

// largeBodies are the routes whose bodies may be larger than service.MaxBodyBytes: an
// image upload (service.Runtime.LargeBodies).
var largeBodies = map[string]int64{"PUT /products/{id}/image": httplimit.MaxUploadBodyBytes}
