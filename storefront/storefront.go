// Package storefront is the customers' site: register, log in, browse categories and
// products, order, follow orders live, read invoices, edit the profile. It renders HTML
// with templ (pages.templ), enhances it with htmx (hx-boost, SSE), and works without
// JavaScript. It holds no data of its own: every read and write goes to the REST API
// through the gateway with the user's token, which the session (in Redis) keeps. Live
// order updates come from the bus (a per-instance queue, web.Hub) and reach the browser
// as Server-Sent Events (GET /events). routes.go lists the pages.
package storefront

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

// Config is what the storefront needs.
type Config struct {
	Addr       string // listen address, default ":5001"
	GatewayURL string // the REST API, default http://127.0.0.1:8080
	RedisURL   string // sessions, default redis://127.0.0.1:6379/0
	// SessionPrefix prefixes the session keys in Redis (default
	// "msdemo:storefront:session:"); tests use their own.
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
	cfg.Addr = cmp.Or(cfg.Addr, ":5001")
	cfg.GatewayURL = cmp.Or(cfg.GatewayURL, "http://127.0.0.1:8080")
	cfg.RedisURL = cmp.Or(cfg.RedisURL, "redis://127.0.0.1:6379/0")
	cfg.SessionPrefix = cmp.Or(cfg.SessionPrefix, "msdemo:storefront:session:")
	cfg.RabbitMQURL = cmp.Or(cfg.RabbitMQURL, "amqp://guest:guest@127.0.0.1:5672/")
	cfg.Exchange = cmp.Or(cfg.Exchange, event.Exchange)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, 20*time.Second)
	return cfg
}

// liveKeys are the events that can change what a customer sees of an order: the order's
// own, the reservations of the saga (they carry order_id) and the invoice.
var liveKeys = []string{"order.*", "invoice.*", "product.*", "customer.*"}

// Run serves the storefront until ctx is done. It listens first (a busy port fails at
// once), connects to Redis and RabbitMQ (an unreachable one fails with a hint), serves,
// and on cancel shuts down gracefully: open SSE streams end, requests in flight finish
// (10 s at most), then the bus and Redis are closed.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("storefront: listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	sessions, err := web.OpenSessions(ctx, web.SessionConfig{RedisURL: cfg.RedisURL, Prefix: cfg.SessionPrefix,
		CookieName: "msdemo_storefront", Secure: cfg.SecureCookie})
	if err != nil {
		return fmt.Errorf("storefront: %w", err)
	}
	defer sessions.Close()
	conn, err := bus.Dial(ctx, cfg.RabbitMQURL, logger, bus.WithName("storefront"))
	if err != nil {
		return fmt.Errorf("storefront: %w", err)
	}
	defer conn.Close()

	hubCtx, stopHub := context.WithCancel(ctx)
	defer stopHub()
	hub := web.NewHub(logger)
	if err := hub.Run(hubCtx, conn, web.HubConfig{Exchange: cfg.Exchange, Keys: liveKeys}); err != nil {
		return fmt.Errorf("storefront: %w", err)
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
	logger.Info("storefront listening", "addr", ln.Addr().String(), "gateway", cfg.GatewayURL)
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	stopHub() // ends every SSE stream, so Shutdown need not wait for them
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if shutErr := srv.Shutdown(shutdownCtx); shutErr != nil && err == nil {
		err = fmt.Errorf("storefront: shut down: %w", shutErr)
	}
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("storefront: serve: %w", err)
	}
	return nil
}
