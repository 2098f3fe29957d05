package accounting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/systest"
)

// shop is an event store, a gateway and the accounting service's configuration, for one
// test; the order service is played by the test, appending order.approved itself.
type shop struct {
	sys    *systest.System
	cfg    Config
	conn   *bus.Conn
	events *eventclient.Client
}

func newShop(t *testing.T) *shop {
	t.Helper()
	sys := systest.Start(t)
	conn := testenv.Bus(t)
	s := &shop{sys: sys, conn: conn, events: eventclient.New(conn, sys.EventstoreURL, sys.AppendQueue, sys.Exchange)}
	s.cfg = s.config(t)
	return s
}

// config returns a configuration with a database and a queue of its own, removed when
// t ends.
func (s *shop) config(t *testing.T) Config {
	cfg := Config{Service: s.sys.ServiceConfig(t, "accounting"), PostgresURL: testenv.PostgresURL(),
		Database: testenv.DatabaseName(t, "acct"), queue: testenv.Name(t)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.conn.DeleteQueue(ctx, event.Queue(cfg.queue))
		_ = s.conn.DeleteQueue(ctx, event.Queue(cfg.queue)+".dead")
		_ = postgres.Drop(ctx, testenv.PostgresURL(), cfg.Database)
	})
	return cfg
}

// start runs the service with cfg until stop (or the end of t), and waits until the
// gateway routes to it.
func (s *shop) start(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testenv.Logger(t)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("accounting: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("accounting did not stop within 15 s")
			}
		})
	}
	t.Cleanup(stop)
	testenv.WaitHealthy(t, "http://"+cfg.Service.Addr+"/healthz", 20*time.Second)
	testenv.Eventually(t, 10*time.Second, "the gateway does not route to accounting", func() bool {
		status, _ := s.get(t, "/accounting/revenue", s.manager())
		return status == http.StatusOK
	})
	return stop
}

func (s *shop) manager() string             { return s.sys.Token("boss", auth.Manager) }
func (s *shop) customer(name string) string { return s.sys.Token(name, auth.Customer) }

// get calls the gateway and returns the status and body.
func (s *shop) get(t *testing.T, path, token string) (int, []byte) {
	return s.call(t, http.MethodGet, path, token)
}

