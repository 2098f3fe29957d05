package customer

import (
	"context"
	"time"

	"github.com/msdemo/msdemo/internal/eventclient"
)

// schemaWatchEvery is how often the running service checks that its read model is still
// in Redis (its schema key is there).
const schemaWatchEvery = time.Second

// subscribe keeps the read model up to date until ctx is done. A Redis that restarted
// without persistence (or an operator's FLUSHDB) takes the whole read model, the checkpoint
// included, while the subscription goes on applying new events to nothing; so the service
// watches the schema key, and when it is gone it stops the subscription, answers 503
// (not ready) meanwhile, empties what is left and records the schema again
// (ensureSchema), and subscribes again: the catch-up from position 0 rebuilds the read
// model from the event store.
func (a *app) subscribe(ctx context.Context) error {
	caughtUp := a.caughtUp // the first catch-up's, which bootstrap waits for
	for {
		subCtx, stop := context.WithCancel(ctx)
		lost := make(chan struct{})
		go func() {
			defer stop()
			if a.users.waitLost(subCtx) {
				close(lost)
			}
		}()
		err := a.rt.Events.Subscribe(subCtx, eventclient.Subscription{Name: a.cfg.Subscription, Types: subscribedTypes,
			Progress: a.rt.Progress, CaughtUp: caughtUp}, &participant{users: a.users, events: a.rt.Events, logger: a.logger}, a.logger)
		stop()
		select {
		case <-lost:
		default:
			return err // ctx is done, or the subscription failed
		}
		a.logger.Warn("the read model is gone from Redis (restarted without persistence?): rebuilding it from the event store")
		a.ready.Store(false)
		if _, err := a.users.ensureSchema(ctx); err != nil {
			return err
		}
		caughtUp = make(chan struct{})
		go func(caughtUp chan struct{}) {
			select {
			case <-caughtUp:
				a.ready.Store(true)
				a.logger.Info("the read model is rebuilt")
			case <-ctx.Done():
			}
		}(caughtUp)
	}
}

// waitLost reports true once the schema key is missing from Redis, false when ctx is done
// first. A Redis that does not answer (restarting) is not a lost read model: it asks again.
func (s *store) waitLost(ctx context.Context) bool {
	tick := time.NewTicker(schemaWatchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if lost, err := s.lost(ctx); err == nil && lost {
			return true
		}
	}
}

// lost reports whether the read model is gone from Redis: its schema key is missing.
func (s *store) lost(ctx context.Context) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.schemaKey()).Result()
	return n == 0, err
}
