package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	firstDialTimeout = 10 * time.Second // for Dial when ctx has no deadline
	minBackoff       = 100 * time.Millisecond
	maxBackoff       = 5 * time.Second
	backoffJitter    = 0.2             // each pause is drawn within ±20% of its nominal length
	closeWait        = 5 * time.Second // how long Close waits for consumers, then publishes
)

// newBackoff returns the bus's pauses between tries: NewBackoff(first, maxBackoff).
func newBackoff(first time.Duration) *backoff.ExponentialBackOff {
	return NewBackoff(first, maxBackoff)
}

// NewBackoff returns the shop's pauses between the tries of a retry loop: first, doubled
// after each try up to longest, each drawn at random within ±20% of that, so that the
// clients that lost a server together do not come back in step. NextBackOff never
// returns backoff.Stop; Reset starts again from first. Every retry loop of the shop
// pauses by it, so that they all back off alike.
func NewBackoff(first, longest time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: first, RandomizationFactor: backoffJitter,
		Multiplier: 2, MaxInterval: longest}
}

// retry calls op until it succeeds, returns an error wrapped by backoff.Permanent, has
// been called maxTries times (0: no limit), or ctx is done, pausing between calls as
// newBackoff(first) says; notify, if not nil, hears each failure and the pause after it.
// It returns op's last result, or ctx's error when ctx ended first.
func retry[T any](ctx context.Context, first time.Duration, maxTries int, notify backoff.Notify, op backoff.Operation[T]) (T, error) {
	return backoff.Retry(ctx, op, backoff.WithBackOff(newBackoff(first)), backoff.WithMaxTries(uint(maxTries)),
		backoff.WithMaxElapsedTime(0), backoff.WithNotify(notify))
}

// conn is the implementation behind Conn.
//
// One goroutine (supervise) owns reconnecting: it swaps c.amqp when the connection drops.
// Everything else asks connection() for the current one, and waits while there is none.
// Consumers and the RPC reply consumer notice a lost connection by their delivery channel
// closing, and open their channels again on the next connection.
type conn struct {
	url    string // with password, for dialing
	shown  string // without password, for errors and logs
	name   string
	logger *slog.Logger
	obs    Observer
	// queueType is what durable queues are declared as (WithQueueType).
	queueType QueueType

	// life is cancelled by Close; the supervisor, consumers and waiting calls end with it.
	life context.Context
	stop context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	amqp      *amqp.Connection  // nil while reconnecting
	ready     chan struct{}     // closed once amqp is set
	stopping  bool              // Close began: no new consumers
	closed    bool              // consumers ended: no new publishes
	exchanges map[string]string // name → kind, declared again after a reconnect
	checked   map[string]bool   // exchanges known to exist, for publish
	consumers sync.WaitGroup    // running consumers; Add only under mu while !closed
	inflight  sync.WaitGroup    // running publishes; Add only under mu while !closed

	pub publisher
	rpc rpcClient
}

