package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
)

// metricFamilies are the families every all-in-one process serves (issue 10), each with
// the components whose series it must hold once the shop runs.
var metricFamilies = map[string][]string{
	"msdemo_http_requests_total":                {registry.Gateway, registry.Product, registry.Order, registry.EventStore},
	"msdemo_http_request_duration_seconds":      {registry.Gateway, registry.Product, registry.Order, registry.EventStore},
	"msdemo_bus_published_total":                componentNames(),
	"msdemo_bus_consumed_total":                 {registry.EventStore, registry.Order, registry.Customer, registry.Product, registry.Accounting},
	"msdemo_bus_dead_lettered_total":            {registry.Order, registry.Customer, registry.Product, registry.Accounting},
	"msdemo_bus_reconnects_total":               componentNames(),
	"msdemo_subscription_position":              registry.Subscribers(),
	"msdemo_subscription_lag_events":            registry.Subscribers(),
	"msdemo_eventstore_appended_events_total":   {registry.EventStore},
	"msdemo_eventstore_head_position":           {registry.EventStore},
	"msdemo_eventstore_commit_duration_seconds": {registry.EventStore},
	"msdemo_eventstore_batch_requests":          {registry.EventStore},
	"msdemo_orders_total":                       {registry.Order},
	"msdemo_saga_duration_seconds":              {registry.Order},
	"msdemo_sse_clients":                        {registry.Storefront, registry.Admin},
	"go_goroutines":                             nil,
	"process_cpu_seconds_total":                 nil,
}

