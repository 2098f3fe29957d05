package customer

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// routes returns the service's HTTP API. The gateway serves it under /customer; the
// gateway checks tokens too, but every route below decides who may call it by itself.
// Everything but /healthz answers 503 until the read model has caught up and the admin
// exists, so that no decision is made on an old state.
func (a *app) routes() http.Handler {
	loggedIn := auth.Require(auth.Customer, auth.Manager) // then customerFor: that user or a manager
	manager := auth.Require(auth.Manager)
	deadLetters := chi.NewRouter()
	a.rt.MountDeadLetters(deadLetters) // managers: GET, replay, DELETE /dead-letters...

	api := http.NewServeMux()
	api.Handle("POST /users", a.handleRegister())
	api.Handle("POST /login", a.handleLogin())
	api.Handle("GET /users", manager(a.handleUserList()))
	api.Handle("GET /users/{username}", loggedIn(a.handleUserShow()))
	api.Handle("PUT /users/{username}", loggedIn(a.handleUserUpdate()))
	api.Handle("GET /users/{username}/credit", loggedIn(a.handleCreditShow()))
	api.Handle("PUT /users/{username}/credit", manager(a.handleCreditSet()))
	api.Handle("/dead-letters", deadLetters)
	api.Handle("/dead-letters/", deadLetters)
	api.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "no such route; see POST /users and POST /login")
	}))

	var h http.Handler = whenReady(a.ready.Load, api)
	mw := service.Middleware(a.logger, a.rt.TokenKey)
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", service.Health(a.ready.Load))
	mux.Handle("/", h)
	return mux
}

// whenReady answers 503 until ready() is true.
func whenReady(ready func() bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			w.Header().Set("Retry-After", "1")
			httpjson.Error(w, http.StatusServiceUnavailable, "catching up with the event store; try again shortly")
			return
		}
		next.ServeHTTP(w, r)
	})
}
