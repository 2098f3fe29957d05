package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/msdemo/msdemo/internal/telemetry"
	"github.com/msdemo/msdemo/services/gateway"
)

// The gateway continues the client's traceparent in a span of its own: the upstream gets
// the gateway's span (same trace, another span id, not the client's), the client gets
// the same traceparent back, even for an error the gateway answers itself; a request
// without one starts a trace.
func TestTraceparent(t *testing.T) {
	t.Parallel()
	stop, err := telemetry.StartTracing(t.Context(), telemetry.TraceConfig{Service: "gateway-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	upstream, _ := newEcho(t)
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": upstream.URL}})

	const client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	e, h := getEcho(t, "GET", base+"/product/products", http.Header{"Traceparent": {client}}, "")
	sent, answered := e.Header.Get("Traceparent"), h.Get("Traceparent")
	if telemetry.TraceIDOf(sent) != "4bf92f3577b34da6a3ce929d0e0e4736" || sent == client {
		t.Errorf("upstream got traceparent %q, want trace 4bf9… with the gateway's span", sent)
	}
	if answered != sent {
		t.Errorf("answered traceparent %q, want the one sent upstream, %q", answered, sent)
	}
	spans := telemetry.Trace("4bf92f3577b34da6a3ce929d0e0e4736")
	if len(spans) != 1 || spans[0].Name != "gateway GET /product/products" || spans[0].ParentID != "00f067aa0ba902b7" ||
		spans[0].Component != "gateway" {
		t.Errorf("spans of the trace: got %+v, want the gateway's, a child of the client's", spans)
	}

	status, h, _ := do(t, "GET", base+"/no/such/route", http.Header{"Traceparent": {client}}, "")
	if status != http.StatusNotFound || telemetry.TraceIDOf(h.Get("Traceparent")) != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("a 404: got %d with traceparent %q, want 404 in the client's trace", status, h.Get("Traceparent"))
	}

	_, h = getEcho(t, "GET", base+"/product/products", nil, "")
	if id := telemetry.TraceIDOf(h.Get("Traceparent")); id == "" || id == "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("without a traceparent: answered %q, want a new trace", h.Get("Traceparent"))
	}
}
