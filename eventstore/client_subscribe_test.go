package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/msdemo/msdemo/eventstore"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/testenv"
)

// orderedModel records every event applied to it, in order.
type orderedModel struct {
	mu      sync.Mutex
	storeID string
	events  []event.Stored
	resets  int
}

func (m *orderedModel) Checkpoint(context.Context) (string, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) == 0 {
		return m.storeID, 0, nil
	}
	return m.storeID, m.events[len(m.events)-1].Position, nil
}

func (m *orderedModel) Apply(_ context.Context, storeID string, e event.Stored) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.storeID = storeID
	m.events = append(m.events, e)
	return nil
}

func (m *orderedModel) Reset(_ context.Context, storeID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.storeID, m.events = storeID, nil
	m.resets++
	return nil
}

func (m *orderedModel) snapshot() []event.Stored {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]event.Stored(nil), m.events...)
}

// startStore runs an event store with its own exchange and append queue.
//
// The tests in client_*_test.go are internal/eventclient's, against the real store. They
// sit here, beside the store, because they start it: internal/ imports no component.
func startStore(t *testing.T, dataDir string) (*eventclient.Client, func()) {
	t.Helper()
	conn := testenv.Bus(t)
	name := testenv.Name(t)
	cfg := eventstore.Config{Addr: testenv.FreeAddr(t), DataDir: dataDir, RabbitMQURL: testenv.RabbitMQURL(),
		Exchange: name + ".events", AppendQueue: name + ".append"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eventstore.Run(ctx, cfg, testenv.Logger(t)) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("event store: %v", err)
		}
		_ = conn.DeleteQueue(context.Background(), cfg.AppendQueue)
	}
	testenv.WaitHealthy(t, "http://"+cfg.Addr+"/healthz", 20*time.Second)
	return eventclient.New(conn, "http://"+cfg.Addr, cfg.AppendQueue, cfg.Exchange), stop
}

func appendN(t *testing.T, c *eventclient.Client, from, n int, typ string) {
	t.Helper()
	for i := from; i < from+n; i++ {
		data, _ := json.Marshal(map[string]int{"i": i})
		r, err := c.Append(context.Background(), event.AppendRequest{Stream: fmt.Sprintf("item-%d", i%7),
			Events: []event.New{{ID: uuid.NewString(), Type: typ, Data: data}}})
		if err != nil || !r.OK {
			t.Fatalf("append %d: %+v %v", i, r, err)
		}
	}
}

// checkExactlyOnce fails unless model holds exactly the events with the given type in the
// store's feed, in position order, each once.
func checkExactlyOnce(t *testing.T, c *eventclient.Client, model *orderedModel, typ string) {
	t.Helper()
	page, err := c.Feed(context.Background(), 0, 1000, []string{typ})
	if err != nil {
		t.Fatal(err)
	}
	var want []event.Stored
	testenv.Eventually(t, 10*time.Second, "the model applies every event", func() bool {
		want = page.Events
		return len(model.snapshot()) >= len(want)
	})
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive by now
	got := model.snapshot()
	if len(got) != len(want) {
		t.Fatalf("model applied %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("applied[%d] is position %d, want position %d", i, got[i].Position, want[i].Position)
		}
	}
}

// Events stored before the subscription starts come from the feed, those stored while it
// catches up and after come from the bus; across the switch-over none is skipped or
// applied twice, and a restarted subscription goes on from its checkpoint.
func TestSubscribeCatchesUpThenFollowsLive(t *testing.T) {
	t.Parallel()
	client, stop := startStore(t, t.TempDir())
	defer stop()
	appendN(t, client, 0, 300, "item.added")
	appendN(t, client, 300, 20, "other.added") // not subscribed: filtered out

	model := &orderedModel{}
	sub := eventclient.Subscription{Name: testenv.Name(t), Types: []string{"item.*"}, CaughtUp: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Subscribe(ctx, sub, model, testenv.Logger(t)) }()
	// Writers keep appending while the subscription catches up and switches to live.
	var wg sync.WaitGroup
	wg.Go(func() { appendN(t, client, 320, 200, "item.added") })
	<-sub.CaughtUp
	wg.Wait()
	checkExactlyOnce(t, client, model, "item.added")

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	// While the subscription is down, the queue keeps what is published; after a restart
	// it catches up from the checkpoint and applies each event once.
	appendN(t, client, 520, 50, "item.added")
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	sub.CaughtUp = make(chan struct{})
	go func() { done <- client.Subscribe(ctx, sub, model, testenv.Logger(t)) }()
	<-sub.CaughtUp
	appendN(t, client, 570, 30, "item.added")
	checkExactlyOnce(t, client, model, "item.added")
	cancel()
	<-done
	if model.resets != 0 {
		t.Errorf("model was reset %d times, want 0", model.resets)
	}
}

// A read model whose checkpoint belongs to another store (the event store's data was
// replaced) is reset and rebuilt from the new store's position 0.
func TestSubscribeRebuildsForAnotherStore(t *testing.T) {
	t.Parallel()
	client, stop := startStore(t, t.TempDir())
	defer stop()
	appendN(t, client, 0, 10, "item.added")
	model := &orderedModel{storeID: "a-store-that-is-gone", events: []event.Stored{{ID: "old", Position: 99}}}
	sub := eventclient.Subscription{Name: testenv.Name(t), Types: []string{"item.added"}, CaughtUp: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = client.Subscribe(ctx, sub, model, testenv.Logger(t)) }()
	<-sub.CaughtUp
	if model.resets != 1 {
		t.Errorf("got %d resets, want 1", model.resets)
	}
	checkExactlyOnce(t, client, model, "item.added")
}
