package telemetry

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// TraceHTTP wraps next so that requests are served in a server span (otelhttp), named
// "<component> <method> <route>" once the route is known (a chi route pattern, as the
// metrics' route label), the child of the request's traceparent. A service behind the
// gateway (edge false) traces only requests that carry a traceparent: it continues
// traces, and the feed polls and health checks that nobody traced cost nothing. A site
// (edge true) starts a trace for every request but /healthz, /static/ and its event
// streams (long-lived, and not one operation).
func TraceHTTP(component string, edge bool, next http.Handler) http.Handler {
	filter := func(r *http.Request) bool { return r.Header.Get("traceparent") != "" }
	if edge {
		filter = func(r *http.Request) bool {
			return r.URL.Path != "/healthz" && !strings.HasPrefix(r.URL.Path, "/static/") &&
				!strings.Contains(r.Header.Get("Accept"), "text/event-stream")
		}
	}
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.RouteContext(r.Context())
		if rctx == nil {
			rctx = chi.NewRouteContext()
			r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		}
		next.ServeHTTP(w, r)
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			route := rctx.RoutePattern()
			if route == "" {
				route = UnmatchedRoute
			}
			span.SetName(component + " " + r.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
	})
	return otelhttp.NewHandler(named, component, otelhttp.WithFilter(filter),
		otelhttp.WithSpanOptions(trace.WithAttributes(ComponentKey.String(component))))
}

// TraceTransport returns base (nil: http.DefaultTransport) as a transport that sends the
// traceparent of a request's ctx and records a client span, when ctx carries a span;
// other requests go out as they are.
func TraceTransport(component string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithFilter(func(r *http.Request) bool { return trace.SpanContextFromContext(r.Context()).IsValid() }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return component + " call " + r.Method + " " + r.URL.Host }),
		otelhttp.WithSpanOptions(trace.WithAttributes(ComponentKey.String(component))))
}
