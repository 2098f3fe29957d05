package customer

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/redisclient"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/systest"
)

// sagaHarness is an event store and the customer service; the test acts as the order
// service, appending order.placed and order.rejected itself.
type sagaHarness struct {
	t     *testing.T
	sys   *systest.System
	cfg   Config
	svc   *running
	es    *eventclient.Client
	conn  *bus.Conn
	users *store
}

func startSaga(t *testing.T) *sagaHarness {
	t.Helper()
	sys := systest.Start(t)
	cfg := testConfig(t, sys.ServiceConfig(t, "customer"))
	conn := testenv.Bus(t)
	rdb, err := redisclient.Open(context.Background(), cfg.RedisURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	h := &sagaHarness{t: t, sys: sys, cfg: cfg, conn: conn, users: newStore(rdb, cfg.KeyPrefix),
		es: eventclient.New(conn, sys.EventstoreURL, sys.AppendQueue, sys.Exchange)}
	h.svc = runService(t, cfg)
	return h
}

// restart stops the service (if running) and starts it again on the same read model.
func (h *sagaHarness) restart() {
	h.svc.stop()
	h.svc = runService(h.t, h.cfg)
}

// appendEvent appends one event with a new id at any version and returns its position.
func (h *sagaHarness) appendEvent(stream, typ string, data any) int64 {
	h.t.Helper()
	raw, _ := json.Marshal(data)
	e := event.New{ID: idgen.New(), Type: typ, Data: raw}
	reply, err := h.es.Append(context.Background(), event.AppendRequest{Stream: stream, Events: []event.New{e}})
	if err != nil || !reply.OK {
		h.t.Fatalf("append %s to %s: got %+v, %v, want ok", typ, stream, reply, err)
	}
	return reply.LastPosition
}

// addCustomer registers username with credit, as the customer service would.
func (h *sagaHarness) addCustomer(username string, credit int64) {
	h.t.Helper()
	h.appendEvent(Stream(username), event.CustomerRegistered, Registered{Username: username, FullName: "Name " + username,
		Email: username + "@example.com", PasswordHash: "not a hash", Role: auth.Customer, CreditCents: credit})
}

// place appends order.placed of a new order and returns its id.
func (h *sagaHarness) place(customer string, totalCents int64) string {
	h.t.Helper()
	id := newTestID(12)
	h.appendEvent("order-"+id, event.OrderPlaced, map[string]any{"order_id": id, "customer": customer,
		"product_id": "tea", "quantity": 1, "unit_price_cents": totalCents, "total_cents": totalCents})
	return id
}

// reject appends order.rejected of order id.
func (h *sagaHarness) reject(id, customer string) {
	h.t.Helper()
	h.appendEvent("order-"+id, event.OrderRejected, map[string]any{"order_id": id, "customer": customer, "reason": "out of stock"})
}

// waitAnswered waits until username's read model holds an answer to each order.
func (h *sagaHarness) waitAnswered(username string, orders ...string) map[string]Reservation {
	h.t.Helper()
	var rs map[string]Reservation
	testenv.Eventually(h.t, 30*time.Second, fmt.Sprintf("%s answers orders %v", username, orders), func() bool {
		var err error
		if rs, err = h.users.Reservations(context.Background(), username); err != nil {
			h.t.Fatal(err)
		}
		for _, id := range orders {
			if rs[id].State == "" {
				return false
			}
		}
		return true
	})
	return rs
}

// waitState waits until username's record of order is in state.
func (h *sagaHarness) waitState(username, order string, state ReservationState) {
	h.t.Helper()
	testenv.Eventually(h.t, 30*time.Second, fmt.Sprintf("order %s of %s is %s", order, username, state), func() bool {
		rs, err := h.users.Reservations(context.Background(), username)
		return err == nil && rs[order].State == state
	})
}

func (h *sagaHarness) customer(username string) Customer {
	h.t.Helper()
	c, err := h.users.Customer(context.Background(), username)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// stream returns username's stream as the event store holds it.
func (h *sagaHarness) stream(username string) []event.Stored {
	h.t.Helper()
	events, _, err := h.es.Stream(context.Background(), Stream(username))
	if err != nil {
		h.t.Fatal(err)
	}
	return events
}

// types lists the types of events.
func types(events []event.Stored) []string {
	var ts []string
	for _, e := range events {
		ts = append(ts, e.Type)
	}
	return ts
}

// checkStream checks username's stream: at most one event of each saga type per order,
// a release only after a reservation, and the credit never below zero.
func (h *sagaHarness) checkStream(username string) {
	h.t.Helper()
	var c Customer
	seen := map[string]bool{}
	for _, e := range h.stream(username) {
		next, _, err := c.Apply(e)
		if err != nil {
			h.t.Fatalf("%s: %v", username, err)
		}
		c = next
		if c.CreditCents < 0 {
			h.t.Errorf("%s: got credit %d after version %d, want never below 0", username, c.CreditCents, e.Version)
		}
		r, ok, _ := ReservationOf(e.Type, e.Data)
		if !ok {
			continue
		}
		key := r.OrderID + " " + e.Type
		if seen[key] {
			h.t.Errorf("%s: got %s for order %s twice, want once", username, e.Type, r.OrderID)
		}
		seen[key] = true
		if e.Type == event.CustomerCreditReleased && !seen[r.OrderID+" "+event.CustomerCreditReserved] {
			h.t.Errorf("%s: got a release of order %s without a reservation", username, r.OrderID)
		}
		if e.Type != event.CustomerCreditReleased && seen[r.OrderID+" "+event.CustomerCreditReserved] && seen[r.OrderID+" "+event.CustomerCreditRejected] {
			h.t.Errorf("%s: order %s both reserved and rejected", username, r.OrderID)
		}
	}
}

// readModel returns the customers and their reservations, for comparing with a rebuild.
func (h *sagaHarness) readModel(usernames []string) map[string]any {
	h.t.Helper()
	all := map[string]any{}
	for _, u := range usernames {
		rs, err := h.users.Reservations(context.Background(), u)
		if err != nil {
			h.t.Fatal(err)
		}
		all[u] = h.customer(u)
		all[u+" reservations"] = rs
	}
	return all
}

// checkRebuild stops the service and checks that Rebuild gives the same read model.
func (h *sagaHarness) checkRebuild(usernames []string) {
	h.t.Helper()
	h.svc.stop()
	before := h.readModel(usernames)
	if err := Rebuild(context.Background(), h.cfg, testenv.Logger(h.t)); err != nil {
		h.t.Fatal(err)
	}
	if after := h.readModel(usernames); !reflect.DeepEqual(after, before) {
		h.t.Errorf("after Rebuild:\n got %v\nwant %v", after, before)
	}
}

// newTestID returns n random characters a-z, 2-7 (the shape of an order id).
func newTestID(n int) string { return idgen.Short(n) }

// TestSagaReserveRejectRelease walks the customer's part of the saga: a reservation takes
// the credit at once, an order above what is left is rejected, a rejected order's
// reservation is released, and a redelivered order.placed changes nothing.
func TestSagaReserveRejectRelease(t *testing.T) {
	t.Parallel()
	h := startSaga(t)
	h.addCustomer("ann", 1000)

	first := h.place("ann", 600)
	second := h.place("ann", 500) // decided on the 400 left
	third := h.place("ann", 400)
	rs := h.waitAnswered("ann", first, second, third)
	want := map[string]Reservation{
		first:  {OrderID: first, AmountCents: 600, State: Reserved},
		second: {OrderID: second, State: Rejected},
		third:  {OrderID: third, AmountCents: 400, State: Reserved},
	}
	if !reflect.DeepEqual(rs, want) {
		t.Fatalf("got reservations %v, want %v", rs, want)
	}
	if c := h.customer("ann"); c.CreditCents != 0 {
		t.Errorf("got credit %d, want 0", c.CreditCents)
	}
	for _, e := range h.stream("ann") {
		if e.Type == event.CustomerCreditRejected && !strings.Contains(string(e.Data), `"reason":"not enough credit"`) {
			t.Errorf("got %s %s, want reason %q", e.Type, e.Data, ReasonNotEnoughCredit)
		}
	}

	// placed -> reserved -> rejected -> released; a rejected order releases nothing.
	h.reject(first, "ann")
	h.reject(second, "ann")
	h.waitState("ann", first, Released)
	if c := h.customer("ann"); c.CreditCents != 600 {
		t.Errorf("after the release: got credit %d, want 600", c.CreditCents)
	}

	// An order of an unknown customer is skipped: no stream is created.
	h.place("nobody", 100)
	fourth := h.place("ann", 100)
	h.waitAnswered("ann", fourth)
	if _, found, err := h.es.Stream(context.Background(), Stream("nobody")); err != nil || found {
		t.Errorf("customer-nobody: got found %v (%v), want no stream", found, err)
	}

	// The order events delivered again, as a dead-letter replay does: nothing changes.
	before := h.stream("ann")
	credit := h.customer("ann").CreditCents
	for _, id := range []string{first, second, third, fourth} {
		events, _, err := h.es.Stream(context.Background(), "order-"+id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			body, _ := json.Marshal(e)
			err := h.conn.Publish(context.Background(), "", event.Queue(h.cfg.Subscription), bus.Message{ID: e.ID, Type: e.Type,
				Body: body, Headers: map[string]any{bus.ReplayHeader: time.Now().UTC().Format(time.RFC3339)}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// A new order behind the replayed ones shows that they were handled.
	fifth := h.place("ann", 1)
	h.waitAnswered("ann", fifth)
	after := h.stream("ann")
	if got, want := types(after[:len(after)-1]), types(before); !reflect.DeepEqual(got, want) {
		t.Errorf("after redelivery: got stream %v, want %v and the fifth order's answer", got, want)
	}
	if c := h.customer("ann"); c.CreditCents != credit-1 {
		t.Errorf("after redelivery: got credit %d, want %d", c.CreditCents, credit-1)
	}
	h.checkStream("ann")
	h.checkRebuild([]string{"ann"})
}

// TestSagaCreditSetRace: a manager sets the credit after an order was placed but before
// the service answered it. The service's append then conflicts; it reads the stream and
// decides on the credit the manager set.
func TestSagaCreditSetRace(t *testing.T) {
	t.Parallel()
	h := startSaga(t)
	h.addCustomer("bob", 1000)
	h.addCustomer("cid", 1000)
	warm := h.place("bob", 1)
	h.waitAnswered("bob", warm)

	h.svc.stop()
	tooMuch := h.place("bob", 800)
	h.appendEvent(Stream("bob"), event.CustomerCreditSet, CreditSet{CreditCents: 500})
	enough := h.place("cid", 300)
	h.appendEvent(Stream("cid"), event.CustomerCreditSet, CreditSet{CreditCents: 500})
	h.restart()

	if rs := h.waitAnswered("bob", tooMuch); rs[tooMuch].State != Rejected {
		t.Errorf("800 against the 500 set: got %+v, want rejected", rs[tooMuch])
	}
	if rs := h.waitAnswered("cid", enough); rs[enough].State != Reserved {
		t.Errorf("300 against the 500 set: got %+v, want reserved", rs[enough])
	}
	// The credit-set events come from the bus after the decision: skipped by version.
	settled := h.place("cid", 1)
	h.waitAnswered("cid", settled)
	if got, want := h.customer("bob").CreditCents, int64(500); got != want {
		t.Errorf("bob: got credit %d, want %d", got, want)
	}
	if got, want := h.customer("cid").CreditCents, int64(500-300-1); got != want {
		t.Errorf("cid: got credit %d, want %d", got, want)
	}
	if !strings.Contains(h.svc.logs.String(), "customer stream moved on") {
		t.Errorf("logs do not show the version conflict path (customer stream moved on)")
	}
	h.checkStream("bob")
	h.checkStream("cid")
	h.checkRebuild([]string{"bob", "cid"})
}

// TestSagaScarcity: 40 customers with credit for two orders each place five each, all at
// once: each gets exactly two reservations, and no credit goes below zero. Customers
// update their profiles meanwhile, which sends some decisions through the version
// conflict path.
func TestSagaScarcity(t *testing.T) {
	t.Parallel()
	h := startSaga(t)
	const customers, perCustomer, price = 40, 5, 100
	var names []string
	for i := range customers {
		names = append(names, fmt.Sprintf("c%02d", i))
		h.addCustomer(names[i], 2*price)
	}
	orders := make([][]string, customers)
	var mu sync.Mutex
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= customers*perCustomer {
					return
				}
				c := n % customers
				id := h.place(names[c], price)
				mu.Lock()
				orders[c] = append(orders[c], id)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for i := range 3 * customers {
			h.appendEvent(Stream(names[i%customers]), event.CustomerProfileUpdated,
				ProfileUpdated{FullName: fmt.Sprintf("Name %d", i), Email: "x@example.com"})
		}
	})
	wg.Wait()
	for i, u := range names {
		rs := h.waitAnswered(u, orders[i]...)
		reserved := 0
		for _, r := range rs {
			if r.State == Reserved {
				reserved++
			}
		}
		if reserved != 2 {
			t.Errorf("%s: got %d reservations of %d orders, want 2", u, reserved, len(orders[i]))
		}
		if c := h.customer(u); c.CreditCents != 0 {
			t.Errorf("%s: got credit %d, want 0", u, c.CreditCents)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d order.placed appended by 16 writers and answered in %s: %.0f answers/s; %d version conflicts",
		customers*perCustomer, elapsed.Round(time.Millisecond), float64(customers*perCustomer)/elapsed.Seconds(),
		strings.Count(h.svc.logs.String(), "customer stream moved on"))
	for _, u := range names {
		h.checkStream(u)
	}
	h.checkRebuild(names)
}

// TestSagaRestart stops the service while orders keep coming and starts it again:
// every order is answered once, nothing is reserved twice, and the read model equals a
// rebuild.
func TestSagaRestart(t *testing.T) {
	t.Parallel()
	h := startSaga(t)
	const customers, perCustomer, price = 10, 6, 100
	var names []string
	for i := range customers {
		names = append(names, fmt.Sprintf("r%02d", i))
		h.addCustomer(names[i], 3*price)
	}
	orders := make([][]string, customers)
	placed := make(chan struct{})
	go func() {
		defer close(placed)
		for n := range customers * perCustomer {
			c := n % customers
			orders[c] = append(orders[c], h.place(names[c], price))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	h.svc.stop() // mid-stream: orders keep coming while it is down
	time.Sleep(100 * time.Millisecond)
	h.restart()
	<-placed
	for i, u := range names {
		rs := h.waitAnswered(u, orders[i]...)
		reserved := 0
		for _, r := range rs {
			if r.State == Reserved {
				reserved++
			}
		}
		if reserved != 3 || len(rs) != perCustomer {
			t.Errorf("%s: got %d reservations of %d answers, want 3 of %d", u, reserved, len(rs), perCustomer)
		}
		if c := h.customer(u); c.CreditCents != 0 {
			t.Errorf("%s: got credit %d, want 0", u, c.CreditCents)
		}
		h.checkStream(u)
	}
	h.checkRebuild(names)
}

// TestSagaCrashAndRejectionWhileDown: the service appended a reservation and died before
// recording it (the test appends the very event the service decides, with its id), and an
// order was placed and rejected while it was down. After the restart the reservation is
// stored once, and the rejected order is reserved and released.
func TestSagaCrashAndRejectionWhileDown(t *testing.T) {
	t.Parallel()
	h := startSaga(t)
	h.addCustomer("dan", 1000)
	warm := h.place("dan", 100)
	h.waitAnswered("dan", warm)

	h.svc.stop()
	crashed := h.place("dan", 300)
	c := h.customer("dan")
	decided, _ := ReserveCredit(c, Reservation{}, OrderPlaced{OrderID: crashed, Customer: "dan", TotalCents: 300})
	expected := c.Version
	reply, err := h.es.Append(context.Background(), event.AppendRequest{Stream: Stream("dan"), ExpectedVersion: &expected,
		Events: []event.New{decided}})
	if err != nil || !reply.OK {
		t.Fatalf("append the decision: got %+v, %v, want ok", reply, err)
	}
	rejected := h.place("dan", 200)
	h.reject(rejected, "dan")
	h.restart()

	h.waitState("dan", rejected, Released)
	rs := h.waitAnswered("dan", crashed)
	if rs[crashed].State != Reserved {
		t.Errorf("the order whose answer was stored before the crash: got %+v, want reserved", rs[crashed])
	}
	if got, want := h.customer("dan").CreditCents, int64(1000-100-300); got != want {
		t.Errorf("got credit %d, want %d", got, want)
	}
	h.checkStream("dan")
	h.checkRebuild([]string{"dan"})
}
