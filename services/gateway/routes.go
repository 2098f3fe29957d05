package gateway

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/middleware"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// server holds what the gateway's handlers need.
type server struct {
	routes    *router
	tokenKey  auth.Key
	tokens    *tokenCache
	table     *registry.Table
	upstreams *upstreams
	ids       *idgen.Sequence
	logger    *slog.Logger
	metrics   *telemetry.Component // nil: none
	// revocations refuse the tokens a password change revoked, trustedProxies are the
	// peers whose X-Forwarded-For is believed (auth.go; nil: none, for tests).
	revocations    *auth.Revocations
	trustedProxies *proxyTrust
}

func newServer(table *registry.Table, tokenKey auth.Key, timeout time.Duration, logger *slog.Logger) *server {
	return &server{
		routes:    newRouter(policy),
		tokenKey:  tokenKey,
		tokens:    &tokenCache{claims: make(map[string]auth.Claims)},
		table:     table,
		upstreams: newUpstreams(timeout),
		ids:       idgen.NewSequence(),
		logger:    logger,
	}
}

// httpServer returns the fasthttp server for s, bounded by limits (with defaults). A
// connection must send its request's headers within ReadHeaderTimeout of opening (or, on
// a kept-alive one, of the request's first byte) and its body within ReadTimeout of the
// headers; a body may hold MaxBodyBytes, or a route's own limit (bodyLimit); one client
// address may hold MaxConnsPerIP connections (429 and closed beyond); an idle keep-alive
// connection is closed after IdleTimeout.
func (s *server) httpServer(limits httplimit.Limits) *fasthttp.Server {
	limits = limits.WithDefaults()
	perIP := limits.MaxConnsPerIP
	if perIP == httplimit.NoCap {
		perIP = 0 // fasthttp's "no cap"
	}
	return &fasthttp.Server{
		Handler: s.handle,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			s.handleBadRequest(ctx, err, s.bodyLimit(&ctx.Request.Header, limits.MaxBodyBytes))
		},
		// The server's ReadTimeout runs until the headers are in; then the body has its own.
		ReadTimeout: limits.ReadHeaderTimeout,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: limits.ReadTimeout,
				MaxRequestBodySize: int(s.bodyLimit(h, limits.MaxBodyBytes))}
		},
		// A client that asks before sending a body too large gets its 413 before it sends
		// it (else the 413 races the body, and the client may see the connection reset).
		ExpectHandler: func(ctx *fasthttp.RequestCtx) int {
			if max := s.bodyLimit(&ctx.Request.Header, limits.MaxBodyBytes); ctx.Request.Header.ContentLength() > int(max) {
				s.handleBadRequest(ctx, fasthttp.ErrBodyTooLarge, max)
				return fasthttp.StatusRequestEntityTooLarge
			}
			return fasthttp.StatusContinue
		},
		Logger:                       fasthttpLogger{s.logger},
		MaxRequestBodySize:           int(limits.MaxBodyBytes),
		ReadBufferSize:               limits.MaxHeaderBytes, // request line and headers, as nginx's large_client_header_buffers
		WriteTimeout:                 limits.WriteTimeout,
		IdleTimeout:                  limits.IdleTimeout,
		MaxConnsPerIP:                perIP,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
}

// bodyLimit is the most body bytes the gateway reads of the request whose headers are h:
// the limit of its route in largeBodies, when its path names such a route and its bearer
// token is one the route lets in, else max. It runs before the body is read, on the path
// as sent (not yet normalized: a path that only normalizes to the route gets max), and
// checks the token's signature, expiry and role, not its revocation (authorize does,
// before anything is forwarded). So no one but a caller of the route can make the gateway
// hold a larger body in memory. A request whose Content-Length is within max (every GET,
// every usual write) costs no route match or token check here.
func (s *server) bodyLimit(h *fasthttp.RequestHeader, max int64) int64 {
	if n := h.ContentLength(); n >= 0 && int64(n) <= max {
		return max // the usual request: a known body within the limit of every route
	}
	path, _, _ := bytes.Cut(h.RequestURI(), []byte("?"))
	if !bytes.HasPrefix(path, []byte("/")) {
		return max
	}
	var segBuf [maxSegments][]byte
	segs, ok := splitPath(path, segBuf[:0])
	if !ok {
		return max
	}
	r, _ := s.routes.match(h.Method(), segs)
	if r == nil || r.maxBody == 0 {
		return max
	}
	token := bearerToken(h.Peek("Authorization"))
	if len(token) == 0 {
		return max
	}
	claims, err := s.tokens.verify(s.tokenKey, token, time.Now())
	if err != nil || forbidden(r, claims, segs) != "" {
		return max
	}
	return r.maxBody
}

