package web

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/view"
)

// Follow is what one browser's stream follows of a view, and how to read it with that
// browser's credential.
type Follow struct {
	View string // e.g. view.Orders
	// ID is the item followed (an order's page); empty for every item of View that the
	// browser may see (a list).
	ID string
	// Owner is the user whose items the browser may see (a customer's name). AnyOwner is
	// set instead for a manager, who may see everyone's. A browser is sent a change only
	// when AnyOwner is set or Owner is the change's owner, so a customer only ever
	// receives their own orders.
	Owner    string
	AnyOwner bool
	// Read reads item c.ID through the API with this browser's credential and renders its
	// messages. The follower calls the Read of one browser that may see c for each change,
	// and sends what it returns to every browser that follows c. Its ctx is the
	// follower's, not the browser's request.
	Read func(ctx context.Context, c view.Change) ([]SSEMessage, error)
	// Current reads and renders what the browser follows as it is now: what its stream
	// starts with (ctx is then the request's), and what the follower sends again when it
	// may have missed changes (then one browser's Current serves every browser that
	// follows the same: same View, ID, Owner and AnyOwner).
	Current func(ctx context.Context) ([]SSEMessage, error)
}

// Follower keeps the browsers of this site instance that follow views up to date from
// the view announcements (view.Change). For each announcement it reads the item once,
// with the credential of one browser that may see it (Follow.Read; a customer's own token
// for their order, a manager's for any), renders the messages once, and puts them in the
// Outbox of every browser that follows the item and may see it. Announcements of one item
// that come while it is being read make one more read, not one each: the reads per
// announcement stay at most one (up to readTries when the API refuses a browser's
// credential), however many browsers follow.
//
// Nothing is missed silently. The follower consumes announcements only while a browser
// follows (a Hub subscription), and when that subscription ends under it (the consumer
// resumed after a lost connection, or it fell behind) it subscribes again and then reads
// every followed thing again (Follow.Current, once per group of browsers that follow the
// same); so does an announcement of All (a service started). A read that keeps failing
// closes the outboxes of the browsers it was for: their streams end, their EventSource
// connects again, and the stream starts with the current state.
//
// It is created by NewHub and runs with Hub.Run; its methods are safe for concurrent use.
type Follower struct {
	logger *slog.Logger
	views  *fanout[view.Change]
	jobs   chan func(ctx context.Context) // reads to make, for the readers

	subMu   sync.Mutex    // serialises starting and ending the subscription
	sub     *subscription // the current subscription to the announcements; nil when none
	stopped bool          // run ended: Follow answers with a closed Outbox

	// readSeq numbers the reads as they begin (Outbox.put): of two reads of one thing
	// that end in either order, the later-begun one's state is what a browser keeps.
	readSeq atomic.Uint64

	mu       sync.Mutex
	browsers map[*browser]struct{}
	reads    map[string]*pendingRead // view/id → the read of that item in progress
}

// browser is one stream that follows.
type browser struct {
	spec Follow
	out  *Outbox
}

// subscription is one subscription of the follower to the announcements.
type subscription struct {
	cancel context.CancelFunc
	ready  chan struct{} // closed once the subscription started or failed to
	ok     bool          // it started; set before ready is closed
}

// pendingRead is a read of one item in progress: again says that a change came meanwhile,
// so it reads once more when done.
type pendingRead struct {
	change view.Change
	again  bool
}

const (
	// readers is how many reads the follower makes at once.
	readers = 8
	// followLimit is how many messages may wait for one browser (Outbox limit): past it
	// the stream ends and the browser connects again.
	followLimit = 1024
	// readTries is how many browsers' credentials a read tries when the API does not show
	// the item to one (403, 404). A browser whose credential is no longer good (401, an
	// expired token) does not count: its own stream ends, and the next browser's is tried.
	readTries = 3
)

func newFollower(logger *slog.Logger, views *fanout[view.Change]) *Follower {
	return &Follower{logger: logger, views: views, jobs: make(chan func(context.Context), 4096),
		browsers: map[*browser]struct{}{}, reads: map[string]*pendingRead{}}
}

// run makes the reads until ctx is done, then ends every browser's stream.
func (f *Follower) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-f.jobs:
					job(ctx)
				}
			}
		})
	}
	<-ctx.Done()
	f.subMu.Lock()
	f.stopped = true
	if f.sub != nil {
		f.sub.cancel()
		f.sub = nil
	}
	f.subMu.Unlock()
	f.closeOutboxes(nil)
	wg.Wait()
}

// Follow registers a browser's stream that follows spec until ctx is done (the request's
// context), and returns its Outbox, for ServeSSE. It starts following the announcements
// if no browser did, and returns once they are consumed, with spec.Current's state in the
// outbox: that state is read after every later change will reach the outbox, so none
// falls between the page and the stream. A failed Current leaves the outbox empty (the
// page shows what it rendered; changes come). The outbox is returned closed when the
// announcements cannot be consumed (the broker is down; the browser connects again
// later) or the hub stopped.
func (f *Follower) Follow(ctx context.Context, spec Follow) *Outbox {
	b := &browser{spec: spec, out: NewOutbox(followLimit, nil)}
	if !f.join(ctx, b) {
		b.out.Close()
		return b.out
	}
	context.AfterFunc(ctx, func() { f.leave(b) })
	seq := f.readSeq.Add(1)
	if msgs, err := spec.Current(ctx); err == nil {
		b.out.put(formatFrames(ctx, msgs), true, seq)
	} else if ctx.Err() == nil {
		f.logger.WarnContext(ctx, "live view: read the current state", "view", spec.View, "id", spec.ID, "error", err)
	}
	return b.out
}

