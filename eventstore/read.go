package eventstore

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/msdemo/msdemo/internal/event"
)

// maxScanChunks bounds how many chunks one filtered read looks through, so that a read for
// rare event types answers quickly and says where to go on (FeedPage.NextAfter).
const maxScanChunks = 64

// FeedPage is a page of the global feed.
type FeedPage struct {
	Events []event.Stored
	// NextAfter is the position to ask after for the next page: the last position this
	// read looked at, which is past the last returned event when a filter skipped some.
	NextAfter int64
	// Head is the last committed position when the read started.
	Head int64
}

// Feed returns up to limit events after position after, in position order, whose types
// match one of types (event.TypeMatches; none: all).
func (s *Store) Feed(ctx context.Context, after int64, limit int, types []string) (FeedPage, error) {
	if err := s.readFresh(ctx); err != nil {
		return FeedPage{}, err
	}
	s.mu.RLock()
	x := s.idx
	s.mu.RUnlock() // x.tail, x.chunked and x.head are never changed in place
	page := FeedPage{Head: x.head, NextAfter: after}
	scanned := 0
	for p := after + 1; p <= x.head && len(page.Events) < limit; {
		var run []event.Stored
		if p <= x.chunked {
			if scanned == maxScanChunks {
				break
			}
			scanned++
			chunk, err := s.chunk(ctx, chunkOf(p))
			if err != nil {
				return page, err
			}
			run = chunk[(p-1)%chunkSize:]
		} else {
			run = x.tail[p-x.chunked-1:]
		}
		for _, e := range run {
			if len(page.Events) == limit {
				break
			}
			if event.TypeMatches(types, e.Type) {
				page.Events = append(page.Events, e)
			}
			page.NextAfter = e.Position
			p = e.Position + 1
		}
	}
	return page, nil
}

// Stream returns every event of stream in version order; found is false for an unknown
// stream. Full pages that the stream indexer has written come from the pages, the rest
// (the last, partial page, or pages not yet written) from the chunks and the tail.
func (s *Store) Stream(ctx context.Context, stream string) (events []event.Stored, found bool, err error) {
	if err := s.readFresh(ctx); err != nil {
		return nil, false, err
	}
	s.mu.RLock()
	x := s.idx
	s.mu.RUnlock()
	positions, err := s.positionsOf(ctx, x, stream, 1, -1)
	if err != nil {
		return nil, false, err
	}
	if len(positions) == 0 {
		return nil, false, nil
	}
	last := int64(len(positions))
	indexed := s.indexer.done.Load()
	events = make([]event.Stored, 0, len(positions))
	for v := int64(1); v <= last; {
		if end := v + streamPageSize - 1; (v-1)%streamPageSize == 0 && end <= last && positions[end-1] <= indexed {
			page, found, err := s.db.page(ctx, stream, (v-1)/streamPageSize)
			if err != nil {
				return nil, true, fmt.Errorf("read page of %s: %w", stream, err)
			}
			if found && len(page) == streamPageSize && page[0].Version == v {
				events = append(events, page...)
				v = end + 1
				continue
			}
		}
		e, err := s.eventAt(ctx, x, positions[v-1])
		if err != nil {
			return nil, true, err
		}
		events = append(events, e)
		v++
	}
	return events, true, nil
}

// eventAt returns the event at position p, which x has committed.
func (s *Store) eventAt(ctx context.Context, x *index, p int64) (event.Stored, error) {
	if p > x.chunked {
		return x.tail[p-x.chunked-1], nil
	}
	chunk, err := s.chunk(ctx, chunkOf(p))
	if err != nil {
		return event.Stored{}, err
	}
	return chunk[(p-1)%chunkSize], nil
}

// chunk returns the events of chunk n, from the cache or the database.
func (s *Store) chunk(ctx context.Context, n int64) ([]event.Stored, error) {
	if events, ok := s.chunks.get(n); ok {
		return events, nil
	}
	doc, found, err := s.db.chunk(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("read chunk %d: %w", n, err)
	}
	if !found {
		return nil, fmt.Errorf("chunk %d is missing", n)
	}
	events := doc.Events
	s.chunks.put(n, events)
	return events, nil
}

// chunkCache keeps the most recently used chunks. Chunks never change once written, so a
// cached chunk is never stale.
type chunkCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recent; values are chunk numbers
	items map[int64]*list.Element
	data  map[int64][]event.Stored
}

func newChunkCache(max int) *chunkCache {
	return &chunkCache{max: max, order: list.New(), items: map[int64]*list.Element{}, data: map[int64][]event.Stored{}}
}

func (c *chunkCache) get(n int64) ([]event.Stored, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[n]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return c.data[n], true
}

func (c *chunkCache) put(n int64, events []event.Stored) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[n]; ok {
		return
	}
	c.items[n] = c.order.PushFront(n)
	c.data[n] = events
	if c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(int64))
		delete(c.data, oldest.Value.(int64))
	}
}
