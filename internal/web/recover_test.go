package web_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/web"
)

func panicInPage(w http.ResponseWriter, r *http.Request) { panic("page bug") }

// A page handler that panics gets a 500, a log line with the stack, and the request's
// access log line with status 500.
func TestLoggingRecoversAPanic(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	w := httptest.NewRecorder()
	web.Logging(logger)(http.HandlerFunc(panicInPage)).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/products", nil))

	if w.Code != http.StatusInternalServerError {
		t.Errorf("got status %d, want 500", w.Code)
	}
	var panicked, request map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		switch line["msg"] {
		case "handler panicked":
			panicked = line
		case "request":
			request = line
		}
	}
	if stack, _ := panicked["stack"].(string); panicked["panic"] != "page bug" || !strings.Contains(stack, "web_test.panicInPage") {
		t.Errorf("got panic log %v, want the panic with a stack through panicInPage", panicked)
	}
	if request["status"] != float64(http.StatusInternalServerError) || request["path"] != "/products" {
		t.Errorf("got request log %v, want /products with status 500", request)
	}
}
