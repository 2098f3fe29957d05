package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/msdemo/msdemo/internal/event"
)

// Order is an order as the API shows it (GET /order/orders/{id}), with its timeline.
type Order struct {
	ID             string         `json:"id"`
	Customer       string         `json:"customer"`
	ProductID      string         `json:"product_id"`
	Quantity       int64          `json:"quantity"`
	UnitPriceCents int64          `json:"unit_price_cents"`
	TotalCents     int64          `json:"total_cents"`
	Status         string         `json:"status"` // pending, approved, rejected
	Reason         string         `json:"reason"`
	PlacedAt       time.Time      `json:"placed_at"`
	Timeline       []TimelineStep `json:"timeline"`
	Version        int64          `json:"version"`
}

// TimelineStep is one step of an order's saga: placed, stock reserved, approved, ...
type TimelineStep struct {
	Step   string    `json:"step"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// stepLabels are the timeline's steps in words.
var stepLabels = map[string]string{
	"placed": "Placed", "stock reserved": "Stock reserved", "stock rejected": "Stock refused",
	"stock released": "Stock released", "credit reserved": "Credit reserved", "credit rejected": "Credit refused",
	"credit released": "Credit released", "approved": "Approved", "rejected": "Rejected",
	"invoiced": "Invoiced", "timed out": "Timed out",
}

// Label is the step in words, followed by its reason if it has one: "Stock refused: out
// of stock". An unknown step is shown as it is, with "_" as spaces.
func (st TimelineStep) Label() string {
	label, ok := stepLabels[st.Step]
	if !ok {
		label = strings.ReplaceAll(st.Step, "_", " ")
	}
	if st.Reason != "" {
		label += ": " + st.Reason
	}
	return label
}

// OrderIDOf returns the order an event is about: the id of an "order-<id>" stream, or the
// order_id in the data of a reservation, release or invoice.
func OrderIDOf(e event.Stored) (string, bool) {
	if id, ok := strings.CutPrefix(e.Stream, "order-"); ok && id != "" {
		return id, true
	}
	var d struct {
		OrderID string `json:"order_id"`
	}
	if json.Unmarshal(e.Data, &d) == nil && d.OrderID != "" {
		return d.OrderID, true
	}
	return "", false
}

// AwaitOrder reads order id with get until the order service shows e: for an event of the
// order's own stream, until the order's version reaches e's; for a saga event of another
// stream, until its timeline has more than stepsSeen steps. It polls every 100 ms for 3 s
// at most and then returns what the last read gave. An error for which giveUp reports
// true ends it at once with that error; so does ctx (with ctx.Err()).
func AwaitOrder(ctx context.Context, id string, e event.Stored, stepsSeen int,
	get func(ctx context.Context, id string) (Order, error), giveUp func(err error) bool) (Order, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		o, err := get(ctx, id)
		if err != nil && giveUp(err) {
			return Order{}, err
		}
		caughtUp := err == nil && (e.Stream == "order-"+id && o.Version >= e.Version ||
			e.Stream != "order-"+id && len(o.Timeline) > stepsSeen)
		if caughtUp || time.Now().After(deadline) {
			return o, err
		}
		select {
		case <-ctx.Done():
			return Order{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NotFoundFor400 turns the API's 400 for a malformed id into a 404: for a page address, a
// malformed id is just a page that does not exist. Other errors are returned as they are.
func NotFoundFor400(err error) error {
	if StatusOf(err) == http.StatusBadRequest {
		return &APIError{Status: http.StatusNotFound, Message: "not found"}
	}
	return err
}
