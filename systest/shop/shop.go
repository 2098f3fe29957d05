// Package shop runs a whole shop inside a test: event store, gateway, customer, product,
// order and accounting, each on a free port, in a RabbitMQ virtual host of the test's own,
// with Redis keys, a SQLite file and PostgreSQL databases of the test's own. The sites
// (storefront, admin) import this package and start themselves on it with StartSite.
//
// It is a package of its own, not part of systest, because it imports the services, and
// the services' in-package tests import systest.
package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web"
	"github.com/msdemo/msdemo/services/accounting"
	"github.com/msdemo/msdemo/services/customer"
	"github.com/msdemo/msdemo/services/order"
	"github.com/msdemo/msdemo/services/product"
	"github.com/msdemo/msdemo/systest"
)

// The bootstrap manager of every test shop.
const (
	ManagerName     = "admin"
	ManagerPassword = "admin password 1"
)

// Shop is a whole shop running for one test, with a catalog of one category and one
// product. Its fields are set by Start and not changed afterwards.
type Shop struct {
	*systest.System        // event store and gateway: GatewayURL, Exchange, Token, ...
	RabbitMQURL     string // the test's virtual host
	RedisURL        string
	SessionPrefix   string // Redis key prefix for a site's sessions
	ManagerToken    string // a bearer token of ManagerName
	Category        string // id of the category "Garden"
	Product         string // id of the product "Watering can" in it

	t *testing.T
}

// Start starts the shop for t; it stops when t ends. It sets RABBITMQ_URL to a virtual
// host of t's own (so the services' queues, whose names some of them fix, meet no other
// test's), hence t may not run in parallel. A server that is not reachable fails t with a
// hint.
func Start(t *testing.T) *Shop {
	t.Helper()
	t.Setenv("RABBITMQ_URL", testenv.VHost(t))
	sys := systest.Start(t)
	name := testenv.Name(t)
	s := &Shop{System: sys, RabbitMQURL: testenv.RabbitMQURL(), RedisURL: testenv.RedisURL(),
		SessionPrefix: name + ":session:", ManagerToken: sys.Token(ManagerName, auth.Manager), t: t}
	cleanRedis(t, s.RedisURL, name+":")
	cleanRedis(t, s.RedisURL, sys.CustomerKeyPrefix())

	cust := sys.ServiceConfig(t, "customer")
	testenv.Go(t, "customer", func(ctx context.Context) error {
		return customer.Run(ctx, customer.Config{Service: cust, RedisURL: s.RedisURL, KeyPrefix: sys.CustomerKeyPrefix(),
			DataDir: t.TempDir(), AdminPassword: ManagerPassword}, testenv.Logger(t))
	})
	prod := sys.ServiceConfig(t, "product")
	prodDB := testenv.DatabaseName(t, "shop_product")
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), prodDB) }) // after the service stops
	testenv.Go(t, "product", func(ctx context.Context) error {
		return product.Run(ctx, product.Config{Service: prod, DataDir: t.TempDir(), PostgresURL: testenv.PostgresURL(),
			Database: prodDB}, testenv.Logger(t))
	})
	ord := sys.ServiceConfig(t, "order")
	testenv.Go(t, "order", func(ctx context.Context) error {
		return order.Run(ctx, order.Config{Service: ord, PostgresURL: testenv.PostgresURL(),
			Database: testenv.DatabaseName(t, "shop_order"), SagaTimeout: 5 * time.Second}, testenv.Logger(t))
	})
	acc := sys.ServiceConfig(t, "accounting")
	testenv.Go(t, "accounting", func(ctx context.Context) error {
		return accounting.Run(ctx, accounting.Config{Service: acc, PostgresURL: testenv.PostgresURL(),
			Database: testenv.DatabaseName(t, "shop_acc")}, testenv.Logger(t))
	})
	for _, u := range []string{cust.Addr, prod.Addr, ord.Addr, acc.Addr} {
		testenv.WaitHealthy(t, "http://"+u+"/healthz", 30*time.Second)
	}

	// The gateway routes to a service once it heard its announcement.
	testenv.Eventually(t, 20*time.Second, "gateway routes to every service", func() bool {
		for _, p := range []string{"/product/categories", "/order/orders", "/accounting/invoices", "/customer/users", "/eventstore/events"} {
			if status, err := s.API(http.MethodGet, p, s.ManagerToken, nil, nil); err != nil || status != http.StatusOK {
				return false
			}
		}
		return true
	})
	var c struct{ ID string }
	s.MustAPI(http.MethodPost, "/product/categories", s.ManagerToken, map[string]any{"name": "Garden"}, &c)
	var p struct{ ID string }
	s.MustAPI(http.MethodPost, "/product/products", s.ManagerToken, map[string]any{"name": "Watering can",
		"description": "Ten litres, galvanised steel.", "supplier": "Acme", "category_id": c.ID,
		"price_cents": 2499, "units_in_stock": 50}, &p)
	s.Category, s.Product = c.ID, p.ID
	return s
}

// StartSite runs a site (its Run: storefront.Run, admin.Run) on a free address until t
// ends, with the shop's gateway, Redis, session prefix and bus, and SSE keep-alives every
// second. It returns the site's URL once its /healthz answers.
func (s *Shop) StartSite(t *testing.T, name string, run func(context.Context, web.SiteConfig, *slog.Logger) error) string {
	t.Helper()
	cfg := web.SiteConfig{Addr: testenv.FreeAddr(t), GatewayURL: s.GatewayURL, RedisURL: s.RedisURL,
		SessionPrefix: s.SessionPrefix, RabbitMQURL: s.RabbitMQURL, Exchange: s.Exchange, KeepAlive: time.Second,
		RevocationPrefix: s.CustomerKeyPrefix()}
	testenv.Go(t, name, func(ctx context.Context) error { return run(ctx, cfg, testenv.Logger(t)) })
	url := "http://" + cfg.Addr
	testenv.WaitHealthy(t, url+"/healthz", 20*time.Second)
	return url
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

// API calls the gateway as the bearer of token ("" for none) with in as JSON (nil for no
// body), decodes the answer into out (nil: ignore it) and returns the status. The error
// is a failure to reach the gateway.
func (s *Shop) API(method, path, token string, in, out any) (int, error) {
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

// SetPicture uploads file as the picture of product id, as a manager (PUT
// /product/products/{id}/image), and returns the product as the API answers; it fails the
// test that started the shop unless the answer is 200.
func (s *Shop) SetPicture(id string, file []byte) web.Product {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.GatewayURL+"/product/products/"+id+"/image", bytes.NewReader(file))
	req.Header.Set("Authorization", "Bearer "+s.ManagerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("upload the picture of %s: %v", id, err)
	}
	defer resp.Body.Close()
	var p web.Product
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusOK || p.Image.ID == "" {
		s.t.Fatalf("upload the picture of %s: got %d %+v (%v), want 200 with the picture", id, resp.StatusCode, p, err)
	}
	return p
}

// MustAPI is API that fails the test that started the shop unless the answer is a 2xx.
func (s *Shop) MustAPI(method, path, token string, in, out any) {
	s.t.Helper()
	status, err := s.API(method, path, token, in, out)
	if err != nil || status/100 != 2 {
		s.t.Fatalf("%s %s: got %d %v, want 2xx", method, path, status, err)
	}
}
