package eventclient

import (
	"context"
	"sync"
	"time"
)

// Progress is how far a read model has applied the store's events, for read-your-writes:
// a service that appended an event waits until its read model has applied that position
// before it answers.
type Progress struct {
	mu       sync.Mutex
	applied  int64
	changed  chan struct{}
	lastPoll time.Time // when a waiter last asked the checkpoint
}

// pollEvery is how often the waiters of one Progress, together, ask the checkpoint.
const pollEvery = 25 * time.Millisecond

// claimPoll reports whether it is this waiter's turn to ask the checkpoint, so that a
// hundred waiting requests cost one database read per pollEvery, not a hundred.
func (p *Progress) claimPoll() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.lastPoll) < pollEvery {
		return false
	}
	p.lastPoll = time.Now()
	return true
}

// NewProgress returns a Progress at position 0.
func NewProgress() *Progress { return &Progress{changed: make(chan struct{})} }

// Advance records that every event up to position has been applied.
func (p *Progress) Advance(position int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if position > p.applied {
		p.applied = position
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// Applied returns the position recorded last.
func (p *Progress) Applied() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// Wait returns nil once position has been applied, or ctx's error. When another replica
// of the service is the active consumer, this one's Progress does not move; so Wait also
// asks checkpoint (the shared read model's), once per 25 ms for all waiters together.
func (p *Progress) Wait(ctx context.Context, position int64, checkpoint func(context.Context) (int64, error)) error {
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	for {
		p.mu.Lock()
		applied, changed := p.applied, p.changed
		p.mu.Unlock()
		if applied >= position {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-poll.C:
			if checkpoint == nil || !p.claimPoll() {
				continue
			}
			if cp, err := checkpoint(ctx); err == nil && cp >= position {
				p.Advance(cp)
			}
		}
	}
}
