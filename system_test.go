package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/systest"
)

// shop is the whole shop run as one process per component of the built binary, in a
// RabbitMQ vhost, a DATA_DIR and a namespace of the test's own, so that a test can kill one
// component with SIGKILL and start it again.
type shop struct {
	t       *testing.T
	bin     string
	env     []string
	vhost   string
	urls    map[string]string // component -> base URL
	mu      sync.Mutex
	procs   map[string]*exec.Cmd
	replica map[string]replica // the processes started by startReplica, by key
	exited  map[string]chan struct{}
	output  map[string]*lockedBuffer
	gateway string
	// moreGateways are the gateway replicas (addGateway); call takes them and gateway in
	// turn.
	moreGateways []string
	nextGateway  atomic.Int64
	dataDir      string
}

// backendComponents are the components of the REST API, in start order.
var backendComponents = []string{registry.EventStore, registry.Gateway, registry.Customer, registry.Product,
	registry.Order, registry.Accounting}

const adminPassword = "correct-horse-battery-staple"

// startShop starts the REST API's components (backendComponents) as processes of the built
// binary with the environment extraEnv added, each process running one -target value of
// processes ("order" or "customer,product"), one per component if processes is empty, and
// waits until every component is healthy and the gateway routes every service.
func startShop(t *testing.T, sagaTimeout time.Duration, extraEnv []string, processes ...string) *shop {
	t.Helper()
	for _, name := range backendComponents {
		if _, ok := components[name]; !ok {
			t.Fatalf("component %s is not built yet", name)
		}
	}
	if len(processes) == 0 {
		processes = backendComponents
	}
	namespace := shopNamespace(t)
	s := &shop{t: t, bin: systest.Binary(t), vhost: testenv.VHost(t), urls: map[string]string{},
		procs: map[string]*exec.Cmd{}, replica: map[string]replica{}, exited: map[string]chan struct{}{},
		output: map[string]*lockedBuffer{}}
	s.dataDir = t.TempDir()
	s.env = []string{"DATA_DIR=" + s.dataDir, "RABBITMQ_URL=" + s.vhost, "MSDEMO_NAMESPACE=" + namespace,
		"MSDEMO_ADMIN_PASSWORD=" + adminPassword, "SAGA_TIMEOUT=" + sagaTimeout.String(), "LOG_LEVEL=info",
		"METRICS_ADDR="} // one process per component: they would share the default port
	s.env = append(s.env, extraEnv...)
	for _, name := range backendComponents {
		variable := strings.ToUpper(name) + "_ADDR="
		i := slices.IndexFunc(extraEnv, func(v string) bool { return strings.HasPrefix(v, variable) })
		addr := ""
		if i >= 0 {
			addr = strings.TrimPrefix(extraEnv[i], variable) // chosen by the test
		} else {
			addr = testenv.FreeAddr(t)
			s.env = append(s.env, variable+addr)
		}
		s.urls[name] = "http://" + addr
	}
	s.gateway = s.urls["gateway"]
	t.Cleanup(func() {
		s.mu.Lock()
		keys := slices.Collect(maps.Keys(s.procs))
		s.mu.Unlock()
		for _, key := range keys {
			s.kill(key)
		}
		if t.Failed() {
			for target, out := range s.output {
				t.Logf("--- %s output (last 3000 bytes):\n%s", target, tail(out.String(), 3000))
			}
		}
	})
	for _, target := range processes {
		s.start(target)
	}
	for _, name := range backendComponents {
		testenv.WaitHealthy(t, s.urls[name]+"/healthz", 30*time.Second)
	}
	s.waitRoutable()
	return s
}

// waitRoutable waits until the gateway has heard every service announce itself (an
// instance announces every 2 s; one that started before the gateway listened is routable
// from its next announcement on).
func (s *shop) waitRoutable() {
	s.t.Helper()
	s.waitRoutableAt(s.gateway)
}

