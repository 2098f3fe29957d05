package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

func TestDialUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := bus.Dial(ctx, "amqp://guest:secret@127.0.0.1:1/", testLogger(t))
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	for _, want := range []string{"RABBITMQ_URL=amqp://guest:xxxxx@127.0.0.1:1/", "rabbitmq-server -detached"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got error %q, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("got error %q, want the password hidden", err)
	}
}

func TestPublishConsume(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	ex := exchange(t, c)
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	var mu sync.Mutex
	got := map[string]bus.Delivery{}
	cons, err := c.Consume(ctx, bus.QueueConfig{
		Name: queue, Exchange: ex, Keys: []string{"thing.*"}, Durable: true, DeadLetter: true,
	}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		got[d.ID] = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cons.Queue != queue {
		t.Errorf("got queue %q, want %q", cons.Queue, queue)
	}

	const n = 100
	var batch []bus.Routed
	for i := range n {
		batch = append(batch, bus.Routed{Key: "thing.made", Message: bus.Message{
			ID: fmt.Sprint("m", i), Type: "thing.made", Body: []byte(`{"i":` + strconv.Itoa(i) + `}`),
		}})
	}
	if err := c.PublishBatch(ctx, ex, batch); err != nil {
		t.Fatal(err)
	}
	single := bus.Message{
		ID: "single", Type: "thing.changed", CorrelationID: "corr-1", ReplyTo: "nobody",
		ContentType: "text/plain", Headers: map[string]any{"user": "alice"}, Body: []byte("hello"),
		Transient: true,
	}
	if err := c.Publish(ctx, ex, "thing.changed", single); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, ex, "other.key", bus.Message{ID: "unbound"}); err != nil {
		t.Fatal(err)
	}

	if !eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n+1 }) {
		t.Fatalf("got %d deliveries, want %d", len(got), n+1)
	}
	mu.Lock()
	defer mu.Unlock()
	m0 := got["m0"]
	if m0.ContentType != "application/json" || m0.Transient || m0.Type != "thing.made" || string(m0.Body) != `{"i":0}` ||
		m0.Exchange != ex || m0.RoutingKey != "thing.made" {
		t.Errorf("got %+v, want a persistent application/json thing.made from %s", m0, ex)
	}
	s := got["single"]
	if s.CorrelationID != single.CorrelationID || s.ReplyTo != single.ReplyTo || s.ContentType != "text/plain" ||
		s.Headers["user"] != "alice" || !s.Transient || string(s.Body) != "hello" {
		t.Errorf("got %+v, want the fields of %+v", s, single)
	}
	if _, ok := got["unbound"]; ok {
		t.Error("got a message published with an unbound key, want none")
	}
}

func TestPublishToMissingExchange(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	err := c.Publish(t.Context(), uniqueName(t), "k", bus.Message{Body: []byte("{}")})
	if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Errorf("got %v, want a NOT_FOUND error", err)
	}
	// The shared channels still work.
	if err := c.Publish(t.Context(), "", "no-such-queue", bus.Message{Body: []byte("{}")}); err != nil {
		t.Errorf("got %v after a failed publish, want nil", err)
	}
}

