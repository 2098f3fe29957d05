package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/view"
)

// followWait bounds how long a test waits for something the broker does.
const followWait = 10 * time.Second

// testViews is a running Hub on an exchange of the test's own, and a connection to
// announce on its view exchange.
type testViews struct {
	hub      *Hub
	pub      *bus.Conn
	exchange string // the view exchange
}

// startViews runs a Hub on conn (testenv.Bus when nil) for t and returns it with a
// publisher of announcements.
func startViews(t *testing.T, busURL string) *testViews {
	t.Helper()
	conn, pub := dialTest(t, busURL), dialTest(t, busURL)
	events := testenv.Name(t) + ".events"
	hub := NewHub(testenv.Logger(t))
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	if err := hub.Run(ctx, conn, HubConfig{Exchange: events}); err != nil {
		t.Fatal(err)
	}
	v := &testViews{hub: hub, pub: pub, exchange: view.ExchangeFor(events)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.DeleteExchange(ctx, events)
		_ = pub.DeleteExchange(ctx, v.exchange)
	})
	return v
}

func dialTest(t *testing.T, url string) *bus.Conn {
	t.Helper()
	if url == "" {
		return testenv.Bus(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), followWait)
	defer cancel()
	conn, err := bus.Dial(ctx, url, testenv.Logger(t))
	if err != nil {
		t.Fatalf("RabbitMQ not reachable at RABBITMQ_URL (start it with `rabbitmq-server -detached`): %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// announce publishes c as the order service does.
func (v *testViews) announce(t *testing.T, c view.Change) {
	t.Helper()
	body, _ := json.Marshal(c)
	ctx, cancel := context.WithTimeout(t.Context(), followWait)
	defer cancel()
	if err := v.pub.Publish(ctx, v.exchange, c.View, bus.Message{Body: body, Transient: true}); err != nil {
		t.Fatal(err)
	}
}

// fakeOrders stands for the order API as a site reads it: the state of each order, and
// which credentials read what. Its methods are safe for concurrent use.
type fakeOrders struct {
	mu      sync.Mutex
	state   map[string]string // order id → what its row shows
	reads   []string          // "<credential>:<id>" of each Read
	current atomic.Int64      // calls of Current
}

func newFakeOrders() *fakeOrders { return &fakeOrders{state: map[string]string{}} }

func (o *fakeOrders) set(id, state string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.state[id] = state
}

func (o *fakeOrders) readLog() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.reads...)
}

// follow returns the Follow of a browser with credential who (its Owner, or a manager's
// AnyOwner) on order id ("" for the list).
func (o *fakeOrders) follow(who string, manager bool, id string) Follow {
	f := Follow{View: view.Orders, ID: id, AnyOwner: manager}
	if !manager {
		f.Owner = who
	}
	f.Read = func(ctx context.Context, c view.Change) ([]SSEMessage, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.reads = append(o.reads, who+":"+c.ID)
		return []SSEMessage{{Event: "order-" + c.ID, HTML: templ.Raw(o.state[c.ID])}}, nil
	}
	f.Current = func(ctx context.Context) ([]SSEMessage, error) {
		o.current.Add(1)
		return []SSEMessage{{Event: "current", HTML: templ.Raw("now")}}, nil
	}
	return f
}

// received collects what an Outbox sends, as ServeSSE would take it.
type received struct {
	mu     sync.Mutex
	frames []string
}

// drain takes from out until it closes or ctx ends, into r.
func drain(ctx context.Context, out *Outbox, r *received) {
	for {
		frames, _, open := out.take()
		r.mu.Lock()
		for _, f := range frames {
			r.frames = append(r.frames, string(f))
		}
		r.mu.Unlock()
		if !open {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-out.wake:
		}
	}
}

func (r *received) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.frames {
		if strings.Contains(f, sub) {
			return true
		}
	}
	return false
}

func (r *received) count(sub string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.frames {
		if strings.Contains(f, sub) {
			n++
		}
	}
	return n
}

// followers opens n streams of follow and drains each into its received.
func (v *testViews) followers(t *testing.T, n int, follow Follow) []*received {
	t.Helper()
	var out []*received
	for range n {
		r := &received{}
		ob := v.hub.Follow(t.Context(), follow)
		go drain(t.Context(), ob, r)
		out = append(out, r)
	}
	return out
}

