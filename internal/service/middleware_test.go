package service

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/auth"
)

// A route that panics answers 500 with the API's JSON error, and the panic is logged once
// with its stack and the request's id.
func TestAPIRecoversAPanic(t *testing.T) {
	key, err := auth.LoadKey("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panicInRoute() })
	h := API(logger, key, func() bool { return true }, routes)

	r := httptest.NewRequest(http.MethodGet, "/things", nil)
	r.Header.Set("X-Request-Id", "abc-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	var body map[string]string
	if w.Code != http.StatusInternalServerError || json.Unmarshal(w.Body.Bytes(), &body) != nil || body["error"] != "internal error" {
		t.Errorf("got %d %s, want 500 {\"error\": \"internal error\"}", w.Code, w.Body)
	}
	if got := w.Header().Get("X-Request-Id"); got != "abc-1" {
		t.Errorf("got X-Request-Id %q, want abc-1", got)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var line map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &line) != nil {
		t.Fatalf("got log %q, want one JSON line", logs.String())
	}
	stack, _ := line["stack"].(string)
	if line["msg"] != "handler panicked" || line["request_id"] != "abc-1" || !strings.Contains(stack, "service.panicInRoute") {
		t.Errorf("got log line %v, want the panic with request_id abc-1 and a stack through panicInRoute", line)
	}
}

func panicInRoute() { panic("route bug") }
