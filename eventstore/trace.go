package eventstore

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// appendSpans starts a span for each of reqs, from receipt to reply: "eventstore append
// <stream>", the child of the traceparent in the metadata of the request's first event
// (the writer's span; docs/tracing.md), so that a batch message of many writers' requests
// puts each request in its own trace. A request without one gets no span. end ends them
// with the store's replies (nil when err ended the whole message).
func appendSpans(ctx context.Context, reqs []event.AppendRequest) (end func(replies []event.AppendReply, err error)) {
	spans := make([]trace.Span, len(reqs))
	for i, req := range reqs {
		_, spans[i] = telemetry.StartSpanAfter(ctx, req.Events[0].Metadata.TraceParent, "eventstore append "+req.Stream,
			registry.EventStore, attribute.String("msdemo.stream", req.Stream), attribute.Int("msdemo.events", len(req.Events)))
	}
	return func(replies []event.AppendReply, err error) {
		for i, span := range spans {
			if !span.IsRecording() {
				continue
			}
			if err == nil && i < len(replies) {
				r := replies[i]
				span.SetAttributes(attribute.Bool("msdemo.ok", r.OK), attribute.Int64("msdemo.last_position", r.LastPosition))
				if r.Error != "" {
					span.SetAttributes(attribute.String("msdemo.error", r.Error))
				}
			}
			telemetry.EndSpan(span, err)
		}
	}
}