// One order through a shop that runs every component in this process: GET /metrics on
// METRICS_ADDR has every family, each msdemo_ series labelled by its component, and the
// counters an order moves have moved (compared before and after, not timed). Route
// labels are patterns, never raw paths, and the gateway does not serve /metrics.
func TestMetricsAfterAnOrder(t *testing.T) {
	t.Parallel()
	s := startInProcess(t)

	before := s.scrape()
	for name, components := range metricFamilies {
		mf, ok := before[name]
		if !ok {
			t.Errorf("family %s missing from /metrics", name)
			continue
		}
		for _, c := range components {
			if !hasComponent(mf, c) {
				t.Errorf("%s: no series with component=%q", name, c)
			}
		}
		if strings.HasPrefix(name, "msdemo_") {
			for _, m := range mf.Metric {
				if label(m, "component") == "" {
					t.Errorf("%s: a series without a component label: %v", name, m.Label)
				}
			}
		}
	}

	customer := s.customer("metrics_alice")
	var o struct{ ID string }
	if status := s.api(http.MethodPost, "/order/orders", customer, map[string]any{"product_id": s.product, "quantity": 2}, &o); status != http.StatusAccepted {
		t.Fatalf("place an order: got %d, want 202", status)
	}
	testenv.Eventually(t, 20*time.Second, "the order is approved", func() bool {
		var got struct{ Status string }
		return s.api(http.MethodGet, "/order/orders/"+o.ID, customer, nil, &got) == http.StatusOK && got.Status == "approved"
	})
	if status := s.api(http.MethodGet, "/product/products/"+s.product, "", nil, nil); status != http.StatusOK {
		t.Fatalf("GET /product/products/%s: got %d, want 200", s.product, status)
	}
	// The subscription gauges are set every 2 s; the invoice is the last event of the order.
	var after map[string]*dto.MetricFamily
	testenv.Eventually(t, 20*time.Second, "accounting's subscription has applied the invoice", func() bool {
		after = s.scrape()
		return value(after, "msdemo_subscription_position", "component", registry.Accounting) >=
			value(after, "msdemo_eventstore_head_position", "component", registry.EventStore) &&
			value(after, "msdemo_eventstore_head_position", "component", registry.EventStore) >
				value(before, "msdemo_eventstore_head_position", "component", registry.EventStore)
	})

	moved := []struct {
		name    string
		labels  []string
		atLeast float64
	}{
		{"msdemo_http_requests_total", []string{"component", registry.Gateway, "route", "/order/orders", "code", "202"}, 1},
		{"msdemo_http_requests_total", []string{"component", registry.Order, "route", "/orders", "code", "202"}, 1},
		{"msdemo_http_requests_total", []string{"component", registry.Gateway, "route", "/product/products/{id}", "code", "200"}, 1},
		{"msdemo_http_requests_total", []string{"component", registry.Product, "route", "/products/{id}", "code", "200"}, 1},
		{"msdemo_http_request_duration_seconds", []string{"component", registry.Order, "route", "/orders"}, 1},
		{"msdemo_bus_published_total", []string{"component", registry.EventStore}, 5},
		{"msdemo_bus_published_total", []string{"component", registry.Order}, 1},
		{"msdemo_bus_consumed_total", []string{"component", registry.EventStore, "queue", "eventstore.append"}, 1},
		{"msdemo_bus_consumed_total", []string{"component", registry.Order, "queue", "order.events"}, 3},
		{"msdemo_bus_consumed_total", []string{"component", registry.Accounting, "queue", "accounting.events"}, 1},
		{"msdemo_eventstore_appended_events_total", []string{"component", registry.EventStore}, 5},
		{"msdemo_eventstore_head_position", []string{"component", registry.EventStore}, 5},
		{"msdemo_eventstore_commit_duration_seconds", []string{"component", registry.EventStore}, 1},
		{"msdemo_eventstore_batch_requests", []string{"component", registry.EventStore}, 1},
		{"msdemo_orders_total", []string{"component", registry.Order, "outcome", "approved"}, 1},
		{"msdemo_saga_duration_seconds", []string{"component", registry.Order}, 1},
	}
	for _, m := range moved {
		if d := value(after, m.name, m.labels...) - value(before, m.name, m.labels...); d < m.atLeast {
			t.Errorf("%s%v: moved by %v, want at least %v", m.name, m.labels, d, m.atLeast)
		}
	}
	for _, name := range []string{"msdemo_orders_total"} {
		for _, outcome := range []string{"rejected", "timed_out"} {
			if d := value(after, name, "outcome", outcome) - value(before, name, "outcome", outcome); d != 0 {
				t.Errorf("%s{outcome=%q}: moved by %v, want 0 (the one order was approved)", name, outcome, d)
			}
		}
	}
	for _, name := range []string{"msdemo_http_requests_total", "msdemo_http_request_duration_seconds"} {
		for _, m := range after[name].GetMetric() {
			if route := label(m, "route"); strings.Contains(route, s.product) || strings.Contains(route, o.ID) {
				t.Errorf("%s: route label %q holds an id, want the route pattern", name, route)
			}
		}
	}
	if lag := value(after, "msdemo_subscription_lag_events", "component", registry.Accounting); lag < 0 {
		t.Errorf("accounting's lag: got %v, want >= 0", lag)
	}

	// A browser on the admin's live feed is an SSE client while its stream is open.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(s.urls[registry.Admin]+"/login", url.Values{"username": {"admin"},
		"password": {adminPassword}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	streamCtx, closeStream := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(streamCtx, http.MethodGet, s.urls[registry.Admin]+"/events/feed", nil)
	stream, err := browser.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events/feed of the admin site: got %v %v, want 200 text/event-stream", stream, err)
	}
	testenv.Eventually(t, 10*time.Second, "msdemo_sse_clients{component=admin} is 1", func() bool {
		return value(s.scrape(), "msdemo_sse_clients", "component", registry.Admin) == 1
	})
	closeStream()
	stream.Body.Close()
	testenv.Eventually(t, 10*time.Second, "msdemo_sse_clients{component=admin} is 0 again", func() bool {
		return value(s.scrape(), "msdemo_sse_clients", "component", registry.Admin) == 0
	})

	// Profiles are served only with METRICS_PPROF=on (TestProfilesByComponent).
	if resp, err := http.Get(s.metrics + "/debug/pprof/"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without METRICS_PPROF: got %d, want 404", resp.StatusCode)
	}

	// /metrics has its own listener: neither the gateway nor a component serves it.
	for _, name := range []string{registry.Gateway, registry.Order, registry.Storefront} {
		resp, err := http.Get(s.urls[name] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s/metrics (%s): got 200, want it not served there", s.urls[name], name)
		}
	}
}

