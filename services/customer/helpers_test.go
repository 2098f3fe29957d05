package customer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/eventstore"
	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/redisclient"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/systest"
)

// adminPass is the bootstrap manager's password in the tests that set it.
const adminPass = "admin password 1"

func redisURL() string { return cmp.Or(os.Getenv("REDIS_URL"), "redis://127.0.0.1:6379/0") }

// testRedis connects to the real Redis and deletes the keys under prefix when t ends.
func testRedis(t testing.TB, prefix string) *redis.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis; skipped with -short")
	}
	rdb, err := redisclient.Open(context.Background(), redisURL(), nil)
	if err != nil {
		t.Fatalf("Redis not reachable at REDIS_URL (start it with `redis-server --daemonize yes`): %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = newStore(rdb, prefix).Reset(ctx, "")
		rdb.Del(ctx, prefix+"checkpoint")
		iter := rdb.Scan(ctx, 0, "rate:"+globEscape(prefix)+"*", 1000).Iterator() // the rate limits' keys
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return rdb
}

// logBuffer keeps everything a service logs, for tests that check what was logged, and
// passes it on to t.Log.
type logBuffer struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf.Write(p)
	b.mu.Unlock()
	b.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig is a Config of the service's own for t, joining the event store and the
// service frame settings of svc: its own key prefix, queue and DATA_DIR.
func testConfig(t testing.TB, svc service.Config) Config {
	name := testenv.Name(t)
	conn := testenv.Bus(t)
	cfg := Config{Service: svc, RedisURL: redisURL(), KeyPrefix: name + ":", DataDir: t.TempDir(),
		AdminPassword: adminPass, Subscription: name + ".customer"}
	testRedis(t, cfg.KeyPrefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.DeleteQueue(ctx, event.Queue(cfg.Subscription))
		_ = conn.DeleteQueue(ctx, event.Queue(cfg.Subscription)+".dead")
	})
	return cfg
}

// running is a customer service running for a test.
type running struct {
	cfg  Config
	logs *logBuffer
	stop func()
}

// runService runs Run with cfg until stop or the end of t, logging into a logBuffer,
// and waits until its /healthz answers 200.
func runService(t testing.TB, cfg Config) *running {
	t.Helper()
	logs := &logBuffer{t: t}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, logger) }()
	var once sync.Once
	r := &running{cfg: cfg, logs: logs, stop: func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("customer Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("customer service did not stop within 15 s")
			}
		})
	}}
	t.Cleanup(r.stop)
	testenv.WaitHealthy(t, "http://"+cfg.Service.Addr+"/healthz", 20*time.Second)
	return r
}

// testSystem is an event store, a gateway and a customer service for one test; api is
// the customer API at the gateway.
type testSystem struct {
	sys *systest.System
	svc *running
	api string
}

func start(t *testing.T) *testSystem {
	t.Helper()
	return startWith(t, func(*Config) {})
}

// startWith is start with the Config that configure changes. The service keys its read
// model under the system's CustomerKeyPrefix, where the gateway reads revocations.
func startWith(t *testing.T, configure func(*Config)) *testSystem {
	t.Helper()
	sys := systest.Start(t)
	cfg := testConfig(t, sys.ServiceConfig(t, "customer"))
	cfg.KeyPrefix = sys.CustomerKeyPrefix()
	testRedis(t, cfg.KeyPrefix)
	configure(&cfg)
	ts := &testSystem{sys: sys, svc: runService(t, cfg), api: sys.GatewayURL + "/customer"}
	ts.waitRouted(t)
	return ts
}

// waitRouted waits until the gateway forwards to the service: an empty login is the
// service's 400.
func (ts *testSystem) waitRouted(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, "the gateway routes /customer to the service", func() bool {
		status, _ := do(t, "POST", ts.api+"/login", "", "{}")
		return status == http.StatusBadRequest
	})
}

// do sends body (a string as is, anything else as JSON; nil for none) with token (if not
// "") and returns the status and the body.
func do(t testing.TB, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// expect sends a request like do and fails t unless the status is want; it decodes the
// answer into out (if not nil) and returns the body.
func expect(t testing.TB, want int, method, url, token string, body, out any) []byte {
	t.Helper()
	status, raw := do(t, method, url, token, body)
	if status != want {
		t.Fatalf("%s %s: got %d %s, want %d", method, url, status, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, raw, err)
		}
	}
	return raw
}

// register registers username with password through the API and logs in.
func (ts *testSystem) register(t *testing.T, username, password string) (token string) {
	t.Helper()
	expect(t, 201, "POST", ts.api+"/users", "", Registration{Username: username, FullName: "Name of " + username,
		Email: username + "@example.com", Password: password}, nil)
	return ts.login(t, username, password)
}

func (ts *testSystem) login(t *testing.T, username, password string) (token string) {
	t.Helper()
	var out struct{ Token string }
	expect(t, 200, "POST", ts.api+"/login", "", Credentials{Username: username, Password: password}, &out)
	return out.Token
}

// feed returns the event store's whole global feed, its pages as it answers them.
func feed(t testing.TB, eventstoreURL string) []byte {
	t.Helper()
	var all []byte
	for after := int64(0); ; {
		status, raw := do(t, "GET", fmt.Sprintf("%s/events?after=%d&limit=1000", eventstoreURL, after), "", nil)
		if status != http.StatusOK {
			t.Fatalf("GET /events: got %d %s, want 200", status, raw)
		}
		all = append(all, raw...)
		var page struct {
			NextAfter int64 `json:"next_after"`
			Head      int64 `json:"head"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			t.Fatal(err)
		}
		if page.NextAfter >= page.Head {
			return all
		}
		after = page.NextAfter
	}
}

// dump returns every user hash of the read model.
func dump(t testing.TB, cfg Config) map[string]map[string]string {
	t.Helper()
	rdb, err := redisclient.Open(context.Background(), cfg.RedisURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	d, err := newStore(rdb, cfg.KeyPrefix).Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// startEventStore runs an event store alone (for fuzz targets and benchmarks, which
// systest.Start does not take) and returns the service frame settings that join it.
func startEventStore(tb testing.TB) service.Config {
	tb.Helper()
	conn := testenv.Bus(tb)
	name := testenv.Name(tb)
	key, err := auth.NewKey([]byte(strings.Repeat("k", 32)))
	if err != nil {
		tb.Fatal(err)
	}
	svc := service.Config{Name: "customer", Addr: testenv.FreeAddr(tb), RabbitMQURL: testenv.RabbitMQURL(),
		TokenKey: key, Exchange: name + ".events", AppendQueue: name + ".append", RegistryExchange: name + ".registry"}
	esAddr := testenv.FreeAddr(tb)
	svc.EventstoreURL = "http://" + esAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- eventstore.Run(ctx, eventstore.Config{Addr: esAddr, RabbitMQURL: svc.RabbitMQURL, DataDir: tb.TempDir(),
			Exchange: svc.Exchange, AppendQueue: svc.AppendQueue, RegistryExchange: svc.RegistryExchange}, testenv.Logger(tb))
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("event store: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.DeleteQueue(ctx, svc.AppendQueue)
		_ = conn.DeleteExchange(ctx, svc.Exchange)
		_ = conn.DeleteExchange(ctx, svc.RegistryExchange)
	})
	testenv.WaitHealthy(tb, svc.EventstoreURL+"/healthz", 20*time.Second)
	return svc
}

func managerToken(key auth.Key) string {
	return key.Sign(auth.Claims{User: "admin", Role: auth.Manager, ExpiresAt: time.Now().Add(time.Hour)})
}
