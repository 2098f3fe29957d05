package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// The fuzz targets of the wire contract's decoders: a body is refused with an
// *InvalidError that says why, or accepted as a value that is valid and survives being
// encoded and decoded again unchanged (a client re-encodes what it sends, and a reader
// what it forwards). Their seed corpora are in testdata/fuzz/<name>/.

// validAppend is an append request as eventclient sends it.
const validAppend = `{"stream":"product-Ab12cd34ef","expected_version":0,"events":[{"id":"0b7e8c1e-3f0a-4f43-9d2b-1a2b3c4d5e6f","type":"product.added","data":{"id":"Ab12cd34ef","name":"Chai","price_cents":1800,"units_in_stock":39},"metadata":{"correlation_id":"c1","user":"boss"}}]}`

// validStored is a stored event as the store publishes it.
const validStored = `{"id":"0b7e8c1e-3f0a-4f43-9d2b-1a2b3c4d5e6f","stream":"order-Ab12cd34ef","version":1,"position":42,"type":"order.placed","data":{"order_id":"Ab12cd34ef","customer":"ann","product_id":"Zx98yw76vu","quantity":2,"unit_price_cents":1800,"total_cents":3600},"metadata":{"correlation_id":"c1","causation_id":"c0","user":"ann"},"recorded_at":"2026-11-26T10:00:00.123Z"}`

// checkRefusal fails t unless err, the refusal of body, is an *InvalidError with a reason.
func checkRefusal(t *testing.T, body []byte, err error) {
	t.Helper()
	var invalid *InvalidError
	if !errors.As(err, &invalid) || invalid.Reason == "" {
		t.Fatalf("body %q: got error %T %v, want an *InvalidError with a reason", body, err, err)
	}
}

// checkRoundTrip fails t unless v encodes, and the encoding parses (with parse) to a value
// that encodes the same.
func checkRoundTrip[T any](t *testing.T, body []byte, v T, parse func([]byte) (T, error)) {
	t.Helper()
	encoded, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("body %q: accepted %+v, which does not encode: %v", body, v, err)
	}
	again, err := parse(encoded)
	if err != nil {
		t.Fatalf("body %q: accepted, but its encoding %s is refused: %v", body, encoded, err)
	}
	if reencoded, _ := json.Marshal(again); !bytes.Equal(reencoded, encoded) {
		t.Fatalf("body %q: encoded as %s, decoded again as %s", body, encoded, reencoded)
	}
}

func FuzzParseAppendRequest(f *testing.F) {
	f.Add([]byte(validAppend))
	f.Add([]byte(`{"stream":"order-1","events":[{"id":"e1","type":"order.placed","data":null}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"stream":"order-1","expected_version":3,"events":[{"id":"e1","type":"order.placed"},{"id":"e2","type":"order.approved","data":{}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseAppendRequest(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("body %q: accepted %+v, which Validate refuses: %v", body, req, err)
		}
		if len(body) > MaxAppendBytes {
			t.Fatalf("body of %d bytes accepted, want at most %d", len(body), MaxAppendBytes)
		}
		checkRoundTrip(t, body, req, ParseAppendRequest)
	})
}

func FuzzParseAppendBatch(f *testing.F) {
	f.Add([]byte("[" + validAppend + "]"))
	f.Add([]byte("[" + validAppend + `,{"stream":"order-1","events":[]},5]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, problems, err := ParseAppendBatch(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		if len(reqs) == 0 || len(reqs) > MaxAppendBatch || len(problems) != len(reqs) {
			t.Fatalf("body %q: got %d requests and %d problems, want 1 to %d of each", body, len(reqs), len(problems), MaxAppendBatch)
		}
		for i, req := range reqs {
			if problems[i] != nil {
				checkRefusal(t, body, problems[i])
				continue
			}
			if err := req.Validate(); err != nil {
				t.Fatalf("body %q: request %d accepted, but Validate refuses it: %v", body, i, err)
			}
			checkRoundTrip(t, body, req, ParseAppendRequest)
		}
	})
}

func FuzzParseStored(f *testing.F) {
	f.Add([]byte(validStored))
	f.Add([]byte(`{"id":"e1","stream":"order-1","version":1,"position":1,"type":"order.placed","data":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseStored(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		if e.ID == "" || e.Type == "" || e.Stream == "" || e.Version < 1 || e.Position < 1 || !isObjectOrNull(e.Data) {
			t.Fatalf("body %q: accepted %+v", body, e)
		}
		checkRoundTrip(t, body, e, ParseStored)
	})
}
