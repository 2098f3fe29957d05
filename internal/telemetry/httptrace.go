package telemetry

import (
	"cmp"
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
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
	// The route is known once next has served the request: otelhttp names the span
	// again then, and so does named (otelhttp's rename only follows a ServeMux's).
	name := func(r *http.Request) string {
		rctx, _ := r.Context().Value(chi.RouteCtxKey).(*chi.Context)
		req, _ := r.Context().Value(requestKey{}).(*request)
		if rctx == nil || req == nil {
			return component + " " + r.Method
		}
		return component + " " + r.Method + " " + cmp.Or(routeOf(rctx, req), UnmatchedRoute)
	}
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(name(r))
		}
	})
	traced := otelhttp.NewHandler(named, component, otelhttp.WithFilter(filter),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name(r) }),
		otelhttp.WithSpanOptions(trace.WithAttributes(ComponentKey.String(component))))
	// The route's holders go in before otelhttp, so that its requests share them: HTTP's
	// (metrics on), or ones of its own.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if chi.RouteContext(ctx) == nil {
			ctx = context.WithValue(ctx, chi.RouteCtxKey, chi.NewRouteContext())
		}
		if _, ok := ctx.Value(requestKey{}).(*request); !ok {
			ctx = context.WithValue(ctx, requestKey{}, &request{})
		}
		traced.ServeHTTP(w, r.WithContext(ctx))
	})
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
