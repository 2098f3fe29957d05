package service

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Health serves GET /healthz: 200 once ready() is true (the read model caught up), 503
// before.
func Health(ready func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			httpjson.Error(w, http.StatusServiceUnavailable, "catching up with the event store")
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// API wraps a service's routes into its HTTP handler: GET /healthz (200 once ready, 503
// before), and every other request through Middleware and a gate that answers 503 (with
// Retry-After) until ready() is true, so that nothing is decided on a read model that has
// not caught up.
//
// barrier, if given and not nil, runs after the gate and before the routes: a read model
// kept per instance waits there for what another replica wrote (eventclient's Barrier);
// its error is a 503.
func API(logger *slog.Logger, key auth.Key, ready func() bool, routes http.Handler, barrier ...func(context.Context) error) http.Handler {
	if mux, ok := routes.(*http.ServeMux); ok {
		routes = telemetry.Routes(mux) // its route patterns label the metrics
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			w.Header().Set("Retry-After", "1")
			httpjson.Error(w, http.StatusServiceUnavailable, "catching up with the event store; try again shortly")
			return
		}
		for _, wait := range barrier {
			if wait == nil {
				continue
			}
			if err := wait(r.Context()); err != nil {
				logger.WarnContext(r.Context(), "read-your-writes barrier", "error", err)
				Error(w, r, logger, ErrUnavailable)
				return
			}
		}
		routes.ServeHTTP(w, r)
	})
	var wrapped http.Handler = h
	mw := Middleware(logger, key)
	for i := len(mw) - 1; i >= 0; i-- {
		wrapped = mw[i](wrapped)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", Health(ready))
	mux.Handle("/", wrapped)
	return mux
}

// Closed returns a function that reports whether ch is closed: a service's readiness, from
// its subscription's CaughtUp channel.
func Closed(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}
