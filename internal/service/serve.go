package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// shutdownTimeout bounds how long Serve lets requests in flight finish.
const shutdownTimeout = 10 * time.Second

// Serve serves h, every request body limited to MaxBodyBytes (or its route's limit in
// LargeBodies), its headers and its time
// to httplimit.Defaults, and every request measured
// by Config.Metrics (route label: the chi route pattern), and runs each task until ctx is done or one of them fails, and announces
// the instance to the gateway meanwhile. Then it shuts down: the server stops taking
// requests and finishes those in flight (10 s at most), the tasks end with ctx. It
// returns once all have ended: the first failure (of serving or of a task), or nil when
// ctx was done. A task that returns nil early ends alone; an error a task returns after
// the others were told to stop is not a failure.
func (rt *Runtime) Serve(ctx context.Context, h http.Handler, tasks ...func(ctx context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, task := range tasks {
		g.Go(func() error {
			if err := task(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		rt.announce(ctx)
		return nil
	})
	// The body limit first, on the server's own writer (MaxBodyBytes, LargeBodies), then the metrics,
	// then the trace of a request that carries one. The server's timeouts and header
	// limit are httplimit's defaults; a service has no per-address cap, because its one
	// client is the gateway.
	srv := &http.Server{Handler: httplimit.BodyLimit(MaxBodyBytes, rt.LargeBodies)(rt.Metrics.HTTP(telemetry.TraceHTTP(rt.Name, false, h)))}
	httplimit.Defaults.Apply(srv)
	g.Go(func() error {
		if err := srv.Serve(rt.Listener); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
		defer stop()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			rt.Logger.Warn("shutdown HTTP", "error", err)
		}
		return nil
	})
	rt.Logger.Info("service ready", "service", rt.Name, "addr", rt.Listener.Addr().String())
	return g.Wait()
}
