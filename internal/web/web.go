// Package web is the frame that the storefront and the admin site run in: RunSite
// (listen, sessions in Redis, the bus, serve, shut down), the router with what every site
// serves (NewRouter: the 404 page, /healthz, /static/), the middleware (Site.Handler:
// logging, sessions, CSRF protection), log-in and log-out (LoginHandlers), the page
// layout and form components (templ), flash messages, friendly error pages, the render
// helper, a JSON client for the gateway's REST API with the resources both sites show
// (Category, Product, Customer, Order), the order view both sites render (OrderView), and
// the hub that pushes the bus to browsers as Server-Sent Events: stored events for a raw
// feed, and the live views, which its Follower reads once per announced change for every
// browser that follows them (docs/live-views.md).
//
// A site brings its own pages and rules. Its Run calls RunSite with a SiteSpec, whose
// NewHandler (the site's NewServer, in its routes.go) lists the pages:
//
//	site := &web.Site{Name: "msdemo shop", Home: "/", Login: "/login", Nav: nav, Sessions: sessions, Logger: logger}
//	login := &web.LoginHandlers{Site: site, API: api, Role: "customer", Page: loginPage, LoggedOut: "/",
//		WrongRole: "This is a manager account: please use the admin site."}
//	r := web.NewRouter(site)
//	r.Get("/login", login.HandleForm)
//	r.Post("/login", login.HandleLogIn)
//	r.Post("/logout", login.HandleLogOut)
//	r.Get("/", handleHome)
//	return site.Handler(r)
//
// A handler parses the request, calls the API with the user's token
// (sessions.User(ctx).Token), builds a view model and calls site.Render, which wraps the
// content in Page (or sends only the content to an htmx request that is not a boosted
// navigation). Forms post plainly (they work without JavaScript): on invalid input the
// handler renders the form again with the API's field errors (APIError.Fields), on success
// it adds a flash and redirects with 303 (web.Redirect). site.Error turns any error into
// the right answer: 401 → login, 403, 404, 503 "a service is down", else 500.
//
// The pages use the classes of static/css/shop.css and mark what tests look for with
// data-testid.
package web
