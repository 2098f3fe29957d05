package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
