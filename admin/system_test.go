package admin

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
	"github.com/msdemo/msdemo/internal/testenv"
)

// The histogram_quantile examples: bounds 1, 2, 4 (+Inf), cumulative counts.
func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		h      histogram
		q      float64
		want   float64
		wantOK bool
	}{
		{"empty", histogram{Bounds: []float64{1, 2, 4}, Counts: []float64{0, 0, 0}}, 0.99, 0, false},
		{"no buckets", histogram{Count: 3}, 0.5, 0, false},
		{"lowest bucket starts at 0", histogram{Bounds: []float64{1, 2, 4}, Counts: []float64{10, 10, 10}, Count: 10}, 0.5, 0.5, true},
		{"interpolated in the second bucket", histogram{Bounds: []float64{1, 2, 4}, Counts: []float64{50, 100, 100}, Count: 100}, 0.75, 1.5, true},
		{"p99 in the third bucket", histogram{Bounds: []float64{1, 2, 4}, Counts: []float64{0, 0, 100}, Count: 100}, 0.99, 2 + 2*0.99, true},
		{"rank in +Inf answers the highest bound", histogram{Bounds: []float64{1, 2, 4}, Counts: []float64{10, 20, 30}, Count: 100}, 0.99, 4, true},
		{"rank exactly at a bucket's top", histogram{Bounds: []float64{1, 2, 4}, Counts: []float64{50, 100, 100}, Count: 100}, 0.5, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.h.quantile(tc.q)
			if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("quantile(%v): got %v %v, want %v %v", tc.q, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// p99 comes from the buckets' deltas between two samples: observations before the
// earlier sample do not count.
func TestHistogramSince(t *testing.T) {
	t.Parallel()
	bounds := []float64{0.01, 0.1, 1}
	for _, tc := range []struct {
		name           string
		earlier, later histogram
		want           histogram
		wantP99        float64
	}{
		{"only the new observations",
			histogram{Bounds: bounds, Counts: []float64{1000, 1000, 1000}, Count: 1000}, // 1000 fast ones, long ago
			histogram{Bounds: bounds, Counts: []float64{1000, 1000, 1010}, Count: 1010}, // then 10 slow ones
			histogram{Bounds: bounds, Counts: []float64{0, 0, 10}, Count: 10}, 0.1 + 0.9*0.99},
		{"a reset (the process restarted) counts all of the later",
			histogram{Bounds: bounds, Counts: []float64{5, 8, 9}, Count: 9},
			histogram{Bounds: bounds, Counts: []float64{2, 2, 2}, Count: 2},
			histogram{Bounds: bounds, Counts: []float64{2, 2, 2}, Count: 2}, 0.01 * 0.99},
		{"other bounds count all of the later",
			histogram{Bounds: []float64{1}, Counts: []float64{1}, Count: 1},
			histogram{Bounds: bounds, Counts: []float64{4, 4, 4}, Count: 4},
			histogram{Bounds: bounds, Counts: []float64{4, 4, 4}, Count: 4}, 0.01 * 0.99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.later.since(tc.earlier)
			if !slices.Equal(got.Counts, tc.want.Counts) || got.Count != tc.want.Count {
				t.Errorf("since: got %+v, want %+v", got, tc.want)
			}
			if p99, ok := got.quantile(0.99); !ok || math.Abs(p99-tc.wantP99) > 1e-9 {
				t.Errorf("p99: got %v %v, want %v", p99, ok, tc.wantP99)
			}
		})
	}
}

func TestCounterRate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	smp := func(sec int, requests ...float64) *sample {
		s := &sample{At: at.Add(time.Duration(sec) * time.Second), Requests: map[string]float64{}}
		if len(requests) > 0 {
			s.Requests["order"] = requests[0]
		}
		return s
	}
	failed := func(s *sample) *sample { s.Failed = []string{"order is down"}; return s }
	order := func(s *sample) (float64, bool) { v, ok := s.Requests["order"]; return v, ok }
	for _, tc := range []struct {
		name   string
		window []*sample
		want   float64
		wantOK bool
	}{
		{"steady", []*sample{smp(0, 100), smp(10, 150)}, 5, true},
		{"idle", []*sample{smp(0, 100), smp(2, 100)}, 0, true},
		{"reset: the later value is all new", []*sample{smp(0, 100), smp(10, 30)}, 3, true},
		{"appears meanwhile: 0 before it, in a complete sample", []*sample{smp(0), smp(2, 10), smp(10, 30)}, 3, true},
		{"appears in the latest", []*sample{smp(0), smp(10, 30)}, 3, true},
		{"missing from a sample whose source failed: counted from its first", []*sample{failed(smp(0)), smp(2, 10), smp(6, 30)}, 5, true},
		{"only in the latest, after a failure", []*sample{failed(smp(0)), smp(10, 30)}, 0, false},
		{"missing in the latest (its source failed)", []*sample{smp(0, 10), smp(10)}, 0, false},
		{"one sample", []*sample{smp(0, 10)}, 0, false},
		{"no time between", []*sample{smp(5, 10), smp(5, 20)}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := counterRate(tc.window, order)
			if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("got %v %v, want %v %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want float64 }{
		{0, 1}, {-3, 1}, {math.NaN(), 1}, {0.003, 0.005}, {1, 1}, {1.01, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {10, 10}, {180, 200}, {2400, 2500},
	} {
		if got := niceCeil(tc.in); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("niceCeil(%v): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

// A sample adds up one component's series over routes and sources (replicas), keeps the
// replica furthest behind for a subscription, and reads the families it shows.
func TestSampleReduce(t *testing.T) {
	t.Parallel()
	replica := func(requests, lag, position float64, fast, slow uint64) []*dto.MetricFamily {
		return []*dto.MetricFamily{
			counterFamily(famHTTPRequests, requests/2, "component", "order", "route", "/orders", "code", "202"),
			counterFamily(famHTTPRequests, requests/2, "component", "order", "route", "/orders/{id}", "code", "200"),
			histogramFamily(famHTTPDuration, []float64{0.1, 1}, []uint64{fast, fast + slow}, fast+slow, "component", "order", "route", "/orders"),
			gaugeFamily(famSubLag, lag, "component", "order"),
			gaugeFamily(famSubPosition, position, "component", "order"),
			counterFamily(famDeadLettered, 1, "component", "order", "queue", "order.events"),
			counterFamily(famOrders, 3, "component", "order", "outcome", "approved"),
			histogramFamily(famSaga, []float64{0.1, 1}, []uint64{2, 3}, 3, "component", "order"),
		}
	}
	s := &sample{Requests: map[string]float64{}, Duration: map[string]histogram{}, Subs: map[string]subState{},
		Dead: map[deadKey]float64{}, Orders: map[string]float64{}}
	s.reduce(replica(10, 4, 96, 5, 1))
	s.reduce(replica(20, 0, 100, 7, 0))
	if got := s.Requests["order"]; got != 30 {
		t.Errorf("requests: got %v, want 30", got)
	}
	if got := s.Duration["order"]; !slices.Equal(got.Counts, []float64{12, 13}) || got.Count != 13 {
		t.Errorf("duration: got %+v, want counts [12 13] of 13", got)
	}
	if got := s.Subs["order"]; got.Lag != 4 || got.Position != 96 {
		t.Errorf("subscription: got lag %v position %v, want the replica behind: lag 4 position 96", got.Lag, got.Position)
	}
	if got := s.Dead[deadKey{"order", "order.events"}]; got != 2 {
		t.Errorf("dead letters: got %v, want 2", got)
	}
	if got := s.Orders["approved"]; got != 6 {
		t.Errorf("approved orders: got %v, want 6", got)
	}
	if !s.HasSaga || s.Saga.Count != 6 {
		t.Errorf("saga: got %+v (has %v), want 6 observations", s.Saga, s.HasSaga)
	}
}

// fakeSource is a source whose families a test sets.
type fakeSource struct {
	families []*dto.MetricFamily
	err      error
}

func (f *fakeSource) Gather(context.Context) ([]*dto.MetricFamily, error) { return f.families, f.err }
func (f *fakeSource) Name() string                                        { return "fake" }

// The view from a history: each panel has its figures, and says "no data" where a
// source has nothing for it.
func TestBuildSystemView(t *testing.T) {
	t.Parallel()
	if v := buildSystemView(nil, nil); v.Empty == "" {
		t.Error("no source: got no Empty message, want one")
	}
	if v := buildSystemView(nil, []string{"this process"}); v.Empty == "" {
		t.Error("no sample yet: got no Empty message, want one")
	}

	src := &fakeSource{}
	s := newSampler([]telemetry.Source{src}, testenv.Logger(t))
	at := time.Now().Add(-time.Minute)
	for i := range 10 {
		n := float64(i * 20) // 20 requests every 2 s: 10/s, all within 0.1 s
		src.families = []*dto.MetricFamily{
			counterFamily(famHTTPRequests, n, "component", "gateway", "route", "/order/orders", "code", "202"),
			histogramFamily(famHTTPDuration, []float64{0.1, 1}, []uint64{uint64(n), uint64(n)}, uint64(n), "component", "gateway", "route", "/order/orders"),
			gaugeFamily(famSubLag, float64(i%2), "component", "accounting"),
			gaugeFamily(famSubPosition, n, "component", "accounting"),
		}
		smp := s.gather(context.Background())
		smp.At = at.Add(time.Duration(i) * sampleEvery)
		s.record(smp)
	}
	src.err = errors.New("order is down")
	smp := s.gather(context.Background())
	smp.At = at.Add(10 * sampleEvery)
	s.record(smp)
	v := buildSystemView(s.history(), s.sourceNames())
	if len(v.Failed) != 1 {
		t.Errorf("failed sources: got %q, want the one that failed last", v.Failed)
	}
	// The last sample failed, so figures come from none: everything is "no data" but the
	// lines drawn so far.
	if len(v.Rate.Lines) != 1 || v.Rate.Lines[0].Last != "no data" {
		t.Errorf("rate chart: got %+v, want one line (gateway) whose latest point is missing", v.Rate.Lines)
	}

	v = buildSystemView(s.history()[:10], s.sourceNames())
	if len(v.HTTP) != 1 || v.HTTP[0].Name != "gateway" || v.HTTP[0].Rate != "10/s" || v.HTTP[0].P99 != "99 ms" {
		t.Errorf("HTTP rows: got %+v, want gateway at 10/s, p99 99 ms", v.HTTP)
	}
	if len(v.Rate.Lines) != 1 || v.Rate.Lines[0].Last != "10/s" || len(v.Rate.Lines[0].Segments) != 1 {
		t.Errorf("rate chart: got %+v, want one unbroken line ending at 10/s", v.Rate.Lines)
	}
	if len(v.Subs) != 1 || v.Subs[0].Name != "accounting" || v.Subs[0].Lag != "1" || !v.Subs[0].Behind || v.Subs[0].MaxLag != "1" {
		t.Errorf("subscriptions: got %+v, want accounting 1 behind", v.Subs)
	}
	for name, c := range map[string]lineChart{"dead letters": v.DeadTL, "orders": v.Decide} {
		if c.Empty == "" || len(c.Lines) != 0 {
			t.Errorf("%s chart: got %+v, want its no-data message (no source has the family)", name, c)
		}
	}
	if v.Saga.Empty == "" {
		t.Errorf("saga chart: got %+v, want its no-data message", v.Saga)
	}
}

func labels(kv ...string) []*dto.LabelPair {
	var ls []*dto.LabelPair
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, &dto.LabelPair{Name: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return ls
}

func counterFamily(name string, v float64, kv ...string) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Label: labels(kv...), Counter: &dto.Counter{Value: proto.Float64(v)}}}}
}

func gaugeFamily(name string, v float64, kv ...string) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Label: labels(kv...), Gauge: &dto.Gauge{Value: proto.Float64(v)}}}}
}

