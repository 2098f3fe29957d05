package eventclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/msdemo/msdemo/internal/bus"
)

// Rebuilt says what Rebuild did.
type Rebuilt struct {
	StoreID  string // the store the read model now follows
	Position int64  // where the feed ended: every event of the types up to it was read
	Applied  int    // events applied
	Skipped  int    // events that failed permanently (bus.ErrPermanent), logged and skipped
}

// Rebuild empties rm and applies every event of types (patterns as in Subscription.Types)
// from position 0 of the store's feed to its head, then returns. It reads the HTTP feed
// only, so c needs no bus (New(nil, ...)). An event whose Apply fails with bus.ErrPermanent
// is logged, counted and skipped, as the live subscription would dead-letter it, and the
// rebuild ends with an error that says how many; any other failure stops the rebuild. Run
// it while the service that owns rm is stopped.
func (c *Client) Rebuild(ctx context.Context, types []string, rm ReadModel, logger *slog.Logger) (Rebuilt, error) {
	var r Rebuilt
	for first := true; ; first = false {
		page, err := c.Feed(ctx, r.Position, feedPageSize, types)
		if err != nil {
			return r, fmt.Errorf("rebuild: %w", err)
		}
		if first {
			if err := rm.Reset(ctx, page.StoreID); err != nil {
				return r, fmt.Errorf("rebuild: empty the read model: %w", err)
			}
			r.StoreID = page.StoreID
		}
		for _, e := range page.Events {
			err := rm.Apply(ctx, page.StoreID, e)
			switch {
			case errors.Is(err, bus.ErrPermanent):
				logger.Error("rebuild: event skipped", "type", e.Type, "position", e.Position, "error", err)
				r.Skipped++
			case err != nil:
				return r, fmt.Errorf("rebuild: apply %s (position %d): %w", e.Type, e.Position, err)
			default:
				r.Applied++
			}
		}
		if page.NextAfter <= r.Position && page.NextAfter < page.Head {
			return r, errors.New("rebuild: the event feed does not advance")
		}
		r.Position = page.NextAfter
		if r.Position >= page.Head {
			logger.Info("read model rebuilt", "events", r.Applied, "skipped", r.Skipped, "position", r.Position)
			if r.Skipped > 0 {
				return r, fmt.Errorf("rebuild: %d events could not be applied (see the log)", r.Skipped)
			}
			return r, nil
		}
	}
}
