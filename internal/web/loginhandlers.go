package web

import (
	"net/http"
	"strings"

	"github.com/a-h/templ"
)

// LoginView is the log-in form: what the user typed (never the password), where to go
// afterwards, and what was wrong.
type LoginView struct {
	Username  string
	Next      string // a path on the site (Site.SafeNext)
	Errors    map[string]string
	FormError string
}

// LoginHandlers are a site's log-in and log-out. Only accounts of Role log in; the others
// get WrongRole above the form and keep an anonymous session.
type LoginHandlers struct {
	Site *Site
	API  *Client
	Role string // "customer" on the storefront, "manager" on the admin site
	// WrongRole is what the form says to an account of another role, e.g. "This is a
	// manager account: please use the admin site."
	WrongRole string
	// Page is the site's log-in page around LoginForm.
	Page func(LoginView) templ.Component
	// LoggedOut is the page that logging out leads to.
	LoggedOut string
}

// HandleForm serves GET /login[?next=].
func (l *LoginHandlers) HandleForm(w http.ResponseWriter, r *http.Request) {
	l.Site.Render(w, r, http.StatusOK, "Log in", l.Page(LoginView{Next: l.Site.SafeNext(r.URL.Query().Get("next"))}))
}

// HandleLogIn serves POST /login {username, password, next}: on success the session keeps
// the user's token and the browser goes to next (303); a wrong password, an account of
// another role or invalid input show the form again (422), and so do too many attempts
// (429, with the API's Retry-After and a message that says how long to wait); a service
// that is down gets Site.Error's page. The API sees the browser's address
// (WithClientAddress).
func (l *LoginHandlers) HandleLogIn(w http.ResponseWriter, r *http.Request) {
	v := LoginView{Username: strings.TrimSpace(r.PostFormValue("username")), Next: l.Site.SafeNext(r.PostFormValue("next"))}
	err := LogIn(WithClientAddress(r.Context(), r), l.API, l.Site.Sessions, v.Username, r.PostFormValue("password"), l.Role)
	if err == nil {
		l.Site.Sessions.AddFlash(r.Context(), FlashSuccess, "You are logged in.")
		Redirect(w, r, v.Next)
		return
	}
	var ok bool
	v.Errors, v.FormError, ok = LoginProblem(err, l.WrongRole)
	if !ok {
		l.Site.Error(w, r, err)
		return
	}
	status := http.StatusUnprocessableEntity
	if StatusOf(err) == http.StatusTooManyRequests {
		status = http.StatusTooManyRequests
		if after := RetryAfter(err); after != "" {
			w.Header().Set("Retry-After", after)
		}
	}
	l.Site.Render(w, r, status, "Log in", l.Page(v))
}

// HandleLogOut serves POST /logout: the session forgets the user and gets a new id, and
// the browser goes to LoggedOut (303).
func (l *LoginHandlers) HandleLogOut(w http.ResponseWriter, r *http.Request) {
	if err := l.Site.Sessions.Logout(r.Context()); err != nil {
		l.Site.Error(w, r, err)
		return
	}
	l.Site.Sessions.AddFlash(r.Context(), FlashInfo, "You are logged out.")
	Redirect(w, r, l.LoggedOut)
}