func histogramFamily(name string, bounds []float64, cumulative []uint64, count uint64, kv ...string) *dto.MetricFamily {
	h := &dto.Histogram{SampleCount: proto.Uint64(count)}
	for i, b := range bounds {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(cumulative[i])})
	}
	h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(count)})
	return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_HISTOGRAM.Enum(),
		Metric: []*dto.Metric{{Label: labels(kv...), Histogram: h}}}
}

// The sampler reads this process's registry and another process's /metrics, and adds up
// what both say of one component (two replicas of the order service).
func TestSamplerLocalAndRemote(t *testing.T) {
	t.Parallel()
	here, there := telemetry.New(), telemetry.New()
	here.For("order").ObserveHTTP("/orders", 202, time.Millisecond)
	for range 2 {
		there.For("order").ObserveHTTP("/orders", 202, time.Millisecond)
	}
	there.For("order").OrderDecided(telemetry.OutcomeRejected, time.Now())
	srv := httptest.NewServer(there.Handler())
	t.Cleanup(srv.Close)
	cfg := Config{MetricsSources: []string{srv.URL + "/metrics"}}
	cfg.Metrics = here.For("admin")
	s := newSampler(systemSources(cfg), testenv.Logger(t))
	if got, want := s.sourceNames(), []string{"this process", srv.URL + "/metrics"}; !slices.Equal(got, want) {
		t.Errorf("sources: got %q, want %q", got, want)
	}
	smp := s.gather(t.Context())
	if len(smp.Failed) != 0 {
		t.Fatalf("failed: %q", smp.Failed)
	}
	if got := smp.Requests["order"]; got != 3 {
		t.Errorf("order's requests: got %v, want 3 (1 here, 2 there)", got)
	}
	if got := smp.Orders[telemetry.OutcomeRejected]; got != 1 {
		t.Errorf("rejected orders: got %v, want 1 (there)", got)
	}
	if got := smp.Duration["order"].Count; got != 3 {
		t.Errorf("order's request durations: got %v observations, want 3", got)
	}
}

