package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/msdemo/msdemo/internal/httpjson"
)

// Errors that the services share, mapped to HTTP statuses by Error.
var (
	ErrNotFound    = errors.New("not found")                        // 404
	ErrForbidden   = errors.New("not allowed")                      // 403
	ErrUnavailable = errors.New("a service the shop needs is down") // 503
	ErrInvalid     = errors.New("the event store refused the events")
)

// ConflictError says a stream has moved on since the caller read it (409).
type ConflictError struct {
	Stream  string
	Current int64 // the stream's version now
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s was changed meanwhile (now at version %d): load it again", e.Stream, e.Current)
}

// FieldErrors says which input fields are wrong and why (400).
type FieldErrors map[string]string

func (e FieldErrors) Error() string { return "invalid input" }

// ConflictMessageError is a 409 for a rule, e.g. "username taken".
type ConflictMessageError struct{ Message string }

func (e *ConflictMessageError) Error() string { return e.Message }

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
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded), storeDown(err):
		logger.WarnContext(r.Context(), "dependency unavailable", "error", err, "request_id", RequestID(r.Context()))
		httpjson.Error(w, http.StatusServiceUnavailable, "a service the shop needs is down; try again shortly")
	default:
		logger.ErrorContext(r.Context(), "request failed", "error", err, "method", r.Method,
			"path", r.URL.Path, "request_id", RequestID(r.Context()))
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// storeDown reports whether err says a store could not be reached, rather than that the
// request went wrong: a connection refused or cut, PostgreSQL's connection exceptions
// (SQLSTATE class 08) and operator intervention (57: shutting down, restarting). Those
// are 503s, a "try again" the clients know, not 500s.
func storeDown(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57")
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err)
}
