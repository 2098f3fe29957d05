package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// consumer runs one QueueConfig across reconnects.
type consumer struct {
	c       *conn
	cfg     QueueConfig
	label   string // the queue's name for the Observer
	logger  *slog.Logger
	process func(ctx context.Context, d amqp.Delivery) // acks or nacks d

	// In-order consumers (Concurrency 1) hold back the ack of a handled message while the
	// next is already in hand, and ack them together (ackHandled). Only serveInOrder's
	// goroutine touches these.
	nextInHand bool           // the message being handled is not the last one taken
	held       int            // handled messages not acked yet
	lastHeld   *amqp.Delivery // the last of them
}

// maxHeldAcks bounds how many handled messages an in-order consumer acks at once.
const maxHeldAcks = 64

// session is a consumer's channel on one connection.
type session struct {
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
}

func (c *conn) consume(ctx context.Context, cfg QueueConfig, h Handler) (*Consumer, error) {
	k := c.newConsumer(cfg)
	k.process = func(ctx context.Context, d amqp.Delivery) { k.handle(ctx, h, d) }
	return k.start(ctx)
}

func (c *conn) newConsumer(cfg QueueConfig) *consumer {
	cfg.MaxAttempts = cmp.Or(max(cfg.MaxAttempts, 0), 5)
	cfg.Backoff = cmp.Or(max(cfg.Backoff, 0), minBackoff)
	cfg.Concurrency = cmp.Or(max(cfg.Concurrency, 0), 1)
	cfg.Prefetch = max(cmp.Or(max(cfg.Prefetch, 0), 32), cfg.Concurrency)
	label := cfg.Name
	if cfg.Name == "" {
		label = cmp.Or(c.name, "bus") + ".instance"
		cfg.Name = label + "." + idgen.Short(16)
	}
	return &consumer{c: c, cfg: cfg, label: label, logger: c.logger.With("queue", cfg.Name)}
}

// start declares and consumes the queue, then runs the consumer in its own goroutine until
// ctx is done or the Conn is closed.
func (k *consumer) start(ctx context.Context) (*Consumer, error) {
	c := k.c
	if !c.enterConsumer() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.life, cancel)
	s, err := k.open(ctx)
	if err != nil {
		stop()
		cancel()
		c.consumers.Done()
		return nil, fmt.Errorf("bus: consume %s: %w", k.cfg.Name, err)
	}
	c.obs.Consuming(k.label)
	done := make(chan struct{})
	go func() {
		defer c.consumers.Done()
		defer close(done)
		defer cancel()
		defer stop()
		k.run(ctx, s)
	}()
	return &Consumer{Queue: k.cfg.Name, Done: done}, nil
}

// run handles deliveries, and after a lost channel opens the next session, until ctx is
// done.
func (k *consumer) run(ctx context.Context, s *session) {
	for {
		k.serve(ctx, s)
		if ctx.Err() != nil {
			return
		}
		k.logger.Warn("consumer lost its channel; resuming")
		var err error
		s, err = retry(ctx, minBackoff, 0, func(err error, next time.Duration) {
			k.logger.Error("resume consumer", "error", err, "retry_in_ms", next.Milliseconds())
		}, func() (*session, error) { return k.open(ctx) })
		if err != nil { // only ctx ends the retries
			return
		}
		k.logger.Info("consumer resumed")
		if k.cfg.Resumed != nil {
			k.cfg.Resumed()
		}
	}
}

// serve hands deliveries to cfg.Concurrency workers until the channel closes or ctx is
// done, waits for the messages in hand, and closes the channel, which returns the
// prefetched but unhandled messages to the queue.
func (k *consumer) serve(ctx context.Context, s *session) {
	if k.cfg.Concurrency == 1 {
		k.serveInOrder(ctx, s)
		_ = s.ch.Close()
		return
	}
	var wg sync.WaitGroup
	for range k.cfg.Concurrency {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d, ok := <-s.deliveries:
					if !ok {
						return
					}
					if ctx.Err() != nil {
						_ = d.Nack(false, true)
						return
					}
					k.process(ctx, d)
				}
			}
		})
	}
	wg.Wait()
	_ = s.ch.Close()
}

