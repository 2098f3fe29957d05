package eventclient

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/event"
)

// Concurrent Appends of one Client share bus messages, as the event store's writer
// shares commits: at most maxInFlight append messages are on their way at once, and the
// requests that arrive meanwhile wait and go together, as one batch message (a JSON array
// of requests, docs/eventstore.md), when one comes back. A lone Append is sent at once, as
// a plain request, so coalescing costs no waiting; under load it saves the broker a
// request and a reply per append.
const (
	maxInFlight = 4
	// maxBatchBytes keeps a batch message inside the store's limit (event.MaxAppendBytes)
	// with room for the array's commas and brackets.
	maxBatchBytes = event.MaxAppendBytes - event.MaxAppendBatch - 2
)

// appendBatcher holds the requests waiting for an append message.
type appendBatcher struct {
	mu       sync.Mutex
	waiting  []*pendingAppend
	inFlight int
}

// pendingAppend is one encoded request and where its reply goes.
type pendingAppend struct {
	ctx    context.Context
	body   []byte
	result chan appendResult // buffered: the sender never blocks on it
}

type appendResult struct {
	reply []byte // the store's reply to this request
	err   error
}

// send sends one encoded append request, alone or with others waiting at the same time,
// and returns the store's reply to it.
func (c *Client) send(ctx context.Context, body []byte) ([]byte, error) {
	p := &pendingAppend{ctx: ctx, body: body, result: make(chan appendResult, 1)}
	b := &c.batcher
	b.mu.Lock()
	b.waiting = append(b.waiting, p)
	lead := b.inFlight < maxInFlight
	if lead {
		b.inFlight++
	}
	b.mu.Unlock()
	if lead {
		c.sendWaiting(true)
	}
	select {
	case r := <-p.result:
		return r.reply, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sendWaiting holds one in-flight slot: it sends the waiting requests as one message and
// hands out the replies, and goes on while more are waiting (in a goroutine of its own
// after the first message, so that the caller that led gets its reply at once). It frees
// the slot when none is waiting.
func (c *Client) sendWaiting(leader bool) {
	for {
		batch := c.takeWaiting()
		if batch == nil {
			return
		}
		c.sendBatch(batch)
		if leader {
			go c.sendWaiting(false)
			return
		}
	}
}

// takeWaiting takes the waiting requests that fit in one message, oldest first, or frees
// the caller's slot and returns nil when none is waiting.
func (c *Client) takeWaiting() []*pendingAppend {
	b := &c.batcher
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*pendingAppend
	size := 0
	for len(b.waiting) > 0 && len(batch) < event.MaxAppendBatch {
		next := b.waiting[0]
		if len(batch) > 0 && size+len(next.body) > maxBatchBytes {
			break
		}
		batch, size = append(batch, next), size+len(next.body)
		b.waiting[0] = nil
		b.waiting = b.waiting[1:]
	}
	if len(batch) == 0 {
		b.inFlight--
	}
	return batch
}

// sendBatch sends batch as one message and hands each request its reply. The message is
// given up only when every caller in it has given up. It goes in the trace of the first
// request's caller (its traceparent header); each request's events carry their own
// (docs/tracing.md).
func (c *Client) sendBatch(batch []*pendingAppend) {
	ctx := trace.ContextWithSpanContext(context.Background(), trace.SpanContextFromContext(batch[0].ctx))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var left atomic.Int32
	left.Store(int32(len(batch)))
	for _, p := range batch {
		stop := context.AfterFunc(p.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}

	if len(batch) == 1 {
		reply, err := c.bus.Call(ctx, c.appendQueue, batch[0].body)
		batch[0].result <- appendResult{reply, err}
		return
	}
	body := []byte{'['} // each request is JSON from json.Marshal already
	for i, p := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, p.body...)
	}
	body = append(body, ']')
	raw, err := c.bus.Call(ctx, c.appendQueue, body)
	var replies []json.RawMessage
	if err == nil && event.IsAppendBatch(raw) {
		if err = json.Unmarshal(raw, &replies); err == nil && len(replies) != len(batch) {
			err = fmt.Errorf("the event store answered %d replies to a batch of %d requests", len(replies), len(batch))
		}
	}
	for i, p := range batch {
		switch {
		case err != nil:
			p.result <- appendResult{err: err}
		case replies == nil: // one reply refusing the whole batch
			p.result <- appendResult{reply: raw}
		default:
			p.result <- appendResult{reply: replies[i]}
		}
	}
}
