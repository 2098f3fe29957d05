package bus

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// directReplyTo is RabbitMQ's pseudo-queue for RPC replies: no reply queue to declare, the
// reply goes straight to the consumer on the requesting channel.
const directReplyTo = "amq.rabbitmq.reply-to"

// rpcClient is the channel that all Calls share: it publishes the requests (in confirm
// mode) and consumes the replies, which it hands to the waiting Call by correlation id.
type rpcClient struct {
	mu      sync.Mutex
	current *rpcChannel
	waiters map[string]chan rpcReply
}

type rpcChannel struct {
	ch   *amqp.Channel
	gone chan struct{} // closed when ch is closed; its requests need sending again
}

type rpcReply struct {
	body     []byte
	returned bool // no queue took the request
}

func (c *conn) call(ctx context.Context, queue string, body []byte) ([]byte, error) {
	id := idgen.New()
	replies := make(chan rpcReply, 2)
	c.rpc.mu.Lock()
	if c.rpc.waiters == nil {
		c.rpc.waiters = map[string]chan rpcReply{}
	}
	c.rpc.waiters[id] = replies
	c.rpc.mu.Unlock()
	defer func() {
		c.rpc.mu.Lock()
		delete(c.rpc.waiters, id)
		c.rpc.mu.Unlock()
	}()

	request := amqp.Publishing{
		CorrelationId: id,
		ReplyTo:       directReplyTo,
		ContentType:   "application/json",
		DeliveryMode:  amqp.Transient, // see Conn.Call
		Headers:       amqp.Table(withTrace(ctx, nil)),
		Body:          body,
	}
	fail := func(err error) ([]byte, error) { return nil, fmt.Errorf("bus: call %s: %w", queue, err) }
	pauses := newBackoff(minBackoff)
	for {
		r, err := c.rpcChannel(ctx)
		if err != nil {
			return fail(err)
		}
		// mandatory: if no queue takes the request, the broker returns it at once.
		confirm, err := r.ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, request)
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			continue // the channel is gone; rpcChannel opens the next one
		}
		confirmed := confirm.Done()
		for resend := false; !resend; {
			select {
			case reply := <-replies:
				if !reply.returned {
					return reply.body, nil
				}
				// The server has not declared its queue yet: ask again after a pause.
				c.logger.Debug("rpc request returned: no queue", "queue", queue)
				if !sleep(ctx, pauses.NextBackOff()) {
					return fail(fmt.Errorf("no queue %q: %w", queue, ctx.Err()))
				}
				resend = true
			case <-confirmed:
				confirmed = nil
				if !confirm.Acked() {
					resend = true
				} else {
					c.obs.Published(1)
				}
			case <-r.gone:
				resend = true
			case <-ctx.Done():
				return fail(ctx.Err())
			case <-c.life.Done():
				return nil, ErrClosed
			}
		}
	}
}

// rpcChannel returns the shared RPC channel, opening it on the current connection if
// needed.
func (c *conn) rpcChannel(ctx context.Context) (*rpcChannel, error) {
	for {
		c.rpc.mu.Lock()
		r := c.rpc.current
		c.rpc.mu.Unlock()
		if r != nil && !r.ch.IsClosed() {
			return r, nil
		}
		a, err := c.connection(ctx)
		if err != nil {
			return nil, err
		}
		c.rpc.mu.Lock()
		if c.rpc.current == r { // nobody opened a new one meanwhile
			r, err = c.openRPC(a)
			if err == nil {
				c.rpc.current = r
			}
		}
		c.rpc.mu.Unlock()
		if err != nil {
			if !a.IsClosed() {
				return nil, fmt.Errorf("open rpc channel: %w", err)
			}
			c.markLost(a)
		}
	}
}

// openRPC opens a channel that consumes direct replies and returned requests, and hands
// them to their waiters until the channel closes. Called with c.rpc.mu held.
func (c *conn) openRPC(a *amqp.Connection) (*rpcChannel, error) {
	ch, err := a.Channel()
	if err != nil {
		return nil, err
	}
	replies, err := ch.Consume(directReplyTo, "", true, false, false, false, nil)
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = ch.Close()
		return nil, err
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 16))
	r := &rpcChannel{ch: ch, gone: make(chan struct{})}
	go func() {
		defer close(r.gone)
		for replies != nil || returns != nil {
			select {
			case d, ok := <-replies:
				if !ok {
					replies = nil
					_ = ch.Close() // a cancelled consumer: make rpcChannel open a new one
					continue
				}
				c.deliverReply(d.CorrelationId, rpcReply{body: d.Body})
			case ret, ok := <-returns:
				if !ok {
					returns = nil
					continue
				}
				c.deliverReply(ret.CorrelationId, rpcReply{returned: true})
			}
		}
	}()
	return r, nil
}

// deliverReply hands a reply to the Call waiting for id, if any (a late duplicate finds
// none).
func (c *conn) deliverReply(id string, r rpcReply) {
	c.rpc.mu.Lock()
	w := c.rpc.waiters[id]
	c.rpc.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w <- r:
	default:
	}
}

func (c *conn) serve(ctx context.Context, cfg QueueConfig, reply func(ctx context.Context, d Delivery) ([]byte, error)) (*Consumer, error) {
	cfg.Durable = true
	k := c.newConsumer(cfg)
	k.process = func(ctx context.Context, d amqp.Delivery) {
		req := delivery(d)
		log := k.logger.With("correlation_id", d.CorrelationId)
		ctx, span := c.startConsumeSpan(ctx, k.label, d)
		body, err := reply(ctx, req)
		telemetry.EndSpan(span, err)
		if err != nil {
			log.Warn("rpc reply failed; requeueing the request", "error", err)
			k.settle(d.Nack(false, true))
			return
		}
		if d.ReplyTo == "" {
			log.Warn("rpc request without reply_to; answer dropped")
			k.settle(d.Ack(false))
			return
		}
		// The answer is computed: send it even if ctx is ending, but not forever.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = c.publish(pctx, "", []Routed{{Key: d.ReplyTo, Message: Message{
			CorrelationID: d.CorrelationId,
			Body:          body,
			Transient:     true,
		}}})
		if err != nil {
			log.Warn("publish rpc reply; requeueing the request", "error", err)
			k.settle(d.Nack(false, true))
			return
		}
		k.settle(d.Ack(false))
		c.obs.Consumed(k.label)
	}
	return k.start(ctx)
}
