package order

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
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

// TimelineEntry is a step of an order with its time (the event's recorded_at) and reason;
// a step about one line of the order (stock reserved, rejected, released) names its
// product.
type TimelineEntry struct {
	Step      Step      `json:"step"`
	ProductID string    `json:"product_id,omitempty"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason,omitempty"`
}

// Line is a line of an order: a product, its name when ordered, how many, at what unit
// price (event.OrderLine, as order.placed carries it).
type Line = event.OrderLine

// Order is an order as the read model holds it.
type Order struct {
	ID         OrderID         `json:"id"`
	Customer   string          `json:"customer"`
	Lines      []Line          `json:"lines"`
	TotalCents int64           `json:"total_cents"`
	Status     Status          `json:"status"`
	Reason     string          `json:"reason"`
	PlacedAt   time.Time       `json:"placed_at"`
	Timeline   []TimelineEntry `json:"timeline,omitempty"`
	Version    int64           `json:"version"`
}

// lineReason names the line of product id in a participant's reason, when o has several
// lines ("Green tea (line 2): out of stock"); for an order of one line it is the reason
// itself.
func (o Order) lineReason(id, reason string) string {
	if len(o.Lines) < 2 {
		return reason
	}
	for i, l := range o.Lines {
		if l.ProductID == id {
			return fmt.Sprintf("%s (line %d): %s", cmp.Or(l.Name, l.ProductID), i+1, reason)
		}
	}
	return reason
}

