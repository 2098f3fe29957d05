package web

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/view"
)

// HubConfig says which events a Hub receives.
type HubConfig struct {
	// Exchange is the topic exchange of stored events (event.Exchange, "msdemo.events";
	// tests use their own). The view announcements come from the view exchange beside it
	// (view.ExchangeFor(Exchange)).
	Exchange string
	// Keys are the routing keys (event types or patterns) to bind, e.g. "order.*",
	// "invoice.issued"; none for a site that shows no raw events.
	Keys []string
}

// Hub is what pushes the bus to the browsers of this site instance that follow a live
// view. It has two per-instance queues (non-durable, exclusive, auto-deleted: every
// replica of a site sees every message and serves its own browsers):
//
//   - the stored events bound to HubConfig.Keys, for a raw event stream (Subscribe: the
//     admin's live feed);
//   - the view announcements (view.Change), for the views that the services serve and the
//     browsers follow (Follow, follow.go): the site reads a changed item once and sends it
//     to every browser that follows it.
//
// A queue exists only while someone listens: the first subscriber declares, binds and
// consumes it, and IdleGrace after the last one left the consumer stops and the broker
// deletes the queue. An instance that no browser watches costs the broker nothing.
//
// Nothing is dropped silently: a subscription is closed whenever its subscriber may have
// missed a message, so that it can say so or read the current state again (a subscriber
// that fell subscriberBuffer messages behind, a consumer that resumed after the
// connection dropped, or one that stopped).
//
// Its methods are safe for concurrent use; set IdleGrace before Run.
type Hub struct {
	// IdleGrace is how long a consumer keeps running after the last subscriber left
	// (default 30 s), so that a page reload or a click to the next live page does not
	// delete the queue and declare it again. A Subscribe meanwhile keeps it running.
	IdleGrace time.Duration

	logger   *slog.Logger
	events   *fanout[event.Stored]
	views    *fanout[view.Change]
	follower *Follower
}

const (
	// subscriberBuffer is how many messages a subscriber may lag behind before its
	// subscription is closed.
	subscriberBuffer = 64
	// defaultIdleGrace is IdleGrace's default.
	defaultIdleGrace = 30 * time.Second
	// startTimeout bounds one start of a consumer, e.g. while the broker is down.
	startTimeout = 10 * time.Second
)

// NewHub returns a hub that delivers nothing until Run.
func NewHub(logger *slog.Logger) *Hub {
	h := &Hub{logger: logger,
		events: newFanout(logger, "live updates", parseForBrowsers),
		views:  newFanout(logger, "view changes", view.Parse)}
	h.follower = newFollower(logger, h.views)
	return h
}

// parseForBrowsers decodes an event of the bus for the sites' live pages, with its secret
// fields (password hashes) redacted: what a hub hands out is bound for a browser.
func parseForBrowsers(body []byte) (event.Stored, error) {
	e, err := event.ParseStored(body)
	return event.Redact(e), err
}

// Run declares the exchanges (durable topic exchanges, in case the event store and the
// services have not yet) and returns; its error is a declaration's. Until ctx is done
// goroutines then consume the hub's queues while they have subscribers, and fan their
// messages out. When ctx is done they stop the consumers and close every subscription; a
// later Subscribe or Follow gets a closed one. Call Run once.
func (h *Hub) Run(ctx context.Context, conn *bus.Conn, cfg HubConfig) error {
	views := view.ExchangeFor(cfg.Exchange)
	for _, name := range []string{cfg.Exchange, views} {
		if err := conn.DeclareExchange(ctx, name, "topic"); err != nil {
			return fmt.Errorf("declare %s: %w", name, err)
		}
	}
	grace := cmp.Or(h.IdleGrace, defaultIdleGrace)
	go h.events.run(ctx, conn, bus.QueueConfig{Exchange: cfg.Exchange, Keys: cfg.Keys, Durable: false,
		Prefetch: 256, MaxAttempts: 1}, grace)
	go h.views.run(ctx, conn, bus.QueueConfig{Exchange: views, Keys: []string{"#"}, Durable: false,
		Prefetch: 256, MaxAttempts: 1}, grace)
	go h.follower.run(ctx)
	return nil
}

