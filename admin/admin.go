// Package admin is the product managers' site: log in (managers only), a dashboard with
// revenue, order counts and a live feed of every event, categories and products (add,
// edit with conflict detection, delete), customers and their credit, all orders with
// their timelines live, an event store explorer, the services' dead letters (list,
// replay, discard) and the gateway's registry of service instances.
//
// It is built like the storefront, from internal/web: templ pages (pages.templ) inside
// web.Page, hx-boost, forms that post plainly and work without JavaScript (303 on
// success, the form again with messages on invalid input), sessions in Redis, CSRF
// protection. It holds no data of its own: every read and write goes through the gateway
// with the manager's token. Live updates come from the bus (a per-instance queue bound to
// every event type, web.Hub) and reach the browser as Server-Sent Events (GET
// /events/feed and /events/orders). routes.go lists the pages.
package admin

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

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/web"
)

// Config is what the admin site needs.
type Config struct {
	Addr       string // listen address, default ":5002"
	GatewayURL string // the REST API, default http://127.0.0.1:8080
	RedisURL   string // sessions, default redis://127.0.0.1:6379/0
	// SessionPrefix prefixes the session keys in Redis (default
	// "msdemo:admin:session:"); tests use their own.
	SessionPrefix string
	RabbitMQURL   string // the bus, for live updates
	// Exchange is the topic exchange of stored events (default event.Exchange).
	Exchange string
	// SecureCookie marks the session cookie Secure (serve over HTTPS); off by default for
	// http://localhost.
	SecureCookie bool
	// KeepAlive is the pause between SSE keep-alive comments (default 20 s).
	KeepAlive time.Duration
}

func (cfg Config) withDefaults() Config {
	cfg.Addr = cmp.Or(cfg.Addr, ":5002")
	cfg.GatewayURL = cmp.Or(cfg.GatewayURL, "http://127.0.0.1:8080")
	cfg.RedisURL = cmp.Or(cfg.RedisURL, "redis://127.0.0.1:6379/0")
	cfg.SessionPrefix = cmp.Or(cfg.SessionPrefix, "msdemo:admin:session:")
	cfg.RabbitMQURL = cmp.Or(cfg.RabbitMQURL, "amqp://guest:guest@127.0.0.1:5672/")
	cfg.Exchange = cmp.Or(cfg.Exchange, event.Exchange)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, 20*time.Second)
	return cfg
}

// CookieName is the admin site's session cookie. It differs from the storefront's:
// browsers share cookies across the ports of one host.
const CookieName = "msdemo_admin"

// Run serves the admin site until ctx is done. It listens first (a busy port fails at
// once), connects to Redis and RabbitMQ (an unreachable one fails with a hint), serves,
// and on cancel shuts down gracefully: open SSE streams end, requests in flight finish
// (10 s at most), then the bus and Redis are closed.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	sessions, err := web.OpenSessions(ctx, web.SessionConfig{RedisURL: cfg.RedisURL, Prefix: cfg.SessionPrefix,
		CookieName: CookieName, Secure: cfg.SecureCookie})
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer sessions.Close()
	conn, err := bus.Dial(ctx, cfg.RabbitMQURL, logger, bus.WithName("admin"))
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer conn.Close()

	hubCtx, stopHub := context.WithCancel(ctx)
	defer stopHub()
	hub := web.NewHub(logger)
	// Every event: the dashboard's feed shows them all.
	if err := hub.Run(hubCtx, conn, web.HubConfig{Exchange: cfg.Exchange, Keys: []string{"#"}}); err != nil {
		return fmt.Errorf("admin: %w", err)
	}

	srv := &http.Server{
		Handler:           NewServer(logger, web.NewClient(cfg.GatewayURL, nil), sessions, hub, cfg.KeepAlive),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	})
	logger.Info("admin listening", "addr", ln.Addr().String(), "gateway", cfg.GatewayURL)
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	stopHub() // ends every SSE stream, so Shutdown need not wait for them
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if shutErr := srv.Shutdown(shutdownCtx); shutErr != nil && err == nil {
		err = fmt.Errorf("admin: shut down: %w", shutErr)
	}
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve: %w", err)
	}
	return nil
}
