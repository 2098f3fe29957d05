package eventclient

import (
	"context"
	"fmt"
)

// Barrier waits until progress shows applied every event of types that the store held
// when Barrier was called, or ctx is done. It costs one feed read when nothing is pending
// (the usual case) and one more for each event it waited for. A read model kept per
// instance calls it before it answers, so that what was written through another replica
// is read here too: read-your-writes across replicas, which a shared read model gets by
// waiting for the shared checkpoint instead.
func (c *Client) Barrier(ctx context.Context, progress *Progress, types []string) error {
	page, err := c.Feed(ctx, progress.Applied(), 1, types)
	if err != nil {
		return fmt.Errorf("read-your-writes barrier: %w", err)
	}
	head := page.Head
	for len(page.Events) > 0 && page.Events[0].Position <= head {
		if err := progress.Wait(ctx, page.Events[0].Position, nil); err != nil {
			return fmt.Errorf("read-your-writes barrier: wait for position %d: %w", page.Events[0].Position, err)
		}
		if page, err = c.Feed(ctx, progress.Applied(), 1, types); err != nil {
			return fmt.Errorf("read-your-writes barrier: %w", err)
		}
	}
	return nil
}
