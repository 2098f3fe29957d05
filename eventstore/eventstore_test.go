package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/testenv"
)

// testStore is an event store running in the test on the embedded FerretDB, with its own
// exchange and append queue so that tests run in parallel.
type testStore struct {
	cfg    Config
	url    string
	conn   *bus.Conn
	client *eventclient.Client
	stop   func()
}

// startStore runs the event store for t. cfg's empty fields are filled in; pass the cfg of
// a stopped store to start it again on the same data.
func startStore(t *testing.T, cfg Config) *testStore {
	t.Helper()
	return startStoreOn(t, cfg, "")
}

// startStoreOn is startStore with the test's own connection on the broker at vhostURL
// (empty: RABBITMQ_URL).
func startStoreOn(t *testing.T, cfg Config, vhostURL string) *testStore {
	t.Helper()
	conn := testenv.Bus(t)
	if vhostURL != "" {
		var err error
		if conn, err = bus.Dial(context.Background(), vhostURL, testenv.Logger(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	if cfg.DataDir == "" {
		name := testenv.Name(t)
		cfg = Config{DataDir: t.TempDir(), RabbitMQURL: testenv.RabbitMQURL(),
			Exchange: name + ".events", AppendQueue: name + ".append", holdPublishing: cfg.holdPublishing}
		t.Cleanup(func() { deleteQueue(t, conn, cfg.AppendQueue) })
	}
	cfg.Addr = testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testenv.Logger(t)) }()
	ts := &testStore{cfg: cfg, url: "http://" + cfg.Addr, conn: conn,
		client: eventclient.New(conn, "http://"+cfg.Addr, cfg.AppendQueue, cfg.Exchange)}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("event store Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("event store did not stop within 15 s")
			}
		})
	}
	t.Cleanup(ts.stop)
	testenv.WaitHealthy(t, ts.url+"/healthz", 20*time.Second)
	return ts
}

func deleteQueue(t *testing.T, conn *bus.Conn, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.DeleteQueue(ctx, name)
}

func newEvent(typ string, data any) event.New {
	raw, _ := json.Marshal(data)
	return event.New{ID: uuid.NewString(), Type: typ, Data: raw}
}

func version(n int64) *int64 { return &n }

func (ts *testStore) append(t *testing.T, req event.AppendRequest) event.AppendReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := ts.client.Append(ctx, req)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return reply
}

// feed reads the whole global feed over HTTP.
func (ts *testStore) feed(t *testing.T) []event.Stored {
	t.Helper()
	var all []event.Stored
	for after := int64(0); ; {
		page, err := ts.client.Feed(context.Background(), after, 1000, nil)
		if err != nil {
			t.Fatalf("feed: %v", err)
		}
		all = append(all, page.Events...)
		if page.NextAfter >= page.Head {
			return all
		}
		after = page.NextAfter
	}
}

func (ts *testStore) stream(t *testing.T, stream string) (events []event.Stored, status int) {
	t.Helper()
	resp, err := http.Get(ts.url + "/streams/" + stream)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body streamResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
	}
	return body.Events, resp.StatusCode
}

