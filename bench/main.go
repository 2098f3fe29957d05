// Command bench measures the whole shop under load on this machine: it builds msdemo,
// starts every component as ONE process (the all-in-one deployment) in a RabbitMQ virtual
// host, a DATA_DIR and a namespace of its own on free loopback ports, drives it through the
// gateway, and prints one table (or the same figures as JSON with -json):
//
//  1. completed orders per second at saturation (closed loop, end to end through the saga);
//  2. placed-to-approved latency at a fixed offered rate (open loop, half the saturation);
//  3. GET /product/products?limit=50 through the gateway, directly, and through nginx;
//  4. event store appends per second over RabbitMQ, 1 and 16 writers, beside the raw
//     insert rate of an embedded FerretDB;
//  5. the raw RabbitMQ rate of confirmed persistent publishes, and the bus bound for orders;
//  6. the delay from order.approved stored to the admin site's SSE stream;
//  7. the resident memory of the msdemo process, idle and under load;
//  8. what live views cost: 1, 10 and 100 SSE clients on the admin's live order list, the
//     sites' API requests per stored event (counted at a proxy the sites' GATEWAY_URL
//     points to) and the delay from order.approved stored to each client's row.
//
// It is a command, not a test, so that no test of the repository times anything:
//
//	go run ./bench [-json] [-duration 20s] [-customers 32] [-rate 0] [-live-rate 5] [-perf cpu.data] [-only store,...]
//
// With -soak 10m it runs the chaos soak instead (soak.go): the shop as one process per
// component under a steady load while components are killed and broker connections
// dropped, then checks every promise of the shop and exits non-zero if one is broken.
//
// Every loop ends by itself; with -duration 20s the whole run takes about two minutes. It
// uses only loopback and cleans up what it created (vhost, databases, Redis keys, temp dirs).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	JSON      bool
	Duration  time.Duration // each order run; the shorter runs take a quarter of it
	Customers int           // concurrent customers of the closed loop
	Rate      float64       // fixed offered rate; 0: half the saturation
	LiveRate  float64       // orders/s of the live-view runs
	Conns     int           // keep-alive connections of the HTTP load
	Perf      string        // perf.data file to record during the saturation run
	Pprof     string        // file to keep msdemo's CPU profile of the saturation run in
	Only      parts         // the measurements to run; all when empty
	RabbitMQ  string        // broker URL (the vhost is added to it)
	Postgres  string
	Redis     string
	History   historySizes // events to seed before each history run
	Soak      soakOptions
}

