package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
)

const (
	adminPassword    = "bench-admin-password"
	customerPassword = "bench-customer-password"
	priceCents       = 100
	productCount     = 50 // the listing of the HTTP runs asks for 50
	orderedProducts  = 8  // orders spread over the first 8 products
)

// shop is one msdemo process with every component, and what the bench created for it.
type shop struct {
	logger    *slog.Logger
	opts      options
	tmp       string // binary, DATA_DIR, nginx and FerretDB dirs
	vhost     string
	busURL    string // RabbitMQ URL of the vhost
	namespace string
	addr      map[string]string // component -> host:port
	// metricsAddr serves msdemo's /metrics and /debug/pprof/; empty when metrics are off.
	metricsAddr string
	cmd         *exec.Cmd
	exited      chan struct{}
	proxy       *countingProxy // the sites' GATEWAY_URL
	output      *tailBuffer

	http      *http.Client
	admin     string   // manager token
	products  []string // ids
	customers []customer
}

type customer struct{ name, token string }

// startShop builds msdemo and starts it with every component.
func startShop(ctx context.Context, o options, logger *slog.Logger) (_ *shop, err error) {
	tmp, err := os.MkdirTemp("", "msdemo-bench-")
	if err != nil {
		return nil, err
	}
	suffix := randomHex(4)
	s := &shop{logger: logger, opts: o, tmp: tmp, namespace: "bench" + suffix, vhost: "msdemo-bench-" + suffix,
		addr: map[string]string{}, output: &tailBuffer{max: 8000},
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()

	bin, err := buildMsdemo(ctx, tmp, logger)
	if err != nil {
		return nil, err
	}
	if s.busURL, err = testenv.CreateVHost(o.RabbitMQ, s.vhost); err != nil {
		return nil, err
	}

	env, err := componentEnv(o, filepath.Join(tmp, "data"), s.busURL, s.namespace, s.addr,
		"MSDEMO_START_CREDIT_CENTS=1000000000000", "SAGA_TIMEOUT=30s")
	if err != nil {
		return nil, err
	}
	if s.proxy, err = startCountingProxy(s.addr[registry.Gateway]); err != nil {
		return nil, err
	}
	env = append(env, "GATEWAY_URL=http://"+s.proxy.addr(), "EVENTSTORE_URL=http://"+s.addr[registry.EventStore])
	// Metrics are on, as in production, on a free port unless METRICS_ADDR says otherwise
	// ("" for off: the bench's metrics on/off comparison).
	// Its profiles are served too, for the saturation run's CPU by component.
	s.metricsAddr = os.Getenv("METRICS_ADDR")
	if _, set := os.LookupEnv("METRICS_ADDR"); !set {
		if s.metricsAddr, err = testenv.FreeLoopbackAddr(); err != nil {
			return nil, err
		}
		env = append(env, "METRICS_ADDR="+s.metricsAddr)
	}
	if s.metricsAddr != "" {
		env = append(env, "METRICS_PPROF=on")
		if host, port, err := net.SplitHostPort(s.metricsAddr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			s.metricsAddr = net.JoinHostPort("127.0.0.1", port) // ":9464" listens on every address
		}
	}

	logger.Info("starting msdemo (all components in one process)", "vhost", s.vhost, "namespace", s.namespace)
	s.cmd = exec.Command(bin)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start msdemo: %w", err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	for _, c := range registry.Components() {
		if err := s.waitOK(ctx, "http://"+s.addr[c.Name]+"/healthz", 60*time.Second); err != nil {
			return nil, fmt.Errorf("%s did not become healthy: %w\nmsdemo output:\n%s", c.Name, err, s.output)
		}
	}
	if err := s.poll(ctx, 30*time.Second, func() bool {
		var l struct{ Token string }
		return s.api(ctx, http.MethodPost, "/customer/login", "", map[string]string{"username": "admin", "password": adminPassword}, &l) == http.StatusOK &&
			(func() bool { s.admin = l.Token; return true })()
	}); err != nil {
		return nil, fmt.Errorf("log in as admin: %w\nmsdemo output:\n%s", err, s.output)
	}
	if err := s.poll(ctx, 30*time.Second, func() bool {
		for _, p := range []string{"/product/categories", "/order/orders", "/accounting/invoices", "/customer/users", "/eventstore/events?limit=1"} {
			if s.api(ctx, http.MethodGet, p, s.admin, nil, nil) != http.StatusOK {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("the gateway does not route every service: %w", err)
	}
	return s, nil
}

// exitError says how msdemo ended, with its last output.
func (s *shop) exitError() error {
	return fmt.Errorf("msdemo exited during the run (%v); its last output:\n%s", s.cmd.ProcessState, s.output)
}

// stop ends msdemo and deletes what the bench created. It is safe to call on a
// half-started shop.
func (s *shop) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.proxy != nil {
		s.proxy.close()
	}
	deleteShared(s.opts, s.namespace, s.vhost, s.logger)
	_ = os.RemoveAll(s.tmp)
}

// componentEnv is the environment of the msdemo processes of a load tool (the bench, the
// soak): their data under dataDir, the bus at busURL, namespace's databases and keys, a
// free loopback port per component (recorded in addr), then extra. Every client of a
// load tool comes from this one address, so the rate limits of login and registration
// and the per-address connection cap are off: they would turn the load into 429s and
// refused connections.
func componentEnv(o options, dataDir, busURL, namespace string, addr map[string]string, extra ...string) ([]string, error) {
	env := []string{"DATA_DIR=" + dataDir, "RABBITMQ_URL=" + busURL,
		"POSTGRES_URL=" + o.Postgres, "REDIS_URL=" + o.Redis, "MONGODB_URI=",
		"MSDEMO_NAMESPACE=" + namespace, "MSDEMO_ADMIN_PASSWORD=" + adminPassword, "LOG_LEVEL=warn",
		"MSDEMO_RATE_LIMITS=off", "HTTP_MAX_CONNS_PER_IP=0"}
	for _, c := range registry.Components() {
		a, err := testenv.FreeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		addr[c.Name] = a
		env = append(env, strings.ToUpper(c.Name)+"_ADDR="+a)
	}
	return append(env, extra...), nil
}

// deleteRedisKeys deletes every Redis key of the shop of namespace (<namespace>:...), all in
// one DEL, and returns how many it deleted.
func deleteRedisKeys(ctx context.Context, redisURL, namespace string) (int, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return 0, err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	var keys []string
	iter := rdb.Scan(ctx, 0, namespace+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		return 0, err
	}
	// One DEL, which Redis runs at once, as a restart loses every key at once: deleted one
	// by one, the customers would go before the schema key that tells the service they
	// are gone, and for that moment a login would be "wrong password".
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		return 0, err
	}
	return len(keys), nil
}

// buildMsdemo builds the msdemo command into dir and returns the binary's path.
func buildMsdemo(ctx context.Context, dir string, logger *slog.Logger) (string, error) {
	logger.Info("building msdemo")
	bin := filepath.Join(dir, "msdemo")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = moduleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build msdemo: %w\n%s", err, out)
	}
	return bin, nil
}

