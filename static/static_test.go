package static_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/msdemo/msdemo/static"
)

func TestHandlerCaching(t *testing.T) {
	h := static.Handler()
	for _, tc := range []struct {
		url, cache string
		status     int
	}{
		{static.Path("css/shop.css"), "public, max-age=31536000, immutable", 200},
		{"/static/css/shop.css", "no-cache", 200},
		{"/static/css/shop.css?v=old", "no-cache", 200},
		{"/static/vendor/htmx.min.js", "no-cache", 200},
		{"/static/manifest.webmanifest", "no-cache", 200},
		{"/static/nothing.css", "", 404},
		{"/static/../static.go", "", 404},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.url, nil))
		if rec.Code != tc.status || rec.Header().Get("Cache-Control") != tc.cache {
			t.Errorf("GET %s: got %d %q, want %d %q", tc.url, rec.Code, rec.Header().Get("Cache-Control"), tc.status, tc.cache)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/static/manifest.webmanifest", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/manifest+json" {
		t.Errorf("manifest Content-Type got %q, want application/manifest+json", ct)
	}
}
