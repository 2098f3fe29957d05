package service

import (
	"context"
	"log/slog"
	"net/http"

	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/middleware"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// RequestID returns the id of the request of ctx ("" outside a request): the gateway's
// X-Request-Id, or one the service made (middleware.RequestID).
func RequestID(ctx context.Context) string {
	return middleware.GetRequestID(ctx)
}

// Middleware is the chain every service API uses, outermost first: request id (the
// gateway's X-Request-Id, or a new one), body size limit, recovery from panics into a
// logged 500 with a JSON error body (request id and recovery come from
// internal/middleware, which the gateway and the sites share), and token authentication.
func Middleware(logger *slog.Logger, key auth.Key) []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{
		middleware.RequestID(idgen.NewSequence()),
		// Before Recover, whose response wrapper would hide from http.MaxBytesReader the
		// server's writer, which it tells to close the connection after a body too large.
		chimw.RequestSize(MaxBodyBytes),
		middleware.Recover(logger, func(w http.ResponseWriter, r *http.Request) {
			httpjson.Error(w, http.StatusInternalServerError, "internal error")
		}),
		auth.Authenticate(key),
	}
}
