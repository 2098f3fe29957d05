package service

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
