package eventstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// An append made in a trace records it in its events' metadata (the span of the append),
// sends it in the append request's headers (the store's handling of the message is in
// the trace), and the store handles the request in a span of its own, the child of the
// append's. An append made outside a trace records none.
func TestAppendCarriesTheTrace(t *testing.T) {
	stop, err := telemetry.StartTracing(t.Context(), telemetry.TraceConfig{Service: "eventstore-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	c, stopStore := startStore(t, t.TempDir())
	defer stopStore()

	ctx, span := telemetry.Tracer().Start(t.Context(), "test")
	traceID := span.SpanContext().TraceID().String()
	id := uuid.NewString()
	reply, err := c.Append(ctx, event.AppendRequest{Stream: "thing-1", Events: []event.New{{ID: id, Type: "thing.made"}}})
	span.End()
	if err != nil || !reply.OK {
		t.Fatalf("append: %+v, %v", reply, err)
	}
	untraced := uuid.NewString()
	if reply, err := c.Append(context.Background(), event.AppendRequest{Stream: "thing-1",
		Events: []event.New{{ID: untraced, Type: "thing.made"}}}); err != nil || !reply.OK {
		t.Fatalf("append: %+v, %v", reply, err)
	}

	events, _, err := c.Stream(context.Background(), "thing-1")
	if err != nil || len(events) != 2 {
		t.Fatalf("read the stream: %d events, %v", len(events), err)
	}
	if m := events[0].Metadata; m.TraceID != traceID || telemetry.TraceIDOf(m.TraceParent) != traceID {
		t.Errorf("traced event: metadata %+v, want trace %s", m, traceID)
	}
	if m := events[1].Metadata; m.TraceID != "" || m.TraceParent != "" {
		t.Errorf("untraced event: metadata %+v, want no trace", m)
	}

	spans := map[string]telemetry.Span{}
	consumed := false // the store's consuming of the append message
	for _, s := range telemetry.Trace(traceID) {
		spans[s.Name] = s
		consumed = consumed || strings.HasPrefix(s.Name, "consume ") && strings.HasSuffix(s.Name, ".append")
	}
	appended, handled := spans["append thing-1"], spans["eventstore append thing-1"]
	if appended.SpanID == "" || handled.ParentID != appended.SpanID || !consumed {
		t.Errorf("spans of the trace: %v; want the append, the store's consuming of its message, "+
			"and the store's handling of the request as the append's child", spans)
	}
	if !strings.HasSuffix(events[0].Metadata.TraceParent[:52], appended.SpanID) {
		t.Errorf("the event's traceparent %s is not the append span's (%s)", events[0].Metadata.TraceParent, appended.SpanID)
	}
}