// inProcess is a shop whose components run in the test's process, through run.
type inProcess struct {
	t       *testing.T
	urls    map[string]string // component → http://addr
	metrics string            // http://METRICS_ADDR
	rabbit  string            // RABBITMQ_URL: the test's own vhost
	manager string            // a manager's token
	product string            // a product with stock
}

// startInProcess runs a shop of every component in the test's process, with its own
// namespace, vhost and ports, and the variables extraEnv ("NAME=value") besides.
func startInProcess(t *testing.T, extraEnv ...string) *inProcess {
	t.Helper()
	namespace := shopNamespace(t)
	dataDir := t.TempDir()
	s := &inProcess{t: t, urls: map[string]string{}}
	env := map[string]string{"DATA_DIR": dataDir, "RABBITMQ_URL": testenv.VHost(t), "MSDEMO_NAMESPACE": namespace,
		"MSDEMO_ADMIN_PASSWORD": adminPassword, "LOG_LEVEL": "warn", "METRICS_ADDR": testenv.FreeAddr(t)}
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, c := range registry.Components() {
		addr := testenv.FreeAddr(t)
		env[strings.ToUpper(c.Name)+"_ADDR"] = addr
		s.urls[c.Name] = "http://" + addr
	}
	s.metrics = "http://" + env["METRICS_ADDR"]
	s.rabbit = env["RABBITMQ_URL"]
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, mapEnv(env), out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("msdemo output (last 3000 bytes):\n%s", tail(out.String(), 3000))
		}
	})
	for _, c := range registry.Components() {
		testenv.WaitHealthy(t, s.urls[c.Name]+"/healthz", 30*time.Second)
	}
	testenv.WaitHealthy(t, s.metrics+"/healthz", 5*time.Second)

	key, err := auth.LoadKey("", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	s.manager = key.Sign(auth.Claims{User: "admin", Role: auth.Manager, ExpiresAt: time.Now().Add(10 * time.Minute)})
	testenv.Eventually(t, 20*time.Second, "the gateway routes every service", func() bool {
		for _, p := range []string{"/product/categories", "/order/orders", "/accounting/invoices", "/customer/users", "/eventstore/events"} {
			if s.api(http.MethodGet, p, s.manager, nil, nil) != http.StatusOK {
				return false
			}
		}
		return true
	})
	var c, p struct{ ID string }
	s.must(http.StatusCreated, http.MethodPost, "/product/categories", s.manager, map[string]any{"name": "Garden"}, &c)
	s.must(http.StatusCreated, http.MethodPost, "/product/products", s.manager, map[string]any{"name": "Watering can",
		"description": "Ten litres.", "supplier": "Acme", "category_id": c.ID, "price_cents": 500, "units_in_stock": 10}, &p)
	s.product = p.ID
	return s
}

// customer registers username and returns a token of theirs.
func (s *inProcess) customer(username string) string {
	s.t.Helper()
	const password = "a long enough password"
	s.must(http.StatusCreated, http.MethodPost, "/customer/users", "", map[string]any{"username": username,
		"full_name": "Alice", "email": username + "@example.com", "password": password}, nil)
	var l struct{ Token string }
	s.must(http.StatusOK, http.MethodPost, "/customer/login", "", map[string]any{"username": username, "password": password}, &l)
	return l.Token
}

