package service

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// FuzzDeadLetter turns any body of a dead-lettered message into the entry that the
// dead-letter listing answers, and checks that the entry encodes as valid UTF-8 JSON whose
// body is the message's own JSON (a body that is JSON; with an event's secret fields
// redacted, TestDeadLetterRedactsPasswordHashes) or a JSON string of its text (any
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
			if got, want := decodeAny(entry.Body), decodeAny(redactBody(body)); !reflect.DeepEqual(got, want) {
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

// TestDeadLetterRedactsPasswordHashes: a dead-lettered customer event is listed for
// managers without its password hash, the rest of it as it was.
func TestDeadLetterRedactsPasswordHashes(t *testing.T) {
	hash := "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
	body := []byte(`{"id":"e1","stream":"customer-ann","version":1,"position":7,"type":"customer.registered",` +
		`"data":{"username":"ann","password_hash":"` + hash + `"}}`)
	encoded, err := json.Marshal(deadLetter(bus.Delivery{Message: bus.Message{ID: "e1", Type: "customer.registered", Body: body}}))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(encoded, []byte(hash)) || !bytes.Contains(encoded, []byte(event.Redacted)) ||
		!bytes.Contains(encoded, []byte(`"username":"ann"`)) || !bytes.Contains(encoded, []byte(`"stream":"customer-ann"`)) {
		t.Fatalf("dead letter listed as %s, want the hash redacted and the rest kept", encoded)
	}
}