// serveInOrder is serve for one worker: it takes every delivery that is ready (up to
// maxHeldAcks) and handles them in order, so that ackHandled knows whether another is
// in hand. It acks the held ones before it returns.
func (k *consumer) serveInOrder(ctx context.Context, s *session) {
	k.held, k.lastHeld = 0, nil
	defer k.flushAcks()
	for {
		var inHand []amqp.Delivery
		select {
		case <-ctx.Done():
			return
		case d, ok := <-s.deliveries:
			if !ok {
				return
			}
			inHand = append(inHand, d)
		}
	take:
		for len(inHand) < maxHeldAcks {
			select {
			case d, ok := <-s.deliveries:
				if !ok {
					break take
				}
				inHand = append(inHand, d)
			default:
				break take
			}
		}
		for i, d := range inHand {
			if ctx.Err() != nil {
				for _, d := range inHand[i:] {
					_ = d.Nack(false, true)
				}
				return
			}
			k.nextInHand = i < len(inHand)-1
			k.process(ctx, d)
		}
	}
}

// open declares the queue with its bindings and dead-letter queue on the current
// connection, and starts consuming. It waits for a connection while there is none.
func (k *consumer) open(ctx context.Context) (*session, error) {
	for {
		a, err := k.c.connection(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := a.Channel()
		if err == nil {
			var s *session
			if s, err = k.declare(ch); err == nil {
				return s, nil
			}
			_ = ch.Close()
		}
		if !a.IsClosed() {
			return nil, err
		}
		k.c.markLost(a)
	}
}

func (k *consumer) declare(ch *amqp.Channel) (*session, error) {
	cfg := k.cfg
	durable, exclusive := cfg.Durable, !cfg.Durable
	args := amqp.Table{}
	deadKey := cmp.Or(cfg.DeadLetterTo, cfg.Name)
	deadDurable := durable || cfg.DeadLetterTo != ""
	var deadArgs amqp.Table
	if durable && k.c.queueType == Quorum {
		args["x-queue-type"] = string(Quorum)
	}
	if deadDurable && k.c.queueType == Quorum {
		deadArgs = amqp.Table{"x-queue-type": string(Quorum)}
	}
	if cfg.SingleActive {
		args["x-single-active-consumer"] = true
	}
	if cfg.DeadLetter {
		dead := deadKey + ".dead"
		if err := ch.ExchangeDeclare(DeadExchange, "direct", true, false, false, false, nil); err != nil {
			return nil, fmt.Errorf("declare exchange %s: %w", DeadExchange, err)
		}
		if _, err := ch.QueueDeclare(dead, deadDurable, !deadDurable, !deadDurable, false, deadArgs); err != nil {
			return nil, fmt.Errorf("declare queue %s: %w", dead, err)
		}
		if err := ch.QueueBind(dead, deadKey, DeadExchange, false, nil); err != nil {
			return nil, fmt.Errorf("bind %s to %s: %w", dead, DeadExchange, err)
		}
		args["x-dead-letter-exchange"] = DeadExchange
		args["x-dead-letter-routing-key"] = deadKey
		if err := ch.ExchangeDeclare(ReplayExchange, "direct", true, false, false, false, nil); err != nil {
			return nil, fmt.Errorf("declare exchange %s: %w", ReplayExchange, err)
		}
	}
	if _, err := ch.QueueDeclare(cfg.Name, durable, !durable, exclusive, false, args); err != nil {
		return nil, fmt.Errorf("declare queue: %w", err)
	}
	if cfg.DeadLetter {
		if err := ch.QueueBind(cfg.Name, deadKey, ReplayExchange, false, nil); err != nil {
			return nil, fmt.Errorf("bind to %s with %q: %w", ReplayExchange, deadKey, err)
		}
	}
	if cfg.Exchange != "" {
		keys := cfg.Keys
		if len(keys) == 0 {
			keys = []string{""}
		}
		for _, key := range keys {
			if err := ch.QueueBind(cfg.Name, key, cfg.Exchange, false, nil); err != nil {
				return nil, fmt.Errorf("bind to %s with %q: %w", cfg.Exchange, key, err)
			}
		}
	}
	if err := ch.Qos(cfg.Prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := ch.Consume(cfg.Name, "", false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("start consuming: %w", err)
	}
	return &session{ch: ch, deliveries: deliveries}, nil
}

// handle calls h for d, retrying in place, and acks or rejects d.
func (k *consumer) handle(ctx context.Context, h Handler, d amqp.Delivery) {
	del := delivery(d)
	ctx, span := k.c.startConsumeSpan(ctx, k.label, d)
	attempt := 0
	log := func(err error) *slog.Logger {
		return k.logger.With("message_id", del.ID, "type", del.Type, "attempt", attempt, "error", err)
	}
	_, err := retry(ctx, k.cfg.Backoff, k.cfg.MaxAttempts, func(err error, next time.Duration) {
		log(err).Warn("handler failed; retrying", "retry_in_ms", next.Milliseconds())
	}, func() (struct{}, error) {
		attempt++
		err := callHandler(ctx, h, del)
		if errors.Is(err, ErrPermanent) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	})
	telemetry.EndSpan(span, err)
	switch {
	case err == nil:
		k.ackHandled(d)
		k.c.obs.Consumed(k.label)
	case ctx.Err() != nil: // shutting down: let the next consumer try
		k.settle(d.Nack(false, true))
	default: // permanent, or tried MaxAttempts times
		if k.cfg.DeadLetter {
			log(err).Error("handler failed; dead-lettering", "dead_queue", cmp.Or(k.cfg.DeadLetterTo, k.cfg.Name)+".dead")
		} else {
			log(err).Error("handler failed; dropping (no dead-letter queue)")
		}
		k.settle(d.Nack(false, false))
		k.c.obs.DeadLettered(k.label)
	}
}

// ackHandled acks d, a message handled successfully. An in-order consumer with the next
// message already in hand holds the ack back, up to maxHeldAcks, and then acks all held
// ones with one "multiple" ack: one frame for the broker to handle instead of one per
// message. A held ack lost with the channel means the broker delivers those messages
// again, which every consumer tolerates (an ack lost after handling did that already).
func (k *consumer) ackHandled(d amqp.Delivery) {
	if k.cfg.Concurrency != 1 {
		k.settle(d.Ack(false))
		return
	}
	if k.nextInHand && k.held < maxHeldAcks {
		k.held++
		k.lastHeld = &d
		return
	}
	k.held, k.lastHeld = 0, nil
	k.settle(d.Ack(true)) // and every held one before it
}

// flushAcks acks the held messages, if any.
func (k *consumer) flushAcks() {
	if k.lastHeld != nil {
		k.settle(k.lastHeld.Ack(true))
	}
	k.held, k.lastHeld = 0, nil
}

// settle logs a failed ack or nack: the channel is gone, and the broker delivers the
// message again.
func (k *consumer) settle(err error) {
	if err != nil {
		k.logger.Debug("ack failed; the message will be redelivered", "error", err)
	}
}

// callHandler calls h and turns a panic into an error, so one bad message cannot crash
// the process.
func callHandler(ctx context.Context, h Handler, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, d)
}

// delivery maps an AMQP delivery.
func delivery(d amqp.Delivery) Delivery {
	return Delivery{
		Message: Message{
			ID:            d.MessageId,
			Type:          d.Type,
			CorrelationID: d.CorrelationId,
			ReplyTo:       d.ReplyTo,
			ContentType:   d.ContentType,
			Headers:       map[string]any(d.Headers),
			Body:          d.Body,
			Transient:     d.DeliveryMode != amqp.Persistent,
		},
		Exchange:    d.Exchange,
		RoutingKey:  d.RoutingKey,
		Redelivered: d.Redelivered,
	}
}
