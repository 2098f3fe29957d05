package bus_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/msdemo/msdemo/internal/bus"
)

func TestParseQueueType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bus.QueueType{"": bus.Classic, "classic": bus.Classic, "quorum": bus.Quorum} {
		if got, err := bus.ParseQueueType(in); err != nil || got != want {
			t.Errorf("ParseQueueType(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"Quorum", "stream", "x"} {
		if _, err := bus.ParseQueueType(in); err == nil {
			t.Errorf("ParseQueueType(%q): got no error", in)
		}
	}
}

// With WithQueueType(Quorum), a subscription's durable queue and its dead-letter queue are
// quorum queues, single-active and in order, and a message that fails for good reaches the
// dead letters; a per-instance queue stays a classic exclusive one and still works.
func TestQuorumQueues(t *testing.T) {
	t.Parallel()
	c := dial(t, uniqueName(t), bus.WithQueueType(bus.Quorum))
	ctx := t.Context()
	ex := exchange(t, c)
	queue := uniqueName(t)
	cleanupQueues(t, c, queue)

	var mu sync.Mutex
	var got []string
	handler := func(_ context.Context, d bus.Delivery) error {
		if d.ID == "bad" {
			return bus.ErrPermanent
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d.ID)
		return nil
	}
	if _, err := c.Consume(ctx, bus.QueueConfig{Name: queue, Exchange: ex, Keys: []string{"k"}, Durable: true,
		SingleActive: true, DeadLetter: true}, handler); err != nil {
		t.Fatal(err)
	}
	var perInstance []string
	if _, err := c.Consume(ctx, bus.QueueConfig{Exchange: ex, Keys: []string{"k"}}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		perInstance = append(perInstance, d.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var batch []bus.Routed
	for _, id := range []string{"1", "bad", "2", "3"} {
		batch = append(batch, bus.Routed{Key: "k", Message: bus.Message{ID: id}})
	}
	if err := c.PublishBatch(ctx, ex, batch); err != nil {
		t.Fatal(err)
	}
	if !eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 && len(perInstance) == 4 }) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("got %v on the quorum queue and %v on the per-instance one, want [1 2 3] and all four", got, perInstance)
	}
	mu.Lock()
	if !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("quorum queue: got %v, want [1 2 3] in order", got)
	}
	mu.Unlock()

	raw, err := amqp.Dial(rabbitURL())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// A queue keeps its type: declaring it again as classic, with its other arguments as
	// they are, is refused with 406 PRECONDITION_FAILED, which is how a client tells a
	// quorum queue from a classic one.
	asClassic := map[string]amqp.Table{
		queue: {"x-queue-type": "classic", "x-single-active-consumer": true,
			"x-dead-letter-exchange": bus.DeadExchange, "x-dead-letter-routing-key": queue},
		queue + ".dead": {"x-queue-type": "classic"},
	}
	for name, args := range asClassic {
		ch, err := raw.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclare(name, true, false, false, false, args)
		var amqpErr *amqp.Error
		if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.PreconditionFailed {
			t.Errorf("declare %s as classic: got %v, want 406 PRECONDITION_FAILED (it is a quorum queue)", name, err)
		}
		if err == nil {
			_ = ch.Close()
		}
	}
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if !eventually(t, 5*time.Second, func() bool {
		q, err := ch.QueueDeclarePassive(queue+".dead", true, false, false, false, nil)
		return err == nil && q.Messages == 1
	}) {
		t.Errorf("the dead-letter queue %s.dead does not hold the message that failed", queue)
	}
}
