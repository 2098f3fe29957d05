package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// publishChannels is the size of the pool of confirm-mode channels that publishes share.
// Publishes on one channel are pipelined (each waits for its own confirms, not for the
// others'), so a few channels are enough; more than one spreads the work over the broker's
// per-channel processes.
const publishChannels = 4

// publisher holds the confirm-mode channels of the current connection.
type publisher struct {
	mu    sync.Mutex
	chans [publishChannels]*amqp.Channel
	next  atomic.Uint32
}

var errNotConfirmed = errors.New("broker did not confirm")

func (c *conn) publish(ctx context.Context, exchange string, msgs []Routed) error {
	if len(msgs) == 0 {
		return nil
	}
	for i := range msgs {
		if err := amqp.Table(msgs[i].Headers).Validate(); err != nil {
			return fmt.Errorf("bus: publish to %q: message %d: headers: %w", exchange, i, err)
		}
	}
	if !c.enterPublish() {
		return ErrClosed
	}
	defer c.inflight.Done()

	total := len(msgs)
	pauses := newBackoff(minBackoff)
	for {
		if err := c.checkExchange(ctx, exchange); err != nil {
			return fmt.Errorf("bus: publish to %q: %w", exchange, err)
		}
		a, ch, err := c.publishChannel(ctx)
		if err != nil {
			return fmt.Errorf("bus: publish to %q: %d of %d unconfirmed: %w", exchange, len(msgs), total, err)
		}
		n, err := publishOn(ctx, ch, exchange, msgs)
		c.obs.Published(n)
		msgs = msgs[n:]
		if len(msgs) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("bus: publish to %q: %d of %d unconfirmed: %w", exchange, len(msgs), total, ctx.Err())
		}
		if !a.IsClosed() {
			// A nack, or the channel died while the connection lives (e.g. the exchange
			// was deleted): check the exchange again, after a pause.
			c.mu.Lock()
			delete(c.checked, exchange)
			c.mu.Unlock()
			if !sleep(ctx, pauses.NextBackOff()) {
				return fmt.Errorf("bus: publish to %q: %d of %d unconfirmed: %w", exchange, len(msgs), total, ctx.Err())
			}
		}
		c.logger.Debug("publishing again", "exchange", exchange, "unconfirmed", len(msgs), "error", err)
	}
}

// publishOn publishes msgs on ch and waits for their confirms. It returns how many of msgs,
// counted from the first, the broker confirmed.
func publishOn(ctx context.Context, ch *amqp.Channel, exchange string, msgs []Routed) (int, error) {
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	var sendErr error
	for _, m := range msgs {
		m.Headers = withTrace(ctx, m.Headers)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, m.Key, false, false, publishing(m.Message))
		if err != nil {
			sendErr = err
			break
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		select {
		case <-dc.Done():
		case <-ctx.Done():
			return i, ctx.Err()
		}
		if !dc.Acked() {
			return i, errNotConfirmed
		}
	}
	return len(confirms), sendErr
}

// publishing maps a Message to AMQP.
func publishing(m Message) amqp.Publishing {
	mode := amqp.Persistent
	if m.Transient {
		mode = amqp.Transient
	}
	return amqp.Publishing{
		MessageId:     m.ID,
		Type:          m.Type,
		CorrelationId: m.CorrelationID,
		ReplyTo:       m.ReplyTo,
		ContentType:   cmp.Or(m.ContentType, "application/json"),
		Headers:       amqp.Table(m.Headers),
		Body:          m.Body,
		DeliveryMode:  mode,
	}
}

// publishChannel returns one of the pool's confirm-mode channels on the current
// connection, opening it if needed.
func (c *conn) publishChannel(ctx context.Context) (*amqp.Connection, *amqp.Channel, error) {
	i := c.pub.next.Add(1) % publishChannels
	for {
		a, err := c.connection(ctx)
		if err != nil {
			return nil, nil, err
		}
		c.pub.mu.Lock()
		ch := c.pub.chans[i]
		if ch == nil || ch.IsClosed() {
			ch, err = a.Channel()
			if err == nil {
				if err = ch.Confirm(false); err != nil {
					_ = ch.Close()
				}
			}
			if err != nil {
				ch = nil
			}
			c.pub.chans[i] = ch
		}
		c.pub.mu.Unlock()
		if err == nil {
			return a, ch, nil
		}
		if !a.IsClosed() {
			return nil, nil, fmt.Errorf("open confirm channel: %w", err)
		}
		c.markLost(a)
	}
}

// checkExchange makes sure exchange exists before publishing to it, because publishing
// to a missing exchange closes the channel that other publishes share.
func (c *conn) checkExchange(ctx context.Context, exchange string) error {
	if exchange == "" {
		return nil
	}
	c.mu.Lock()
	ok := c.checked[exchange]
	c.mu.Unlock()
	if ok {
		return nil
	}
	err := c.withChannel(ctx, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(exchange, "topic", true, false, false, false, nil)
	})
	if err != nil {
		return fmt.Errorf("check exchange: %w", err)
	}
	c.mu.Lock()
	c.checked[exchange] = true
	c.mu.Unlock()
	return nil
}
