package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
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

// newEcho starts an upstream that answers every request with the echo of it, with the
// status of the query parameter "status" if there is one. It counts the connections it
// accepted in *conns.
func newEcho(t *testing.T) (srv *httptest.Server, conns *atomic.Int64) {
	t.Helper()
	conns = new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if status, err := strconv.Atoi(r.URL.Query().Get("status")); err == nil {
			w.WriteHeader(status)
		}
		json.NewEncoder(w).Encode(echo{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header, string(body)})
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns
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

// testKey signs the tokens of the tests; startGateway verifies with it.
var testKey, _ = auth.NewKey([]byte("a test key of thirty-two bytes.."))

// bearer returns an Authorization header with a valid token for user with role.
func bearer(user string, role auth.Role) http.Header {
	token := testKey.Sign(auth.Claims{User: user, Role: role, ExpiresAt: time.Now().Add(time.Hour)})
	return http.Header{"Authorization": {"Bearer " + token}}
}

// asManager and asCustomer are headers of a manager and of a customer, ann.
var (
	asManager  = bearer("mia", auth.Manager)
	asCustomer = bearer("ann", auth.Customer)
)

// startGateway runs the gateway on a free port with testKey until the test ends and returns
// its base URL once /healthz answers.
func startGateway(t *testing.T, cfg gateway.Config) string {
	t.Helper()
	cfg.Addr = testenv.FreeAddr(t)
	cfg.RabbitMQURL = testenv.RabbitMQURL()
	cfg.TokenKey = testKey
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
	upstream, conns := newEcho(t)
	// The test's loopback address is no trusted proxy here: its X-Forwarded-For is replaced
	// (auth_internal_test.go tests a trusted one).
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": upstream.URL, "eventstore": upstream.URL},
		TrustedProxies: []string{"192.0.2.1"}})

	t.Run("path and query", func(t *testing.T) {
		for _, tc := range []struct{ url, path, query string }{
			{"/product/products/7?category_id=3&q=a%20b", "/products/7", "category_id=3&q=a%20b"},
			{"/product/products?x=1", "/products", "x=1"},
			{"/product//products", "/products", ""},
			{"/eventstore/streams/a%20b", "/streams/a b", ""},
			{"/product/a/../products/./7", "/products/7", ""},
		} {
			e, _ := getEcho(t, "GET", base+tc.url, asManager, "")
			if e.Path != tc.path || e.RawQuery != tc.query {
				t.Errorf("GET %s: upstream got path %q query %q, want %q %q", tc.url, e.Path, e.RawQuery, tc.path, tc.query)
			}
		}
	})

	t.Run("upstream status and headers come back", func(t *testing.T) {
		status, h, body := do(t, "GET", base+"/product/products/99?status=404", nil, "")
		if status != 404 || h.Get("Content-Type") != "application/json" || !bytes.Contains(body, []byte(`"path":"/products/99"`)) {
			t.Errorf("GET with upstream 404: got %d %q %s, want 404 application/json with the echo", status, h.Get("Content-Type"), body)
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		status, h, body := do(t, "HEAD", base+"/product/products", nil, "")
		if status != 200 || len(body) != 0 || h.Get("X-Request-Id") == "" {
			t.Errorf("HEAD: got %d, %d body bytes, X-Request-Id %q, want 200, none, an id", status, len(body), h.Get("X-Request-Id"))
		}
	})

	t.Run("method and body", func(t *testing.T) {
		header := http.Header{"Content-Type": {"application/json"}, "Authorization": asManager["Authorization"]}
		e, _ := getEcho(t, "PUT", base+"/product/products/7", header, `{"name":"tea"}`)
		if e.Method != "PUT" || e.Body != `{"name":"tea"}` || e.Header.Get("Content-Type") != "application/json" {
			t.Errorf("PUT: upstream got %s %q (%s), want PUT {\"name\":\"tea\"} (application/json)", e.Method, e.Body, e.Header.Get("Content-Type"))
		}
	})

	t.Run("chunked body", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/product/products", io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")))
		req.Header = asManager.Clone()
		resp, err := http.DefaultClient.Do(req) // unknown length: sent chunked
		if err != nil {
			t.Fatalf("POST chunked: %v", err)
		}
		defer resp.Body.Close()
		var e echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Body != "abcdef" {
			t.Errorf("POST chunked: upstream got body %q (decode error %v), want abcdef", e.Body, err)
		}
	})

	t.Run("headers", func(t *testing.T) {
		e, _ := getEcho(t, "GET", base+"/product/products", http.Header{
			"X-User":            {"mallory"},
			"X-User-Role":       {"manager"},
			"X-Forwarded-User":  {"mallory"},
			"X-Msdemo-Verified": {"yes"},
			"x-msdemo-lower":    {"yes"},
			"X-Forwarded-For":   {"6.6.6.6", "7.7.7.7"}, // two headers: fasthttp's Set replaces only the first
			"X-Forwarded-Host":  {"evil.example", "evil2.example"},
			"Authorization":     asManager["Authorization"],
			"X-Custom":          {"kept"},
		}, "")
		for _, name := range []string{"X-User", "X-User-Role", "X-Forwarded-User", "X-Msdemo-Verified", "X-Msdemo-Lower"} { // set by the client
			if v := e.Header.Get(name); v != "" {
				t.Errorf("upstream got %s: %q, want it stripped", name, v)
			}
		}
		for name, want := range map[string]string{
			"Authorization":     asManager.Get("Authorization"),
			"X-Msdemo-User":     "mia",
			"X-Msdemo-Role":     "manager",
			"X-Custom":          "kept",
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  strings.TrimPrefix(base, "http://"),
		} {
			if got := e.Header.Get(name); got != want {
				t.Errorf("upstream got %s: %q, want %q", name, got, want)
			}
		}
		for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Host"} {
			if got := e.Header.Values(name); len(got) != 1 {
				t.Errorf("upstream got %s %q, want exactly the gateway's one", name, got)
			}
		}
		if want := strings.TrimPrefix(upstream.URL, "http://"); e.Host != want {
			t.Errorf("upstream got Host %q, want %q", e.Host, want)
		}
	})

	t.Run("request id", func(t *testing.T) {
		e, h := getEcho(t, "GET", base+"/product/products", http.Header{"X-Request-Id": {"client-id.42:a_b"}}, "")
		if got, resp := e.Header.Get("X-Request-Id"), h.Get("X-Request-Id"); got != "client-id.42:a_b" || resp != "client-id.42:a_b" {
			t.Errorf("sane client id: got upstream %q, response %q, want client-id.42:a_b both", got, resp)
		}
		seen := map[string]bool{}
		for _, sent := range []string{"", "has space", strings.Repeat("a", 65), "quote\"d"} {
			header := http.Header{}
			if sent != "" {
				header.Set("X-Request-Id", sent)
			}
			e, h := getEcho(t, "GET", base+"/product/products", header, "")
			got, resp := e.Header.Get("X-Request-Id"), h.Get("X-Request-Id")
			if got == "" || got == sent || got != resp || seen[got] {
				t.Errorf("client id %q: got upstream %q, response %q, want one new unique id in both", sent, got, resp)
			}
			seen[got] = true
		}
	})

	t.Run("1 MiB body there and back", func(t *testing.T) {
		big := strings.Repeat("0123456789", 110_000)[:1<<20] // the largest body allowed
		e, _ := getEcho(t, "POST", base+"/product/products", asManager, big)
		if len(e.Body) != 1<<20 {
			t.Errorf("1 MiB request body: upstream got %d bytes, want %d", len(e.Body), 1<<20)
		}
	})

	// Run last: sequential requests reuse one upstream connection.
	t.Run("upstream keep-alive", func(t *testing.T) {
		before := conns.Load()
		for range 20 {
			getEcho(t, "GET", base+"/product/products", nil, "")
		}
		if n := conns.Load() - before; n > 1 {
			t.Errorf("20 sequential requests: upstream accepted %d new connections, want at most 1", n)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	upstream, _ := newEcho(t)
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
		{"service alone", "GET", "/product", "", 404, ""},
		{"service name prefix", "GET", "/products/1", "", 404, ""},
		{"route not in the policy", "GET", "/product/x", "", 404, ""},
		{"service healthz", "GET", "/product/healthz", "", 404, ""},
		{"too many segments", "GET", "/product/a/b/c/d/e/f/g/h/i", "", 404, ""},
		{"no instance", "GET", "/order/orders", "", 503, `{"error":"no instance of order is up"}`},
		{"upstream down", "GET", "/accounting/invoices", "", 502, `{"error":"cannot reach accounting"}`},
		{"upstream timeout", "GET", "/eventstore/events", "", 504, ""},
		{"healthz method", "POST", "/healthz", "", 405, ""},
		{"route method", "PATCH", "/product/products/7", "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := do(t, tc.method, base+tc.path, asManager, tc.body)
			checkJSONError(t, tc.method, tc.path, tc.status, tc.want, status, h, body)
		})
	}

	// The gateway answers 413 and closes the connection without reading a body that is too
	// large, so a client that sends it anyway may see the connection reset before the
	// answer. Clients that ask first (curl does for bodies over 1 MiB) get the 413.
	t.Run("body too large", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second}}
		req, _ := http.NewRequest("POST", base+"/product/products", strings.NewReader(strings.Repeat("x", 1<<20+1)))
		req.Header = asManager.Clone()
		req.Header.Set("Expect", "100-continue")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST 1 MiB + 1 byte: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		checkJSONError(t, "POST", "/product/products", 413, "", resp.StatusCode, resp.Header, body)
	})
}

