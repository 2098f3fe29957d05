package web

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// HubConfig says which events a Hub receives.
type HubConfig struct {
	// Exchange is the topic exchange of stored events (event.Exchange, "msdemo.events";
	// tests use their own).
	Exchange string
	// Keys are the routing keys (event types or patterns) to bind, e.g. "order.*",
	// "invoice.issued".
	Keys []string
}

// Hub fans the events of one per-instance queue out to the browsers of this site instance
// that follow a live view. Each replica of a site has its own queue (non-durable,
// exclusive, auto-deleted), so every replica sees every event and serves its own browsers.
//
// The queue exists only while someone listens: the first Subscribe declares, binds and
// consumes it, and IdleGrace after the last subscriber left the consumer stops and the
// broker deletes the queue. An instance that no browser watches costs the broker nothing.
//
// A subscriber whose buffer is full (a browser that does not read) misses events: a live
// view is a convenience, the pages themselves always show the current state.
//
// Its methods are safe for concurrent use; set IdleGrace before Run.
type Hub struct {
	// IdleGrace is how long the consumer keeps running after the last subscriber left
	// (default 30 s), so that a page reload or a click to the next live page does not
	// delete the queue and declare it again. A Subscribe meanwhile keeps it running.
	IdleGrace time.Duration

	logger *slog.Logger
	wake   chan struct{} // holds a value when Run's goroutine should look at subs again
	done   chan struct{} // closed when the hub has stopped

	mu   sync.Mutex
	subs map[chan event.Stored]struct{}
	// start is the consumer's current start: nil while no consumer runs and none was
	// asked for; set by Subscribe, fulfilled (or failed) by Run's goroutine.
	start *consumerStart
}

// consumerStart is one start of the hub's consumer, which subscribers wait for.
type consumerStart struct {
	ready chan struct{} // closed when the queue is consuming, or the start failed
	err   error         // why it failed; set before ready is closed
}

const (
	// subscriberBuffer is how many events a slow subscriber may lag behind.
	subscriberBuffer = 64
	// defaultIdleGrace is IdleGrace's default.
	defaultIdleGrace = 30 * time.Second
	// startTimeout bounds one start of the consumer, e.g. while the broker is down.
	startTimeout = 10 * time.Second
)

