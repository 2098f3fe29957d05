package gateway

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/auth"
)

// A panic in the handler (here: a server without its registry table, a programmer's
// mistake) is answered 500 with the request's id and logged with its stack, instead of
// ending the process as fasthttp would.
func TestHandleRecoversAPanic(t *testing.T) {
	key, _ := auth.NewKey([]byte(strings.Repeat("k", 32)))
	var logs bytes.Buffer
	s := newServer(nil, key, time.Second, slog.New(slog.NewJSONHandler(&logs, nil)))
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/product/products")
	ctx.Request.Header.Set("X-Request-Id", "req-7")

	s.handle(&ctx)

	if got := ctx.Response.StatusCode(); got != fasthttp.StatusInternalServerError {
		t.Errorf("got status %d, want 500", got)
	}
	if got := string(ctx.Response.Body()); got != `{"error":"internal error"}` {
		t.Errorf("got body %s, want the JSON error", got)
	}
	if got := string(ctx.Response.Header.Peek("X-Request-Id")); got != "req-7" {
		t.Errorf("got X-Request-Id %q, want req-7", got)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("got log %q, want one JSON line: %v", logs.String(), err)
	}
	stack, _ := line["stack"].(string)
	if line["msg"] != "handler panicked" || line["request_id"] != "req-7" || !strings.Contains(stack, "gateway.(*server).proxy") {
		t.Errorf("got log line %v, want the panic with request_id req-7 and a stack through the proxy", line)
	}
}
