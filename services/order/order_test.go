package order_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/order"
	"github.com/msdemo/msdemo/systest"
)

// harness is an event store, a gateway and the order service for one test, with a client
// that appends events as the product and customer services would.
type harness struct {
	t    *testing.T
	sys  *systest.System
	cfg  order.Config
	es   *eventclient.Client
	stop func()
}

func newHarness(t *testing.T, configure func(*order.Config)) *harness {
	t.Helper()
	sys := systest.Start(t)
	conn := testenv.Bus(t)
	cfg := order.Config{Service: sys.ServiceConfig(t, "order"), PostgresURL: testenv.PostgresURL(),
		Database: testenv.DatabaseName(t, "order"), Subscription: testenv.Name(t)}
	if configure != nil {
		configure(&cfg)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.DeleteQueue(ctx, event.Queue(cfg.Subscription))
		_ = conn.DeleteQueue(ctx, event.Queue(cfg.Subscription)+".dead")
		if err := postgres.Drop(ctx, cfg.PostgresURL, cfg.Database); err != nil {
			t.Errorf("drop database %s: %v", cfg.Database, err)
		}
	})
	h := &harness{t: t, sys: sys, cfg: cfg, es: eventclient.New(conn, sys.EventstoreURL, sys.AppendQueue, sys.Exchange)}
	h.start()
	t.Cleanup(func() { h.stopService() })
	return h
}

// start runs the order service and waits until the gateway routes to it.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- order.Run(ctx, h.cfg, testenv.Logger(h.t)) }()
	h.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("order service: %v", err)
			}
		case <-time.After(15 * time.Second):
			h.t.Errorf("order service did not stop within 15 s")
		}
	}
	testenv.WaitHealthy(h.t, "http://"+h.cfg.Service.Addr+"/healthz", 20*time.Second)
	testenv.Eventually(h.t, 10*time.Second, "the gateway routes to the order service", func() bool {
		status, _ := h.do("GET", "/order/orders?limit=1", h.manager(), nil, nil)
		return status == http.StatusOK
	})
}

func (h *harness) stopService() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

func (h *harness) manager() string          { return h.sys.Token("boss", auth.Manager) }
func (h *harness) customer(u string) string { return h.sys.Token(u, auth.Customer) }

// do sends a request through the gateway and decodes the JSON answer into out (if not nil).
func (h *harness) do(method, path, token string, body any, out any) (int, http.Header) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	default:
		raw, _ := json.Marshal(b)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, h.sys.GatewayURL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// appendEvent appends one event to stream, as another service would.
func (h *harness) appendEvent(stream, typ string, data any) event.AppendReply {
	h.t.Helper()
	raw, _ := json.Marshal(data)
	reply, err := h.es.Append(context.Background(), event.AppendRequest{Stream: stream,
		Events: []event.New{{ID: idgen.New(), Type: typ, Data: raw}}})
	if err != nil || !reply.OK {
		h.t.Fatalf("append %s to %s: %+v %v", typ, stream, reply, err)
	}
	return reply
}

// addProduct appends product.added with a new id and returns the id.
func (h *harness) addProduct(priceCents int64) string {
	id := idgen.New()[:8] + "ab"
	h.appendEvent("product-"+id, event.ProductAdded, map[string]any{"id": id, "name": "Tea " + id,
		"price_cents": priceCents, "units_in_stock": 10})
	h.waitCaughtUp() // the service prices from its read model
	return id
}

type placedAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// place places an order as user and returns the answer; it fails t unless 202.
func (h *harness) place(user, productID string, quantity int) placedAnswer {
	h.t.Helper()
	var a placedAnswer
	status, header := h.do("POST", "/order/orders", h.customer(user),
		map[string]any{"product_id": productID, "quantity": quantity}, &a)
	if status != http.StatusAccepted {
		h.t.Fatalf("place order: got status %d, want 202", status)
	}
	if loc := header.Get("Location"); loc != "/order/orders/"+a.ID {
		h.t.Errorf("Location %q, want /order/orders/%s", loc, a.ID)
	}
	return a
}