func TestAppendAndRead(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	r := ts.append(t, event.AppendRequest{Stream: "product-1", ExpectedVersion: version(0), Events: []event.New{
		newEvent("product.added", map[string]any{"name": "Tea", "price_cents": 450}),
		newEvent("product.updated", map[string]any{"price_cents": 500}),
	}})
	want := event.AppendReply{OK: true, FirstVersion: 1, LastVersion: 2, FirstPosition: 1, LastPosition: 2}
	if r != want {
		t.Fatalf("got reply %+v, want %+v", r, want)
	}
	r = ts.append(t, event.AppendRequest{Stream: "product-1", ExpectedVersion: version(1),
		Events: []event.New{newEvent("product.deleted", nil)}})
	cur := int64(2)
	if r.OK || r.Error != event.ErrWrongExpectedVersion || r.CurrentVersion == nil || *r.CurrentVersion != cur {
		t.Fatalf("got reply %+v, want wrong_expected_version with current_version 2", r)
	}
	r = ts.append(t, event.AppendRequest{Stream: "product-1", ExpectedVersion: version(0),
		Events: []event.New{newEvent("product.added", nil)}})
	if r.Error != event.ErrWrongExpectedVersion {
		t.Fatalf("expected_version 0 on an existing stream: got %+v, want wrong_expected_version", r)
	}
	r = ts.append(t, event.AppendRequest{Stream: "product-1", // no expected version: any
		Events: []event.New{newEvent("product.deleted", nil)}})
	if !r.OK || r.FirstVersion != 3 || r.FirstPosition != 3 {
		t.Fatalf("append with any version: got %+v, want version 3 at position 3", r)
	}

	events, status := ts.stream(t, "product-1")
	if status != http.StatusOK || len(events) != 3 {
		t.Fatalf("GET /streams/product-1: got %d with %d events, want 200 with 3", status, len(events))
	}
	var data map[string]any
	if err := json.Unmarshal(events[0].Data, &data); err != nil || data["price_cents"] != 450.0 {
		t.Errorf("first event data: got %s, want price_cents 450", events[0].Data)
	}
	if string(events[2].Data) != "{}" {
		t.Errorf("event without data: got data %s, want {}", events[2].Data)
	}
	if _, status := ts.stream(t, "product-2"); status != http.StatusNotFound {
		t.Errorf("unknown stream: got %d, want 404", status)
	}
	for _, q := range []string{"after=-1", "limit=0", "limit=5000", "after=x"} {
		resp, err := http.Get(ts.url + "/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /events?%s: got %d, want 400", q, resp.StatusCode)
		}
	}
}

