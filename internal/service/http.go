package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/httpjson"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

type requestIDKey struct{}

// RequestID returns the id of the request of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Middleware is the chain every service API uses, outermost first: request id (the
// gateway's X-Request-Id, or a new one), recovery from panics into a logged 500, body
// size limit, and token authentication.
func Middleware(logger *slog.Logger, key auth.Key) []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id := r.Header.Get("X-Request-Id")
				if id == "" || len(id) > 64 {
					id = uuid.NewString()
				}
				w.Header().Set("X-Request-Id", id)
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
			})
		},
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if v := recover(); v != nil {
						if v == http.ErrAbortHandler {
							panic(v)
						}
						logger.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v),
							"method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
						httpjson.Error(w, http.StatusInternalServerError, "internal error")
					}
				}()
				next.ServeHTTP(w, r)
			})
		},
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
				next.ServeHTTP(w, r)
			})
		},
		auth.Authenticate(key),
	}
}

// Decode reads the JSON body of r into v, whatever its Content-Type says (curl -d sends
// application/x-www-form-urlencoded; the API authenticates with bearer tokens, not
// cookies, so a browser's cross-site form post gains nothing). Unknown fields, trailing
// data, a body that is not JSON and a body that is too large are all FieldErrors or errors
// that Error maps to 400 or 413.
func Decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooLarge):
			return err
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return FieldErrors{typeErr.Field: "must be a " + jsonKind(typeErr.Type.Kind().String())}
		case errors.Is(err, io.EOF):
			return FieldErrors{"body": "is empty: send a JSON object"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return FieldErrors{field: "is not a known field"}
		default:
			return FieldErrors{"body": "is not valid JSON: " + err.Error()}
		}
	}
	if dec.More() {
		return FieldErrors{"body": "has data after the JSON object"}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64":
		return "whole number"
	case "float64", "float32":
		return "number"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "JSON object"
	case "slice":
		return "JSON array"
	}
	return goKind
}

// Error answers err with its status and a safe message; only an unexpected error is
// logged, in full, and answered 500.
func Error(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var fields FieldErrors
	var conflict *ConflictError
	var conflictMsg *ConflictMessageError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &fields):
		httpjson.FieldErrors(w, "invalid input", fields)
	case errors.As(err, &tooLarge):
		httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooLarge.Limit))
	case errors.As(err, &conflict):
		httpjson.Write(w, http.StatusConflict, map[string]any{"error": conflict.Error(), "current_version": conflict.Current})
	case errors.As(err, &conflictMsg):
		httpjson.Error(w, http.StatusConflict, conflictMsg.Message)
	case errors.Is(err, ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "not found")
	case errors.Is(err, ErrForbidden):
		httpjson.Error(w, http.StatusForbidden, "not allowed")
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		logger.WarnContext(r.Context(), "dependency unavailable", "error", err, "request_id", RequestID(r.Context()))
		httpjson.Error(w, http.StatusServiceUnavailable, "a service the shop needs is down; try again shortly")
	default:
		logger.ErrorContext(r.Context(), "request failed", "error", err, "method", r.Method,
			"path", r.URL.Path, "request_id", RequestID(r.Context()))
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// Health serves GET /healthz: 200 once ready() is true (the read model caught up), 503
// before.
func Health(ready func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			httpjson.Error(w, http.StatusServiceUnavailable, "catching up with the event store")
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// Page limits of list endpoints.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// PageParams reads a list endpoint's ?limit= (1 to MaxPageLimit, default
// DefaultPageLimit) and ?after= (the sort key of the last item of the previous page).
func PageParams(r *http.Request) (limit int, after string, err error) {
	limit = DefaultPageLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		if _, scanErr := fmt.Sscanf(v, "%d", &limit); scanErr != nil || limit < 1 || limit > MaxPageLimit || fmt.Sprint(limit) != v {
			return 0, "", FieldErrors{"limit": fmt.Sprintf("must be a whole number from 1 to %d", MaxPageLimit)}
		}
	}
	after = r.URL.Query().Get("after")
	if len(after) > 200 {
		return 0, "", FieldErrors{"after": "is too long"}
	}
	return limit, after, nil
}

// API wraps a service's routes into its HTTP handler: GET /healthz (200 once ready, 503
// before), and every other request through Middleware and a gate that answers 503 (with
// Retry-After) until ready() is true, so that nothing is decided on a read model that has
// not caught up.
func API(logger *slog.Logger, key auth.Key, ready func() bool, routes http.Handler) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			w.Header().Set("Retry-After", "1")
			httpjson.Error(w, http.StatusServiceUnavailable, "catching up with the event store; try again shortly")
			return
		}
		routes.ServeHTTP(w, r)
	})
	var wrapped http.Handler = h
	mw := Middleware(logger, key)
	for i := len(mw) - 1; i >= 0; i-- {
		wrapped = mw[i](wrapped)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", Health(ready))
	mux.Handle("/", wrapped)
	return mux
}
