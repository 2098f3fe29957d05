package customer

import (
	"net/http"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// routes returns the service's HTTP API. The gateway serves it under /customer; the
// gateway checks tokens too, but every route below decides who may call it by itself.
func (a *app) routes() http.Handler {
	loggedIn := auth.Require(auth.Customer, auth.Manager) // and then that user or a manager
	manager := auth.Require(auth.Manager)

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", service.Health(a.ready.Load))
	mux.Handle("POST /users", a.handleRegister())
	mux.Handle("POST /login", a.handleLogin())
	mux.Handle("GET /users", manager(a.handleUserList()))
	mux.Handle("GET /users/{username}", loggedIn(a.handleUserShow()))
	mux.Handle("PUT /users/{username}", loggedIn(a.handleUserUpdate()))
	mux.Handle("GET /users/{username}/credit", loggedIn(a.handleCreditShow()))
	mux.Handle("PUT /users/{username}/credit", manager(a.handleCreditSet()))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	}))

	var h http.Handler = mux
	mw := service.Middleware(a.logger, a.rt.TokenKey)
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
