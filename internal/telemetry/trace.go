package telemetry

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Traces (docs/tracing.md). A process has one OpenTelemetry TracerProvider, set as OTel's
// global one with the W3C trace-context propagator by StartTracing, so that otelhttp and
// the bus find it without being handed it. Every span it records goes to the process's
// recent-span store (Recent), which the admin site's order page reads; it goes to an
// OTLP/HTTP exporter too when TraceConfig.Export is set. Sampling is the SDK's default,
// parentbased_always_on (a trace the caller did not sample stays unsampled), and the
// standard OTEL_TRACES_SAMPLER variables change it.

// ComponentKey is the span attribute that names the component (registry.Components'
// names) that recorded a span: in the all-in-one process every component shares one
// service.name, "msdemo".
const ComponentKey = attribute.Key("msdemo.component")

// TraceConfig says how a process traces. loadConfig fills it from the standard OTel
// variables.
type TraceConfig struct {
	// Service is the resource's service.name (OTEL_SERVICE_NAME overrides it).
	Service string
	// Disabled (OTEL_SDK_DISABLED=true) records nothing and propagates nothing.
	Disabled bool
	// Export sends the spans to an OTLP/HTTP collector, configured by the standard
	// variables (set when OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is).
	Export bool
	// UIURL is where a trace id is appended to link to the trace in a tracing UI
	// (TRACE_UI_URL, e.g. http://localhost:16686/trace/ for Jaeger); empty: no link.
	UIURL string
}

// tracing is the process's provider, shared by every StartTracing until the last of them
// ends (tests run several shops in one process).
var tracing struct {
	mu       sync.Mutex
	users    int
	provider *sdktrace.TracerProvider
	uiURL    string
}

// StartTracing sets the process's TracerProvider (the first call makes it; later calls
// share it) and the W3C traceparent propagator, and returns the function that ends it:
// the last one to be called flushes the exporter, shuts the provider down and sets OTel's
// globals back to no-ops. With
// cfg.Disabled it sets nothing (OTel's globals stay no-ops) and returns a no-op.
func StartTracing(ctx context.Context, cfg TraceConfig) (shutdown func(context.Context) error, err error) {
	if cfg.Disabled {
		return func(context.Context) error { return nil }, nil
	}
	tracing.mu.Lock()
	defer tracing.mu.Unlock()
	if tracing.provider == nil {
		res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", cfg.Service)),
			resource.WithFromEnv(), resource.WithTelemetrySDK())
		if err != nil {
			return nil, fmt.Errorf("tracing: resource: %w", err)
		}
		opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSpanProcessor(recent)}
		if cfg.Export {
			exporter, err := otlptracehttp.New(ctx)
			if err != nil {
				return nil, fmt.Errorf("tracing: OTLP exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
			}
			opts = append(opts, sdktrace.WithBatcher(exporter))
		}
		tracing.provider = sdktrace.NewTracerProvider(opts...)
		tracing.uiURL = cfg.UIURL
		otel.SetTracerProvider(tracing.provider)
		otel.SetTextMapPropagator(propagation.TraceContext{})
	}
	tracing.users++
	var once sync.Once
	return func(ctx context.Context) error {
		var err error
		once.Do(func() {
			tracing.mu.Lock()
			defer tracing.mu.Unlock()
			if tracing.users--; tracing.users == 0 {
				err = tracing.provider.Shutdown(ctx)
				tracing.provider = nil
				// Back to no-ops, so that a shop started later with tracing off is off.
				otel.SetTracerProvider(noop.NewTracerProvider())
				otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
			}
		})
		if err != nil {
			return fmt.Errorf("tracing: shut down: %w", err)
		}
		return nil
	}, nil
}

// TraceURL is the link to trace traceID in the tracing UI (TraceConfig.UIURL followed by
// the id), "" without a UI or a trace id.
func TraceURL(traceID string) string {
	tracing.mu.Lock()
	defer tracing.mu.Unlock()
	if tracing.uiURL == "" || traceID == "" {
		return ""
	}
	return tracing.uiURL + traceID
}

// tracerName is the instrumentation scope of msdemo's own spans.
const tracerName = "github.com/msdemo/msdemo"

// Tracer is the tracer of msdemo's own spans (the bus's, the event store's), from the
// current global provider: a no-op one until StartTracing.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(tracerName) }

// Propagator is the process's propagator: W3C trace context once StartTracing ran, a
// no-op before (or with tracing disabled).
func Propagator() propagation.TextMapPropagator { return otel.GetTextMapPropagator() }

// TraceParent is the W3C traceparent of ctx's span ("00-<trace id>-<span id>-<flags>"),
// "" when ctx has none or tracing is off.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	Propagator().Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent returns ctx with the remote span context of traceparent as its parent,
// or ctx as it is when traceparent is empty or malformed, or tracing is off.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return Propagator().Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// StartSpanAfter starts span name of component as the child of traceparent (an event's
// metadata.traceparent: work that continues an event's trace outside the delivery that
// brought it, e.g. from a queue of its own), with attrs, whatever span ctx has. With
// traceparent "" (or malformed, or tracing off) it returns ctx and a no-op span.
func StartSpanAfter(ctx context.Context, traceparent, name, component string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	parent := WithTraceParent(ctx, traceparent)
	if sc := trace.SpanContextFromContext(parent); traceparent == "" || !sc.IsValid() || !sc.IsRemote() {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	return Tracer().Start(parent, name, trace.WithAttributes(append(attrs, ComponentKey.String(component))...))
}

// TraceIDOf is the trace id in traceparent (32 hex digits), "" when it has none.
func TraceIDOf(traceparent string) string {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": traceparent}))
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// EndSpan ends span, marking it failed with err when err is not nil.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
