package customer

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/redisclient"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/testenv"
)

// fuzzTarget is the service's handler, in process, over a real Redis and event store
// started once per fuzz target, with a customer "fuzz" registered.
type fuzzTarget struct {
	h       http.Handler
	app     *app
	manager string
}

func startFuzzTarget(f *testing.F) *fuzzTarget {
	f.Helper()
	cfg := testConfig(f, startEventStore(f))
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	rdb, err := redisclient.Open(ctx, cfg.RedisURL, nil)
	if err != nil {
		f.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler) // a 500 shows in the status; fuzzing logs a lot
	rt, err := service.Start(ctx, cfg.Service, logger)
	if err != nil {
		f.Fatal(err)
	}
	a, err := newApp(cfg, rt, newStore(rdb, cfg.KeyPrefix))
	if err != nil {
		f.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.subscribe(ctx) })
	wg.Go(func() { _ = a.bootstrap(ctx) })
	f.Cleanup(func() {
		cancel()
		wg.Wait()
		rt.Close()
		rdb.Close()
	})
	testenv.Eventually(f, 20*time.Second, "the service is ready", a.ready.Load)
	ft := &fuzzTarget{h: a.routes(), app: a, manager: managerToken(cfg.Service.TokenKey)}
	if code := ft.serve("POST", "/users", "", []byte(`{"username":"fuzz","full_name":"Fuzz","email":"fuzz@example.com","password":"fuzz password"}`)); code != 201 {
		f.Fatalf("register fuzz: got %d, want 201", code)
	}
	return ft
}

func (ft *fuzzTarget) serve(method, path, token string, body []byte) int {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	ft.h.ServeHTTP(rec, req)
	return rec.Code
}

func (ft *fuzzTarget) head(t *testing.T) int64 {
	t.Helper()
	page, err := ft.app.rt.Events.Feed(context.Background(), 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return page.Head
}

// check sends body and fails t on a 5xx, or on a 4xx that appended an event.
func (ft *fuzzTarget) check(t *testing.T, method, path, token string, body []byte) {
	before := ft.head(t)
	code := ft.serve(method, path, token, body)
	if code >= 500 {
		t.Fatalf("%s %s %q: got %d, want no 5xx", method, path, body, code)
	}
	if code >= 400 {
		if after := ft.head(t); after != before {
			t.Fatalf("%s %s %q: got %d and the event store's head moved from %d to %d", method, path, body, code, before, after)
		}
	}
}

func FuzzRegister(f *testing.F) {
	f.Add([]byte(`{"username":"ann","full_name":"Ann","email":"ann@example.com","password":"12345678"}`))
	f.Add([]byte(`{"username":"fuzz","full_name":"Fuzz","email":"fuzz@example.com","password":"12345678"}`))
	f.Add([]byte(`{"username":1}`))
	ft := startFuzzTarget(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ft.check(t, "POST", "/users", "", body)
	})
}

func FuzzLogin(f *testing.F) {
	f.Add([]byte(`{"username":"fuzz","password":"fuzz password"}`))
	f.Add([]byte(`{"username":"fuzz","password":"wrong"}`))
	f.Add([]byte(`{"username":"","password":null}`))
	ft := startFuzzTarget(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ft.check(t, "POST", "/login", "", body)
	})
}

func FuzzUpdateProfile(f *testing.F) {
	f.Add([]byte(`{"full_name":"Fuzz Two","email":"fuzz2@example.com"}`))
	f.Add([]byte(`{"full_name":"Fuzz","email":"fuzz@example.com","password":"new password","expected_version":1}`))
	f.Add([]byte(`{"full_name":"Fuzz","email":"fuzz@example.com","expected_version":999}`))
	ft := startFuzzTarget(f)
	customer := ft.app.rt.TokenKey.Sign(auth.Claims{User: "fuzz", Role: auth.Customer, ExpiresAt: time.Now().Add(time.Hour)})
	f.Fuzz(func(t *testing.T, body []byte) {
		ft.check(t, "PUT", "/users/fuzz", customer, body)
	})
}

func FuzzSetCredit(f *testing.F) {
	f.Add([]byte(`{"credit_cents":500,"expected_version":1}`))
	f.Add([]byte(`{"credit_cents":-1,"expected_version":1}`))
	f.Add([]byte(`{"credit_cents":1e99,"expected_version":1}`))
	ft := startFuzzTarget(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ft.check(t, "PUT", "/users/fuzz/credit", ft.manager, body)
	})
}