func (s *shop) call(t *testing.T, method, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.sys.GatewayURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// getJSON calls GET path, wants 200, and decodes the body into v.
func (s *shop) getJSON(t *testing.T, path, token string, v any) {
	t.Helper()
	status, body := s.get(t, path, token)
	if status != http.StatusOK {
		t.Fatalf("GET %s: got %d %s, want 200", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// approve appends order.approved for a as the order service does, with data (a's JSON
// when nil), and returns the stored event.
func (s *shop) approve(t *testing.T, a Approved, data []byte) event.Stored {
	t.Helper()
	if data == nil {
		data, _ = json.Marshal(a)
	}
	e := event.New{ID: idgen.New(), Type: event.OrderApproved, Data: data}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := "order-" + string(a.OrderID)
	reply, err := s.events.Append(ctx, event.AppendRequest{Stream: stream, Events: []event.New{e}})
	if err != nil || !reply.OK {
		t.Fatalf("append order.approved: %v %+v", err, reply)
	}
	stored, _, err := s.events.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range stored {
		if got.ID == e.ID {
			return got
		}
	}
	t.Fatalf("order.approved %s not in stream %s", e.ID, stream)
	return event.Stored{}
}

// invoiceEvents returns the events of the order's invoice stream.
func (s *shop) invoiceEvents(t *testing.T, id OrderID) []event.Stored {
	t.Helper()
	events, _, err := s.events.Stream(context.Background(), InvoiceStream(id))
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func (s *shop) revenue(t *testing.T) Revenue {
	t.Helper()
	var r Revenue
	s.getJSON(t, "/accounting/revenue", s.manager(), &r)
	return r
}

// waitInvoices waits until the service counts n invoices.
func (s *shop) waitInvoices(t *testing.T, n int64) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("want %d invoices", n), func() bool {
		return s.revenue(t).Invoices == n
	})
}

// allInvoices lists every invoice as token sees them, page by page.
func (s *shop) allInvoices(t *testing.T, token string) []StoredInvoice {
	t.Helper()
	var all []StoredInvoice
	after := ""
	for {
		var page invoicePage
		s.getJSON(t, "/accounting/invoices?limit=2&after="+after, token, &page)
		all = append(all, page.Invoices...)
		if page.NextAfter == "" {
			return all
		}
		after = page.NextAfter
	}
}

// openStore opens the read model of cfg, as the service does, for the rest of t.
func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), cfg.PostgresURL, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	store, err := NewStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// pendingCount returns how many approvals the read model of cfg holds as pending.
func pendingCount(t *testing.T, cfg Config) int {
	t.Helper()
	var n int
	if err := openStore(t, cfg).db.QueryRow(context.Background(), `SELECT count(*) FROM pending_invoices`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func approval(id, customer string, quantity, unit int64) Approved {
	return Approved{OrderID: OrderID(id), Customer: customer, OrderLines: event.OrderLines{
		Lines: []event.OrderLine{{ProductID: "p-" + id, Quantity: quantity, UnitPriceCents: unit}}}, TotalCents: quantity * unit}
}

func TestInvoiceIssuedOncePerApproval(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	s.start(t, s.cfg)

	var approvals []Approved
	var events []event.Stored
	var sum int64
	for i := range 5 {
		a := approval(idgen.New(), []string{"ann", "bob"}[i%2], int64(i+1), 199)
		approvals = append(approvals, a)
		events = append(events, s.approve(t, a, nil))
		sum += a.TotalCents
	}
	s.waitInvoices(t, 5)

	// The same approvals again: published again as after an event store crash, replayed
	// from a dead-letter queue, and a second order.approved event for the first order.
	ctx := context.Background()
	for _, e := range events {
		body, _ := json.Marshal(e)
		msg := bus.Message{ID: e.ID, Type: e.Type, Body: body}
		if err := s.conn.Publish(ctx, s.sys.Exchange, e.Type, msg); err != nil {
			t.Fatal(err)
		}
		msg.Headers = map[string]any{bus.ReplayHeader: time.Now().UTC().Format(time.RFC3339)}
		if err := s.conn.Publish(ctx, s.sys.Exchange, e.Type, msg); err != nil {
			t.Fatal(err)
		}
	}
	s.approve(t, approvals[0], nil)
	// The queue is applied in order: once the last approval is invoiced, all before it
	// were applied, and those found their invoices (nothing is left pending).
	last := approval(idgen.New(), "cid", 1, 1)
	s.approve(t, last, nil)
	sum += last.TotalCents
	s.waitInvoices(t, 6)
	if got := pendingCount(t, s.cfg); got != 0 {
		t.Errorf("got %d pending approvals, want 0", got)
	}

	for _, a := range append(approvals, last) {
		if got := s.invoiceEvents(t, a.OrderID); len(got) != 1 {
			t.Errorf("order %s: got %d events in its invoice stream, want 1", a.OrderID, len(got))
		}
		var inv StoredInvoice
		s.getJSON(t, "/accounting/invoices/"+string(a.OrderID), s.manager(), &inv)
		if inv.Number != "INV-"+string(a.OrderID) || inv.TotalCents != a.TotalCents || inv.Customer != a.Customer || inv.Version != 1 {
			t.Errorf("got invoice %+v, want number INV-%s, total %d, customer %s, version 1",
				inv, a.OrderID, a.TotalCents, a.Customer)
		}
	}
	if got := s.revenue(t); got.RevenueCents != sum || got.Invoices != 6 {
		t.Errorf("got revenue %+v, want %d cents in 6 invoices", got, sum)
	}
}

func TestInvoiceAccess(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	s.start(t, s.cfg)
	ann1, ann2, bob1 := approval("ann-1-"+idgen.New()[:8], "ann", 1, 100),
		approval("ann-2-"+idgen.New()[:8], "ann", 2, 100), approval("bob-1-"+idgen.New()[:8], "bob", 3, 100)
	for _, a := range []Approved{ann1, ann2, bob1} {
		s.approve(t, a, nil)
	}
	s.waitInvoices(t, 3)

	ids := func(list []StoredInvoice) []OrderID {
		var out []OrderID
		for _, inv := range list {
			out = append(out, inv.OrderID)
		}
		slices.Sort(out)
		return out
	}
	if got, want := ids(s.allInvoices(t, s.customer("ann"))), []OrderID{ann1.OrderID, ann2.OrderID}; !slices.Equal(got, want) {
		t.Errorf("ann lists %v, want %v", got, want)
	}
	if got := ids(s.allInvoices(t, s.customer("carl"))); len(got) != 0 {
		t.Errorf("carl lists %v, want none", got)
	}
	if got := s.allInvoices(t, s.manager()); len(got) != 3 {
		t.Errorf("the manager lists %d invoices, want 3", len(got))
	}

	tests := []struct {
		path, token string
		want        int
	}{
		{"/accounting/invoices/" + string(ann1.OrderID), s.customer("ann"), http.StatusOK},
		{"/accounting/invoices/" + string(ann1.OrderID), s.manager(), http.StatusOK},
		{"/accounting/invoices/" + string(ann1.OrderID), s.customer("bob"), http.StatusNotFound},
		{"/accounting/invoices/no-such-order", s.manager(), http.StatusNotFound},
		{"/accounting/invoices/" + string(ann1.OrderID), "", http.StatusUnauthorized},
		{"/accounting/invoices", "", http.StatusUnauthorized},
		{"/accounting/invoices", "not-a-token", http.StatusUnauthorized},
		{"/accounting/invoices?limit=0", s.customer("ann"), http.StatusBadRequest},
		{"/accounting/invoices?limit=x", s.customer("ann"), http.StatusBadRequest},
		{"/accounting/revenue", s.customer("ann"), http.StatusForbidden},
		{"/accounting/revenue", "", http.StatusUnauthorized},
		{"/accounting/dead-letters", s.customer("ann"), http.StatusForbidden},
		{"/accounting/dead-letters", s.manager(), http.StatusOK},
	}
	for _, tt := range tests {
		if got, body := s.get(t, tt.path, tt.token); got != tt.want {
			t.Errorf("GET %s: got %d %s, want %d", tt.path, got, body, tt.want)
		}
	}
}

func TestRestartAndRebuild(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	stop := s.start(t, s.cfg)
	for i := range 5 {
		s.approve(t, approval(idgen.New(), "ann", int64(i+1), 333), nil)
	}
	s.waitInvoices(t, 5)
	want := s.allInvoices(t, s.manager())
	wantRevenue := s.revenue(t)

	// Restart: nothing new, nothing lost; approvals appended while it was down are
	// invoiced on catch-up.
	stop()
	down := approval(idgen.New(), "bob", 7, 100)
	s.approve(t, down, nil)
	stop = s.start(t, s.cfg)
	s.waitInvoices(t, 6)
	all := s.allInvoices(t, s.manager())
	want = slices.Insert(want, 0, all[0]) // the newest
	if all[0].OrderID != down.OrderID || !equalJSON(all, want) {
		t.Errorf("after a restart: got %+v, want %+v", all, want)
	}
	wantRevenue = Revenue{RevenueCents: wantRevenue.RevenueCents + down.TotalCents, Invoices: 6}

	// Rebuild the stopped service's read model from the event store.
	stop()
	if err := Rebuild(context.Background(), s.cfg, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	s.start(t, s.cfg)
	if got := s.allInvoices(t, s.manager()); !equalJSON(got, want) {
		t.Errorf("after Rebuild: got %+v, want %+v", got, want)
	}
	if got := s.revenue(t); got != wantRevenue {
		t.Errorf("after Rebuild: got revenue %+v, want %+v", got, wantRevenue)
	}

	// A second instance on an empty database catches up from position 0: each approval
	// meets the "duplicate" reply of its invoice and stores the same invoice.
	fresh := s.config(t)
	stopFresh := s.start(t, fresh)
	stopFresh()
	list, _, err := openStore(t, fresh).Invoices(context.Background(), "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if !equalJSON(list, want) {
		t.Errorf("caught up from 0: got %+v, want %+v", list, want)
	}
	for _, inv := range want {
		if got := s.invoiceEvents(t, inv.OrderID); len(got) != 1 {
			t.Errorf("order %s: got %d events in its invoice stream, want 1", inv.OrderID, len(got))
		}
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// deadLetter is a dead letter as GET /accounting/dead-letters lists it.
type deadLetter struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// deadLetters lists the service's dead letters through the gateway (nil when it does not
// answer 200).
func (s *shop) deadLetters(t *testing.T) []deadLetter {
	t.Helper()
	var list struct {
		DeadLetters []deadLetter `json:"dead_letters"`
	}
	status, body := s.get(t, "/accounting/dead-letters", s.manager())
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		return nil
	}
	return list.DeadLetters
}

func (s *shop) waitDeadLetter(t *testing.T, id string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, "event "+id+" is not among the dead letters", func() bool {
		return slices.Contains(s.deadLetters(t), deadLetter{ID: id, Type: event.OrderApproved})
	})
}

// TestMalformedApprovalIsDeadLettered: an approval that breaks the contract cannot be
// invoiced; it goes to the dead-letter queue at once, the approvals after it are invoiced,
// and replaying it changes nothing.
func TestMalformedApprovalIsDeadLettered(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	stop := s.start(t, s.cfg)
	bad := approval(idgen.New(), "ann", 3, 100)
	badEvent := s.approve(t, bad, []byte(fmt.Sprintf(
		`{"order_id": %q, "customer": "ann", "product_id": "p", "quantity": "three", "unit_price_cents": 100, "total_cents": 300}`, bad.OrderID)))
	good := approval(idgen.New(), "ann", 1, 100)
	s.approve(t, good, nil)
	s.waitInvoices(t, 1)
	s.waitDeadLetter(t, badEvent.ID)

	if status, body := s.call(t, http.MethodPost, "/accounting/dead-letters/"+badEvent.ID+"/replay", s.manager()); status != http.StatusNoContent {
		t.Fatalf("replay: got %d %s, want 204", status, body)
	}
	s.waitDeadLetter(t, badEvent.ID) // back again: still malformed
	if status, body := s.call(t, http.MethodDelete, "/accounting/dead-letters/"+badEvent.ID, s.manager()); status != http.StatusNoContent {
		t.Fatalf("discard: got %d %s, want 204", status, body)
	}
	if got := s.deadLetters(t); len(got) != 0 {
		t.Errorf("got dead letters %+v after the discard, want none", got)
	}
	if got := s.invoiceEvents(t, bad.OrderID); len(got) != 0 {
		t.Errorf("got %d invoice events for the malformed approval, want 0", len(got))
	}
	if got := s.revenue(t); got.Invoices != 1 {
		t.Errorf("got %d invoices, want 1", got.Invoices)
	}

	stop()
	s.start(t, s.config(t)) // an empty database and queue: catches up from position 0
	s.waitDeadLetter(t, badEvent.ID)
	s.waitInvoices(t, 1)
}

// TestFailingIssueStaysPending: while a cause of failure holds, issuing an approval's
// invoice fails every try; the approval stays pending and the sweeper tries it again,
// nothing is dead-lettered (a transient failure needs no manager), and the approvals
// after it are invoiced meanwhile. Once the cause is gone, its invoice is issued, once.
func TestFailingIssueStaysPending(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	var broken atomic.Bool
	broken.Store(true)
	var tries atomic.Int64
	victim := approval(idgen.New(), "ann", 2, 450)
	cfg := s.cfg
	cfg.beforeIssue = func(_ context.Context, id OrderID) error {
		if id == victim.OrderID && broken.Load() {
			tries.Add(1)
			return errors.New("the ledger is closed for audit")
		}
		return nil
	}
	s.start(t, cfg)
	s.approve(t, victim, nil)
	other := approval(idgen.New(), "bob", 1, 50)
	s.approve(t, other, nil)
	s.waitInvoices(t, 1)
	testenv.Eventually(t, 20*time.Second, "the failed issue is not tried again", func() bool {
		return tries.Load() >= 2
	})
	if got := pendingCount(t, cfg); got != 1 {
		t.Errorf("got %d pending approvals while issuing fails, want 1", got)
	}
	var dead struct {
		DeadLetters []deadLetter `json:"dead_letters"`
	}
	s.getJSON(t, "/accounting/dead-letters", s.manager(), &dead)
	if len(dead.DeadLetters) != 0 {
		t.Errorf("got dead letters %+v, want none", dead.DeadLetters)
	}
	if status, body := s.get(t, "/accounting/invoices/"+string(victim.OrderID), s.manager()); status != http.StatusNotFound {
		t.Errorf("GET the invoice while issuing fails: got %d %s, want 404", status, body)
	}

	broken.Store(false)
	s.waitInvoices(t, 2)
	if got := s.invoiceEvents(t, victim.OrderID); len(got) != 1 {
		t.Errorf("got %d invoice events, want 1", len(got))
	}
	var inv StoredInvoice
	s.getJSON(t, "/accounting/invoices/"+string(victim.OrderID), s.manager(), &inv)
	if inv.Number != "INV-"+string(victim.OrderID) || inv.TotalCents != victim.TotalCents || inv.Version != 1 {
		t.Errorf("got invoice %+v, want number INV-%s, total %d, version 1", inv, victim.OrderID, victim.TotalCents)
	}
	if got := s.revenue(t); got != (Revenue{RevenueCents: victim.TotalCents + other.TotalCents, Invoices: 2}) {
		t.Errorf("got revenue %+v, want %d cents in 2 invoices", got, victim.TotalCents+other.TotalCents)
	}
	if got := pendingCount(t, cfg); got != 0 {
		t.Errorf("got %d pending approvals after the invoice was issued, want 0", got)
	}
}

// TestIssuingDoesNotHoldTheQueue: while one invoice's issue waits (for the event store's
// reply, say), the approvals after it are applied and invoiced; the waiting one is
// issued once it may go on.
func TestIssuingDoesNotHoldTheQueue(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	slow := approval(idgen.New(), "ann", 1, 700)
	release := make(chan struct{})
	var held atomic.Bool
	cfg := s.cfg
	cfg.beforeIssue = func(ctx context.Context, id OrderID) error {
		if id != slow.OrderID {
			return nil
		}
		held.Store(true)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.start(t, cfg)
	s.approve(t, slow, nil)
	testenv.Eventually(t, 10*time.Second, "the slow invoice is not being issued", held.Load)
	for i := range 3 {
		s.approve(t, approval(idgen.New(), "bob", int64(i+1), 100), nil)
	}
	s.waitInvoices(t, 3)
	if status, body := s.get(t, "/accounting/invoices/"+string(slow.OrderID), s.manager()); status != http.StatusNotFound {
		t.Errorf("GET the held invoice: got %d %s, want 404", status, body)
	}

	close(release)
	s.waitInvoices(t, 4)
	if got := s.invoiceEvents(t, slow.OrderID); len(got) != 1 {
		t.Errorf("got %d invoice events, want 1", len(got))
	}
}

// TestPendingInvoiceSurvivesRestartAndRebuild: an approval whose invoice could not be
// issued before the service stopped stays pending through a rebuild of the read model
// and is issued when the service runs again (its event is not delivered again).
func TestPendingInvoiceSurvivesRestartAndRebuild(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	victim := approval(idgen.New(), "ann", 3, 120)
	var tries atomic.Int64
	cfg := s.cfg
	cfg.beforeIssue = func(_ context.Context, id OrderID) error {
		if id == victim.OrderID {
			tries.Add(1)
			return errors.New("the event store is away")
		}
		return nil
	}
	stop := s.start(t, cfg)
	s.approve(t, victim, nil)
	testenv.Eventually(t, 10*time.Second, "the invoice is not being issued", func() bool { return tries.Load() >= 1 })
	stop()

	if err := Rebuild(context.Background(), s.cfg, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	if got := pendingCount(t, s.cfg); got != 1 {
		t.Fatalf("after Rebuild: got %d pending approvals, want 1", got)
	}
	s.start(t, s.cfg)
	s.waitInvoices(t, 1)
	if got := s.invoiceEvents(t, victim.OrderID); len(got) != 1 {
		t.Errorf("got %d invoice events, want 1", len(got))
	}
	if got := pendingCount(t, s.cfg); got != 0 {
		t.Errorf("got %d pending approvals after the invoice was issued, want 0", got)
	}
}

// TestInvoiceLatency measures how long an invoice takes from order.approved appended to
// GET /accounting/invoices/{id} through the gateway answering 200. It logs the numbers
// and asserts nothing about them.
func TestInvoiceLatency(t *testing.T) {
	s := newShop(t)
	s.start(t, s.cfg)
	const n = 100
	token := s.manager()
	var took []time.Duration
	for range n {
		a := approval(idgen.New(), "ann", 1, 100)
		data, _ := json.Marshal(a)
		start := time.Now()
		reply, err := s.events.Append(context.Background(), event.AppendRequest{Stream: "order-" + string(a.OrderID),
			Events: []event.New{{ID: idgen.New(), Type: event.OrderApproved, Data: data}}})
		if err != nil || !reply.OK {
			t.Fatalf("append: %v %+v", err, reply)
		}
		for {
			if status, _ := s.get(t, "/accounting/invoices/"+string(a.OrderID), token); status == http.StatusOK {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("invoice of %s not visible after 10 s", a.OrderID)
			}
			time.Sleep(time.Millisecond)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("invoice visible after order.approved appended, n=%d: p50 %v, p95 %v, max %v",
		n, took[n/2], took[n*95/100], took[n-1])
}
