package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/telemetry"
)

// startTracing starts the process's tracing for the test and ends it at cleanup.
func startTracing(t *testing.T) {
	t.Helper()
	stop, err := telemetry.StartTracing(t.Context(), telemetry.TraceConfig{Service: "telemetry-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

// A record logged with a ctx that carries a span gets its trace_id and span_id, also
// through WithAttrs; one without gets neither.
func TestLogHandlerAddsTraceID(t *testing.T) {
	startTracing(t)
	var out bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&out, nil))).With("component", "test")
	ctx, span := telemetry.Tracer().Start(context.Background(), "work")
	defer span.End()
	logger.InfoContext(ctx, "traced")
	logger.InfoContext(context.Background(), "untraced")
	logger.InfoContext(context.WithValue(context.Background(), telemetry.LogSpanKey{}, span.SpanContext()), "fasthttp")
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3: %s", len(lines), out.String())
	}
	var traced, untraced, keyed map[string]any
	_ = json.Unmarshal(lines[0], &traced)
	_ = json.Unmarshal(lines[1], &untraced)
	_ = json.Unmarshal(lines[2], &keyed)
	if keyed["trace_id"] != span.SpanContext().TraceID().String() {
		t.Errorf("line with the span context under LogSpanKey: got %v, want its trace_id", keyed)
	}
	if traced["trace_id"] != span.SpanContext().TraceID().String() || traced["span_id"] != span.SpanContext().SpanID().String() ||
		traced["component"] != "test" {
		t.Errorf("traced line: got %v, want trace_id %s, span_id and component", traced, span.SpanContext().TraceID())
	}
	if _, ok := untraced["trace_id"]; ok {
		t.Errorf("untraced line: got %v, want no trace_id", untraced)
	}
}

// Trace returns the ended spans of one trace, earliest first, with their component and
// parent; another trace's spans and a malformed id give none.
func TestTraceKeepsRecentSpans(t *testing.T) {
	startTracing(t)
	ctx, root := telemetry.Tracer().Start(context.Background(), "root", trace.WithAttributes(telemetry.ComponentKey.String("gateway")))
	_, child := telemetry.Tracer().Start(ctx, "child")
	child.End()
	root.End()
	_, other := telemetry.Tracer().Start(context.Background(), "other")
	other.End()

	spans := telemetry.Trace(root.SpanContext().TraceID().String())
	if len(spans) != 2 || spans[0].Name != "root" || spans[1].Name != "child" {
		t.Fatalf("got %+v, want root and child", spans)
	}
	if spans[0].Component != "gateway" || spans[1].Component != "telemetry-test" {
		t.Errorf("components: got %q and %q, want gateway and the service's name", spans[0].Component, spans[1].Component)
	}
	if spans[0].ParentID != "" || spans[1].ParentID != spans[0].SpanID {
		t.Errorf("parents: got %q and %q, want none and the root's", spans[0].ParentID, spans[1].ParentID)
	}
	if got := telemetry.Trace("not-a-trace-id"); got != nil {
		t.Errorf("a malformed id: got %v, want none", got)
	}
	if tp := telemetry.TraceParent(ctx); telemetry.TraceIDOf(tp) != root.SpanContext().TraceID().String() {
		t.Errorf("TraceParent %q does not name the root's trace", tp)
	}
}
