package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

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

// Hub fans the events of one per-instance queue out to every connected browser of this
// site instance. Each replica of a site has its own queue (non-durable, exclusive,
// auto-deleted), so every replica sees every event and serves its own browsers.
//
// A subscriber whose buffer is full (a browser that does not read) misses events: a live
// view is a convenience, the pages themselves always show the current state.
type Hub struct {
	logger *slog.Logger
	mu     sync.Mutex
	subs   map[chan event.Stored]struct{}
	done   chan struct{} // closed when Run ends
}

// subscriberBuffer is how many events a slow subscriber may lag behind.
const subscriberBuffer = 64

// NewHub returns a hub that delivers nothing until Run.
func NewHub(logger *slog.Logger) *Hub {
	return &Hub{logger: logger, subs: map[chan event.Stored]struct{}{}, done: make(chan struct{})}
}

// Run declares the exchange (a durable topic exchange, in case the event store has not
// yet), binds a per-instance queue to cfg.Keys and fans its events out until ctx is done.
// It returns once the queue is consuming; then it keeps delivering until ctx is done,
// after which every subscription's channel is closed.
func (h *Hub) Run(ctx context.Context, conn *bus.Conn, cfg HubConfig) error {
	if err := conn.DeclareExchange(ctx, cfg.Exchange, "topic"); err != nil {
		return fmt.Errorf("declare %s: %w", cfg.Exchange, err)
	}
	consumer, err := conn.Consume(ctx, bus.QueueConfig{Exchange: cfg.Exchange, Keys: cfg.Keys, Durable: false,
		Prefetch: 256, MaxAttempts: 1}, h.handle)
	if err != nil {
		return fmt.Errorf("consume events for live updates: %w", err)
	}
	go func() {
		<-consumer.Done
		h.mu.Lock()
		defer h.mu.Unlock()
		close(h.done)
		for ch := range h.subs {
			close(ch)
			delete(h.subs, ch)
		}
	}()
	return nil
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

// Subscribe returns a channel of every event the hub receives from now on. The channel
// is closed when ctx is done (call it with the request's context) or the hub stops.
func (h *Hub) Subscribe(ctx context.Context) <-chan event.Stored {
	ch := make(chan event.Stored, subscriberBuffer)
	h.mu.Lock()
	select {
	case <-h.done:
		close(ch)
		h.mu.Unlock()
		return ch
	default:
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-h.done:
			return // Run's goroutine closes ch
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}()
	return ch
}
