package gateway

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/auth"
)

// authorize is the one place where the gateway decides who is calling and whether they may
// call route r, before the request is handled or forwarded. segs are the path's segments.
// It returns false when the request must not go on, after writing the response:
//   - identity headers the client sent are removed, whatever happens next;
//   - a bearer token, when there is one, must be valid and unexpired (401 otherwise), on
//     every route, as the services' own auth.Authenticate does;
//   - a route for logged-in users without a token gets 401, a token of the wrong role or
//     user 403;
//   - a request that goes on carries X-Msdemo-User and X-Msdemo-Role, the token's user
//     and role, for the services' logs. The Authorization header is forwarded unchanged:
//     the services verify the token again and check what the path does not show (the
//     owner of an order).
func (s *server) authorize(ctx *fasthttp.RequestCtx, r *compiledRoute, segs [][]byte) bool {
	h := &ctx.Request.Header
	deleteHeaders(h, isIdentityHeader)

	var claims auth.Claims
	loggedIn := false
	if header := h.Peek("Authorization"); len(header) > 0 {
		if token := bearerToken(header); len(token) > 0 {
			var err error
			claims, err = s.tokens.verify(s.tokenKey, token, time.Now())
			if err != nil {
				msg := "invalid token"
				if errors.Is(err, auth.ErrExpiredToken) {
					msg = "token expired: log in again"
				}
				writeError(ctx, fasthttp.StatusUnauthorized, msg)
				return false
			}
			loggedIn = true
		}
	}

	if r.access.who != whoAnyone && !loggedIn {
		writeError(ctx, fasthttp.StatusUnauthorized, "log in first")
		return false
	}
	if msg := forbidden(r, claims, segs); msg != "" {
		writeError(ctx, fasthttp.StatusForbidden, msg)
		return false
	}
	if loggedIn {
		h.Set("X-Msdemo-User", claims.User)
		h.Set("X-Msdemo-Role", string(claims.Role))
	}
	return true
}

// forbidden returns why claims may not call r, or "" if they may. Anonymous callers have
// been dealt with before.
func forbidden(r *compiledRoute, c auth.Claims, segs [][]byte) string {
	switch r.access.who {
	case whoCustomer:
		if c.Role != auth.Customer {
			return "only customers may do this"
		}
	case whoManager:
		if c.Role != auth.Manager {
			return "only managers may do this"
		}
	case whoSelfOrManager:
		if c.Role != auth.Manager && string(segs[r.self]) != c.User {
			return "only that user or a manager may do this"
		}
	}
	return ""
}

var (
	space  = []byte(" ")
	bearer = []byte("Bearer")
)

// bearerToken returns the token of an Authorization header value "Bearer <token>", or
// nil: auth.BearerToken on bytes.
func bearerToken(header []byte) []byte {
	scheme, token, ok := bytes.Cut(header, space)
	if !ok || !bytes.EqualFold(scheme, bearer) {
		return nil
	}
	return bytes.TrimSpace(token)
}

// tokenCache remembers the claims of the tokens verified lately. A client sends the same
// token with every request, and verifying it (a JWT: base64 and JSON decoding, an HMAC, ~20
// allocations) cost a fifth of the gateway's throughput; a hit costs a map lookup. Only
// the exact string of a token that verified is a hit, and its expiry is checked on every
// use. It is safe for concurrent use.
type tokenCache struct {
	mu     sync.RWMutex
	claims map[string]auth.Claims
}

// maxCachedTokens bounds the cache (tokens have at most 1 KiB); when it is full it is
// emptied, which costs one verification per client.
const maxCachedTokens = 10_000

// verify returns the claims of token if it is signed with key and not expired at now, as
// key.Verify does.
func (c *tokenCache) verify(key auth.Key, token []byte, now time.Time) (auth.Claims, error) {
	c.mu.RLock()
	claims, ok := c.claims[string(token)]
	c.mu.RUnlock()
	if !ok {
		var err error
		if claims, err = key.Verify(string(token), now); err != nil {
			return claims, err
		}
		c.mu.Lock()
		if len(c.claims) >= maxCachedTokens {
			clear(c.claims)
		}
		c.claims[string(token)] = claims
		c.mu.Unlock()
	}
	if !now.Before(claims.ExpiresAt) {
		return claims, auth.ErrExpiredToken
	}
	return claims, nil
}

var (
	identityHeaders = [][]byte{[]byte("X-User"), []byte("X-User-Role"), []byte("X-Forwarded-User")}
	identityPrefix  = []byte("X-Msdemo-")
)

// isIdentityHeader reports whether name is a header that carries who the caller is.
func isIdentityHeader(name []byte) bool {
	if len(name) >= len(identityPrefix) && bytes.EqualFold(name[:len(identityPrefix)], identityPrefix) {
		return true
	}
	for _, h := range identityHeaders {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}
