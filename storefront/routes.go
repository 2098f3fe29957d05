package storefront

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/msdemo/msdemo/internal/web"
)

// NewServer returns the storefront's handler: every page and its middleware are listed
// here. web.NewRouter adds the 404 page, /healthz and /static/; Site.Handler the
// middleware of both sites (logging, sessions, CSRF).
func NewServer(logger *slog.Logger, api *web.Client, sessions *web.Sessions, hub *web.Hub, keepAlive time.Duration) http.Handler {
	s := &server{api: api, sessions: sessions, hub: hub, logger: logger, keepAlive: keepAlive}
	s.site = &web.Site{Name: "msdemo shop", Home: "/", Login: "/login", Manifest: true, Nav: s.nav,
		Sessions: sessions, Logger: logger}
	loggedIn := s.site.RequireUser("customer")
	login := &web.LoginHandlers{Site: s.site, API: api, Role: "customer", Page: loginPage, LoggedOut: "/",
		WrongRole: "This is a manager account: please use the admin site."}

	r := web.NewRouter(s.site)
	r.Method(http.MethodGet, "/images/{id}", web.HandleImage(api, logger)) // a product picture, from the API

	r.Get("/", s.handleHome)                                          // categories
	r.Get("/categories/{id}", s.handleCategory)                       // products of a category
	r.Get("/products/{id}", s.handleProduct)                          // product with quantity and Order
	r.Get("/search", s.handleSearch)                                  // ?q=words&offset=
	r.Get("/register", s.handleRegisterForm)                          //
	r.Post("/register", s.handleRegister)                             // then logged in, 303 /
	r.Get("/login", login.HandleForm)                                 // ?next=
	r.Post("/login", login.HandleLogIn)                               // 303 next
	r.Post("/logout", login.HandleLogOut)                             // 303 /
	r.With(loggedIn).Post("/products/{id}/order", s.handleOrderPlace) // 303 /orders/{id}
	r.With(loggedIn).Post("/products/{id}/cart", s.handleCartAdd)     // 303 /cart
	r.With(loggedIn).Get("/cart", s.handleCart)                       // lines, total, checkout
	r.With(loggedIn).Post("/cart/lines/{product_id}", s.handleCartLine)
	r.With(loggedIn).Post("/cart/lines/{product_id}/remove", s.handleCartRemove)
	r.With(loggedIn).Post("/cart/checkout", s.handleCheckout)      // 303 /orders/{id}
	r.With(loggedIn).Get("/orders", s.handleOrderList)             // live over SSE
	r.With(loggedIn).Get("/orders/{id}", s.handleOrderShow)        // timeline, live
	r.With(loggedIn).Get("/orders/{id}/invoice", s.handleInvoice)  // printable
	r.With(loggedIn).Post("/orders/{id}/reorder", s.handleReorder) // its lines into the cart; 303 /cart
	r.With(loggedIn).Get("/profile", s.handleProfile)              // name, email, credit
	r.With(loggedIn).Post("/profile", s.handleProfileUpdate)       // 303 /profile
	r.With(loggedIn).Get("/events", s.handleEvents)                // text/event-stream

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
}
