package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler returns h with trace_id (and span_id) added to every record logged with a
// context that carries a span (the *Context methods of slog.Logger), so that a log line
// can be found from a trace and a trace from a log line. Records without one are
// handled by h as they are. A context that cannot carry OTel's span (fasthttp's
// RequestCtx) may carry its trace.SpanContext under LogSpanKey instead.
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

// LogSpanKey is the context key of a trace.SpanContext for LogHandler, for contexts that
// are not made with context.WithValue (fasthttp.RequestCtx.SetUserValue).
type LogSpanKey struct{}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() && ctx != nil {
		sc, _ = ctx.Value(LogSpanKey{}).(trace.SpanContext)
	}
	if sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
