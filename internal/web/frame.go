package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/middleware"
	"github.com/msdemo/msdemo/static"
)

// NewRouter returns the router on which a site lists its pages, with what every site
// serves already on it: the friendly 404 page for an unknown path or a method a path does
// not take, GET /healthz ("ok", for compose and the tests), and the static assets under
// /static/.
func NewRouter(s *Site) chi.Router {
	r := chi.NewRouter()
	r.NotFound(s.NotFound)
	r.MethodNotAllowed(s.NotFound)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	r.Handle("/static/*", static.Handler())
	return r
}

// Handler wraps a site's router h in the middleware of every site, outside in: the
// browser security headers (middleware.SecurityHeaders: the Content-Security-Policy and
// frame denial, on every answer, error pages included), logging (and panics), sessions
// (load and save), CSRF (Protect: cross-origin writes refused with the friendly 403
// page, which needs the session).
func (s *Site) Handler(h http.Handler) http.Handler {
	return middleware.SecurityHeaders(Logging(s.Logger)(s.Sessions.LoadAndSave(Protect(s, h))))
}
