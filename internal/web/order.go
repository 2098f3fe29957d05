package web

import (
	"net/http"
	"strings"
	"time"
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

// NotFoundFor400 turns the API's 400 for a malformed id into a 404: for a page address, a
// malformed id is just a page that does not exist. Other errors are returned as they are.
func NotFoundFor400(err error) error {
	if StatusOf(err) == http.StatusBadRequest {
		return &APIError{Status: http.StatusNotFound, Message: "not found"}
	}
	return err
}
