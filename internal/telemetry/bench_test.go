package telemetry_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/telemetry"
)

// BenchmarkHTTP is the cost of HTTP's measuring per request: compare metrics=on with off
// (the same chi router, unwrapped).
func BenchmarkHTTP(b *testing.B) {
	r := chi.NewRouter()
	r.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	req := httptest.NewRequest(http.MethodGet, "/orders/abc", nil)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"off", r}, {"on", telemetry.New().For("order").HTTP(r)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			w := httptest.NewRecorder()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkObserve is the gateway's cost per request, and the bus's per delivery.
func BenchmarkObserve(b *testing.B) {
	c := telemetry.New().For("gateway")
	b.Run("ObserveHTTP", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.ObserveHTTP("/order/orders/{id}", 200, time.Millisecond)
		}
	})
	b.Run("Consumed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Consumed("order.events")
		}
	})
	b.Run("Published", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Published(1)
		}
	})
}
