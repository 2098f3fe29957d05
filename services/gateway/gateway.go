// Package gateway is msdemo's API gateway: the one HTTP entry point of the REST API. It
// forwards /<service>/<rest> to a live instance of the service (customer, product, order,
// accounting, eventstore), found in a registry that the instances feed by announcing
// themselves on the bus (package registry), with a static URL per service as a fallback.
//
// Only the routes of the policy (policy.go, the REST table of DESIGN.md) are reachable,
// and only by the callers it allows: the gateway verifies bearer tokens (package auth) and
// answers 401 or 403 itself. GET /openapi.yaml describes the same routes.
//
// It is built on github.com/valyala/fasthttp rather than net/http's ReverseProxy: proxying
// is all the gateway does, and with fasthttp (a pooled keep-alive client per upstream,
// requests and responses reused between requests, no allocation per request) it reached
// 0.9x the throughput of nginx with upstream keep-alive on the same backend, where
// ReverseProxy reached about 0.55x. The other services
// use net/http and chi as usual. The policy costs little: matching is a comparison of
// path segments without allocation (about 0.1 µs), and verified tokens are cached (a
// verification, about 3.5 µs and 21 allocations, cut throughput by a fifth). Measured
// with wrk as CPU time per proxied request on a busy 2-core machine: nginx 13.5 µs,
// the gateway before the policy 15.5 µs, with it 16.2 µs anonymous and 16.7 µs with a
// token.
//
// Contract of the proxy:
//   - The path after the service segment is forwarded normalized, as nginx does (".."
//     and "." segments and repeated slashes resolved, percent-encoding decoded and
//     re-encoded); "/product" alone is forwarded as "/". The query string is unchanged.
//   - Every request carries an X-Request-Id, upstream and back: the client's own if it is a
//     short token (up to 64 of A-Z a-z 0-9 - _ . :), a new one otherwise.
//   - Identity headers a client sends (X-User, X-User-Role, X-Forwarded-User, X-Msdemo-*)
//     are removed; the gateway sets X-Msdemo-User and X-Msdemo-Role from a valid token
//     (see authorize). Authorization is forwarded unchanged.
//   - X-Forwarded-For (the client's address, replacing any sent), X-Forwarded-Host and
//     X-Forwarded-Proto are set; Host is the upstream's.
//   - A request body is read whole, up to Config.Limits.MaxBodyBytes, 1 MiB by default
//     (413 beyond); headers up to MaxHeaderBytes (431 beyond). A response is read whole (up to 64 MiB)
//     and then sent on with a Content-Length, as nginx does with proxy_buffering on. The
//     services answer bounded JSON pages, and re-streaming their chunked responses cost a
//     flush per chunk: about a third more CPU per request. Nothing long-lived (SSE,
//     WebSocket) goes through the gateway; the sites serve their event streams themselves.
//   - Errors are JSON {"error": "..."}: 404 no such route, 405 another method, 401 no
//     token or a bad one, 403 not allowed, 503 no instance up, 502 upstream unreachable,
//     504 upstream did not answer within Config.RequestTimeout.
//
// Besides the proxy it serves GET /healthz, GET /registry (the live instances and the
// static fallbacks, for the admin site; managers only) and GET /openapi.yaml. Every
// request it answers is measured (Config.Metrics) under its policy pattern, e.g.
// route="/product/products/{id}", or "unmatched"; its own metrics are served by the
// process on METRICS_ADDR, never through the gateway.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	// Addr is the TCP address to listen on (default ":8080").
	Addr string
	// RabbitMQURL is the broker the registry announcements come from
	// (default "amqp://guest:guest@127.0.0.1:5672/").
	RabbitMQURL string
	// Static maps a service name to the base URL used while no instance of it has
	// announced itself, e.g. {"product": "http://127.0.0.1:6004"}. It may be nil.
	Static map[string]string
	// RequestTimeout bounds one proxied request, from sending it upstream to the end of
	// the response (default 30 s).
	RequestTimeout time.Duration
	// RegistryExchange is the fanout exchange instances announce themselves on
	// (default registry.Exchange, "msdemo.registry"). Tests set their own.
	RegistryExchange string
	// TokenKey verifies the bearer tokens of requests (package auth). It is required.
	TokenKey auth.Key
	// Metrics records the gateway's metrics (every request under its policy pattern, its
	// bus); nil records none.
	Metrics *telemetry.Component
	// RedisURL is the Redis that holds the token revocations of password changes
	// (default "redis://127.0.0.1:6379/0"); RevocationPrefix is their key prefix, the
	// customer service's key prefix (default auth.DefaultRevocationPrefix).
	RedisURL, RevocationPrefix string
	// TrustedProxies are the addresses and CIDR ranges of the proxies in front of the
	// gateway (the sites, a load balancer) whose X-Forwarded-For names the client (default
	// loopback only; see auth.go).
	TrustedProxies []string
	// Limits bound each request and client: body, headers, the time to send them, idle
	// keep-alive, connections per client address (default httplimit.Defaults).
	Limits httplimit.Limits
}

