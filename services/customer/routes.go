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

	return service.API(a.logger, a.rt.TokenKey, a.ready.Load, api)
}
