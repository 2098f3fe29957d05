package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web"
)

// wait bounds how long a test waits for something the broker does.
const wait = 10 * time.Second

func TestHubConsumesOnlyWhileSubscribed(t *testing.T) {
	t.Parallel()
	h := startHub(t, 50*time.Millisecond)

	if h.routed(t) {
		t.Fatal("an event was routed to a queue before anyone subscribed, want no queue bound")
	}

	ctx, leave := context.WithCancel(t.Context())
	events := subscribe(t, ctx, h.Hub)
	id := h.publish(t) // no wait: Subscribe returned once the queue consumes
	receive(t, events, id)
	if !h.routed(t) {
		t.Fatal("no queue bound while a browser is subscribed")
	}

	leave()
	drain(t, events)
	testenv.Eventually(t, wait, "queue still bound after the idle grace with no subscribers", func() bool {
		return !h.routed(t)
	})

	events = subscribe(t, t.Context(), h.Hub)
	receive(t, events, h.publish(t))
}

func TestHubKeepsConsumingDuringGrace(t *testing.T) {
	t.Parallel()
	h := startHub(t, time.Hour)

	ctx, leave := context.WithCancel(t.Context())
	drainAfter(t, subscribe(t, ctx, h.Hub), leave)
	if !h.routed(t) {
		t.Fatal("queue unbound within the idle grace, want it kept for the next subscriber")
	}
	events := subscribe(t, t.Context(), h.Hub)
	receive(t, events, h.publish(t))
}

func TestHubSubscriberInGraceCancelsStop(t *testing.T) {
	t.Parallel()
	const grace = 200 * time.Millisecond
	h := startHub(t, grace)

	ctx, leave := context.WithCancel(t.Context())
	drainAfter(t, subscribe(t, ctx, h.Hub), leave)
	events := subscribe(t, t.Context(), h.Hub)
	time.Sleep(3 * grace) // past the grace that began when the first subscriber left
	if !h.routed(t) {
		t.Fatal("queue unbound although a subscriber came back within the grace")
	}
	receive(t, events, h.publish(t))
}

func TestHubRunEndClosesSubscriptions(t *testing.T) {
	t.Parallel()
	h := startHub(t, time.Hour)

	a, b := subscribe(t, t.Context(), h.Hub), subscribe(t, t.Context(), h.Hub)
	h.stop()
	drain(t, a)
	drain(t, b)
	assertClosed(t, subscribe(t, t.Context(), h.Hub), "Subscribe after Run's ctx ended")
	testenv.Eventually(t, wait, "queue still bound after Run's ctx ended", func() bool { return !h.routed(t) })
}

func TestHubConnClosedEndsSubscriptions(t *testing.T) {
	t.Parallel()
	h := startHub(t, time.Hour)

	events := subscribe(t, t.Context(), h.Hub)
	h.conn.Close() // the consumer ends under the hub, which closes the streams
	drain(t, events)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	assertClosed(t, subscribe(t, ctx, h.Hub), "Subscribe after the Conn was closed")
	if ctx.Err() != nil {
		t.Fatalf("Subscribe returned only when its ctx ended (%v), want at the failed start", ctx.Err())
	}
}

func TestHubSubscribeWhenConsumerCannotStart(t *testing.T) {
	t.Parallel()
	h := startHub(t, time.Hour)
	h.conn.Close() // as good as a broker that is gone: Consume fails

	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	events := subscribe(t, ctx, h.Hub)
	if ctx.Err() != nil {
		t.Fatalf("Subscribe returned only when its ctx ended (%v), want at the failed start", ctx.Err())
	}
	assertClosed(t, events, "Subscribe with a consumer that cannot start")
}

func TestHubSubscribeEndsWithCtx(t *testing.T) {
	t.Parallel()
	hub := web.NewHub(testenv.Logger(t)) // never Run: the consumer never starts
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	assertClosed(t, subscribe(t, ctx, hub), "Subscribe whose ctx ended before the consumer started")
}

// TestHubConcurrentSubscribers subscribes and leaves from many goroutines while the
// consumer starts and stops (a short grace), for the race detector; then one more
// subscriber must still get what is published.
func TestHubConcurrentSubscribers(t *testing.T) {
	t.Parallel()
	h := startHub(t, 5*time.Millisecond)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				ctx, leave := context.WithTimeout(t.Context(), wait)
				events := h.Hub.Subscribe(ctx)
				time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
				leave()
				for range events { // published events, until closed
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := h.tryPublish(t.Context()); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	wg.Wait()
	receive(t, subscribe(t, t.Context(), h.Hub), h.publish(t))
}

// testHub is a running Hub on an exchange of the test's own.
type testHub struct {
	*web.Hub
	conn     *bus.Conn
	exchange string
	stop     context.CancelFunc // ends Run's ctx
	probe    *amqp.Channel      // publishes mandatory messages, in confirm mode
	returns  chan amqp.Return
}

// startHub runs a Hub with idle grace for events "order.*" and "customer.*" on an exchange
// of t's own.
func startHub(t *testing.T, grace time.Duration) *testHub {
	t.Helper()
	conn := testenv.Bus(t)
	h := &testHub{Hub: web.NewHub(testenv.Logger(t)), conn: conn, exchange: testenv.Name(t),
		returns: make(chan amqp.Return, 1)}
	h.IdleGrace = grace
	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	t.Cleanup(stop)
	if err := h.Run(ctx, conn, web.HubConfig{Exchange: h.exchange, Keys: []string{"order.*", "customer.*"}}); err != nil {
		t.Fatal(err)
	}
	a, err := amqp.Dial(testenv.RabbitMQURL())
	if err != nil {
		t.Fatalf("RabbitMQ not reachable at RABBITMQ_URL (start it with `rabbitmq-server -detached`): %v", err)
	}
	t.Cleanup(func() { a.Close() })
	if h.probe, err = a.Channel(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.probe.ExchangeDelete(h.exchange, false, false); err != nil {
			t.Logf("cleanup: delete exchange: %v", err)
		}
	})
	if err := h.probe.Confirm(false); err != nil {
		t.Fatal(err)
	}
	h.probe.NotifyReturn(h.returns)
	return h
}