const shutdownTimeout = 10 * time.Second

// Run serves the gateway until ctx is done, then shuts down gracefully: it stops
// accepting connections and lets requests in flight finish for up to 10 seconds. It
// returns an error if the address cannot be listened on, the bus cannot be reached, or the
// registry cannot be consumed, a static upstream is not an http(s) URL of a known
// service, or Config.TokenKey is unset; nil after a clean shutdown.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg.Addr = cmp.Or(cfg.Addr, ":8080")
	cfg.RabbitMQURL = cmp.Or(cfg.RabbitMQURL, "amqp://guest:guest@127.0.0.1:5672/")
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, 30*time.Second)
	cfg.RegistryExchange = cmp.Or(cfg.RegistryExchange, registry.Exchange)
	if err := cfg.TokenKey.Check(); err != nil {
		return fmt.Errorf("gateway: Config.TokenKey: %w", err)
	}
	table := registry.NewTable(registry.DefaultTTL, cfg.Static)
	srv := newServer(table, cfg.TokenKey, cfg.RequestTimeout, logger)
	// A service restarted on its address: the pooled connections to the process that died
	// there would fail the next requests (and a write is never sent twice), so close them.
	table.OnRestart(srv.upstreams.closeIdleOf)
	srv.metrics = cfg.Metrics
	defer srv.upstreams.closeIdle()
	closeAuth, err := srv.setUpAuth(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAuth()
	for service, url := range cfg.Static {
		if !slices.Contains(services, service) {
			return fmt.Errorf("gateway: static upstream for %q: no such service (want one of %v)", service, services)
		}
		if _, err := srv.upstreams.get(url); url != "" && err != nil {
			return fmt.Errorf("gateway: static upstream for %s: %w", service, err)
		}
	}

	// Listen before connecting to the bus, so a busy port fails Run at once.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()

	dialOpts := []bus.DialOption{bus.WithName("gateway")}
	if cfg.Metrics != nil {
		dialOpts = append(dialOpts, bus.WithObserver(cfg.Metrics))
	}
	conn, err := bus.Dial(ctx, cfg.RabbitMQURL, logger, dialOpts...)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpServer := srv.httpServer(cfg.Limits)

	// Both goroutines report once on errc: the registry consumer when ctx is done (or it
	// fails), the HTTP server when it is shut down (or fails).
	errc := make(chan error, 2)
	go func() {
		if err := table.Listen(ctx, conn, registry.WithExchange(cfg.RegistryExchange)); err != nil {
			errc <- fmt.Errorf("gateway: listen to the registry: %w", err)
			return
		}
		errc <- nil
	}()
	go func() {
		if err := httpServer.Serve(ln); err != nil {
			errc <- fmt.Errorf("gateway: serve http: %w", err)
			return
		}
		errc <- nil
	}()
	logger.InfoContext(ctx, "gateway listening", "addr", ln.Addr().String())

	var runErr error
	pending := 2
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		pending--
	}
	cancel()

	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer stop()
	if err := httpServer.ShutdownWithContext(shutdownCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("gateway: shut down http: %w", err))
	}
	for ; pending > 0; pending-- {
		runErr = errors.Join(runErr, <-errc)
	}
	logger.InfoContext(ctx, "gateway stopped")
	return runErr
}
