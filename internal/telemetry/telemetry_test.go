package telemetry_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/msdemo/msdemo/internal/telemetry"
)

// Requests are counted under the route's pattern: chi's, a ServeMux's (through Routes,
// without the method), chi's inside a ServeMux, and "unmatched" for none.
func TestHTTPLabelsRoutePatterns(t *testing.T) {
	m := telemetry.New()
	c := m.For("product")
	sub := chi.NewRouter()
	sub.Get("/dead-letters/{id}", func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.Handle("/dead-letters/", sub)
	outer := chi.NewRouter()
	outer.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {})
	outer.Handle("/*", telemetry.Routes(mux))
	outer.NotFound(http.NotFound)
	h := c.HTTP(outer)

	for _, path := range []string{"/orders/abc", "/orders/def", "/products/42", "/dead-letters/7"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	onlyMux := c.HTTP(telemetry.Routes(mux))
	onlyMux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/products/43", nil))
	onlyMux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nothing", nil))

	want := `
# HELP msdemo_http_requests_total HTTP requests answered, by route pattern and status code.
# TYPE msdemo_http_requests_total counter
msdemo_http_requests_total{code="200",component="product",route="/dead-letters/{id}"} 1
msdemo_http_requests_total{code="200",component="product",route="/orders/{id}"} 2
msdemo_http_requests_total{code="404",component="product",route="unmatched"} 1
msdemo_http_requests_total{code="418",component="product",route="/products/{id}"} 2
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "msdemo_http_requests_total"); err != nil {
		t.Error(err)
	}
}

// A nil Metrics gives nil Components, whose every method records nothing and does not
// panic, and whose HTTP is the handler itself.
func TestNilRecordsNothing(t *testing.T) {
	var m *telemetry.Metrics
	c := m.For("order")
	if c != nil {
		t.Fatalf("For on a nil Metrics: got %v, want nil", c)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	if got := c.HTTP(h); got == nil {
		t.Fatal("HTTP on nil: got nil handler")
	}
	c.ObserveHTTP("/x", 200, time.Millisecond)
	c.Published(1)
	c.Consumed("q")
	c.DeadLettered("q")
	c.Reconnected()
	c.Subscription(1, 2)
	c.Committed(1, 1, 1, time.Millisecond)
	c.OrderDecided(telemetry.OutcomeApproved, time.Now())
	telemetry.SSEClient(httptest.NewRequest(http.MethodGet, "/", nil).Context())()
}

// /metrics is the Prometheus text of the registry, with the Go and process collectors,
// and a second Metrics in the same process is independent of the first.
func TestHandlerServesText(t *testing.T) {
	a, b := telemetry.New(), telemetry.New()
	a.For("order").OrderDecided(telemetry.OutcomeTimedOut, time.Now())
	b.For("order").DecidesOrders()
	for _, tc := range []struct {
		m    *telemetry.Metrics
		want string
	}{
		{a, `msdemo_orders_total{component="order",outcome="timed_out"} 1`},
		{b, `msdemo_orders_total{component="order",outcome="timed_out"} 0`},
	} {
		rec := httptest.NewRecorder()
		tc.m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		body, _ := io.ReadAll(rec.Body)
		for _, s := range []string{tc.want, "go_goroutines", "process_cpu_seconds_total"} {
			if !strings.Contains(string(body), s) {
				t.Errorf("/metrics: got no %q in\n%s", s, body)
			}
		}
	}
}