// Subscribe returns a channel of every stored event the hub receives from now on. It
// starts the event consumer if none runs, and returns once the queue is bound and
// consuming, so that every event published after Subscribe returned reaches the channel:
// read the state that the caller shows first after Subscribe.
//
// The channel is closed when ctx is done (call it with the request's context), and
// whenever the subscriber may have missed an event: it fell subscriberBuffer events
// behind, the consumer resumed after its connection dropped, or it stopped (the hub
// stopped, the Conn was closed). It is returned closed when the consumer cannot start
// (the broker is down: the start is logged, and the browser's EventSource connects again
// later), when ctx ends before the consumer consumes, or after Run's ctx is done. Before
// Run, Subscribe waits for Run or ctx.
func (h *Hub) Subscribe(ctx context.Context) <-chan event.Stored {
	ch, _ := h.events.subscribe(ctx)
	return ch
}

// Follow registers a browser's stream that follows spec, and returns the stream's Outbox
// (ServeSSE sends it), with spec's current state in it: Follower.Follow.
func (h *Hub) Follow(ctx context.Context, spec Follow) *Outbox {
	return h.follower.Follow(ctx, spec)
}

// fanout hands the messages of one lazily consumed per-instance queue to its subscribers.
type fanout[T any] struct {
	logger *slog.Logger
	what   string // in logs: "live updates"
	decode func(body []byte) (T, error)
	wake   chan struct{} // holds a value when run's goroutine should look at subs again
	done   chan struct{} // closed when the fanout has stopped

	mu   sync.Mutex
	subs map[chan T]func() bool // subscription → stops its context.AfterFunc
	// start is the consumer's current start: nil while no consumer runs and none was
	// asked for; set by subscribe, fulfilled (or failed) by run's goroutine.
	start *consumerStart
}

// consumerStart is one start of a consumer, which subscribers wait for.
type consumerStart struct {
	ready chan struct{} // closed when the queue is consuming, or the start failed
	err   error         // why it failed; set before ready is closed
}

func newFanout[T any](logger *slog.Logger, what string, decode func([]byte) (T, error)) *fanout[T] {
	return &fanout[T]{logger: logger, what: what, decode: decode, subs: map[chan T]func() bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// run starts the consumer of qc when a subscriber asks for it, and stops it grace after
// the last one left, until ctx is done.
func (f *fanout[T]) run(ctx context.Context, conn *bus.Conn, qc bus.QueueConfig, grace time.Duration) {
	qc.Resumed = f.resumed
	idle := time.NewTimer(grace)
	idle.Stop()
	var (
		consumer *bus.Consumer // nil while stopped
		cancel   context.CancelFunc
		ended    <-chan struct{} // consumer.Done; nil while stopped
	)
	stop := func() {
		idle.Stop()
		if consumer != nil {
			cancel()
			<-consumer.Done
			consumer, cancel, ended = nil, nil, nil
		}
	}
	defer func() {
		stop()
		f.mu.Lock()
		defer f.mu.Unlock()
		close(f.done)
		f.start = nil
		f.closeAll()
	}()
	for {
		select {
		case <-ctx.Done():
			return

		case <-ended: // the Conn was closed under it: the subscriptions end
			if ctx.Err() != nil {
				return
			}
			f.logger.Warn(f.what + ": consumer stopped; closing the subscriptions")
			stop()
			f.mu.Lock()
			f.start = nil
			f.closeAll()
			f.mu.Unlock()

		case <-idle.C:
			f.mu.Lock()
			unwatched := len(f.subs) == 0
			if unwatched {
				f.start = nil // a subscribe from now on asks for a new start
			}
			f.mu.Unlock()
			if unwatched {
				stop()
			}

		case <-f.wake:
			f.mu.Lock()
			s, n := f.start, len(f.subs)
			if consumer == nil && s != nil && n == 0 {
				f.start, s = nil, nil // its subscribers left before it began
			}
			f.mu.Unlock()
			if consumer == nil && s != nil {
				var err error
				if consumer, cancel, err = f.startConsumer(ctx, conn, qc); err != nil {
					if ctx.Err() == nil {
						f.logger.Error(f.what+": start consumer; closing the subscriptions", "error", err)
					}
					f.mu.Lock()
					f.start = nil
					f.mu.Unlock()
					s.err = err
					close(s.ready)
					continue
				}
				ended = consumer.Done
				close(s.ready)
				f.mu.Lock()
				n = len(f.subs)
				f.mu.Unlock()
			}
			if consumer != nil {
				if n == 0 {
					idle.Reset(grace)
				} else {
					idle.Stop()
				}
			}
		}
	}
}

// startConsumer declares, binds and consumes the queue, waiting at most startTimeout. The
// consumer runs until ctx is done or cancel is called.
func (f *fanout[T]) startConsumer(ctx context.Context, conn *bus.Conn, qc bus.QueueConfig) (*bus.Consumer, context.CancelFunc, error) {
	cctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(startTimeout, cancel)
	consumer, err := conn.Consume(cctx, qc, f.handle)
	if !timer.Stop() && err == nil { // timed out just as it started: cancel stops it
		<-consumer.Done
		err = context.Canceled
	}
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("consume %s (waited at most %s): %w", qc.Exchange, startTimeout, err)
	}
	return consumer, cancel, nil
}

func (f *fanout[T]) handle(ctx context.Context, d bus.Delivery) error {
	m, err := f.decode(d.Body)
	if err != nil {
		f.logger.WarnContext(ctx, f.what+": malformed message dropped", "routing_key", d.RoutingKey, "error", err)
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- m:
		default: // it would miss this one: end its subscription, so that it knows
			f.logger.WarnContext(ctx, f.what+": a subscriber fell behind; closing its subscription", "routing_key", d.RoutingKey)
			f.dropLocked(ch)
		}
	}
	return nil
}

