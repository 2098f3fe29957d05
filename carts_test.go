package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/testenv"
)

// TestCartsUnderContention is the saga with orders of several lines: 40 customers fill
// and check out 200 carts of 1 to 5 lines at once, over 5 products with scarce stock and
// credit for about two carts each. No product is oversold, no credit overspent, no order
// keeps a line's stock when it is rejected (every line reserved is released), each
// approved order has an invoice of all its lines, the carts are empty afterwards, and
// every read model equals a rebuild from the event store.
func TestCartsUnderContention(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole shop; skipped with -short")
	}
	const (
		customers, cartsPerCustomer = 40, 5
		creditCents                 = 15000
	)
	s := startShop(t, 10*time.Second, nil)
	admin := s.login("admin", adminPassword)
	type product struct {
		id                string
		priceCents, units int64
	}
	var cat struct {
		ID string `json:"id"`
	}
	s.must(http.StatusCreated, http.MethodPost, "/product/categories", admin, map[string]string{"name": "Tea things"}, &cat)
	products := []product{{priceCents: 500, units: 100}, {priceCents: 900, units: 80}, {priceCents: 1500, units: 60},
		{priceCents: 250, units: 150}, {priceCents: 3000, units: 40}}
	for i := range products {
		var p struct {
			ID string `json:"id"`
		}
		s.must(http.StatusCreated, http.MethodPost, "/product/products", admin, map[string]any{
			"name": fmt.Sprintf("Thing %d", i), "description": "for tea", "supplier": "Uji", "category_id": cat.ID,
			"price_cents": products[i].priceCents, "units_in_stock": products[i].units}, &p)
		products[i].id = p.ID
	}
	names, tokens := s.addBuyers(admin, customers, creditCents)

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		placed []string
	)
	for i := range customers {
		wg.Go(func() {
			random := rand.New(rand.NewPCG(uint64(i), 14)) // the same carts in every run
			for range cartsPerCustomer {
				for _, k := range random.Perm(len(products))[:1+random.IntN(len(products))] {
					if status := s.call(http.MethodPut, "/order/cart/lines/"+products[k].id, tokens[i],
						map[string]any{"quantity": 1 + random.IntN(3)}, nil); status != http.StatusOK {
						t.Errorf("put a line in %s's cart: got %d, want 200", names[i], status)
					}
				}
				var o orderView
				if status := s.call(http.MethodPost, "/order/cart/checkout", tokens[i], nil, &o); status != http.StatusAccepted {
					t.Errorf("%s checks out: got %d, want 202", names[i], status)
					continue
				}
				mu.Lock()
				placed = append(placed, o.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	orders := s.waitDecided(admin, placed, 60*time.Second)
	sold := map[string]int64{}  // product id → units in approved orders
	spent := map[string]int64{} // customer → approved total
	var approved, lines int
	var revenue int64
	for _, o := range orders {
		lines += len(o.Lines)
		if o.Status == "rejected" {
			if o.Reason == "" {
				t.Errorf("order %s rejected without a reason", o.ID)
			}
			continue
		}
		approved++
		revenue += o.TotalCents
		spent[o.Customer] += o.TotalCents
		for _, l := range o.Lines {
			sold[l.ProductID] += l.Quantity
		}
	}
	t.Logf("%d carts of %d lines checked out: %d approved, %d rejected", len(placed), lines, approved, len(placed)-approved)
	if approved == 0 || approved == len(placed) {
		t.Errorf("%d of %d orders approved: the run did not contend", approved, len(placed))
	}

	for name, total := range spent {
		if total > creditCents {
			t.Errorf("%s's approved orders cost %d, more than the credit %d: overspent", name, total, creditCents)
		}
	}
	testenv.Eventually(t, 30*time.Second, "stock, credit, releases and invoices match the approved orders", func() bool {
		for _, p := range products {
			var got struct {
				UnitsInStock int64 `json:"units_in_stock"`
			}
			if s.call(http.MethodGet, "/product/products/"+p.id, "", nil, &got) != http.StatusOK {
				return false
			}
			if sold[p.id] > p.units {
				t.Fatalf("product %s: %d units sold of %d: oversold", p.id, sold[p.id], p.units)
			}
			if got.UnitsInStock != p.units-sold[p.id] {
				t.Logf("product %s: %d units in stock, want %d", p.id, got.UnitsInStock, p.units-sold[p.id])
				return false
			}
		}
		credit := map[string]int64{}
		for _, name := range names {
			credit[name] = creditCents - spent[name]
		}
		return s.creditsAndRevenueAre(admin, names, tokens, credit, approved, revenue)
	})
	for _, id := range placed {
		var o orderView
		s.must(http.StatusOK, http.MethodGet, "/order/orders/"+id, admin, nil, &o)
		reserved, released := map[string]bool{}, map[string]bool{}
		for _, st := range o.Timeline {
			switch st.Step {
			case "stock reserved":
				reserved[st.ProductID] = true
			case "stock released":
				released[st.ProductID] = true
			}
		}
		for _, l := range o.Lines {
			if o.Status == "approved" && !reserved[l.ProductID] {
				t.Errorf("approved order %s: the line of %s was not reserved", id, l.ProductID)
			}
			if o.Status == "rejected" && reserved[l.ProductID] && !released[l.ProductID] {
				t.Errorf("rejected order %s keeps the stock of %s: reserved, never released", id, l.ProductID)
			}
		}
		if o.Status != "approved" {
			continue
		}
		var inv struct {
			Lines []struct {
				ProductID string `json:"product_id"`
			} `json:"lines"`
		}
		s.must(http.StatusOK, http.MethodGet, "/accounting/invoices/"+id, admin, nil, &inv)
		if len(inv.Lines) != len(o.Lines) {
			t.Errorf("the invoice of order %s has %d lines, want the order's %d", id, len(inv.Lines), len(o.Lines))
		}
	}
	for i, name := range names {
		var c struct {
			Lines []any `json:"lines"`
		}
		if s.must(http.StatusOK, http.MethodGet, "/order/cart", tokens[i], nil, &c); len(c.Lines) != 0 {
			t.Errorf("%s's cart holds %d lines after checking out, want none", name, len(c.Lines))
		}
	}
	ids := make([]string, len(products))
	for i, p := range products {
		ids[i] = p.id
	}
	s.checkRebuildsEqual(admin, ids, names, placed)
}
