package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// SSEMessage is one Server-Sent Event: htmx's SSE extension swaps HTML into the elements
// with sse-swap="<Event>".
type SSEMessage struct {
	Event string
	HTML  templ.Component
}

// SSERenderer turns one event from the bus into the messages for one browser; it returns
// none for an event that browser must not see (another customer's order). ctx is the
// request's.
type SSERenderer func(ctx context.Context, e event.Stored) []SSEMessage

// ServeSSE answers r with a text/event-stream: for each event of events it sends what
// render returns, as "event: <name>\ndata: <html line>\n...\n\n", and a keep-alive
// comment every keepAlive (default 20 s) so proxies keep the connection open. It returns
// when the browser goes, or events is closed (the hub stopped, or could not start
// consuming: then the browser's EventSource connects again).
//
// initial is sent first, right after the stream opens: the current state of what the page
// follows, read AFTER events was subscribed, so that a change made between the page's
// render and the stream's start is not missed (it is in initial, or it comes as an event).
func ServeSSE(w http.ResponseWriter, r *http.Request, events <-chan event.Stored, keepAlive time.Duration, render SSERenderer, initial ...SSEMessage) {
	gone := telemetry.SSEClient(r.Context()) // msdemo_sse_clients, while the stream is open
	defer gone()
	if keepAlive <= 0 {
		keepAlive = 20 * time.Second
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": connected\n\n"); err != nil {
		return
	}
	for _, m := range initial {
		if b, err := FormatSSE(r.Context(), m); err == nil {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case e, ok := <-events:
			if !ok {
				return
			}
			for _, m := range render(ctx, e) {
				b, err := FormatSSE(ctx, m)
				if err != nil {
					continue // a component that fails to render is a bug logged by its renderer
				}
				if _, err := w.Write(b); err != nil {
					return
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// FormatSSE renders m in the event-stream format: the event's name, then each line of
// the HTML as a data line, then a blank line.
func FormatSSE(ctx context.Context, m SSEMessage) ([]byte, error) {
	var html bytes.Buffer
	if err := m.HTML.Render(ctx, &html); err != nil {
		return nil, fmt.Errorf("render %s: %w", m.Event, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\n", strings.NewReplacer("\n", "", "\r", "").Replace(m.Event))
	for line := range strings.Lines(strings.ReplaceAll(html.String(), "\r\n", "\n")) {
		b.WriteString("data: ")
		b.WriteString(strings.TrimSuffix(line, "\n"))
		b.WriteString("\n")
	}
	if html.Len() == 0 {
		b.WriteString("data: \n")
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}
