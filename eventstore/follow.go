package eventstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// follower hands every committed event, in position order and in batches, to handle, and
// records under mark in the meta collection how far it got (every markEvery, and when it
// stops). After a restart it goes on from the recorded mark, so handle must tolerate
// events it has seen before. The
// publisher and the stream indexer are followers.
type follower struct {
	mark  string
	store *Store
	batch int
	// linger is how long to wait after new commits before handling them, so that a
	// follower with costly writes handles more events per batch.
	linger time.Duration
	handle func(ctx context.Context, events []event.Stored) error
	// done is the last position handled.
	done atomic.Int64
}

// run follows the commits until ctx is done. A failing batch is tried again with backoff.
func (f *follower) run(ctx context.Context) error {
	from, err := f.store.db.mark(ctx, f.mark)
	if err != nil {
		return fmt.Errorf("read %s position: %w", f.mark, err)
	}
	if head := f.store.Head(); from > head {
		// The mark is ahead of the data (data restored from an older backup): go on from
		// the data's end rather than skip what will be appended.
		from = head
	}
	f.done.Store(from)
	recorded, recordedAt := from, time.Now()
	// The mark is recorded at most every markEvery and once more on the way out: each
	// record is a document update, which costs FerretDB more than the appends themselves
	// (BENCHMARKS.md), and a mark that lags only means handling a few events again after a
	// crash.
	defer func() {
		if from != recorded {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			f.record(ctx, from)
		}
	}()
	pauses := bus.NewBackoff(100*time.Millisecond, 5*time.Second)
	for {
		f.store.mu.RLock()
		head, committed := f.store.idx.head, f.store.committed
		f.store.mu.RUnlock()
		if head <= from {
			select {
			case <-ctx.Done():
				return nil
			case <-committed:
				if f.linger > 0 {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(f.linger):
					}
				}
				continue
			}
		}
		page, err := f.store.Feed(ctx, from, f.batch, nil)
		if err == nil {
			err = f.handle(ctx, page.Events)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			f.store.logger.Error("follow commits", "follower", f.mark, "after", from, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pauses.NextBackOff()):
			}
			continue
		}
		pauses.Reset()
		from = page.NextAfter
		f.done.Store(from)
		if time.Since(recordedAt) >= markEvery {
			f.record(ctx, from)
			recorded, recordedAt = from, time.Now()
		}
	}
}

// markEvery is how often a follower records its mark at most.
const markEvery = 250 * time.Millisecond

// record stores position as the follower's mark. A failure is logged, not fatal: after a
// restart the follower handles again what came since the last recorded mark.
func (f *follower) record(ctx context.Context, position int64) {
	if err := f.store.db.setMark(ctx, f.mark, position); err != nil && ctx.Err() == nil {
		f.store.logger.Warn("record follower position", "follower", f.mark, "position", position, "error", err)
	}
}
