package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/msdemo/msdemo/internal/event"
)

// streamPageSize is how many events of one stream a page document holds.
const streamPageSize = 32

// newStreamIndexer returns the follower that copies each stream's events into page
// documents (versions n*streamPageSize+1 .. (n+1)*streamPageSize in page n). A page is
// written once, when its stream's version reaches its end, so the indexer only inserts:
// FerretDB on SQLite spends three times as much on a document update as on an insert
// (BENCHMARKS.md), and most streams (an order's, an invoice's) never fill one page. It
// runs beside the writer, so appends do not wait for it. Stream reads the full pages up
// to where it got and the rest from the chunks and the tail.
func newStreamIndexer(s *Store) *follower {
	return &follower{mark: "indexed", store: s, batch: 2000, linger: 50 * time.Millisecond, handle: s.indexStreams}
}

// indexStreams writes the page that each event completing one fills. The page's events
// come from the chunks and the tail (mostly cached: they are recent). A page written
// before (a batch handled again after a restart) is written again with the same events.
func (s *Store) indexStreams(ctx context.Context, events []event.Stored) error {
	for _, e := range events {
		if e.Version%streamPageSize != 0 {
			continue
		}
		s.mu.RLock()
		x := s.idx
		s.mu.RUnlock()
		n := e.Version/streamPageSize - 1
		// Only the page's versions: a long stream's earlier positions are not read again.
		positions, err := s.positionsOf(ctx, x, e.Stream, n*streamPageSize+1, e.Version)
		if err != nil {
			return err
		}
		if len(positions) != streamPageSize {
			return fmt.Errorf("page %d of %s: the index has %d of its events", n, e.Stream, len(positions))
		}
		page := make([]event.Stored, len(positions))
		for i, p := range positions {
			var err error
			if page[i], err = s.eventAt(ctx, x, p); err != nil {
				return fmt.Errorf("page %d of %s: %w", n, e.Stream, err)
			}
		}
		if err := s.db.insertPage(ctx, e.Stream, n, page); err != nil {
			return fmt.Errorf("write page %d of %s: %w", n, e.Stream, err)
		}
	}
	return nil
}

// learnIndexed takes, on a standby, how far the writer's stream indexer got from its
// recorded mark, so that the standby's stream reads use the pages written up to there. A
// failure leaves it where it was: reads then take more of the events from the chunks.
func (s *Store) learnIndexed(ctx context.Context) {
	if p, err := s.db.mark(ctx, s.indexer.mark); err == nil && p > s.indexer.done.Load() {
		s.indexer.done.Store(p)
	}
}
