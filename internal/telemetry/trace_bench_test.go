package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/telemetry"
)

// BenchmarkSpan is the cost of one of msdemo's own spans (a bus delivery's, an append's):
// started as the child of a remote parent with four attributes, ended into the recent-span
// store, nothing exported.
func BenchmarkSpan(b *testing.B) {
	stop, err := telemetry.StartTracing(context.Background(), telemetry.TraceConfig{Service: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer stop(context.Background())
	parent := telemetry.WithTraceParent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	b.ReportAllocs()
	for b.Loop() {
		_, span := telemetry.Tracer().Start(parent, "consume product.events order.placed", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(telemetry.ComponentKey.String("product"), attribute.String("messaging.system", "rabbitmq"),
				attribute.String("messaging.destination.name", "product.events"), attribute.String("messaging.message.id", "abc")))
		span.End()
	}
}

// BenchmarkTraceHTTP is the cost of TraceHTTP per request of a service (otelhttp's
// server span, with a traceparent): compare traced with off (the same chi router).
func BenchmarkTraceHTTP(b *testing.B) {
	stop, err := telemetry.StartTracing(context.Background(), telemetry.TraceConfig{Service: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer stop(context.Background())
	r := chi.NewRouter()
	r.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	req := httptest.NewRequest(http.MethodGet, "/orders/abc", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"off", r}, {"traced", telemetry.TraceHTTP("order", false, r)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			w := httptest.NewRecorder()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}
