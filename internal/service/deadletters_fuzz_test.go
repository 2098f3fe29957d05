package service

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/msdemo/msdemo/internal/bus"
)

// FuzzDeadLetter turns any body of a dead-lettered message into the entry that the
// dead-letter listing answers, and checks that the entry encodes as valid UTF-8 JSON whose
// body is the message's own JSON (a body that is JSON) or a JSON string of its text (any
// other body), so that no message, however malformed, breaks the listing.
// The seed corpus is in testdata/fuzz/FuzzDeadLetter.
func FuzzDeadLetter(f *testing.F) {
	f.Add([]byte(`{"id":"e1","stream":"order-1","version":1,"position":7,"type":"order.placed","data":{}}`))
	f.Add([]byte(`not JSON`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		encoded, err := json.Marshal(deadLetter(bus.Delivery{Message: bus.Message{ID: "m1", Type: "order.placed", Body: body}}))
		if err != nil || !utf8.Valid(encoded) || !json.Valid(encoded) {
			t.Fatalf("body %q: the entry %q (%v) is not valid UTF-8 JSON", body, encoded, err)
		}
		var entry struct{ Body json.RawMessage }
		if err := json.Unmarshal(encoded, &entry); err != nil {
			t.Fatal(err)
		}
		if json.Valid(body) && utf8.Valid(body) {
			if got, want := decodeAny(entry.Body), decodeAny(body); !reflect.DeepEqual(got, want) {
				t.Fatalf("body %q: shown as %s", body, entry.Body)
			}
			return
		}
		var text string
		if err := json.Unmarshal(entry.Body, &text); err != nil || (utf8.Valid(body) && text != string(body)) {
			t.Fatalf("body %q: shown as %s, want its text as a JSON string", body, entry.Body)
		}
	})
}

// decodeAny decodes JSON with its numbers as written.
func decodeAny(raw []byte) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err.Error()
	}
	return v
}