func dial(ctx context.Context, rawURL string, logger *slog.Logger, opts ...DialOption) (*Conn, error) {
	if logger == nil {
		panic("bus: Dial with nil logger")
	}
	var o dialOptions
	for _, opt := range opts {
		opt(&o)
	}
	c := &conn{
		url:       rawURL,
		shown:     redact(rawURL),
		name:      o.name,
		logger:    logger,
		obs:       o.observer,
		queueType: cmp.Or(o.queueType, Classic),
		ready:     make(chan struct{}),
		exchanges: map[string]string{},
		checked:   map[string]bool{},
	}
	if o.name != "" {
		c.logger = logger.With("connection", o.name)
	}
	if c.obs == nil {
		c.obs = noObserver{}
	}
	if _, err := amqp.ParseURI(rawURL); err != nil {
		return nil, fmt.Errorf("bus: invalid RABBITMQ_URL=%s: %w", c.shown, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, firstDialTimeout)
		defer cancel()
	}
	var last error // the reason, rather than ctx's error, when ctx ends
	a, err := retry(ctx, minBackoff, 0, nil, func() (*amqp.Connection, error) {
		a, err := c.open()
		if last = err; isAuthError(err) {
			return nil, backoff.Permanent(err)
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("bus: RabbitMQ not reachable at RABBITMQ_URL=%s: %w; start it with `rabbitmq-server -detached`", c.shown, last)
	}
	c.life, c.stop = context.WithCancel(context.Background())
	c.setConnection(a)
	c.obs.Connected()
	go c.supervise(a)
	return &Conn{impl: c}, nil
}

// open dials one AMQP connection.
func (c *conn) open() (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	if c.name != "" {
		props["connection_name"] = c.name
	}
	return amqp.DialConfig(c.url, amqp.Config{
		Properties: props,
		Heartbeat:  10 * time.Second,
		Dial:       amqp.DefaultDial(5 * time.Second),
	})
}

// supervise waits for the connection a to drop, then dials again until it succeeds or
// Close is called.
func (c *conn) supervise(a *amqp.Connection) {
	for {
		lost := a.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case err := <-lost:
			c.markLost(a)
			if c.life.Err() != nil {
				return
			}
			c.logger.Warn("rabbitmq connection lost; reconnecting", "error", err)
		case <-c.life.Done():
			return
		}
		if a = c.reconnect(); a == nil {
			return
		}
	}
}

// reconnect dials with backoff and declares the recorded exchanges again. It returns nil
// when Close was called.
func (c *conn) reconnect() *amqp.Connection {
	attempt := 0
	a, err := retry(c.life, minBackoff, 0, func(err error, next time.Duration) {
		c.logger.Warn("rabbitmq reconnect failed", "error", err, "attempt", attempt, "retry_in_ms", next.Milliseconds())
	}, func() (*amqp.Connection, error) {
		attempt++
		a, err := c.open()
		if err != nil {
			return nil, err
		}
		if err := c.redeclare(a); err != nil {
			_ = a.Close()
			return nil, err
		}
		return a, nil
	})
	if err != nil { // only Close ends the retries
		return nil
	}
	c.setConnection(a)
	c.obs.Reconnected()
	c.logger.Info("rabbitmq reconnected", "attempts", attempt)
	return a
}

// redeclare declares the recorded exchanges on a fresh connection.
func (c *conn) redeclare(a *amqp.Connection) error {
	c.mu.Lock()
	exchanges := make(map[string]string, len(c.exchanges))
	for name, kind := range c.exchanges {
		exchanges[name] = kind
	}
	c.mu.Unlock()
	if len(exchanges) == 0 {
		return nil
	}
	ch, err := a.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	for name, kind := range exchanges {
		if err := ch.ExchangeDeclare(name, kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", name, err)
		}
	}
	return nil
}

func (c *conn) setConnection(a *amqp.Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.life.Err() != nil { // closed while dialing
		_ = a.Close()
		return
	}
	c.amqp = a
	close(c.ready)
}

// markLost forgets a if it is still the current connection, so that callers wait for the
// next one.
func (c *conn) markLost(a *amqp.Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.amqp == a {
		c.amqp = nil
		c.ready = make(chan struct{})
	}
}

// connection returns the current open connection, waiting while there is none. It fails
// with ctx's error, or ErrClosed after Close.
func (c *conn) connection(ctx context.Context) (*amqp.Connection, error) {
	for {
		c.mu.Lock()
		a, ready := c.amqp, c.ready
		c.mu.Unlock()
		if a != nil {
			if !a.IsClosed() {
				return a, nil
			}
			c.markLost(a) // the supervisor has not noticed yet
			continue
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.life.Done():
			return nil, ErrClosed
		}
	}
}

// withChannel runs fn on a fresh channel of the current connection and closes the channel.
// If the connection drops meanwhile, it runs fn again on the next connection.
func (c *conn) withChannel(ctx context.Context, fn func(ch *amqp.Channel) error) error {
	for {
		a, err := c.connection(ctx)
		if err != nil {
			return err
		}
		ch, err := a.Channel()
		if err == nil {
			err = fn(ch)
			_ = ch.Close()
		}
		if err != nil && a.IsClosed() && ctx.Err() == nil {
			c.markLost(a)
			continue
		}
		return err
	}
}

func (c *conn) declareExchange(ctx context.Context, name, kind string) error {
	err := c.withChannel(ctx, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclare(name, kind, true, false, false, false, nil)
	})
	if err != nil {
		return fmt.Errorf("bus: declare exchange %s (%s): %w", name, kind, err)
	}
	c.mu.Lock()
	c.exchanges[name] = kind
	c.checked[name] = true
	c.mu.Unlock()
	return nil
}

// enterPublish registers a publish that Close waits for. It reports false once Close has
// ended the consumers.
func (c *conn) enterPublish() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.inflight.Add(1)
	return true
}

// enterConsumer registers a consumer that Close waits for. It reports false after Close
// began.
func (c *conn) enterConsumer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return false
	}
	c.consumers.Add(1)
	return true
}

func (c *conn) close() error {
	c.closeOnce.Do(func() {
		// Consumers first: they finish their in-flight messages (an RPC server still
		// publishes its replies), then no new publishes, then the connection.
		c.mu.Lock()
		c.stopping = true
		c.mu.Unlock()
		c.stop()
		if !waitTimeout(&c.consumers, closeWait) {
			c.logger.Warn("closing with consumers still running")
		}
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		if !waitTimeout(&c.inflight, closeWait) {
			c.logger.Warn("closing with publishes still unconfirmed")
		}
		c.mu.Lock()
		a := c.amqp
		c.amqp = nil
		c.mu.Unlock()
		if a != nil {
			if err := a.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
				c.closeErr = fmt.Errorf("bus: close connection: %w", err)
			}
		}
	})
	return c.closeErr
}

// waitTimeout waits for wg and reports whether it finished within d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// sleep pauses for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isAuthError reports errors that retrying cannot cure.
func isAuthError(err error) bool {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.AccessRefused {
		return true
	}
	return errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrVhost) || errors.Is(err, amqp.ErrSASL)
}

// redact hides the password in an AMQP URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