// waitRoutableAt is waitRoutable for the gateway at base.
func (s *shop) waitRoutableAt(base string) {
	s.t.Helper()
	key, err := auth.LoadKey("", s.dataDir)
	if err != nil {
		s.t.Fatal(err)
	}
	token := key.Sign(auth.Claims{User: "admin", Role: auth.Manager, ExpiresAt: time.Now().Add(time.Minute)})
	testenv.Eventually(s.t, 15*time.Second, "the gateway at "+base+" routes every service", func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/registry", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var reg struct {
			Instances []struct{ Service string } `json:"instances"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&reg) != nil {
			return false
		}
		seen := map[string]bool{}
		for _, in := range reg.Instances {
			seen[in.Service] = true
		}
		for _, svc := range registry.Upstreams() {
			if !seen[svc] {
				return false
			}
		}
		return true
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start starts a process of the components that target names (a -target value: "order",
// "customer,product"); kill and start take the same value.
func (s *shop) start(target string) {
	s.t.Helper()
	s.startProcess(target, target)
}

// replica is a second process of a service: its address, and the environment that gives
// it that address and a DATA_DIR of its own.
type replica struct {
	service, url string
	env          []string
}

// startReplica starts another process of service, on an address and with a DATA_DIR of
// its own (the shop's token key copied there), under key (for kill and restartReplica),
// and waits until it is healthy and the gateway routes to it as well.
func (s *shop) startReplica(key, service string) {
	s.t.Helper()
	s.startReplicaAt(key, service, testenv.FreeAddr(s.t))
}

// startReplicaAt is startReplica on addr.
func (s *shop) startReplicaAt(key, service, addr string) {
	s.t.Helper()
	r := replica{service: service, url: "http://" + addr,
		env: []string{strings.ToUpper(service) + "_ADDR=" + addr, "DATA_DIR=" + s.newDataDir()}}
	s.mu.Lock()
	s.replica[key] = r
	s.mu.Unlock()
	s.restartReplica(key)
}

// newDataDir returns a DATA_DIR for another process of the shop: its own, with the
// shop's token key.
func (s *shop) newDataDir() string {
	s.t.Helper()
	dataDir := s.t.TempDir()
	keyFile, err := os.ReadFile(filepath.Join(s.dataDir, "token.key"))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "token.key"), keyFile, 0o600); err != nil {
		s.t.Fatal(err)
	}
	return dataDir
}

// addTea creates the category Tea and the product Sencha in it, at priceCents with units
// in stock, as the manager whose token is admin, and returns the product's id.
func (s *shop) addTea(admin string, priceCents, units int) string {
	s.t.Helper()
	var cat, prod struct {
		ID string `json:"id"`
	}
	s.must(http.StatusCreated, http.MethodPost, "/product/categories", admin, map[string]string{"name": "Tea"}, &cat)
	s.must(http.StatusCreated, http.MethodPost, "/product/products", admin, map[string]any{
		"name": "Sencha", "description": "green tea", "supplier": "Uji", "category_id": cat.ID,
		"price_cents": priceCents, "units_in_stock": units}, &prod)
	return prod.ID
}

// addBuyers registers n customers, buyer00, buyer01, ..., each with credit creditCents
// (set by admin), at once, and returns their names and tokens; it stops the test if one
// cannot be made.
func (s *shop) addBuyers(admin string, n int, creditCents int64) (names, tokens []string) {
	s.t.Helper()
	names, tokens = make([]string, n), make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			names[i] = fmt.Sprintf("buyer%02d", i)
			var credit struct {
				Version int64 `json:"version"`
			}
			_ = s.expect(http.StatusCreated, http.MethodPost, "/customer/users", "", map[string]string{
				"username": names[i], "full_name": "Buyer", "email": names[i] + "@example.com", "password": "secret-password"}, nil) &&
				s.expect(http.StatusOK, http.MethodGet, "/customer/users/"+names[i]+"/credit", admin, nil, &credit) &&
				s.expect(http.StatusOK, http.MethodPut, "/customer/users/"+names[i]+"/credit", admin,
					map[string]any{"credit_cents": creditCents, "expected_version": credit.Version}, nil)
			tokens[i] = s.login(names[i], "secret-password")
		})
	}
	wg.Wait()
	if s.t.Failed() {
		s.t.FailNow()
	}
	return names, tokens
}

// restartReplica starts the replica under key again, and waits until it is healthy and
// the gateway routes to it.
func (s *shop) restartReplica(key string) {
	s.t.Helper()
	s.mu.Lock()
	r := s.replica[key]
	s.mu.Unlock()
	s.startProcess(key, r.service, r.env...)
	testenv.WaitHealthy(s.t, r.url+"/healthz", 30*time.Second)
	admin := s.login("admin", adminPassword)
	testenv.Eventually(s.t, 15*time.Second, "the gateway routes to "+key, func() bool {
		var reg struct {
			Instances []struct{ URL string } `json:"instances"`
		}
		return s.call(http.MethodGet, "/registry", admin, nil, &reg) == http.StatusOK &&
			slices.ContainsFunc(reg.Instances, func(in struct{ URL string }) bool { return in.URL == r.url })
	})
}

// startProcess starts a process of target under key, with env added to the shop's.
func (s *shop) startProcess(key, target string, env ...string) {
	s.t.Helper()
	cmd := exec.Command(s.bin, "-target="+target)
	cmd.Env = append(append(os.Environ(), s.env...), env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", key, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.procs[key], s.exited[key], s.output[key] = cmd, exited, out
	s.mu.Unlock()
}

// kill stops the process of target with SIGKILL, as a crash would, and waits until it is
// gone.
func (s *shop) kill(target string) {
	s.mu.Lock()
	cmd, exited := s.procs[target], s.exited[target]
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// call sends a JSON request through the gateway and decodes the answer into out (if not
// nil); it returns the status. With several gateways (addGateway) it takes them in turn
// and acts as a load balancer in front of them would: a gateway that refuses the
// connection is skipped, and one that dies after the request was sent answers 502.
func (s *shop) call(method, path, token string, body, out any) int {
	s.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	s.mu.Lock()
	gateways := append([]string{s.gateway}, s.moreGateways...)
	s.mu.Unlock()
	first := int(s.nextGateway.Add(1))
	var resp *http.Response
	var err error
	for i := range gateways {
		req, e := http.NewRequest(method, gateways[(first+i)%len(gateways)]+path, bytes.NewReader(raw))
		if e != nil {
			s.t.Fatal(e)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if resp, err = http.DefaultClient.Do(req); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
	}
	if err != nil {
		if len(gateways) > 1 && !errors.Is(err, syscall.ECONNREFUSED) {
			return http.StatusBadGateway
		}
		s.t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(answer, out); err != nil {
			s.t.Errorf("%s %s: decode %s: %v", method, path, answer, err)
		}
	}
	return resp.StatusCode
}

// must is call that fails the test unless the status is want.
func (s *shop) must(want int, method, path, token string, body, out any) {
	s.t.Helper()
	if got := s.call(method, path, token, body, out); got != want {
		s.t.Fatalf("%s %s: got status %d, want %d", method, path, got, want)
	}
}

// expect is call that marks the test failed (without stopping it, so that goroutines may
// use it) unless the status is want.
func (s *shop) expect(want int, method, path, token string, body, out any) bool {
	s.t.Helper()
	if got := s.call(method, path, token, body, out); got != want {
		s.t.Errorf("%s %s: got status %d, want %d", method, path, got, want)
		return false
	}
	return true
}

// login returns a token for user, retrying for 30 s while the customer service catches
// up; it marks the test failed and returns "" if it cannot.
func (s *shop) login(user, password string) string {
	s.t.Helper()
	var resp struct {
		Token string `json:"token"`
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if s.call(http.MethodPost, "/customer/login", "", map[string]string{"username": user, "password": password}, &resp) == http.StatusOK {
			return resp.Token
		}
	}
	s.t.Errorf("cannot log in as %s", user)
	return ""
}

type orderView struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Lines    []struct {
		ProductID      string `json:"product_id"`
		Quantity       int64  `json:"quantity"`
		UnitPriceCents int64  `json:"unit_price_cents"`
	} `json:"lines"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason"`
	TotalCents int64     `json:"total_cents"`
	PlacedAt   time.Time `json:"placed_at"`
	Timeline   []struct {
		Step      string    `json:"step"`
		ProductID string    `json:"product_id"`
		At        time.Time `json:"at"`
	} `json:"timeline"`
}

// decidedAt is when the order was approved or rejected (zero while pending).
func (o orderView) decidedAt() time.Time {
	for _, st := range o.Timeline {
		if st.Step == "approved" || st.Step == "rejected" {
			return st.At
		}
	}
	return time.Time{}
}

// scarcityRun is the saga under contention: a product with 50 units, 40 customers with
// credit for 2 units each, 200 concurrent orders of one unit. fault, if not nil, runs once
// about a third of the orders have been placed.
func scarcityRun(t *testing.T, fault func(s *shop)) {
	scarcityRunWith(t, 10*time.Second, nil, fault)
}

// scarcityRunWith is scarcityRun with the saga's timeout, and setup, if not nil, run on
// the shop before anything else (to start replicas, say).
func scarcityRunWith(t *testing.T, sagaTimeout time.Duration, setup func(s *shop), fault func(s *shop)) {
	scarcityRunOn(t, sagaTimeout, nil, setup, fault)
}

// scarcityRunOn is scarcityRunWith on a shop started with extraEnv; it returns the shop.
func scarcityRunOn(t *testing.T, sagaTimeout time.Duration, extraEnv []string, setup func(s *shop), fault func(s *shop)) *shop {
	const (
		units, customers, ordersPerCustomer = 50, 40, 5
		priceCents                          = 1000
	)
	s := startShop(t, sagaTimeout, extraEnv)
	if setup != nil {
		setup(s)
	}
	admin := s.login("admin", adminPassword)
	prodID := s.addTea(admin, priceCents, units)

	names, tokens := s.addBuyers(admin, customers, 2*priceCents)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		placed []string
		faulty sync.Once
	)
	for i := range customers {
		wg.Go(func() {
			for range ordersPerCustomer {
				var o orderView
				status := s.call(http.MethodPost, "/order/orders", tokens[i], map[string]any{"product_id": prodID, "quantity": 1}, &o)
				if status != http.StatusAccepted {
					// A component down for a moment may refuse an order (503): the user
					// sees it and nothing was placed. An order service killed while it
					// placed the order answers nothing (the gateway's 502): the order may
					// be placed or not, and is counted from the order list below.
					// Anything else is a failure.
					if fault == nil || (status != http.StatusServiceUnavailable && status != http.StatusBadGateway) {
						t.Errorf("place order: got status %d, want 202", status)
					}
					continue
				}
				mu.Lock()
				placed = append(placed, o.ID)
				n := len(placed)
				mu.Unlock()
				if fault != nil && n == customers*ordersPerCustomer/3 {
					faulty.Do(func() { fault(s) })
				}
			}
		})
	}
	wg.Wait()
	if len(placed) < customers*ordersPerCustomer/2 {
		t.Fatalf("only %d of %d orders placed", len(placed), customers*ordersPerCustomer)
	}
	if fault != nil {
		// The orders are those the order service has, every acknowledged one among them,
		// and those placed though their answer was lost.
		all := s.allOrders(admin)
		for _, id := range placed {
			if !slices.Contains(all, id) {
				t.Errorf("order %s was acknowledged (202) but is not in the order list", id)
			}
		}
		placed = all
	}

	// Every order is decided within the saga timeout once the system settles.
	orders := s.waitDecided(admin, placed, 2*sagaTimeout+30*time.Second)
	approved := map[string]int64{} // customer -> approved total
	nApproved := 0
	var slowest time.Duration
	for _, o := range orders {
		// No order stays pending past the saga timeout (plus the sweeper's interval).
		took := o.decidedAt().Sub(o.PlacedAt)
		slowest = max(slowest, took)
		if o.decidedAt().IsZero() || took > sagaTimeout+2*time.Second {
			t.Errorf("order %s decided %s after it was placed (timeline %+v), want within the saga timeout %s",
				o.ID, took, o.Timeline, sagaTimeout)
		}
		switch o.Status {
		case "approved":
			nApproved++
			approved[o.Customer] += o.TotalCents
		case "rejected":
			if o.Reason == "" {
				t.Errorf("order %s rejected without a reason", o.ID)
			}
		default:
			t.Errorf("order %s has status %q", o.ID, o.Status)
		}
	}
	t.Logf("%d orders placed: %d approved, %d rejected; the slowest decided %s after placing",
		len(placed), nApproved, len(placed)-nApproved, slowest.Round(time.Millisecond))
	if nApproved > units {
		t.Errorf("%d orders approved for %d units: oversold", nApproved, units)
	}

	// Stock, credit, invoices and revenue match the approved orders once the releases
	// and invoices have been applied.
	testenv.Eventually(t, 30*time.Second, "stock, credit and invoices match the approved orders", func() bool {
		// A service that was restarted answers 503 until it has caught up: keep asking.
		var p struct {
			UnitsInStock int64 `json:"units_in_stock"`
		}
		if s.call(http.MethodGet, "/product/products/"+prodID, "", nil, &p) != http.StatusOK {
			return false
		}
		if p.UnitsInStock != int64(units-nApproved) {
			t.Logf("stock %d, want %d", p.UnitsInStock, units-nApproved)
			return false
		}
		credit := map[string]int64{}
		for _, name := range names {
			credit[name] = 2*priceCents - approved[name]
		}
		return s.creditsAndRevenueAre(admin, names, tokens, credit, nApproved, int64(nApproved*priceCents))
	})

	s.checkRebuildsEqual(admin, []string{prodID}, names, placed)
	return s
}

