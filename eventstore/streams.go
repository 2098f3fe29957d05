package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/msdemo/msdemo/internal/event"
)

// streamPageSize is how many events of one stream a page document holds.
const streamPageSize = 32

// newStreamIndexer returns the follower that copies each stream's events into its page
// documents (versions n*streamPageSize+1 .. (n+1)*streamPageSize in page n). It runs
// beside the writer, so appends do not wait for it, and lingers a little after a commit so
// that under light load it writes a page once for several events. Stream reads the pages
// up to where it got and the rest from the chunks and the tail.
func newStreamIndexer(s *Store) *follower {
	return &follower{mark: "indexed", store: s, batch: 2000, linger: 50 * time.Millisecond, handle: s.indexStreams}
}

// indexStreams adds events to their streams' pages: one read and one write per page
// touched. Events a page has already (a batch handled again after a restart) are skipped.
func (s *Store) indexStreams(ctx context.Context, events []event.Stored) error {
	type key struct {
		stream string
		page   int64
	}
	var order []key
	groups := map[key][]event.Stored{}
	for _, e := range events {
		k := key{e.Stream, (e.Version - 1) / streamPageSize}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	for _, k := range order {
		var page []event.Stored
		if first := groups[k][0].Version; first != k.page*streamPageSize+1 {
			var err error
			if page, _, err = s.db.page(ctx, k.stream, k.page); err != nil {
				return fmt.Errorf("read page %d of %s: %w", k.page, k.stream, err)
			}
		}
		for _, e := range groups[k] {
			if e.Version == k.page*streamPageSize+int64(len(page))+1 {
				page = append(page, e)
			}
		}
		if err := s.db.putPage(ctx, k.stream, k.page, page); err != nil {
			return fmt.Errorf("write page %d of %s: %w", k.page, k.stream, err)
		}
	}
	return nil
}
