package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/view"
)

// One order placed through the gateway with the client's traceparent is one trace
// (issue 10): the gateway answers with a traceparent of the same trace; every event of
// the order's, the product's, the customer's and the invoice's streams that the order
// caused carries that trace id in its metadata; every message on the bus about the order
// (its stored events, the view announcements) carries it in its traceparent header; the
// process keeps spans of it from every component on the way; and the admin site's order
// page shows the trace id and those spans.
func TestOneTraceForAnOrder(t *testing.T) {
	t.Parallel()
	s := startInProcess(t)
	messages := s.listen(t)

	customer := s.customer("trace_alice")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	id, resp := s.placeOrder(customer, "00-"+traceID+"-00f067aa0ba902b7-01")
	answered := resp.Header.Get("traceparent")
	if telemetry.TraceIDOf(answered) != traceID || strings.Contains(answered, "00f067aa0ba902b7") {
		t.Errorf("the gateway answered traceparent %q, want trace %s with the gateway's own span", answered, traceID)
	}

	// The invoice is the order's last event.
	var invoice streamPage
	testenv.Eventually(t, 20*time.Second, "the order is invoiced", func() bool {
		return s.api(http.MethodGet, "/eventstore/streams/invoice-"+id, s.manager, nil, &invoice) == http.StatusOK &&
			len(invoice.Events) > 0
	})
	var orderStream, productStream, customerStream streamPage
	s.must(http.StatusOK, http.MethodGet, "/eventstore/streams/order-"+id, s.manager, nil, &orderStream)
	s.must(http.StatusOK, http.MethodGet, "/eventstore/streams/product-"+s.product, s.manager, nil, &productStream)
	s.must(http.StatusOK, http.MethodGet, "/eventstore/streams/customer-trace_alice", s.manager, nil, &customerStream)
	caused := map[string][]event.Stored{"order": orderStream.Events, "invoice": invoice.Events,
		"product": aboutOrder(productStream.Events, id), "customer": aboutOrder(customerStream.Events, id)}
	for stream, events := range caused {
		if len(events) == 0 {
			t.Errorf("%s stream: no event about order %s", stream, id)
		}
		for _, e := range events {
			if e.Metadata.TraceID != traceID || telemetry.TraceIDOf(e.Metadata.TraceParent) != traceID {
				t.Errorf("%s stream: %s (version %d) has trace_id %q and traceparent %q, want trace %s",
					stream, e.Type, e.Version, e.Metadata.TraceID, e.Metadata.TraceParent, traceID)
			}
		}
	}
	// Events the order did not cause are not in its trace.
	for _, e := range productStream.Events {
		if e.Type == event.ProductAdded && e.Metadata.TraceID == traceID {
			t.Errorf("the product's %s is in the order's trace", e.Type)
		}
	}

	// Every event above went over the bus with its traceparent, and so did the order's
	// view announcements.
	testenv.Eventually(t, 10*time.Second, "the order's events and announcements reached the test's queue", func() bool {
		got := messages.about(id)
		events, announced := 0, 0
		for _, m := range got {
			if m.Type == view.MessageType {
				announced++
			} else {
				events++
			}
		}
		return events >= len(orderStream.Events)+len(invoice.Events) && announced > 0
	})
	for _, m := range messages.about(id) {
		if tp, _ := m.Headers["traceparent"].(string); telemetry.TraceIDOf(tp) != traceID {
			t.Errorf("message %s (%s) has traceparent header %q, want trace %s", m.ID, m.Type, tp, traceID)
		}
	}

	// The all-in-one process recorded spans of every component on the way. A span is
	// recorded when it ends, and some end after the events they caused were consumed
	// (accounting's "issue invoice" ends once its append returned; its own consumer may
	// have seen invoice.issued before that), so the test waits for all of them.
	want := []string{registry.Gateway, registry.Order, registry.EventStore, registry.Product, registry.Customer, registry.Accounting}
	wantNames := []string{"gateway POST /order/orders", "order POST /orders", "append order-" + id,
		"eventstore append order-" + id, "consume product.instance order.placed", "consume customer.events order.placed",
		"order decide", "accounting issue invoice", "append invoice-" + id}
	// missingSpans returns the components and span names (prefixes) of want and wantNames
	// that the trace has no span of yet, and the names it has.
	missingSpans := func() (missing []string, names map[string]bool) {
		components, names := map[string]bool{}, map[string]bool{}
		for _, sp := range telemetry.Trace(traceID) {
			components[sp.Component] = true
			names[sp.Name] = true
		}
		for _, c := range want {
			if !components[c] {
				missing = append(missing, "a span of component "+c)
			}
		}
		for _, name := range wantNames {
			if !hasPrefix(names, name) {
				missing = append(missing, fmt.Sprintf("a span named %q", name))
			}
		}
		return missing, names
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		missing, names := missingSpans()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the trace has no %s; got %v", strings.Join(missing, ", no "), names)
		}
	}

	// The admin's order page shows the trace id and its spans.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(s.urls[registry.Admin]+"/login", url.Values{"username": {"admin"},
		"password": {adminPassword}, "next": {"/orders/" + id}})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	_, _ = page.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /orders/%s of the admin site: got %d, want 200", id, resp.StatusCode)
	}
	html := page.String()
	if !strings.Contains(html, `data-testid="trace-id">`+traceID+"<") {
		t.Errorf("the admin's order page does not show trace id %s", traceID)
	}
	if n := strings.Count(html, `data-testid="trace-span"`); n < len(want) {
		t.Errorf("the admin's order page shows %d spans, want at least %d", n, len(want))
	}
	for _, name := range []string{"gateway POST /order/orders", "accounting issue invoice"} {
		if !strings.Contains(html, name) {
			t.Errorf("the admin's order page has no span %q", name)
		}
	}
}