// deleteShared deletes what a shop of namespace kept on the shared servers: its
// PostgreSQL databases, its Redis keys and its RabbitMQ vhost ("": none).
func deleteShared(o options, namespace, vhost string, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, db := range []string{"order", "accounting", "product"} {
		if err := postgres.Drop(ctx, o.Postgres, namespace+"_"+db); err != nil {
			logger.Warn("drop database", "database", namespace+"_"+db, "error", err)
		}
	}
	if _, err := deleteRedisKeys(ctx, o.Redis, namespace); err != nil {
		logger.Warn("delete Redis keys", "namespace", namespace, "error", err)
	}
	if vhost != "" {
		testenv.DeleteVHost(vhost)
	}
}

// seed creates a category, the products (with stock for every order of the run) and the
// customers (with credit for every order: MSDEMO_START_CREDIT_CENTS), and logs them in.
func (s *shop) seed(ctx context.Context, customers int) error {
	s.logger.Info("seeding", "products", productCount, "customers", customers)
	var cat struct{ ID string }
	if st := s.api(ctx, http.MethodPost, "/product/categories", s.admin, map[string]string{"name": "Bench"}, &cat); st != http.StatusCreated {
		return fmt.Errorf("add category: got %d, want 201", st)
	}
	for i := range productCount {
		var p struct{ ID string }
		st := s.api(ctx, http.MethodPost, "/product/products", s.admin, map[string]any{
			"name": fmt.Sprintf("Bench item %02d", i), "description": "A product of the load benchmark.",
			"supplier": "Bench & Co", "category_id": cat.ID, "price_cents": priceCents, "units_in_stock": 1_000_000}, &p)
		if st != http.StatusCreated {
			return fmt.Errorf("add product: got %d, want 201", st)
		}
		s.products = append(s.products, p.ID)
	}
	s.customers = make([]customer, customers)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 4) // password hashing is slow: a few at a time
	)
	for i := range customers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("buyer%03d", i)
			st := s.api(ctx, http.MethodPost, "/customer/users", "", map[string]string{"username": name,
				"full_name": "Bench Buyer", "email": name + "@example.com", "password": customerPassword}, nil)
			var l struct{ Token string }
			if st == http.StatusCreated {
				st = s.api(ctx, http.MethodPost, "/customer/login", "", map[string]string{"username": name, "password": customerPassword}, &l)
			}
			mu.Lock()
			defer mu.Unlock()
			if st != http.StatusOK {
				errs = append(errs, fmt.Errorf("register and log in %s: got %d", name, st))
			}
			s.customers[i] = customer{name: name, token: l.Token}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// api calls the gateway with in as JSON (nil: no body), decodes a 2xx answer into out (nil:
// ignore it) and returns the status, 0 if the gateway could not be reached.
func (s *shop) api(ctx context.Context, method, path, token string, in, out any) int {
	return s.call(ctx, "http://"+s.addr[registry.Gateway]+path, method, token, in, out)
}

func (s *shop) call(ctx context.Context, url, method, token string, in, out any) int {
	return s.callWith(ctx, url, method, token, nil, in, out)
}

// callWith is call with extra request headers.
func (s *shop) callWith(ctx context.Context, url, method, token string, header http.Header, in, out any) int {
	req, err := jsonRequest(ctx, method, url, token, header, in)
	if err != nil {
		return 0
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return 0
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode
}

// jsonRequest is a request of the API: in as JSON (nil: no body), the bearer token ("":
// none) and the extra headers.
func jsonRequest(ctx context.Context, method, url, token string, header http.Header, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// waitOK polls url until it answers 200, for at most d.
func (s *shop) waitOK(ctx context.Context, url string, d time.Duration) error {
	return s.poll(ctx, d, func() bool { return s.call(ctx, url, http.MethodGet, "", nil, nil) == http.StatusOK })
}

// poll calls ok every 100 ms until it is true, for at most d; it fails early if msdemo exited.
func (s *shop) poll(ctx context.Context, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for {
		if ok() {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("msdemo exited:\n%s", s.output)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
	}
}

// rssMB is msdemo's resident memory (VmRSS) in MB, 0 if unreadable.
func (s *shop) rssMB() float64 { return rssMB(s.cmd.Process.Pid) }

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// moduleRoot is the repository's root (where go.mod is), found from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

func numCPU() int { return runtime.NumCPU() }

// tailBuffer keeps the last max bytes written to it; it is safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