// order reads an order as a manager.
func (h *harness) order(id string) order.Order {
	h.t.Helper()
	var o order.Order
	if status, _ := h.do("GET", "/order/orders/"+id, h.manager(), nil, &o); status != http.StatusOK {
		h.t.Fatalf("GET order %s: got %d, want 200", id, status)
	}
	return o
}

// waitDecided waits until order id is no longer pending and returns it.
func (h *harness) waitDecided(id string) order.Order {
	h.t.Helper()
	var o order.Order
	testenv.Eventually(h.t, 15*time.Second, "order "+id+" is decided", func() bool {
		o = h.order(id)
		return o.Status != order.Pending
	})
	return o
}

// reply is an event a simulated participant appends in answer to order.placed.
type reply struct {
	stream, typ string
	data        any
	delay       time.Duration
}

// participants act as the product and customer services: for each order.placed they
// append what behave returns, each reply in a goroutine of its own (so they arrive in
// any order).
type participants struct {
	h        *harness
	behave   func(p order.Placed) []reply
	mu       sync.Mutex
	storeID  string
	position int64
	wg       sync.WaitGroup
}

func (p *participants) Checkpoint(context.Context) (string, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.storeID, p.position, nil
}

func (p *participants) Reset(_ context.Context, storeID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.storeID, p.position = storeID, 0
	return nil
}

func (p *participants) Apply(_ context.Context, storeID string, e event.Stored) error {
	p.mu.Lock()
	p.storeID, p.position = storeID, max(p.position, e.Position)
	p.mu.Unlock()
	var placed order.Placed
	if err := json.Unmarshal(e.Data, &placed); err != nil {
		return err
	}
	for _, r := range p.behave(placed) {
		p.wg.Go(func() {
			time.Sleep(r.delay)
			raw, _ := json.Marshal(r.data)
			_, err := p.h.es.Append(context.Background(), event.AppendRequest{Stream: r.stream,
				Events: []event.New{{ID: idgen.New(), Type: r.typ, Data: raw}}})
			if err != nil {
				p.h.t.Errorf("participant append %s: %v", r.typ, err)
			}
		})
	}
	return nil
}

// runParticipants subscribes simulated participants to order.placed until t ends.
func (h *harness) runParticipants(behave func(p order.Placed) []reply) {
	h.t.Helper()
	p := &participants{h: h, behave: behave}
	name := testenv.Name(h.t)
	caughtUp := make(chan struct{})
	conn := testenv.Bus(h.t)
	testenv.Go(h.t, "participants", func(ctx context.Context) error {
		return h.es.Subscribe(ctx, eventclient.Subscription{Name: name, Types: []string{event.OrderPlaced},
			CaughtUp: caughtUp}, p, testenv.Logger(h.t))
	})
	h.t.Cleanup(func() {
		p.wg.Wait()
		_ = conn.DeleteQueue(context.Background(), event.Queue(name))
		_ = conn.DeleteQueue(context.Background(), event.Queue(name)+".dead")
	})
	<-caughtUp
}

// stock is the product service's answer to the first line of p.
func stock(p order.Placed, typ, reason string) reply {
	return stockOf(p, p.All()[0], typ, reason)
}

// stockOf is the product service's answer to line l of p.
func stockOf(p order.Placed, l order.Line, typ, reason string) reply {
	return reply{stream: "product-" + l.ProductID, typ: typ,
		data: map[string]any{"order_id": p.OrderID, "quantity": l.Quantity, "reason": reason}}
}

func credit(p order.Placed, typ, reason string) reply {
	return reply{stream: "customer-" + p.Customer, typ: typ,
		data: map[string]any{"order_id": p.OrderID, "amount_cents": p.TotalCents, "reason": reason}}
}

// reserveBoth reserves the stock of every line of p and the credit.
func reserveBoth(p order.Placed) []reply {
	rs := []reply{credit(p, event.CustomerCreditReserved, "")}
	for _, l := range p.All() {
		rs = append([]reply{stockOf(p, l, event.ProductStockReserved, "")}, rs...)
	}
	return rs
}

func steps(o order.Order) []order.Step {
	var s []order.Step
	for _, e := range o.Timeline {
		s = append(s, e.Step)
	}
	return s
}

