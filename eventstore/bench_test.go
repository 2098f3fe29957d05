package eventstore

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
)

// openBenchStore runs a store without the bus on the embedded FerretDB in dir, or on the
// PostgreSQL database at postgresURL if it is not empty.
func openBenchStore(b *testing.B, dir string, postgresURL ...string) *Store {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := openDatabase(ctx, Config{DataDir: dir, Database: "bench", PostgresURL: strings.Join(postgresURL, "")}, testenv.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	s, err := openStore(ctx, db, testenv.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.runWriter(ctx) })
	wg.Go(func() { _ = s.indexer.run(ctx) })
	b.Cleanup(func() { cancel(); wg.Wait(); s.waitForFlush(); db.close(context.Background()) })
	return s
}

// appendConcurrently appends requests from writers goroutines, one event per request.
func appendConcurrently(b *testing.B, s *Store, writers, requests int, stream func(i int) string) {
	var wg sync.WaitGroup
	next := make(chan int)
	go func() {
		for i := range requests {
			next <- i
		}
		close(next)
	}()
	for range writers {
		wg.Go(func() {
			for i := range next {
				r, err := s.Append(context.Background(), event.AppendRequest{Stream: stream(i),
					Events: []event.New{newEvent("bench.happened", map[string]any{"i": i, "note": "a typical small payload of an event"})}})
				if err != nil || !r.OK {
					b.Errorf("append: %+v %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkAppend measures appends per second with one writer and with 16 concurrent
// writers, each request one event, straight to the store (no RabbitMQ), on the embedded
// FerretDB's SQLite backend.
func BenchmarkAppend(b *testing.B) {
	benchmarkAppend(b, func(b *testing.B) *Store { return openBenchStore(b, b.TempDir()) })
}

// BenchmarkAppendOnPostgreSQL is BenchmarkAppend with the embedded FerretDB on PostgreSQL
// (EVENTSTORE_POSTGRES_URL), the backend that lets event store processes share a store.
func BenchmarkAppendOnPostgreSQL(b *testing.B) {
	benchmarkAppend(b, func(b *testing.B) *Store {
		return openBenchStore(b, b.TempDir(), testenv.PostgresDatabaseURL(b, "esbench"))
	})
}

func benchmarkAppend(b *testing.B, open func(b *testing.B) *Store) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := open(b)
			b.ResetTimer()
			start := time.Now()
			appendConcurrently(b, s, writers, b.N, func(i int) string { return fmt.Sprintf("bench-%d", i%100) })
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

// BenchmarkReadAt100k measures reads with 100,000 events stored in 1,000 streams whose
// events are spread over the whole store: a page of 500 from the global feed and one
// whole stream (100 events), through the HTTP API, with cold and warm chunk caches.
func BenchmarkReadAt100k(b *testing.B) {
	const events, streams = 100_000, 1000
	dir := b.TempDir()
	s := openBenchStore(b, dir)
	start := time.Now()
	appendConcurrently(b, s, 64, events, func(i int) string { return fmt.Sprintf("item-%d", i%streams) })
	b.Logf("stored %d events in %s", events, time.Since(start))
	for s.indexer.done.Load() < s.Head() {
		time.Sleep(10 * time.Millisecond)
	}
	b.Logf("stream pages written after %s", time.Since(start))
	srv := httptest.NewServer(newServer(s, &follower{}, testenv.Logger(b)))
	defer srv.Close()
	get := func(b *testing.B, path string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	b.Run("feed-500", func(b *testing.B) {
		for b.Loop() {
			s.chunks = newChunkCache(256) // cold: every chunk from the database
			get(b, fmt.Sprintf("/events?after=%d&limit=500", rand.IntN(events-500)))
		}
	})
	b.Run("stream-100", func(b *testing.B) {
		for b.Loop() {
			s.chunks = newChunkCache(256)
			get(b, fmt.Sprintf("/streams/item-%d", rand.IntN(streams)))
		}
	})
	b.Run("stream-100-warm", func(b *testing.B) {
		for b.Loop() {
			get(b, fmt.Sprintf("/streams/item-%d", rand.IntN(streams)))
		}
	})
	b.Run("reload", func(b *testing.B) {
		for b.Loop() {
			if err := s.reload(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStartUp measures what opening a store costs with 100,000 and 1,000,000 events
// stored (in 10,000 streams): the time openStore takes (as at start-up: the index file up
// to date, and the index file lost and built again), and the Go heap in use with the
// opened store loaded, after a collection. The events are seeded through AppendAll in
// requests of 100 events, by a store that is then stopped.
func BenchmarkStartUp(b *testing.B) {
	for _, events := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) {
			ctx := context.Background()
			db, err := openDatabase(ctx, Config{DataDir: b.TempDir(), Database: "bench"}, testenv.Logger(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.close(ctx)
			s, err := openStore(ctx, db, testenv.Logger(b))
			if err != nil {
				b.Fatal(err)
			}
			writerCtx, stopWriter := context.WithCancel(ctx)
			var writer sync.WaitGroup
			writer.Go(func() { s.runWriter(writerCtx) })
			start := time.Now()
			seed(b, s, events, 100, 10_000)
			stopWriter()
			writer.Wait()
			s.waitForFlush()
			b.Logf("seeded %d events in %s", events, time.Since(start))
			s = nil
			open := func(b *testing.B, lose bool) {
				var opened *Store
				for b.Loop() {
					if lose {
						b.StopTimer()
						if err := db.index.reset(ctx, ""); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					if opened, err = openStore(ctx, db, testenv.Logger(b)); err != nil {
						b.Fatal(err)
					}
				}
				if opened.Head() != int64(events) {
					b.Fatalf("head %d, want %d", opened.Head(), events)
				}
				var mem runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&mem)
				b.ReportMetric(float64(mem.HeapAlloc)/(1<<20), "heap-MiB")
				b.ReportMetric(residentMiB(b), "rss-MiB")
				runtime.KeepAlive(opened)
			}
			b.Run("index=kept", func(b *testing.B) { open(b, false) })
			b.Run("index=lost", func(b *testing.B) { open(b, true) })
		})
	}
}

// seed appends events to s in requests of perRequest events over streams streams.
func seed(b *testing.B, s *Store, events, perRequest, streams int) {
	b.Helper()
	const requestsPerCall = 40
	for i := 0; i < events/perRequest; i += requestsPerCall {
		reqs := make([]event.AppendRequest, 0, requestsPerCall)
		for r := i; r < min(i+requestsPerCall, events/perRequest); r++ {
			req := event.AppendRequest{Stream: fmt.Sprintf("item-%d", r%streams)}
			for j := range perRequest {
				req.Events = append(req.Events, newEvent("bench.happened", map[string]any{"r": r, "j": j, "note": "a typical small payload"}))
			}
			reqs = append(reqs, req)
		}
		replies, err := s.AppendAll(context.Background(), reqs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range replies {
			if !r.OK {
				b.Fatalf("seed: %+v", r)
			}
		}
	}
}

// residentMiB is this process's resident memory (VmRSS), which, unlike the Go heap,
// includes what SQLite (FerretDB's and the index's) allocates.
func residentMiB(b *testing.B) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kib); err != nil {
				b.Fatal(err)
			}
			return kib / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