func TestFollowerReadsOnceForManyBrowsers(t *testing.T) {
	t.Parallel()
	v := startViews(t, "")
	orders := newFakeOrders()
	orders.set("a1", "approved a1")
	list := v.followers(t, 50, orders.follow("manager", true, ""))
	page := v.followers(t, 5, orders.follow("manager", true, "a1"))
	other := v.followers(t, 1, orders.follow("manager", true, "b2"))
	if got := orders.current.Load(); got != 56 {
		t.Fatalf("Current called %d times, want once per stream (56)", got)
	}

	v.announce(t, view.Change{View: view.Orders, ID: "a1", Owner: "alice", Version: 2})
	for i, r := range append(list, page...) {
		testenv.Eventually(t, followWait, fmt.Sprintf("browser %d never got order a1", i), func() bool { return r.has("approved a1") })
	}
	orders.set("b2", "pending b2")
	v.announce(t, view.Change{View: view.Orders, ID: "b2", Owner: "bob", Version: 1})
	testenv.Eventually(t, followWait, "the page of b2 never got it", func() bool { return other[0].has("pending b2") })

	reads := orders.readLog()
	if n := strings.Count(strings.Join(reads, " "), ":a1"); n != 1 {
		t.Errorf("order a1 was read %d times for 55 browsers (%v), want once", n, reads)
	}
	if other[0].has("a1") {
		t.Error("the page of order b2 got order a1")
	}
	for i, r := range page {
		if r.has("b2") {
			t.Errorf("page browser %d of order a1 got order b2", i)
		}
	}
}

func TestFollowerSendsCustomersOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	v := startViews(t, "")
	orders := newFakeOrders()
	orders.set("a1", "alice's a1")
	orders.set("b1", "bob's b1")
	alice := v.followers(t, 3, orders.follow("alice", false, ""))
	bob := v.followers(t, 3, orders.follow("bob", false, ""))
	manager := v.followers(t, 1, orders.follow("manager", true, ""))
	nobody := v.followers(t, 1, Follow{View: view.Orders, Read: orders.follow("nobody", false, "").Read,
		Current: orders.follow("nobody", false, "").Current}) // neither an owner nor a manager

	v.announce(t, view.Change{View: view.Orders, ID: "a1", Owner: "alice"})
	v.announce(t, view.Change{View: view.Orders, ID: "b1", Owner: "bob"})
	v.announce(t, view.Change{View: view.Orders, ID: "x1"}) // an item nobody owns
	for _, r := range append(alice, manager...) {
		testenv.Eventually(t, followWait, "alice or the manager never got a1", func() bool { return r.has("alice's a1") })
	}
	for _, r := range append(bob, manager...) {
		testenv.Eventually(t, followWait, "bob or the manager never got b1", func() bool { return r.has("bob's b1") })
	}
	testenv.Eventually(t, followWait, "the manager never got x1", func() bool { return manager[0].has("order-x1") })

	for i, r := range bob {
		if r.has("alice") || r.has("x1") {
			t.Errorf("bob's browser %d got another's order: %q", i, r.frames)
		}
	}
	for i, r := range alice {
		if r.has("bob") || r.has("x1") {
			t.Errorf("alice's browser %d got another's order: %q", i, r.frames)
		}
	}
	if nobody[0].has("order-") {
		t.Errorf("a browser of no owner got orders: %q", nobody[0].frames)
	}
	for _, read := range orders.readLog() {
		who, id, _ := strings.Cut(read, ":")
		entitled := who == "manager" || who == "alice" && id == "a1" || who == "bob" && id == "b1"
		if !entitled {
			t.Errorf("order %s was read with %s's credential, who may not see it", id, who)
		}
	}
}

func TestFollowerCoalescesForASlowBrowser(t *testing.T) {
	t.Parallel()
	v := startViews(t, "")
	orders := newFakeOrders()
	out := v.hub.Follow(t.Context(), orders.follow("manager", true, "")) // nobody takes from it yet
	fast := v.followers(t, 1, orders.follow("manager", true, ""))

	const changes = 30
	for i := 1; i <= changes; i++ {
		orders.set("c1", fmt.Sprintf("version %d;", i))
		v.announce(t, view.Change{View: view.Orders, ID: "c1", Owner: "carol", Version: int64(i)})
	}
	testenv.Eventually(t, followWait, "the fast browser never got the last version", func() bool {
		return fast[0].has(fmt.Sprintf("version %d;", changes))
	})
	frames, _, open := out.take()
	if !open {
		t.Fatal("the slow browser's outbox closed, want it to hold the latest state")
	}
	var got []string
	for _, f := range frames {
		if strings.Contains(string(f), "order-c1") {
			got = append(got, string(f))
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], fmt.Sprintf("version %d;", changes)) {
		t.Errorf("the slow browser has %d messages of order c1 waiting (%q), want one: the latest", len(got), got)
	}
	if n := len(orders.readLog()); n > changes {
		t.Errorf("%d reads for %d announcements, want at most one each", n, changes)
	}
}

