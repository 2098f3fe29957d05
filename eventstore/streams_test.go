package eventstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
)

// A stream's pages are written once each, when full; a stream read gives the stream's
// events of the feed whether they come from pages, chunks or the tail.
func TestStreamPagesHoldFullPagesOnly(t *testing.T) {
	t.Parallel()
	ctx, s, db := runStore(t, "pages", true)

	const long = 2*streamPageSize + 6
	for v := 0; v < long; {
		n := min(1+v%5, long-v) // requests of 1 to 5 events, between other streams' events
		events := make([]event.New, n)
		for i := range events {
			events[i] = newEvent("thing.happened", map[string]int{"v": v + i + 1})
		}
		for _, stream := range []string{"long-1", fmt.Sprintf("short-%d", v)} {
			if r, err := s.Append(ctx, event.AppendRequest{Stream: stream, Events: events}); err != nil || !r.OK {
				t.Fatalf("append to %s: %+v %v", stream, r, err)
			}
			for i := range events {
				events[i] = newEvent("thing.happened", nil)
			}
		}
		v += n
	}
	testenv.Eventually(t, 10*time.Second, "the indexer reaches the head", func() bool { return s.indexer.done.Load() >= s.Head() })

	for n := range int64(3) {
		page, found, err := db.page(ctx, "long-1", n)
		switch {
		case err != nil:
			t.Fatal(err)
		case n < 2 && (!found || len(page) != streamPageSize || page[0].Version != n*streamPageSize+1):
			t.Errorf("page %d: got found=%v with %d events, want the full page", n, found, len(page))
		case n == 2 && found:
			t.Errorf("page 2 (6 of %d events) was written; only full pages should be", streamPageSize)
		}
	}
	got, found, err := s.Stream(ctx, "long-1")
	if err != nil || !found {
		t.Fatalf("read long-1: found=%v %v", found, err)
	}
	feed, err := s.Feed(ctx, 0, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []event.Stored
	for _, e := range feed.Events {
		if e.Stream == "long-1" {
			want = append(want, e)
		}
	}
	if len(got) != long || len(want) != long {
		t.Fatalf("got %d events of long-1, the feed has %d, want %d", len(got), len(want), long)
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Version != int64(i+1) || got[i].Position != want[i].Position {
			t.Fatalf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// runStore opens a store of its own on the embedded database, in t's temporary
// directory, and runs its writer (and, with indexer, its stream indexer) until t ends. It
// returns the store's context, the store and its database.
func runStore(t testing.TB, database string, indexer bool) (context.Context, *Store, *mongoStore) {
	t.Helper()
	return runStoreWith(t, Config{DataDir: t.TempDir(), Database: database}, indexer)
}

// runStoreWith is runStore on the database cfg names.
func runStoreWith(t testing.TB, cfg Config, indexer bool) (context.Context, *Store, *mongoStore) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := openDatabase(ctx, cfg, testenv.Logger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s, err := openStore(ctx, db, testenv.Logger(t))
	if err != nil {
		cancel()
		db.close(context.Background())
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.runWriter(ctx) })
	if indexer {
		wg.Go(func() { _ = s.indexer.run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait(); s.waitForFlush(); db.close(context.Background()) })
	return ctx, s, db
}
