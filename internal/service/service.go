// Package service is the frame that msdemo's backend services (customer, product, order,
// accounting) run in: their listener, bus connection and event store client, the
// middleware of their JSON APIs, announcing themselves to the gateway, graceful shutdown,
// and the write path (append, then wait for the own read model: read-your-writes).
// It holds what every service does the same way, and nothing of any one service.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/registry"
)

// Config is what every service gets from main.
type Config struct {
	Name         string // the service, e.g. "product": its first path segment at the gateway
	Addr         string // HTTP listen address
	AdvertiseURL string // URL announced to the gateway; empty: http://127.0.0.1:<port>
	RabbitMQURL  string
	// EventstoreURL is the event store's HTTP API, read for catch-up.
	EventstoreURL string
	TokenKey      auth.Key
	// Exchange, AppendQueue and RegistryExchange default to the shop's names; tests that
	// run beside others set their own.
	Exchange         string
	AppendQueue      string
	RegistryExchange string
}

// Runtime is a started service: what its handlers and read model use.
type Runtime struct {
	Config
	Logger   *slog.Logger
	Listener net.Listener
	Bus      *bus.Conn
	Events   *eventclient.Client
	// Progress is how far the service's read model has applied the events; Subscribe
	// with it so that Write can wait for it.
	Progress *eventclient.Progress
	// Checkpoint reads the read model's checkpoint (its ReadModel.Checkpoint), for
	// Write's wait when another replica is the active consumer. The service sets it
	// before serving.
	Checkpoint func(context.Context) (storeID string, position int64, err error)
	// Subscription is the name of the service's event subscription (queue
	// "<Subscription>.events"), for the dead-letter routes; Start sets it to Name, and a
	// test that subscribes under another name sets it too.
	Subscription string
}

// Start listens on cfg.Addr and connects to the bus. A busy port or an unreachable broker
// fails at once with an error that names the setting, and so does a cfg.TokenKey that
// cannot verify tokens (the zero auth.Key). Close releases both.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Runtime, error) {
	if err := cfg.TokenKey.Check(); err != nil {
		return nil, fmt.Errorf("%s: Config.TokenKey: %w", cfg.Name, err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	conn, err := bus.Dial(ctx, cfg.RabbitMQURL, logger, bus.WithName(cfg.Name))
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Runtime{Config: cfg, Logger: logger, Listener: ln, Bus: conn,
		Events:   eventclient.New(conn, cfg.EventstoreURL, cfg.AppendQueue, cfg.Exchange),
		Progress: eventclient.NewProgress(), Subscription: cfg.Name}, nil
}

// Close closes the bus connection and the listener.
func (rt *Runtime) Close() {
	rt.Bus.Close()
	rt.Listener.Close()
}

// Serve serves h and runs each task until ctx is done or one of them fails, and announces
// the instance to the gateway meanwhile. Then it shuts down: the server stops taking
// requests and finishes those in flight (10 s at most), the tasks end with ctx. It
// returns the first failure.
func (rt *Runtime) Serve(ctx context.Context, h http.Handler, tasks ...func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, task := range tasks {
		wg.Go(func() {
			if err := task(ctx); err != nil && ctx.Err() == nil {
				cancel(err)
			}
		})
	}
	wg.Go(func() {
		inst := registry.Instance{Service: rt.Name, Instance: registry.InstanceID(rt.Name),
			URL: cmp.Or(rt.AdvertiseURL, registry.LoopbackURL(rt.Listener.Addr()))}
		var opts []registry.Option
		if rt.RegistryExchange != "" {
			opts = append(opts, registry.WithExchange(rt.RegistryExchange))
		}
		if err := registry.Announce(ctx, rt.Bus, inst, 0, rt.Logger, opts...); err != nil {
			rt.Logger.Error("announce to the gateway", "error", err)
		}
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() {
		if err := srv.Serve(rt.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("serve HTTP: %w", err))
		}
	})
	rt.Logger.Info("service ready", "service", rt.Name, "addr", rt.Listener.Addr().String())
	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		rt.Logger.Warn("shutdown HTTP", "error", err)
	}
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Closed returns a function that reports whether ch is closed: a service's readiness, from
// its subscription's CaughtUp channel.
func Closed(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}
