package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

type requestIDKey struct{}

// RequestID returns the id of the request of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Middleware is the chain every service API uses, outermost first: request id (the
// gateway's X-Request-Id, or a new one), recovery from panics into a logged 500, body
// size limit, and token authentication.
func Middleware(logger *slog.Logger, key auth.Key) []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id := r.Header.Get("X-Request-Id")
				if id == "" || len(id) > 64 {
					id = uuid.NewString()
				}
				w.Header().Set("X-Request-Id", id)
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
			})
		},
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if v := recover(); v != nil {
						if v == http.ErrAbortHandler {
							panic(v)
						}
						logger.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v),
							"method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
						httpjson.Error(w, http.StatusInternalServerError, "internal error")
					}
				}()
				next.ServeHTTP(w, r)
			})
		},
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
				next.ServeHTTP(w, r)
			})
		},
		auth.Authenticate(key),
	}
}
