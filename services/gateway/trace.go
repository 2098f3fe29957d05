package gateway

import (
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// The gateway is where a request's trace starts (docs/tracing.md): it continues the
// client's W3C traceparent, or starts a trace, in a server span of its own; forwards the
// request with that span's traceparent (replacing the client's), so that the service's
// span is its child; and answers with the same traceparent header, so that a client
// knows the trace of its request. otelhttp serves net/http only; the gateway is built on
// fasthttp, so this file does the same with the propagator and a carrier over fasthttp's
// request headers.

// requestHeaderCarrier lets the propagator read and write fasthttp request headers.
type requestHeaderCarrier struct{ h *fasthttp.RequestHeader }

func (c requestHeaderCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c requestHeaderCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c requestHeaderCarrier) Keys() []string {
	var keys []string
	for k := range c.h.All() {
		keys = append(keys, string(k))
	}
	return keys
}

// startSpan starts the server span of the request in ctx, the child of the client's
// traceparent if it sent one, and sets the request's traceparent (and tracestate) to the
// span's. It returns nil when tracing is off, and for GET /healthz (health checks are
// not operations anyone traces).
func startSpan(ctx *fasthttp.RequestCtx) trace.Span {
	if string(ctx.Path()) == "/healthz" {
		return nil
	}
	prop := telemetry.Propagator()
	parent := prop.Extract(ctx, requestHeaderCarrier{&ctx.Request.Header})
	spanCtx, span := telemetry.Tracer().Start(parent, "gateway "+string(ctx.Method()), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(telemetry.ComponentKey.String(registry.Gateway),
			attribute.String("http.request.method", string(ctx.Method()))))
	if !span.SpanContext().IsValid() {
		return nil
	}
	ctx.SetUserValue(telemetry.LogSpanKey{}, span.SpanContext()) // for the log lines about the request
	ctx.Request.Header.Del("traceparent")
	ctx.Request.Header.Del("tracestate")
	prop.Inject(spanCtx, requestHeaderCarrier{&ctx.Request.Header})
	return span
}

// endSpan names span after the policy's pattern ("" for none), records the status,
// sets the response's traceparent to the span's, and ends it. A nil span is a no-op.
func endSpan(ctx *fasthttp.RequestCtx, span trace.Span, pattern string) {
	if span == nil {
		return
	}
	if pattern == "" {
		pattern = telemetry.UnmatchedRoute
	}
	status := ctx.Response.StatusCode()
	span.SetName("gateway " + string(ctx.Method()) + " " + pattern)
	span.SetAttributes(attribute.String("http.route", pattern), attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, fasthttp.StatusMessage(status))
	}
	// The request's traceparent is the span's (startSpan): the answer carries it back.
	ctx.Response.Header.SetBytesV("traceparent", ctx.Request.Header.Peek("traceparent"))
	span.End()
}