// creditsAndRevenueAre reports whether each customer of names (logged in with tokens)
// has the credit credit[name], and accounting shows invoices invoices of revenue cents in
// all; it logs what differs.
func (s *shop) creditsAndRevenueAre(admin string, names, tokens []string, credit map[string]int64, invoices int, revenue int64) bool {
	s.t.Helper()
	for i, name := range names {
		var c struct {
			CreditCents int64 `json:"credit_cents"`
		}
		if s.call(http.MethodGet, "/customer/users/"+name+"/credit", tokens[i], nil, &c) != http.StatusOK {
			return false
		}
		if c.CreditCents != credit[name] {
			s.t.Logf("%s has credit %d, want %d", name, c.CreditCents, credit[name])
			return false
		}
	}
	var rev struct {
		RevenueCents int64 `json:"revenue_cents"`
		Invoices     int   `json:"invoices"`
	}
	if s.call(http.MethodGet, "/accounting/revenue", admin, nil, &rev) != http.StatusOK {
		return false
	}
	if rev.Invoices != invoices || rev.RevenueCents != revenue {
		s.t.Logf("revenue %+v, want %d invoices and %d cents", rev, invoices, revenue)
		return false
	}
	return true
}

// waitDecided waits, at most d, until every order of ids is approved or rejected, and
// returns them by id, read as a manager.
func (s *shop) waitDecided(admin string, ids []string, d time.Duration) map[string]orderView {
	s.t.Helper()
	orders := map[string]orderView{}
	testenv.Eventually(s.t, d, "every order approved or rejected", func() bool {
		for _, id := range ids {
			if orders[id].Status == "approved" || orders[id].Status == "rejected" {
				continue
			}
			var o orderView
			if s.call(http.MethodGet, "/order/orders/"+id, admin, nil, &o) != http.StatusOK || o.Status == "pending" {
				return false
			}
			orders[id] = o
		}
		return true
	})
	return orders
}