// routed reports whether a queue is bound to the hub's exchange for "order.probed": it
// publishes a mandatory message, which the broker returns before its confirm when no
// queue takes it. A routed probe reaches the hub as an event of type "order.probed".
func (h *testHub) routed(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	body, _ := json.Marshal(event.Stored{ID: "probe", Stream: "order-probe", Version: 1, Position: 1, Type: "order.probed", Data: json.RawMessage(`{}`)})
	confirm, err := h.probe.PublishWithDeferredConfirmWithContext(ctx, h.exchange, "order.probed", true, false,
		amqp.Publishing{ContentType: "application/json", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("probe not confirmed: ok %v, error %v", ok, err)
	}
	select {
	case <-h.returns: // dispatched before the confirm
		return false
	default:
		return true
	}
}

// publish publishes an "order.placed" event to the hub's exchange and returns its id.
func (h *testHub) publish(t *testing.T) string {
	t.Helper()
	id, err := h.tryPublish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// tryPublish is publish for other goroutines than the test's.
func (h *testHub) tryPublish(ctx context.Context) (string, error) {
	e := event.Stored{ID: fmt.Sprintf("e-%d", rand.Int64()), Stream: "order-1", Version: 1, Position: 1,
		Type: "order.placed", Data: json.RawMessage(`{}`), RecordedAt: time.Now()}
	body, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return e.ID, h.conn.Publish(ctx, h.exchange, e.Type, bus.Message{ID: e.ID, Type: e.Type, Body: body, Transient: true})
}

// TestHubRedactsPasswordHashes: what the hub hands to the live pages, bound for a
// browser, never carries a password hash, though the bus does.
func TestHubRedactsPasswordHashes(t *testing.T) {
	t.Parallel()
	h := startHub(t, time.Hour)
	events := subscribe(t, t.Context(), h.Hub)
	hash := "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
	e := event.Stored{ID: fmt.Sprintf("e-%d", rand.Int64()), Stream: "customer-ann", Version: 1, Position: 1,
		Type: event.CustomerRegistered, RecordedAt: time.Now(),
		Data: json.RawMessage(`{"username":"ann","password_hash":"` + hash + `"}`)}
	body, _ := json.Marshal(e)
	if err := h.conn.Publish(t.Context(), h.exchange, e.Type, bus.Message{ID: e.ID, Type: e.Type, Body: body, Transient: true}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(wait)
	for {
		select {
		case got, ok := <-events:
			if !ok {
				t.Fatal("subscription closed before the event came")
			}
			if got.ID != e.ID {
				continue
			}
			if strings.Contains(string(got.Data), hash) || !strings.Contains(string(got.Data), event.Redacted) {
				t.Fatalf("the hub handed out %s, want its password hash redacted", got.Data)
			}
			return
		case <-timeout:
			t.Fatalf("event %s did not come within %s", e.ID, wait)
		}
	}
}

// subscribe calls hub.Subscribe(ctx), failing t if it does not return within wait.
func subscribe(t *testing.T, ctx context.Context, hub *web.Hub) <-chan event.Stored {
	t.Helper()
	got := make(chan (<-chan event.Stored), 1)
	go func() { got <- hub.Subscribe(ctx) }()
	select {
	case events := <-got:
		return events
	case <-time.After(wait):
		t.Fatalf("Subscribe did not return within %s", wait)
		return nil
	}
}

// receive reads events until the one with id, failing if events closes or it does not
// come.
func receive(t *testing.T, events <-chan event.Stored, id string) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("subscription closed before event %s came", id)
			}
			if e.ID == id {
				return
			}
		case <-timeout:
			t.Fatalf("event %s published after Subscribe returned did not come within %s", id, wait)
		}
	}
}

// drain reads events until the channel is closed, failing if it is not.
func drain(t *testing.T, events <-chan event.Stored) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("subscription not closed within %s", wait)
		}
	}
}

// drainAfter calls leave and drains events.
func drainAfter(t *testing.T, events <-chan event.Stored, leave context.CancelFunc) {
	t.Helper()
	leave()
	drain(t, events)
}

// assertClosed fails unless events is closed now.
func assertClosed(t *testing.T, events <-chan event.Stored, what string) {
	t.Helper()
	select {
	case _, ok := <-events:
		if ok {
			t.Errorf("%s: got an event, want a closed channel", what)
		}
	default:
		t.Errorf("%s: channel open, want it closed", what)
	}
}
