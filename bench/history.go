package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
)

// historyRun is the saga measured with a history of events in the store: the shop's own
// and Seeded more, appended before the runs.
type historyRun struct {
	Seeded       int64   `json:"seeded_events"`
	SeedPerSec   float64 `json:"seed_events_per_sec"` // of the events seeded for this size
	OrdersPerSec float64 `json:"orders_per_sec"`      // at saturation
	SagaP99Ms    float64 `json:"saga_p99_ms_at_saturation"`
	RatePerSec   float64 `json:"fixed_rate_per_sec"`
	P99Ms        float64 `json:"placed_to_approved_p99_ms"` // at the fixed rate
	Undecided    int     `json:"undecided"`
}

// historySizes is the value of -history: the numbers of events to seed, in increasing order.
type historySizes []int64

func (h *historySizes) String() string {
	s := make([]string, len(*h))
	for i, n := range *h {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, ",")
}

func (h *historySizes) Set(v string) error {
	*h = nil
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n < 0 || len(*h) > 0 && n <= (*h)[len(*h)-1] {
			return fmt.Errorf("-history %q: want increasing numbers of events, e.g. 1000,100000,1000000", v)
		}
		*h = append(*h, n)
	}
	return nil
}

// seedWriters append the history at once, each batch a request of its own stream.
const seedWriters = 8

// historyRuns seeds the store up to each of sizes in turn (events of type bench.history,
// which no service subscribes to, event.MaxEventsPerAppend to a request) and at each
// runs a saturation run with customers and a fixed-rate run at rate, of d each: how the
// saga's cost grows with the events already stored.
func (s *shop) historyRuns(ctx context.Context, sizes []int64, customers int, rate float64, d time.Duration) ([]historyRun, error) {
	conn, err := bus.Dial(ctx, s.busURL, quiet(s.logger), bus.WithName("bench history"))
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	defer conn.Close()
	client := eventclient.New(conn, "http://"+s.addr["eventstore"], "", "")
	var runs []historyRun
	seeded := int64(0)
	for _, size := range sizes {
		start := time.Now()
		if err := seedHistory(ctx, client, seeded, size); err != nil {
			return runs, err
		}
		run := historyRun{Seeded: size, RatePerSec: rate}
		if size > seeded {
			run.SeedPerSec = float64(size-seeded) / time.Since(start).Seconds()
		}
		seeded = size
		if err := s.waitStoreSettled(ctx); err != nil {
			return runs, err
		}
		s.logger.Info("history seeded; saturation and fixed-rate runs", "events", size, "seed_per_sec", int(run.SeedPerSec),
			"settled_after", time.Since(start).Round(time.Second))
		sat, err := s.saturate(ctx, customers, d, "", "")
		if err != nil {
			return runs, err
		}
		run.OrdersPerSec, run.SagaP99Ms = sat.OrdersPerSec, sat.SagaP99Ms
		lat, err := s.fixedRate(ctx, rate, d)
		if err != nil {
			return runs, err
		}
		run.P99Ms, run.Undecided = lat.P99Ms, lat.Undecided
		runs = append(runs, run)
	}
	return runs, nil
}

// seedHistory appends events from seeded up to total, in requests of
// event.MaxEventsPerAppend events, from seedWriters writers.
func seedHistory(ctx context.Context, client *eventclient.Client, seeded, total int64) error {
	batches := make(chan int64)
	var failed atomic.Value
	var wg sync.WaitGroup
	for range seedWriters {
		wg.Go(func() {
			for from := range batches {
				n := min(int64(event.MaxEventsPerAppend), total-from)
				events := make([]event.New, n)
				for i := range events {
					data, _ := json.Marshal(map[string]any{"i": from + int64(i), "note": "a typical small payload of an event"})
					events[i] = event.New{ID: randomHex(16), Type: "bench.history", Data: data}
				}
				reply, err := client.Append(ctx, event.AppendRequest{Stream: fmt.Sprintf("benchhistory-%d", from), Events: events})
				if err == nil && !reply.OK {
					err = fmt.Errorf("%s: %s", reply.Error, reply.Message)
				}
				if err != nil {
					failed.CompareAndSwap(nil, fmt.Errorf("seed the history at event %d: %w", from, err))
				}
			}
		})
	}
	for from := seeded; from < total && ctx.Err() == nil && failed.Load() == nil; from += event.MaxEventsPerAppend {
		batches <- from
	}
	close(batches)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// waitStoreSettled waits until the event store has no background work left from the
// seeding (published and stream-indexed up to its head, nothing waiting for its index
// file), so that a run measures the saga with the history, not the history's digestion.
func (s *shop) waitStoreSettled(ctx context.Context) error {
	url := "http://" + s.addr["eventstore"] + "/healthz"
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var h struct {
			Head      int64 `json:"head"`
			Published int64 `json:"published"`
			Indexed   int64 `json:"indexed"`
			Unindexed int   `json:"unindexed"`
		}
		if getJSON(ctx, http.DefaultClient, url, "", &h) == http.StatusOK && h.Published >= h.Head && h.Indexed >= h.Head && h.Unindexed == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the event store did not settle within 10 minutes of seeding")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
