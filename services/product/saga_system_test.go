package product_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/systest"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/customer"
	"github.com/msdemo/msdemo/services/order"
	"github.com/msdemo/msdemo/services/product"
)

// runSagaPeers runs the customer service (every new customer gets creditCents) and the
// order service beside the product service of s, all in this process, talking only
// through the bus and the gateway.
func runSagaPeers(t *testing.T, sys *systest.System, creditCents int64) {
	t.Helper()
	name := testenv.Name(t)
	conn := testenv.Bus(t)
	cust := customer.Config{Service: sys.ServiceConfig(t, "customer"), RedisURL: testenv.RedisURL(),
		KeyPrefix: name + ":", DataDir: t.TempDir(), AdminPassword: "admin password 1",
		StartCreditCents: creditCents, Subscription: name + ".customer"}
	ord := order.Config{Service: sys.ServiceConfig(t, "order"), PostgresURL: testenv.PostgresURL(),
		Database: testenv.DatabaseName(t, "order"), Subscription: name + ".order"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, q := range []string{cust.Subscription, ord.Subscription} {
			_ = conn.DeleteQueue(ctx, q+".events")
			_ = conn.DeleteQueue(ctx, q+".events.dead")
		}
		if err := postgres.Drop(ctx, ord.PostgresURL, ord.Database); err != nil {
			t.Errorf("drop database %s: %v", ord.Database, err)
		}
		opts, _ := redis.ParseURL(cust.RedisURL)
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		iter := rdb.Scan(ctx, 0, cust.KeyPrefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Unlink(ctx, iter.Val())
		}
	})
	systest.Go(t, "customer service", func(ctx context.Context) error { return customer.Run(ctx, cust, testenv.Logger(t)) })
	systest.Go(t, "order service", func(ctx context.Context) error { return order.Run(ctx, ord, testenv.Logger(t)) })
	testenv.WaitHealthy(t, "http://"+cust.Service.Addr+"/healthz", 20*time.Second)
	testenv.WaitHealthy(t, "http://"+ord.Service.Addr+"/healthz", 20*time.Second)
	testenv.Eventually(t, 10*time.Second, "the gateway routes to the customer and order services", func() bool {
		s1, _ := call(t, "GET", sys.GatewayURL+"/order/orders?limit=1", sys.Token("boss", auth.Manager), "")
		s2, _ := call(t, "POST", sys.GatewayURL+"/customer/login", "", "{}")
		return s1 == 200 && s2 == 400
	})
}

// sagaOrder is an order as GET /order/orders/{id} shows it.
type sagaOrder struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Quantity int64  `json:"quantity"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
}

// TestSagaWithOrderAndCustomer runs the real order, customer and product services: orders
// placed through the gateway are approved, or rejected with the participant's reason, and
// afterwards the stock and every credit match the approved orders exactly. (Fewer orders
// than the stock allows may be approved: an order rejected for credit holds its units
// until its release, and an order decided meanwhile may find none left.)
func TestSagaWithOrderAndCustomer(t *testing.T) {
	t.Parallel()
	s := startSagaShop(t)
	const credit, price, units = 2000, 1000, 12
	runSagaPeers(t, s.sys, credit)
	tea := s.newProduct("Shared tea", price, units)

	var users []string
	for i := range 8 {
		u := fmt.Sprintf("buyer%d", i)
		users = append(users, u)
		must(t, 201, "POST", s.sys.GatewayURL+"/customer/users", "", fmt.Sprintf(`{"username":%q,"full_name":"Buyer %d",
			"email":"%s@example.com","password":"secret password"}`, u, i, u), nil)
	}
	// Each buyer places three orders of one unit at once: credit for two each (16), stock
	// for 12 in all.
	var mu sync.Mutex
	var placed []sagaOrder
	var wg sync.WaitGroup
	for _, u := range users {
		for range 3 {
			wg.Go(func() {
				var o sagaOrder
				status, b := call(t, "POST", s.sys.GatewayURL+"/order/orders", s.sys.Token(u, auth.Customer),
					fmt.Sprintf(`{"product_id":%q,"quantity":1}`, tea.ID))
				if status != 202 {
					t.Errorf("POST /order/orders: got %d %s, want 202", status, b)
					return
				}
				if err := json.Unmarshal(b, &o); err != nil {
					t.Errorf("POST /order/orders: decode %s: %v", b, err)
					return
				}
				mu.Lock()
				placed = append(placed, o)
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	approved := map[string]int64{}
	var total int64
	for _, p := range placed {
		var o sagaOrder
		testenv.Eventually(t, 30*time.Second, "order "+p.ID+" is decided", func() bool {
			must(t, 200, "GET", s.sys.GatewayURL+"/order/orders/"+p.ID, s.sys.Token("boss", auth.Manager), "", &o)
			return o.Status != "pending"
		})
		switch {
		case o.Status == "approved":
			approved[o.Customer]++
			total++
		case o.Reason != customer.ReasonNotEnoughCredit && o.Reason != product.ReasonOutOfStock:
			t.Errorf("order %s: got %s %q, want approved or rejected for credit or stock", o.ID, o.Status, o.Reason)
		}
	}
	if total < 1 || total > units {
		t.Errorf("got %d approved orders, want 1 to %d (the stock; credit allows 16)", total, units)
	}
	t.Logf("%d orders placed at once: %d approved", len(placed), total)
	for _, u := range users {
		if approved[u] > 2 {
			t.Errorf("%s: got %d approved orders, want at most 2 (its credit)", u, approved[u])
		}
	}
	// Releases of rejected orders come after the rejection: wait for them.
	testenv.Eventually(t, 30*time.Second, "stock and credit match the approved orders", func() bool {
		var p product.Product
		must(t, 200, "GET", s.api+"/products/"+string(tea.ID), "", "", &p)
		if p.UnitsInStock != units-total {
			return false
		}
		for _, u := range users {
			var c struct {
				CreditCents int64 `json:"credit_cents"`
			}
			must(t, 200, "GET", s.sys.GatewayURL+"/customer/users/"+u+"/credit", s.sys.Token("boss", auth.Manager), "", &c)
			if c.CreditCents != credit-price*approved[u] {
				return false
			}
		}
		return true
	})
	s.checkStream(tea.ID)
}
