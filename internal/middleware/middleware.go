// Package middleware is the HTTP middleware that every msdemo server shares, written once:
// request ids (RequestID) and recovery from panics (Recover). The services (through
// internal/service) and the sites (through internal/web) use them as net/http middleware;
// the gateway, built on fasthttp, uses the parts they are made of: ValidRequestID, idgen.Sequence
// and LogPanic.
//
// Request ids ride on chi's middleware.RequestID, so the id is in the request's context
// under chi's key (chi's GetReqID and GetRequestID read the same value). What chi's
// middleware does not do is done here: a client's id is kept only if it is a short, clean
// token, a new one is made in the gateway's format, and the id is sent back in the
// response. Recovery is not chi's Recoverer: that one answers a bare 500 and prints the
// stack to stderr, where the services owe a JSON error body and every log line goes
// through slog.
package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/msdemo/msdemo/internal/idgen"
)

// RequestIDHeader carries a request's id from the gateway to the services and back to the
// client. It is chi's middleware.RequestIDHeader default.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLen is the longest request id a client may choose.
const MaxRequestIDLen = 64

// ValidRequestID reports whether id is 1 to MaxRequestIDLen letters, digits, '-', '_',
// '.' or ':', which keeps log lines and headers clean (no spaces, quotes or control
// characters). It takes the gateway's []byte as well as a string, without copying.
func ValidRequestID[ID string | []byte](id ID) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// RequestID gives every request an id: the client's X-Request-Id if ValidRequestID says it
// is clean (the gateway sends one with every request), else a new one from ids, which it
// also sets on the request's header. The id is in the request's context (GetRequestID)
// and in the response's X-Request-Id.
func RequestID(ids *idgen.Sequence) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		next = chimw.RequestID(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(RequestIDHeader)
			if !ValidRequestID(id) {
				id = ids.New()
				r.Header.Set(RequestIDHeader, id)
			}
			w.Header().Set(RequestIDHeader, id)
			next.ServeHTTP(w, r)
		})
	}
}

// GetRequestID returns the id that RequestID gave the request of ctx, "" outside one.
func GetRequestID(ctx context.Context) string {
	return chimw.GetReqID(ctx)
}

// Recover turns a panic in a handler into a log line (LogPanic: the value, the stack, the
// method, path and request id) and an answer by answer, which writes the 500 (nil: a plain
// "internal error"). If the handler had begun its response, it cannot be answered any
// more: Recover then aborts it (panic with http.ErrAbortHandler, which net/http does not
// log), so that the client sees a broken response rather than a complete-looking part of
// one. A handler's own http.ErrAbortHandler passes through.
func Recover(logger *slog.Logger, answer http.HandlerFunc) func(http.Handler) http.Handler {
	if answer == nil {
		answer = func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				LogPanic(r.Context(), logger, v, slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.String("request_id", GetRequestID(r.Context())))
				if ww.Status() != 0 {
					panic(http.ErrAbortHandler)
				}
				answer(ww, r)
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// LogPanic logs v, a value recovered from a panic, at error level with the stack of the
// goroutine that panicked (call it from the deferred function that recovered) and attrs.
func LogPanic(ctx context.Context, logger *slog.Logger, v any, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
	logger.LogAttrs(ctx, slog.LevelError, "handler panicked", attrs...)
}
