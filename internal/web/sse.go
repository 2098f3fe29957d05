package web

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"

	"github.com/msdemo/msdemo/internal/telemetry"
)

// SSEMessage is one Server-Sent Event: htmx's SSE extension swaps HTML into the elements
// with sse-swap="<Event>".
type SSEMessage struct {
	Event string
	HTML  templ.Component
	// Key names what the message shows, for an Outbox: a message waiting to be sent is
	// replaced by a later one with the same key. Empty means Event: the latest state of
	// one swap target is all a browser needs. Messages that add something (a new row,
	// an item of a feed) need keys of their own ("order-new-<id>").
	Key string
	// Once sends the message at most once per Outbox (by key): a row that is added must
	// not be added twice when its announcement comes twice.
	Once bool
}

// frame is a message formatted for the stream, with its key.
type frame struct {
	key  string
	data []byte
	once bool
}

// formatFrames renders msgs; a message that fails to render (a bug in its component) is
// logged and left out.
func formatFrames(ctx context.Context, msgs []SSEMessage) []frame {
	frames := make([]frame, 0, len(msgs))
	for _, m := range msgs {
		b, err := FormatSSE(ctx, m)
		if err != nil {
			slog.ErrorContext(ctx, "live view: a message failed to render; left out", "event", m.Event, "error", err)
			continue
		}
		frames = append(frames, frame{key: cmp.Or(m.Key, m.Event), data: b, once: m.Once})
	}
	return frames
}

// Outbox holds what one browser's stream has yet to send: the latest message per key, in
// the order they were put (coalescing). A browser that reads slowly gets the latest
// state of each thing it follows when it catches up, instead of every state in between,
// and nothing is lost silently: when more than its limit of keys wait, the outbox either
// replaces them all by its gap message (a feed: "you missed events, reload") or, without
// one, closes, so that ServeSSE ends the stream, the browser's EventSource connects again,
// and the page's stream starts again with the current state.
//
// It is safe for concurrent use: any number of goroutines put, one (ServeSSE) takes.
type Outbox struct {
	limit int
	gap   []frame // sent instead of what overflowed; nil: close instead

	mu     sync.Mutex
	keys   []string            // waiting, in order
	frames map[string][]byte   // key → the latest frame
	once   map[string]struct{} // keys of the Once messages put (at most maxOnce)
	// readSeq is, per key, the read sequence of the frame last put (waiting or sent; at
	// most maxOnce keys): a frame of an earlier read must not replace a later read's.
	readSeq map[string]uint64
	closed  bool
	wake    chan struct{} // holds a value when something waits or the outbox closed
}

// maxOnce bounds the keys of Once messages an Outbox remembers.
const maxOnce = 10000

// NewOutbox returns an outbox that holds at most limit keys (at least 1). gap, if not
// nil, is what it sends instead of the waiting messages when more would wait; with nil it
// closes then.
func NewOutbox(limit int, gap *SSEMessage) *Outbox {
	o := &Outbox{limit: max(limit, 1), frames: map[string][]byte{}, once: map[string]struct{}{},
		readSeq: map[string]uint64{}, wake: make(chan struct{}, 1)}
	if gap != nil {
		o.gap = formatFrames(context.Background(), []SSEMessage{*gap})
	}
	return o
}

// Send renders msgs and puts them in the outbox, after what waits; a message whose key
// waits replaces it, and moves to the end with it: a later state of a row goes after the
// message that adds the row, if that came in between. On a closed outbox it does nothing.
func (o *Outbox) Send(ctx context.Context, msgs ...SSEMessage) {
	o.put(formatFrames(ctx, msgs), false, 0)
}

// SendFirst is Send for the state a stream starts with: msgs go before what waits, in
// their order; for a message whose key waits already, the waiting one (read later) is
// kept, and moved to msgs' place.
func (o *Outbox) SendFirst(ctx context.Context, msgs ...SSEMessage) {
	o.put(formatFrames(ctx, msgs), true, 0)
}

