package eventclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// StoreIDHeader carries the id of the store that published an event.
const StoreIDHeader = "store_id"

const feedPageSize = 500

// ReadModel is what a subscription keeps up to date: a service's own view of the events.
type ReadModel interface {
	// Checkpoint returns the id of the store the read model follows and the position of
	// the last event it applied ("" and 0 when it is empty).
	Checkpoint(ctx context.Context) (storeID string, position int64, err error)
	// Apply applies e and records (storeID, e.Position) as the checkpoint in the same
	// transaction. It must be idempotent: an event it applied before (known by its id or
	// its stream version) changes nothing, because the bus delivers at least once.
	Apply(ctx context.Context, storeID string, e event.Stored) error
	// Reset empties the read model, which from now on follows storeID from position 0.
	// It is called when the store's id is not the one the checkpoint belongs to (the
	// event store's data was replaced).
	Reset(ctx context.Context, storeID string) error
}

// Subscription says which events a read model needs.
type Subscription struct {
	// Name names the durable queue "<Name>.events" (one per service, shared by its
	// replicas, single active consumer so events are applied in order) and its dead-letter
	// queue "<Name>.events.dead".
	Name string
	// Types are event types or patterns, as in AMQP topic bindings ("product.*",
	// "order.#"; see event.TypeMatches); none means every type.
	Types []string
	// CaughtUp, if not nil, is closed once the read model has caught up with the store.
	CaughtUp chan struct{}
	// Progress, if not nil, is advanced as events are applied (read-your-writes).
	Progress *Progress
	// PerInstance is for a read model that each replica keeps for itself (the product
	// service's SQLite file): the instance follows the events through a queue of its own
	// (exclusive, gone with its connection) instead of the shared one, catches up from its
	// checkpoint through the feed again whenever that queue was declared anew (what was
	// published meanwhile never reached it), and sends its dead letters to the shared
	// "<Name>.events.dead". Every replica then applies every event; what Apply appends
	// must be the same whichever replica appends it (ids made from the event it answers),
	// so that the event store keeps it once.
	PerInstance bool
}

// Subscribe keeps rm up to date until ctx is done: it binds the service's queue first, so
// that nothing published from then on is missed, then reads the feed from rm's checkpoint
// to the store's head, and then applies the queued and live events, skipping those the
// feed already gave. An event whose Apply keeps failing ends in the dead-letter queue
// after the bus's retries; the events after it are applied (a read model that cannot skip
// one must fail it permanently and stop, which the service's health shows). With
// WithMetrics, it keeps msdemo_subscription_position and _lag_events up to date (measure).
func (c *Client) Subscribe(ctx context.Context, sub Subscription, rm ReadModel, logger *slog.Logger) error {
	s := &subscriber{client: c, sub: sub, rm: rm, logger: logger, caughtUp: make(chan struct{})}
	// The event store declares the exchange too; whoever starts first creates it.
	if err := c.bus.DeclareExchange(ctx, c.exchange, "topic"); err != nil {
		return fmt.Errorf("subscribe %s: declare exchange %s: %w", sub.Name, c.exchange, err)
	}
	keys := sub.Types
	if len(keys) == 0 {
		keys = []string{"#"} // every type, as the feed gives without a filter
	}
	queue := bus.QueueConfig{Name: event.Queue(sub.Name), Exchange: c.exchange,
		Keys: keys, Durable: true, SingleActive: true, DeadLetter: true, Prefetch: 256}
	if sub.PerInstance {
		queue.Name, queue.Durable, queue.SingleActive = "", false, false
		queue.DeadLetterTo = event.Queue(sub.Name)
		queue.Resumed = func() { s.resumed(ctx) }
	}
	consumer, err := c.bus.Consume(ctx, queue, s.handleLive)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", sub.Name, err)
	}
	if sub.PerInstance {
		// The shared queue of an earlier version of the service, bound to the exchange,
		// would keep every event for no one: it goes once nothing consumes it.
		if err := c.bus.DeleteUnusedQueue(ctx, event.Queue(sub.Name)); err != nil && !errors.Is(err, bus.ErrQueueInUse) {
			logger.Warn("delete the unused shared queue", "queue", event.Queue(sub.Name), "error", err)
		}
	}
	if err := s.catchUp(ctx, false); err != nil {
		<-consumer.Done
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	close(s.caughtUp)
	if sub.CaughtUp != nil {
		close(sub.CaughtUp)
	}
	var measuring sync.WaitGroup
	if c.metrics != nil {
		measuring.Go(func() { s.measure(ctx, consumer.Done) })
	}
	<-consumer.Done
	measuring.Wait()
	return nil
}

// measureEvery is how often a subscription with metrics asks the store how far behind it
// is.
const measureEvery = 2 * time.Second

