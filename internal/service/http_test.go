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

type profile struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, body, contentType string
		wantField               string // "" means no error
	}{
		{"valid", `{"name": "a", "count": 1}`, "application/json", ""},
		{"no content type", `{"name": "a"}`, "", ""},
		{"curl -d", `{"name": "a"}`, "application/x-www-form-urlencoded", ""},
		{"form", `name=a`, "application/x-www-form-urlencoded", "body"},
		{"empty", ``, "application/json", "body"},
		{"not JSON", `{"name": `, "application/json", "body"},
		{"wrong type", `{"count": "1"}`, "application/json", "count"},
		{"float for int", `{"count": 1.5}`, "application/json", "count"},
		{"unknown field", `{"nmae": "a"}`, "application/json", "nmae"},
		{"trailing data", `{"name": "a"} {}`, "application/json", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var p profile
			err := Decode(r, &p)
			var fields FieldErrors
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantField != "" && !errors.As(err, &fields):
				t.Fatalf("got error %v, want FieldErrors", err)
			case tt.wantField != "" && fields[tt.wantField] == "":
				t.Fatalf("got fields %v, want one for %q", fields, tt.wantField)
			}
		})
	}
}

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

func TestPageParams(t *testing.T) {
	tests := []struct {
		query     string
		wantLimit int
		wantErr   bool
	}{
		{"", DefaultPageLimit, false},
		{"limit=10&after=abc", 10, false},
		{"limit=0", 0, true},
		{"limit=501", 0, true},
		{"limit=1x", 0, true},
		{"limit=-1", 0, true},
		{"after=" + strings.Repeat("a", 201), 0, true},
	}
	for _, tt := range tests {
		limit, _, err := PageParams(httptest.NewRequest(http.MethodGet, "/?"+tt.query, nil))
		if (err != nil) != tt.wantErr || (!tt.wantErr && limit != tt.wantLimit) {
			t.Errorf("PageParams(%q): got %d, %v; want %d, error %v", tt.query, limit, err, tt.wantLimit, tt.wantErr)
		}
	}
}
