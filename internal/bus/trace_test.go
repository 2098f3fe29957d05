package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// The carrier round-trips a W3C trace context through an AMQP table, and a header that
// is not a string counts as absent.
func TestHeaderCarrier(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5},
		TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	prop := propagation.TraceContext{}
	headers := amqp.Table{"store_id": "s1"}
	prop.Inject(ctx, bus.HeaderCarrier(headers))
	if got, want := headers["traceparent"], "00-01020300000000000000000000000000-0405000000000000-01"; got != want {
		t.Errorf("traceparent header: got %v, want %q", got, want)
	}
	if err := headers.Validate(); err != nil {
		t.Errorf("the headers are not a valid AMQP table: %v", err)
	}
	back := trace.SpanContextFromContext(prop.Extract(context.Background(), bus.HeaderCarrier(headers)))
	if !back.Equal(sc.WithRemote(true)) {
		t.Errorf("extracted %v, want %v", back, sc)
	}
	if keys := bus.HeaderCarrier(headers).Keys(); len(keys) != 2 {
		t.Errorf("Keys: got %v, want store_id and traceparent", keys)
	}
	notString := amqp.Table{"traceparent": []byte("00-01020300000000000000000000000000-0405000000000000-01")}
	if got := trace.SpanContextFromContext(prop.Extract(context.Background(), bus.HeaderCarrier(notString))); got.IsValid() {
		t.Errorf("a []byte traceparent was read as %v, want it absent", got)
	}
}

// A message published (or an RPC request sent) with a traced ctx carries its
// traceparent, and its handler runs in a consumer span, the child of the publisher's
// span; a message with a traceparent of its own keeps it; one published untraced has
// none, and is handled without a span.
func TestTraceCrossesTheBus(t *testing.T) {
	t.Parallel()
	stop, err := telemetry.StartTracing(t.Context(), telemetry.TraceConfig{Service: "bus-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	ex := exchange(t, c)
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	type handled struct {
		headers map[string]any
		span    trace.SpanContext
	}
	var mu sync.Mutex
	got := map[string]handled{}
	_, err = c.Consume(ctx, bus.QueueConfig{Name: queue, Exchange: ex, Keys: []string{"#"}, Durable: true},
		func(ctx context.Context, d bus.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			got[d.ID] = handled{d.Headers, trace.SpanContextFromContext(ctx)}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}

	traced, span := telemetry.Tracer().Start(ctx, "publisher")
	defer span.End()
	own := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	msgs := []bus.Routed{
		{Key: "a", Message: bus.Message{ID: "traced", Body: []byte("{}"), Headers: map[string]any{"k": "v"}}},
		{Key: "a", Message: bus.Message{ID: "own", Body: []byte("{}"), Headers: map[string]any{"traceparent": own}}},
	}
	if err := c.PublishBatch(traced, ex, msgs); err != nil {
		t.Fatal(err)
	}
	if _, ok := msgs[0].Headers["traceparent"]; ok {
		t.Error("PublishBatch changed the caller's headers")
	}
	if err := c.Publish(ctx, ex, "a", bus.Message{ID: "untraced", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	mu.Lock()
	defer mu.Unlock()
	publisher := span.SpanContext()
	if h := got["traced"]; h.headers["traceparent"] != telemetry.TraceParent(traced) || h.headers["k"] != "v" {
		t.Errorf("traced message: headers %v, want traceparent %s and k", h.headers, telemetry.TraceParent(traced))
	} else if h.span.TraceID() != publisher.TraceID() || h.span.SpanID() == publisher.SpanID() {
		t.Errorf("traced message handled in span %v, want a child of %v", h.span, publisher)
	}
	if h := got["own"]; h.headers["traceparent"] != own || h.span.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("message with its own traceparent: headers %v, span %v; want it kept", h.headers, h.span)
	}
	if h := got["untraced"]; h.headers["traceparent"] != nil || h.span.IsValid() {
		t.Errorf("untraced message: headers %v, span %v; want neither", h.headers, h.span)
	}

	// RPC: the request carries the trace too.
	rpcQueue := uniqueName(t)
	cleanupQueues(t, c, rpcQueue)
	var served trace.SpanContext
	if _, err := c.Serve(ctx, bus.QueueConfig{Name: rpcQueue}, func(ctx context.Context, d bus.Delivery) ([]byte, error) {
		served = trace.SpanContextFromContext(ctx)
		return []byte("{}"), nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(traced, rpcQueue, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if served.TraceID() != publisher.TraceID() {
		t.Errorf("RPC served in span %v, want one of trace %s", served, publisher.TraceID())
	}
}
