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
func decodePlaceOrder(body []byte) (PlaceOrder, *httptest.ResponseRecorder, bool) {
	r := httptest.NewRequest(http.MethodPost, "/orders", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, service.MaxBodyBytes)
	var in PlaceOrder
	err := service.Decode(r, &in)
	if err == nil {
		if errs := in.Validate(); len(errs) > 0 {
			err = service.FieldErrors(errs)
		}
	}
	if err != nil {
		service.Error(w, r, slog.New(slog.DiscardHandler), err)
		return in, w, false
	}
	return in, w, true
}

// FuzzPlaceOrderInput: no body makes decoding panic or answer 500; a body it accepts is
// a valid order (a product id that makes a stream name, a quantity from 1 to 1000).
// The seed corpus is in testdata/fuzz/FuzzPlaceOrderInput.
func FuzzPlaceOrderInput(f *testing.F) {
	f.Add([]byte(`{"product_id": "abcdefghij", "quantity": 2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, w, ok := decodePlaceOrder(body)
		if !ok {
			if w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("body %q: got status %d, want 400 or 413", body, w.Code)
			}
			return
		}
		if !validProductID(*in.ProductID) || *in.Quantity < 1 || *in.Quantity > MaxQuantity {
			t.Fatalf("body %q: accepted %q x %d", body, *in.ProductID, *in.Quantity)
		}
		if events := Place("aaaaaaaaaaaa", "ann", in, Price{Cents: 1, Known: true}); len(events) != 1 {
			t.Fatalf("body %q: Place gave %d events, want 1", body, len(events))
		}
	})
}