func (s *inProcess) api(method, path, token string, in, out any) int {
	s.t.Helper()
	var body bytes.Buffer
	if in != nil {
		_ = json.NewEncoder(&body).Encode(in)
	}
	req, _ := http.NewRequest(method, s.urls[registry.Gateway]+path, &body)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (s *inProcess) must(want int, method, path, token string, in, out any) {
	s.t.Helper()
	if got := s.api(method, path, token, in, out); got != want {
		s.t.Fatalf("%s %s: got %d, want %d", method, path, got, want)
	}
}

// scrape reads GET /metrics as Prometheus would.
func (s *inProcess) scrape() map[string]*dto.MetricFamily {
	s.t.Helper()
	resp, err := http.Get(s.metrics + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /metrics: got %s, want 200", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func hasComponent(mf *dto.MetricFamily, component string) bool {
	for _, m := range mf.GetMetric() {
		if label(m, "component") == component {
			return true
		}
	}
	return false
}

// value sums the series of family name whose labels match pairs (name, value, ...): a
// counter's or gauge's value, a histogram's count of observations. 0 if there is none.
func value(families map[string]*dto.MetricFamily, name string, pairs ...string) float64 {
	var sum float64
series:
	for _, m := range families[name].GetMetric() {
		for i := 0; i+1 < len(pairs); i += 2 {
			if label(m, pairs[i]) != pairs[i+1] {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// With METRICS_PPROF=on the metrics listener serves a CPU profile whose samples are
// labelled by component: orders placed while it is taken cost the order service and the
// event store CPU, and the profile says so. (Not with go test -cpuprofile: one CPU profile
// at a time.)
func TestProfilesByComponent(t *testing.T) {
	t.Parallel()
	s := startInProcess(t, "METRICS_PPROF=on")
	customer := s.customer("profile_alice")
	body, _ := json.Marshal(map[string]any{"product_id": s.product, "quantity": 1})

	// Four customers' worth of orders, placed until the profile is taken; failures
	// (the shop stopping at the end) are not the test's subject.
	ctx, stop := context.WithCancel(t.Context())
	var placing sync.WaitGroup
	for range 4 {
		placing.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.urls[registry.Gateway]+"/order/orders", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+customer)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	defer placing.Wait()
	defer stop()

	resp, err := http.Get(s.metrics + "/debug/pprof/profile?seconds=3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/pprof/profile: got %d, want 200", resp.StatusCode)
	}
	p, err := profile.Parse(resp.Body)
	if err != nil {
		t.Fatalf("parse the profile: %v", err)
	}
	labelled := map[string]int{}
	for _, sample := range p.Sample {
		for _, c := range sample.Label["component"] {
			labelled[c]++
		}
	}
	// The two busiest: on a loaded machine the others may get no sample in 3 s.
	for _, c := range []string{registry.Order, registry.EventStore} {
		if labelled[c] == 0 {
			t.Errorf("no sample labelled component=%s while orders were placed; samples by label: %v", c, labelled)
		}
	}
}

// METRICS_ADDR="" turns metrics off: none of the ports the process opens serves /metrics.
// Not parallel, so that the listeners this process opens meanwhile are run's alone.
func TestMetricsOffLeavesNoListener(t *testing.T) {
	before := listeningPorts(t)
	addr := testenv.FreeAddr(t)
	env := map[string]string{"DATA_DIR": t.TempDir(), "RABBITMQ_URL": testenv.VHost(t), "METRICS_ADDR": "",
		"MSDEMO_NAMESPACE": shopNamespace(t), "LOG_LEVEL": "warn", "EVENTSTORE_ADDR": addr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &lockedBuffer{}
	go func() { done <- run(ctx, []string{"-target=" + registry.EventStore}, mapEnv(env), out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, tail(out.String(), 3000))
		}
	})
	testenv.WaitHealthy(t, "http://"+addr+"/healthz", 30*time.Second)
	opened := 0
	for port := range listeningPorts(t) {
		if before[port] {
			continue
		}
		opened++
		if port == 9464 {
			t.Errorf("the default METRICS_ADDR port 9464 is open with METRICS_ADDR=\"\"")
		}
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
		if err != nil {
			continue // not HTTP: the embedded FerretDB's wire protocol
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("port %d answers GET /metrics with METRICS_ADDR=\"\", want no metrics listener", port)
		}
	}
	if opened == 0 {
		t.Fatalf("found no port the event store opened; the test cannot see listeners")
	}
}

// listeningPorts returns the TCP ports this process listens on, from /proc.
func listeningPorts(t *testing.T) map[int]bool {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list open files (needs Linux /proc): %v", err)
	}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if port, err := strconv.ParseInt(hexPort, 16, 32); err == nil {
				ports[int(port)] = true
			}
		}
	}
	return ports
}