// handle is the gateway's one handler; the routes are the policy's.
func (s *server) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	start := time.Now()
	// The access log costs allocations, so it is only written at debug level.
	var logPath string
	debug := s.logger.Enabled(ctx, slog.LevelDebug)
	if debug {
		logPath = string(path) // path changes when the request is proxied
	}
	var idBuf [maxIDLen]byte
	id := s.requestID(&ctx.Request.Header, idBuf[:0])
	// The policy's pattern of the request ("" for none) labels its metrics; a panic is
	// measured too, after recoverPanic answered it (deferred functions run last first).
	var pattern string
	defer func() { s.metrics.ObserveHTTP(pattern, ctx.Response.StatusCode(), time.Since(start)) }()
	span := startSpan(ctx)
	defer func() { endSpan(ctx, span, pattern) }() // after recoverPanic answered
	defer s.recoverPanic(ctx, id)

	pattern = s.route(ctx, path, id)
	// The proxied response replaced anything set before it, so the id is set last, and
	// nosniff: a browser takes no JSON answer for HTML or script.
	ctx.Response.Header.SetBytesV(middleware.RequestIDHeader, id)
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")

	if debug {
		s.logger.LogAttrs(ctx, slog.LevelDebug, "request",
			slog.String("method", string(ctx.Method())),
			slog.String("path", logPath),
			slog.Int("status", ctx.Response.StatusCode()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", string(id)))
	}
}

// route answers the request for path through the policy: 404 or 405 for a route that is
// not in it, 401 or 403 for a caller who may not call it, and otherwise the gateway's own
// handler or the service's answer. It returns the policy's pattern of the route, "" for
// none.
func (s *server) route(ctx *fasthttp.RequestCtx, path, id []byte) string {
	var segBuf [maxSegments][]byte
	segs, ok := splitPath(path, segBuf[:0])
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, notFound)
		return ""
	}
	r, pathKnown := s.routes.match(ctx.Method(), segs)
	if r == nil {
		if pathKnown {
			ctx.Response.Header.Set("Allow", s.routes.allowed(segs))
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
			return ""
		}
		writeError(ctx, fasthttp.StatusNotFound, notFound)
		return ""
	}
	if !s.authorize(ctx, r, segs) {
		return r.pattern
	}
	switch r.pattern {
	case "/healthz":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}`)
	case "/registry":
		s.handleRegistry(ctx)
	case "/openapi.yaml":
		ctx.SetContentType("application/yaml")
		ctx.SetBody(openAPI)
	default:
		s.proxy(ctx, r.service, path[1+len(r.service):], id)
	}
	return r.pattern
}

const notFound = "no such route; the API is described at GET /openapi.yaml"

// openAPI is the OpenAPI 3 document of the API: every route of policy.
//
//go:embed openapi.yaml
var openAPI []byte

// services are the services the gateway forwards to, the first segments of their routes.
var services = registry.Upstreams()

// registryView is the body of GET /registry.
type registryView struct {
	Instances  []registry.Entry  `json:"instances"`
	Static     map[string]string `json:"static"`
	TTLSeconds float64           `json:"ttl_seconds"`
}

func (s *server) handleRegistry(ctx *fasthttp.RequestCtx) {
	view := registryView{
		Instances:  s.table.Instances(),
		Static:     s.table.Static(),
		TTLSeconds: s.table.TTL().Seconds(),
	}
	if view.Instances == nil {
		view.Instances = []registry.Entry{}
	}
	writeJSON(ctx, fasthttp.StatusOK, view)
}

// handleBadRequest answers a request that fasthttp could not read; maxBody is the body
// limit.
func (s *server) handleBadRequest(ctx *fasthttp.RequestCtx, err error, maxBody int64) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBody))
	case errors.As(err, &small):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers are too large")
	default:
		writeError(ctx, fasthttp.StatusBadRequest, "malformed HTTP request")
	}
}

// writeError answers {"error": msg} with status.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeJSON(ctx, status, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("gateway: encode %T: %v", v, err)) // only our own types get here
	}
	ctx.Response.ResetBody()
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(body)
}

// fasthttpLogger sends fasthttp's own messages (mostly broken client connections) to the
// logger at debug level.
type fasthttpLogger struct{ logger *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.logger.LogAttrs(context.Background(), slog.LevelDebug, fmt.Sprintf(format, args...))
}
