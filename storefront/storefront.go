// Package storefront is the customers' site: register, log in, browse categories and
// products, order, follow orders live, read invoices, edit the profile. It renders HTML
// with templ (pages.templ), enhances it with htmx (hx-boost, SSE), and works without
// JavaScript. It holds no data of its own: every read and write goes to the REST API
// through the gateway with the user's token, which the session (in Redis) keeps. Live
// order updates come from the order service's view announcements on the bus (a
// per-instance queue, web.Hub.Follow: each change is read once for all of a customer's
// browsers) and reach the browser as Server-Sent Events (GET /events). routes.go lists
// the pages.
package storefront

import (
	"context"
	"log/slog"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/web"
)

// Config is what the storefront needs (web.SiteConfig). Its defaults: Addr ":5001",
// SessionPrefix "msdemo:storefront:session:", and those of web.SiteConfig for the rest.
type Config = web.SiteConfig

// liveKeys are the stored events the storefront's hub binds: none. The live order views
// follow the order service's view announcements instead (web.Hub.Follow), which come
// after the change is readable and carry the order's owner; no page streams raw events.
var liveKeys []string

// Run serves the storefront until ctx is done (web.RunSite). It listens first (a busy port
// fails at once), connects to Redis and RabbitMQ (an unreachable one fails with a hint),
// serves, and on cancel shuts down gracefully: open SSE streams end, requests in flight
// finish (10 s at most), then the bus and Redis are closed.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	return web.RunSite(ctx, web.SiteSpec{Name: registry.Storefront, DefaultAddr: registry.DefaultAddr(registry.Storefront), CookieName: "msdemo_storefront",
		LiveKeys: liveKeys, NewHandler: NewServer}, cfg, logger)
}
