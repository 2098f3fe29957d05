package auth

import (
	"errors"
	"net/http"
	"time"

	"github.com/msdemo/msdemo/internal/httpjson"
)

// Authenticate verifies the bearer token of each request, if there is one, and puts its
// claims into the request's context. A request with a bad or expired token gets 401; a
// request without one goes on anonymous (Require decides).
func Authenticate(key Key) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := BearerToken(r.Header.Get("Authorization"))
			if token == "" {
				next.ServeHTTP(w, r)
				return
			}
			c, err := key.Verify(token, time.Now())
			if err != nil {
				msg := "invalid token"
				if errors.Is(err, ErrExpiredToken) {
					msg = "token expired: log in again"
				}
				httpjson.Error(w, http.StatusUnauthorized, msg)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
		})
	}
}

// Require lets a request through only when Authenticate found claims with one of roles:
// 401 without a token, 403 with another role.
func Require(roles ...Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := FromContext(r.Context())
			if !ok {
				httpjson.Error(w, http.StatusUnauthorized, "log in first: this needs a bearer token")
				return
			}
			for _, role := range roles {
				if c.Role == role {
					next.ServeHTTP(w, r)
					return
				}
			}
			httpjson.Error(w, http.StatusForbidden, "not allowed for role "+string(c.Role))
		})
	}
}
