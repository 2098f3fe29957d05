package storefront

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/web"
	"github.com/msdemo/msdemo/static"
)

// NewServer returns the storefront's handler: every page and its middleware are listed
// here. Middleware, outside in: logging (and panics), sessions (load and save), CSRF
// (cross-origin writes refused, with the friendly 403 page, which needs the session).
func NewServer(logger *slog.Logger, api *web.Client, sessions *web.Sessions, hub *web.Hub, keepAlive time.Duration) http.Handler {
	s := &server{api: api, sessions: sessions, hub: hub, logger: logger, keepAlive: keepAlive}
	s.site = &web.Site{Name: "msdemo shop", Home: "/", Login: "/login", Manifest: true, Nav: s.nav,
		Sessions: sessions, Logger: logger}
	loggedIn := s.site.RequireUser("customer")

	r := chi.NewRouter()
	r.NotFound(s.site.NotFound)
	r.MethodNotAllowed(s.site.NotFound)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	r.Handle("/static/*", static.Handler())

	r.Get("/", s.handleHome)                                          // categories
	r.Get("/categories/{id}", s.handleCategory)                       // products of a category
	r.Get("/products/{id}", s.handleProduct)                          // product with quantity and Order
	r.Get("/register", s.handleRegisterForm)                          //
	r.Post("/register", s.handleRegister)                             // then logged in, 303 /
	r.Get("/login", s.handleLoginForm)                                // ?next=
	r.Post("/login", s.handleLogin)                                   // 303 next
	r.Post("/logout", s.handleLogout)                                 // 303 /
	r.With(loggedIn).Post("/products/{id}/order", s.handleOrderPlace) // 303 /orders/{id}
	r.With(loggedIn).Get("/orders", s.handleOrderList)                // live over SSE
	r.With(loggedIn).Get("/orders/{id}", s.handleOrderShow)           // timeline, live
	r.With(loggedIn).Get("/orders/{id}/invoice", s.handleInvoice)     // printable
	r.With(loggedIn).Get("/profile", s.handleProfile)                 // name, email, credit
	r.With(loggedIn).Post("/profile", s.handleProfileUpdate)          // 303 /profile
	r.With(loggedIn).Get("/events", s.handleEvents)                   // text/event-stream

	return web.Logging(logger)(sessions.LoadAndSave(web.Protect(s.site, r)))
}

// server is what the handlers share.
type server struct {
	api       *web.Client
	sessions  *web.Sessions
	hub       *web.Hub
	site      *web.Site
	logger    *slog.Logger
	keepAlive time.Duration
}
