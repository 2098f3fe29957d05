package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

const publishBatch = 500

// publisher publishes every stored event, in position order, to the events exchange, and
// records how far it got, so that after a crash it publishes again from there (consumers
// deduplicate by event id).
type publisher struct {
	store    *Store
	bus      *bus.Conn
	exchange string
	// published is the last position the broker confirmed.
	published atomic.Int64
}

func (p *publisher) run(ctx context.Context) error {
	from, err := p.store.db.published(ctx)
	if err != nil {
		return fmt.Errorf("read published position: %w", err)
	}
	if head := p.store.Head(); from > head {
		// The published mark is ahead of the data (a restored backup): publish again
		// from the data's end rather than skip what will be appended.
		from = head
	}
	p.published.Store(from)
	backoff := 100 * time.Millisecond
	for {
		p.store.mu.RLock()
		head, committed := p.store.idx.head, p.store.committed
		p.store.mu.RUnlock()
		if head <= from {
			select {
			case <-ctx.Done():
				return nil
			case <-committed:
				continue
			}
		}
		page, err := p.store.Feed(ctx, from, publishBatch, nil)
		if err == nil {
			err = p.bus.PublishBatch(ctx, p.exchange, messages(p.store.ID(), page.Events))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.store.logger.Error("publish events", "after", from, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		from = page.NextAfter
		p.published.Store(from)
		if err := p.store.db.setPublished(ctx, from); err != nil && ctx.Err() == nil {
			// Not fatal: after a restart the events since the last recorded mark are
			// published again, and consumers skip them.
			p.store.logger.Warn("record published position", "position", from, "error", err)
		}
	}
}

// messages turns stored events into bus messages: routing key = type, message_id = id.
func messages(storeID string, events []event.Stored) []bus.Routed {
	msgs := make([]bus.Routed, len(events))
	for i, e := range events {
		body, _ := json.Marshal(e) // a Stored always marshals: its Data is valid JSON
		msgs[i] = bus.Routed{Key: e.Type, Message: bus.Message{ID: e.ID, Type: e.Type, Body: body,
			Headers: map[string]any{"position": strconv.FormatInt(e.Position, 10), "stream": e.Stream, "store_id": storeID}}}
	}
	return msgs
}
