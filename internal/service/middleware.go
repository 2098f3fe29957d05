package service

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/middleware"
)

// MaxBodyBytes bounds a request body. Serve applies it first of all, on the server's own
// ResponseWriter: http.MaxBytesReader tells that writer to close the connection after a
// body too large, which every wrapper (chi's, for the metrics and the recovery) would hide.
const MaxBodyBytes = httplimit.DefaultMaxBodyBytes

// RequestID returns the id of the request of ctx ("" outside a request): the gateway's
// X-Request-Id, or one the service made (middleware.RequestID).
func RequestID(ctx context.Context) string {
	return middleware.GetRequestID(ctx)
}

// Middleware is the chain every service API uses, outermost first: request id (the
// gateway's X-Request-Id, or a new one), recovery from panics into a logged 500 with a
// JSON error body (request id and recovery come from internal/middleware, which the
// gateway and the sites share), and token authentication. The body limit is Serve's.
func Middleware(logger *slog.Logger, key auth.Key) []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{
		middleware.RequestID(idgen.NewSequence()),
		middleware.Recover(logger, func(w http.ResponseWriter, r *http.Request) {
			httpjson.Error(w, http.StatusInternalServerError, "internal error")
		}),
		auth.Authenticate(key),
	}
}