// checkJSONError checks that a response has status want and a JSON error body: wantBody
// exactly, if it is not empty.
func checkJSONError(t *testing.T, method, path string, wantStatus int, wantBody string, status int, h http.Header, body []byte) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s %s: got status %d (%s), want %d", method, path, status, body, wantStatus)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: got Content-Type %q, want application/json", method, path, ct)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("%s %s: got body %q, want {\"error\": ...}", method, path, body)
	}
	if wantBody != "" && string(body) != wantBody {
		t.Errorf("%s %s: got body %s, want %s", method, path, body, wantBody)
	}
}

func TestHealthzAndRegistry(t *testing.T) {
	t.Parallel()
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": "http://127.0.0.1:6004"}})

	status, _, body := do(t, "GET", base+"/healthz", nil, "")
	if status != 200 || string(body) != `{"status":"ok"}` {
		t.Errorf("GET /healthz: got %d %s, want 200 {\"status\":\"ok\"}", status, body)
	}

	status, _, body = do(t, "GET", base+"/registry", asManager, "")
	want := `{"instances":[],"static":{"product":"http://127.0.0.1:6004"},"ttl_seconds":6}`
	if status != 200 || string(body) != want {
		t.Errorf("GET /registry: got %d %s, want 200 %s", status, body, want)
	}

	status, h, body := do(t, "GET", base+"/openapi.yaml", nil, "")
	if ct := h.Get("Content-Type"); status != 200 || ct != "application/yaml" || !bytes.HasPrefix(body, []byte("openapi: 3.")) {
		t.Errorf("GET /openapi.yaml: got %d %q %.20q, want 200 application/yaml \"openapi: 3.\"...", status, ct, body)
	}
}

