package admin

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/msdemo/msdemo/internal/telemetry"
	"github.com/msdemo/msdemo/internal/web"
)

// The system page's sampling: every sampleEvery the sampler gathers every source and
// keeps what the page shows of it, for historySpan.
const (
	sampleEvery = 2 * time.Second
	historySpan = 10 * time.Minute
	// gatherTimeout bounds one source's gathering, so a slow one cannot hold up a sample.
	gatherTimeout = 1500 * time.Millisecond
)

// The families the system page reads (docs/metrics.md).
const (
	famHTTPRequests = "msdemo_http_requests_total"
	famHTTPDuration = "msdemo_http_request_duration_seconds"
	famSubPosition  = "msdemo_subscription_position"
	famSubLag       = "msdemo_subscription_lag_events"
	famDeadLettered = "msdemo_bus_dead_lettered_total"
	famOrders       = "msdemo_orders_total"
	famSaga         = "msdemo_saga_duration_seconds"
)

// sample is what the system page keeps of one gathering of every source. Series of one
// component from several sources (replicas) are added up; a subscription's gauges take
// the largest lag and the smallest position, the replica furthest behind. A sample is
// not changed once recorded.
type sample struct {
	At       time.Time
	Failed   []string             // sources that could not be gathered, with why
	Requests map[string]float64   // component → requests answered (all routes and codes)
	Duration map[string]histogram // component → request duration (all routes)
	Subs     map[string]subState  // component → its subscription
	Dead     map[deadKey]float64  // component and queue → deliveries dead-lettered
	Orders   map[string]float64   // outcome → orders decided
	Saga     histogram            // placed to decided; zero if no source has it
	HasSaga  bool
}

// subState is a subscription's gauges; positioned says Position was seen.
type subState struct {
	Position, Lag float64
	positioned    bool
}

type deadKey struct{ Component, Queue string }

// histogram is a Prometheus histogram's cumulative buckets: Counts[i] observations at or
// below Bounds[i], ascending; Count (the +Inf bucket) all of them.
type histogram struct {
	Bounds []float64
	Counts []float64
	Count  float64
}

// add returns h plus o; a histogram with other bounds is not added (ok false), since
// its buckets cannot be lined up with h's.
func (h histogram) add(o histogram) (sum histogram, ok bool) {
	if h.Bounds == nil {
		return histogram{Bounds: o.Bounds, Counts: slices.Clone(o.Counts), Count: o.Count}, true
	}
	if !slices.Equal(h.Bounds, o.Bounds) {
		return h, false
	}
	sum = histogram{Bounds: h.Bounds, Counts: slices.Clone(h.Counts), Count: h.Count + o.Count}
	for i := range sum.Counts {
		sum.Counts[i] += o.Counts[i]
	}
	return sum, true
}

// since returns the observations h made after earlier: the bucket deltas. A counter
// reset (a process restarted, so h counts less than earlier) or other bounds make the
// delta h itself, as Prometheus's rate() treats a reset.
func (h histogram) since(earlier histogram) histogram {
	if h.Count < earlier.Count || !slices.Equal(h.Bounds, earlier.Bounds) {
		return h
	}
	d := histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts)), Count: h.Count - earlier.Count}
	for i := range d.Counts {
		d.Counts[i] = h.Counts[i] - earlier.Counts[i]
	}
	return d
}

// quantile estimates the q-quantile (0 < q < 1) of the observations in h the way
// PromQL's histogram_quantile does: find the bucket the rank q·Count falls in and
// interpolate linearly inside it, the lowest bucket starting at 0. A rank in the +Inf
// bucket answers the highest finite bound. ok is false for an empty histogram.
func (h histogram) quantile(q float64) (v float64, ok bool) {
	if h.Count <= 0 || len(h.Bounds) == 0 {
		return 0, false
	}
	rank := q * h.Count
	lower, below := 0.0, 0.0
	for i, upper := range h.Bounds {
		if h.Counts[i] >= rank {
			inBucket := h.Counts[i] - below
			if inBucket <= 0 {
				return upper, true
			}
			return lower + (upper-lower)*(rank-below)/inBucket, true
		}
		lower, below = upper, h.Counts[i]
	}
	return h.Bounds[len(h.Bounds)-1], true
}

// increase is how much a counter rose from earlier to now; a counter that went down was
// reset (its process restarted), so all of now is new, as in PromQL's increase().
func increase(earlier, now float64) float64 {
	if now < earlier {
		return now
	}
	return now - earlier
}