// join registers b, starting the subscription to the announcements if none runs, and
// waits until it consumes; it reports false when it cannot (then b is gone again) or ctx
// ended first. The start (up to the hub's startTimeout while the broker is down) is
// shared by the browsers that come meanwhile, and waited for outside subMu, so that
// neither they nor those that leave queue behind it.
func (f *Follower) join(ctx context.Context, b *browser) bool {
	f.subMu.Lock()
	if f.stopped {
		f.subMu.Unlock()
		return false
	}
	sub := f.sub
	if sub == nil {
		sctx, cancel := context.WithCancel(context.Background())
		sub = &subscription{cancel: cancel, ready: make(chan struct{})}
		f.sub = sub
		go f.start(sctx, sub)
	}
	f.mu.Lock()
	f.browsers[b] = struct{}{}
	f.mu.Unlock()
	f.subMu.Unlock()

	select {
	case <-sub.ready:
		if sub.ok {
			return true
		}
	case <-ctx.Done():
	}
	f.leave(b)
	return false
}

// start subscribes sub to the announcements and dispatches them until sctx is done; when
// it cannot subscribe, sub is no longer the follower's.
func (f *Follower) start(sctx context.Context, sub *subscription) {
	changes, ok := f.views.subscribe(sctx)
	sub.ok = ok
	close(sub.ready)
	if !ok {
		f.subMu.Lock()
		if f.sub == sub {
			f.sub = nil
		}
		f.subMu.Unlock()
		sub.cancel()
		return
	}
	f.dispatch(sctx, sub, changes)
}

// leave removes b and ends the subscription when no browser is left.
func (f *Follower) leave(b *browser) {
	b.out.Close()
	f.subMu.Lock()
	defer f.subMu.Unlock()
	f.mu.Lock()
	delete(f.browsers, b)
	empty := len(f.browsers) == 0
	f.mu.Unlock()
	if empty && f.sub != nil {
		f.sub.cancel()
		f.sub = nil
	}
}

// dispatch handles the announcements of sub until sctx is done. When the channel closes
// under it, it subscribes again and reads everything followed again; when it cannot, it
// ends every stream.
func (f *Follower) dispatch(sctx context.Context, sub *subscription, changes <-chan view.Change) {
	for {
		for c := range changes {
			f.changed(sctx, c)
		}
		if sctx.Err() != nil {
			return
		}
		next, ok := f.views.subscribe(sctx)
		if !ok {
			if sctx.Err() != nil {
				return
			}
			f.logger.Warn("live views: cannot follow the view changes again; ending the live streams")
			f.subMu.Lock()
			if f.sub == sub {
				f.sub = nil
			}
			f.subMu.Unlock()
			sub.cancel()
			f.closeOutboxes(nil)
			return
		}
		f.logger.Info("live views: following the view changes again; reading every followed view again")
		changes = next
		f.refreshAll(sctx)
	}
}

// changed handles one announcement: for an item, a read unless no browser follows it or
// one is in progress (which then reads again); for All, a refresh of everything.
func (f *Follower) changed(ctx context.Context, c view.Change) {
	if c.All {
		f.refreshAll(ctx)
		return
	}
	key := c.View + "/" + c.ID
	f.mu.Lock()
	if !f.followedLocked(c) {
		f.mu.Unlock()
		return
	}
	if p, ok := f.reads[key]; ok {
		p.change, p.again = p.change.Merge(c), true
		f.mu.Unlock()
		return
	}
	f.reads[key] = &pendingRead{change: c}
	f.mu.Unlock()
	if !f.enqueue(ctx, func(ctx context.Context) { f.readItem(ctx, key) }) {
		f.mu.Lock()
		delete(f.reads, key)
		f.mu.Unlock()
	}
}

// enqueue hands job to the readers; false when ctx ended first.
func (f *Follower) enqueue(ctx context.Context, job func(context.Context)) bool {
	select {
	case f.jobs <- job:
		return true
	case <-ctx.Done():
		return false
	}
}