// TestGracefulShutdown cancels Run while a request is in flight: the request completes,
// and Run returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte(`{"done":true}`))
	}))
	t.Cleanup(slow.Close)

	cfg := gateway.Config{
		Addr:             testenv.FreeAddr(t),
		RabbitMQURL:      testenv.RabbitMQURL(),
		RegistryExchange: testExchange(t),
		Static:           map[string]string{"order": slow.URL},
		TokenKey:         testKey,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- gateway.Run(ctx, cfg, testenv.Logger(t)) }()
	base := "http://" + cfg.Addr
	testenv.WaitHealthy(t, base+"/healthz", 15*time.Second)

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/order/orders", nil)
		req.Header = asCustomer.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	cancel()

	r := <-res
	if r.err != nil || r.status != 200 || r.body != `{"done":true}` {
		t.Errorf("request in flight during shutdown: got %d %q (error %v), want 200 {\"done\":true}", r.status, r.body, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: got %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("Run did not return within 15 s of cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("GET /healthz after shutdown: got a response, want a connection error")
	}
}

func TestBadStaticUpstreamFailsRun(t *testing.T) {
	t.Parallel()
	for _, static := range []map[string]string{
		{"nope": "http://127.0.0.1:1"},
		{"product": "127.0.0.1:6004"},
		{"product": "ftp://127.0.0.1:6004"},
	} {
		err := gateway.Run(context.Background(), gateway.Config{Addr: testenv.FreeAddr(t), Static: static, TokenKey: testKey}, testenv.Logger(t))
		if err == nil || !strings.Contains(err.Error(), "static upstream") {
			t.Errorf("Run with Static %v: got %v, want a static upstream error", static, err)
		}
	}
}

func TestBusyPortFailsRun(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	err = gateway.Run(context.Background(), gateway.Config{Addr: ln.Addr().String(), TokenKey: testKey}, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a busy port: got %v, want a listen error", err)
	}
}

func TestNoTokenKeyFailsRun(t *testing.T) {
	t.Parallel()
	err := gateway.Run(context.Background(), gateway.Config{Addr: testenv.FreeAddr(t)}, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "TokenKey") {
		t.Errorf("Run without a TokenKey: got %v, want a TokenKey error", err)
	}
}

// TestRegistryOverBus announces instances over the real RabbitMQ and checks that the
// gateway routes to them, drops one that leaves at once, and one that goes silent after
// the TTL.
func TestRegistryOverBus(t *testing.T) {
	t.Parallel()
	exchange := testExchange(t)
	silent, _ := newEcho(t)
	leaving, _ := newEcho(t)
	base := startGateway(t, gateway.Config{RegistryExchange: exchange})
	conn := testenv.Bus(t)
	ctx := context.Background()

	// An instance that goes silent, as if its process died: it announces itself (by hand,
	// every 200 ms, so one announcement is sure to reach the gateway's queue) until it is
	// routable, then never again.
	body, _ := json.Marshal(registry.Instance{Service: "customer", Instance: "customer-test-1", URL: silent.URL})
	silentCtx, silence := context.WithCancel(ctx)
	silentDone := make(chan time.Time, 1) // when the last announcement was sent
	go func() {
		var last time.Time
		for silentCtx.Err() == nil {
			last = time.Now()
			if err := conn.Publish(silentCtx, exchange, "", bus.Message{Body: body, Transient: true}); err != nil && silentCtx.Err() == nil {
				t.Errorf("publish announcement: %v", err)
			}
			select {
			case <-silentCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		silentDone <- last
	}()
	t.Cleanup(silence)

	// A well-behaved instance announces itself until it stops, then says it leaves.
	annCtx, stopAnnouncing := context.WithCancel(ctx)
	annDone := make(chan error, 1)
	go func() {
		annDone <- registry.Announce(annCtx, conn, registry.Instance{Service: "order", Instance: "order-test-1", URL: leaving.URL},
			200*time.Millisecond, testenv.Logger(t), registry.WithExchange(exchange))
	}()
	t.Cleanup(stopAnnouncing)

	waitStatus(t, base+"/customer/users", 200, 5*time.Second)
	silence()
	announced := <-silentDone
	waitStatus(t, base+"/order/orders", 200, 5*time.Second)
	status, _, b := do(t, "GET", base+"/registry", asManager, "")
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
	if status, _, _ := do(t, "GET", base+"/customer/users", asManager, ""); status != 200 && time.Since(announced) < registry.DefaultTTL-time.Second {
		t.Errorf("silent instance before its TTL: got status %d, want 200", status)
	}
	waitStatus(t, base+"/customer/users", 503, registry.DefaultTTL+3*time.Second)
	if since := time.Since(announced); since < registry.DefaultTTL {
		t.Errorf("silent instance dropped after %s, want not before the TTL %s", since, registry.DefaultTTL)
	}
}

// An instance killed without leaving is still announced until its TTL runs out: the
// gateway drops it at the first request that cannot connect to it, sends that request
// (a write too: nothing reached the dead one) to a live instance, and no client sees an
// error.
func TestDeadInstanceDroppedAtOnce(t *testing.T) {
	t.Parallel()
	exchange := testExchange(t)
	live, _ := newEcho(t)
	dead := "http://" + testenv.FreeAddr(t) // nothing listens there
	base := startGateway(t, gateway.Config{RegistryExchange: exchange})
	conn := testenv.Bus(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		_ = registry.Announce(ctx, conn, registry.Instance{Service: "order", Instance: "order-live", URL: live.URL},
			200*time.Millisecond, testenv.Logger(t), registry.WithExchange(exchange))
	}()
	// The dead instance announced itself before it died, and says nothing since.
	body, _ := json.Marshal(registry.Instance{Service: "order", Instance: "order-dead", URL: dead})
	instances := func() int {
		_, _, b := do(t, "GET", base+"/registry", asManager, "")
		var view struct{ Instances []registry.Entry }
		_ = json.Unmarshal(b, &view)
		return len(view.Instances)
	}
	for deadline := time.Now().Add(5 * time.Second); instances() < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not list both instances within 5 s")
		}
		if err := conn.Publish(ctx, exchange, "", bus.Message{Body: body, Transient: true}); err != nil {
			t.Fatal(err)
		}
	}
	announced := time.Now()

	for i := range 10 {
		got, _ := getEcho(t, "POST", base+"/order/orders?page=2", bearer("alice", auth.Customer), `{"n":1}`)
		if got.Method != "POST" || got.Path != "/orders" || got.RawQuery != "page=2" || got.Body != `{"n":1}` {
			t.Errorf("request %d with a dead instance announced: the live one got %s %s?%s %q, want POST /orders?page=2 with the body",
				i, got.Method, got.Path, got.RawQuery, got.Body)
		}
	}
	if n := instances(); n != 1 {
		t.Errorf("after the requests: the registry lists %d instances, want 1 (the dead one dropped)", n)
	}
	if since := time.Since(announced); since >= registry.DefaultTTL {
		t.Errorf("the requests took %s, past the TTL: the test shows nothing about dropping early", since)
	}
}

// waitStatus polls GET url as a manager until it answers status, and fails the test after
// within.
func waitStatus(t *testing.T, url string, status int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, _, body := do(t, "GET", url, asManager, "")
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: got status %d (%s) after %s, want %d", url, got, bytes.TrimSpace(body), within, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An upstream restarted on the same address leaves the gateway holding dead pooled
// connections; the first read after the restart must still get through.
func TestUpstreamRestartedOnSameAddress(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr(t)
	serve := func() *http.Server {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"products": []}`)
		})}
		go srv.Serve(ln)
		return srv
	}
	first := serve()
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": "http://" + addr}})

	// Many requests at once leave many idle connections in the gateway's pool.
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if status, _, _ := do(t, "GET", base+"/product/products", nil, ""); status != http.StatusOK {
				t.Errorf("before the restart: got %d, want 200", status)
			}
		})
	}
	wg.Wait()
	first.Close() // closes the listener and every connection, as a killed process would
	second := serve()
	defer second.Close()
	if status, _, body := do(t, "GET", base+"/product/products", nil, ""); status != http.StatusOK {
		t.Fatalf("first read after the upstream restarted: got %d %s, want 200", status, body)
	}
}
