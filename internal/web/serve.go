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
	"github.com/msdemo/msdemo/internal/httplimit"
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
	// SecureCookie marks the session cookie Secure, so that browsers send it over HTTPS
	// only (COOKIE_SECURE). The sites speak plain HTTP themselves; set it when a proxy in
	// front of them terminates TLS. Off by default, for http://localhost.
	SecureCookie bool
	// Limits bound each request and client (default httplimit.Defaults; MaxConnsPerIP
	// httplimit.NoCap behind a proxy, where every client has the proxy's address). SSE
	// streams lift the write timeout for themselves (ServeSSE); the read timeout ends
	// with the request's body, when net/http starts waiting for the client to go away.
	Limits httplimit.Limits
	// KeepAlive is the pause between SSE keep-alive comments (default 20 s).
	KeepAlive time.Duration
	// Metrics records the site's metrics (its HTTP requests by route pattern, its SSE
	// clients, its bus); nil records none.
	Metrics *telemetry.Component
	// RevocationPrefix is the key prefix of the token revocations in Redis, the customer
	// service's key prefix (default auth.DefaultRevocationPrefix): a session whose token a
	// password change revoked is logged out.
	RevocationPrefix string
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
	// LargeBodies are the routes (http.ServeMux patterns, such as "POST
	// /products/{id}/image") whose request bodies may be larger than
	// SiteConfig.Limits.MaxBodyBytes, with their limit (httplimit.BodyLimit).
	LargeBodies map[string]int64
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
	cfg.Limits = cfg.Limits.WithDefaults()
	return cfg
}

// gatewayConns bounds the connections one site process holds to the gateway: the gateway
// caps the connections per client address (httplimit.Defaults.MaxConnsPerIP, 256), and a
// site is one address for all its browsers' calls, so a busy site queues its calls well
// under the cap rather than have connections refused. Both sites of one all-in-one
// process stay under it together.
const gatewayConns = 64

// gatewayClient is the sites' HTTP client of the gateway: a 10 s timeout, at most
// gatewayConns connections, as many kept alive, its calls traced as site's (docs/tracing.md).
func gatewayClient(site string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost = gatewayConns, gatewayConns
	return &http.Client{Timeout: 10 * time.Second, Transport: telemetry.TraceTransport(site, t)}
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
	ln = cfg.Limits.Listener(ln)
	defer ln.Close()
	sessions, err := OpenSessions(ctx, SessionConfig{RedisURL: cfg.RedisURL, Prefix: cfg.SessionPrefix,
		CookieName: spec.CookieName, Secure: cfg.SecureCookie, RevocationPrefix: cfg.RevocationPrefix})
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
		// The body limit on the server's own writer (it closes the connection after a body
		// too large), then the metrics, outside the site's own middleware (Site.Handler),
		// so that every answer counts, under the pattern of the chi route that served it.
		// Traced too: a site is where a browser's request starts its trace (docs/tracing.md).
		Handler: httplimit.BodyLimit(cfg.Limits.MaxBodyBytes, spec.LargeBodies)(cfg.Metrics.HTTP(telemetry.TraceHTTP(spec.Name, true,
			spec.NewHandler(logger, NewClient(cfg.GatewayURL, gatewayClient(spec.Name)), sessions, hub, cfg.KeepAlive)))),
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	cfg.Limits.Apply(srv)
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
