package product_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
)

// benchShop is a shop behind a gateway with a category of 100 products. Its logs are
// discarded: the debug log of every request would be most of what is measured.
func benchShop(b *testing.B) (s *tbShop, category, productID string) {
	s = startTBShop(b, true, slog.New(slog.DiscardHandler))
	category = s.create(b, "/categories", `{"name":"Beverages"}`)
	for i := range 100 {
		productID = s.create(b, "/products", fmt.Sprintf(`{"name":"Product %03d","category_id":%q,"price_cents":100,"units_in_stock":5}`, i, category))
	}
	return s, category, productID
}

// BenchmarkProductList reads a page of 50 products through the gateway, from parallel
// clients.
func BenchmarkProductList(b *testing.B) {
	s, category, _ := benchShop(b)
	url := s.gateway + "/products?category_id=" + category
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if status, body := call(b, "GET", url, "", ""); status != http.StatusOK {
				b.Fatalf("GET %s: got %d %s, want 200", url, status, body)
			}
		}
	})
}

// BenchmarkProductShow reads one product through the gateway, from parallel clients.
func BenchmarkProductShow(b *testing.B) {
	s, _, id := benchShop(b)
	url := s.gateway + "/products/" + id
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if status, body := call(b, "GET", url, "", ""); status != http.StatusOK {
				b.Fatalf("GET %s: got %d %s, want 200", url, status, body)
			}
		}
	})
}

// BenchmarkAddProductThenGet is a manager's POST through the gateway and a GET of the new
// product right after: the time until a write is visible.
func BenchmarkAddProductThenGet(b *testing.B) {
	s, category, _ := benchShop(b)
	b.ResetTimer()
	for i := range b.N {
		status, body := call(b, "POST", s.gateway+"/products", s.manager,
			fmt.Sprintf(`{"name":"Bench %d","category_id":%q,"price_cents":100,"units_in_stock":5}`, i, category))
		if status != http.StatusCreated {
			b.Fatalf("POST: got %d %s, want 201", status, body)
		}
		var id string
		if _, err := fmt.Sscanf(string(body), `{"id":%q`, &id); err != nil {
			b.Fatalf("POST answered %s: %v", body, err)
		}
		if status, body := call(b, "GET", s.gateway+"/products/"+id, "", ""); status != http.StatusOK {
			b.Fatalf("GET after POST: got %d %s, want 200", status, body)
		}
	}
}
