// Package admin is the product managers' site: log in (managers only), a dashboard with
// revenue, order counts and a live feed of every event, categories and products (add,
// edit with conflict detection, delete, upload a picture), customers and their credit, all orders with
// their timelines live, an event store explorer, the services' dead letters (list,
// replay, discard) and the gateway's registry of service instances.
//
// It is built like the storefront, from internal/web: templ pages (pages.templ) inside
// web.Page, hx-boost, forms that post plainly and work without JavaScript (303 on
// success, the form again with messages on invalid input), sessions in Redis, CSRF
// protection. It holds no data of its own: every read and write goes through the gateway
// with the manager's token. Live updates come from the bus and reach the browser as
// Server-Sent Events: the dashboard's feed streams every stored event (a per-instance
// queue bound to "#", web.Hub.Subscribe; GET /events/feed), and the orders follow the
// order service's view announcements (web.Hub.Follow: each change is read once for all
// the managers' browsers; GET /events/orders). The system page (GET /system) plots what
// the components measure, from samples of their Prometheus metrics taken every 2 s
// (system.go). routes.go lists the pages.
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/web"
)

// Config is what the admin site needs: web.SiteConfig (its defaults: Addr ":5002",
// SessionPrefix "msdemo:admin:session:", and those of web.SiteConfig for the rest), and
// where the system page reads metrics.
type Config struct {
	web.SiteConfig
	// MetricsSources are the /metrics URLs of other msdemo processes (METRICS_SOURCES)
	// that the system page reads, next to this process's own registry (SiteConfig.Metrics,
	// which has every component when they all run in one process). List each process
	// once: the page adds up the series of one component from several sources, as it
	// would those of replicas.
	MetricsSources []string
}

// CookieName is the admin site's session cookie. It differs from the storefront's:
// browsers share cookies across the ports of one host.
const CookieName = "msdemo_admin"

// Run serves the admin site until ctx is done (web.RunSite). It listens first (a busy port
// fails at once), connects to Redis and RabbitMQ (an unreachable one fails with a hint),
// serves, and on cancel shuts down gracefully: open SSE streams end, requests in flight
// finish (10 s at most), then the bus and Redis are closed. Meanwhile it samples the
// system page's metrics sources every 2 s; it returns once that has stopped too.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	system := newSampler(systemSources(cfg), logger)
	ctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { system.run(ctx) })
	defer wg.Wait()
	defer stop()
	return web.RunSite(ctx, web.SiteSpec{Name: registry.Admin, DefaultAddr: registry.DefaultAddr(registry.Admin), CookieName: CookieName,
		LiveKeys:    []string{"#"}, // every event: the dashboard's feed shows them all
		LargeBodies: largeBodies,
		NewHandler: func(logger *slog.Logger, api *web.Client, sessions *web.Sessions, hub *web.Hub, keepAlive time.Duration) http.Handler {
			return NewServer(logger, api, sessions, hub, keepAlive, system)
		}}, cfg.SiteConfig, logger)
}
