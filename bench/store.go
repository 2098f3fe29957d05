package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	mongooptions "go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
)

// storeRuns are the event store's append rates and the raw insert rate beside them.
type storeRuns struct {
	Append1      float64 `json:"appends_per_sec_1_writer"`
	Append16     float64 `json:"appends_per_sec_16_writers"`
	Append64     float64 `json:"appends_per_sec_64_writers"`
	RawInsert    float64 `json:"ferretdb_insert_one_per_sec"` // the mean of the runs before and after the appends
	RawBefore    float64 `json:"ferretdb_insert_one_per_sec_before"`
	RawAfter     float64 `json:"ferretdb_insert_one_per_sec_after"`
	Append16Raw  float64 `json:"appends_16_over_raw_insert"`
	Append64Raw  float64 `json:"appends_64_over_raw_insert"`
	AppendErrors int     `json:"append_errors"`
}

// storeRuns inserts single documents into an embedded FerretDB of the bench's own for d,
// appends through RabbitMQ into the shop's event store with 1, 16 and then 64 writers (a
// stream per writer, one event per request) for d each, and inserts for d again: the
// ratios are to the mean of the two insert runs, since this machine's speed drifts by
// more than the figures to compare (raw inserts moved from 1255 to 1936/s between two
// runs of one commit).
func (s *shop) storeRuns(ctx context.Context, d time.Duration) (storeRuns, error) {
	var res storeRuns
	var err error
	if res.RawBefore, err = s.rawInsertRate(ctx, d); err != nil {
		return res, err
	}
	conn, err := bus.Dial(ctx, s.busURL, quiet(s.logger), bus.WithName("bench appends"))
	if err != nil {
		return res, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	defer conn.Close()
	client := eventclient.New(conn, "http://"+s.addr["eventstore"], "", "")
	for _, run := range []struct {
		writers int
		rate    *float64
	}{{1, &res.Append1}, {16, &res.Append16}, {64, &res.Append64}} {
		var errs int
		*run.rate, errs = appendRate(ctx, client, run.writers, d)
		res.AppendErrors += errs
	}
	if res.RawAfter, err = s.rawInsertRate(ctx, d); err != nil {
		return res, err
	}
	res.RawInsert = (res.RawBefore + res.RawAfter) / 2
	if res.RawInsert > 0 {
		res.Append16Raw, res.Append64Raw = res.Append16/res.RawInsert, res.Append64/res.RawInsert
	}
	return res, nil
}

// appendRate appends from writers goroutines for d and returns the successful appends per
// second and the failures.
func appendRate(ctx context.Context, client *eventclient.Client, writers int, d time.Duration) (float64, int) {
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	run := randomHex(4)
	until := time.Now().Add(d)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("bench-%s-%d", run, w)
			for i := 0; time.Now().Before(until); i++ {
				data, _ := json.Marshal(map[string]any{"i": i, "note": "a typical small payload of an event"})
				reply, err := client.Append(ctx, event.AppendRequest{Stream: stream,
					Events: []event.New{{ID: randomHex(16), Type: "bench.appended", Data: data}}})
				if err != nil || !reply.OK {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), int(failed.Load())
}

// rawInsertRate starts an embedded FerretDB with the SQLite backend in a temp dir (as the
// event store does, telemetry off) and calls insertOne with one small document at a time
// for d.
func (s *shop) rawInsertRate(ctx context.Context, d time.Duration) (float64, error) {
	dir := filepath.Join(s.tmp, "ferretdb")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return 0, fmt.Errorf("start embedded FerretDB: %w", err)
	}
	fctx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = f.Run(fctx) }()
	defer func() { stop(); <-stopped }()

	client, err := mongo.Connect(mongooptions.Client().ApplyURI(f.MongoDBURI()))
	if err != nil {
		return 0, fmt.Errorf("connect to the embedded FerretDB: %w", err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database("bench").Collection("docs")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "warm", Value: true}}); err != nil { // creates the collection
		return 0, fmt.Errorf("insert into the embedded FerretDB: %w", err)
	}
	n := 0
	start := time.Now()
	for until := start.Add(d); time.Now().Before(until); n++ {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "stream", Value: "bench-1"}, {Key: "i", Value: n},
			{Key: "note", Value: "a typical small payload of an event"}})
		if err != nil {
			return 0, fmt.Errorf("insert into the embedded FerretDB: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// quiet is logger without its info and debug messages (reconnect chatter of the bus client).
func quiet(logger *slog.Logger) *slog.Logger {
	return slog.New(levelHandler{logger.Handler(), slog.LevelWarn})
}

type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
