package eventstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/testenv"
)

// Two event store processes share one database: the first writes, the second serves
// reads that see every acknowledged append and takes over when the first stops, while
// appends go on; no event is lost or stored twice, positions stay gap-free.
func TestStandbyTakesOverTheWrites(t *testing.T) {
	t.Parallel()
	name := testenv.Name(t)
	shared := testenv.PostgresDatabaseURL(t, "es")
	conn := testenv.Bus(t)
	t.Cleanup(func() { deleteQueue(t, conn, name+".append") })
	cfgOf := func() Config {
		return Config{DataDir: t.TempDir(), PostgresURL: shared, RabbitMQURL: testenv.RabbitMQURL(),
			Exchange: name + ".events", AppendQueue: name + ".append"}
	}
	first := startStore(t, cfgOf())
	second := startStore(t, cfgOf())
	client := eventclient.New(conn, first.url+","+second.url, name+".append", name+".events")

	// Appenders run throughout; each retries its request until it is acknowledged.
	ctx, stopAppending := context.WithCancel(context.Background())
	var appenders sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]event.AppendReply{} // event id -> its reply
	for w := range 4 {
		appenders.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				e := newEvent("thing.happened", map[string]int{"w": w, "i": i})
				reqCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := client.Append(reqCtx, event.AppendRequest{Stream: fmt.Sprintf("thing-%d", i%8), Events: []event.New{e}})
				cancel()
				if err != nil || !r.OK {
					t.Errorf("append %s: %+v, %v", e.ID, r, err)
					return
				}
				mu.Lock()
				acked[e.ID] = r
				mu.Unlock()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	testenv.Eventually(t, 20*time.Second, "100 appends acknowledged by the first store", func() bool { return count() >= 100 })

	// The standby's reads see what the writer acknowledged.
	mu.Lock()
	seen := len(acked)
	mu.Unlock()
	if n := len(second.feed(t)); n < seen {
		t.Fatalf("the standby's feed has %d events, want at least the %d acknowledged before the read", n, seen)
	}

	stoppedAt := time.Now()
	first.stop()
	before := count()
	testenv.Eventually(t, 20*time.Second, "100 more appends acknowledged after the writer stopped", func() bool { return count() >= before+100 })
	t.Logf("100 appends acknowledged %s after the writer stopped", time.Since(stoppedAt).Round(time.Millisecond))
	stopAppending()
	appenders.Wait()

	feed := second.feed(t)
	checkGapFree(t, feed)
	stored := map[string]event.Stored{}
	for _, e := range feed {
		if _, twice := stored[e.ID]; twice {
			t.Fatalf("event %s stored twice", e.ID)
		}
		stored[e.ID] = e
	}
	for id, r := range acked {
		if e, ok := stored[id]; !ok || e.Position != r.FirstPosition {
			t.Fatalf("acknowledged event %s (position %d): stored %+v", id, r.FirstPosition, e)
		}
	}
	checkStreams(t, second, feed)
}

// A writer that has lost its lease but not yet noticed cannot overwrite the new writer's
// commits: with two writers appending at once to one database, every acknowledged event
// is stored once, at the position it was told, and positions stay gap-free.
func TestTwoWritersAreFencedByTheCommitID(t *testing.T) {
	t.Parallel()
	shared := testenv.PostgresDatabaseURL(t, "es")
	var stores []*Store
	for range 2 {
		_, s, _ := runStoreWith(t, Config{DataDir: t.TempDir(), PostgresURL: shared, Database: "fence"}, false)
		stores = append(stores, s)
	}

	var mu sync.Mutex
	acked := map[string]event.AppendReply{}
	fenced := 0
	var writers sync.WaitGroup
	for w := range 6 {
		writers.Go(func() {
			for i := range 40 {
				e := newEvent("thing.happened", map[string]int{"w": w, "i": i})
				req := event.AppendRequest{Stream: fmt.Sprintf("thing-%d", i%5), Events: []event.New{e}}
				for try := 0; ; try++ {
					// Each writer alternates between the stores, as appends retried
					// across a take-over would.
					r, err := stores[(w+i+try)%2].Append(context.Background(), req)
					if err != nil {
						t.Error(err)
						return
					}
					if r.Error == event.ErrUnavailable {
						mu.Lock()
						fenced++
						mu.Unlock()
						continue
					}
					if !r.OK {
						t.Errorf("append: %+v", r)
						return
					}
					mu.Lock()
					acked[e.ID] = r
					mu.Unlock()
					break
				}
			}
		})
	}
	writers.Wait()
	t.Logf("%d appends, %d fenced and sent again", len(acked), fenced)
	if fenced == 0 {
		t.Errorf("no append was fenced: the two writers never raced for a position")
	}

	stores[0].follow(context.Background())
	page, err := stores[0].Feed(context.Background(), 0, 10_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkGapFree(t, page.Events)
	if len(page.Events) != len(acked) {
		t.Fatalf("%d events stored, %d acknowledged", len(page.Events), len(acked))
	}
	versions := map[string]int64{}
	for _, e := range page.Events {
		r, ok := acked[e.ID]
		if !ok || r.FirstPosition != e.Position || r.FirstVersion != e.Version {
			t.Fatalf("stored %+v, acknowledged %+v", e, r)
		}
		if versions[e.Stream]++; versions[e.Stream] != e.Version {
			t.Fatalf("%s: version %d follows %d", e.Stream, e.Version, versions[e.Stream]-1)
		}
	}
}

// checkGapFree fails unless feed holds positions 1..len(feed) in order.
func checkGapFree(t *testing.T, feed []event.Stored) {
	t.Helper()
	for i, e := range feed {
		if e.Position != int64(i+1) {
			t.Fatalf("feed[%d] is at position %d, want %d", i, e.Position, i+1)
		}
	}
}