// reduce keeps of families what the system page shows, adding it to s.
func (s *sample) reduce(families []*dto.MetricFamily) {
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			component := labelValue(m, "component")
			switch mf.GetName() {
			case famHTTPRequests:
				s.Requests[component] += m.GetCounter().GetValue()
			case famHTTPDuration:
				if h, ok := histogramOf(m); ok {
					if sum, ok := s.Duration[component].add(h); ok {
						s.Duration[component] = sum
					}
				}
			case famSubPosition, famSubLag:
				st := s.Subs[component]
				v := m.GetGauge().GetValue()
				if mf.GetName() == famSubLag {
					st.Lag = max(st.Lag, v)
				} else if !st.positioned || v < st.Position {
					st.Position, st.positioned = v, true
				}
				s.Subs[component] = st
			case famDeadLettered:
				s.Dead[deadKey{component, labelValue(m, "queue")}] += m.GetCounter().GetValue()
			case famOrders:
				s.Orders[labelValue(m, "outcome")] += m.GetCounter().GetValue()
			case famSaga:
				if h, ok := histogramOf(m); ok {
					if sum, ok := s.Saga.add(h); ok {
						s.Saga, s.HasSaga = sum, true
					}
				}
			}
		}
	}
}

// histogramOf is m's histogram, its +Inf bucket dropped (Count holds it).
func histogramOf(m *dto.Metric) (histogram, bool) {
	ph := m.GetHistogram()
	if ph == nil {
		return histogram{}, false
	}
	h := histogram{Count: float64(ph.GetSampleCount())}
	for _, b := range ph.GetBucket() {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue
		}
		h.Bounds = append(h.Bounds, b.GetUpperBound())
		h.Counts = append(h.Counts, float64(b.GetCumulativeCount()))
	}
	return h, true
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sampler gathers the sources every sampleEvery and keeps the samples of the last
// historySpan. Its methods are safe for concurrent use.
type sampler struct {
	sources []telemetry.Source
	logger  *slog.Logger

	mu      sync.Mutex
	samples []*sample // oldest first, at most historySpan/sampleEvery+1
}

func newSampler(sources []telemetry.Source, logger *slog.Logger) *sampler {
	return &sampler{sources: sources, logger: logger}
}

// run samples at once, then every sampleEvery until ctx is done.
func (s *sampler) run(ctx context.Context) {
	if len(s.sources) == 0 {
		return
	}
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		s.record(s.gather(ctx))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gather reads every source at once and reduces them into one sample. A source that
// fails is named in the sample's Failed (and logged once it starts failing: a process
// that is down is worth a warning, not one every 2 s).
func (s *sampler) gather(ctx context.Context) *sample {
	smp := &sample{At: time.Now(), Requests: map[string]float64{}, Duration: map[string]histogram{},
		Subs: map[string]subState{}, Dead: map[deadKey]float64{}, Orders: map[string]float64{}}
	results := make([][]*dto.MetricFamily, len(s.sources))
	errs := make([]error, len(s.sources))
	var wg sync.WaitGroup
	for i, src := range s.sources {
		wg.Go(func() {
			gctx, cancel := context.WithTimeout(ctx, gatherTimeout)
			defer cancel()
			results[i], errs[i] = src.Gather(gctx)
		})
	}
	wg.Wait()
	prev := s.latest()
	for i, err := range errs {
		if err != nil {
			smp.Failed = append(smp.Failed, err.Error())
			if ctx.Err() == nil && (prev == nil || !slices.Contains(prev.Failed, err.Error())) {
				s.logger.Warn("system page: a metrics source failed", "source", s.sources[i].Name(), "error", err)
			}
			continue
		}
		smp.reduce(results[i])
	}
	return smp
}

// record keeps smp, dropping the samples older than historySpan before it.
func (s *sampler) record(smp *sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, smp)
	cut := 0
	for cut < len(s.samples) && smp.At.Sub(s.samples[cut].At) > historySpan {
		cut++
	}
	s.samples = slices.Delete(s.samples, 0, cut)
}

// history returns the samples kept, oldest first. The caller must not change them.
func (s *sampler) history() []*sample {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

func (s *sampler) latest() *sample {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return nil
	}
	return s.samples[len(s.samples)-1]
}

// sourceNames says where s reads from, for the page.
func (s *sampler) sourceNames() []string {
	if s == nil {
		return nil
	}
	names := make([]string, len(s.sources))
	for i, src := range s.sources {
		names[i] = src.Name()
	}
	return names
}

// handleSystem serves GET /system: the system page, or only its panels for htmx's poll
// (web.IsFragmentRequest), from the samples kept. It reads no source itself, so a poll
// costs no scrape.
func (s *server) handleSystem(w http.ResponseWriter, r *http.Request) {
	v := buildSystemView(s.system.history(), s.system.sourceNames())
	if web.IsFragmentRequest(r) {
		s.site.Render(w, r, http.StatusOK, "System", systemPanels(v))
		return
	}
	s.site.Render(w, r, http.StatusOK, "System", systemPage(v))
}

// systemSources are where the system page reads metrics: this process's registry (when
// metrics are on) and every URL of cfg.MetricsSources.
func systemSources(cfg Config) []telemetry.Source {
	var sources []telemetry.Source
	if local := telemetry.Local(cfg.Metrics); local != nil {
		sources = append(sources, local)
	}
	client := &http.Client{Timeout: gatherTimeout}
	for _, u := range cfg.MetricsSources {
		sources = append(sources, telemetry.Remote{URL: u, Client: client})
	}
	return sources
}
