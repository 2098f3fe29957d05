package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

// Two per-instance queues (as two replicas of a service keep) send their dead letters to
// one durable "<shared>.dead" (DeadLetterTo), and Replay of one of them reaches both
// queues, and no other.
func TestDeadLetterToASharedQueue(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	ctx := t.Context()
	ex := exchange(t, c)
	shared := uniqueName(t)
	cleanupQueues(t, c, shared)

	replayed := make(chan string, 4)
	consume := func(name string) {
		_, err := c.Consume(ctx, bus.QueueConfig{Exchange: ex, Keys: []string{"k"}, DeadLetter: true, DeadLetterTo: shared},
			func(_ context.Context, d bus.Delivery) error {
				if d.Headers[bus.ReplayHeader] != nil {
					replayed <- name
					return nil
				}
				return bus.ErrPermanent
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	consume("a")
	consume("b")
	// Another service's queue, whose dead letters are its own.
	other := uniqueName(t)
	cleanupQueues(t, c, other)
	if _, err := c.Consume(ctx, bus.QueueConfig{Name: other, Durable: true, DeadLetter: true},
		func(_ context.Context, d bus.Delivery) error { replayed <- "other"; return nil }); err != nil {
		t.Fatal(err)
	}

	if err := c.Publish(ctx, ex, "k", bus.Message{ID: "poison", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	var depth int
	if !eventually(t, 10*time.Second, func() bool { depth, _ = c.QueueDepth(ctx, shared+".dead"); return depth == 2 }) {
		t.Fatalf("got %d messages in %s.dead, want the poison from both per-instance queues", depth, shared)
	}
	if err := c.Replay(ctx, shared, "poison"); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for deadline := time.After(5 * time.Second); got["a"]+got["b"] < 2; {
		select {
		case name := <-replayed:
			got[name]++
		case <-deadline:
			t.Fatalf("replayed to %v within 5 s, want a and b once each", got)
		}
	}
	select {
	case name := <-replayed:
		got[name]++
	case <-time.After(300 * time.Millisecond):
	}
	if got["a"] != 1 || got["b"] != 1 || got["other"] != 0 {
		t.Errorf("replayed to %v, want a and b once each and no other queue", got)
	}
}

// DeleteUnusedQueue keeps a queue that has a consumer, deletes one that has none, and
// takes a missing queue as deleted.
func TestDeleteUnusedQueue(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t))
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)
	ctx, stop := context.WithCancel(t.Context())
	cons, err := c.Consume(ctx, bus.QueueConfig{Name: queue, Durable: true}, func(context.Context, bus.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteUnusedQueue(t.Context(), queue); !errors.Is(err, bus.ErrQueueInUse) {
		t.Errorf("with a consumer: got %v, want ErrQueueInUse", err)
	}
	if _, err := c.QueueDepth(t.Context(), queue); err != nil {
		t.Errorf("the queue in use is gone: %v", err)
	}
	stop()
	<-cons.Done
	if err := c.DeleteUnusedQueue(t.Context(), queue); err != nil {
		t.Errorf("without a consumer: got %v, want nil", err)
	}
	if _, err := c.QueueDepth(t.Context(), queue); err == nil {
		t.Errorf("the unused queue is still there")
	}
	if err := c.DeleteUnusedQueue(t.Context(), queue); err != nil {
		t.Errorf("a missing queue: got %v, want nil", err)
	}
}
