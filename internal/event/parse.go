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
	MaxAppendBytes     = 1 << 20 // also the limit of a whole batch message
	MaxAppendBatch     = 256     // requests in one batch message
	maxStreamLen       = 200
	maxIDLen           = 64
)

var (
	typePattern   = regexp.MustCompile(`^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$`)
	streamPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]*-[A-Za-z0-9._:@-]+$`)
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	// traceIDPattern and traceParentPattern are W3C trace context's forms (version 00).
	traceIDPattern     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	traceParentPattern = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
)

// InvalidError says why an append request was refused; its text names the field.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// IsAppendBatch reports whether an append message's body is a batch: a JSON array of
// append requests, answered with a JSON array of their replies in the same order.
func IsAppendBatch(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '['
}

// ParseAppendBatch splits a batch message into its requests and parses each as
// ParseAppendRequest does: requests[i] is usable when problems[i] is nil. err (an
// *InvalidError) refuses the whole message: not an array, empty, too large, or more than
// MaxAppendBatch requests.
func ParseAppendBatch(body []byte) (requests []AppendRequest, problems []error, err error) {
	if len(body) > MaxAppendBytes {
		return nil, nil, invalid("batch is larger than %d bytes", MaxAppendBytes)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, invalid("body is not a valid batch of append requests: %v", err)
	}
	switch {
	case len(raw) == 0:
		return nil, nil, invalid("batch is empty")
	case len(raw) > MaxAppendBatch:
		return nil, nil, invalid("batch has more than %d requests", MaxAppendBatch)
	}
	requests, problems = make([]AppendRequest, len(raw)), make([]error, len(raw))
	for i, r := range raw {
		requests[i], problems[i] = ParseAppendRequest(r)
	}
	return requests, problems, nil
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
	case e.Metadata.TraceID != "" && !traceIDPattern.MatchString(e.Metadata.TraceID):
		return errors.New("metadata.trace_id is not 32 lower-case hex digits")
	case e.Metadata.TraceParent != "" && !traceParentPattern.MatchString(e.Metadata.TraceParent):
		return errors.New("metadata.traceparent is not a W3C traceparent (00-<trace id>-<span id>-<flags>)")
	case e.Metadata.TraceParent != "" && e.Metadata.TraceID != "" && e.Metadata.TraceParent[3:35] != e.Metadata.TraceID:
		return errors.New("metadata.trace_id is not the trace id of metadata.traceparent")
	}
	return nil
}

func isObjectOrNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return isObject(raw) || bytes.Equal(raw, []byte("null"))
}

// ParseStored decodes a stored event as the store publishes and serves it, and checks
// what every reader relies on: an id, a stream and a type of the forms an append request
// must have, a version and a position of at least 1, and data that is a JSON object (or
// null, which the store has never published but a reader would take as {}).
// Fields it does not know are ignored (a newer store may add some). Its error, an
// *InvalidError, names the field.
func ParseStored(body []byte) (Stored, error) {
	var e Stored
	if err := json.Unmarshal(body, &e); err != nil {
		return Stored{}, invalid("body is not a stored event: %v", err)
	}
	switch {
	case len(e.Stream) > maxStreamLen || !streamPattern.MatchString(e.Stream):
		return Stored{}, invalid("stream %q is not of the form <aggregate>-<id>", e.Stream)
	case e.Version < 1:
		return Stored{}, invalid("version %d is not at least 1", e.Version)
	case e.Position < 1:
		return Stored{}, invalid("position %d is not at least 1", e.Position)
	case !isObjectOrNull(e.Data):
		return Stored{}, invalid("data is not a JSON object")
	}
	if err := (New{ID: e.ID, Type: e.Type, Data: e.Data}).validate(); err != nil {
		return Stored{}, invalid("%v", err)
	}
	return e, nil
}

func isObject(raw json.RawMessage) bool {
	return bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{"))
}