// Appends stay whole and ordered across restarts and across the chunk documents that a
// long feed is read from.
func TestReloadAfterRestart(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	for i := range 40 {
		events := make([]event.New, 1+i%17) // commits of varied sizes that straddle chunks
		for j := range events {
			events[j] = newEvent("thing.happened", map[string]int{"i": i, "j": j})
		}
		if r := ts.append(t, event.AppendRequest{Stream: fmt.Sprintf("thing-%d", i%4), Events: events}); !r.OK {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
	before := ts.feed(t)
	if len(before) <= 2*chunkSize {
		t.Fatalf("got %d events, want more than two chunks' worth", len(before))
	}
	checkStreams(t, ts, before) // the stream indexer may still be behind here
	ts.stop()
	ts = startStore(t, ts.cfg)
	after := ts.feed(t)
	if len(after) != len(before) {
		t.Fatalf("after restart: got %d events, want %d", len(after), len(before))
	}
	for i := range before {
		if before[i].ID != after[i].ID || before[i].Position != int64(i+1) || !before[i].RecordedAt.Equal(after[i].RecordedAt) {
			t.Fatalf("event %d: got %+v after restart, want %+v", i, after[i], before[i])
		}
	}
	r := ts.append(t, event.AppendRequest{Stream: "thing-0", Events: []event.New{newEvent("thing.happened", nil)}})
	if !r.OK || r.FirstPosition != int64(len(before)+1) {
		t.Fatalf("append after restart: got %+v, want position %d", r, len(before)+1)
	}
	checkStreams(t, ts, ts.feed(t))
}

// checkStreams fails unless each stream read gives the stream's events of the feed, in
// version order.
func checkStreams(t *testing.T, ts *testStore, feed []event.Stored) {
	t.Helper()
	want := map[string][]event.Stored{}
	for _, e := range feed {
		want[e.Stream] = append(want[e.Stream], e)
	}
	for stream, events := range want {
		got, status := ts.stream(t, stream)
		if status != http.StatusOK || len(got) != len(events) {
			t.Fatalf("GET /streams/%s: got %d with %d events, want 200 with %d", stream, status, len(got), len(events))
		}
		for i := range events {
			if got[i].ID != events[i].ID || got[i].Version != int64(i+1) {
				t.Fatalf("%s[%d]: got %s version %d, want %s version %d", stream, i, got[i].ID, got[i].Version, events[i].ID, i+1)
			}
		}
	}
}

// Eight writers race on overlapping streams with expected versions. Each success must get
// the versions it was told, each loser the current version, and the feed must hold
// positions 1..N with every stream's versions 1..k.
func TestConcurrentWritersWithExpectedVersions(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	const writers, rounds, streams = 8, 40, 3
	type success struct {
		stream string
		reply  event.AppendReply
		ids    []string
	}
	var (
		mu        sync.Mutex
		successes []success
		conflicts int
		wg        sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			known := map[string]int64{}
			for i := range rounds {
				stream := fmt.Sprintf("acct-%d", (w+i)%streams)
				req := event.AppendRequest{Stream: stream, ExpectedVersion: version(known[stream]), Events: []event.New{
					newEvent("acct.credited", map[string]int{"writer": w, "round": i}),
					newEvent("acct.noted", nil),
				}}
				reply, err := ts.client.Append(context.Background(), req)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				switch {
				case reply.OK:
					successes = append(successes, success{stream, reply, []string{req.Events[0].ID, req.Events[1].ID}})
					known[stream] = reply.LastVersion
				case reply.Error == event.ErrWrongExpectedVersion && reply.CurrentVersion != nil:
					if *reply.CurrentVersion <= known[stream] {
						t.Errorf("conflict for %s: current version %d, want more than expected %d", stream, *reply.CurrentVersion, known[stream])
					}
					conflicts++
					known[stream] = *reply.CurrentVersion
				default:
					t.Errorf("writer %d: unexpected reply %+v", w, reply)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if conflicts == 0 {
		t.Errorf("got no conflicts among %d racing writers; the test did not race", writers)
	}

	feed := ts.feed(t)
	if len(feed) != 2*len(successes) {
		t.Fatalf("feed has %d events, want %d (2 per successful append)", len(feed), 2*len(successes))
	}
	byID := map[string]event.Stored{}
	versions := map[string]int64{}
	for i, e := range feed {
		if e.Position != int64(i+1) {
			t.Fatalf("feed[%d] has position %d, want %d", i, e.Position, i+1)
		}
		versions[e.Stream]++
		if e.Version != versions[e.Stream] {
			t.Fatalf("%s: got version %d at position %d, want %d", e.Stream, e.Version, e.Position, versions[e.Stream])
		}
		byID[e.ID] = e
	}
	for _, s := range successes {
		first, second := byID[s.ids[0]], byID[s.ids[1]]
		if first.Stream != s.stream || first.Version != s.reply.FirstVersion || second.Version != s.reply.LastVersion ||
			first.Position != s.reply.FirstPosition || second.Position != s.reply.LastPosition {
			t.Errorf("reply %+v does not match stored events %+v and %+v", s.reply, first, second)
		}
	}
	t.Logf("%d successes, %d conflicts, %d events", len(successes), conflicts, len(feed))
}

func TestAppendTwiceIsStoredOnce(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	req := event.AppendRequest{Stream: "order-7", ExpectedVersion: version(0), Events: []event.New{
		newEvent("order.placed", map[string]int{"quantity": 2}), newEvent("order.noted", nil)}}
	first := ts.append(t, req)
	second := ts.append(t, req)
	if !first.OK || first.Duplicate {
		t.Fatalf("first append: got %+v, want ok and not duplicate", first)
	}
	want := first
	want.Duplicate = true
	if second != want {
		t.Fatalf("second append: got %+v, want %+v", second, want)
	}
	// Sent at once, the same request is stored once too (both land in one writer batch).
	req.Stream, req.ExpectedVersion = "order-8", nil
	req.Events = []event.New{newEvent("order.placed", nil)}
	var wg sync.WaitGroup
	replies := make([]event.AppendReply, 4)
	for i := range replies {
		wg.Go(func() { replies[i] = ts.append(t, req) })
	}
	wg.Wait()
	duplicates := 0
	for _, r := range replies {
		if !r.OK || r.FirstPosition != replies[0].FirstPosition {
			t.Errorf("concurrent same request: got %+v, want ok at position %d", r, replies[0].FirstPosition)
		}
		if r.Duplicate {
			duplicates++
		}
	}
	if duplicates != len(replies)-1 {
		t.Errorf("concurrent same request: got %d duplicate replies, want %d", duplicates, len(replies)-1)
	}
	if n := len(ts.feed(t)); n != 3 {
		t.Errorf("feed has %d events, want 3", n)
	}
	// Reusing a stored id with a new one in the same request is refused whole.
	mixed := event.AppendRequest{Stream: "order-7", Events: []event.New{req.Events[0], newEvent("order.noted", nil)}}
	mixed.Stream = "order-8"
	if r := ts.append(t, mixed); r.Error != event.ErrInvalid {
		t.Errorf("request mixing a stored and a new id: got %+v, want invalid", r)
	}
}

func TestBadAppendRequestsStoreNothing(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	id := uuid.NewString()
	bodies := map[string]string{
		"invalid JSON":           `{"stream": "product-1", "events": [`,
		"not an object":          `5`,
		"empty batch":            `[]`,
		"batch not JSON":         `[{"stream": `,
		"empty type":             `{"stream": "product-1", "events": [{"id": "` + id + `", "type": ""}]}`,
		"missing stream":         `{"events": [{"id": "` + id + `", "type": "product.added"}]}`,
		"stream without id part": `{"stream": "product", "events": [{"id": "` + id + `", "type": "product.added"}]}`,
		"expected_version text":  `{"stream": "product-1", "expected_version": "3", "events": [{"id": "` + id + `", "type": "product.added"}]}`,
		"expected_version float": `{"stream": "product-1", "expected_version": 1.5, "events": [{"id": "` + id + `", "type": "product.added"}]}`,
		"negative version":       `{"stream": "product-1", "expected_version": -1, "events": [{"id": "` + id + `", "type": "product.added"}]}`,
		"no events":              `{"stream": "product-1", "events": []}`,
		"missing event id":       `{"stream": "product-1", "events": [{"type": "product.added"}]}`,
		"data not an object":     `{"stream": "product-1", "events": [{"id": "` + id + `", "type": "product.added", "data": 5}]}`,
		"unknown field":          `{"stream": "product-1", "expectedVersion": 0, "events": [{"id": "` + id + `", "type": "product.added"}]}`,
		"repeated id":            `{"stream": "product-1", "events": [{"id": "` + id + `", "type": "product.added"}, {"id": "` + id + `", "type": "product.added"}]}`,
		"type not a.b":           `{"stream": "product-1", "events": [{"id": "` + id + `", "type": "Added"}]}`,
	}
	for name, body := range bodies {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		raw, err := ts.conn.Call(ctx, ts.cfg.AppendQueue, []byte(body))
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var reply event.AppendReply
		if err := json.Unmarshal(raw, &reply); err != nil {
			t.Fatalf("%s: reply %s is not JSON: %v", name, raw, err)
		}
		if reply.OK || reply.Error != event.ErrInvalid || reply.Message == "" {
			t.Errorf("%s: got reply %s, want invalid with a message", name, raw)
		}
	}
	if n := len(ts.feed(t)); n != 0 {
		t.Errorf("feed has %d events after bad requests, want 0", n)
	}
}

// A batch message's requests are decided in order, each on its own: one refused or in
// conflict leaves the others stored, and each reply goes to its request.
func TestAppendBatchMessage(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	request := func(stream string, expected int64) string {
		return fmt.Sprintf(`{"stream": %q, "expected_version": %d, "events": [{"id": %q, "type": "thing.happened"}]}`,
			stream, expected, uuid.NewString())
	}
	body := "[" + strings.Join([]string{
		request("thing-1", 0),
		request("thing-1", 1), // after the first: decided in order
		`{"stream": "thing-2", "events": []}`,
		request("thing-1", 0), // conflicts with the first
		request("thing-3", 0),
	}, ",") + "]"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := ts.conn.Call(ctx, ts.cfg.AppendQueue, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var replies []event.AppendReply
	if err := json.Unmarshal(raw, &replies); err != nil || len(replies) != 5 {
		t.Fatalf("got reply %s (%v), want an array of 5 replies", raw, err)
	}
	ok := func(r event.AppendReply, version int64) bool { return r.OK && r.FirstVersion == version }
	if !ok(replies[0], 1) || !ok(replies[1], 2) || !ok(replies[4], 1) {
		t.Errorf("got %+v, want replies 0, 1 and 4 stored at versions 1, 2 and 1", replies)
	}
	if replies[2].Error != event.ErrInvalid || replies[3].Error != event.ErrWrongExpectedVersion {
		t.Errorf("got %+v and %+v, want invalid and wrong_expected_version", replies[2], replies[3])
	}
	if n := len(ts.feed(t)); n != 3 {
		t.Errorf("feed has %d events, want the 3 stored", n)
	}
}

// countingModel is a read model that counts how often each event was applied.
type countingModel struct {
	mu      sync.Mutex
	storeID string
	applied map[string]int
	last    int64
}

func (m *countingModel) Checkpoint(context.Context) (string, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.storeID, m.last, nil
}

func (m *countingModel) Apply(_ context.Context, storeID string, e event.Stored) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied[e.ID]++ // every application counts, so that a double shows
	m.storeID, m.last = storeID, e.Position
	return nil
}

func (m *countingModel) Reset(_ context.Context, storeID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.storeID, m.last, m.applied = storeID, 0, map[string]int{}
	return nil
}

func (m *countingModel) counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[string]int, len(m.applied))
	for k, v := range m.applied {
		c[k] = v
	}
	return c
}

// A store that dies after storing and before publishing publishes everything when it
// starts again, and a subscribed consumer applies each event exactly once.
func TestPublishesAfterCrashBetweenStoreAndPublish(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{holdPublishing: true})
	model := &countingModel{applied: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := eventclient.Subscription{Name: testenv.Name(t), Types: []string{"crash.*"}, CaughtUp: make(chan struct{})}
	t.Cleanup(func() { deleteQueue(t, ts.conn, sub.Name+".events"); deleteQueue(t, ts.conn, sub.Name+".events.dead") })
	subDone := make(chan error, 1)
	go func() { subDone <- ts.client.Subscribe(ctx, sub, model, testenv.Logger(t)) }()
	<-sub.CaughtUp

	var ids []string
	for i := range 50 {
		e := newEvent("crash.tested", map[string]int{"i": i})
		ids = append(ids, e.ID)
		if r := ts.append(t, event.AppendRequest{Stream: fmt.Sprintf("crash-%d", i%5), Events: []event.New{e}}); !r.OK {
			t.Fatalf("append: %+v", r)
		}
	}
	time.Sleep(200 * time.Millisecond) // give a wrongly published event time to arrive
	if n := len(model.counts()); n != 0 {
		t.Fatalf("consumer got %d events while publishing was held, want 0", n)
	}
	ts.stop()
	cfg := ts.cfg
	cfg.holdPublishing = false
	startStore(t, cfg)
	testenv.Eventually(t, 20*time.Second, "all 50 events applied", func() bool { return len(model.counts()) == 50 })
	time.Sleep(300 * time.Millisecond) // a duplicate delivery would arrive by now
	counts := model.counts()
	for _, id := range ids {
		if counts[id] != 1 {
			t.Errorf("event %s applied %d times, want 1", id, counts[id])
		}
	}
	cancel()
	if err := <-subDone; err != nil {
		t.Errorf("Subscribe: %v", err)
	}
}

// RabbitMQ drops every connection twice while writers append and a subscriber follows:
// appending, publishing and consuming resume by themselves, every acknowledged append is
// stored, and the subscriber applies each stored event exactly once.
func TestConnectionsDroppedMidStream(t *testing.T) {
	t.Parallel()
	vhost := testenv.VHost(t)
	name := testenv.Name(t)
	cfg := Config{DataDir: t.TempDir(), RabbitMQURL: vhost, Exchange: name + ".events", AppendQueue: name + ".append"}
	ts := startStoreOn(t, cfg, vhost)
	model := &countingModel{applied: map[string]int{}}
	sub := eventclient.Subscription{Name: name, Types: []string{"drop.*"}, CaughtUp: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = ts.client.Subscribe(ctx, sub, model, testenv.Logger(t)) }()
	<-sub.CaughtUp

	const writers, perWriter = 4, 100
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				e := newEvent("drop.tested", map[string]int{"w": w, "i": i})
				actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
				r, err := ts.client.Append(actx, event.AppendRequest{Stream: fmt.Sprintf("drop-%d", w), Events: []event.New{e}})
				acancel()
				if err != nil || !r.OK {
					t.Errorf("append: %+v %v", r, err)
					return
				}
				mu.Lock()
				acked = append(acked, e.ID)
				mu.Unlock()
			}
		})
	}
	for _, at := range []int{100, 250} {
		testenv.Eventually(t, 30*time.Second, "appends go on", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= at
		})
		if n := testenv.DropConnections(t, vhost); n == 0 {
			t.Fatalf("dropped no connections at %d appends", at)
		}
	}
	wg.Wait()
	testenv.Eventually(t, 30*time.Second, "every acknowledged event applied", func() bool {
		return len(model.counts()) == writers*perWriter
	})
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive by now
	counts := model.counts()
	for _, id := range acked {
		if counts[id] != 1 {
			t.Errorf("event %s applied %d times, want 1", id, counts[id])
		}
	}
	if n := len(ts.feed(t)); n != writers*perWriter {
		t.Errorf("feed has %d events, want %d", n, writers*perWriter)
	}
}
