package order

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
)

// OrderID is an order's id: 12 random characters a-z, 2-7 (idgen.Short).
type OrderID string

const idLen = 12

// newOrderID returns a random order id.
func newOrderID() OrderID { return OrderID(idgen.Short(idLen)) }

// validOrderID reports whether id has the shape of a generated id, so that a path like
// /orders/../x never reaches the read model.
func validOrderID(id string) bool { return idgen.IsShort(id, idLen) }

// Stream returns the event stream of the order id.
func Stream(id OrderID) string { return event.Order.Stream(string(id)) }

// The events of an order's stream, and the participants' that the saga follows, are
// declared in internal/event (types.go); this file holds the structs of their data.

// Status is where an order stands.
type Status string

// The statuses of an order.
const (
	Pending  Status = "pending"
	Approved Status = "approved"
	Rejected Status = "rejected"
)

// ReasonTimedOut is the reason of a rejection by the saga's timeout, the one this service
// gives; the participants give their own ("out of stock", "not enough credit", ...).
const ReasonTimedOut = "timed out"

// Step is one thing that happened to an order, as its timeline shows it.
type Step string

// The steps of an order's timeline.
const (
	StepPlaced         Step = "placed"
	StepStockReserved  Step = "stock reserved"
	StepStockRejected  Step = "stock rejected"
	StepCreditReserved Step = "credit reserved"
	StepCreditRejected Step = "credit rejected"
	StepApproved       Step = "approved"
	StepRejected       Step = "rejected"
	StepInvoiced       Step = "invoiced"
	StepStockReleased  Step = "stock released"
	StepCreditReleased Step = "credit released"
	// StepTimedOut is not recorded: it is the sweeper's input to Decide when an order has
	// been pending longer than the saga timeout.
	StepTimedOut Step = "timed out"
)

// stepOf maps the event types the saga follows to their timeline step.
var stepOf = map[string]Step{
	event.OrderPlaced:            StepPlaced,
	event.OrderApproved:          StepApproved,
	event.OrderRejected:          StepRejected,
	event.ProductStockReserved:   StepStockReserved,
	event.ProductStockRejected:   StepStockRejected,
	event.ProductStockReleased:   StepStockReleased,
	event.CustomerCreditReserved: StepCreditReserved,
	event.CustomerCreditRejected: StepCreditRejected,
	event.CustomerCreditReleased: StepCreditReleased,
	event.InvoiceIssued:          StepInvoiced,
}