func hasStep(o order.Order, step order.Step) bool {
	for _, e := range o.Timeline {
		if e.Step == step {
			return true
		}
	}
	return false
}

// Both reservations approve the order; the timeline shows every step, the invoice
// included; only the owner and managers see it; a manager cannot place an order.
func TestApprovePath(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.runParticipants(reserveBoth)
	pid := h.addProduct(250)
	a := h.place("ann", pid, 4)
	if a.Status != "pending" {
		t.Fatalf("got status %q, want pending", a.Status)
	}
	o := h.waitDecided(a.ID)
	if o.Status != order.Approved || o.TotalCents != 1000 || len(o.Lines) != 1 || o.Lines[0].UnitPriceCents != 250 || o.Customer != "ann" || o.Version != 2 {
		t.Fatalf("got %+v, want approved, 4 x 250 for ann at version 2", o)
	}
	t.Logf("one order alone, place-to-approved: %s", o.Timeline[len(o.Timeline)-1].At.Sub(o.PlacedAt))
	h.appendEvent("invoice-"+a.ID, event.InvoiceIssued, map[string]any{"order_id": a.ID, "customer": "ann", "total_cents": 1000})
	testenv.Eventually(t, 5*time.Second, "the timeline shows the invoice", func() bool {
		return hasStep(h.order(a.ID), order.StepInvoiced)
	})
	o = h.order(a.ID)
	for _, step := range []order.Step{order.StepPlaced, order.StepStockReserved, order.StepCreditReserved, order.StepApproved, order.StepInvoiced} {
		if !hasStep(o, step) {
			t.Errorf("timeline %v lacks %q", steps(o), step)
		}
	}
	if o.Timeline[0].Step != order.StepPlaced || !o.Timeline[0].At.Equal(o.PlacedAt) {
		t.Errorf("timeline starts with %+v, want placed at %s", o.Timeline[0], o.PlacedAt)
	}

	var mine struct {
		Orders    []order.Order `json:"orders"`
		NextAfter string        `json:"next_after"`
	}
	if status, _ := h.do("GET", "/order/orders", h.customer("ann"), nil, &mine); status != 200 || len(mine.Orders) != 1 {
		t.Errorf("ann's list: got %d with %d orders, want 200 with 1", status, len(mine.Orders))
	}
	if status, _ := h.do("GET", "/order/orders", h.customer("bob"), nil, &mine); status != 200 || len(mine.Orders) != 0 {
		t.Errorf("bob's list: got %d with %d orders, want 200 with 0", status, len(mine.Orders))
	}
	if status, _ := h.do("GET", "/order/orders/"+a.ID, h.customer("bob"), nil, nil); status != 404 {
		t.Errorf("bob reads ann's order: got %d, want 404", status)
	}
	if status, _ := h.do("GET", "/order/orders/"+a.ID, h.customer("ann"), nil, nil); status != 200 {
		t.Errorf("ann reads her order: got %d, want 200", status)
	}
	if status, _ := h.do("POST", "/order/orders", h.manager(), map[string]any{"product_id": pid, "quantity": 1}, nil); status != 403 {
		t.Errorf("manager places an order: got %d, want 403", status)
	}
	if status, _ := h.do("GET", "/order/orders?status=approved", h.manager(), nil, &mine); status != 200 || len(mine.Orders) != 1 {
		t.Errorf("manager lists approved: got %d with %d orders, want 200 with 1", status, len(mine.Orders))
	}
}

