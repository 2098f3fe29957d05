package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// proxy forwards the request to a live instance of service, with path rest, and relays
// the instance's response. The request and response objects of ctx are reused as
// the upstream request and response, which is what makes the proxy cheap.
func (s *server) proxy(ctx *fasthttp.RequestCtx, service string, rest, id []byte) {
	baseURL, ok := s.table.Pick(service)
	if !ok {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "no instance is up", slog.String("service", service),
			slog.String("request_id", string(id)))
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no instance of "+service+" is up")
		return
	}
	up, err := s.upstreams.get(baseURL)
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelError, "bad instance URL", slog.String("service", service),
			slog.String("url", baseURL), slog.String("error", err.Error()))
		writeError(ctx, fasthttp.StatusBadGateway, "cannot reach "+service)
		return
	}

	clientClose := ctx.Request.Header.ConnectionClose()
	// rest points into the request's URI, which prepare rewrites: keep it for a retry.
	var restBuf [256]byte
	rest = append(restBuf[:0], rest...)
	up.prepare(ctx, rest, s.clientIP(ctx))
	err = up.client.DoTimeout(&ctx.Request, &ctx.Response, s.upstreams.timeout)
	// An instance that cannot be connected to died (or is going): drop it from the
	// registry at once rather than after its TTL, and send the request to another
	// instance. Nothing reached the dead one, so a write is safe to send again.
	for tries := 1; notSent(err) && tries <= maxInstanceTries; tries++ {
		s.table.Drop(service, baseURL)
		next, ok := s.table.Pick(service)
		if !ok || next == baseURL {
			break
		}
		s.logger.LogAttrs(ctx, slog.LevelWarn, "instance unreachable; dropped, and the request sent to another",
			slog.String("service", service), slog.String("url", baseURL), slog.String("next", next),
			slog.String("error", err.Error()), slog.String("request_id", string(id)))
		if up, err = s.upstreams.get(next); err != nil {
			break
		}
		baseURL = next
		up.aim(&ctx.Request, rest)
		ctx.Response.Reset()
		err = up.client.DoTimeout(&ctx.Request, &ctx.Response, s.upstreams.timeout)
	}
	if errors.Is(err, fasthttp.ErrConnectionClosed) {
		// The instance behind the pooled connections went away (a restart on the same
		// address): fasthttp's own retries may all land on other dead connections, so
		// drop them, and send a read again on a fresh one. A write is not sent twice: the
		// old instance may have done it before dying.
		up.client.CloseIdleConnections()
		if ctx.IsGet() || ctx.IsHead() {
			ctx.Response.Reset()
			err = up.client.DoTimeout(&ctx.Request, &ctx.Response, s.upstreams.timeout)
		}
	}
	if err != nil {
		status, msg := upstreamError(err, service, s.upstreams.timeout)
		s.logger.LogAttrs(ctx, slog.LevelWarn, "upstream request failed", slog.String("service", service),
			slog.String("url", baseURL), slog.Int("status", status), slog.String("error", err.Error()),
			slog.String("request_id", string(id)))
		ctx.Response.Reset()
		writeError(ctx, status, msg)
		return
	}
	// The upstream connection's keep-alive is not the client's.
	ctx.Response.Header.ResetConnectionClose()
	if clientClose {
		ctx.SetConnectionClose()
	}
}

// maxInstanceTries bounds how many other instances one request is sent to after the one
// picked could not be connected to.
const maxInstanceTries = 3

// notSent reports whether err means the request never reached the instance: it could not
// be connected to (refused, no route, no answer to the connect within the dial timeout).
func notSent(err error) bool {
	var opErr *net.OpError
	return errors.Is(err, fasthttp.ErrDialTimeout) || errors.As(err, &opErr) && opErr.Op == "dial"
}

// upstreamError maps an error of the upstream client to a status and a message for the
// client.
func upstreamError(err error, service string, timeout time.Duration) (status int, msg string) {
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return fasthttp.StatusGatewayTimeout, fmt.Sprintf("%s did not answer within %s", service, timeout)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusBadGateway, fmt.Sprintf("the response of %s is larger than %d bytes", service, maxResponseSize)
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.StatusServiceUnavailable, "too many requests in flight to " + service
	default:
		return fasthttp.StatusBadGateway, "cannot reach " + service
	}
}

// maxResponseSize is the largest upstream response the gateway relays; a larger one is a
// 502. Responses are read whole before they are sent on (see the package doc).
const maxResponseSize = 64 << 20

// upstream is one instance base URL with its pool of keep-alive connections.
type upstream struct {
	client *fasthttp.HostClient
	scheme []byte // "http" or "https"
	host   []byte // host:port
	prefix []byte // the base URL's path without a trailing slash, usually empty
}

