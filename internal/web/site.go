package web

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/middleware"
)

// Site is what the handlers of one site share to render pages. Its fields are set once,
// before serving; it is safe for concurrent use.
type Site struct {
	Name     string // "msdemo shop", in the header and every title
	Home     string // the start page, "/"
	Login    string // the log-in page that a 401 redirects to, e.g. "/login"
	Manifest bool   // link the web app manifest
	// Nav returns the navigation for r (links differ for a logged-in user); nil for none.
	Nav      func(r *http.Request) templ.Component
	Sessions *Sessions
	Logger   *slog.Logger
}

// IsFragmentRequest reports whether r is an htmx request that swaps part of a page (not a
// boosted navigation or a history restore, which need the whole page).
func IsFragmentRequest(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Boosted") != "true" &&
		r.Header.Get("HX-History-Restore-Request") != "true"
}

// Render answers with status and content: inside Page for a normal request or a boosted
// navigation, alone for an htmx fragment request (IsFragmentRequest). The page shows and
// consumes the session's flash messages.
func (s *Site) Render(w http.ResponseWriter, r *http.Request, status int, title string, content templ.Component) {
	c := content
	if !IsFragmentRequest(r) {
		p := PageProps{Title: title, SiteName: s.Name, Home: s.Home, Manifest: s.Manifest,
			Flashes: s.Sessions.PopFlashes(r.Context())}
		if s.Nav != nil {
			p.Nav = s.Nav(r)
		}
		c = Page(p, content)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // pages show a user's data
	w.Header().Set("Vary", "HX-Request")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.Logger.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "error", err)
	}
}

// Redirect answers 303 See Other to url: after a successful POST, a GET of the next page
// (the browser, and htmx for a boosted form, follow it).
func Redirect(w http.ResponseWriter, r *http.Request, url string) {
	http.Redirect(w, r, url, http.StatusSeeOther)
}

// LoginURL returns the log-in page with a ?next= that brings the user back to r's page.
func (s *Site) LoginURL(r *http.Request) string {
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		next = s.Home
	}
	return s.Login + "?next=" + url.QueryEscape(next)
}

// SafeNext returns next if it is a path on this site, else the home page (no open
// redirect to another site).
func (s *Site) SafeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return s.Home
	}
	return next
}

// RequireUser lets only logged-in users (of one of roles, if any are given) through; the
// others are sent to the log-in page and back afterwards.
func (s *Site) RequireUser(roles ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, ok := s.Sessions.User(r.Context())
			if !ok {
				s.Sessions.AddFlash(r.Context(), FlashInfo, "Please log in first.")
				Redirect(w, r, s.LoginURL(r))
				return
			}
			if len(roles) > 0 && !contains(roles, u.Role) {
				s.ErrorStatus(w, r, http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Error answers with the page for err: for a 401 from the API (the token expired or was
// revoked) it logs the user out and sends them to log in; 403, 404 and 409 get their
// friendly page; a service that is down (503, or the gateway unreachable) gets "a service
// is down"; anything else is logged and gets the 500 page.
func (s *Site) Error(w http.ResponseWriter, r *http.Request, err error) {
	status := StatusOf(err)
	switch {
	case status == http.StatusUnauthorized:
		_ = s.Sessions.Logout(r.Context())
		s.Sessions.AddFlash(r.Context(), FlashInfo, "Your session has ended. Please log in again.")
		Redirect(w, r, s.LoginURL(r))
		return
	case status == http.StatusServiceUnavailable:
		s.Logger.WarnContext(r.Context(), "a service is down", "path", r.URL.Path, "error", err)
	case status >= 500 || status < 400:
		s.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		status = http.StatusInternalServerError
	}
	s.ErrorStatus(w, r, status)
}

// ErrorStatus answers with the friendly page of status.
func (s *Site) ErrorStatus(w http.ResponseWriter, r *http.Request, status int) {
	p := ErrorProps{Status: status, Home: s.Home}
	switch status {
	case http.StatusNotFound:
		p.Title, p.Message = "Page not found", "There is nothing here. It may have been removed, or the address is mistyped."
	case http.StatusForbidden:
		p.Title, p.Message = "Not allowed", "You may not see or do this. If you followed a link from another site, start again from ours."
	case http.StatusConflict:
		p.Title, p.Message = "Changed meanwhile", "Someone changed this at the same time. Reload the page and try again."
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
		p.Title, p.Message = "A service is down", "Part of the shop is not answering right now. Nothing you did is lost; please try again in a moment."
	default:
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
			p.Status = status
		}
		p.Title, p.Message = "Something went wrong", "We could not show this page. The problem has been logged; please try again."
	}
	s.Render(w, r, status, p.Title, ErrorPage(p))
}

// NotFound is the site's 404 handler.
func (s *Site) NotFound(w http.ResponseWriter, r *http.Request) {
	s.ErrorStatus(w, r, http.StatusNotFound)
}

// Protect wraps h with CSRF protection (http.CrossOriginProtection): a POST, PUT, PATCH
// or DELETE that a browser sends from another origin (by Sec-Fetch-Site, or Origin
// compared with Host) gets the friendly 403 page. Requests without those headers (curl,
// old browsers) pass: they cannot carry a victim's cookie across sites. Safe methods are
// never checked, so links from elsewhere keep working. Mount it inside
// Sessions.LoadAndSave: its 403 page is rendered with the session.
func Protect(s *Site, h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Logger.WarnContext(r.Context(), "cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"))
		s.ErrorStatus(w, r, http.StatusForbidden)
	}))
	return cop.Handler(h)
}

// Logging gives each request an id (middleware.RequestID: the browser's X-Request-Id if
// clean, else a new one; Client sends it on to the API, so the gateway's and the services'
// log lines of the calls a page makes carry it too), logs each request once it is
// answered, with its id, status and duration, and turns a panic in a handler into a
// logged 500 (middleware.Recover: logged with the stack).
func Logging(logger *slog.Logger) func(http.Handler) http.Handler {
	recoverPanics := middleware.Recover(logger, nil)
	requestIDs := middleware.RequestID(idgen.NewSequence())
	return func(next http.Handler) http.Handler {
		next = recoverPanics(next)
		return requestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			defer func() {
				level := slog.LevelDebug
				if sw.status >= 500 {
					level = slog.LevelWarn
				}
				logger.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path,
					"status", sw.status, "duration_ms", time.Since(start).Milliseconds(),
					"request_id", middleware.GetRequestID(r.Context()))
			}()
			next.ServeHTTP(sw, r)
		}))
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and SetWriteDeadline (for SSE).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