// Placed is the data of order.placed and of order.approved (which repeats it, so that
// accounting can invoice from order.approved alone). Lines reads the lines of events of
// every version (event.OrderLines); this service writes Lines only.
type Placed struct {
	OrderID  OrderID `json:"order_id"`
	Customer string  `json:"customer"`
	event.OrderLines
	TotalCents int64 `json:"total_cents"`
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

// Price is what the read model knows about a product's name and price.
type Price struct {
	Name    string
	Cents   int64
	Known   bool // a product.added was seen
	Deleted bool
}

// PlaceOrder is the input of POST /orders: the lines, or the one product of the older
// form {product_id, quantity}.
type PlaceOrder struct {
	Lines     []LineInput `json:"lines"`
	ProductID *string     `json:"product_id"`
	Quantity  *int64      `json:"quantity"`
}

// LineInput is a line of PlaceOrder, and the body of PUT /cart/lines/{product_id}.
type LineInput struct {
	ProductID *string `json:"product_id"`
	Quantity  *int64  `json:"quantity"`
}

// Wanted is a valid line of an order or a cart: a product and how many, not yet priced.
type Wanted struct {
	ProductID string
	Quantity  int64
	// at is the index of the product's first line in the input, which an error about
	// the line names ("lines.<at>.product_id").
	at int
}

// The limits of an order (and of a cart).
const (
	MaxQuantity     = 1000 // units of one product
	MaxLines        = 50   // products in one order
	maxProductIDLen = 64
)

// Wanted returns the lines of a valid in, the same product's lines merged into one (in
// the order of their first line), or its problems as a FieldErrors-shaped map, keyed
// "lines.<i>.product_id" and so on (or "product_id" and "quantity" in the older form).
func (in PlaceOrder) Wanted() ([]Wanted, map[string]string) {
	errs := map[string]string{}
	lines, prefix := in.Lines, func(i int) string { return fmt.Sprintf("lines.%d.", i) }
	switch {
	case len(in.Lines) > 0 && (in.ProductID != nil || in.Quantity != nil):
		errs["lines"] = "give lines, or product_id and quantity, not both"
		return nil, errs
	case len(in.Lines) == 0 && in.ProductID == nil && in.Quantity == nil:
		errs["lines"] = "required: at least one line {product_id, quantity}"
		return nil, errs
	case len(in.Lines) > MaxLines:
		errs["lines"] = fmt.Sprintf("at most %d lines", MaxLines)
		return nil, errs
	case len(in.Lines) == 0:
		lines, prefix = []LineInput{{ProductID: in.ProductID, Quantity: in.Quantity}}, func(int) string { return "" }
	}
	var wanted []Wanted
	at := map[string]int{} // product id → index in wanted
	for i, l := range lines {
		if !l.check(errs, prefix(i)) {
			continue
		}
		if j, ok := at[*l.ProductID]; ok {
			wanted[j].Quantity += *l.Quantity
			if wanted[j].Quantity > MaxQuantity {
				errs[prefix(i)+"quantity"] = fmt.Sprintf("the lines of this product add up to more than %d", MaxQuantity)
			}
			continue
		}
		at[*l.ProductID] = len(wanted)
		wanted = append(wanted, Wanted{ProductID: *l.ProductID, Quantity: *l.Quantity, at: i})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return wanted, errs
}

// check adds the problems of l to errs, with the keys prefixed; it reports whether l is
// valid.
func (l LineInput) check(errs map[string]string, prefix string) bool {
	n := len(errs)
	switch {
	case l.ProductID == nil || *l.ProductID == "":
		errs[prefix+"product_id"] = "required"
	case !validProductID(*l.ProductID):
		errs[prefix+"product_id"] = "is not a product id (lower-case letters and digits)"
	}
	switch {
	case l.Quantity == nil:
		errs[prefix+"quantity"] = "required"
	case *l.Quantity < 1 || *l.Quantity > MaxQuantity:
		errs[prefix+"quantity"] = fmt.Sprintf("must be a whole number from 1 to %d", MaxQuantity)
	}
	return len(errs) == n
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

// Place decides an order of customer with lines, priced from products that exist: the
// order.placed event, which starts the saga. (An order of a product that does not exist
// or was deleted is refused before it is placed: priceLines. One deleted after that is
// rejected by the product service's reservation.)
func Place(id OrderID, customer string, lines []Line) []event.New {
	placed := Placed{OrderID: id, Customer: customer, OrderLines: event.OrderLines{Lines: lines}}
	for _, l := range lines {
		placed.TotalCents += l.TotalCents()
	}
	return []event.New{newEvent(decisionNamespace.ID(string(id)+"/placed"), event.OrderPlaced, placed)}
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

// Decide returns what to append to order o when step now happens to it (o's timeline
// may already hold it: recording a step twice changes nothing). Only a pending order is
// decided. A rejection by either participant (of any line, for the stock) rejects it
// with the participant's reason, naming the line; the stock of every line and the credit
// reserved approve it; the saga timeout (StepTimedOut) rejects it with "timed out"
// unless all of these are there. Decide is deterministic, so that a decision made again
// after a crash is the same event.
func Decide(o Order, now TimelineEntry) Decision {
	if o.Status != Pending {
		return Decision{}
	}
	steps := o.Timeline
	if now.Step != "" && now.Step != StepTimedOut {
		steps = append(slices.Clip(steps), now)
	}
	credit, reserved := false, map[string]bool{}
	for _, e := range steps {
		switch e.Step {
		case StepStockRejected:
			return Decision{Reject: true, Reason: o.lineReason(e.ProductID, cmpReason(e.Reason, e.Step))}
		case StepCreditRejected:
			return Decision{Reject: true, Reason: cmpReason(e.Reason, e.Step)}
		case StepCreditReserved:
			credit = true
		case StepStockReserved:
			reserved[e.ProductID] = true
		}
	}
	stock := len(o.Lines) > 0
	for _, l := range o.Lines {
		stock = stock && reserved[l.ProductID]
	}
	switch {
	case stock && credit:
		return Decision{Approve: true}
	case now.Step == StepTimedOut:
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

// decisionNamespace makes the ids of an order's events: an order is placed once and has at
// most one approval and one rejection, so "<order id>/approved" names the event, and a
// decision made again after a crash (or a checkout sent again: cart.go) is recognised by
// the event store as the same event.
var decisionNamespace = idgen.NewNamespace("6f1c0a4e-5b7d-4f0e-9a53-0d9b7e8c2a11")

// decisionEvent returns the event of decision d (not None) about o.
func decisionEvent(o Order, d Decision) event.New {
	if d.Approve {
		return newEvent(decisionNamespace.ID(string(o.ID)+"/approved"), event.OrderApproved,
			Placed{OrderID: o.ID, Customer: o.Customer, OrderLines: event.OrderLines{Lines: o.Lines}, TotalCents: o.TotalCents})
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
