package web

import (
	"cmp"
	"context"
	"strconv"
	"time"
)

// OrderView is an order as both sites show it: amounts and times formatted, the product
// by name (by id when its name is unknown), the timeline in words.
type OrderView struct {
	ID, Customer, Product, ProductID string
	Quantity, UnitPrice, Total       string
	Status, Reason, PlacedAt         string // Status is "pending" until the order is decided
	Timeline                         []StepView
	InvoiceReady                     bool // approved, so it has (or is about to have) an invoice
}

// StepView is one step of an order's timeline.
type StepView struct {
	Label, At, DateTime string // Label is the step in a sentence (Sentence); DateTime is RFC 3339
}

// NewOrderView returns the view of o, whose product is named productName ("" for
// unknown).
func NewOrderView(o Order, productName string) OrderView {
	v := OrderView{ID: o.ID, Customer: o.Customer, Product: cmp.Or(productName, o.ProductID), ProductID: o.ProductID,
		Quantity: strconv.FormatInt(o.Quantity, 10), UnitPrice: Money(o.UnitPriceCents), Total: Money(o.TotalCents),
		Status: cmp.Or(o.Status, "pending"), Reason: o.Reason, PlacedAt: FormatTime(o.PlacedAt),
		InvoiceReady: o.Status == "approved"}
	for _, st := range o.Timeline {
		v.Timeline = append(v.Timeline, StepView{Label: st.Sentence(o), At: FormatTime(st.At), DateTime: st.At.UTC().Format(time.RFC3339)})
	}
	return v
}

// OrderViews returns the views of orders, in their order, with their products' names
// read from api (Client.ProductNames).
func OrderViews(ctx context.Context, api *Client, orders []Order) []OrderView {
	names := api.ProductNames(ctx, orders)
	views := make([]OrderView, 0, len(orders))
	for _, o := range orders {
		views = append(views, NewOrderView(o, names[o.ProductID]))
	}
	return views
}

// OrderViewOf is the view of one order (OrderViews).
func OrderViewOf(ctx context.Context, api *Client, o Order) OrderView {
	return OrderViews(ctx, api, []Order{o})[0]
}