// A participant's rejection rejects the order with its reason, whichever arrives first;
// the reservation that was made is released, and a reservation that comes after the
// rejection changes nothing but the timeline.
func TestRejectPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.runParticipants(func(p order.Placed) []reply {
		switch p.Customer {
		case "nostock":
			return []reply{stock(p, event.ProductStockRejected, "out of stock"), credit(p, event.CustomerCreditReserved, "")}
		case "nocredit":
			return []reply{stock(p, event.ProductStockReserved, ""), credit(p, event.CustomerCreditRejected, "not enough credit")}
		case "late": // the credit reservation arrives after the rejection
			return []reply{stock(p, event.ProductStockRejected, "out of stock"),
				{stream: "customer-late", typ: event.CustomerCreditReserved, data: map[string]any{"order_id": p.OrderID}, delay: 500 * time.Millisecond}}
		}
		return nil
	})
	pid := h.addProduct(100)
	for _, tt := range []struct{ user, reason string }{
		{"nostock", "out of stock"}, {"nocredit", "not enough credit"}, {"late", "out of stock"},
	} {
		a := h.place(tt.user, pid, 1)
		o := h.waitDecided(a.ID)
		if o.Status != order.Rejected || o.Reason != tt.reason || o.Version != 2 {
			t.Errorf("%s: got %s %q v%d, want rejected %q v2", tt.user, o.Status, o.Reason, o.Version, tt.reason)
		}
		if tt.user == "late" {
			testenv.Eventually(t, 5*time.Second, "the late reservation is on the timeline", func() bool {
				return hasStep(h.order(a.ID), order.StepCreditReserved)
			})
			h.appendEvent("customer-late", event.CustomerCreditReleased, map[string]any{"order_id": a.ID})
			testenv.Eventually(t, 5*time.Second, "the release is on the timeline", func() bool {
				return hasStep(h.order(a.ID), order.StepCreditReleased)
			})
			if o := h.order(a.ID); o.Status != order.Rejected || o.Version != 2 {
				t.Errorf("late: got %s v%d after the late reservation, want rejected v2", o.Status, o.Version)
			}
		}
	}
}

// Without answers, an order is rejected "timed out" after the saga timeout.
func TestTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *order.Config) { c.SagaTimeout, c.SweepInterval = time.Second, 100*time.Millisecond })
	pid := h.addProduct(100)
	a := h.place("ann", pid, 1)
	o := h.waitDecided(a.ID)
	if o.Status != order.Rejected || o.Reason != order.ReasonTimedOut {
		t.Fatalf("got %s %q, want rejected %q", o.Status, o.Reason, order.ReasonTimedOut)
	}
	if waited := o.Timeline[len(o.Timeline)-1].At.Sub(o.PlacedAt); waited < time.Second {
		t.Errorf("rejected after %s, want at least the 1 s timeout", waited)
	}
}

// An order of a product that does not exist, or was deleted, is refused (400) and not
// placed; so is bad input: nothing is appended.
func TestUnknownProductAndBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	refused := func(productID, want string) {
		t.Helper()
		var answer struct {
			Fields map[string]string `json:"fields"`
		}
		status, _ := h.do("POST", "/order/orders", h.customer("ann"), map[string]any{"product_id": productID, "quantity": 1}, &answer)
		if status != http.StatusBadRequest || answer.Fields["product_id"] != want {
			t.Errorf("order of %s: got %d %+v, want 400 with product_id %q", productID, status, answer.Fields, want)
		}
	}
	refused("nosuchthing", "no such product")
	pid := h.addProduct(100)
	h.appendEvent("product-"+pid, event.ProductDeleted, map[string]any{})
	h.waitCaughtUp()
	refused(pid, "the product was deleted")
	var list struct {
		Orders []order.Order `json:"orders"`
	}
	if status, _ := h.do("GET", "/order/orders", h.manager(), nil, &list); status != http.StatusOK || len(list.Orders) != 0 {
		t.Errorf("refused orders were placed: got %d %+v, want 200 and none", status, list.Orders)
	}

	// A product the store holds is ordered at once, though the prices may not have heard
	// of it yet: the service waits for them.
	fresh := idgen.New()[:8] + "ab"
	h.appendEvent("product-"+fresh, event.ProductAdded, map[string]any{"id": fresh, "name": "Tea " + fresh,
		"price_cents": 300, "units_in_stock": 10})
	if a := h.place("ann", fresh, 1); a.Status != "pending" {
		t.Errorf("order of a product just added: got %+v, want pending", a)
	}

	page, err := h.es.Feed(context.Background(), 0, 1000, []string{"order.*"})
	if err != nil {
		t.Fatal(err)
	}
	before := len(page.Events)
	for _, body := range []string{``, `{}`, `[]`, `{"product_id": "x"}`, `{"product_id": "x", "quantity": 0}`,
		`{"product_id": "x", "quantity": 1.5}`, `{"product_id": "x", "quantity": "1"}`, `{"product_id": 7, "quantity": 1}`,
		`{"product_id": "x", "quantity": 1001}`, `{"product_id": "x", "quantity": 1, "price": 1}`, `{"product_id": "x", "quantity": 1}{}`,
		`{"product_id": "../x", "quantity": 1}`} {
		var e struct {
			Error  string            `json:"error"`
			Fields map[string]string `json:"fields"`
		}
		if status, _ := h.do("POST", "/order/orders", h.customer("ann"), body, &e); status != 400 || len(e.Fields) == 0 {
			t.Errorf("POST %s: got %d %+v, want 400 with fields", body, status, e)
		}
	}
	page, _ = h.es.Feed(context.Background(), 0, 1000, []string{"order.*"})
	if len(page.Events) != before {
		t.Errorf("bad input appended %d events, want 0", len(page.Events)-before)
	}
	for _, q := range []string{"?status=lost", "?limit=0", "?after=../x"} {
		if status, _ := h.do("GET", "/order/orders"+q, h.manager(), nil, nil); status != 400 {
			t.Errorf("GET /orders%s: got %d, want 400", q, status)
		}
	}
}

