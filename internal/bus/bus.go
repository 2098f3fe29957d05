// Package bus is msdemo's RabbitMQ client, built on github.com/rabbitmq/amqp091-go.
//
// A Conn survives the broker: when the connection drops (broker restart,
// `rabbitmqctl close_all_connections`) it dials again with backoff, declares the topology
// again, and resumes every consumer; a Publish or Call in flight is retried on the new
// connection. Nothing is acknowledged before it is durable: Publish returns only after the
// broker confirms, and a consumer acks a message only after its handler returned nil.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Message is what is published and delivered.
type Message struct {
	ID            string // AMQP message_id; for events, the event id
	Type          string // AMQP type; for events, the event type
	CorrelationID string
	ReplyTo       string
	ContentType   string // application/json when empty
	Headers       map[string]any
	Body          []byte
	// Transient publishes in memory only; the default is persistent (delivery mode 2).
	Transient bool
}

// Delivery is a received message.
type Delivery struct {
	Message
	Exchange    string
	RoutingKey  string
	Redelivered bool
}

// Handler processes one delivery. Returning nil acks it. Returning an error retries it in
// place with backoff (so a single-active consumer keeps its order), and after
// QueueConfig.MaxAttempts it is rejected into the queue's dead-letter queue.
// A handler that returns an error wrapping ErrPermanent is dead-lettered at once.
// ctx is the Consume ctx: when it is cancelled (or the Conn closed), a handler that then
// fails, or waits for its next try, has its message requeued for another consumer.
// A panic in a handler counts as an error.
type Handler func(ctx context.Context, d Delivery) error

// ErrPermanent marks a handler error that retrying cannot cure (e.g. a malformed body).
var ErrPermanent = errors.New("permanent failure")

// ErrClosed is returned by calls on a closed Conn.
var ErrClosed = errors.New("bus: connection closed")

// DeadExchange is the direct exchange that every dead-letter queue is bound to, with the
// queue's name as routing key.
const DeadExchange = "msdemo.dead"

// ReplayExchange is the direct exchange that Replay publishes to: every queue declared with
// DeadLetter is bound to it with the name its dead letters are kept under (Name, or
// DeadLetterTo), so a replayed message reaches the durable queue, or every per-instance
// queue, that the dead letter came from.
const ReplayExchange = "msdemo.replay"

// QueueConfig declares a queue and how it is consumed.
type QueueConfig struct {
	// Name of the queue. For a per-instance queue leave it empty: a unique name is
	// generated once and kept across reconnects (the broker's own "amq.gen-" names change
	// with every connection).
	Name string
	// Exchange and Keys: the queue is bound to Exchange once per routing key.
	Exchange string
	Keys     []string
	// Durable queues survive a broker restart; non-durable ones are exclusive and
	// auto-deleted (one per instance, e.g. an SSE fan-out).
	Durable bool
	// SingleActive sets x-single-active-consumer, so that across replicas one consumer at a
	// time gets messages, in order.
	SingleActive bool
	// DeadLetter declares "<Name>.dead", bound to DeadExchange with key <Name>, and routes
	// rejected messages there (x-dead-letter-exchange). Without it, a message that failed
	// MaxAttempts times or with ErrPermanent is dropped (and logged).
	DeadLetter bool
	// DeadLetterTo, with DeadLetter, sends the rejected messages to "<DeadLetterTo>.dead"
	// instead, declared durable: a per-instance queue's dead letters kept with those of
	// the durable queue of that name.
	DeadLetterTo string
	// MaxAttempts is how often a failing message is tried before it is dead-lettered
	// (default 5). Backoff is the first pause between tries, doubled each time up to 5 s
	// (default 100 ms); each pause is drawn at random within ±20% of that.
	MaxAttempts int
	Backoff     time.Duration
	// Prefetch is how many unacked messages the broker sends ahead (default 32).
	// Concurrency is how many messages are handled at once (default 1, in order).
	Prefetch    int
	Concurrency int
	// Resumed, if not nil, is called each time the consumer resumes on a new channel after
	// it lost its own (not at the first start), before it handles the new channel's first
	// delivery. A non-durable queue is deleted with its connection, so what was published
	// meanwhile never reached it: Resumed lets the owner know it may have missed messages.
	Resumed func()
}

// Conn is a self-healing connection to RabbitMQ. It is safe for concurrent use.
type Conn struct {
	impl *conn
}

// Dial connects to url and keeps the connection alive until Close. It retries the first
// connection with backoff until ctx is done (or for 10 s when ctx has no deadline), and then
// fails with an error that names RABBITMQ_URL (password hidden) and how to start the broker;
// bad credentials or a bad URL fail at once. logger must not be nil.
//
// After that, a background goroutine watches the connection until Close: when it drops, it
// dials again with backoff (100 ms doubling to 5 s, ±20% at random, so that the clients
// of a restarted broker do not all come back at once), declares the exchanges recorded by
// DeclareExchange again, and every consumer resumes by itself.
func Dial(ctx context.Context, url string, logger *slog.Logger, opts ...DialOption) (*Conn, error) {
	return dial(ctx, url, logger, opts...)
}

// A DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	name      string
	observer  Observer
	queueType QueueType
}

// QueueType is the kind of RabbitMQ queue that a Conn declares its durable queues as
// (RABBITMQ_QUEUE_TYPE). Per-instance queues are always classic: they are exclusive to
// their connection, which a quorum queue cannot be.
type QueueType string

const (
	// Classic queues live on one broker node: the default, and all a single broker needs.
	Classic QueueType = "classic"
	// Quorum queues are replicated over a majority of a RabbitMQ cluster's nodes (Raft),
	// so a message the broker confirmed survives the loss of a minority of them. A queue
	// keeps the type it was first declared with: to move a running shop's queues from
	// classic to quorum, drain and delete them (or migrate them) first.
	Quorum QueueType = "quorum"
)

