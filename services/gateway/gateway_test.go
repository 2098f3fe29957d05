package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/gateway"
)

// echo is what the echo upstream answers: what it received.
type echo struct {
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Host     string      `json:"host"`
	Header   http.Header `json:"header"`
	Body     string      `json:"body"`
}

// newEcho starts an upstream that answers every request with the echo of it.
func newEcho(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echo{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header, string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// testExchange returns a registry exchange of the test's own, deleted after the test.
func testExchange(t *testing.T) string {
	name := testenv.Name(t)
	conn := testenv.Bus(t)
	t.Cleanup(func() {
		if err := conn.DeleteExchange(context.Background(), name); err != nil {
			t.Logf("delete exchange %s: %v", name, err)
		}
	})
	return name
}

// startGateway runs the gateway on a free port until the test ends and returns its base URL
// once /healthz answers.
func startGateway(t *testing.T, cfg gateway.Config) string {
	t.Helper()
	cfg.Addr = testenv.FreeAddr(t)
	cfg.RabbitMQURL = testenv.RabbitMQURL()
	if cfg.RegistryExchange == "" {
		cfg.RegistryExchange = testExchange(t)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Run(ctx, cfg, testenv.Logger(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway.Run after cancel: got %v, want nil", err)
		}
	})

	base := "http://" + cfg.Addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("gateway.Run returned before serving: %v", err)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway /healthz not OK after 15 s: last error %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends a request and returns the status, the response headers and the body.
func do(t *testing.T, method, url string, header http.Header, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// getEcho sends a request through the gateway to an echo upstream and decodes the echo.
func getEcho(t *testing.T, method, url string, header http.Header, body string) (echo, http.Header) {
	t.Helper()
	status, h, b := do(t, method, url, header, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: got status %d (%s), want 200", method, url, status, b)
	}
	var e echo
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("decode echo %q: %v", b, err)
	}
	return e, h
}

func TestProxy(t *testing.T) {
	t.Parallel()
	upstream := newEcho(t)
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": upstream.URL}})

	t.Run("path and query", func(t *testing.T) {
		for _, tc := range []struct{ url, path, query string }{
			{"/product/products/7?category_id=3&q=a%20b", "/products/7", "category_id=3&q=a%20b"},
			{"/product/products/", "/products/", ""},
			{"/product", "/", ""},
			{"/product/", "/", ""},
			{"/product?x=1", "/", "x=1"},
		} {
			e, _ := getEcho(t, "GET", base+tc.url, nil, "")
			if e.Path != tc.path || e.RawQuery != tc.query {
				t.Errorf("GET %s: upstream got path %q query %q, want %q %q", tc.url, e.Path, e.RawQuery, tc.path, tc.query)
			}
		}
	})

	t.Run("method and body", func(t *testing.T) {
		e, _ := getEcho(t, "PUT", base+"/product/products/7", http.Header{"Content-Type": {"application/json"}}, `{"name":"tea"}`)
		if e.Method != "PUT" || e.Body != `{"name":"tea"}` || e.Header.Get("Content-Type") != "application/json" {
			t.Errorf("PUT: upstream got %s %q (%s), want PUT {\"name\":\"tea\"} (application/json)", e.Method, e.Body, e.Header.Get("Content-Type"))
		}
	})

	t.Run("headers", func(t *testing.T) {
		e, _ := getEcho(t, "GET", base+"/product/products", http.Header{
			"X-User":            {"mallory"},
			"X-User-Role":       {"manager"},
			"X-Forwarded-User":  {"mallory"},
			"X-Msdemo-Verified": {"yes"},
			"x-msdemo-lower":    {"yes"},
			"X-Forwarded-For":   {"6.6.6.6"},
			"Authorization":     {"Bearer abc"},
			"X-Custom":          {"kept"},
		}, "")
		for _, name := range []string{"X-User", "X-User-Role", "X-Forwarded-User", "X-Msdemo-Verified", "X-Msdemo-Lower"} {
			if v := e.Header.Get(name); v != "" {
				t.Errorf("upstream got %s: %q, want it stripped", name, v)
			}
		}
		for name, want := range map[string]string{
			"Authorization":     "Bearer abc",
			"X-Custom":          "kept",
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  strings.TrimPrefix(base, "http://"),
		} {
			if got := e.Header.Get(name); got != want {
				t.Errorf("upstream got %s: %q, want %q", name, got, want)
			}
		}
		if want := strings.TrimPrefix(upstream.URL, "http://"); e.Host != want {
			t.Errorf("upstream got Host %q, want %q", e.Host, want)
		}
	})

	t.Run("request id", func(t *testing.T) {
		e, h := getEcho(t, "GET", base+"/product/x", http.Header{"X-Request-Id": {"client-id.42:a_b"}}, "")
		if got, resp := e.Header.Get("X-Request-Id"), h.Get("X-Request-Id"); got != "client-id.42:a_b" || resp != "client-id.42:a_b" {
			t.Errorf("sane client id: got upstream %q, response %q, want client-id.42:a_b both", got, resp)
		}
		seen := map[string]bool{}
		for _, sent := range []string{"", "has space", strings.Repeat("a", 65), "quote\"d"} {
			header := http.Header{}
			if sent != "" {
				header.Set("X-Request-Id", sent)
			}
			e, h := getEcho(t, "GET", base+"/product/x", header, "")
			got, resp := e.Header.Get("X-Request-Id"), h.Get("X-Request-Id")
			if got == "" || got == sent || got != resp || seen[got] {
				t.Errorf("client id %q: got upstream %q, response %q, want one new unique id in both", sent, got, resp)
			}
			seen[got] = true
		}
	})

	t.Run("1 MiB body there and back", func(t *testing.T) {
		big := strings.Repeat("0123456789", 110_000)[:1<<20] // the largest body allowed
		e, _ := getEcho(t, "POST", base+"/product/big", nil, big)
		if len(e.Body) != 1<<20 {
			t.Errorf("1 MiB request body: upstream got %d bytes, want %d", len(e.Body), 1<<20)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	upstream := newEcho(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downURL := "http://" + down.Addr().String()
	down.Close() // nothing listens there now

	base := startGateway(t, gateway.Config{
		Static: map[string]string{
			"product":    upstream.URL,
			"accounting": downURL,
			"eventstore": slow.URL,
		},
		RequestTimeout: 300 * time.Millisecond,
	})

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string // the whole body, or "" to check only that it is a JSON error
	}{
		{"unknown service", "GET", "/nope/x", "", 404, ""},
		{"root", "GET", "/", "", 404, ""},
		{"service name prefix", "GET", "/products/1", "", 404, ""},
		{"no instance", "GET", "/order/orders", "", 503, `{"error":"no instance of order is up"}`},
		{"upstream down", "GET", "/accounting/invoices", "", 502, `{"error":"cannot reach accounting"}`},
		{"upstream timeout", "GET", "/eventstore/events", "", 504, ""},
		{"body too large", "POST", "/product/products", strings.Repeat("x", 1<<20+1), 413, ""},
		{"healthz method", "POST", "/healthz", "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := do(t, tc.method, base+tc.path, nil, tc.body)
			if status != tc.status {
				t.Errorf("%s %s: got status %d (%s), want %d", tc.method, tc.path, status, body, tc.status)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: got Content-Type %q, want application/json", tc.method, tc.path, ct)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("%s %s: got body %q, want {\"error\": ...}", tc.method, tc.path, body)
			}
			if tc.want != "" && string(body) != tc.want {
				t.Errorf("%s %s: got body %s, want %s", tc.method, tc.path, body, tc.want)
			}
		})
	}
}

func TestHealthzAndRegistry(t *testing.T) {
	t.Parallel()
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": "http://127.0.0.1:6004"}})

	status, _, body := do(t, "GET", base+"/healthz", nil, "")
	if status != 200 || string(body) != `{"status":"ok"}` {
		t.Errorf("GET /healthz: got %d %s, want 200 {\"status\":\"ok\"}", status, body)
	}

	status, _, body = do(t, "GET", base+"/registry", nil, "")
	want := `{"instances":[],"static":{"product":"http://127.0.0.1:6004"},"ttl_seconds":6}`
	if status != 200 || string(body) != want {
		t.Errorf("GET /registry: got %d %s, want 200 %s", status, body, want)
	}
}

func TestBusyPortFailsRun(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	err = gateway.Run(context.Background(), gateway.Config{Addr: ln.Addr().String()}, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a busy port: got %v, want a listen error", err)
	}
}

// TestRegistryOverBus announces instances over the real RabbitMQ and checks that the
// gateway routes to them, drops one that leaves at once, and one that goes silent after
// the TTL.
func TestRegistryOverBus(t *testing.T) {
	t.Parallel()
	exchange := testExchange(t)
	silent, leaving := newEcho(t), newEcho(t)
	base := startGateway(t, gateway.Config{RegistryExchange: exchange})
	conn := testenv.Bus(t)
	ctx := context.Background()

	// A silent instance: one announcement, then nothing, as if its process died.
	body, _ := json.Marshal(registry.Instance{Service: "customer", Instance: "customer-test-1", URL: silent.URL})
	if err := conn.Publish(ctx, exchange, "", bus.Message{Body: body, Transient: true}); err != nil {
		t.Fatalf("publish announcement: %v", err)
	}
	announced := time.Now()
	// A well-behaved instance announces itself until it stops, then says it leaves.
	annCtx, stopAnnouncing := context.WithCancel(ctx)
	annDone := make(chan error, 1)
	go func() {
		annDone <- registry.Announce(annCtx, conn, registry.Instance{Service: "order", Instance: "order-test-1", URL: leaving.URL},
			200*time.Millisecond, testenv.Logger(t), registry.WithExchange(exchange))
	}()
	t.Cleanup(stopAnnouncing)

	waitStatus(t, base+"/customer/users", 200, 5*time.Second)
	waitStatus(t, base+"/order/orders", 200, 5*time.Second)
	status, _, b := do(t, "GET", base+"/registry", nil, "")
	var view struct{ Instances []registry.Entry }
	if err := json.Unmarshal(b, &view); status != 200 || err != nil || len(view.Instances) != 2 {
		t.Errorf("GET /registry: got %d %s, want 200 with 2 instances", status, b)
	}

	stopAnnouncing()
	if err := <-annDone; err != nil {
		t.Errorf("Announce after cancel: got %v, want nil", err)
	}
	// Leaving is immediate: well before the 6 s TTL.
	waitStatus(t, base+"/order/orders", 503, 2*time.Second)

	// Silence is noticed after the TTL, not before.
	if status, _, _ := do(t, "GET", base+"/customer/users", nil, ""); status != 200 && time.Since(announced) < registry.DefaultTTL-time.Second {
		t.Errorf("silent instance before its TTL: got status %d, want 200", status)
	}
	waitStatus(t, base+"/customer/users", 503, registry.DefaultTTL+3*time.Second)
	if since := time.Since(announced); since < registry.DefaultTTL {
		t.Errorf("silent instance dropped after %s, want not before the TTL %s", since, registry.DefaultTTL)
	}
}

// waitStatus polls GET url until it answers status, and fails the test after within.
func waitStatus(t *testing.T, url string, status int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, _, body := do(t, "GET", url, nil, "")
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: got status %d (%s) after %s, want %d", url, got, bytes.TrimSpace(body), within, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