// A participant's event delivered again (a replayed message, or appended twice) changes
// nothing, and reservations arriving in either order approve.
func TestRedeliveryAndOrderOfReplies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	pid := h.addProduct(100)
	creditFirst := h.place("ann", pid, 1)
	stockFirst := h.place("ann", pid, 1)
	for _, tt := range []struct {
		id    string
		first bool
	}{{creditFirst.ID, true}, {stockFirst.ID, false}} {
		p := order.Placed{OrderID: order.OrderID(tt.id), Customer: "ann",
			OrderLines: event.OrderLines{Lines: []order.Line{{ProductID: pid, Quantity: 1}}}}
		rs := reserveBoth(p)
		if tt.first {
			rs[0], rs[1] = rs[1], rs[0]
		}
		h.appendEvent(rs[0].stream, rs[0].typ, rs[0].data)
		time.Sleep(100 * time.Millisecond)
		if o := h.order(tt.id); o.Status != order.Pending {
			t.Errorf("after one reservation: got %s, want pending", o.Status)
		}
		h.appendEvent(rs[1].stream, rs[1].typ, rs[1].data)
		if o := h.waitDecided(tt.id); o.Status != order.Approved {
			t.Errorf("got %s, want approved", o.Status)
		}
	}
	want := h.order(creditFirst.ID)

	// The same stock reservation once more as a new event, and the stored one replayed.
	h.appendEvent("product-"+pid, event.ProductStockReserved, map[string]any{"order_id": creditFirst.ID, "quantity": 1})
	h.appendEvent("product-"+pid, event.ProductStockRejected, map[string]any{"order_id": creditFirst.ID, "reason": "out of stock"})
	events, _, err := h.es.Stream(context.Background(), "product-"+pid)
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.Bus(t)
	for _, e := range events {
		if e.Type != event.ProductStockReserved {
			continue
		}
		body, _ := json.Marshal(e)
		if err := conn.Publish(context.Background(), h.sys.Exchange, e.Type, busMessage(e, body)); err != nil {
			t.Fatal(err)
		}
	}
	h.place("ann", pid, 1) // answered once the read model applied what was queued before it
	got := h.order(creditFirst.ID)
	if got.Status != order.Approved || got.Version != want.Version {
		t.Errorf("after redelivery: got %s v%d, want %s v%d", got.Status, got.Version, want.Status, want.Version)
	}
	if len(got.Timeline) != len(want.Timeline)+1 || !hasStep(got, order.StepStockRejected) {
		t.Errorf("after redelivery: timeline %v, want %v plus the (ignored) stock rejected", steps(got), steps(want))
	}
}

