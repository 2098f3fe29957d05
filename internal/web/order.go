package web

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Order is an order as the API shows it (GET /order/orders/{id}), with its timeline.
type Order struct {
	ID         string         `json:"id"`
	Customer   string         `json:"customer"`
	Lines      []OrderLine    `json:"lines"`
	TotalCents int64          `json:"total_cents"`
	Status     string         `json:"status"` // pending, approved, rejected
	Reason     string         `json:"reason"`
	PlacedAt   time.Time      `json:"placed_at"`
	Timeline   []TimelineStep `json:"timeline"`
	Version    int64          `json:"version"`
}

// OrderLine is a line of an order or an invoice: a product (its name when ordered), how
// many, at what unit price.
type OrderLine struct {
	ProductID      string `json:"product_id"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// TimelineStep is one step of an order's saga: placed, stock reserved, approved, ...; a
// step about one line (the stock's) names its product.
type TimelineStep struct {
	Step      string    `json:"step"`
	ProductID string    `json:"product_id"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason"`
}

// stepSentences say what each step of the saga was, in words; the %s of those that take
// one is the step's reason, or, for a release, why the order was rejected. In an order of
// several lines, "The stock" of a line's step says which product (lineSubject).
var stepSentences = map[string]string{
	"placed":          "The order was placed.",
	"stock reserved":  "The stock was reserved.",
	"stock rejected":  "The stock was not reserved: %s.",
	"credit reserved": "The credit was reserved.",
	"credit rejected": "The credit was not reserved: %s.",
	"approved":        "The order was approved: stock and credit are reserved.",
	"rejected":        "The order was rejected: %s.",
	"stock released":  "The reserved stock was released, because the order was rejected (%s).",
	"credit released": "The reserved credit was given back, because the order was rejected (%s).",
	"timed out":       "No answer came in time: %s.",
	"invoiced":        "The invoice was issued.",
}

// Sentence says what step st of order o was, in words, e.g. "The reserved credit was
// given back, because the order was rejected (out of stock)." A step this version does
// not know is shown as it is, with its reason.
func (st TimelineStep) Sentence(o Order) string {
	sentence, ok := stepSentences[st.Step]
	if subject := st.lineSubject(o); subject != "" {
		sentence = strings.Replace(sentence, "The stock", subject, 1)
		sentence = strings.Replace(sentence, "The reserved stock", "The reserved "+strings.TrimPrefix(subject, "The "), 1)
	}
	if !ok {
		if st.Reason != "" {
			return st.Step + ": " + st.Reason
		}
		return st.Step
	}
	if !strings.Contains(sentence, "%s") {
		return sentence
	}
	why := st.Reason
	if strings.HasSuffix(st.Step, "released") || why == "" {
		why = cmp.Or(o.Reason, "no reason given")
	}
	return fmt.Sprintf(sentence, strings.TrimSuffix(why, "."))
}

// lineSubject is "The stock of <product>" for a step about one line of an order of
// several lines, "" otherwise.
func (st TimelineStep) lineSubject(o Order) string {
	if st.ProductID == "" || len(o.Lines) < 2 {
		return ""
	}
	for _, l := range o.Lines {
		if l.ProductID == st.ProductID {
			return "The stock of " + cmp.Or(l.Name, l.ProductID)
		}
	}
	return "The stock of " + st.ProductID
}

// NotFoundFor400 turns the API's 400 for a malformed id into a 404: for a page address, a
// malformed id is just a page that does not exist. Other errors are returned as they are.
func NotFoundFor400(err error) error {
	if StatusOf(err) == http.StatusBadRequest {
		return &APIError{Status: http.StatusNotFound, Message: "not found"}
	}
	return err
}
