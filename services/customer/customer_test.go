package customer

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/testenv"
)

// TestAPI drives every route through the gateway as curl would.
func TestAPI(t *testing.T) {
	t.Parallel()
	ts := start(t)
	api := ts.api
	admin := ts.login(t, "admin", adminPass)

	var ann profile
	expect(t, 201, "POST", api+"/users", "", Registration{Username: "ann", FullName: "Ann Lee",
		Email: "ann@example.com", Password: "ann's secret"}, &ann)
	want := profile{Username: "ann", FullName: "Ann Lee", Email: "ann@example.com", Role: auth.Customer,
		CreditCents: 100000, Version: 1}
	if ann != want {
		t.Fatalf("POST /users: got %+v, want %+v", ann, want)
	}
	annToken := ts.login(t, "ann", "ann's secret")
	bobToken := ts.register(t, "bob", "bob's secret")

	t.Run("duplicate username is 409", func(t *testing.T) {
		before := feed(t, ts.sys.EventstoreURL)
		expect(t, 409, "POST", api+"/users", "", Registration{Username: "ann", FullName: "Other Ann",
			Email: "other@example.com", Password: "another secret"}, nil)
		if after := feed(t, ts.sys.EventstoreURL); !bytes.Equal(before, after) {
			t.Errorf("feed changed after a duplicate registration")
		}
	})

	t.Run("login", func(t *testing.T) {
		var out struct {
			Token     string    `json:"token"`
			Role      auth.Role `json:"role"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		expect(t, 200, "POST", api+"/login", "", Credentials{"ann", "ann's secret"}, &out)
		if out.Role != auth.Customer || out.Token == "" || time.Until(out.ExpiresAt) < 23*time.Hour {
			t.Errorf("got %+v, want a customer token valid for about 24 h", out)
		}
		claims, err := ts.sys.TokenKey.Verify(out.Token, time.Now())
		if err != nil || claims.User != "ann" || claims.Role != auth.Customer {
			t.Errorf("token says %+v (%v), want ann, customer", claims, err)
		}
		var wrongPass, noUser httpjson.ErrorBody
		expect(t, 401, "POST", api+"/login", "", Credentials{"ann", "wrong password"}, &wrongPass)
		expect(t, 401, "POST", api+"/login", "", Credentials{"nobody", "ann's secret"}, &noUser)
		if wrongPass.Error != noUser.Error {
			t.Errorf("wrong password says %q, unknown user %q: want one message", wrongPass.Error, noUser.Error)
		}
		var admin struct{ Role auth.Role }
		expect(t, 200, "POST", api+"/login", "", Credentials{"admin", adminPass}, &admin)
		if admin.Role != auth.Manager {
			t.Errorf("admin logs in as %q, want manager", admin.Role)
		}
	})

	t.Run("who may do what", func(t *testing.T) {
		tests := []struct {
			method, path, token string
			body                any
			want                int
		}{
			{"GET", "/users", "", nil, 401},
			{"GET", "/users", annToken, nil, 403},
			{"GET", "/users", admin, nil, 200},
			{"GET", "/users/ann", "", nil, 401},
			{"GET", "/users/ann", "not a token", nil, 401},
			{"GET", "/users/ann", annToken, nil, 200},
			{"GET", "/users/ann", bobToken, nil, 403},
			{"GET", "/users/ann", admin, nil, 200},
			{"GET", "/users/nobody", admin, nil, 404},
			{"GET", "/users/nobody", annToken, nil, 403},
			{"PUT", "/users/ann", bobToken, ProfileChange{FullName: "Evil", Email: "evil@example.com"}, 403},
			{"PUT", "/users/nobody", admin, ProfileChange{FullName: "X", Email: "x@example.com"}, 404},
			{"GET", "/users/ann/credit", annToken, nil, 200},
			{"GET", "/users/ann/credit", bobToken, nil, 403},
			{"GET", "/users/ann/credit", admin, nil, 200},
			{"GET", "/users/nobody/credit", admin, nil, 404},
			{"PUT", "/users/ann/credit", annToken, map[string]int64{"credit_cents": 1 << 40, "expected_version": 1}, 403},
			{"PUT", "/users/ann/credit", "", map[string]int64{"credit_cents": 1, "expected_version": 1}, 401},
			{"PUT", "/users/nobody/credit", admin, map[string]int64{"credit_cents": 1, "expected_version": 1}, 404},
		}
		for _, tt := range tests {
			who := cmpOr(tt.token, "anonymous")[:min(8, len(cmpOr(tt.token, "anonymous")))]
			if status, raw := do(t, tt.method, api+tt.path, tt.token, tt.body); status != tt.want {
				t.Errorf("%s %s as %s: got %d %s, want %d", tt.method, tt.path, who, status, raw, tt.want)
			}
		}
		var got profile
		expect(t, 200, "GET", api+"/users/ann", annToken, nil, &got)
		if got != ann {
			t.Errorf("after forbidden writes: got %+v, want %+v unchanged", got, ann)
		}
	})

	t.Run("list pages", func(t *testing.T) {
		for _, name := range []string{"carl", "dora", "emil"} {
			ts.register(t, name, "password of "+name)
		}
		var names []string
		after := ""
		for range 10 {
			var page struct {
				Users     []profile `json:"users"`
				NextAfter string    `json:"next_after"`
			}
			expect(t, 200, "GET", api+"/users?limit=2&after="+after, admin, nil, &page)
			for _, u := range page.Users {
				names = append(names, u.Username)
				if u.CreditCents == 0 && u.Role == auth.Customer {
					t.Errorf("listed %s without credit", u.Username)
				}
			}
			if after = page.NextAfter; after == "" {
				break
			}
		}
		want := []string{"admin", "ann", "bob", "carl", "dora", "emil"}
		if !slices.Equal(names, want) {
			t.Errorf("got users %v, want %v", names, want)
		}
		expect(t, 400, "GET", api+"/users?limit=0", admin, nil, nil)
	})

	t.Run("profile update", func(t *testing.T) {
		var got profile
		expect(t, 200, "PUT", api+"/users/ann", annToken, ProfileChange{FullName: "Ann Smith", Email: "ann@smith.example"}, &got)
		want := profile{"ann", "Ann Smith", "ann@smith.example", auth.Customer, 100000, 2}
		if got != want {
			t.Fatalf("PUT: got %+v, want %+v", got, want)
		}
		expect(t, 200, "GET", api+"/users/ann", annToken, nil, &got)
		if got != want {
			t.Fatalf("GET after PUT: got %+v, want %+v", got, want)
		}
		before := feed(t, ts.sys.EventstoreURL)
		stale := int64(1)
		expect(t, 409, "PUT", api+"/users/ann", admin, ProfileChange{FullName: "Stale", Email: "s@example.com", ExpectedVersion: &stale}, nil)
		if after := feed(t, ts.sys.EventstoreURL); !bytes.Equal(before, after) {
			t.Errorf("feed changed after a stale update")
		}
		expect(t, 200, "GET", api+"/users/ann", annToken, nil, &got)
		if got != want {
			t.Fatalf("after a stale PUT: got %+v, want %+v", got, want)
		}
		// A manager may change a customer's password; the old one stops working.
		newPass := "a new secret"
		expect(t, 200, "PUT", api+"/users/ann", admin, ProfileChange{FullName: "Ann Smith", Email: "ann@smith.example", Password: &newPass}, &got)
		if got.Version != 3 {
			t.Errorf("after a password change: got version %d, want 3", got.Version)
		}
		expect(t, 401, "POST", api+"/login", "", Credentials{"ann", "ann's secret"}, nil)
		ts.login(t, "ann", newPass)
	})

	t.Run("credit", func(t *testing.T) {
		var c credit
		expect(t, 200, "GET", api+"/users/bob/credit", bobToken, nil, &c)
		if c != (credit{100000, 1}) {
			t.Fatalf("got %+v, want 100000 at version 1", c)
		}
		expect(t, 200, "PUT", api+"/users/bob/credit", admin, map[string]int64{"credit_cents": 2500, "expected_version": 1}, &c)
		if c != (credit{2500, 2}) {
			t.Fatalf("PUT: got %+v, want 2500 at version 2", c)
		}
		before := feed(t, ts.sys.EventstoreURL)
		var conflict struct {
			Error          string `json:"error"`
			CurrentVersion int64  `json:"current_version"`
		}
		expect(t, 409, "PUT", api+"/users/bob/credit", admin, map[string]int64{"credit_cents": 99, "expected_version": 1}, &conflict)
		if conflict.CurrentVersion != 2 {
			t.Errorf("409 says current_version %d, want 2", conflict.CurrentVersion)
		}
		if after := feed(t, ts.sys.EventstoreURL); !bytes.Equal(before, after) {
			t.Errorf("feed changed after a stale credit set")
		}
		expect(t, 200, "GET", api+"/users/bob/credit", admin, nil, &c)
		if c != (credit{2500, 2}) {
			t.Fatalf("after a stale PUT: got %+v, want 2500 at version 2", c)
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestBadInputChangesNothing sends invalid input to every write route: each answers 400
// naming the fields, and the event store's feed stays as it was.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	ts := start(t)
	admin := ts.login(t, "admin", adminPass)
	annToken := ts.register(t, "ann", "ann's secret")
	long := strings.Repeat("x", 10<<10)
	tests := []struct {
		name, method, path, token, body string
		wantField                       string
	}{
		{"register: not JSON", "POST", "/users", "", `{"username":`, "body"},
		{"register: empty", "POST", "/users", "", ``, "body"},
		{"register: array", "POST", "/users", "", `[]`, "body"},
		{"register: trailing data", "POST", "/users", "", `{"username":"zed","full_name":"Zed","email":"z@example.com","password":"12345678"} {}`, "body"},
		{"register: missing fields", "POST", "/users", "", `{}`, "username"},
		{"register: number as username", "POST", "/users", "", `{"username":42,"full_name":"Zed","email":"z@example.com","password":"12345678"}`, "username"},
		{"register: unknown field", "POST", "/users", "", `{"username":"zed","full_name":"Zed","email":"z@example.com","password":"12345678","role":"manager"}`, "role"},
		{"register: 10 KB name", "POST", "/users", "", `{"username":"zed","full_name":"` + long + `","email":"z@example.com","password":"12345678"}`, "full_name"},
		{"register: 10 KB username", "POST", "/users", "", `{"username":"` + long + `","full_name":"Zed","email":"z@example.com","password":"12345678"}`, "username"},
		{"register: bad email", "POST", "/users", "", `{"username":"zed","full_name":"Zed","email":"zed","password":"12345678"}`, "email"},
		{"register: short password", "POST", "/users", "", `{"username":"zed","full_name":"Zed","email":"z@example.com","password":"1234"}`, "password"},
		{"register: bad username", "POST", "/users", "", `{"username":"Zed!","full_name":"Zed","email":"z@example.com","password":"12345678"}`, "username"},
		{"login: not JSON", "POST", "/login", "", `nope`, "body"},
		{"login: missing password", "POST", "/login", "", `{"username":"ann"}`, "password"},
		{"login: wrong type", "POST", "/login", "", `{"username":"ann","password":12345678}`, "password"},
		{"profile: not JSON", "PUT", "/users/ann", annToken, `{`, "body"},
		{"profile: missing email", "PUT", "/users/ann", annToken, `{"full_name":"Ann"}`, "email"},
		{"profile: 10 KB name", "PUT", "/users/ann", annToken, `{"full_name":"` + long + `","email":"a@example.com"}`, "full_name"},
		{"profile: unknown field", "PUT", "/users/ann", annToken, `{"full_name":"Ann","email":"a@example.com","credit_cents":1}`, "credit_cents"},
		{"profile: password null is fine but version string", "PUT", "/users/ann", annToken, `{"full_name":"Ann","email":"a@example.com","expected_version":"1"}`, "expected_version"},
		{"profile: short password", "PUT", "/users/ann", annToken, `{"full_name":"Ann","email":"a@example.com","password":"short"}`, "password"},
		{"profile: negative version", "PUT", "/users/ann", annToken, `{"full_name":"Ann","email":"a@example.com","expected_version":-1}`, "expected_version"},
		{"credit: negative", "PUT", "/users/ann/credit", admin, `{"credit_cents":-1,"expected_version":1}`, "credit_cents"},
		{"credit: absurd", "PUT", "/users/ann/credit", admin, `{"credit_cents":10000000001,"expected_version":1}`, "credit_cents"},
		{"credit: beyond int64", "PUT", "/users/ann/credit", admin, `{"credit_cents":1e30,"expected_version":1}`, "credit_cents"},
		{"credit: fraction", "PUT", "/users/ann/credit", admin, `{"credit_cents":1.5,"expected_version":1}`, "credit_cents"},
		{"credit: string", "PUT", "/users/ann/credit", admin, `{"credit_cents":"100","expected_version":1}`, "credit_cents"},
		{"credit: missing version", "PUT", "/users/ann/credit", admin, `{"credit_cents":100}`, "expected_version"},
		{"credit: missing all", "PUT", "/users/ann/credit", admin, `{}`, "credit_cents"},
		{"credit: unknown field", "PUT", "/users/ann/credit", admin, `{"credit_cents":100,"expected_version":1,"x":1}`, "x"},
		{"credit: null", "PUT", "/users/ann/credit", admin, `null`, "credit_cents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := feed(t, ts.sys.EventstoreURL)
			var got httpjson.ErrorBody
			expect(t, 400, tt.method, ts.api+tt.path, tt.token, tt.body, &got)
			if _, ok := got.Fields[tt.wantField]; !ok || got.Error != "invalid input" {
				t.Errorf("got %+v, want invalid input naming field %q", got, tt.wantField)
			}
			if after := feed(t, ts.sys.EventstoreURL); !bytes.Equal(before, after) {
				t.Errorf("the event store's feed changed")
			}
		})
	}
}

// TestPasswordsNeverLeak registers and changes a password: neither password shows in the
// event store's feed, in any answer, or in the service's logs.
func TestPasswordsNeverLeak(t *testing.T) {
	t.Parallel()
	ts := start(t)
	first, second := "first-Secret-8f3k", "second-Secret-2m9q"
	var bodies [][]byte
	bodies = append(bodies, expect(t, 201, "POST", ts.api+"/users", "", Registration{Username: "ann", FullName: "Ann",
		Email: "ann@example.com", Password: first}, nil))
	var login struct{ Token string }
	bodies = append(bodies, expect(t, 200, "POST", ts.api+"/login", "", Credentials{"ann", first}, &login))
	bodies = append(bodies, expect(t, 200, "PUT", ts.api+"/users/ann", login.Token, map[string]string{
		"full_name": "Ann", "email": "ann@example.com", "password": second, "current_password": first}, nil))
	bodies = append(bodies, expect(t, 200, "POST", ts.api+"/login", "", Credentials{"ann", second}, &login))
	bodies = append(bodies, expect(t, 200, "GET", ts.api+"/users/ann", login.Token, nil, nil))
	_, wrong := do(t, "POST", ts.api+"/login", "", Credentials{"ann", first})
	bodies = append(bodies, wrong)
	admin := ts.login(t, "admin", adminPass)
	bodies = append(bodies, expect(t, 200, "GET", ts.api+"/users", admin, nil, nil))
	events := feed(t, ts.sys.EventstoreURL)
	if !bytes.Contains(events, []byte("password_hash")) {
		t.Fatalf("the feed has no password_hash: %s", events)
	}
	logs := ts.svc.logs.String()
	for _, p := range []string{first, second, adminPass} {
		if bytes.Contains(events, []byte(p)) {
			t.Errorf("the event feed holds the password %q", p)
		}
		if strings.Contains(logs, p) {
			t.Errorf("the logs hold the password %q", p)
		}
		for _, b := range bodies {
			if bytes.Contains(b, []byte(p)) || bytes.Contains(b, []byte("password_hash")) {
				t.Errorf("an answer holds a password or its hash: %s", b)
			}
		}
	}
}

// TestReadYourWrites: a GET right after a write sees it, 100 times in a row.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	ts := start(t)
	admin := ts.login(t, "admin", adminPass)
	annToken := ts.register(t, "ann", "ann's secret")
	version := int64(1)
	var writes, reads time.Duration
	for i := range 100 {
		cents := int64(1000 + i)
		began := time.Now()
		var c credit
		expect(t, 200, "PUT", ts.api+"/users/ann/credit", admin, map[string]int64{"credit_cents": cents, "expected_version": version}, &c)
		wrote := time.Now()
		var got credit
		expect(t, 200, "GET", ts.api+"/users/ann/credit", annToken, nil, &got)
		writes, reads = writes+wrote.Sub(began), reads+time.Since(wrote)
		version++
		if want := (credit{cents, version}); got != want || c != want {
			t.Fatalf("set %d: PUT answered %+v, GET %+v, want %+v", i, c, got, want)
		}
	}
	for i := range 100 {
		name := fmt.Sprintf("Ann %d", i)
		expect(t, 200, "PUT", ts.api+"/users/ann", annToken, ProfileChange{FullName: name, Email: "ann@example.com"}, nil)
		var got profile
		expect(t, 200, "GET", ts.api+"/users/ann", annToken, nil, &got)
		if got.FullName != name {
			t.Fatalf("update %d: GET shows %q, want %q", i, got.FullName, name)
		}
	}
	t.Logf("through the gateway: PUT credit (append + applied) %v on average, GET after it %v",
		writes/100, reads/100)
}

// TestRebuild deletes the read model and restarts the service: it rebuilds the read
// model from the event store to exactly what it was. Rebuild does the same.
func TestRebuild(t *testing.T) {
	t.Parallel()
	ts := start(t)
	admin := ts.login(t, "admin", adminPass)
	for i := range 5 {
		name := fmt.Sprintf("user%d", i)
		tok := ts.register(t, name, "password "+name)
		expect(t, 200, "PUT", ts.api+"/users/"+name, tok, ProfileChange{FullName: "Renamed " + name, Email: name + "@new.example"}, nil)
		expect(t, 200, "PUT", ts.api+"/users/"+name+"/credit", admin, map[string]int64{"credit_cents": int64(i * 100), "expected_version": 2}, nil)
	}
	cfg := ts.svc.cfg
	before := dump(t, cfg)
	if len(before) != 6 {
		t.Fatalf("read model has %d users, want 6", len(before))
	}

	ts.svc.stop()
	rdb := testRedis(t, cfg.KeyPrefix)
	if err := newStore(rdb, cfg.KeyPrefix).Reset(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	rdb.Del(context.Background(), cfg.KeyPrefix+"checkpoint", cfg.KeyPrefix+"schema")
	if n, _ := rdb.Keys(context.Background(), cfg.KeyPrefix+"*").Result(); len(n) != 0 {
		t.Fatalf("keys left after deleting: %v", n)
	}
	ts.svc = runService(t, cfg)
	if after := dump(t, cfg); !reflect.DeepEqual(after, before) {
		t.Errorf("after a restart on an empty Redis:\n got %v\nwant %v", after, before)
	}
	ts.waitRouted(t)
	ts.login(t, "user3", "password user3")

	// Rebuild with the service stopped, over the read model as it is.
	ts.svc.stop()
	if err := Rebuild(context.Background(), cfg, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, cfg); !reflect.DeepEqual(after, before) {
		t.Errorf("after Rebuild:\n got %v\nwant %v", after, before)
	}
	_, pos, err := newStore(rdb, cfg.KeyPrefix).Checkpoint(context.Background())
	if err != nil || pos == 0 {
		t.Errorf("checkpoint after Rebuild: position %d (%v), want > 0", pos, err)
	}
}

// TestAdminBootstrap: without an admin password configured, the service generates one,
// keeps it in DATA_DIR/admin-password (0600), and a second start reuses it.
func TestAdminBootstrap(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, startEventStore(t))
	cfg.AdminPassword = ""
	svc := runService(t, cfg)
	path := filepath.Join(cfg.DataDir, "admin-password")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, info.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	password := strings.TrimSpace(string(raw))
	if len(password) < 16 {
		t.Errorf("generated password has %d characters, want 16 or more", len(password))
	}
	if strings.Contains(svc.logs.String(), password) {
		t.Errorf("the logs hold the generated password")
	}
	base := "http://" + cfg.Service.Addr
	expect(t, 200, "POST", base+"/login", "", Credentials{"admin", password}, nil)
	svc.stop()

	// A second replica (or a restart) finds admin and the file as they are.
	svc = runService(t, cfg)
	raw2, _ := os.ReadFile(path)
	if string(raw2) != string(raw) {
		t.Errorf("admin-password changed on restart")
	}
	var admin profile
	expect(t, 200, "GET", base+"/users/admin", managerToken(cfg.Service.TokenKey), nil, &admin)
	if admin.Version != 1 || admin.Role != auth.Manager {
		t.Errorf("got admin %+v, want a manager at version 1 (registered once)", admin)
	}
	if got := slices.Collect(maps.Keys(dump(t, cfg))); len(got) != 1 {
		t.Errorf("got users %v, want only admin", got)
	}
}