// BenchmarkSystemPanels is one poll's work with a full history: 10 minutes of samples of
// every component (the view, then the panels' HTML); it reports the fragment's size.
func BenchmarkSystemPanels(b *testing.B) {
	var history []*sample
	at := time.Now().Add(-historySpan)
	bounds := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	for i := range int(historySpan / sampleEvery) {
		s := &sample{At: at.Add(time.Duration(i) * sampleEvery), Requests: map[string]float64{}, Duration: map[string]histogram{},
			Subs: map[string]subState{}, Dead: map[deadKey]float64{}, Orders: map[string]float64{}, HasSaga: true}
		for _, c := range registry.Components() {
			n := float64(i * 40)
			counts := make([]float64, len(bounds))
			for j := range counts {
				counts[j] = n * float64(j+1) / float64(len(bounds))
			}
			s.Requests[c.Name] = n
			s.Duration[c.Name] = histogram{Bounds: bounds, Counts: counts, Count: n}
			s.Subs[c.Name] = subState{Position: n, Lag: float64(i % 3)}
			s.Dead[deadKey{c.Name, c.Name + ".events"}] = float64(i / 100)
		}
		for _, o := range []string{telemetry.OutcomeApproved, telemetry.OutcomeRejected, telemetry.OutcomeTimedOut} {
			s.Orders[o] = float64(i)
		}
		s.Saga = s.Duration[registry.Order]
		history = append(history, s)
	}
	var html []byte
	b.ReportAllocs()
	for b.Loop() {
		var buf bytes.Buffer
		if err := systemPanels(buildSystemView(history, []string{"this process"})).Render(context.Background(), &buf); err != nil {
			b.Fatal(err)
		}
		html = buf.Bytes()
	}
	b.ReportMetric(float64(len(html)), "bytes/fragment")
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, 5) // as routes.go compresses it
	w.Write(html)
	w.Close()
	b.ReportMetric(float64(gz.Len()), "gzip-bytes/fragment")
}