// allOrders returns the id of every order, read as a manager page by page.
func (s *shop) allOrders(admin string) []string {
	s.t.Helper()
	var ids []string
	after := ""
	for {
		var page struct {
			Orders    []orderView `json:"orders"`
			NextAfter string      `json:"next_after"`
		}
		path := "/order/orders?limit=100"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		s.must(http.StatusOK, http.MethodGet, path, admin, nil, &page)
		for _, o := range page.Orders {
			ids = append(ids, o.ID)
		}
		if page.NextAfter == "" || len(page.Orders) == 0 {
			return ids
		}
		after = page.NextAfter
	}
}

// checkRebuildsEqual stops the services, rebuilds every read model from the event store
// with `msdemo rebuild`, starts them again, and compares what the API shows.
func (s *shop) checkRebuildsEqual(admin string, productIDs, customers, orders []string) {
	s.t.Helper()
	snapshot := func() map[string]string {
		views := map[string]string{}
		get := func(path string) {
			var v any
			s.must(http.StatusOK, http.MethodGet, path, admin, nil, &v)
			b, _ := json.Marshal(v)
			views[path] = string(b)
		}
		for _, p := range productIDs {
			get("/product/products/" + p)
		}
		get("/accounting/revenue")
		for _, c := range customers {
			get("/customer/users/" + c)
		}
		for _, o := range orders {
			get("/order/orders/" + o)
			if s.call(http.MethodGet, "/accounting/invoices/"+o, admin, nil, nil) == http.StatusOK {
				get("/accounting/invoices/" + o)
			}
		}
		return views
	}
	// The services apply each other's last events (releases, invoices) a moment after
	// the figures above settle: take the snapshot once two in a row, a second apart, agree.
	before := snapshot()
	for deadline := time.Now().Add(30 * time.Second); ; {
		time.Sleep(time.Second)
		again := snapshot()
		if maps.Equal(before, again) {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the read models still change 30 s after the saga settled")
		}
		before = again
	}
	services := []string{"customer", "product", "order", "accounting"}
	for _, name := range services {
		s.kill(name)
	}
	s.mu.Lock()
	var replicas []string // of the services: the event store and the gateways stay up
	for _, key := range slices.Sorted(maps.Keys(s.replica)) {
		if slices.Contains(services, s.replica[key].service) {
			replicas = append(replicas, key)
		}
	}
	s.mu.Unlock()
	for _, key := range replicas {
		s.kill(key)
	}
	cmd := exec.Command(s.bin, "rebuild", "-target=all")
	cmd.Env = append(os.Environ(), s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("msdemo rebuild: %v\n%s", err, tail(string(out), 3000))
	}
	for _, name := range services {
		s.start(name)
	}
	for _, key := range replicas { // their read models catch up from their own checkpoints
		s.restartReplica(key)
	}
	for _, name := range services {
		testenv.WaitHealthy(s.t, s.urls[name]+"/healthz", 30*time.Second)
	}
	after := snapshot()
	for path, want := range before {
		if after[path] != want {
			s.t.Errorf("after rebuild %s:\n got %s\nwant %s", path, after[path], want)
		}
	}
}

