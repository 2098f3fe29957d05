package storefront

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/msdemo/msdemo/internal/web"
)

// The API's resources, as far as the storefront shows them (the REST table of
// DESIGN.md; services/gateway/openapi.yaml).

type category struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type product struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	Supplier     string `json:"supplier"`
	CategoryID   string `json:"category_id"`
	PriceCents   int64  `json:"price_cents"`
	UnitsInStock int64  `json:"units_in_stock"`
}

type profile struct {
	Username    string `json:"username"`
	FullName    string `json:"full_name"`
	Email       string `json:"email"`
	CreditCents int64  `json:"credit_cents"`
	Version     int64  `json:"version"`
}

type order = web.Order

// invoice is what GET /accounting/invoices/{order_id} answers; the fields it lacks are
// taken from the order.
type invoice struct {
	ID             string    `json:"id"`
	Number         string    `json:"number"`
	OrderID        string    `json:"order_id"`
	Customer       string    `json:"customer"`
	ProductID      string    `json:"product_id"`
	Quantity       int64     `json:"quantity"`
	UnitPriceCents int64     `json:"unit_price_cents"`
	TotalCents     int64     `json:"total_cents"`
	IssuedAt       time.Time `json:"issued_at"`
}

// orderList decodes GET /order/orders, which is {"orders": [...], "next_after"} like the
// other lists (a bare array is accepted too).
type orderList []order

func (l *orderList) UnmarshalJSON(b []byte) error {
	var page struct {
		Orders []order `json:"orders"`
	}
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]order)(l))
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return err
	}
	*l = page.Orders
	return nil
}

func (s *server) categories(ctx context.Context) ([]category, error) {
	var page struct {
		Categories []category `json:"categories"`
	}
	err := s.api.Get(ctx, "", "/product/categories", url.Values{"limit": {"500"}}, &page)
	return page.Categories, err
}

func (s *server) category(ctx context.Context, id string) (category, error) {
	var c category
	err := s.api.Get(ctx, "", "/product/categories/"+url.PathEscape(id), nil, &c)
	return c, err
}

func (s *server) products(ctx context.Context, categoryID string) ([]product, error) {
	var page struct {
		Products []product `json:"products"`
	}
	err := s.api.Get(ctx, "", "/product/products", url.Values{"category_id": {categoryID}, "limit": {"500"}}, &page)
	return page.Products, err
}

func (s *server) product(ctx context.Context, id string) (product, error) {
	var p product
	err := s.api.Get(ctx, "", "/product/products/"+url.PathEscape(id), nil, &p)
	return p, err
}

func (s *server) order(ctx context.Context, token, id string) (order, error) {
	var o order
	err := s.api.Get(ctx, token, "/order/orders/"+url.PathEscape(id), nil, &o)
	return o, err
}

func (s *server) orders(ctx context.Context, token string) ([]order, error) {
	var l orderList
	err := s.api.Get(ctx, token, "/order/orders", url.Values{"limit": {"100"}}, &l)
	return l, err
}

func (s *server) profile(ctx context.Context, token, username string) (profile, error) {
	var p profile
	err := s.api.Get(ctx, token, "/customer/users/"+url.PathEscape(username), nil, &p)
	return p, err
}

// productNames returns the names of the products of orders, by id; a product that cannot
// be read (deleted, or the service is down) is left out and shown by its id.
func (s *server) productNames(ctx context.Context, orders []order) map[string]string {
	names := map[string]string{}
	for _, o := range orders {
		if _, ok := names[o.ProductID]; ok || o.ProductID == "" {
			continue
		}
		if p, err := s.product(ctx, o.ProductID); err == nil {
			names[o.ProductID] = p.Name
		} else {
			names[o.ProductID] = ""
		}
	}
	return names
}
