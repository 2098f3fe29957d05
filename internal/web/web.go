// Package web is what the storefront and the admin site share: the page layout and form
// components (templ), flash messages, friendly error pages, sessions in Redis, CSRF
// protection, the render helper, a JSON client for the gateway's REST API, and the hub
// that pushes the bus to browsers as Server-Sent Events: stored events for a raw feed, and
// the live views, which its Follower reads once per announced change for every browser
// that follows them (docs/live-views.md).
//
// A site is built from these pieces in its own NewServer:
//
//	sessions, _ := web.OpenSessions(ctx, web.SessionConfig{RedisURL: ..., Prefix: "msdemo:storefront:", CookieName: "storefront_session"})
//	site := &web.Site{Name: "msdemo shop", Nav: nav, Sessions: sessions, Logger: logger, Home: "/"}
//	api := web.NewClient(gatewayURL, nil)
//	hub := web.NewHub(logger)
//	err := hub.Run(ctx, conn, web.HubConfig{Exchange: "msdemo.events", Keys: []string{"order.*"}})
//	h := web.Logging(logger)(sessions.LoadAndSave(web.Protect(site, mux))) // Protect needs the session
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