// TestAnOrderWithoutTraceparentStartsATrace: the gateway starts a trace for a request
// that has none, answers with it, and the order's events carry it.
func TestAnOrderWithoutTraceparentStartsATrace(t *testing.T) {
	t.Parallel()
	s := startInProcess(t)
	customer := s.customer("trace_bob")
	id, resp := s.placeOrder(customer, "")
	traceID := telemetry.TraceIDOf(resp.Header.Get("traceparent"))
	if traceID == "" {
		t.Fatalf("place an order: answered traceparent %q, want one", resp.Header.Get("traceparent"))
	}
	var orderStream streamPage
	s.must(http.StatusOK, http.MethodGet, "/eventstore/streams/order-"+id, s.manager, nil, &orderStream)
	if len(orderStream.Events) == 0 || orderStream.Events[0].Metadata.TraceID != traceID {
		t.Errorf("order.placed: got metadata %+v, want trace_id %s", orderStream.Events, traceID)
	}
}

// TestTracingOff: with OTEL_SDK_DISABLED=true nothing is traced: the gateway answers
// without a traceparent (and does not pass the client's on as its own) and the order's
// events carry no trace. Not parallel: a process has one tracer provider, and a traced
// shop running meanwhile would set it.
func TestTracingOff(t *testing.T) {
	s := startInProcess(t, "OTEL_SDK_DISABLED=true")
	customer := s.customer("untraced_carol")
	id, resp := s.placeOrder(customer, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if got := resp.Header.Get("traceparent"); got != "" {
		t.Fatalf("place an order: answered traceparent %q, want none", got)
	}
	var orderStream streamPage
	s.must(http.StatusOK, http.MethodGet, "/eventstore/streams/order-"+id, s.manager, nil, &orderStream)
	for _, e := range orderStream.Events {
		if e.Metadata.TraceID != "" || e.Metadata.TraceParent != "" {
			t.Errorf("%s: got metadata %+v, want no trace", e.Type, e.Metadata)
		}
	}
}

// placeOrder places an order of one unit of s.product through the gateway as the
// customer of token, sending traceparent unless it is "", and returns the order's id and
// the answer (its body read). An answer other than 202 fails the test.
func (s *inProcess) placeOrder(token, traceparent string) (string, *http.Response) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"product_id": s.product, "quantity": 1})
	req, _ := http.NewRequest(http.MethodPost, s.urls[registry.Gateway]+"/order/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	var o struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&o)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		s.t.Fatalf("place an order: got %d, want 202", resp.StatusCode)
	}
	return o.ID, resp
}

type streamPage struct {
	Events []event.Stored `json:"events"`
}

// aboutOrder returns the events whose data names order id.
func aboutOrder(events []event.Stored, id string) []event.Stored {
	var out []event.Stored
	for _, e := range events {
		var data struct {
			OrderID string `json:"order_id"`
		}
		if json.Unmarshal(e.Data, &data) == nil && data.OrderID == id {
			out = append(out, e)
		}
	}
	return out
}

func hasPrefix(names map[string]bool, prefix string) bool {
	for n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// busMessages are the messages the test's queue received.
type busMessages struct {
	mu   sync.Mutex
	msgs []bus.Delivery
}

// about returns the messages whose body holds id.
func (b *busMessages) about(id string) []bus.Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []bus.Delivery
	for _, m := range b.msgs {
		if bytes.Contains(m.Body, []byte(id)) {
			out = append(out, m)
		}
	}
	return out
}

// listen binds a queue of the test's own to the shop's event and view exchanges (in the
// test's vhost) and keeps what it receives.
func (s *inProcess) listen(t *testing.T) *busMessages {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := bus.Dial(ctx, s.rabbit, slog.New(slog.DiscardHandler), bus.WithName("trace-test"))
	if err != nil {
		t.Fatal(err)
	}
	got := &busMessages{}
	keep := func(_ context.Context, d bus.Delivery) error {
		got.mu.Lock()
		got.msgs = append(got.msgs, d)
		got.mu.Unlock()
		return nil
	}
	var consumers []*bus.Consumer
	for _, exchange := range []string{event.Exchange, view.Exchange} {
		if err := conn.DeclareExchange(ctx, exchange, "topic"); err != nil {
			t.Fatal(err)
		}
		c, err := conn.Consume(ctx, bus.QueueConfig{Exchange: exchange, Keys: []string{"#"}}, keep)
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	t.Cleanup(func() {
		cancel()
		for _, c := range consumers {
			<-c.Done
		}
		conn.Close()
	})
	return got
}
