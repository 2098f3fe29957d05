package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestErrorStatuses(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		err  error
		want int
	}{
		{FieldErrors{"name": "required"}, http.StatusBadRequest},
		{fmt.Errorf("load: %w", ErrNotFound), http.StatusNotFound},
		{ErrForbidden, http.StatusForbidden},
		{&ConflictError{Stream: "product-1", Current: 4}, http.StatusConflict},
		{&ConflictMessageError{Message: "username taken"}, http.StatusConflict},
		{fmt.Errorf("append: %w", ErrUnavailable), http.StatusServiceUnavailable},
		{context.DeadlineExceeded, http.StatusServiceUnavailable},
		{&http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge},
		{errors.New("boom"), http.StatusInternalServerError},
		// PostgreSQL restarting or shutting down (the soak's restart), a unique violation.
		{fmt.Errorf("list orders: %w", &pgconn.PgError{Code: "57P01"}), http.StatusServiceUnavailable},
		{&pgconn.PgError{Code: "57P03"}, http.StatusServiceUnavailable},
		{&pgconn.PgError{Code: "23505"}, http.StatusInternalServerError},
		{postgresUnreachable(t), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		Error(w, httptest.NewRequest(http.MethodGet, "/", nil), logger, tt.err)
		var body map[string]any
		if w.Code != tt.want || json.Unmarshal(w.Body.Bytes(), &body) != nil || body["error"] == "" {
			t.Errorf("Error(%v): got %d %s, want %d with a JSON error", tt.err, w.Code, w.Body, tt.want)
		}
		if tt.want == http.StatusInternalServerError && strings.Contains(w.Body.String(), "boom") {
			t.Errorf("a 500 shows the internal error: %s", w.Body)
		}
	}
}

// postgresUnreachable is pgx's error connecting to a port where nothing listens.
func postgresUnreachable(t *testing.T) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = pgconn.Connect(context.Background(), "postgres://postgres@"+addr+"/x?connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	return fmt.Errorf("read the price: %w", err)
}
