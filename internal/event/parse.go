package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Limits on an append request. They keep one request well inside a MongoDB document and a
// RabbitMQ message, and keep names printable.
const (
	MaxEventsPerAppend = 1000
	MaxAppendBytes     = 1 << 20
	maxStreamLen       = 200
	maxIDLen           = 64
)

var (
	typePattern   = regexp.MustCompile(`^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$`)
	streamPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]*-[A-Za-z0-9._:@-]+$`)
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
)

// InvalidError says why an append request was refused; its text names the field.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// ParseAppendRequest decodes and validates an append request. Every error it returns is an
// *InvalidError whose text names the offending field, e.g. "events[0].type is empty".
// Unknown fields are refused, so that a misspelt "expected_version" cannot silently mean
// "any version".
func ParseAppendRequest(body []byte) (AppendRequest, error) {
	var req AppendRequest
	if len(body) > MaxAppendBytes {
		return req, invalid("request is larger than %d bytes", MaxAppendBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return req, invalid("%s has the wrong type: %s", typeErr.Field, typeErr.Value)
		}
		return req, invalid("body is not a valid append request: %v", err)
	}
	if dec.More() {
		return req, invalid("body has data after the request")
	}
	return req, req.Validate()
}

// Validate reports the first problem of the request as an *InvalidError, or nil.
func (r AppendRequest) Validate() error {
	switch {
	case r.Stream == "":
		return invalid("stream is empty")
	case len(r.Stream) > maxStreamLen:
		return invalid("stream is longer than %d bytes", maxStreamLen)
	case !streamPattern.MatchString(r.Stream):
		return invalid("stream %q is not of the form <aggregate>-<id>", r.Stream)
	case r.ExpectedVersion != nil && *r.ExpectedVersion < 0:
		return invalid("expected_version is negative")
	case len(r.Events) == 0:
		return invalid("events is empty")
	case len(r.Events) > MaxEventsPerAppend:
		return invalid("events has more than %d entries", MaxEventsPerAppend)
	}
	seen := make(map[string]bool, len(r.Events))
	for i, e := range r.Events {
		if err := e.validate(); err != nil {
			return invalid("events[%d].%v", i, err)
		}
		if seen[e.ID] {
			return invalid("events[%d].id %q is repeated in the request", i, e.ID)
		}
		seen[e.ID] = true
	}
	return nil
}

func (e New) validate() error {
	switch {
	case e.ID == "":
		return errors.New("id is empty")
	case len(e.ID) > maxIDLen || !idPattern.MatchString(e.ID):
		return fmt.Errorf("id %q is not a valid id (letters, digits and . _ : -, at most %d)", e.ID, maxIDLen)
	case e.Type == "":
		return errors.New("type is empty")
	case !typePattern.MatchString(e.Type):
		return fmt.Errorf("type %q is not of the form <aggregate>.<past-tense-verb>", e.Type)
	case len(e.Data) > 0 && !isObjectOrNull(e.Data):
		return errors.New("data is not a JSON object")
	case !utf8.Valid(e.Data):
		return errors.New("data is not valid UTF-8")
	}
	return nil
}

func isObjectOrNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return bytes.HasPrefix(raw, []byte("{")) || bytes.Equal(raw, []byte("null"))
}