// The service stopped mid-saga finishes the saga when it starts again; the read model,
// dropped or rebuilt, equals the one it had.
func TestRestartAndRebuild(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	pid := h.addProduct(300)
	var ids []string
	for i := range 5 {
		ids = append(ids, h.place(fmt.Sprintf("user%d", i), pid, i+1).ID)
	}
	h.stopService()
	for i, id := range ids { // the participants answer while the service is down
		customer := fmt.Sprintf("user%d", i)
		h.appendEvent("product-"+pid, event.ProductStockReserved, map[string]any{"order_id": id, "quantity": i + 1})
		if i%2 == 0 {
			h.appendEvent("customer-"+customer, event.CustomerCreditReserved, map[string]any{"order_id": id})
		} else {
			h.appendEvent("customer-"+customer, event.CustomerCreditRejected, map[string]any{"order_id": id, "reason": "not enough credit"})
		}
	}
	h.start()
	for i, id := range ids {
		want := order.Approved
		if i%2 == 1 {
			want = order.Rejected
		}
		if o := h.waitDecided(id); o.Status != want {
			t.Errorf("order %d: got %s, want %s", i, o.Status, want)
		}
	}
	h.waitCaughtUp()
	before := h.snapshot()

	h.stopService()
	if err := order.Rebuild(context.Background(), h.cfg, testenv.Logger(t)); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if after := h.snapshot(); !equalSnapshots(t, "Rebuild", before, after) {
		return
	}
	h.exec(`DROP TABLE orders, timeline, prices, checkpoint`)
	h.start()
	h.waitCaughtUp()
	equalSnapshots(t, "dropped tables", before, h.snapshot())
}

// Many concurrent orders of several customers all end approved or rejected, and the
// place-to-approved time is logged (measured on the event store's clock).
func TestManyConcurrentOrders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *order.Config) { c.SagaTimeout = 20 * time.Second })
	h.runParticipants(func(p order.Placed) []reply {
		if p.All()[0].Quantity == 7 {
			return []reply{stock(p, event.ProductStockRejected, "out of stock"), credit(p, event.CustomerCreditReserved, "")}
		}
		return reserveBoth(p)
	})
	pid := h.addProduct(199)
	const n = 100
	ids := make([]string, n)
	posts := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			ids[i] = h.place(fmt.Sprintf("c%d", i%10), pid, 1+i%10).ID
			posts[i] = time.Since(start)
		})
	}
	wg.Wait()
	slicesSort(posts)
	t.Logf("POST /order/orders through the gateway, %d at once: p50 %s, p99 %s", n, posts[n/2], posts[n*99/100])
	var latencies []time.Duration
	for i, id := range ids {
		o := h.waitDecided(id)
		want := order.Approved
		if 1+i%10 == 7 {
			want = order.Rejected
		}
		if o.Status != want {
			t.Errorf("order %d: got %s %q, want %s", i, o.Status, o.Reason, want)
		}
		if o.Status == order.Approved {
			latencies = append(latencies, o.Timeline[len(o.Timeline)-1].At.Sub(o.PlacedAt))
		}
	}
	h.waitCaughtUp()
	if len(latencies) > 0 {
		slicesSort(latencies)
		t.Logf("place-to-approved over %d concurrent orders: p50 %s, p99 %s, max %s", len(latencies),
			latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])
	}
}