// resumed is called by the consumer when it consumes again after a dropped connection:
// what was published meanwhile never reached the queue, so every subscription ends.
func (f *fanout[T]) resumed() {
	f.logger.Warn(f.what + ": consumer resumed after a lost connection; closing the subscriptions, which may have missed messages")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeAll()
}

// subscribe is Hub.Subscribe for this fanout; ok reports whether the channel was open
// when it returned (the consumer consumes).
func (f *fanout[T]) subscribe(ctx context.Context) (_ <-chan T, ok bool) {
	ch := make(chan T, subscriberBuffer)
	f.mu.Lock()
	select {
	case <-f.done:
		f.mu.Unlock()
		close(ch)
		return ch, false
	default:
	}
	// Registered under f.mu, so that whoever closes ch also stops this: a subscription
	// that ends before its ctx leaves nothing behind on ctx.
	f.subs[ch] = context.AfterFunc(ctx, func() { f.unsubscribe(ch) })
	if f.start == nil {
		f.start = &consumerStart{ready: make(chan struct{})}
	}
	s := f.start
	f.signal()
	f.mu.Unlock()

	select {
	case <-s.ready:
		if s.err != nil {
			f.unsubscribe(ch)
			return ch, false
		}
		return ch, true
	case <-ctx.Done():
		f.unsubscribe(ch)
	case <-f.done: // run's goroutine closed ch
	}
	return ch, false
}

// unsubscribe removes ch and closes it, unless that was done already.
func (f *fanout[T]) unsubscribe(ch chan T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[ch]; !ok {
		return
	}
	f.dropLocked(ch)
	if len(f.subs) == 0 {
		f.signal()
	}
}

// closeAll removes and closes every subscription. f.mu must be held.
func (f *fanout[T]) closeAll() {
	for ch := range f.subs {
		f.dropLocked(ch)
	}
	f.signal() // no subscribers: the idle grace begins
}

// dropLocked removes the subscription ch, stops its AfterFunc and closes ch. f.mu must be
// held, and ch must be in f.subs.
func (f *fanout[T]) dropLocked(ch chan T) {
	f.subs[ch]()
	delete(f.subs, ch)
	close(ch)
}

// signal tells run's goroutine that the subscribers changed, without waiting.
func (f *fanout[T]) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}
