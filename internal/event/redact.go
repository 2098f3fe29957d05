package event

import "encoding/json"

// secretFields names, for each event type that has them, the fields of its data that only
// the services may read: the password hashes the customer service rebuilds its logins
// from. People never see them: the event store's read API answers a request that came
// through the gateway (auth.RoleHeader) with these fields Redacted.
var secretFields = map[string][]string{
	CustomerRegistered:      {"password_hash"},
	CustomerPasswordChanged: {"password_hash"},
}

// HasSecrets reports whether events of type typ have secret fields.
func HasSecrets(typ string) bool { return len(secretFields[typ]) > 0 }

// Redacted is what a secret field reads as for people.
const Redacted = "[redacted]"

// Redact returns e with the secret fields of its data replaced by Redacted; e itself is
// not changed. Data that is not a JSON object, of a type with secret fields, is replaced
// whole.
func Redact(e Stored) Stored {
	fields := secretFields[e.Type]
	if len(fields) == 0 {
		return e
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &data); err != nil || data == nil {
		e.Data = json.RawMessage(`{}`)
		return e
	}
	redacted, _ := json.Marshal(Redacted)
	for _, f := range fields {
		if _, ok := data[f]; ok {
			data[f] = redacted
		}
	}
	e.Data, _ = json.Marshal(data)
	return e
}

// RedactAll returns events with Redact applied to each, in a new slice.
func RedactAll(events []Stored) []Stored {
	out := make([]Stored, len(events))
	for i, e := range events {
		out[i] = Redact(e)
	}
	return out
}
