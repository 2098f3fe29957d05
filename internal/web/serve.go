package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// SiteConfig is how one replica of a site runs. A zero field takes its default.
type SiteConfig struct {
	Addr       string // listen address, default the site's (SiteSpec.DefaultAddr)
	GatewayURL string // the REST API, default http://127.0.0.1:8080
	RedisURL   string // sessions, default redis://127.0.0.1:6379/0
	// SessionPrefix prefixes the session keys in Redis (default
	// "msdemo:<site name>:session:"); tests use their own.
	SessionPrefix string
	RabbitMQURL   string // the bus, for live updates
	// Exchange is the topic exchange of stored events (default event.Exchange).
	Exchange string
	// SecureCookie marks the session cookie Secure (serve over HTTPS); off by default for
	// http://localhost.
	SecureCookie bool
	// KeepAlive is the pause between SSE keep-alive comments (default 20 s).
	KeepAlive time.Duration
	// Metrics records the site's metrics (its HTTP requests by route pattern, its SSE
	// clients, its bus); nil records none.
	Metrics *telemetry.Component
}

// SiteSpec is what one site brings to RunSite: its name, defaults, which events reach its
// live views, and its handler.
type SiteSpec struct {
	Name        string // "storefront", "admin": in logs, errors and the bus connection's name
	DefaultAddr string // e.g. ":5001"
	// CookieName is the session cookie; it must differ between the sites, because browsers
	// share cookies across the ports of one host.
	CookieName string
	// LiveKeys are the routing keys (event types or patterns) of the events the site's Hub
	// receives, e.g. "order.*" or "#" for all.
	LiveKeys []string
	// NewHandler builds the site's handler (the site's NewServer).
	NewHandler func(logger *slog.Logger, api *Client, sessions *Sessions, hub *Hub, keepAlive time.Duration) http.Handler
}

func (cfg SiteConfig) withDefaults(spec SiteSpec) SiteConfig {
	cfg.Addr = cmp.Or(cfg.Addr, spec.DefaultAddr)
	cfg.GatewayURL = cmp.Or(cfg.GatewayURL, "http://127.0.0.1:8080")
	cfg.RedisURL = cmp.Or(cfg.RedisURL, "redis://127.0.0.1:6379/0")
	cfg.SessionPrefix = cmp.Or(cfg.SessionPrefix, "msdemo:"+spec.Name+":session:")
	cfg.RabbitMQURL = cmp.Or(cfg.RabbitMQURL, "amqp://guest:guest@127.0.0.1:5672/")
	cfg.Exchange = cmp.Or(cfg.Exchange, event.Exchange)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, 20*time.Second)
	return cfg
}

// RunSite serves the site of spec until ctx is done, its requests and SSE clients
// measured by cfg.Metrics. It listens first (a busy port fails
// at once), connects to Redis and RabbitMQ (an unreachable one fails with a hint), runs
// the Hub (a queue bound to spec.LiveKeys while a browser follows a live view), serves,
// and on cancel shuts down gracefully: open SSE streams end, requests in flight finish
// (10 s at most), then the bus and Redis are closed. Its errors start with spec.Name.
func RunSite(ctx context.Context, spec SiteSpec, cfg SiteConfig, logger *slog.Logger) error {
	cfg = cfg.withDefaults(spec)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", spec.Name, cfg.Addr, err)
	}
	defer ln.Close()
	sessions, err := OpenSessions(ctx, SessionConfig{RedisURL: cfg.RedisURL, Prefix: cfg.SessionPrefix,
		CookieName: spec.CookieName, Secure: cfg.SecureCookie})
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Name, err)
	}
	defer sessions.Close()
	dialOpts := []bus.DialOption{bus.WithName(spec.Name)}
	if cfg.Metrics != nil {
		dialOpts = append(dialOpts, bus.WithObserver(cfg.Metrics))
	}
	conn, err := bus.Dial(ctx, cfg.RabbitMQURL, logger, dialOpts...)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Name, err)
	}
	defer conn.Close()

	hubCtx, stopHub := context.WithCancel(ctx)
	defer stopHub()
	hub := NewHub(logger)
	if err := hub.Run(hubCtx, conn, HubConfig{Exchange: cfg.Exchange, Keys: spec.LiveKeys}); err != nil {
		return fmt.Errorf("%s: %w", spec.Name, err)
	}

	cfg.Metrics.ServesSSE()
	srv := &http.Server{
		// Measured outside the site's own middleware (Site.Handler), so that every answer
		// counts, under the pattern of the chi route that served it.
		// Traced too: a site is where a browser's request starts its trace (docs/tracing.md).
		Handler: cfg.Metrics.HTTP(telemetry.TraceHTTP(spec.Name, true,
			spec.NewHandler(logger, NewClient(cfg.GatewayURL, nil), sessions, hub, cfg.KeepAlive))),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// The server runs until it fails or ctx is done; then it shuts down. Either way Wait
	// returns once both have ended, with the first error.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: serve: %w", spec.Name, err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		stopHub() // ends every SSE stream, so Shutdown need not wait for them
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("%s: shut down: %w", spec.Name, err)
		}
		return nil
	})
	logger.Info(spec.Name+" listening", "addr", ln.Addr().String(), "gateway", cfg.GatewayURL)
	return g.Wait()
}
