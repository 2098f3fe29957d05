package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrWrongRole is returned by LogIn for an account of another role than the site's: a
// manager on the storefront, a customer on the admin site.
var ErrWrongRole = errors.New("this account logs in on the other site")

// LogIn asks the API (POST /customer/login) for a token of username and keeps it in the
// session, if the account has role; else it returns ErrWrongRole and keeps nothing. The
// API's errors (400, 401, ...) are returned as they are.
func LogIn(ctx context.Context, api *Client, sessions *Sessions, username, password, role string) error {
	var l NewToken
	if err := api.Post(ctx, "", "/customer/login", map[string]string{"username": username, "password": password}, &l); err != nil {
		return err
	}
	if l.Role != role {
		return ErrWrongRole
	}
	return sessions.Login(ctx, l.User(username))
}

// NewToken is a token as the API hands it out: the answer of POST /customer/login, and
// the part of a PUT /customer/users/{username} answer after a password change.
type NewToken struct {
	Token           string    `json:"token"`
	Role            string    `json:"role"`
	ExpiresAt       time.Time `json:"expires_at"`
	PasswordVersion int64     `json:"password_version"`
}

// User is the session's user of username with token t.
func (t NewToken) User(username string) User {
	return User{Username: username, Role: t.Role, Token: t.Token, ExpiresAt: t.ExpiresAt, PasswordVersion: t.PasswordVersion}
}

type clientAddressKey struct{}

// WithClientAddress returns ctx carrying the address of the browser that sent r, which
// the API calls made with ctx pass to the gateway as X-Forwarded-For: the gateway trusts
// it from the sites (its trusted proxies), so that the rate limits of login and
// registration count each browser's address, not the site's.
func WithClientAddress(ctx context.Context, r *http.Request) context.Context {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return context.WithValue(ctx, clientAddressKey{}, host)
}

// clientAddress is the browser's address that ctx carries, or "".
func clientAddress(ctx context.Context) string {
	a, _ := ctx.Value(clientAddressKey{}).(string)
	return a
}

// TooManyMessage is what a form says for an API 429 (too many attempts): the API's
// message, which says how long to wait.
func TooManyMessage(err error) string {
	return "Too many attempts. " + upperFirst(APIMessage(err, "Please wait a few minutes and try again.")) + "."
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// LoginProblem returns what a log-in form shows for err, an error of LogIn: the messages
// per field (username, password) and the one above the form, which is wrongRole for
// ErrWrongRole. ok is false for an error the form cannot explain (a service is down):
// show it with Site.Error.
func LoginProblem(err error, wrongRole string) (fields map[string]string, message string, ok bool) {
	switch status := StatusOf(err); {
	case errors.Is(err, ErrWrongRole):
		return nil, wrongRole, true
	case status == http.StatusBadRequest:
		fields = FieldErrors(err)
		return fields, FormMessage(err, fields, "username", "password"), true
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound:
		return nil, "Wrong username or password.", true
	case status == http.StatusTooManyRequests:
		return nil, TooManyMessage(err), true
	}
	return nil, "", false
}

// APIMessage is the API's message of err (an *APIError), or fallback.
func APIMessage(err error, fallback string) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Message != "" {
		return apiErr.Message
	}
	return fallback
}

// FormMessage is the message above a form for an API 400: "Please correct the marked
// fields." when one of the shown fields has a message in fields, else the API's message.
func FormMessage(err error, fields map[string]string, shown ...string) string {
	for _, f := range shown {
		if fields[f] != "" {
			return "Please correct the marked fields."
		}
	}
	return APIMessage(err, "Please check your input.")
}
