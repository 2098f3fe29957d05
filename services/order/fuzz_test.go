package order

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/msdemo/msdemo/internal/service"
)

// decodePlaceOrder is what POST /orders does with its body before it looks at the read
// model: decode, validate, and on failure answer through service.Error.
func decodePlaceOrder(body []byte) ([]Wanted, *httptest.ResponseRecorder, bool) {
	r := httptest.NewRequest(http.MethodPost, "/orders", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, service.MaxBodyBytes)
	var in PlaceOrder
	var wanted []Wanted
	err := service.Decode(r, &in)
	if err == nil {
		var errs map[string]string
		if wanted, errs = in.Wanted(); len(errs) > 0 {
			err = service.FieldErrors(errs)
		}
	}
	if err != nil {
		service.Error(w, r, slog.New(slog.DiscardHandler), err)
		return nil, w, false
	}
	return wanted, w, true
}

// FuzzPlaceOrderInput: no body makes decoding panic or answer 500; a body it accepts is
// a valid order (1 to MaxLines lines of different products, each a product id that makes
// a stream name and a quantity from 1 to 1000).
// The seed corpus is in testdata/fuzz/FuzzPlaceOrderInput.
func FuzzPlaceOrderInput(f *testing.F) {
	f.Add([]byte(`{"product_id": "abcdefghij", "quantity": 2}`))
	f.Add([]byte(`{"lines": [{"product_id": "abcdefghij", "quantity": 2}, {"product_id": "bcdefghijk", "quantity": 1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		wanted, w, ok := decodePlaceOrder(body)
		if !ok {
			if w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("body %q: got status %d, want 400 or 413", body, w.Code)
			}
			return
		}
		if len(wanted) < 1 || len(wanted) > MaxLines {
			t.Fatalf("body %q: accepted %d lines", body, len(wanted))
		}
		seen := map[string]bool{}
		lines := make([]Line, len(wanted))
		for i, l := range wanted {
			if !validProductID(l.ProductID) || l.Quantity < 1 || l.Quantity > MaxQuantity || seen[l.ProductID] {
				t.Fatalf("body %q: accepted line %q x %d", body, l.ProductID, l.Quantity)
			}
			seen[l.ProductID] = true
			lines[i] = Line{ProductID: l.ProductID, Quantity: l.Quantity, UnitPriceCents: 1}
		}
		if events := Place("aaaaaaaaaaaa", "ann", lines); len(events) != 1 {
			t.Fatalf("body %q: Place gave %d events, want 1", body, len(events))
		}
	})
}
