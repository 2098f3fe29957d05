package gateway

import (
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/middleware"
)

// maxIDLen is the longest client request id the gateway keeps.
const maxIDLen = middleware.MaxRequestIDLen

// requestID returns the request's X-Request-Id, appended to buf: the client's if it is a
// sane token (middleware.ValidRequestID, the rule the services apply too), otherwise a
// new one, which it also sets on the request.
func (s *server) requestID(h *fasthttp.RequestHeader, buf []byte) []byte {
	if id := h.Peek(middleware.RequestIDHeader); middleware.ValidRequestID(id) {
		return append(buf, id...)
	}
	id := s.ids.Append(buf)
	h.SetBytesV(middleware.RequestIDHeader, id)
	return id
}

// recoverPanic, deferred by handle, turns a panic in the gateway's handler into a logged
// 500 (middleware.LogPanic: with the stack), as the services' and the sites' middleware
// do; fasthttp itself would let it end the process. The response is still in memory, so
// it is replaced whole.
func (s *server) recoverPanic(ctx *fasthttp.RequestCtx, id []byte) {
	v := recover()
	if v == nil {
		return
	}
	middleware.LogPanic(ctx, s.logger, v, slog.String("method", string(ctx.Method())),
		slog.String("path", string(ctx.Path())), slog.String("request_id", string(id)))
	ctx.Response.Reset()
	writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
	ctx.Response.Header.SetBytesV(middleware.RequestIDHeader, id)
}
