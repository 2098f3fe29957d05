package accounting

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
)

func TestParseApproved(t *testing.T) {
	valid := `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 3, "unit_price_cents": 250, "total_cents": 750}`
	tests := []struct {
		name, stream, data string
		wantErr            bool
	}{
		{"valid", "order-o1", valid, false},
		{"unknown field ignored", "order-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 1, "unit_price_cents": 5, "total_cents": 5, "note": "x"}`, false},
		{"free order", "order-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 1, "unit_price_cents": 0, "total_cents": 0}`, false},
		{"other stream", "order-o2", valid, true},
		{"not JSON", "order-o1", `{"order_id": `, true},
		{"array", "order-o1", `[1]`, true},
		{"quantity as text", "order-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": "3", "unit_price_cents": 250, "total_cents": 750}`, true},
		{"no order id", "order-", `{"customer": "ann", "product_id": "p1", "quantity": 1, "unit_price_cents": 5, "total_cents": 5}`, true},
		{"order id with slash", "order-a/b", `{"order_id": "a/b", "customer": "ann", "product_id": "p1", "quantity": 1, "unit_price_cents": 5, "total_cents": 5}`, true},
		{"no customer", "order-o1", `{"order_id": "o1", "product_id": "p1", "quantity": 1, "unit_price_cents": 5, "total_cents": 5}`, true},
		{"no product", "order-o1", `{"order_id": "o1", "customer": "ann", "quantity": 1, "unit_price_cents": 5, "total_cents": 5}`, true},
		{"zero quantity", "order-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 0, "unit_price_cents": 5, "total_cents": 0}`, true},
		{"negative price", "order-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 1, "unit_price_cents": -5, "total_cents": -5}`, true},
		{"wrong total", "order-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 3, "unit_price_cents": 250, "total_cents": 700}`, true},
		{"overflow", "order-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 4611686018427387904, "unit_price_cents": 4, "total_cents": 0}`, true},
		{"lines", "order-o1", `{"order_id": "o1", "customer": "ann", "lines": [{"product_id": "p1", "quantity": 3, "unit_price_cents": 250}, {"product_id": "p2", "name": "Mug", "quantity": 1, "unit_price_cents": 900}], "total_cents": 1650}`, false},
		{"lines, wrong total", "order-o1", `{"order_id": "o1", "customer": "ann", "lines": [{"product_id": "p1", "quantity": 3, "unit_price_cents": 250}, {"product_id": "p2", "quantity": 1, "unit_price_cents": 900}], "total_cents": 750}`, true},
		{"a line without product", "order-o1", `{"order_id": "o1", "customer": "ann", "lines": [{"product_id": "p1", "quantity": 3, "unit_price_cents": 250}, {"quantity": 1, "unit_price_cents": 900}], "total_cents": 1650}`, true},
		{"no lines", "order-o1", `{"order_id": "o1", "customer": "ann", "lines": [], "total_cents": 0}`, true},
		{"lines overflow together", "order-o1", `{"order_id": "o1", "customer": "ann", "lines": [{"product_id": "p1", "quantity": 1, "unit_price_cents": 9223372036854775807}, {"product_id": "p2", "quantity": 1, "unit_price_cents": 1}], "total_cents": 0}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseApproved(tt.stream, []byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want an error wrapping ErrMalformed", err)
			}
		})
	}
}

func TestInvoiceIsDeterministic(t *testing.T) {
	lines := []event.OrderLine{{ProductID: "p1", Name: "Tea", Quantity: 3, UnitPriceCents: 250},
		{ProductID: "p2", Name: "Mug", Quantity: 1, UnitPriceCents: 900}}
	a := Approved{OrderID: "o1", Customer: "ann", OrderLines: event.OrderLines{Lines: lines}, TotalCents: 1650}
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	inv := a.Invoice(at)
	want := Invoice{OrderID: "o1", Number: "INV-o1", Customer: "ann", Lines: lines,
		TotalCents: 1650, IssuedAt: time.Date(2026, 11, 26, 9, 0, 0, 123000000, time.UTC)}
	if !reflect.DeepEqual(inv, want) {
		t.Fatalf("got %+v, want %+v", inv, want)
	}
	if got := a.Invoice(at.Add(400 * time.Microsecond)); !reflect.DeepEqual(got, inv) {
		t.Fatalf("got %+v for the same millisecond, want %+v", got, inv)
	}
	if InvoiceEventID("o1") != InvoiceEventID("o1") || InvoiceEventID("o1") == InvoiceEventID("o2") {
		t.Fatalf("InvoiceEventID is not one id per order: %s %s", InvoiceEventID("o1"), InvoiceEventID("o2"))
	}
}

func TestParseIssued(t *testing.T) {
	valid := `{"order_id": "o1", "number": "INV-o1", "customer": "ann", "product_id": "p1", "quantity": 3, "unit_price_cents": 250, "total_cents": 750, "issued_at": "2026-11-26T10:00:00.123Z"}`
	tests := []struct {
		name, stream, data string
		wantErr            bool
	}{
		{"valid", "invoice-o1", valid, false},
		{"other stream", "invoice-o2", valid, true},
		{"no time", "invoice-o1", `{"order_id": "o1", "number": "INV-o1", "customer": "ann", "product_id": "p1", "quantity": 3, "unit_price_cents": 250, "total_cents": 750}`, true},
		{"no number", "invoice-o1", `{"order_id": "o1", "customer": "ann", "product_id": "p1", "quantity": 3, "unit_price_cents": 250, "total_cents": 750, "issued_at": "2026-11-26T10:00:00Z"}`, true},
		{"wrong total", "invoice-o1", `{"order_id": "o1", "number": "INV-o1", "customer": "ann", "product_id": "p1", "quantity": 3, "unit_price_cents": 250, "total_cents": 1, "issued_at": "2026-11-26T10:00:00Z"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIssued(tt.stream, []byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
