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

// A page's request gets an id, in its response and its access log line, and the API calls
// the page makes carry the same id to the gateway.
func TestLoggingGivesTheAPICallsThePagesRequestID(t *testing.T) {
	var sent string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = r.Header.Get("X-Request-Id")
		w.Write([]byte("{}"))
	}))
	defer api.Close()
	client := web.NewClient(api.URL, api.Client())
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := client.Do(r.Context(), "", http.MethodGet, "/product/categories", nil, nil); err != nil {
			t.Errorf("API call: %v", err)
		}
	})
	var logs bytes.Buffer
	w := httptest.NewRecorder()
	web.Logging(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))(page).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))

	id := w.Header().Get("X-Request-Id")
	if id == "" || sent != id {
		t.Errorf("the page answered X-Request-Id %q and the API got %q, want the same id", id, sent)
	}
	if !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
		t.Errorf("the access log %s lacks request_id %q", logs.String(), id)
	}
}
