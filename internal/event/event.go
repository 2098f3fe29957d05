// Package event is the wire contract of the event store: the append request and reply that
// travel over RabbitMQ, and the stored event that the store publishes and serves. It is pure
// data and validation, with no I/O, so that every component shares one definition. It also
// names the shop's streams and event types, once (types.go). docs/eventstore.md describes
// the same contract for clients in other languages.
package event

import (
	"encoding/json"
	"time"
)

// Names on the bus that the contract fixes.
const (
	// AppendQueue is the durable queue that takes append requests (RPC, replies to reply_to).
	AppendQueue = "eventstore.append"
	// Exchange is the durable topic exchange that every stored event is published to, with
	// the event type as routing key and the event id as message_id.
	Exchange = "msdemo.events"
)

// Queue returns the name of the durable queue that feeds the subscription name (one per
// service, shared by its replicas): "<name>.events", bound to Exchange with the types the
// service reads. Its dead letters are in "<name>.events.dead".
func Queue(name string) string { return name + ".events" }

// Stored is an event as the store keeps, publishes and serves it.
type Stored struct {
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Position   int64           `json:"position"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   Metadata        `json:"metadata"`
	RecordedAt time.Time       `json:"recorded_at"`
}

// Metadata says why and for whom an event was written. TraceID and TraceParent tie it to
// the trace of the request (or of the event) that caused it (docs/tracing.md): TraceID
// is the trace's id, 32 lower-case hex digits, for people and queries; TraceParent the
// W3C traceparent of the span that appended it, from which a consumer continues the
// trace. Both are optional (events from before tracing, or written untraced, have
// neither); eventclient.Client.Append fills them from its ctx.
type Metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	User          string `json:"user,omitempty"`
	TraceID       string `json:"trace_id,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"`
}

// New is an event in an append request: what the writer decides, before the store gives it
// a stream version, a global position and a time.
type New struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata Metadata        `json:"metadata"`
}

// AppendRequest asks the store to append Events to Stream atomically.
// ExpectedVersion nil means any version; 0 means the stream must not exist; N means the
// stream's last version must be N.
type AppendRequest struct {
	Stream          string `json:"stream"`
	ExpectedVersion *int64 `json:"expected_version"`
	Events          []New  `json:"events"`
}

// Reply errors.
const (
	ErrWrongExpectedVersion = "wrong_expected_version"
	ErrInvalid              = "invalid"
	ErrUnavailable          = "unavailable"
)

// AppendReply answers an AppendRequest. When OK, the versions and positions span the stored
// events; Duplicate says the events had been stored before and nothing was stored now.
// When not OK, Error is one of the Err constants; CurrentVersion is set for
// ErrWrongExpectedVersion and Message for ErrInvalid.
type AppendReply struct {
	OK             bool   `json:"ok"`
	FirstVersion   int64  `json:"first_version,omitempty"`
	LastVersion    int64  `json:"last_version,omitempty"`
	FirstPosition  int64  `json:"first_position,omitempty"`
	LastPosition   int64  `json:"last_position,omitempty"`
	Duplicate      bool   `json:"duplicate,omitempty"`
	Error          string `json:"error,omitempty"`
	Message        string `json:"message,omitempty"`
	CurrentVersion *int64 `json:"current_version,omitempty"`
}