// measure sets the subscription's gauges (catch-up sets them for each page it reads)
// every measureEvery until done is closed: the
// position is the checkpoint, and the lag is the store's head minus the position up to
// which every event the subscription follows was applied. That position is read from the
// feed (the first matching event after the checkpoint, if any, else as far as the read
// looked), because a subscription to a few types does not see the events between them,
// and its checkpoint alone would show it behind when it is not.
func (s *subscriber) measure(ctx context.Context, done <-chan struct{}) {
	tick := time.NewTicker(measureEvery)
	defer tick.Stop()
	for {
		applied := s.position.Load()
		if page, err := s.client.Feed(ctx, applied, 1, s.sub.Types); err == nil {
			complete := page.NextAfter
			if len(page.Events) > 0 {
				complete = page.Events[0].Position - 1
			}
			s.client.metrics.Subscription(applied, page.Head-complete)
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

type subscriber struct {
	client   *Client
	sub      Subscription
	rm       ReadModel
	logger   *slog.Logger
	caughtUp chan struct{}
	// storeID and applied are the store followed and the position up to which every
	// matching event was applied. The live handler runs only after catch-up and one
	// delivery at a time, so they need no lock.
	storeID string
	applied int64
	// position is applied, for measure's goroutine.
	position atomic.Int64
}

// catchUp applies the feed from the checkpoint to the head. It retries while the event
// store cannot be reached, until ctx is done. fromZero starts over for a new store.
func (s *subscriber) catchUp(ctx context.Context, fromZero bool) error {
	storeID, after, err := s.rm.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("read checkpoint of %s: %w", s.sub.Name, err)
	}
	if fromZero {
		after = 0
	}
	pauses := bus.NewBackoff(100*time.Millisecond, 5*time.Second)
	for {
		page, err := s.client.Feed(ctx, after, feedPageSize, s.sub.Types)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.logger.Warn("catch up: event store not reachable yet", "subscription", s.sub.Name, "error", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pauses.NextBackOff()):
			}
			continue
		}
		if page.StoreID != storeID && (storeID != "" || after > 0) {
			s.logger.Warn("read model follows another event store: rebuilding it",
				"subscription", s.sub.Name, "checkpoint_store_id", storeID, "store_id", page.StoreID)
			if err := s.rm.Reset(ctx, page.StoreID); err != nil {
				return fmt.Errorf("reset %s: %w", s.sub.Name, err)
			}
			storeID, after = page.StoreID, 0
			continue
		}
		storeID = page.StoreID
		for _, e := range page.Events {
			if err := s.applyFromFeed(ctx, storeID, e); err != nil {
				return err
			}
		}
		after = page.NextAfter
		s.position.Store(after)
		s.client.metrics.Subscription(after, page.Head-after)
		if s.sub.Progress != nil {
			s.sub.Progress.Advance(after)
		}
		if after >= page.Head {
			s.storeID, s.applied = storeID, after
			return nil
		}
	}
}

// applyFromFeed applies an event read from the feed as the bus would deliver it: a failure
// is tried again with backoff (the read model's database may be down for a moment), and an
// event that fails permanently (bus.ErrPermanent) goes to the subscription's dead-letter
// queue, where managers see it and can replay it, while catch-up goes on.
//
// The event's trace (its metadata's traceparent) is ctx's remote parent, without a span
// of its own (a catch-up may replay thousands): what Apply appends joins that trace.
func (s *subscriber) applyFromFeed(ctx context.Context, storeID string, e event.Stored) error {
	ctx = telemetry.WithTraceParent(ctx, e.Metadata.TraceParent)
	pauses := bus.NewBackoff(100*time.Millisecond, 5*time.Second)
	for {
		err := s.rm.Apply(ctx, storeID, e)
		if err == nil {
			return nil
		}
		if errors.Is(err, bus.ErrPermanent) {
			s.logger.Error("catch up: event dead-lettered", "subscription", s.sub.Name,
				"type", e.Type, "position", e.Position, "error", err)
			body, _ := json.Marshal(e)
			queue := event.Queue(s.sub.Name)
			return s.client.bus.Publish(ctx, bus.DeadExchange, queue, bus.Message{ID: e.ID, Type: e.Type, Body: body,
				Headers: map[string]any{StoreIDHeader: storeID, "x-msdemo-error": err.Error()}})
		}
		s.logger.Warn("catch up: apply failed, trying again", "subscription", s.sub.Name,
			"type", e.Type, "position", e.Position, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pauses.NextBackOff()):
		}
	}
}

// resumed catches up from the checkpoint again after a per-instance queue was declared
// anew (the bus calls it before the new queue's first delivery, never beside handleLive).
// Before the first catch-up is done it does nothing: that one reads past the new queue's
// start.
func (s *subscriber) resumed(ctx context.Context) {
	select {
	case <-s.caughtUp:
	default:
		return
	}
	if err := s.catchUp(ctx, false); err != nil && ctx.Err() == nil {
		s.logger.Error("catch up after the queue was declared anew", "subscription", s.sub.Name, "error", err)
	}
}

// handleLive applies one event from the queue once catch-up is done.
func (s *subscriber) handleLive(ctx context.Context, d bus.Delivery) error {
	select {
	case <-s.caughtUp:
	case <-ctx.Done():
		return ctx.Err()
	}
	e, err := event.ParseStored(d.Body)
	if err != nil {
		return fmt.Errorf("decode event %s: %v: %w", d.ID, err, bus.ErrPermanent)
	}
	if id, _ := d.Headers[StoreIDHeader].(string); id != "" && id != s.storeID {
		// The store was replaced: start over from its position 0, which covers this event.
		if err := s.rm.Reset(ctx, id); err != nil {
			return fmt.Errorf("reset %s: %w", s.sub.Name, err)
		}
		return s.catchUp(ctx, true)
	}
	// A dead letter replayed may be behind the checkpoint; Apply's idempotency decides.
	_, replay := d.Headers[bus.ReplayHeader]
	if e.Position <= s.applied && !replay {
		return nil // the feed gave it already, or it was published again after a crash
	}
	if err := s.rm.Apply(ctx, s.storeID, e); err != nil {
		return fmt.Errorf("apply %s (position %d) to %s: %w", e.Type, e.Position, s.sub.Name, err)
	}
	s.applied = max(s.applied, e.Position)
	s.position.Store(s.applied)
	if s.sub.Progress != nil {
		s.sub.Progress.Advance(s.applied)
	}
	return nil
}