// run parses args, runs the benchmark and writes the report to stdout; progress goes to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var o options
	flags.BoolVar(&o.JSON, "json", false, "print the figures as JSON")
	flags.DurationVar(&o.Duration, "duration", 20*time.Second, "length of each order run; HTTP, append and publish runs take a quarter of it")
	flags.IntVar(&o.Customers, "customers", 32, "concurrent customers at saturation")
	flags.Float64Var(&o.Rate, "rate", 0, "fixed offered rate in orders/s for the latency run (0: half the saturation)")
	flags.Float64Var(&o.LiveRate, "live-rate", 5, "orders/s of the live-view runs (row 8), each half of -duration long")
	flags.IntVar(&o.Conns, "conns", 50, "keep-alive connections of the HTTP load")
	flags.StringVar(&o.Pprof, "pprof", "", "keep msdemo's CPU profile of the saturation run (pprof labels per component) in this file")
	flags.StringVar(&o.Perf, "perf", "", "record a CPU profile of msdemo with perf into this file during the saturation run")
	flags.Var(&o.Only, "only", "run only these measurements, comma-separated: orders (rows 1, 2, 6, 7), http (3), store (4), broker (5), live (8), history (9)")
	o.History = historySizes{1_000, 100_000, 1_000_000}
	flags.Var(&o.History, "history", "events to seed in the store, in turn, before each history run (row 9)")
	flags.DurationVar(&o.Soak.Duration, "soak", 0, "run the chaos soak for this long instead of the benchmark (see soak.go)")
	flags.BoolVar(&o.Soak.Servers, "soak-servers", false, "the soak also restarts PostgreSQL, Redis and RabbitMQ: every other user of them is disturbed")
	flags.IntVar(&o.Soak.Customers, "soak-customers", 8, "concurrent customers of the soak")
	flags.IntVar(&o.Soak.Managers, "soak-managers", 2, "concurrent managers of the soak")
	flags.DurationVar(&o.Soak.FaultEvery, "soak-fault-every", 8*time.Second, "mean time between the soak's faults")
	flags.StringVar(&o.Soak.Logs, "soak-logs", "", "write each component's output to <dir>/<component>.log (the directory must exist)")
	flags.Uint64Var(&o.Soak.Seed, "soak-seed", 0, "seed of the soak's random choices (0: from the clock); the report prints it")
	if err := flags.Parse(args); err != nil {
		return err
	}
	o.RabbitMQ = or(getenv("RABBITMQ_URL"), "amqp://guest:guest@127.0.0.1:5672/")
	o.Postgres = or(getenv("POSTGRES_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	o.Redis = or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0")
	if o.Duration < time.Second || o.Customers < 1 || o.Conns < 1 || o.LiveRate <= 0 {
		return fmt.Errorf("want -duration >= 1s, -customers >= 1, -conns >= 1, -live-rate > 0")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if o.Soak.Duration > 0 {
		if o.Soak.Customers < 1 || o.Soak.Managers < 0 || o.Soak.FaultEvery < 100*time.Millisecond {
			return fmt.Errorf("want -soak-customers >= 1, -soak-managers >= 0, -soak-fault-every >= 100ms")
		}
		return soak(ctx, o, args, logger, stdout)
	}

	r, err := measure(ctx, o, logger)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	r.writeTable(stdout)
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// measure starts the shop, runs every measurement in turn and stops the shop.
func measure(ctx context.Context, o options, logger *slog.Logger) (*report, error) {
	r := &report{Duration: o.Duration.String(), Customers: o.Customers, Conns: o.Conns,
		CPUs: numCPU(), StartedAt: time.Now().UTC().Format(time.RFC3339), Parts: o.Only.all()}

	s, err := startShop(ctx, o, logger)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	// A run whose msdemo died ends with msdemo's last output, instead of waiting on it.
	ctx, died := context.WithCancelCause(ctx)
	defer died(nil)
	go func() {
		select {
		case <-s.exited:
			died(s.exitError())
		case <-ctx.Done():
		}
	}()
	if err := s.measure(ctx, o, r, logger); err != nil {
		return nil, cmp.Or(context.Cause(ctx), err)
	}
	return r, nil
}

// measure runs the measurements that o chooses on the started shop s into r.
func (s *shop) measure(ctx context.Context, o options, r *report, logger *slog.Logger) (err error) {
	quarter := o.Duration / 4
	if err := s.seed(ctx, o.Customers); err != nil {
		return err
	}
	time.Sleep(time.Second) // let the seeding settle before the idle sample
	r.RSSIdleMB = s.rssMB()

	if r.ran(partBroker) {
		logger.Info("counting the broker messages of one order")
		if r.Bus, err = s.messagesPerOrder(ctx); err != nil {
			return err
		}
	}

	if r.ran(partOrders) {
		logger.Info("saturation run", "customers", o.Customers, "duration", o.Duration)
		if r.Saturation, err = s.saturate(ctx, o.Customers, o.Duration, o.Perf, o.Pprof); err != nil {
			return err
		}
		r.RSSLoadMB = r.Saturation.maxRSSMB

		rate := o.Rate
		if rate <= 0 {
			rate = max(1, r.Saturation.OrdersPerSec/2)
		}
		logger.Info("fixed-rate run", "rate", rate, "duration", o.Duration)
		if r.Latency, err = s.fixedRate(ctx, rate, o.Duration); err != nil {
			return err
		}
		// The target is set at a rate of its own: measure there too, unless that is the
		// rate just run or beyond the saturation (its queue would only grow).
		if math.Abs(rate-targetSagaRate) >= 1 && r.Saturation.OrdersPerSec > targetSagaRate {
			logger.Info("fixed-rate run at the target's rate", "rate", targetSagaRate, "duration", o.Duration)
			at, err := s.fixedRate(ctx, targetSagaRate, o.Duration)
			if err != nil {
				return err
			}
			r.AtTarget = &at
		}
	}

	if r.ran(partHTTP) {
		logger.Info("HTTP runs", "conns", o.Conns, "duration", quarter)
		if r.HTTP, err = s.httpRuns(ctx, o.Conns, quarter); err != nil {
			return err
		}
	}

	if r.ran(partStore) {
		logger.Info("event store appends and raw FerretDB inserts", "duration", quarter)
		if r.Store, err = s.storeRuns(ctx, quarter); err != nil {
			return err
		}
	}

	if r.ran(partLive) {
		r.LiveRate = o.LiveRate
		if r.Live, err = s.liveRuns(ctx, o.LiveRate, o.Duration/2); err != nil {
			return err
		}
	}

	if r.ran(partHistory) {
		// One fixed rate at every size, so that the p99s compare: half the saturation
		// measured above (or -rate), and 10/s when there is none.
		rate := cmp.Or(o.Rate, r.Saturation.OrdersPerSec/2, 10)
		logger.Info("history runs", "events", o.History.String(), "rate", rate, "duration", o.Duration/2)
		if r.History, err = s.historyRuns(ctx, o.History, o.Customers, rate, o.Duration/2); err != nil {
			return err
		}
	}

	if r.ran(partBroker) {
		logger.Info("raw RabbitMQ publishes", "duration", quarter)
		if err := s.brokerRuns(ctx, quarter, &r.Bus); err != nil {
			return err
		}
		r.Bus.bound(r.Saturation.OrdersPerSec)
	}
	r.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	return nil
}

// The measurements -only can choose.
const (
	partOrders  = "orders" // saturation, fixed rate, SSE delay, memory
	partHTTP    = "http"
	partStore   = "store"
	partBroker  = "broker"
	partLive    = "live"    // live views: followers, API requests per event, SSE delay
	partHistory = "history" // the saga with 1k, 100k, 1M events in the store
)

var allParts = []string{partOrders, partHTTP, partStore, partBroker, partLive, partHistory}

// parts is the value of -only.
type parts []string

func (p *parts) String() string { return strings.Join(*p, ",") }

func (p *parts) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		if !slices.Contains(allParts, name) {
			return fmt.Errorf("unknown measurement %q: want some of %s", name, strings.Join(allParts, ","))
		}
		*p = append(*p, name)
	}
	return nil
}

// all returns the chosen measurements, or every one when none was chosen.
func (p parts) all() []string {
	if len(p) == 0 {
		return allParts
	}
	return p
}