// NewHub returns a hub that delivers nothing until Run.
func NewHub(logger *slog.Logger) *Hub {
	return &Hub{logger: logger, subs: map[chan event.Stored]struct{}{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Run declares the exchange (a durable topic exchange, in case the event store has not
// yet) and returns; its error is the declaration's. Until ctx is done a goroutine then
// consumes a per-instance queue bound to cfg.Keys while the hub has subscribers (from the
// first Subscribe to IdleGrace after the last one left), and fans its events out. When
// ctx is done it stops the consumer and closes every subscription's channel; a later
// Subscribe gets a closed channel. Call Run once.
func (h *Hub) Run(ctx context.Context, conn *bus.Conn, cfg HubConfig) error {
	if err := conn.DeclareExchange(ctx, cfg.Exchange, "topic"); err != nil {
		return fmt.Errorf("declare %s: %w", cfg.Exchange, err)
	}
	go h.run(ctx, conn, bus.QueueConfig{Exchange: cfg.Exchange, Keys: cfg.Keys, Durable: false,
		Prefetch: 256, MaxAttempts: 1})
	return nil
}

// run starts the consumer when a subscriber asks for it, and stops it IdleGrace after
// the last one left, until ctx is done.
func (h *Hub) run(ctx context.Context, conn *bus.Conn, qc bus.QueueConfig) {
	grace := cmp.Or(h.IdleGrace, defaultIdleGrace)
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
		h.mu.Lock()
		defer h.mu.Unlock()
		close(h.done)
		h.start = nil
		h.closeAll()
	}()
	for {
		select {
		case <-ctx.Done():
			return

		case <-ended: // the Conn was closed under it: the streams end, browsers reconnect
			if ctx.Err() != nil {
				return
			}
			h.logger.Warn("live updates: consumer stopped; closing the live streams")
			stop()
			h.mu.Lock()
			h.start = nil
			h.closeAll()
			h.mu.Unlock()

		case <-idle.C:
			h.mu.Lock()
			unwatched := len(h.subs) == 0
			if unwatched {
				h.start = nil // a Subscribe from now on asks for a new start
			}
			h.mu.Unlock()
			if unwatched {
				stop()
			}

		case <-h.wake:
			h.mu.Lock()
			s, n := h.start, len(h.subs)
			if consumer == nil && s != nil && n == 0 {
				h.start, s = nil, nil // its subscribers left before it began
			}
			h.mu.Unlock()
			if consumer == nil && s != nil {
				var err error
				if consumer, cancel, err = h.startConsumer(ctx, conn, qc); err != nil {
					if ctx.Err() == nil {
						h.logger.Error("live updates: start consumer; closing the live streams", "error", err)
					}
					h.mu.Lock()
					h.start = nil
					h.mu.Unlock()
					s.err = err
					close(s.ready)
					continue
				}
				ended = consumer.Done
				close(s.ready)
				h.mu.Lock()
				n = len(h.subs)
				h.mu.Unlock()
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

// startConsumer declares, binds and consumes the hub's queue, waiting at most
// startTimeout. The consumer runs until ctx is done or cancel is called.
func (h *Hub) startConsumer(ctx context.Context, conn *bus.Conn, qc bus.QueueConfig) (*bus.Consumer, context.CancelFunc, error) {
	cctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(startTimeout, cancel)
	consumer, err := conn.Consume(cctx, qc, h.handle)
	if !timer.Stop() && err == nil { // timed out just as it started: cancel stops it
		<-consumer.Done
		err = context.Canceled
	}
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("consume events (waited at most %s): %w", startTimeout, err)
	}
	return consumer, cancel, nil
}

func (h *Hub) handle(ctx context.Context, d bus.Delivery) error {
	var e event.Stored
	if err := json.Unmarshal(d.Body, &e); err != nil || e.Type == "" {
		h.logger.WarnContext(ctx, "live updates: malformed event dropped", "routing_key", d.RoutingKey, "error", err)
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.logger.WarnContext(ctx, "live updates: slow browser missed an event", "event_type", e.Type, "position", e.Position)
		}
	}
	return nil
}

// Subscribe returns a channel of every event the hub receives from now on. It starts the
// hub's consumer if none runs, and returns once the queue is bound and consuming, so that
// every event published after Subscribe returned reaches the channel: read the state that
// the caller sends first (ServeSSE's initial) after Subscribe.
//
// The channel is closed when ctx is done (call it with the request's context) or the hub
// stops. It is returned closed when the consumer cannot start (the broker is down: the
// start is logged, and the browser's EventSource connects again later), when ctx ends
// before the consumer consumes, or after Run's ctx is done. Before Run, Subscribe waits
// for Run or ctx.
func (h *Hub) Subscribe(ctx context.Context) <-chan event.Stored {
	ch := make(chan event.Stored, subscriberBuffer)
	h.mu.Lock()
	select {
	case <-h.done:
		h.mu.Unlock()
		close(ch)
		return ch
	default:
	}
	h.subs[ch] = struct{}{}
	if h.start == nil {
		h.start = &consumerStart{ready: make(chan struct{})}
	}
	s := h.start
	h.signal()
	h.mu.Unlock()

	context.AfterFunc(ctx, func() { h.unsubscribe(ch) })
	select {
	case <-s.ready:
		if s.err != nil {
			h.unsubscribe(ch)
		}
	case <-ctx.Done():
		h.unsubscribe(ch)
	case <-h.done: // Run's goroutine closed ch
	}
	return ch
}

// unsubscribe removes ch and closes it, unless that was done already.
func (h *Hub) unsubscribe(ch chan event.Stored) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; !ok {
		return
	}
	delete(h.subs, ch)
	close(ch)
	if len(h.subs) == 0 {
		h.signal()
	}
}

// closeAll removes and closes every subscription. h.mu must be held.
func (h *Hub) closeAll() {
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// signal tells Run's goroutine that the subscribers changed, without waiting.
func (h *Hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}
