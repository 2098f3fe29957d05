package storefront

import (
	"context"
	"time"

	"github.com/msdemo/msdemo/internal/web"
)

// The API's resources that only the storefront shows (services/gateway/openapi.yaml);
// those that both sites show are web.Category, web.Product, web.Customer and web.Order.

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

// order, orders and productNames are web.Client's, as the live views call them.

func (s *server) order(ctx context.Context, token, id string) (order, error) {
	return s.api.Order(ctx, token, id)
}

// orders returns the first page of the customer's orders (the latest pageSize), newest
// first.
func (s *server) orders(ctx context.Context, token string) ([]order, error) {
	orders, _, err := s.api.Orders(ctx, token, "", "", pageSize)
	return orders, err
}

func (s *server) productNames(ctx context.Context, orders []order) map[string]string {
	return s.api.ProductNames(ctx, orders)
}

// pageSize is how many orders a page of /orders shows.
const pageSize = 20
