package accounting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
)

// The service reads order.approved and writes invoice.issued (internal/event, types.go).

// OrderID is the id of an order; its invoice is keyed by it.
type OrderID string

// orderIDPattern keeps an order id usable as the tail of a stream name ("invoice-<id>").
var orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,150}$`)

// Approved is the data of order.approved, on the stream "order-<order_id>", as the order
// service appends it: its lines (event.OrderLines, which reads an order of one product
// from before orders had lines too) and their total.
type Approved struct {
	OrderID  OrderID `json:"order_id"`
	Customer string  `json:"customer"`
	event.OrderLines
	TotalCents int64 `json:"total_cents"`
}

// Invoice is what accounting issues for an approved order: the data of invoice.issued on
// the stream "invoice-<order_id>", and the document the read model keeps. It lists every
// line of the order.
type Invoice struct {
	OrderID    OrderID           `json:"order_id"`
	Number     string            `json:"number"` // "INV-<order_id>"
	Customer   string            `json:"customer"`
	Lines      []event.OrderLine `json:"lines"`
	TotalCents int64             `json:"total_cents"`
	IssuedAt   time.Time         `json:"issued_at"`
}

// ErrMalformed says an event's data breaks the contract; applying it again cannot help.
var ErrMalformed = errors.New("malformed event")

// ParseApproved decodes and checks the data of an order.approved event of stream. Every
// error wraps ErrMalformed. Fields it does not know are ignored, so that the order service
// may add some.
func ParseApproved(stream string, data []byte) (Approved, error) {
	var a Approved
	if err := decode(data, &a); err != nil {
		return a, err
	}
	if err := checkOrder(a.OrderID, a.Customer, a.All(), a.TotalCents); err != nil {
		return a, err
	}
	if stream != event.Order.Stream(string(a.OrderID)) {
		return a, fmt.Errorf("order_id %q is not the one of stream %q: %w", a.OrderID, stream, ErrMalformed)
	}
	return a, nil
}

// checkOrder checks what an approval and an invoice say of an order: an id, a customer,
// at least one line, each of a product, at least one unit and a price, and the total of
// the lines.
func checkOrder(id OrderID, customer string, lines []event.OrderLine, totalCents int64) error {
	switch {
	case !orderIDPattern.MatchString(string(id)):
		return fmt.Errorf("order_id %q is empty or not an id: %w", id, ErrMalformed)
	case strings.TrimSpace(customer) == "":
		return fmt.Errorf("customer is empty: %w", ErrMalformed)
	case len(lines) == 0:
		return fmt.Errorf("the order has no lines: %w", ErrMalformed)
	}
	sum := int64(0)
	for i, l := range lines {
		switch {
		case strings.TrimSpace(l.ProductID) == "":
			return fmt.Errorf("line %d: product_id is empty: %w", i+1, ErrMalformed)
		case l.Quantity < 1:
			return fmt.Errorf("line %d: quantity %d is below 1: %w", i+1, l.Quantity, ErrMalformed)
		case l.UnitPriceCents < 0:
			return fmt.Errorf("line %d: unit_price_cents %d is negative: %w", i+1, l.UnitPriceCents, ErrMalformed)
		case l.UnitPriceCents > 0 && l.Quantity > (math.MaxInt64-sum)/l.UnitPriceCents:
			return fmt.Errorf("line %d: quantity times unit_price_cents overflows: %w", i+1, ErrMalformed)
		}
		sum += l.TotalCents()
	}
	if totalCents != sum {
		return fmt.Errorf("total_cents %d is not the sum of the lines, %d: %w", totalCents, sum, ErrMalformed)
	}
	return nil
}

// Invoice returns the invoice for a, issued at issuedAt. Its number and time depend only
// on its arguments, so issuing again for the same approval gives the same invoice: the
// service passes the approval's recorded time, truncated to milliseconds.
func (a Approved) Invoice(issuedAt time.Time) Invoice {
	return Invoice{OrderID: a.OrderID, Number: "INV-" + string(a.OrderID), Customer: a.Customer,
		Lines: a.All(), TotalCents: a.TotalCents, IssuedAt: issuedAt.UTC().Truncate(time.Millisecond)}
}

// ParseIssued decodes and checks the data of an invoice.issued event of stream (of an
// invoice of one product from before orders had lines too). Every error wraps
// ErrMalformed.
func ParseIssued(stream string, data []byte) (Invoice, error) {
	var d struct {
		OrderID  OrderID `json:"order_id"`
		Number   string  `json:"number"`
		Customer string  `json:"customer"`
		event.OrderLines
		TotalCents int64     `json:"total_cents"`
		IssuedAt   time.Time `json:"issued_at"`
	}
	if err := decode(data, &d); err != nil {
		return Invoice{}, err
	}
	inv := Invoice{OrderID: d.OrderID, Number: d.Number, Customer: d.Customer, Lines: d.All(),
		TotalCents: d.TotalCents, IssuedAt: d.IssuedAt}
	switch err := checkOrder(inv.OrderID, inv.Customer, inv.Lines, inv.TotalCents); {
	case err != nil:
		return inv, err
	case stream != InvoiceStream(inv.OrderID):
		return inv, fmt.Errorf("order_id %q is not the one of stream %q: %w", inv.OrderID, stream, ErrMalformed)
	case inv.Number == "":
		return inv, fmt.Errorf("number is empty: %w", ErrMalformed)
	case inv.IssuedAt.IsZero():
		return inv, fmt.Errorf("issued_at is missing: %w", ErrMalformed)
	}
	return inv, nil
}

// InvoiceStream is the stream of an order's invoice.
func InvoiceStream(id OrderID) string { return event.Invoice.Stream(string(id)) }

// invoiceNamespace is the UUID namespace of invoice event ids.
var invoiceNamespace = idgen.NewNamespace("5b0c4a62-6a53-4f0e-9b8e-0d3c2a8f7e11")

// InvoiceEventID is the id of the invoice.issued event of an order. It is the same every
// time, so the event store stores an order's invoice once however often it is sent.
func InvoiceEventID(id OrderID) string {
	return invoiceNamespace.ID(string(id) + "/invoice")
}

func decode(data []byte, v any) error {
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return fmt.Errorf("data is not a JSON object: %w", ErrMalformed)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("data: %v: %w", err, ErrMalformed)
	}
	return nil
}