// The order saga under contention: no oversold stock, no overspent credit, an invoice per
// approved order, every read model equal to a rebuild from the event store.
func TestSagaUnderContention(t *testing.T) {
	scarcityRun(t, nil)
}

// The same with the product component killed (SIGKILL) mid-run and started again.
func TestSagaSurvivesProductCrash(t *testing.T) {
	scarcityRun(t, func(s *shop) {
		s.kill("product")
		time.Sleep(time.Second)
		s.start("product")
	})
}

// The same with the customer component killed mid-run and started again.
func TestSagaSurvivesCustomerCrash(t *testing.T) {
	scarcityRun(t, func(s *shop) {
		s.kill("customer")
		time.Sleep(time.Second)
		s.start("customer")
	})
}

// The same with two replicas of each service, and one replica of each killed (SIGKILL)
// mid-run and left dead: the other carries on (the gateway drops the dead ones, the
// survivors' subscriptions take over, the order saga's included), and the read models of
// both product replicas (each its own SQLite file) agree with a rebuild.
//
// Every product replica decides every order (the store keeps each answer once), so the
// saga does more work here: its timeout is 20 s, not 10, so that a loaded machine does not
// turn slowness into timed-out orders.
func TestSagaWithTwoReplicasOfEachService(t *testing.T) {
	scarcityRunWith(t, 20*time.Second, func(s *shop) {
		for _, name := range []string{"customer", "product", "order", "accounting"} {
			s.startReplica(name+"-2", name)
		}
	}, func(s *shop) {
		for _, name := range []string{"customer", "product", "order", "accounting"} {
			s.kill(name)
		}
	})
}

// The same with every RabbitMQ connection dropped mid-run.
func TestSagaSurvivesDroppedConnections(t *testing.T) {
	scarcityRun(t, func(s *shop) {
		if n := testenv.DropConnections(s.t, s.vhost); n == 0 {
			s.t.Error("dropped no connections")
		}
	})
}
