package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/admin"
	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/systest"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/accounting"
	"github.com/msdemo/msdemo/services/customer"
	"github.com/msdemo/msdemo/services/order"
	"github.com/msdemo/msdemo/services/product"
)

// The bootstrap manager of the test shop, and a customer.
const (
	managerName     = "admin"
	managerPassword = "admin password 1"
	customerName    = "ada"
	customerPass    = "analytical engine"
)

// shop is a whole shop running for one test: event store, gateway, the four services
// and the admin site, in a RabbitMQ virtual host of the test's own.
type shop struct {
	t             *testing.T
	sys           *systest.System
	URL           string // the admin site
	GatewayURL    string
	RedisURL      string
	SessionPrefix string
	Category      string // id of the category "Garden"
	Product       string // id of the product "Watering can" in it
}

// startShop starts the shop. It sets RABBITMQ_URL to a virtual host of t's own (so the
// services' queues, whose names some of them fix, meet no other test's), hence t may not
// run in parallel.
func startShop(t *testing.T) *shop {
	t.Helper()
	t.Setenv("RABBITMQ_URL", testenv.VHost(t))
	sys := systest.Start(t)
	name := testenv.Name(t)
	redisURL := testenv.RedisURL()
	cleanRedis(t, redisURL, name+":")

	cust := sys.ServiceConfig(t, "customer")
	systest.Go(t, "customer", func(ctx context.Context) error {
		return customer.Run(ctx, customer.Config{Service: cust, RedisURL: redisURL, KeyPrefix: name + ":customer:",
			DataDir: t.TempDir(), AdminPassword: managerPassword}, testenv.Logger(t))
	})
	prod := sys.ServiceConfig(t, "product")
	systest.Go(t, "product", func(ctx context.Context) error {
		return product.Run(ctx, product.Config{Service: prod, DataDir: t.TempDir()}, testenv.Logger(t))
	})
	ord := sys.ServiceConfig(t, "order")
	systest.Go(t, "order", func(ctx context.Context) error {
		return order.Run(ctx, order.Config{Service: ord, PostgresURL: testenv.PostgresURL(),
			Database: testenv.DatabaseName(t, "ad_order"), SagaTimeout: 5 * time.Second}, testenv.Logger(t))
	})
	acc := sys.ServiceConfig(t, "accounting")
	systest.Go(t, "accounting", func(ctx context.Context) error {
		return accounting.Run(ctx, accounting.Config{Service: acc, PostgresURL: testenv.PostgresURL(),
			Database: testenv.DatabaseName(t, "ad_acc")}, testenv.Logger(t))
	})
	for _, u := range []string{cust.Addr, prod.Addr, ord.Addr, acc.Addr} {
		testenv.WaitHealthy(t, "http://"+u+"/healthz", 30*time.Second)
	}

	addr := testenv.FreeAddr(t)
	s := &shop{t: t, sys: sys, URL: "http://" + addr, GatewayURL: sys.GatewayURL, RedisURL: redisURL,
		SessionPrefix: name + ":session:"}
	systest.Go(t, "admin", func(ctx context.Context) error {
		return admin.Run(ctx, admin.Config{Addr: addr, GatewayURL: sys.GatewayURL, RedisURL: redisURL,
			SessionPrefix: s.SessionPrefix, RabbitMQURL: testenv.RabbitMQURL(), Exchange: sys.Exchange,
			KeepAlive: time.Second}, testenv.Logger(t))
	})
	testenv.WaitHealthy(t, s.URL+"/healthz", 20*time.Second)

	// The gateway routes to a service once it heard its announcement.
	manager := sys.Token(managerName, auth.Manager)
	testenv.Eventually(t, 20*time.Second, "gateway routes to every service", func() bool {
		for _, p := range []string{"/product/categories", "/order/orders", "/accounting/invoices", "/customer/users", "/eventstore/events"} {
			if status, err := s.api(http.MethodGet, p, manager, nil, nil); err != nil || status != http.StatusOK {
				return false
			}
		}
		return true
	})
	var c struct{ ID string }
	s.mustAPI(http.MethodPost, "/product/categories", manager, map[string]any{"name": "Garden"}, &c)
	var p struct{ ID string }
	s.mustAPI(http.MethodPost, "/product/products", manager, map[string]any{"name": "Watering can",
		"description": "Ten litres, galvanised steel.", "supplier": "Acme", "category_id": c.ID,
		"price_cents": 2499, "units_in_stock": 50}, &p)
	s.Category, s.Product = c.ID, p.ID
	s.mustAPI(http.MethodPost, "/customer/users", "", map[string]string{"username": customerName,
		"full_name": "Ada Lovelace", "email": "ada@example.com", "password": customerPass}, nil)
	return s
}

// customerToken logs the customer in through the API.
func (s *shop) customerToken() string {
	s.t.Helper()
	var l struct{ Token string }
	s.mustAPI(http.MethodPost, "/customer/login", "", map[string]string{"username": customerName, "password": customerPass}, &l)
	return l.Token
}

// cleanRedis deletes the keys under prefix when t ends.
func cleanRedis(t *testing.T, redisURL, prefix string) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis not reachable at REDIS_URL (start it with `redis-server --daemonize yes`): %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
}

// api calls the gateway and returns the status.
func (s *shop) api(method, path, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.GatewayURL+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

func (s *shop) mustAPI(method, path, token string, in, out any) {
	s.t.Helper()
	status, err := s.api(method, path, token, in, out)
	if err != nil || status/100 != 2 {
		s.t.Fatalf("%s %s: got %d %v, want 2xx", method, path, status, err)
	}
}

// browser is a plain HTTP client with a cookie jar: a browser without JavaScript.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (s *shop) newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: s.URL, c: &http.Client{Jar: jar, Timeout: 15 * time.Second}}
}

// loggedIn returns a browser with a manager's session.
func (s *shop) loggedIn(t *testing.T) *browser {
	t.Helper()
	b := s.newBrowser(t)
	if p := b.post("/login", url.Values{"username": {managerName}, "password": {managerPassword}}, nil); p.URL != "/" {
		t.Fatalf("manager log in: got %d at %s (%q), want the dashboard", p.Status, p.URL, p.testID("form-error"))
	}
	return b
}

// page is an answer: its final URL (after redirects), status and document.
type page struct {
	URL    string
	Status int
	Doc    *goquery.Document
}

func (b *browser) get(path string) page {
	b.t.Helper()
	return b.do(http.MethodGet, path, nil, nil)
}

func (b *browser) post(path string, form url.Values, header http.Header) page {
	b.t.Helper()
	return b.do(http.MethodPost, path, form, header)
}

func (b *browser) do(method, path string, form url.Values, header http.Header) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: parse HTML: %v", method, path, err)
	}
	return page{URL: strings.TrimPrefix(resp.Request.URL.String(), b.base), Status: resp.StatusCode, Doc: doc}
}

// testID returns the text of the first element with data-testid id.
func (p page) testID(id string) string {
	return strings.TrimSpace(p.Doc.Find(`[data-testid="` + id + `"]`).First().Text())
}

func (p page) count(id string) int {
	return p.Doc.Find(`[data-testid="` + id + `"]`).Length()
}

// value returns the value of the input named name.
func (p page) value(name string) string {
	return p.Doc.Find(`[name="`+name+`"]`).First().AttrOr("value", "")
}