// TimelineEntry is a step of an order with its time (the event's recorded_at) and reason.
type TimelineEntry struct {
	Step   Step      `json:"step"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Order is an order as the read model holds it.
type Order struct {
	ID             OrderID         `json:"id"`
	Customer       string          `json:"customer"`
	ProductID      string          `json:"product_id"`
	Quantity       int64           `json:"quantity"`
	UnitPriceCents int64           `json:"unit_price_cents"`
	TotalCents     int64           `json:"total_cents"`
	Status         Status          `json:"status"`
	Reason         string          `json:"reason"`
	PlacedAt       time.Time       `json:"placed_at"`
	Timeline       []TimelineEntry `json:"timeline,omitempty"`
	Version        int64           `json:"version"`
}

// has returns the entry of step in o's timeline.
func (o Order) has(step Step) (TimelineEntry, bool) {
	for _, e := range o.Timeline {
		if e.Step == step {
			return e, true
		}
	}
	return TimelineEntry{}, false
}

// Placed is the data of order.placed and of order.approved (which repeats it, so that
// accounting can invoice from order.approved alone).
type Placed struct {
	OrderID        OrderID `json:"order_id"`
	Customer       string  `json:"customer"`
	ProductID      string  `json:"product_id"`
	Quantity       int64   `json:"quantity"`
	UnitPriceCents int64   `json:"unit_price_cents"`
	TotalCents     int64   `json:"total_cents"`
}

// RejectedData is the data of order.rejected.
type RejectedData struct {
	OrderID  OrderID `json:"order_id"`
	Customer string  `json:"customer"`
	Reason   string  `json:"reason"`
}

// Reply is the data of a participant's event about an order (stock-reserved, -rejected,
// -released; credit-reserved, ...; invoice.issued): only what the saga reads of it.
type Reply struct {
	OrderID OrderID `json:"order_id"`
	Reason  string  `json:"reason"`
}

// Price is what the read model knows about a product's price.
type Price struct {
	Cents   int64
	Known   bool // a product.added was seen
	Deleted bool
}

// PlaceOrder is the input of POST /orders.
type PlaceOrder struct {
	ProductID *string `json:"product_id"`
	Quantity  *int64  `json:"quantity"`
}

// The limits of an order.
const (
	MaxQuantity     = 1000
	maxProductIDLen = 64
)

// Validate returns the problems of in as FieldErrors-shaped map (empty when valid).
func (in PlaceOrder) Validate() map[string]string {
	errs := map[string]string{}
	switch {
	case in.ProductID == nil || *in.ProductID == "":
		errs["product_id"] = "required"
	case !validProductID(*in.ProductID):
		errs["product_id"] = "is not a product id (lower-case letters and digits)"
	}
	switch {
	case in.Quantity == nil:
		errs["quantity"] = "required"
	case *in.Quantity < 1 || *in.Quantity > MaxQuantity:
		errs["quantity"] = fmt.Sprintf("must be a whole number from 1 to %d", MaxQuantity)
	}
	return errs
}

func validProductID(id string) bool {
	if len(id) > maxProductIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return id != ""
}

// Place decides a valid order in of customer, of a product that exists at price p: the
// order.placed event, which starts the saga. (An order of a product that does not exist or
// was deleted is refused before it is placed: priceForOrder. One deleted after that is
// rejected by the product service's reservation.)
func Place(id OrderID, customer string, in PlaceOrder, p Price) []event.New {
	placed := Placed{OrderID: id, Customer: customer, ProductID: *in.ProductID, Quantity: *in.Quantity,
		UnitPriceCents: p.Cents, TotalCents: p.Cents * *in.Quantity}
	return []event.New{newEvent(idgen.New(), event.OrderPlaced, placed)}
}

// Decision is what the saga appends to an order: nothing (the zero Decision), order.approved
// or order.rejected with a reason.
type Decision struct {
	Approve bool
	Reject  bool
	Reason  string
}

// None reports whether d appends nothing.
func (d Decision) None() bool { return !d.Approve && !d.Reject }

// Decide returns what to append to order o when step happens to it (o's timeline may
// already hold step: recording a step twice changes nothing). Only a pending order is
// decided. A rejection by either participant rejects it with the participant's reason;
// both reservations approve it; the saga timeout (StepTimedOut) rejects it with "timed
// out" unless both reservations are there. Decide is deterministic, so that a decision
// made again after a crash is the same event.
func Decide(o Order, step Step, reason string) Decision {
	if o.Status != Pending {
		return Decision{}
	}
	switch step {
	case StepStockRejected, StepCreditRejected:
		return Decision{Reject: true, Reason: cmpReason(reason, step)}
	}
	if e, ok := o.has(StepStockRejected); ok {
		return Decision{Reject: true, Reason: cmpReason(e.Reason, StepStockRejected)}
	}
	if e, ok := o.has(StepCreditRejected); ok {
		return Decision{Reject: true, Reason: cmpReason(e.Reason, StepCreditRejected)}
	}
	_, stock := o.has(StepStockReserved)
	_, credit := o.has(StepCreditReserved)
	stock = stock || step == StepStockReserved
	credit = credit || step == StepCreditReserved
	switch {
	case stock && credit:
		return Decision{Approve: true}
	case step == StepTimedOut:
		return Decision{Reject: true, Reason: ReasonTimedOut}
	}
	return Decision{}
}

// cmpReason is reason, or the step itself when a participant gave none.
func cmpReason(reason string, step Step) string {
	if strings.TrimSpace(reason) == "" {
		return string(step)
	}
	return reason
}

// decisionNamespace makes the ids of decisions: an order has at most one approval and one
// rejection, so "<order id>/approved" names the event, and a decision made again after a
// crash is recognised by the event store as the same event.
var decisionNamespace = idgen.NewNamespace("6f1c0a4e-5b7d-4f0e-9a53-0d9b7e8c2a11")

// decisionEvent returns the event of decision d (not None) about o.
func decisionEvent(o Order, d Decision) event.New {
	if d.Approve {
		return newEvent(decisionNamespace.ID(string(o.ID)+"/approved"), event.OrderApproved,
			Placed{OrderID: o.ID, Customer: o.Customer, ProductID: o.ProductID, Quantity: o.Quantity,
				UnitPriceCents: o.UnitPriceCents, TotalCents: o.TotalCents})
	}
	return newEvent(decisionNamespace.ID(string(o.ID)+"/rejected"), event.OrderRejected,
		RejectedData{OrderID: o.ID, Customer: o.Customer, Reason: d.Reason})
}

func newEvent(id, typ string, data any) event.New {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("event %s: %v", typ, err)) // the data types above always marshal
	}
	return event.New{ID: id, Type: typ, Data: raw}
}