// readItem reads the item of reads[key] and sends it, again while changes came meanwhile.
func (f *Follower) readItem(ctx context.Context, key string) {
	for {
		f.mu.Lock()
		p := f.reads[key]
		c := p.change
		// What comes meanwhile is read next: only its own Created counts.
		p.change, p.again = view.Change{View: c.View, ID: c.ID, Owner: c.Owner}, false
		f.mu.Unlock()

		f.read(ctx, c)

		f.mu.Lock()
		if !p.again || ctx.Err() != nil {
			delete(f.reads, key)
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
	}
}

// read reads c's item once, with the credential of a browser that may see it (another's
// when the API refuses one: readWithSomeone), and puts the messages in the outbox of
// every browser that follows it.
func (f *Follower) read(ctx context.Context, c view.Change) {
	concerned := f.concerned(c)
	if len(concerned) == 0 {
		return
	}
	seq := f.readSeq.Add(1)
	var msgs []SSEMessage
	err := readWithSomeone(concerned, func(b *browser) error {
		var err error
		msgs, err = retryRead(ctx, func() ([]SSEMessage, error) { return b.spec.Read(ctx, c) })
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			f.logger.Warn("live views: read a changed item; ending the streams that follow it",
				"view", c.View, "id", c.ID, "error", err)
			f.closeOutboxes(concerned)
		}
		return
	}
	frames := formatFrames(ctx, msgs)
	to := f.concerned(c)
	for _, b := range to {
		b.out.put(frames, false, seq)
	}
	f.logger.Debug("live view: changed item sent", "view", c.View, "id", c.ID, "version", c.Version,
		"created", c.Created, "messages", len(frames), "browsers", len(to))
}

// refreshAll reads again, once per group of browsers that follow the same, what the
// browsers follow, and sends it to them.
func (f *Follower) refreshAll(ctx context.Context) {
	type group struct {
		View, ID, Owner string
		AnyOwner        bool
	}
	groups := map[group][]*browser{}
	f.mu.Lock()
	for b := range f.browsers {
		g := group{b.spec.View, b.spec.ID, b.spec.Owner, b.spec.AnyOwner}
		groups[g] = append(groups[g], b)
	}
	f.mu.Unlock()
	for _, members := range groups {
		f.enqueue(ctx, func(ctx context.Context) {
			seq := f.readSeq.Add(1)
			var msgs []SSEMessage
			err := readWithSomeone(members, func(b *browser) error {
				var err error
				msgs, err = retryRead(ctx, func() ([]SSEMessage, error) { return b.spec.Current(ctx) })
				return err
			})
			if err != nil {
				if ctx.Err() == nil {
					f.logger.Warn("live views: read a followed view again; ending its streams",
						"view", members[0].spec.View, "id", members[0].spec.ID, "error", err)
					f.closeOutboxes(members)
				}
				return
			}
			frames := formatFrames(ctx, msgs)
			for _, b := range members {
				b.out.put(frames, false, seq)
			}
		})
	}
}

// readWithSomeone calls read with the browsers of bs, one after the other, until one read
// succeeds or fails for another reason than its credential: a browser whose credential
// the API no longer takes (401: its token expired) has its stream ended, since its
// page would show nothing more, and the next is tried; one the API does not show the item
// (403, 404) is tried by readTries browsers at most. It returns the last read's error.
func readWithSomeone(bs []*browser, read func(b *browser) error) error {
	var err error
	tries := 0
	for _, b := range bs {
		if err = read(b); err == nil || !refused(err) {
			return err
		}
		if StatusOf(err) == http.StatusUnauthorized {
			b.out.Close()
			continue
		}
		if tries++; tries == readTries {
			break
		}
	}
	return err
}

// concerned returns the browsers that follow c's item and may see it.
func (f *Follower) concerned(c view.Change) []*browser {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*browser
	for b := range f.browsers {
		if b.follows(c) {
			out = append(out, b)
		}
	}
	return out
}

// followedLocked reports whether a browser follows c's item and may see it; f.mu is held.
func (f *Follower) followedLocked(c view.Change) bool {
	for b := range f.browsers {
		if b.follows(c) {
			return true
		}
	}
	return false
}

// follows reports whether b follows c's item and may see it.
func (b *browser) follows(c view.Change) bool {
	s := b.spec
	return s.View == c.View && (s.ID == "" || s.ID == c.ID) && (s.AnyOwner || s.Owner != "" && s.Owner == c.Owner)
}

// closeOutboxes closes the outboxes of bs, or of every browser when bs is nil.
func (f *Follower) closeOutboxes(bs []*browser) {
	if bs == nil {
		f.mu.Lock()
		for b := range f.browsers {
			bs = append(bs, b)
		}
		f.mu.Unlock()
	}
	for _, b := range bs {
		b.out.Close()
	}
}

// refused reports whether the API refused the credential or did not show the item to it
// (401, 403, 404), so that another browser's may do.
func refused(err error) bool {
	switch StatusOf(err) {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// retryRead calls read until it succeeds, fails for good (a 4xx: the API answered), or
// about 5 s passed, with exponential backoff from 100 ms: a service that is down for a
// moment does not end the streams.
func retryRead(ctx context.Context, read func() ([]SSEMessage, error)) ([]SSEMessage, error) {
	return backoff.Retry(ctx, func() ([]SSEMessage, error) {
		msgs, err := read()
		if status := StatusOf(err); err != nil && status >= 400 && status < 500 {
			return nil, backoff.Permanent(err)
		}
		return msgs, err
	}, backoff.WithBackOff(bus.NewBackoff(100*time.Millisecond, 2*time.Second)),
		backoff.WithMaxElapsedTime(5*time.Second))
}
