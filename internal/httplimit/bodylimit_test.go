package httplimit_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/httplimit"
)

// BodyLimit bounds each body to its route's limit, or to the default.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, strings.Repeat("x", int(n)))
	})
	h := httplimit.BodyLimit(10, map[string]int64{"PUT /things/{id}/image": 100})(read)
	tests := []struct {
		method, path string
		size         int
		want         int
	}{
		{"POST", "/things", 10, 200},
		{"POST", "/things", 11, 413},
		{"PUT", "/things/a/image", 100, 200},
		{"PUT", "/things/a/image", 101, 413},
		{"POST", "/things/a/image", 11, 413}, // another method: the default
		{"PUT", "/things/a/image/x", 11, 413},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, strings.NewReader(strings.Repeat("b", tt.size))))
		if w.Code != tt.want {
			t.Errorf("%s %s with %d bytes: got %d, want %d", tt.method, tt.path, tt.size, w.Code, tt.want)
		}
	}
}
