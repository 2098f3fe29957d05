package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a-h/templ"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web"
	"github.com/msdemo/msdemo/internal/web/webtest"
	"github.com/msdemo/msdemo/static"
)

func TestNewOrderView(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	o := web.Order{ID: "o1", Customer: "ada", Lines: []web.OrderLine{{ProductID: "p1", Quantity: 3, UnitPriceCents: 2499}},
		TotalCents: 7497, Status: "approved", PlacedAt: at,
		Timeline: []web.TimelineStep{{Step: "placed", At: at},
			{Step: "stock rejected", ProductID: "p1", At: at.Add(time.Second), Reason: "out of stock"}}}
	v := web.NewOrderView(o, map[string]string{"p1": "Watering can"})
	want := web.OrderView{ID: "o1", Customer: "ada",
		Lines:   []web.LineView{{ProductID: "p1", Product: "Watering can", Quantity: "3", UnitPrice: "€24.99", Total: "€74.97"}},
		Summary: "Watering can", Units: "3", Total: "€74.97", Status: "approved", PlacedAt: "26 Nov 2026 10:00:00 UTC", InvoiceReady: true,
		Timeline: []web.StepView{{Label: "The order was placed.", At: "26 Nov 2026 10:00:00 UTC", DateTime: "2026-11-26T10:00:00Z"},
			{Label: "The stock was not reserved: out of stock.", At: "26 Nov 2026 10:00:01 UTC", DateTime: "2026-11-26T10:00:01Z"}}}
	if got, _ := json.Marshal(v); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("got %s, want %s", got, must(json.Marshal(want)))
	}

	// An order of several lines names the line of a stock step; a line's own name comes
	// before the names looked up.
	o.Lines = append(o.Lines, web.OrderLine{ProductID: "p2", Name: "Rake", Quantity: 1, UnitPriceCents: 1000})
	o.Timeline = append(o.Timeline, web.TimelineStep{Step: "stock released", ProductID: "p2", Reason: "x"})
	o.Reason = "Watering can (line 1): out of stock"
	v = web.NewOrderView(o, map[string]string{"p1": "Watering can", "p2": "Old rake"})
	if v.Summary != "Watering can and 1 more" || v.Units != "4" || v.Lines[1].Product != "Rake" {
		t.Errorf("two lines: got summary %q, units %s, line 2 %q; want \"Watering can and 1 more\", 4, Rake",
			v.Summary, v.Units, v.Lines[1].Product)
	}
	if got, want := v.Timeline[1].Label, "The stock of Watering can was not reserved: out of stock."; got != want {
		t.Errorf("a line's step: got %q, want %q", got, want)
	}
	if got, want := v.Timeline[2].Label, "The reserved stock of Rake was released, because the order was rejected (Watering can (line 1): out of stock)."; got != want {
		t.Errorf("a line's release: got %q, want %q", got, want)
	}

	// A product without a name is shown by its id; an order not yet decided is pending
	// and has no invoice.
	v = web.NewOrderView(web.Order{ID: "o2", Lines: []web.OrderLine{{ProductID: "p2"}}}, nil)
	if v.Summary != "p2" || v.Status != "pending" || v.InvoiceReady || v.PlacedAt != "" {
		t.Errorf("undecided order: got product %q, status %q, invoice %v, placed %q; want p2, pending, false, \"\"",
			v.Summary, v.Status, v.InvoiceReady, v.PlacedAt)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// gateway is a stand-in for the shop's REST API that answers the product and order
// reads and counts the requests per path.
type gateway struct {
	mu    sync.Mutex
	calls map[string]int    // path → requests
	query map[string]string // path → its last query
}

func newGateway(t *testing.T) (*gateway, *web.Client) {
	g := &gateway{calls: map[string]int{}, query: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.calls[r.URL.Path]++
		g.query[r.URL.Path] = r.URL.RawQuery
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/product/products/p1":
			w.Write([]byte(`{"id":"p1","name":"Watering can"}`))
		case "/product/products/p2":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no such product"}`))
		case "/product/products":
			w.Write([]byte(`{"products":[{"id":"p1","name":"Watering can","category_id":"c1"}],"next_after":"p1"}`))
		case "/order/orders":
			w.Write([]byte(`{"orders":[{"id":"o2","lines":[{"product_id":"p1"}]},{"id":"o1","lines":[{"product_id":"p2"}]}],"next_after":""}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return g, web.NewClient(srv.URL, nil)
}

func (g *gateway) count(path string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[path]
}

func TestClientLists(t *testing.T) {
	g, api := newGateway(t)
	ctx := context.Background()

	orders, next, err := api.Orders(ctx, "tok", "approved", "o9", 20)
	if err != nil || len(orders) != 2 || next != "" {
		t.Fatalf("orders: got %d orders, next %q, %v; want 2, \"\", nil", len(orders), next, err)
	}
	if q, _ := url.ParseQuery(g.query["/order/orders"]); q.Get("status") != "approved" || q.Get("after") != "o9" || q.Get("limit") != "20" {
		t.Errorf("orders query: got %s, want status=approved, after=o9, limit=20", g.query["/order/orders"])
	}
	if _, _, err := api.Orders(ctx, "tok", "", "", 5); err != nil || g.query["/order/orders"] != "limit=5" {
		t.Errorf("first page of every status: got query %q (%v), want limit=5 alone", g.query["/order/orders"], err)
	}

	products, next, err := api.Products(ctx, "", "c1", "", "", web.MaxPage)
	if err != nil || len(products) != 1 || products[0].CategoryID != "c1" || next != "p1" {
		t.Errorf("products: got %+v, next %q, %v; want one of c1, next p1", products, next, err)
	}
	if q, _ := url.ParseQuery(g.query["/product/products"]); q.Get("category_id") != "c1" || q.Get("limit") != "500" || q.Has("after") {
		t.Errorf("products query: got %s, want category_id=c1, limit=500, no after", g.query["/product/products"])
	}

	// Two orders of one product read it once; a product that cannot be read is named "",
	// so that its view shows the id; a line with a name is not looked up.
	orders = append(orders, web.Order{ID: "o3", Lines: []web.OrderLine{{ProductID: "p1"}, {ProductID: "p3", Name: "Rake"}}})
	views := web.OrderViews(ctx, api, orders)
	if len(views) != 3 || views[0].ID != "o2" || views[0].Summary != "Watering can" || views[1].Summary != "p2" ||
		views[2].Lines[0].Product != "Watering can" || views[2].Lines[1].Product != "Rake" {
		t.Errorf("order views: got %+v, want o2 (Watering can), o1 (p2), o3 (Watering can)", views)
	}
	if n := g.count("/product/products/p1"); n != 1 {
		t.Errorf("product p1 read %d times for three orders, want once", n)
	}
}

// newSite returns a site whose sessions live in the test's Redis, under a prefix of
// t's own that is deleted when t ends.
func newSite(t *testing.T) *web.Site {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis; skipped with -short")
	}
	prefix := "msdemo:" + testenv.Name(t) + ":"
	sessions, err := web.OpenSessions(context.Background(), web.SessionConfig{RedisURL: testenv.RedisURL(),
		Prefix: prefix, CookieName: "msdemo_test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		opts, _ := redis.ParseURL(testenv.RedisURL())
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		sessions.Close()
	})
	return &web.Site{Name: "test site", Home: "/", Login: "/login", Sessions: sessions, Logger: testenv.Logger(t)}
}

func TestNewRouter(t *testing.T) {
	site := newSite(t)
	r := web.NewRouter(site)
	r.Get("/page", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<p>page</p>")) })
	srv := httptest.NewServer(site.Handler(r))
	t.Cleanup(srv.Close)

	for _, c := range []struct {
		method, path string
		status       int
		body         string // a part of the answer
	}{
		{"GET", "/healthz", http.StatusOK, "ok"},
		{"GET", "/page", http.StatusOK, "page"},
		{"GET", "/nothing-here", http.StatusNotFound, `data-testid="error-404"`},
		{"DELETE", "/page", http.StatusNotFound, `data-testid="error-404"`}, // a method the path does not take
		{"GET", static.Path("css/shop.css"), http.StatusOK, "{"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s: got %d %.80q, want %d with %q", c.method, c.path, resp.StatusCode, body, c.status, c.body)
		}
	}
}

func TestLoginHandlers(t *testing.T) {
	site := newSite(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username, Password string }
		if r.URL.Path != "/customer/login" || json.NewDecoder(r.Body).Decode(&in) != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		role := map[string]string{"ada": "customer", "boss": "manager"}[in.Username]
		if role == "" || in.Password != "right" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"wrong username or password"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token": "token-of-" + in.Username, "role": role,
			"expires_at": time.Now().Add(time.Hour)})
	}))
	t.Cleanup(api.Close)
	login := &web.LoginHandlers{Site: site, API: web.NewClient(api.URL, nil), Role: "customer",
		WrongRole: "Managers log in elsewhere.", LoggedOut: "/bye",
		Page: func(v web.LoginView) templ.Component { return web.LoginForm(v) }}
	r := web.NewRouter(site)
	r.Get("/login", login.HandleForm)
	r.Post("/login", login.HandleLogIn)
	r.Post("/logout", login.HandleLogOut)
	for _, path := range []string{"/", "/orders", "/bye"} {
		r.Get(path, func(w http.ResponseWriter, r *http.Request) {
			u, _ := site.Sessions.User(r.Context())
			site.Render(w, r, http.StatusOK, "Page", templ.Raw(`<p data-testid="user">`+u.Username+`</p>`))
		})
	}
	srv := httptest.NewServer(site.Handler(r))
	t.Cleanup(srv.Close)
	b := webtest.NewBrowser(t, srv.URL)

	if p := b.Get("/login?next=/orders"); p.Status != http.StatusOK || p.Value("next") != "/orders" {
		t.Errorf("log-in form: got %d with next %q, want 200 with /orders", p.Status, p.Value("next"))
	}
	p := b.Post("/login", url.Values{"username": {"boss"}, "password": {"right"}, "next": {"/orders"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("form-error") != "Managers log in elsewhere." ||
		p.Value("username") != "boss" {
		t.Errorf("account of another role: got %d %q (username %q), want 422 with WrongRole and the username kept",
			p.Status, p.TestID("form-error"), p.Value("username"))
	}
	if p := b.Get("/"); p.TestID("user") != "" {
		t.Errorf("after a refused log-in: the session has user %q, want none", p.TestID("user"))
	}
	p = b.Post("/login", url.Values{"username": {"ada"}, "password": {"wrong"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("form-error") != "Wrong username or password." {
		t.Errorf("wrong password: got %d %q, want 422 Wrong username or password.", p.Status, p.TestID("form-error"))
	}
	p = b.Post("/login", url.Values{"username": {" ada "}, "password": {"right"}, "next": {"//evil.example/"}}, nil)
	if p.URL != "/" || p.TestID("user") != "ada" || p.TestID("flash") != "You are logged in." {
		t.Errorf("log in with a next on another site: got %s, user %q, flash %q; want / as ada, You are logged in.",
			p.URL, p.TestID("user"), p.TestID("flash"))
	}
	p = b.Post("/logout", url.Values{}, nil)
	if p.URL != "/bye" || p.TestID("user") != "" || p.TestID("flash") != "You are logged out." {
		t.Errorf("log out: got %s, user %q, flash %q; want /bye, no user, You are logged out.", p.URL, p.TestID("user"), p.TestID("flash"))
	}
}

// TestRunSite runs a site until its context is done: it serves the handler that
// NewHandler builds, refuses a second site on the same address at once, and returns nil
// after a graceful shutdown.
func TestRunSite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis and RabbitMQ; skipped with -short")
	}
	prefix := "msdemo:" + testenv.Name(t) + ":"
	cfg := web.SiteConfig{Addr: testenv.FreeAddr(t), RedisURL: testenv.RedisURL(), RabbitMQURL: testenv.RabbitMQURL(),
		SessionPrefix: prefix}
	spec := web.SiteSpec{Name: "testsite", CookieName: "msdemo_testsite", LiveKeys: []string{"order.*"},
		NewHandler: func(logger *slog.Logger, api *web.Client, sessions *web.Sessions, hub *web.Hub, keepAlive time.Duration) http.Handler {
			site := &web.Site{Name: "test site", Home: "/", Login: "/login", Sessions: sessions, Logger: logger}
			return site.Handler(web.NewRouter(site))
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running errgroup.Group // a RunSite that does not return hangs the test until go test's -timeout
	running.Go(func() error { return web.RunSite(ctx, spec, cfg, testenv.Logger(t)) })
	testenv.WaitHealthy(t, "http://"+cfg.Addr+"/healthz", 20*time.Second)

	err := web.RunSite(context.Background(), spec, cfg, testenv.Logger(t))
	if err == nil || !strings.HasPrefix(err.Error(), "testsite: listen on "+cfg.Addr) {
		t.Errorf("a second site on %s: got %v, want testsite: listen on %s: ...", cfg.Addr, err, cfg.Addr)
	}

	cancel()
	if err := running.Wait(); err != nil {
		t.Errorf("after cancel: got %v, want nil", err)
	}
	if _, err := http.Get("http://" + cfg.Addr + "/healthz"); err == nil {
		t.Errorf("after RunSite returned, %s still answers", cfg.Addr)
	}
}

func TestPager(t *testing.T) {
	for _, c := range []struct {
		name      string
		paged     bool
		nextAfter string
		want      []string // parts of the HTML; nil for none at all
		wantNot   []string
	}{
		{"one page", false, "", nil, nil},
		{"first of several", false, "o 9&x", []string{`href="/orders?status=&amp;after=o+9%26x"`, `data-testid="page-next"`},
			[]string{`data-testid="page-first"`}},
		{"last of several", true, "", []string{`href="/orders?status="`, `data-testid="page-first"`},
			[]string{`data-testid="page-next"`}},
	} {
		var b strings.Builder
		if err := web.Pager(c.paged, "/orders?status=", "/orders?status=&after=", c.nextAfter).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		if c.want == nil && b.Len() != 0 {
			t.Errorf("%s: got %s, want nothing", c.name, b.String())
		}
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: got %s, want %s in it", c.name, b.String(), w)
			}
		}
		for _, w := range c.wantNot {
			if strings.Contains(b.String(), w) {
				t.Errorf("%s: got %s, want no %s", c.name, b.String(), w)
			}
		}
	}
}
