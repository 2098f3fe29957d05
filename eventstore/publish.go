package eventstore

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// newPublisher returns the follower that publishes every stored event, in position order,
// to exchange: routing key = type, message_id = id, persistent, confirmed. After a crash
// it publishes again from its last recorded mark; consumers skip what they have.
func newPublisher(s *Store, conn *bus.Conn, exchange string) *follower {
	return &follower{mark: "published", store: s, batch: 500,
		handle: func(ctx context.Context, events []event.Stored) error {
			return conn.PublishBatch(ctx, exchange, messages(s.ID(), events))
		}}
}

// messages turns stored events into bus messages. An event with a traceparent in its
// metadata is published with it as the traceparent header, so that its consumers' spans
// join the trace of the request that wrote it (docs/tracing.md).
func messages(storeID string, events []event.Stored) []bus.Routed {
	msgs := make([]bus.Routed, len(events))
	for i, e := range events {
		body, _ := json.Marshal(e) // a Stored always marshals: its Data is valid JSON
		headers := map[string]any{"position": strconv.FormatInt(e.Position, 10), "stream": e.Stream, "store_id": storeID}
		if e.Metadata.TraceParent != "" {
			headers["traceparent"] = e.Metadata.TraceParent
		}
		msgs[i] = bus.Routed{Key: e.Type, Message: bus.Message{ID: e.ID, Type: e.Type, Body: body, Headers: headers}}
	}
	return msgs
}
