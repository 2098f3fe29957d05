package order

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxWait bounds how long GET /orders/{id} waits for a decision ("Prefer: wait"): well
// inside the gateway's 30 s request timeout.
const maxWait = 20 * time.Second

// maxWaiting bounds the requests waiting for decisions at once. Each holds a connection
// of the gateway's pool to this service (1024), so that clients that only wait cannot
// take them all; a request beyond the bound is answered at once, which RFC 7240 allows
// (a preference may be ignored).
const maxWaiting = 256

// recheckEvery is how often a waiting request reads the order again anyway: a decision
// applied by another replica of the service does not wake it.
const recheckEvery = 500 * time.Millisecond

// preferredWait returns the wait the request asks for with "Prefer: wait=<seconds>" (RFC
// 7240), capped at maxWait; 0 when it asks for none. A preference the server cannot read
// is ignored, as the RFC asks.
func preferredWait(r *http.Request) time.Duration {
	for _, header := range r.Header.Values("Prefer") {
		for pref := range strings.SplitSeq(header, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(pref), "=")
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			seconds, err := strconv.Atoi(strings.Trim(strings.TrimSpace(value), `"`))
			if err != nil || seconds <= 0 {
				return 0
			}
			return min(time.Duration(seconds)*time.Second, maxWait)
		}
	}
	return 0
}

// orderWatch wakes the requests that wait for an order to change. The saga calls changed
// after each transaction that may have changed an order; a woken request reads the order
// again. Safe for concurrent use.
type orderWatch struct {
	mu       sync.Mutex
	watchers map[OrderID][]chan struct{}
	// waiting holds a token for each request waiting at the moment.
	waiting chan struct{}
}

func newOrderWatch(maxWaiting int) *orderWatch {
	return &orderWatch{watchers: map[OrderID][]chan struct{}{}, waiting: make(chan struct{}, maxWaiting)}
}

// startWaiting takes one of the slots of waiting requests, and reports false when all
// are taken. done gives it back.
func (w *orderWatch) startWaiting() (done func(), ok bool) {
	select {
	case w.waiting <- struct{}{}:
		return func() { <-w.waiting }, true
	default:
		return nil, false
	}
}

// watch returns a channel that is closed at the next change of order id, and a function
// that stops watching.
func (w *orderWatch) watch(id OrderID) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	w.watchers[id] = append(w.watchers[id], ch)
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.watchers[id]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(w.watchers, id)
		} else {
			w.watchers[id] = list
		}
	}
}

// changed wakes every request watching order id.
func (w *orderWatch) changed(id OrderID) {
	w.mu.Lock()
	list := w.watchers[id]
	delete(w.watchers, id)
	w.mu.Unlock()
	for _, ch := range list {
		close(ch)
	}
}
