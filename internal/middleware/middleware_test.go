package middleware_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/middleware"
)

func TestValidRequestID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"client-id.42:a_b", true},
		{"3f9a1c2b-1kz", true},
		{strings.Repeat("a", middleware.MaxRequestIDLen), true},
		{"", false},
		{strings.Repeat("a", middleware.MaxRequestIDLen+1), false},
		{"has space", false},
		{`quote"d`, false},
		{"new\nline", false},
		{"slash/ed", false},
	}
	for _, tt := range tests {
		if got := middleware.ValidRequestID(tt.id); got != tt.want {
			t.Errorf("ValidRequestID(%q): got %v, want %v", tt.id, got, tt.want)
		}
		if got := middleware.ValidRequestID([]byte(tt.id)); got != tt.want {
			t.Errorf("ValidRequestID([]byte(%q)): got %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestSequenceMakesValidUniqueRequestIDs(t *testing.T) {
	a, b := idgen.NewSequence(), idgen.NewSequence()
	seen := map[string]bool{}
	for range 1000 {
		for _, id := range []string{a.New(), b.New(), string(a.Append(nil))} {
			if !middleware.ValidRequestID(id) || seen[id] {
				t.Fatalf("id %q: valid %v, seen before %v; want a valid new id", id, middleware.ValidRequestID(id), seen[id])
			}
			seen[id] = true
		}
	}
	buf := make([]byte, 0, middleware.MaxRequestIDLen)
	if allocs := testing.AllocsPerRun(100, func() { buf = a.Append(buf[:0]) }); allocs != 0 {
		t.Errorf("Append into a buffer with room: got %v allocations, want 0", allocs)
	}
}

func TestRequestID(t *testing.T) {
	var seen string
	h := middleware.RequestID(idgen.NewSequence())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = middleware.GetRequestID(r.Context())
	}))
	for _, sent := range []string{"client-id.42:a_b", "", "has space", strings.Repeat("a", 65)} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if sent != "" {
			r.Header.Set(middleware.RequestIDHeader, sent)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get(middleware.RequestIDHeader)
		if got != seen || !middleware.ValidRequestID(got) {
			t.Errorf("sent %q: got %q in the response and %q in the context, want one valid id in both", sent, got, seen)
		}
		if keep := middleware.ValidRequestID(sent); keep != (got == sent) {
			t.Errorf("sent %q: got %q, want the client's id kept only if it is valid", sent, got)
		}
	}
}

// logLines returns a logger writing JSON lines into the returned buffer.
func logLines() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

// panicking is a handler that panics; its name must appear in the logged stack.
func panicking(w http.ResponseWriter, r *http.Request) {
	panic("boom")
}

func TestRecoverAnswers500AndLogsTheStack(t *testing.T) {
	logger, logs := logLines()
	answer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":"internal error"}`))
	}
	h := middleware.RequestID(idgen.NewSequence())(middleware.Recover(logger, answer)(http.HandlerFunc(panicking)))
	r := httptest.NewRequest(http.MethodPost, "/things", nil)
	r.Header.Set(middleware.RequestIDHeader, "req-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	if w.Code != http.StatusInternalServerError || w.Body.String() != `{"error":"internal error"}` {
		t.Errorf("got %d %q, want 500 with the answer's body", w.Code, w.Body)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("got log %q, want one JSON line: %v", logs, err)
	}
	for key, want := range map[string]string{"level": "ERROR", "msg": "handler panicked", "panic": "boom",
		"method": "POST", "path": "/things", "request_id": "req-1"} {
		if line[key] != want {
			t.Errorf("log %s: got %v, want %q", key, line[key], want)
		}
	}
	if stack, _ := line["stack"].(string); !strings.Contains(stack, "middleware_test.panicking") {
		t.Errorf("log stack: got %q, want the panicking handler in it", stack)
	}
}

func TestRecoverDefaultAnswer(t *testing.T) {
	logger, _ := logLines()
	w := httptest.NewRecorder()
	middleware.Recover(logger, nil)(http.HandlerFunc(panicking)).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "internal error") {
		t.Errorf("got %d %q, want 500 internal error", w.Code, w.Body)
	}
}

// A panic after the response has begun cannot become a 500: the response is aborted, and
// the panic still logged.
func TestRecoverAbortsABegunResponse(t *testing.T) {
	logger, logs := logLines()
	h := middleware.Recover(logger, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("part of a page"))
		panic("boom")
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("got panic %v, want http.ErrAbortHandler", v)
		}
		if !strings.Contains(logs.String(), `"panic":"boom"`) {
			t.Errorf("got log %q, want the panic logged", logs)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

// A handler that aborts on purpose is not logged as a panic.
func TestRecoverLetsAbortThrough(t *testing.T) {
	logger, logs := logLines()
	h := middleware.Recover(logger, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("got panic %v, want http.ErrAbortHandler", v)
		}
		if logs.Len() != 0 {
			t.Errorf("got log %q, want none", logs)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}