// put is Send (first false) or SendFirst (first true) of rendered frames. seq, if not 0,
// is the sequence number of the read that made them, taken when the read began: reads
// that run at once (an item's and a refresh of the whole list, say) may end in any order,
// and a frame of an earlier read never replaces, nor follows, a later read's of its key,
// even one sent already. A later read began after the change it shows was announced, so
// what it shows is at least as new.
func (o *Outbox) put(frames []frame, first bool, seq uint64) {
	if len(frames) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	var front []string
	for _, f := range frames {
		if f.once {
			if _, put := o.once[f.key]; put {
				continue
			}
			if len(o.once) >= maxOnce {
				clear(o.once)
			}
			o.once[f.key] = struct{}{}
		}
		// newer: f shows a later state than the frame put before it. Without a sequence,
		// a stream's first state yields to what waits (it was read later), and any other
		// message is the latest.
		newer := !first
		if seq != 0 {
			last, put := o.readSeq[f.key]
			newer = !put || seq >= last
			if newer {
				if len(o.readSeq) >= maxOnce {
					clear(o.readSeq)
				}
				o.readSeq[f.key] = seq
			}
		}
		if _, waiting := o.frames[f.key]; waiting {
			o.keys = slices.DeleteFunc(o.keys, func(k string) bool { return k == f.key })
			if first { // what the stream starts with goes first, whichever content is newer
				front = append(front, f.key)
			} else { // a later state goes after what came meanwhile (a row it updates, say)
				o.keys = append(o.keys, f.key)
			}
			if newer {
				o.frames[f.key] = f.data
			}
			continue
		}
		if seq != 0 && !newer {
			continue // a later read's frame of this key was sent already
		}
		o.frames[f.key] = f.data
		if first {
			front = append(front, f.key)
		} else {
			o.keys = append(o.keys, f.key)
		}
	}
	if first {
		o.keys = append(front, o.keys...)
	}
	if len(o.keys) > o.limit {
		clear(o.frames)
		o.keys = o.keys[:0]
		if o.gap == nil {
			o.closed = true
		} else {
			for _, g := range o.gap {
				o.keys = append(o.keys, g.key)
				o.frames[g.key] = g.data
			}
		}
	}
	o.signal()
}

// Close closes the outbox: what waits is still sent, then ServeSSE ends the stream.
// Close is idempotent.
func (o *Outbox) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.signal()
}

// take removes and returns what waits, and whether the outbox is still open; adds says
// that a Once message (one that adds an element) is among them.
func (o *Outbox) take() (frames [][]byte, adds, open bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	frames = make([][]byte, 0, len(o.keys))
	for _, k := range o.keys {
		frames = append(frames, o.frames[k])
		_, once := o.once[k]
		adds = adds || once
	}
	o.keys = o.keys[:0]
	clear(o.frames)
	return frames, adds, !o.closed
}

// settlePause is how long ServeSSE waits after sending a message that adds an element
// (a Once message, e.g. a new row) before it sends more. htmx registers the SSE listeners
// of swapped-in content only when it settles it, 20 ms later (htmx.config
// .defaultSettleDelay): a message for the new element sent sooner would find no listener,
// and the element would keep the state it was added with. What comes meanwhile waits,
// coalesced, and goes together after the pause.
const settlePause = 50 * time.Millisecond

func (o *Outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// ServeSSE answers r with a text/event-stream of what out holds, as it comes: each
// message as "event: <name>\ndata: <html line>\n...\n\n", and a keep-alive comment every
// keepAlive (default 20 s) so proxies keep the connection open. It returns when the
// browser goes, or out is closed and sent (the hub stopped or missed something: then the
// browser's EventSource connects again).
func ServeSSE(w http.ResponseWriter, r *http.Request, out *Outbox, keepAlive time.Duration) {
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
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	ctx := r.Context()
	for {
		frames, adds, open := out.take()
		for _, b := range frames {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
		if rc.Flush() != nil || !open {
			return
		}
		if adds {
			select {
			case <-ctx.Done():
				return
			case <-time.After(settlePause):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-out.wake:
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