// ParseQueueType reads a RABBITMQ_QUEUE_TYPE: "classic" (or empty) or "quorum".
func ParseQueueType(s string) (QueueType, error) {
	switch t := QueueType(s); t {
	case "", Classic:
		return Classic, nil
	case Quorum:
		return Quorum, nil
	default:
		return "", fmt.Errorf("queue type %q: want classic or quorum", s)
	}
}

// WithQueueType declares the Conn's durable queues (subscriptions, their dead letters, the
// event store's append queue) as t; the default is Classic.
func WithQueueType(t QueueType) DialOption {
	return func(o *dialOptions) { o.queueType = t }
}

// WithName names the connection (AMQP client property connection_name), so that the
// management UI and `rabbitmqctl list_connections client_properties` show which component
// it belongs to.
func WithName(name string) DialOption {
	return func(o *dialOptions) { o.name = name }
}

// Observer is told what a Conn does, for its metrics (package telemetry's Component is
// one; the bus itself measures nothing, so that it need not know how the numbers are
// kept). Its methods are called on the bus's goroutines: they must be quick and safe for
// concurrent use.
type Observer interface {
	// Connected: the first connection is up.
	Connected()
	// Published: the broker confirmed n messages (Publish, PublishBatch, a Call's
	// request, an RPC reply).
	Published(n int)
	// Consuming: a consumer of queue started. Consumed: a delivery from queue was
	// handled and is acked. DeadLettered: a delivery from queue failed for good and was
	// rejected, into the queue's dead-letter queue, or dropped if it has none. For a
	// per-instance queue, queue is "<connection name>.instance", the same for every
	// instance, rather than its generated name.
	Consuming(queue string)
	Consumed(queue string)
	DeadLettered(queue string)
	// Reconnected: a lost connection was dialled again.
	Reconnected()
}

// WithObserver reports what the Conn does to o.
func WithObserver(o Observer) DialOption {
	return func(opts *dialOptions) { opts.observer = o }
}

// noObserver is the Observer of a Conn dialled without one.
type noObserver struct{}

func (noObserver) Connected()          {}
func (noObserver) Published(int)       {}
func (noObserver) Consuming(string)    {}
func (noObserver) Consumed(string)     {}
func (noObserver) DeadLettered(string) {}
func (noObserver) Reconnected()        {}

// Close stops reconnecting, ends consumers (their context is cancelled; in-flight
// messages are acked or requeued), waits up to 5 s for in-flight publishes, and closes the
// connection. Calls made after Close return ErrClosed. Close is idempotent.
func (c *Conn) Close() error { return c.impl.close() }

// DeclareExchange declares a durable exchange of kind ("topic", "fanout", "direct") and
// declares it again after every reconnect.
func (c *Conn) DeclareExchange(ctx context.Context, name, kind string) error {
	return c.impl.declareExchange(ctx, name, kind)
}

// Publish sends msg to exchange with routing key and returns once the broker confirmed it.
// If the connection drops before the confirm, it publishes again on the next connection
// (at-least-once; consumers deduplicate by message id). It returns an error only when ctx
// is done, the Conn is closed, the exchange does not exist, or msg is invalid. Many
// goroutines may publish at once: their confirms are awaited in parallel.
func (c *Conn) Publish(ctx context.Context, exchange, key string, msg Message) error {
	return c.impl.publish(ctx, exchange, []Routed{{Key: key, Message: msg}})
}

// Routed is a message with its routing key, for PublishBatch.
type Routed struct {
	Key string
	Message
}

// PublishBatch publishes msgs in order to exchange and returns once the broker confirmed
// all of them. Confirms are awaited together, which is much faster than one Publish each.
// On a connection drop or a nack, everything from the first unconfirmed message on is
// published again, in order (so a consumer may see a few messages twice, never out of order
// for the first time).
func (c *Conn) PublishBatch(ctx context.Context, exchange string, msgs []Routed) error {
	return c.impl.publish(ctx, exchange, msgs)
}

// Consume declares the queue of cfg and hands each delivery to h until ctx is done, across
// reconnects. It returns the broker-assigned queue name (for a per-instance queue) as soon
// as the queue is declared and consuming; the consumer goroutine then runs until ctx is
// done, and Done reports when it has finished with every in-flight message.
func (c *Conn) Consume(ctx context.Context, cfg QueueConfig, h Handler) (*Consumer, error) {
	return c.impl.consume(ctx, cfg, h)
}

// Consumer is a running consumer.
type Consumer struct {
	Queue string        // the queue's name
	Done  chan struct{} // closed when the consumer has stopped
}

// Call sends body to queue as an RPC request and waits for the reply (with direct
// reply-to), until ctx is done. A request whose connection drops before a reply is sent
// again, so RPC servers must be idempotent (the event store is, by event id). The request
// is transient: its reply could not outlive a broker restart either (direct reply-to
// ends with the channel), and the caller sends it again, so writing it to disk would buy
// nothing.
func (c *Conn) Call(ctx context.Context, queue string, body []byte) ([]byte, error) {
	return c.impl.call(ctx, queue, body)
}

// Serve declares the durable queue and answers each request with reply until ctx is done.
// The request is acked after the reply was published; a reply error nacks and requeues.
func (c *Conn) Serve(ctx context.Context, cfg QueueConfig, reply func(ctx context.Context, d Delivery) ([]byte, error)) (*Consumer, error) {
	return c.impl.serve(ctx, cfg, reply)
}
