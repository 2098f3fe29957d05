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
	mu      sync.Mutex
	applied int64
	changed chan struct{}
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
// asks checkpoint (the shared read model's) every 25 ms.
func (p *Progress) Wait(ctx context.Context, position int64, checkpoint func(context.Context) (int64, error)) error {
	poll := time.NewTicker(25 * time.Millisecond)
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
			if checkpoint == nil {
				continue
			}
			if cp, err := checkpoint(ctx); err == nil && cp >= position {
				p.Advance(cp)
			}
		}
	}
}
