// Command msdemo runs the msdemo shop: every component in one process (the default), one
// component with -target=<name>, which is what each container in compose.yaml runs, or any
// subset with -target=<name>,<name>. In every mode the components talk only over RabbitMQ
// and HTTP.
//
//	msdemo                                run every component
//	msdemo -target=eventstore             run one component
//	msdemo -target=gateway,order,product  run these three in one process
//	msdemo rebuild -target=order          rebuild a read model from the event store (all: every one)
//	msdemo seed                   load a demo catalog and customers into a running shop
//	msdemo healthcheck -url URL   exit 0 when URL answers 200 (for container healthchecks)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/seed"
	"github.com/msdemo/msdemo/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "msdemo:", err)
		os.Exit(1)
	}
}

// run parses args, loads the configuration from lookupEnv (os.LookupEnv: a variable set
// to "" differs from an unset one for METRICS_ADDR), and runs what was asked until ctx is
// done.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "seed" {
		return seedShop(ctx, lookupEnv, stderr)
	}
	command := "run"
	if len(args) > 0 && args[0] == "rebuild" {
		command, args = "rebuild", args[1:]
	}
	flags := flag.NewFlagSet("msdemo "+command, flag.ContinueOnError)
	flags.SetOutput(stderr)
	target := flags.String("target", "all", "components, separated by commas: all, or of "+strings.Join(componentNames(), ", "))
	if err := flags.Parse(args); err != nil {
		return err
	}
	known := componentNames()
	if command == "rebuild" {
		known = slices.Sorted(maps.Keys(rebuilders))
	}
	names, err := parseTargets(*target, known)
	if err != nil {
		return fmt.Errorf("%w for %s", err, command)
	}
	cfg, err := loadConfig(lookupEnv)
	if err != nil {
		return err
	}
	if err := cfg.checkAdvertiseURL(names); err != nil {
		return err
	}
	// Log lines written with a ctx that carries a span get its trace_id.
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel})))
	if cfg.TokenKey, err = auth.LoadKey(cfg.TokenKeyHex, cfg.DataDir); err != nil {
		return err
	}
	if command == "rebuild" {
		return rebuild(ctx, cfg, names, logger)
	}
	return runComponents(ctx, cfg, names, logger)
}

// parseTargets reads -target: "all" (every name of known), or names of known separated by
// commas, each once, in the order given (spaces around a name are ignored).
func parseTargets(target string, known []string) ([]string, error) {
	if strings.TrimSpace(target) == "all" {
		return known, nil
	}
	var names []string
	for name := range strings.SplitSeq(target, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "all":
			return nil, errors.New(`-target "all" cannot be listed with other components`)
		case !slices.Contains(known, name):
			return nil, fmt.Errorf("unknown -target %q; all, or of: %s", name, strings.Join(known, ", "))
		case slices.Contains(names, name):
			return nil, fmt.Errorf("-target names %q twice", name)
		}
		names = append(names, name)
	}
	return names, nil
}

// runComponents starts the named components and waits for all of them. When one fails, the
// others are stopped, and the first error is returned. Unless cfg.MetricsAddr is empty, it
// first listens there (a busy port fails at once) and serves the metrics of all of them at
// GET /metrics (package telemetry) meanwhile. It starts the process's tracing too
// (cfg.Tracing; service.name is the component's, "msdemo" for several), and flushes it
// when they have stopped.
func runComponents(ctx context.Context, cfg config, names []string, logger *slog.Logger) error {
	cfg.Tracing.Service = "msdemo"
	if len(names) == 1 {
		cfg.Tracing.Service = names[0]
	}
	stopTracing, err := telemetry.StartTracing(ctx, cfg.Tracing)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(flushCtx); err != nil {
			logger.Warn("tracing: flush", "error", err)
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if cfg.MetricsAddr != "" {
		ln, err := telemetry.Listen(cfg.MetricsAddr)
		if err != nil {
			return err
		}
		cfg.Metrics = telemetry.New()
		wg.Go(func() {
			if err := cfg.Metrics.Serve(ctx, ln, cfg.Profiles, logger); err != nil && ctx.Err() == nil {
				logger.Error("metrics failed", "error", err)
				cancel(err)
			}
		})
	}
	for _, name := range names {
		c := components[name]
		log := logger.With("component", name)
		wg.Go(func() {
			// Every goroutine the component starts inherits the label, so a CPU profile
			// (METRICS_PPROF) splits the process's time by component.
			var err error
			pprof.Do(ctx, pprof.Labels("component", name), func(ctx context.Context) { err = c(ctx, cfg, log) })
			if err != nil {
				if ctx.Err() != nil { // stopping already: the first failure was reported
					log.Debug("component stopped with error", "error", err)
					return
				}
				log.Error("component failed", "error", err)
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// rebuild deletes the read models of the named services and rebuilds them from the event
// store, one after the other. The services should be stopped meanwhile.
func rebuild(ctx context.Context, cfg config, names []string, logger *slog.Logger) error {
	for _, name := range names {
		start := time.Now()
		if err := rebuilders[name](ctx, cfg, logger.With("component", name)); err != nil {
			return fmt.Errorf("rebuild %s: %w", name, err)
		}
		logger.Info("read model rebuilt", "component", name, "duration_ms", time.Since(start).Milliseconds())
	}
	return nil
}

// seedShop loads the demo catalog and customers through the gateway of a running shop.
func seedShop(ctx context.Context, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	cfg, err := loadConfig(lookupEnv)
	if err != nil {
		return err
	}
	password := cfg.AdminPassword
	if password == "" {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-password"))
		if err != nil {
			return fmt.Errorf("no MSDEMO_ADMIN_PASSWORD and no %s: start the shop first: %w",
				filepath.Join(cfg.DataDir, "admin-password"), err)
		}
		password = strings.TrimSpace(string(b))
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := seed.Run(ctx, cfg.GatewayURL, password, logger); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "seeded the shop at %s; demo customers alice, bob and chen have the password %q\n",
		cfg.GatewayURL, seed.DemoPassword)
	return nil
}

// healthcheck exits 0 when -url answers 200 within 3 s; the images have no curl.
func healthcheck(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := flags.String("url", "", "URL that must answer 200")
	if err := flags.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", *url, resp.Status)
	}
	return nil
}
