package event

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	registered := Stored{Type: CustomerRegistered, Data: json.RawMessage(
		`{"username":"ada","password_hash":"$2a$10$abcdefghijklmnopqrstuv","credit_cents":100}`)}
	got := Redact(registered)
	var data map[string]any
	if err := json.Unmarshal(got.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["password_hash"] != Redacted || data["username"] != "ada" || data["credit_cents"] != float64(100) {
		t.Errorf("redacted customer.registered: got %s", got.Data)
	}
	if !strings.Contains(string(registered.Data), "$2a$") {
		t.Errorf("Redact changed the event it was given: %s", registered.Data)
	}
	if got := Redact(Stored{Type: CustomerPasswordChanged, Data: json.RawMessage(`"$2a$10$x"`)}); string(got.Data) != `{}` {
		t.Errorf("a secret type's data that is not an object: got %s, want {}", got.Data)
	}
	other := Stored{Type: CustomerProfileUpdated, Data: json.RawMessage(`{"password_hash":"kept, not a secret field of this type"}`)}
	if got := Redact(other); string(got.Data) != string(other.Data) {
		t.Errorf("customer.profile-updated: got %s, want it unchanged", got.Data)
	}
}
