package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

// messageType is the AMQP type of an announcement.
const messageType = "registry.announcement"

// An Option configures Announce and Listen.
type Option func(*options)

type options struct {
	exchange string
}

// WithExchange announces on, or listens to, exchange instead of Exchange. Tests use it
// to keep their announcements away from every other registry on the same broker.
func WithExchange(exchange string) Option {
	return func(o *options) { o.exchange = exchange }
}

func newOptions(opts []Option) options {
	o := options{exchange: Exchange}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Announce publishes inst on Exchange at once and then every interval (DefaultInterval if
// every <= 0) until ctx is done. A failed announcement is logged and tried again at the
// next tick, so a broker outage only delays the next one. When ctx is done it announces
// that inst is leaving (best effort, within a second) and returns nil; conn must stay open
// until Announce has returned. It returns an error at once if inst lacks a service,
// instance or URL, and when conn is closed.
func Announce(ctx context.Context, conn *bus.Conn, inst Instance, every time.Duration, logger *slog.Logger, opts ...Option) error {
	o := newOptions(opts)
	if inst.Service == "" || inst.Instance == "" || inst.URL == "" {
		return fmt.Errorf("announce %+v: service, instance and url are all required", inst)
	}
	if every <= 0 {
		every = DefaultInterval
	}
	logger = logger.With("service", inst.Service, "instance", inst.Instance)
	alive, err := json.Marshal(announcement{Instance: inst})
	if err != nil {
		return fmt.Errorf("encode announcement: %w", err)
	}
	leaving, err := json.Marshal(announcement{Instance: inst, Leaving: true})
	if err != nil {
		return fmt.Errorf("encode announcement: %w", err)
	}

	ticker := time.NewTicker(every)
	defer ticker.Stop()
	declared, failing := false, false
	for {
		err := func() error {
			// One attempt may take at most one interval, so a stuck broker does not pile
			// announcements up.
			ctx, cancel := context.WithTimeout(ctx, every)
			defer cancel()
			if !declared {
				if err := conn.DeclareExchange(ctx, o.exchange, "fanout"); err != nil {
					return fmt.Errorf("declare exchange %s: %w", o.exchange, err)
				}
				declared = true
			}
			return publish(ctx, conn, o.exchange, alive)
		}()
		switch {
		case errors.Is(err, bus.ErrClosed):
			return fmt.Errorf("announce %s: %w", inst.Instance, err)
		case err != nil && ctx.Err() == nil && !failing:
			// Log the first failure and the recovery, not every tick of an outage.
			logger.WarnContext(ctx, "announce to registry failed; retrying", "error", err)
			failing = true
		case err == nil && failing:
			logger.InfoContext(ctx, "announce to registry works again")
			failing = false
		}

		select {
		case <-ticker.C:
		case <-ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if err := publish(ctx, conn, o.exchange, leaving); err != nil {
				logger.DebugContext(ctx, "announce leaving failed; the instance will expire instead", "error", err)
			}
			return nil
		}
	}
}

func publish(ctx context.Context, conn *bus.Conn, exchange string, body []byte) error {
	err := conn.Publish(ctx, exchange, "", bus.Message{Type: messageType, Body: body, Transient: true})
	if err != nil {
		return fmt.Errorf("publish announcement: %w", err)
	}
	return nil
}

// Listen feeds t with the announcements on Exchange until ctx is done. It declares the
// exchange and consumes it with a queue of its own (exclusive, auto-deleted), so every
// gateway instance hears every announcement. It returns an error if the queue cannot be
// set up, and nil once ctx is done and the consumer has stopped. Malformed announcements
// are rejected and otherwise ignored.
func (t *Table) Listen(ctx context.Context, conn *bus.Conn, opts ...Option) error {
	o := newOptions(opts)
	if err := conn.DeclareExchange(ctx, o.exchange, "fanout"); err != nil {
		return fmt.Errorf("declare exchange %s: %w", o.exchange, err)
	}
	consumer, err := conn.Consume(ctx, bus.QueueConfig{
		Exchange: o.exchange, // bound with key "", which a fanout ignores
		Prefetch: 64,
	}, t.handle)
	if err != nil {
		return fmt.Errorf("consume %s: %w", o.exchange, err)
	}
	<-consumer.Done
	return nil
}

func (t *Table) handle(_ context.Context, d bus.Delivery) error {
	var a announcement
	if err := json.Unmarshal(d.Body, &a); err != nil {
		return fmt.Errorf("decode announcement: %w: %w", bus.ErrPermanent, err)
	}
	if err := a.check(); err != nil {
		return fmt.Errorf("announcement %s: %w: %w", d.Body, bus.ErrPermanent, err)
	}
	if a.Leaving {
		t.Forget(a.Service, a.Instance.Instance)
		return nil
	}
	t.Observe(a.Instance)
	return nil
}

// check reports what makes a an announcement the table cannot use: a service and an
// instance name, and for an instance that is not leaving, an absolute http or https URL
// that the gateway can forward to.
func (a announcement) check() error {
	switch {
	case a.Service == "" || a.Instance.Instance == "":
		return errors.New("service or instance is empty")
	case a.Leaving:
		return nil
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q is not an absolute http or https URL", a.URL)
	}
	return nil
}
