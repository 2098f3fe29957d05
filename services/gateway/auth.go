package gateway

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/realclientip/realclientip-go"
	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/auth"
)

// authorize is the one place where the gateway decides who is calling and whether they may
// call route r, before the request is handled or forwarded. segs are the path's segments.
// It returns false when the request must not go on, after writing the response:
//   - identity headers the client sent are removed, whatever happens next;
//   - a bearer token, when there is one, must be valid, unexpired and not revoked by a
//     password change (401 otherwise; 503 when Redis cannot say), on every route, as the
//     services' own auth.Authenticate does (which does not check revocations);
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
			if err == nil && s.revocations != nil {
				// Not ctx: a RequestCtx is a context only while a server runs it, and
				// go-redis bounds the call by its own timeouts (3 s).
				err = s.revocations.Check(context.Background(), claims)
			}
			switch {
			case errors.Is(err, auth.ErrExpiredToken):
				writeError(ctx, fasthttp.StatusUnauthorized, "token expired: log in again")
				return false
			case errors.Is(err, auth.ErrRevokedToken):
				writeError(ctx, fasthttp.StatusUnauthorized, auth.RevokedMessage)
				return false
			case errors.Is(err, auth.ErrInvalidToken):
				writeError(ctx, fasthttp.StatusUnauthorized, "invalid token")
				return false
			case err != nil:
				s.logger.WarnContext(ctx, "check the token's revocation", "error", err)
				writeError(ctx, fasthttp.StatusServiceUnavailable, "cannot check the token now; try again shortly")
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
		h.Set(auth.UserHeader, claims.User)
		h.Set(auth.RoleHeader, string(claims.Role))
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

// revocationCacheFor is how long the gateway keeps what it read of a user's revocation:
// a password change reaches every gateway replica within it, and a client that sends
// many requests costs Redis one read a second.
const revocationCacheFor = time.Second

// defaultTrustedProxies are the proxies trusted when Config.TrustedProxies is empty:
// the sites of the all-in-one process, on this host.
var defaultTrustedProxies = []string{"127.0.0.0/8", "::1"}

// setUpAuth connects s to the revocations in Redis and reads the trusted proxies of
// cfg; the returned function closes the connection.
func (s *server) setUpAuth(ctx context.Context, cfg Config) (func(), error) {
	trusted := cfg.TrustedProxies
	if len(trusted) == 0 {
		trusted = defaultTrustedProxies
	}
	ranges, err := realclientip.AddressesAndRangesToIPNets(trusted...)
	if err != nil {
		return nil, fmt.Errorf("gateway: trusted proxies: %w", err)
	}
	strategy, err := realclientip.NewRightmostTrustedRangeStrategy("X-Forwarded-For", ranges)
	if err != nil {
		return nil, fmt.Errorf("gateway: trusted proxies: %w", err)
	}
	revocations, closeRedis, err := auth.OpenRevocations(ctx, cmp.Or(cfg.RedisURL, "redis://127.0.0.1:6379/0"),
		cmp.Or(cfg.RevocationPrefix, auth.DefaultRevocationPrefix), revocationCacheFor)
	if err != nil {
		return nil, fmt.Errorf("gateway: token revocations: %w", err)
	}
	s.revocations, s.trustedProxies = revocations, &proxyTrust{ranges: ranges, strategy: strategy}
	return func() { _ = closeRedis() }, nil
}

// proxyTrust says which peers are trusted proxies and finds the client in what they
// forward.
type proxyTrust struct {
	ranges   []net.IPNet
	strategy realclientip.RightmostTrustedRangeStrategy
}

func (p *proxyTrust) trusts(ip net.IP) bool {
	for _, r := range p.ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP returns the address of the client of ctx, which the gateway forwards as
// X-Forwarded-For (replacing what the client sent): the peer's address, unless the peer
// is a trusted proxy (the sites, a load balancer; Config.TrustedProxies); then the
// rightmost address of the X-Forwarded-For it sent that is not a trusted proxy's. A
// client can put anything in X-Forwarded-For, but only the entries that trusted proxies
// appended are believed, so no client can pass for another address (and so escape the
// per-address rate limits of the customer service).
func (s *server) clientIP(ctx *fasthttp.RequestCtx) net.IP {
	peer := ctx.RemoteIP()
	if s.trustedProxies == nil || !s.trustedProxies.trusts(peer) {
		return peer
	}
	var header http.Header
	for _, v := range ctx.Request.Header.PeekAll("X-Forwarded-For") {
		if header == nil {
			header = http.Header{}
		}
		header.Add("X-Forwarded-For", string(v))
	}
	if header == nil {
		return peer
	}
	if host, _ := realclientip.SplitHostZone(s.trustedProxies.strategy.ClientIP(header, "")); net.ParseIP(host) != nil {
		return net.ParseIP(host)
	}
	return peer
}