func slicesSort(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// waitCaughtUp waits until the read model has applied every event the service follows.
func (h *harness) waitCaughtUp() {
	h.t.Helper()
	testenv.Eventually(h.t, 10*time.Second, "the read model catches up", func() bool {
		var position int64
		if err := h.query(`SELECT position FROM checkpoint`).Scan(&position); err != nil {
			return false
		}
		page, err := h.es.Feed(context.Background(), position, 1,
			[]string{event.Order.Types(), event.Product.Types(), event.Customer.Types(), event.InvoiceIssued})
		return err == nil && len(page.Events) == 0
	})
}

// busMessage is e published again as the event store publishes it, marked as a replay so
// that the subscription applies it although it is behind the checkpoint.
func busMessage(e event.Stored, body []byte) bus.Message {
	return bus.Message{ID: e.ID, Type: e.Type, Body: body,
		Headers: map[string]any{bus.ReplayHeader: time.Now().UTC().Format(time.RFC3339)}}
}

func (h *harness) conn() *pgx.Conn {
	h.t.Helper()
	u, _ := url.Parse(h.cfg.PostgresURL)
	u.Path = "/" + h.cfg.Database
	c, err := pgx.Connect(context.Background(), u.String())
	if err != nil {
		h.t.Fatalf("connect to %s: %v", h.cfg.Database, err)
	}
	h.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (h *harness) query(sql string) pgx.Row { return h.conn().QueryRow(context.Background(), sql) }

func (h *harness) exec(sql string) {
	h.t.Helper()
	if _, err := h.conn().Exec(context.Background(), sql); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
}

// snapshot returns the read model's rows as JSON texts.
func (h *harness) snapshot() map[string][]string {
	h.t.Helper()
	c := h.conn()
	snap := map[string][]string{}
	for table, order := range map[string]string{"orders": "id", "timeline": "order_id, step", "prices": "product_id"} {
		rows, err := c.Query(context.Background(), `SELECT row_to_json(t)::text FROM `+table+` t ORDER BY `+order)
		if err != nil {
			h.t.Fatalf("snapshot %s: %v", table, err)
		}
		snap[table], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			h.t.Fatalf("snapshot %s: %v", table, err)
		}
	}
	return snap
}

func equalSnapshots(t *testing.T, what string, want, got map[string][]string) bool {
	t.Helper()
	ok := true
	for table := range want {
		if fmt.Sprint(got[table]) != fmt.Sprint(want[table]) {
			t.Errorf("%s: %s got\n%v\nwant\n%v", what, table, got[table], want[table])
			ok = false
		}
	}
	return ok
}

// getWaiting is GET /order/orders/{id} through the gateway with the header Prefer: prefer.
func (h *harness) getWaiting(id, token, prefer string) (order.Order, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.sys.GatewayURL+"/order/orders/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Prefer", prefer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET order %s: %v", id, err)
	}
	defer resp.Body.Close()
	var o order.Order
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil || resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET order %s: got %d (%v), want 200 with the order", id, resp.StatusCode, err)
	}
	return o, resp.Header
}

// With "Prefer: wait", one GET of a pending order answers once the order is decided, or
// with the order still pending when the wait is over; a wait the service cannot read is
// ignored.
func TestGetOrderWaitsForTheDecision(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.runParticipants(func(p order.Placed) []reply {
		if p.All()[0].Quantity == 1 { // answered late
			r := reserveBoth(p)
			for i := range r {
				r[i].delay = 300 * time.Millisecond
			}
			return r
		}
		return []reply{stock(p, event.ProductStockReserved, "")} // never decided here
	})
	pid := h.addProduct(100)
	ann := h.customer("ann")

	late := h.place("ann", pid, 1)
	o, header := h.getWaiting(late.ID, ann, "wait=10")
	if o.Status != order.Approved || header.Get("Preference-Applied") != "wait=10" {
		t.Errorf("got %s with Preference-Applied %q, want approved in one request, wait=10", o.Status, header.Get("Preference-Applied"))
	}
	if o, header = h.getWaiting(late.ID, ann, "wait=10"); o.Status != order.Approved || header.Get("Preference-Applied") != "" {
		t.Errorf("a decided order: got %s with Preference-Applied %q, want approved at once, nothing applied", o.Status, header.Get("Preference-Applied"))
	}

	open := h.place("ann", pid, 2)
	if o, header = h.getWaiting(open.ID, ann, "respond-async, wait=1"); o.Status != order.Pending || header.Get("Preference-Applied") != "wait=1" {
		t.Errorf("got %s with Preference-Applied %q, want pending after the wait of 1 s", o.Status, header.Get("Preference-Applied"))
	}
	if o, header = h.getWaiting(open.ID, ann, "wait=soon"); o.Status != order.Pending || header.Get("Preference-Applied") != "" {
		t.Errorf("wait=soon: got %s with Preference-Applied %q, want pending at once, nothing applied", o.Status, header.Get("Preference-Applied"))
	}
}
