package web

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// OrderView is an order as both sites show it: amounts and times formatted, the products
// by name (by id when a name is unknown), the timeline in words.
type OrderView struct {
	ID, Customer             string
	Lines                    []LineView
	Summary                  string // the products in a few words: "Green tea and 2 more"
	Units, Total             string // units of every line; the order's total
	Status, Reason, PlacedAt string // Status is "pending" until the order is decided
	Timeline                 []StepView
	InvoiceReady             bool // approved, so it has (or is about to have) an invoice
}

// LineView is a line of an order or an invoice, formatted.
type LineView struct {
	ProductID, Product         string
	Quantity, UnitPrice, Total string
}

// StepView is one step of an order's timeline.
type StepView struct {
	Label, At, DateTime string // Label is the step in a sentence (Sentence); DateTime is RFC 3339
}

// LineViews returns the views of lines; a line without a name (of an order placed
// before orders kept names) takes it from names, by product id.
func LineViews(lines []OrderLine, names map[string]string) []LineView {
	views := make([]LineView, 0, len(lines))
	for _, l := range lines {
		views = append(views, LineView{ProductID: l.ProductID, Product: cmp.Or(l.Name, names[l.ProductID], l.ProductID),
			Quantity: strconv.FormatInt(l.Quantity, 10), UnitPrice: Money(l.UnitPriceCents),
			Total: Money(l.Quantity * l.UnitPriceCents)})
	}
	return views
}

// NewOrderView returns the view of o; names are the products' names by id, for lines
// that carry none.
func NewOrderView(o Order, names map[string]string) OrderView {
	o.Lines = slices.Clone(o.Lines)
	for i, l := range o.Lines {
		o.Lines[i].Name = cmp.Or(l.Name, names[l.ProductID])
	}
	v := OrderView{ID: o.ID, Customer: o.Customer, Lines: LineViews(o.Lines, nil), Total: Money(o.TotalCents),
		Status: cmp.Or(o.Status, "pending"), Reason: o.Reason, PlacedAt: FormatTime(o.PlacedAt),
		InvoiceReady: o.Status == "approved"}
	units := int64(0)
	for _, l := range o.Lines {
		units += l.Quantity
	}
	v.Units = strconv.FormatInt(units, 10)
	switch len(v.Lines) {
	case 0:
	case 1:
		v.Summary = v.Lines[0].Product
	default:
		v.Summary = fmt.Sprintf("%s and %d more", v.Lines[0].Product, len(v.Lines)-1)
	}
	for _, st := range o.Timeline {
		v.Timeline = append(v.Timeline, StepView{Label: st.Sentence(o), At: FormatTime(st.At), DateTime: st.At.UTC().Format(time.RFC3339)})
	}
	return v
}

// OrderViews returns the views of orders, in their order; the names their lines lack are
// read from api (Client.ProductNames).
func OrderViews(ctx context.Context, api *Client, orders []Order) []OrderView {
	var lines []OrderLine
	for _, o := range orders {
		lines = append(lines, o.Lines...)
	}
	names := api.ProductNames(ctx, lines)
	views := make([]OrderView, 0, len(orders))
	for _, o := range orders {
		views = append(views, NewOrderView(o, names))
	}
	return views
}

// OrderViewOf is the view of one order (OrderViews).
func OrderViewOf(ctx context.Context, api *Client, o Order) OrderView {
	return OrderViews(ctx, api, []Order{o})[0]
}
