package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Serve serves h and runs each task until ctx is done or one of them fails, and announces
// the instance to the gateway meanwhile. Then it shuts down: the server stops taking
// requests and finishes those in flight (10 s at most), the tasks end with ctx. It
// returns the first failure.
func (rt *Runtime) Serve(ctx context.Context, h http.Handler, tasks ...func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, task := range tasks {
		wg.Go(func() {
			if err := task(ctx); err != nil && ctx.Err() == nil {
				cancel(err)
			}
		})
	}
	wg.Go(func() { rt.announce(ctx) })
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() {
		if err := srv.Serve(rt.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("serve HTTP: %w", err))
		}
	})
	rt.Logger.Info("service ready", "service", rt.Name, "addr", rt.Listener.Addr().String())
	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		rt.Logger.Warn("shutdown HTTP", "error", err)
	}
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
