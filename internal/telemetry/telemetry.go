// Package telemetry is how msdemo shows what it does while it runs: the Prometheus
// metrics of every component a process runs (DESIGN.md, "Seeing inside"). It is the one
// package that uses github.com/prometheus/client_golang; the shared frames and the few
// components that measure something of their own call its helpers. Traces (the OTel
// tracer provider and propagator) are to join it here.
//
// A process makes one Metrics (New) and serves it at GET /metrics on its own listener
// (Serve), never through the gateway. Each component it runs gets its Component (For),
// whose methods record that component's series, every one labelled
// component="<name>". A nil *Metrics and a nil *Component are valid and record nothing,
// so that code and tests that run a component without metrics need not set one up.
//
// Metrics holds its own registry rather than Prometheus's global one, so that tests may
// run many shops in one process, each with its own Metrics (or none), without their
// series mixing or a second registration failing.
//
// The families (docs/metrics.md lists them with their labels):
//
//	msdemo_http_requests_total{component,route,code}          counter
//	msdemo_http_request_duration_seconds{component,route}     histogram
//	msdemo_bus_published_total{component}                    counter
//	msdemo_bus_consumed_total{component,queue}                counter
//	msdemo_bus_dead_lettered_total{component,queue}           counter
//	msdemo_bus_reconnects_total{component}                    counter
//	msdemo_subscription_position{component}                   gauge
//	msdemo_subscription_lag_events{component}                 gauge
//	msdemo_eventstore_appended_events_total{component}        counter
//	msdemo_eventstore_head_position{component}                gauge
//	msdemo_eventstore_commit_duration_seconds{component}      histogram
//	msdemo_eventstore_batch_requests{component}               histogram
//	msdemo_orders_total{component,outcome}                    counter
//	msdemo_saga_duration_seconds{component}                   histogram
//	msdemo_sse_clients{component}                             gauge
//
// plus the Go runtime (go_*) and process (process_*) collectors.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where a process serves /metrics when METRICS_ADDR is unset.
const DefaultAddr = "127.0.0.1:9464"

// Outcomes of an order, the values of msdemo_orders_total's outcome label.
const (
	OutcomeApproved = "approved"
	OutcomeRejected = "rejected"  // a participant refused (stock, credit, unknown product)
	OutcomeTimedOut = "timed_out" // the saga timeout rejected it
)

// UnmatchedRoute is the route label of a request that matched no route (a 404, or a
// request answered before routing, such as a service's 503 while it catches up).
const UnmatchedRoute = "unmatched"

// Metrics is the registry of one process and every family in it. It is safe for
// concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	busPublished    *prometheus.CounterVec
	busConsumed     *prometheus.CounterVec
	busDeadLettered *prometheus.CounterVec
	busReconnects   *prometheus.CounterVec

	subPosition *prometheus.GaugeVec
	subLag      *prometheus.GaugeVec

	storeAppended *prometheus.CounterVec
	storeHead     *prometheus.GaugeVec
	storeCommit   *prometheus.HistogramVec
	storeBatch    *prometheus.HistogramVec

	orders       *prometheus.CounterVec
	sagaDuration *prometheus.HistogramVec

	sseClients *prometheus.GaugeVec
}

// New returns a Metrics with every family registered, and the Go runtime and process
// collectors.
func New() *Metrics {
	component := []string{"component"}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msdemo_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code."}, []string{"component", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "msdemo_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"component", "route"}),
		busPublished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msdemo_bus_published_total",
			Help: "Messages the broker confirmed (events, append requests, RPC replies, announcements)."}, component),
		busConsumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msdemo_bus_consumed_total",
			Help: "Deliveries handled successfully (acked), by queue."}, []string{"component", "queue"}),
		busDeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msdemo_bus_dead_lettered_total",
			Help: "Deliveries rejected after failing (into the queue's dead-letter queue, or dropped if it has none), by queue."},
			[]string{"component", "queue"}),
		busReconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msdemo_bus_reconnects_total",
			Help: "Times the RabbitMQ connection was lost and dialled again."}, component),
		subPosition: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "msdemo_subscription_position",
			Help: "Global position of the last event the read model applied (its checkpoint)."}, component),
		subLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "msdemo_subscription_lag_events",
			Help: "Positions between the event store's head and how far the subscription has applied every event it follows."}, component),
		storeAppended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msdemo_eventstore_appended_events_total",
			Help: "Events the event store committed."}, component),
		storeHead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "msdemo_eventstore_head_position",
			Help: "Global position of the last committed event."}, component),
		storeCommit: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "msdemo_eventstore_commit_duration_seconds",
			Help:    "Time to write one commit (a batch of append requests) to the database.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, component),
		storeBatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "msdemo_eventstore_batch_requests",
			Help:    "Append requests committed together in one commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}}, component),
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "msdemo_orders_total",
			Help: "Orders decided, by outcome: approved, rejected, timed_out."}, []string{"component", "outcome"}),
		sagaDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "msdemo_saga_duration_seconds",
			Help:    "Time from an order's placing to its decision.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, component),
		sseClients: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "msdemo_sse_clients",
			Help: "Browsers connected to a live view (Server-Sent Events)."}, component),
	}
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.busPublished, m.busConsumed, m.busDeadLettered, m.busReconnects,
		m.subPosition, m.subLag, m.storeAppended, m.storeHead, m.storeCommit, m.storeBatch,
		m.orders, m.sagaDuration, m.sseClients)
	return m
}

// Handler serves the registry in the Prometheus text format (or OpenMetrics, if the
// scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Gatherer is the registry, for tests that read the values directly.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// Listen listens on addr for Serve. A busy port fails at once, with METRICS_ADDR named.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s (METRICS_ADDR; empty turns metrics off): %w", addr, err)
	}
	return ln, nil
}

// Serve serves GET /metrics (and GET /healthz, and with profiles Go's profiles under
// /debug/pprof/, net/http/pprof's handlers) on ln until ctx is done, then shuts the
// server down and closes ln. It returns nil after a clean shutdown.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, profiles bool, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.Info("metrics listening", "addr", ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("metrics: shut down: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve: %w", err)
	}
	return nil
}

// For returns the recorder of component name (registry.Components' names), nil for a nil
// m. Calling it twice with one name returns recorders of the same series.
func (m *Metrics) For(name string) *Component {
	if m == nil {
		return nil
	}
	labels := prometheus.Labels{"component": name}
	return &Component{name: name, m: m,
		httpRequests: m.httpRequests.MustCurryWith(labels),
		httpDuration: m.httpDuration.MustCurryWith(labels),
		busConsumed:  m.busConsumed.MustCurryWith(labels),
		busDead:      m.busDeadLettered.MustCurryWith(labels),
	}
}
