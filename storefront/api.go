package storefront

import (
	"time"

	"github.com/msdemo/msdemo/internal/web"
)

// The API's resources that only the storefront shows (services/gateway/openapi.yaml);
// those that both sites show are web.Category, web.Product, web.Customer and web.Order.

type order = web.Order

// invoice is what GET /accounting/invoices/{order_id} answers; the fields it lacks are
// taken from the order.
type invoice struct {
	ID         string          `json:"id"`
	Number     string          `json:"number"`
	OrderID    string          `json:"order_id"`
	Customer   string          `json:"customer"`
	Lines      []web.OrderLine `json:"lines"`
	TotalCents int64           `json:"total_cents"`
	IssuedAt   time.Time       `json:"issued_at"`
}

// cart is what GET /order/cart answers: the customer's cart.
type cart struct {
	Lines []struct {
		ProductID      string `json:"product_id"`
		Name           string `json:"name"`
		Quantity       int64  `json:"quantity"`
		UnitPriceCents int64  `json:"unit_price_cents"`
		Available      bool   `json:"available"`
	} `json:"lines"`
	TotalCents int64 `json:"total_cents"`
	Version    int64 `json:"version"`
}

// units returns how many units the cart holds.
func (c cart) units() int64 {
	n := int64(0)
	for _, l := range c.Lines {
		n += l.Quantity
	}
	return n
}

// pageSize is how many orders a page of /orders shows.
const pageSize = 20
