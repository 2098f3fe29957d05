package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/registry"
)

// maxBodySize is the largest request body the gateway forwards; larger ones get 413.
const maxBodySize = 1 << 20

// server holds what the gateway's handlers need.
type server struct {
	table     *registry.Table
	upstreams *upstreams
	ids       *idGenerator
	logger    *slog.Logger
}

func newServer(table *registry.Table, timeout time.Duration, logger *slog.Logger) *server {
	return &server{
		table:     table,
		upstreams: newUpstreams(timeout),
		ids:       newIDGenerator(),
		logger:    logger,
	}
}

// httpServer returns the fasthttp server for s. Its timeouts protect against slow
// clients: a request must arrive within the upstream timeout, and an idle keep-alive
// connection is closed after two minutes.
func (s *server) httpServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      s.handle,
		ErrorHandler:                 s.handleBadRequest,
		Logger:                       fasthttpLogger{s.logger},
		MaxRequestBodySize:           maxBodySize,
		ReadBufferSize:               8 << 10, // request line and headers, as nginx's large_client_header_buffers
		ReadTimeout:                  s.upstreams.timeout,
		WriteTimeout:                 s.upstreams.timeout,
		IdleTimeout:                  2 * time.Minute,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
}

// handle is the gateway's one handler: it lists every route.
func (s *server) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	// The access log costs allocations, so it is only written at debug level.
	var start time.Time
	var logPath string
	debug := s.logger.Enabled(ctx, slog.LevelDebug)
	if debug {
		start, logPath = time.Now(), string(path) // path changes when the request is proxied
	}
	var idBuf [maxIDLen]byte
	id := s.requestID(&ctx.Request.Header, idBuf[:0])

	switch string(path) {
	case "/healthz":
		s.handleHealthz(ctx)
	case "/registry":
		s.handleRegistry(ctx)
	default:
		service, rest := splitService(path)
		if service == "" {
			writeError(ctx, fasthttp.StatusNotFound, "no such service; the API is under /customer, /product, /order, /accounting and /eventstore")
			break
		}
		if !authenticate(ctx, service) {
			break
		}
		s.proxy(ctx, service, rest, id)
	}
	// The proxied response replaced anything set before it, so the id is set last.
	ctx.Response.Header.SetBytesV("X-Request-Id", id)

	if debug {
		s.logger.LogAttrs(ctx, slog.LevelDebug, "request",
			slog.String("method", string(ctx.Method())),
			slog.String("path", logPath),
			slog.Int("status", ctx.Response.StatusCode()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", string(id)))
	}
}

// services are the first path segments the gateway forwards.
var services = []string{"customer", "product", "order", "accounting", "eventstore"}

var slash = []byte("/")

// splitService splits path "/product/products/7" into "product" and "/products/7". It
// returns service "" if the first segment names no service. The service is one of the
// constants in services, so using it costs no allocation.
func splitService(path []byte) (service string, rest []byte) {
	first := path[1:] // fasthttp paths start with "/"
	rest = slash
	if i := bytes.IndexByte(first, '/'); i >= 0 {
		first, rest = first[:i], first[i:]
	}
	for _, name := range services {
		if string(first) == name {
			return name, rest
		}
	}
	return "", nil
}

func (s *server) handleHealthz(ctx *fasthttp.RequestCtx) {
	if !allowGet(ctx) {
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"ok"}`)
}

// registryView is the body of GET /registry.
type registryView struct {
	Instances  []registry.Entry  `json:"instances"`
	Static     map[string]string `json:"static"`
	TTLSeconds float64           `json:"ttl_seconds"`
}

func (s *server) handleRegistry(ctx *fasthttp.RequestCtx) {
	if !allowGet(ctx) {
		return
	}
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

func allowGet(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	ctx.Response.Header.Set("Allow", "GET, HEAD")
	writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
	return false
}

// handleBadRequest answers a request that fasthttp could not read.
func (s *server) handleBadRequest(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBodySize))
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
