package bus

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/telemetry"
)

// Traces cross the bus in the message headers (docs/tracing.md): a publish or a Call made
// with a ctx that carries a span sends its W3C traceparent (and tracestate) as headers,
// unless the message has a traceparent header already (the event store sets the one
// recorded in each event's metadata), and a consumer handles each delivery in a span of
// kind consumer, the child of the traceparent in its headers. A delivery without one
// (a registry announcement, a message from a client that does not trace) is handled
// without a span: the bus continues traces, it does not start them.

// HeaderCarrier lets the OTel propagator read and write the headers of an AMQP message.
// Only string values are read; a header of another type counts as absent.
type HeaderCarrier amqp.Table

// Get returns the string value of header key, "" when it is absent or not a string.
func (c HeaderCarrier) Get(key string) string {
	v, _ := c[key].(string)
	return v
}

// Set sets header key to value.
func (c HeaderCarrier) Set(key, value string) { c[key] = value }

// Keys lists the headers.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// withTrace returns headers with ctx's trace context added, or headers as they are when
// ctx has no span or they carry a traceparent already. It copies headers before adding:
// the caller's map is not changed.
func withTrace(ctx context.Context, headers map[string]any) map[string]any {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return headers
	}
	if _, ok := headers["traceparent"]; ok {
		return headers
	}
	out := make(map[string]any, len(headers)+2)
	for k, v := range headers {
		out[k] = v
	}
	telemetry.Propagator().Inject(ctx, HeaderCarrier(out))
	return out
}

// startConsumeSpan starts the span of handling d from queue (label: the queue's name for
// the Observer), the child of the trace context in d's headers. Without one it returns
// ctx and a no-op span.
func (c *conn) startConsumeSpan(ctx context.Context, label string, d amqp.Delivery) (context.Context, trace.Span) {
	ctx = telemetry.Propagator().Extract(ctx, HeaderCarrier(d.Headers))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // no-op, and ending it does nothing
	}
	name := "consume " + label
	if d.Type != "" {
		name += " " + d.Type
	}
	return telemetry.Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(telemetry.ComponentKey.String(c.component()),
			attribute.String("messaging.system", "rabbitmq"),
			attribute.String("messaging.destination.name", label),
			attribute.String("messaging.message.id", d.MessageId)))
}

// component names the connection's component in spans: its name, "bus" without one.
func (c *conn) component() string {
	if c.name == "" {
		return "bus"
	}
	return c.name
}
