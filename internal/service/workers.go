package service

import (
	"context"
	"sync"
)

// Workers runs n goroutines that each take values from work and hand them to handle, one
// at a time, until ctx is done, and returns when all have stopped. It is how a service
// works beside its event queue: the queue's handler records what is to be done and sends
// it on work, and the workers do it in parallel (a value that never arrives, after a
// crash, is the service's sweeper's to find).
func Workers[T any](ctx context.Context, n int, work <-chan T, handle func(context.Context, T)) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case v := <-work:
					handle(ctx, v)
				}
			}
		})
	}
	wg.Wait()
}
