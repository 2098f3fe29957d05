package admin

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/msdemo/msdemo/internal/web"
)

// NewServer returns the admin site's handler: every page and its middleware are listed
// here. Every page but log-in needs a manager's session; an anonymous visitor is sent to
// log in, a customer's session gets 403. The session's role is the one the login answer
// gave (web.LogIn keeps only a manager's login); the site never reads the token itself,
// which the gateway and the services verify on every call. web.NewRouter adds the 404
// page, /healthz and /static/; Site.Handler the middleware of both sites (logging,
// sessions, CSRF). system is the system page's sampler, which Run runs; a nil one makes
// the page say there is nothing to show.
func NewServer(logger *slog.Logger, api *web.Client, sessions *web.Sessions, hub *web.Hub, keepAlive time.Duration, system *sampler) http.Handler {
	s := &server{api: api, sessions: sessions, hub: hub, logger: logger, keepAlive: keepAlive, system: system}
	s.site = &web.Site{Name: "msdemo admin", Home: "/", Login: "/login", Nav: s.nav, Sessions: sessions, Logger: logger}

	login := &web.LoginHandlers{Site: s.site, API: api, Role: "manager", Page: loginPage, LoggedOut: "/login",
		WrongRole: "This is a customer account. The admin site is for product managers; customers shop on the storefront."}

	r := web.NewRouter(s.site)
	r.Get("/login", login.HandleForm)     // ?next=
	r.Post("/login", login.HandleLogIn)   // managers only; 303 next
	r.Post("/logout", login.HandleLogOut) // 303 /login

	r.Group(func(r chi.Router) {
		r.Use(s.site.RequireUser("manager"))
		r.Get("/", s.handleDashboard)              // revenue, order counts, live feed
		r.Get("/categories", s.handleCategories)   //
		r.Post("/categories", s.handleCategoryAdd) // 303 /categories
		r.Post("/categories/{id}", s.handleCategoryRename)
		r.Post("/categories/{id}/delete", s.handleCategoryDelete) // 409 with products
		r.Get("/products", s.handleProducts)                      // ?after= paged
		r.Get("/products/new", s.handleProductNew)                //
		r.Post("/products", s.handleProductAdd)                   // 303 /products
		r.Get("/products/{id}", s.handleProductEdit)              //
		r.Post("/products/{id}", s.handleProductUpdate)           // expected_version; 409 shows current
		r.Post("/products/{id}/delete", s.handleProductDelete)    // 303 /products
		r.Get("/customers", s.handleCustomers)                    // ?after= paged
		r.Get("/customers/{username}", s.handleCustomer)          // credit form
		r.Post("/customers/{username}/credit", s.handleCreditSet) // expected_version; 409 message
		r.Get("/orders", s.handleOrders)                          // live over SSE
		r.Get("/orders/{id}", s.handleOrder)                      // timeline, live
		r.Get("/eventstore", s.handleFeed)                        // ?after=&limit=
		r.Get("/eventstore/streams", s.handleStreamFind)          // ?stream= → 303
		r.Get("/eventstore/streams/{stream}", s.handleStream)     //
		r.Get("/eventstore/events/{position}", s.handleEvent)     // one event's JSON
		r.Get("/dead-letters", s.handleDeadLetters)               // every service's
		r.Post("/dead-letters/{service}/replay", s.handleDeadReplayAll)
		r.Post("/dead-letters/{service}/{id}/replay", s.handleDeadReplay)
		r.Post("/dead-letters/{service}/{id}/discard", s.handleDeadDiscard)
		r.Get("/services", s.handleServices)         // the gateway's registry
		r.Get("/events/feed", s.handleFeedEvents)    // text/event-stream: every event
		r.Get("/events/orders", s.handleOrderEvents) // text/event-stream: order rows and pages

		// Product pictures: the upload form (a body of up to largeBodies'), and the
		// pictures themselves, read from the API.
		r.Post("/products/{id}/image", s.handleProductImage)
		r.Method(http.MethodGet, "/images/{id}", web.HandleImage(api, logger))

		// Metrics plots; the panels alone for htmx's poll every 2 s, compressed, since their
		// SVG lines repeat themselves (~100 KB of HTML with a full history, ~6 KB gzipped).
		r.With(chimw.Compress(5, "text/html")).Get("/system", s.handleSystem)
	})

	return s.site.Handler(r)
}

// server is what the handlers share.
type server struct {
	api       *web.Client
	sessions  *web.Sessions
	hub       *web.Hub
	site      *web.Site
	logger    *slog.Logger
	keepAlive time.Duration
	system    *sampler
}