// hopByHop are the request headers that describe one connection, not the request
// (RFC 9110 section 7.6.1); fasthttp frames the upstream request itself.
var hopByHop = [][]byte{
	[]byte("Connection"), []byte("Proxy-Connection"), []byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"), []byte("Proxy-Authorization"), []byte("Te"),
	[]byte("Trailer"), []byte("Transfer-Encoding"), []byte("Upgrade"),
}

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// prepare turns the client's request in ctx, of client, into the request to u for path
// rest.
func (u *upstream) prepare(ctx *fasthttp.RequestCtx, rest []byte, client net.IP) {
	h := &ctx.Request.Header
	h.ResetConnectionClose()
	deleteHeaders(h, isHopByHop)

	// The gateway is the edge: X-Forwarded-For is the client's address, not what it
	// claims (clientIP: what a trusted proxy reports, or the peer). Set replaces only the
	// first of several headers of one name, so every copy the client sent goes first.
	var ipBuf [net.IPv6len * 3]byte
	ip, _ := client.AppendText(ipBuf[:0])
	h.Del("X-Forwarded-For")
	h.SetBytesV("X-Forwarded-For", ip)
	h.Del("X-Forwarded-Host")
	h.SetBytesV("X-Forwarded-Host", h.Host()) // before Host becomes the upstream's
	if ctx.IsTLS() {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}

	u.aim(&ctx.Request, rest)
}

// aim points req at u, for path rest; the query string stays as the client sent it.
func (u *upstream) aim(req *fasthttp.Request, rest []byte) {
	var pathBuf [256]byte
	path := append(append(pathBuf[:0], u.prefix...), rest...)
	uri := req.URI()
	uri.SetSchemeBytes(u.scheme)
	uri.SetHostBytes(u.host)
	uri.SetPathBytes(path)
}

// deleteHeaders removes every request header whose name matches.
func deleteHeaders(h *fasthttp.RequestHeader, match func(name []byte) bool) {
	var names []string // rarely any: no allocation in the common case
	for name := range h.All() {
		if match(name) {
			names = append(names, string(name))
		}
	}
	for _, name := range names {
		h.Del(name)
	}
}

// upstreams keeps one upstream per instance base URL, so connections are reused across
// requests. It is safe for concurrent use.
type upstreams struct {
	timeout time.Duration

	mu    sync.RWMutex
	byURL map[string]*upstream
}

func newUpstreams(timeout time.Duration) *upstreams {
	return &upstreams{timeout: timeout, byURL: make(map[string]*upstream)}
}

// get returns the upstream for baseURL, creating it on first use. It fails if baseURL is
// not an absolute http or https URL.
func (us *upstreams) get(baseURL string) (*upstream, error) {
	us.mu.RLock()
	u := us.byURL[baseURL]
	us.mu.RUnlock()
	if u != nil {
		return u, nil
	}

	parsed, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse upstream URL: %w", err)
	}
	if (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, fmt.Errorf("upstream URL %q: want http://host:port or https://host:port", baseURL)
	}
	isTLS := parsed.Scheme == "https"
	addr := parsed.Host
	if parsed.Port() == "" {
		addr = net.JoinHostPort(parsed.Hostname(), map[bool]string{false: "80", true: "443"}[isTLS])
	}
	u = &upstream{
		client: &fasthttp.HostClient{
			Addr:                     addr,
			IsTLS:                    isTLS,
			NoDefaultUserAgentHeader: true,
			MaxResponseBodySize:      maxResponseSize,
			MaxConns:                 1024,
			MaxConnWaitTimeout:       us.timeout,
			MaxIdleConnDuration:      time.Minute,
			ReadBufferSize:           8 << 10,
		},
		scheme: []byte(parsed.Scheme),
		host:   []byte(parsed.Host),
		prefix: []byte(trimSlash(parsed.EscapedPath())),
	}

	us.mu.Lock()
	defer us.mu.Unlock()
	if existing := us.byURL[baseURL]; existing != nil {
		return existing, nil
	}
	us.byURL[baseURL] = u
	return u, nil
}

// closeIdleOf closes the idle connections to baseURL, if any are kept.
func (us *upstreams) closeIdleOf(baseURL string) {
	us.mu.RLock()
	u := us.byURL[baseURL]
	us.mu.RUnlock()
	if u != nil {
		u.client.CloseIdleConnections()
	}
}

// closeIdle closes the idle connections of every upstream (at shutdown).
func (us *upstreams) closeIdle() {
	us.mu.RLock()
	defer us.mu.RUnlock()
	for _, u := range us.byURL {
		u.client.CloseIdleConnections()
	}
}

func trimSlash(path string) string {
	for len(path) > 0 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	return path
}
