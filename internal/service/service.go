// Package service is the frame that msdemo's backend services (customer, product, order,
// accounting) run in. It holds what every service does the same way, and nothing of any
// one service. Each file is one job:
//
//   - service.go: Config, and Start, which opens what a service runs on (its listener,
//     its bus connection, its event store client and Progress) into a Runtime.
//   - serve.go: Serve, which serves the API (bodies limited, requests measured) and
//     runs the service's tasks until the context ends, then shuts down gracefully.
//   - announce.go: announcing the instance to the gateway on the registry exchange.
//   - api.go: API, the handler around a service's routes: /healthz and the readiness gate.
//   - middleware.go: the chain every request goes through (request id, panic
//     recovery, token authentication).
//   - decode.go: Decode, the one way a JSON body is read.
//   - errors.go: the errors the services share and Error, which maps them to statuses.
//   - page.go: PageParams, the ?limit= and ?after= of list endpoints.
//   - write.go: NewEvent and Write: append, then wait for the own read model
//     (read-your-writes).
//   - deadletters.go: the managers' dead-letter routes of the service's event queue.
//   - workers.go: Workers, the pool that works beside an event queue.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Config is what every service gets from main.
type Config struct {
	Name         string // the service, e.g. "product": its first path segment at the gateway
	Addr         string // HTTP listen address
	AdvertiseURL string // URL announced to the gateway; empty: http://127.0.0.1:<port>
	RabbitMQURL  string
	// QueueType is what the service's durable queues are declared as (default classic).
	QueueType bus.QueueType
	// EventstoreURL is the event store's HTTP API, read for catch-up.
	EventstoreURL string
	TokenKey      auth.Key
	// Exchange, AppendQueue and RegistryExchange default to the shop's names; tests that
	// run beside others set their own.
	Exchange         string
	AppendQueue      string
	RegistryExchange string
	// Metrics records the service's metrics (its HTTP requests, bus, subscription); nil
	// records none.
	Metrics *telemetry.Component
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
	// LargeBodies are the routes (http.ServeMux patterns) whose request bodies may be
	// larger than MaxBodyBytes, with their limit (httplimit.BodyLimit); set before Serve.
	LargeBodies map[string]int64
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
	opts := []bus.DialOption{bus.WithName(cfg.Name), bus.WithQueueType(cfg.QueueType)}
	if cfg.Metrics != nil {
		opts = append(opts, bus.WithObserver(cfg.Metrics))
	}
	conn, err := bus.Dial(ctx, cfg.RabbitMQURL, logger, opts...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Runtime{Config: cfg, Logger: logger, Listener: ln, Bus: conn,
		Events:   eventclient.New(conn, cfg.EventstoreURL, cfg.AppendQueue, cfg.Exchange, eventclient.WithMetrics(cfg.Metrics)),
		Progress: eventclient.NewProgress(), Subscription: cfg.Name}, nil
}

// Close closes the bus connection and the listener.
func (rt *Runtime) Close() {
	rt.Bus.Close()
	rt.Listener.Close()
}