func TestOrderWithConcurrencyOne(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	ex := exchange(t, c)
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	const n = 500
	var batch []bus.Routed
	for i := range n {
		batch = append(batch, bus.Routed{Key: "seq", Message: bus.Message{ID: strconv.Itoa(i)}})
	}
	var mu sync.Mutex
	var order []int
	failed := false
	_, err := c.Consume(ctx, bus.QueueConfig{
		Name: queue, Exchange: ex, Keys: []string{"seq"}, Durable: true, SingleActive: true,
		Backoff: 10 * time.Millisecond,
	}, func(_ context.Context, d bus.Delivery) error {
		i, _ := strconv.Atoi(d.ID)
		mu.Lock()
		defer mu.Unlock()
		if i == 7 && !failed { // one failure must not reorder anything
			failed = true
			return errors.New("transient")
		}
		order = append(order, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PublishBatch(ctx, ex, batch); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(order) >= n }) {
		t.Fatalf("got %d deliveries, want %d", len(order), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, got := range order {
		if got != i {
			t.Fatalf("got message %d at place %d, want %d", got, i, i)
		}
	}
}

func TestRetryThenDeadLetter(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	var attempts atomic.Int32
	var fixed atomic.Bool
	replayed := make(chan bus.Delivery, 1)
	cons, err := c.Consume(ctx, bus.QueueConfig{
		Name: queue, Durable: true, DeadLetter: true, MaxAttempts: 3, Backoff: 10 * time.Millisecond,
	}, func(_ context.Context, d bus.Delivery) error {
		if fixed.Load() {
			replayed <- d
			return nil
		}
		attempts.Add(1)
		return errors.New("boom")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "", cons.Queue, bus.Message{ID: "poison", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	var depth int
	if !eventually(t, 10*time.Second, func() bool { depth, _ = c.QueueDepth(ctx, queue+".dead"); return depth == 1 }) {
		t.Fatalf("got %d messages in %s.dead, want 1", depth, queue)
	}
	if got := attempts.Load(); got != 3 {
		t.Errorf("got %d attempts, want 3", got)
	}

	// Peeking does not remove it.
	for range 2 {
		dead, err := c.DeadLetters(ctx, queue, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 1 || dead[0].ID != "poison" || dead[0].Headers["x-death"] == nil {
			t.Fatalf("got dead letters %+v, want one poison with x-death", dead)
		}
	}
	if err := c.Discard(ctx, queue, "no-such-id"); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}

	// Replay puts it back into the queue; a fixed handler takes it.
	fixed.Store(true)
	if err := c.Replay(ctx, queue, "poison"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-replayed:
		if d.ID != "poison" || d.Headers[bus.ReplayHeader] == nil {
			t.Errorf("got %q replayed with headers %v, want poison with %s", d.ID, d.Headers, bus.ReplayHeader)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("got no replayed message within 10 s, want poison")
	}
	if depth, err := c.QueueDepth(ctx, queue+".dead"); depth != 0 || err != nil {
		t.Errorf("got %d, %v in the dead-letter queue after replay, want 0, nil", depth, err)
	}
}

func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	var attempts atomic.Int32
	_, err := c.Consume(ctx, bus.QueueConfig{Name: queue, Durable: true, DeadLetter: true, MaxAttempts: 5},
		func(context.Context, bus.Delivery) error {
			attempts.Add(1)
			return fmt.Errorf("decode: %w", bus.ErrPermanent)
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "", queue, bus.Message{ID: "bad", Body: []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	var depth int
	if !eventually(t, 10*time.Second, func() bool { depth, _ = c.QueueDepth(ctx, queue+".dead"); return depth == 1 }) {
		t.Fatalf("got %d messages in %s.dead, want 1", depth, queue)
	}
	if got := attempts.Load(); got != 1 {
		t.Errorf("got %d attempts, want 1", got)
	}
	if err := c.Discard(ctx, queue, "bad"); err != nil {
		t.Fatal(err)
	}
	if depth, _ := c.QueueDepth(ctx, queue+".dead"); depth != 0 {
		t.Errorf("got %d dead letters after Discard, want 0", depth)
	}
}

func TestCancelDuringRetryRequeues(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	ctx, cancel := context.WithCancel(t.Context())
	failing := make(chan struct{}, 1)
	cons, err := c.Consume(ctx, bus.QueueConfig{Name: queue, Durable: true, DeadLetter: true, Backoff: time.Minute},
		func(context.Context, bus.Delivery) error {
			select {
			case failing <- struct{}{}:
			default:
			}
			return errors.New("boom")
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(t.Context(), "", queue, bus.Message{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failing:
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called within 10 s")
	}
	cancel()
	select {
	case <-cons.Done:
	case <-time.After(10 * time.Second):
		t.Fatal("consumer not done within 10 s of cancel")
	}
	var depth int
	if !eventually(t, 5*time.Second, func() bool { depth, _ = c.QueueDepth(t.Context(), queue); return depth == 1 }) {
		t.Errorf("got %d messages in the queue after cancel, want 1 (requeued)", depth)
	}
	if dead, _ := c.QueueDepth(t.Context(), queue+".dead"); dead != 0 {
		t.Errorf("got %d dead letters, want 0", dead)
	}
}

func TestServerNamedQueue(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	ex := exchange(t, c)
	got := make(chan string, 10)
	cons, err := c.Consume(ctx, bus.QueueConfig{Exchange: ex, Keys: []string{"#"}}, func(_ context.Context, d bus.Delivery) error {
		got <- d.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cons.Queue == "" {
		t.Fatal("got empty queue name, want a generated one")
	}
	if err := c.Publish(ctx, ex, "a.b", bus.Message{ID: "fan"}); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != "fan" {
			t.Errorf("got %q, want fan", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("got nothing within 10 s, want fan")
	}
}

func TestCallServe(t *testing.T) {
	t.Parallel()
	server := dial(t, uniqueName(t))
	client := dial(t, uniqueName(t))
	ctx := t.Context()
	queue := uniqueName(t)
	cleanupQueues(t, server, queue)

	_, err := server.Serve(ctx, bus.QueueConfig{Name: queue, Concurrency: 8}, func(_ context.Context, d bus.Delivery) ([]byte, error) {
		return []byte(strings.ToUpper(string(d.Body))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const calls = 300
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			body := fmt.Sprint("req-", i)
			got, err := client.Call(ctx, queue, []byte(body))
			if err != nil {
				errs <- err
			} else if want := strings.ToUpper(body); string(got) != want {
				errs <- fmt.Errorf("got %q, want %q", got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCallBeforeServe(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := c.Serve(ctx, bus.QueueConfig{Name: queue}, func(context.Context, bus.Delivery) ([]byte, error) {
			return []byte("late"), nil
		})
		if err != nil {
			t.Error(err)
		}
	}()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := c.Call(callCtx, queue, []byte("{}"))
	if err != nil || string(got) != "late" {
		t.Errorf("got %q, %v; want late, nil", got, err)
	}
}

func TestCloseEndsConsumers(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	queue := uniqueName(t)
	cons, err := c.Consume(context.Background(), bus.QueueConfig{Name: queue}, func(context.Context, bus.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cons.Done:
	default:
		t.Error("consumer still running after Close, want done")
	}
	if err := c.Publish(t.Context(), "", queue, bus.Message{}); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("got %v after Close, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("got %v from a second Close, want nil", err)
	}
}

// TestFaultPublishConsume drops every connection of the test (rabbitmqctl
// close_connection) twice while a producer publishes and a consumer consumes: both must
// carry on by themselves, and every message whose Publish returned nil must arrive.
func TestFaultPublishConsume(t *testing.T) {
	t.Parallel()
	prefix := uniqueName(t)
	producer := dial(t, prefix+"-producer")
	consumer := dial(t, prefix+"-consumer")
	ctx := t.Context()
	ex := exchange(t, producer)
	queue := uniqueName(t)
	cleanupQueues(t, consumer, queue)

	var mu sync.Mutex
	seen := map[string]int{}
	_, err := consumer.Consume(ctx, bus.QueueConfig{
		Name: queue, Exchange: ex, Keys: []string{"fault"}, Durable: true, Concurrency: 4,
	}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		seen[d.ID]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Two producers: one Publish at a time, and batches of 20.
	const n = 2000
	var published atomic.Int32
	var confirmedMu sync.Mutex
	var confirmed []string
	var producers sync.WaitGroup
	produce := func(from, to, batch int) {
		for i := from; i < to; i += batch {
			var msgs []bus.Routed
			for j := i; j < min(i+batch, to); j++ {
				msgs = append(msgs, bus.Routed{Key: "fault", Message: bus.Message{ID: strconv.Itoa(j), Body: []byte("{}")}})
			}
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			var err error
			if batch == 1 {
				err = producer.Publish(pctx, ex, "fault", msgs[0].Message)
			} else {
				err = producer.PublishBatch(pctx, ex, msgs)
			}
			cancel()
			if err != nil {
				t.Errorf("publish %d..%d: %v", i, i+len(msgs)-1, err)
				continue
			}
			confirmedMu.Lock()
			for _, m := range msgs {
				confirmed = append(confirmed, m.ID)
			}
			confirmedMu.Unlock()
			published.Add(int32(len(msgs)))
		}
	}
	producers.Go(func() { produce(0, n/2, 1) })
	producers.Go(func() { produce(n/2, n, 20) })
	producerDone := make(chan struct{})
	go func() {
		producers.Wait()
		close(producerDone)
	}()

	for _, at := range []int32{500, 1200} {
		if !eventually(t, 60*time.Second, func() bool { return published.Load() >= at }) {
			t.Fatalf("got %d published, want %d before dropping connections", published.Load(), at)
		}
		if dropped := dropConnections(t, prefix); dropped < 2 {
			t.Errorf("got %d connections dropped, want at least 2 (producer and consumer)", dropped)
		}
	}
	select {
	case <-producerDone:
	case <-time.After(2 * time.Minute):
		t.Fatalf("producer stuck after %d publishes", published.Load())
	}
	missing := func() []string {
		confirmedMu.Lock()
		defer confirmedMu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		var m []string
		for _, id := range confirmed {
			if seen[id] == 0 {
				m = append(m, id)
			}
		}
		return m
	}
	if !eventually(t, 30*time.Second, func() bool { return len(missing()) == 0 }) {
		m := missing()
		t.Fatalf("got %d confirmed messages never consumed (e.g. %v), want 0", len(m), m[:min(len(m), 10)])
	}
	mu.Lock()
	dups := 0
	for _, k := range seen {
		dups += k - 1
	}
	mu.Unlock()
	t.Logf("published %d of %d, consumed all of them, %d duplicates", len(confirmed), n, dups)
}

// TestCallSurvivesDroppedConnection drops the client's connection while its request is
// being served: the reply goes nowhere, and the client must ask again on its new
// connection.
func TestCallSurvivesDroppedConnection(t *testing.T) {
	t.Parallel()
	prefix := uniqueName(t)
	server := dial(t, prefix+"-server")
	client := dial(t, prefix+"-client")
	ctx := t.Context()
	queue := uniqueName(t)
	cleanupQueues(t, server, queue)

	var requests atomic.Int32
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	_, err := server.Serve(ctx, bus.QueueConfig{Name: queue, Concurrency: 2}, func(_ context.Context, d bus.Delivery) ([]byte, error) {
		if requests.Add(1) == 1 {
			arrived <- struct{}{}
			<-release // hold the first request until the client lost its connection
		}
		return slices.Concat([]byte("re:"), d.Body), nil
	})
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		body, err := client.Call(callCtx, queue, []byte("ping"))
		done <- result{body, err}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("request not served within 10 s")
	}
	if dropped := dropConnections(t, prefix+"-client"); dropped != 1 {
		t.Errorf("got %d connections dropped, want 1", dropped)
	}
	close(release)
	select {
	case r := <-done:
		if r.err != nil || string(r.body) != "re:ping" {
			t.Errorf("got %q, %v; want re:ping, nil", r.body, r.err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("Call did not return within 40 s")
	}
	if got := requests.Load(); got < 2 {
		t.Errorf("got %d requests served, want at least 2 (the request sent again)", got)
	}
}

// An in-order consumer acks the messages of a burst together, and acks every one: when
// its connection drops after the burst, none comes again, and none is left in the queue.
func TestInOrderConsumerAcksEveryHandledMessage(t *testing.T) {
	t.Parallel()
	name := uniqueName(t)
	c := dial(t, name)
	ctx := t.Context()
	ex := exchange(t, c)
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	const n = 1000
	var batch []bus.Routed
	for i := range n {
		batch = append(batch, bus.Routed{Key: "seq", Message: bus.Message{ID: strconv.Itoa(i)}})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	handled := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	_, err := c.Consume(ctx, bus.QueueConfig{Name: queue, Exchange: ex, Keys: []string{"seq"}, Durable: true,
		Prefetch: 200}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		seen[d.ID]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PublishBatch(ctx, ex, batch); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, 20*time.Second, func() bool { return handled() >= n }) {
		t.Fatalf("handled %d messages, want %d", handled(), n)
	}
	if dropped := dropConnections(t, name); dropped == 0 {
		t.Fatal("found no connection to drop")
	}
	time.Sleep(time.Second) // the consumer resumes; unacked messages would come again
	mu.Lock()
	for id, times := range seen {
		if times != 1 {
			t.Errorf("message %s handled %d times, want once", id, times)
		}
	}
	mu.Unlock()
	if depth, err := c.QueueDepth(ctx, queue); err != nil || depth != 0 {
		t.Errorf("queue holds %d messages (%v), want 0", depth, err)
	}
}
