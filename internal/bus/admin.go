package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ReplayHeader is set (to the time of the replay, RFC 3339) on a message that Replay put
// back into its queue, so that a consumer can apply it even if it thinks it has seen it.
const ReplayHeader = "x-msdemo-replay"

// ErrNotFound is returned by Replay and Discard when no dead letter has the given id.
var ErrNotFound = errors.New("bus: dead letter not found")

// QueueDepth returns how many messages are ready in queue (not counting the ones delivered
// and not yet acked). It fails if the queue does not exist.
func (c *Conn) QueueDepth(ctx context.Context, queue string) (int, error) {
	var n int
	err := c.impl.withChannel(ctx, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		n = q.Messages
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bus: depth of queue %s: %w", queue, err)
	}
	return n, nil
}

// DeleteQueue deletes queue and its messages; a missing queue is not an error.
func (c *Conn) DeleteQueue(ctx context.Context, queue string) error {
	return c.deleteQueue(ctx, queue, false)
}

// DeleteUnusedQueue deletes queue and its messages if no one consumes it; a missing queue
// is not an error, and one that has a consumer is kept and answers ErrQueueInUse.
func (c *Conn) DeleteUnusedQueue(ctx context.Context, queue string) error {
	err := c.deleteQueue(ctx, queue, true)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.PreconditionFailed {
		return ErrQueueInUse
	}
	return err
}

// ErrQueueInUse: DeleteUnusedQueue found a consumer on the queue.
var ErrQueueInUse = errors.New("bus: the queue has a consumer")

func (c *Conn) deleteQueue(ctx context.Context, queue string, ifUnused bool) error {
	err := c.impl.withChannel(ctx, func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(queue, ifUnused, false, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("bus: delete queue %s: %w", queue, err)
	}
	return nil
}

// DeadLetters returns up to limit messages of the dead-letter queue of queue
// ("<queue>.dead"), oldest first, without removing them: they are fetched unacked and go
// back to the dead-letter queue. Their headers hold RabbitMQ's x-death history (why, when,
// how often). While a DeadLetters, Replay or Discard runs, the messages it holds are not
// visible to another one.
func (c *Conn) DeadLetters(ctx context.Context, queue string, limit int) ([]Delivery, error) {
	var dead []Delivery
	err := c.impl.withChannel(ctx, func(ch *amqp.Channel) error {
		dead = dead[:0]
		for len(dead) < limit {
			d, ok, err := ch.Get(queue+".dead", false)
			if err != nil || !ok {
				return err
			}
			dead = append(dead, delivery(d))
		}
		return nil // closing the channel requeues them all
	})
	if err != nil {
		return nil, fmt.Errorf("bus: dead letters of %s: %w", queue, err)
	}
	return dead, nil
}

// Replay moves the dead letter with message id out of "<queue>.dead" back into queue, or
// into every per-instance queue whose dead letters are kept there (through
// ReplayExchange, so no other queue gets it), with its body and headers plus ReplayHeader.
// It is removed from the dead-letter queue only after the broker confirmed the copy.
// It returns ErrNotFound if there is no such message.
func (c *Conn) Replay(ctx context.Context, queue, id string) error {
	return c.impl.takeDeadLetter(ctx, queue, id, func(d amqp.Delivery) error {
		m := delivery(d).Message
		m.Headers = maps.Clone(m.Headers)
		if m.Headers == nil {
			m.Headers = map[string]any{}
		}
		m.Headers[ReplayHeader] = time.Now().UTC().Format(time.RFC3339)
		return c.impl.publish(ctx, ReplayExchange, []Routed{{Key: queue, Message: m}})
	})
}

// Discard deletes the dead letter with message id from "<queue>.dead". It returns
// ErrNotFound if there is no such message.
func (c *Conn) Discard(ctx context.Context, queue, id string) error {
	return c.impl.takeDeadLetter(ctx, queue, id, func(amqp.Delivery) error { return nil })
}

// takeDeadLetter finds the message with id in queue's dead-letter queue, calls fn with it,
// and acks it if fn returned nil. Every other message fetched goes back.
func (c *conn) takeDeadLetter(ctx context.Context, queue, id string, fn func(amqp.Delivery) error) error {
	err := c.withChannel(ctx, func(ch *amqp.Channel) error {
		for {
			d, ok, err := ch.Get(queue+".dead", false)
			if err != nil {
				return err
			}
			if !ok {
				return ErrNotFound
			}
			if d.MessageId != id {
				continue // requeued when the channel closes
			}
			if err := fn(d); err != nil {
				return err
			}
			return d.Ack(false)
		}
	})
	if err != nil {
		return fmt.Errorf("bus: dead letter %s of %s: %w", id, queue, err)
	}
	return nil
}

// DeleteExchange deletes exchange and stops declaring it again after reconnects; a missing
// exchange is not an error.
func (c *Conn) DeleteExchange(ctx context.Context, exchange string) error {
	c.impl.mu.Lock()
	delete(c.impl.exchanges, exchange)
	delete(c.impl.checked, exchange)
	c.impl.mu.Unlock()
	err := c.impl.withChannel(ctx, func(ch *amqp.Channel) error {
		return ch.ExchangeDelete(exchange, false, false)
	})
	if err != nil {
		return fmt.Errorf("bus: delete exchange %s: %w", exchange, err)
	}
	return nil
}