func TestFollowerRefreshesWhenItMayHaveMissedChanges(t *testing.T) {
	t.Parallel()
	vhost := testenv.VHost(t)
	v := startViews(t, vhost)
	orders := newFakeOrders()
	list := v.followers(t, 4, orders.follow("manager", true, ""))
	page := v.followers(t, 2, orders.follow("manager", true, "d1"))
	if got := orders.current.Load(); got != 6 {
		t.Fatalf("Current called %d times, want 6", got)
	}

	// A service that starts announces All: one read per group of browsers that follow the
	// same (the list, the page of d1), not one per browser.
	v.announce(t, view.Change{View: view.Orders, All: true})
	testenv.Eventually(t, followWait, "no refresh after an announcement of All", func() bool { return orders.current.Load() == 8 })
	for _, r := range append(list, page...) {
		testenv.Eventually(t, followWait, "a browser never got the refresh", func() bool { return r.count("event: current") == 2 })
	}

	// The broker drops the connections: the site's queue is gone with them, and what is
	// announced before it is back would be lost. When the consumer resumes, the follower
	// reads everything followed again.
	if n := testenv.DropConnections(t, vhost); n == 0 {
		t.Fatal("no connection dropped")
	}
	testenv.Eventually(t, followWait, "no refresh after the consumer resumed", func() bool { return orders.current.Load() == 10 })
	for _, r := range append(list, page...) {
		testenv.Eventually(t, followWait, "a browser never got the refresh after the resume", func() bool { return r.count("event: current") == 3 })
	}
	orders.set("d1", "after the resume")
	testenv.Eventually(t, followWait, "announcements do not reach the browsers after the resume", func() bool {
		v.announce(t, view.Change{View: view.Orders, ID: "d1", Owner: "dora"})
		return page[0].has("after the resume")
	})
}

func TestOutboxOverflow(t *testing.T) {
	t.Parallel()
	msg := func(key string) SSEMessage { return SSEMessage{Event: "feed", Key: key, HTML: templ.Raw(key)} }

	closing := NewOutbox(2, nil)
	closing.Send(t.Context(), msg("a"), msg("b"))
	closing.Send(t.Context(), msg("a")) // replaces a: still two keys
	if frames, _, open := closing.take(); !open || len(frames) != 2 {
		t.Fatalf("got %d frames, open %v; want 2 and open", len(frames), open)
	}
	closing.Send(t.Context(), msg("a"), msg("b"), msg("c"))
	if frames, _, open := closing.take(); open || len(frames) != 0 {
		t.Errorf("after an overflow without a gap message: got %d frames, open %v; want none and closed", len(frames), open)
	}

	gap := msg("missed")
	gapping := NewOutbox(2, &gap)
	gapping.Send(t.Context(), msg("a"), msg("b"), msg("c"))
	frames, _, open := gapping.take()
	if !open || len(frames) != 1 || !strings.Contains(string(frames[0]), "missed") {
		t.Errorf("after an overflow with a gap message: got %q, open %v; want only the gap message, open", frames, open)
	}

	// A later state of a row goes after the message that added the row meanwhile.
	order := NewOutbox(10, nil)
	order.Send(t.Context(), SSEMessage{Event: "order-1", HTML: templ.Raw("pending")})
	order.Send(t.Context(), SSEMessage{Event: "order-new", Key: "order-new-1", HTML: templ.Raw("row")})
	order.Send(t.Context(), SSEMessage{Event: "order-1", HTML: templ.Raw("approved")})
	frames, _, _ = order.take()
	if len(frames) != 2 || !strings.Contains(string(frames[0]), "row") || !strings.Contains(string(frames[1]), "approved") {
		t.Errorf("got %q, want the row, then the row's latest state", frames)
	}

	once := NewOutbox(10, nil)
	row := SSEMessage{Event: "order-new", Key: "order-new-1", Once: true, HTML: templ.Raw("row")}
	once.Send(t.Context(), row)
	once.take()
	once.Send(t.Context(), row)
	if frames, _, _ := once.take(); len(frames) != 0 {
		t.Errorf("a Once message was sent again: %q", frames)
	}

	first := NewOutbox(10, nil)
	first.Send(t.Context(), SSEMessage{Event: "order-3", HTML: templ.Raw("three")})
	first.Send(t.Context(), SSEMessage{Event: "order-1", HTML: templ.Raw("later")})
	first.SendFirst(t.Context(), SSEMessage{Event: "order-1", HTML: templ.Raw("earlier")}, SSEMessage{Event: "order-2", HTML: templ.Raw("two")})
	frames, _, _ = first.take()
	if len(frames) != 3 || !strings.Contains(string(frames[2]), "three") || !strings.Contains(string(frames[0]), "later") || !strings.Contains(string(frames[1]), "two") {
		t.Errorf("SendFirst: got %q, want order-1 as it was put later, then order-2, in SendFirst's order, then order-3", frames)
	}
}
