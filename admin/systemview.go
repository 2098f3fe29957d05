package admin

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// The windows of the system page's figures. A plot's point at time t is the rate (or
// p99) of the pointWindow before t, like rate(x[10s]) evaluated every 2 s; the tables'
// figures are over the last tableWindow.
const (
	pointWindow = 10 * time.Second
	tableWindow = time.Minute
)

// systemView is the system page: every panel, from the sampler's history.
type systemView struct {
	Sources []string // where the figures come from
	// SourcesText lists Sources for a sentence: "this process, http://order:9464/metrics".
	SourcesText string
	Failed      []string // sources that failed at the latest sample
	// Empty says why there is nothing to show (metrics off, no sample yet), or "".
	Empty  string
	Span   string // how long the plots reach back: "the last 4 min"
	Poll   string // the fragment's URL, polled every sampleEvery
	Every  string // "every 2s", for hx-trigger
	Taken  string // the latest sample's time
	HTTP   []componentRow
	Rate   lineChart
	P99    lineChart
	Subs   []subRow
	Lag    lineChart
	Dead   []deadQueueRow
	DeadTL lineChart
	Orders []outcomeRow
	Decide lineChart // orders decided per second, by outcome
	Saga   barChart
	// SagaSummary is the saga's p50 and p99 over the plot's span, or "".
	SagaSummary string
}

type componentRow struct {
	Class, Name, Rate, P99, Total string
}

type subRow struct {
	Class, Name, Position, Lag, MaxLag string
	Behind                             bool // lag > 0 now
}

type deadQueueRow struct {
	Component, Queue, Total, Recent string
	Recently                        bool // some in the plots' span
}

type outcomeRow struct {
	Class, Outcome, Total, Recent string
}

// The plots' geometry, in SVG user units (the viewBox; CSS scales it).
const (
	chartW, chartH          = 560.0, 170.0
	plotLeft, plotRight     = 60.0, 10.0
	plotTop, plotBottom     = 10.0, 24.0
	plotWidth, plotHeight   = chartW - plotLeft - plotRight, chartH - plotTop - plotBottom
	chartViewBox            = "0 0 560 170"
	chartTickLabelOffset    = 6.0
	chartXLabelBaselineDown = 16.0
	// A bar chart has room below for its buckets' labels, slanted.
	barViewBox         = "0 0 560 210"
	barLabelBelowPlot  = 10.0
	barLabelSlantAngle = "-40"
)

// lineChart is one plot over time: lines (each one or more polylines, split where a
// point is missing), the axes' ticks, and what to say when there is no line.
type lineChart struct {
	ID, Title, Empty string
	Lines            []chartLine
	YTicks, XTicks   []chartTick
}

type chartLine struct {
	Class, Name, Last string
	Segments          []string // SVG points attributes
	Dots              []chartDot
}

// chartDot marks a lone point (a segment of one point draws no line).
type chartDot struct{ X, Y string }

type chartTick struct{ X, Y, Label string }

// barChart is a histogram's buckets as bars.
type barChart struct {
	ID, Title, Empty string
	Bars             []chartBar
	YTicks           []chartTick
}

type chartBar struct {
	X, Y, W, H, LabelX, LabelY, Label, Count string
	// LabelTransform slants the label about its anchor, so that many buckets' fit.
	LabelTransform string
}

// Sizes that chart strings use.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// seriesClass is the CSS class of component's (or outcome's) line: one colour per name
// on every plot.
func seriesClass(name string) string {
	for i, c := range registry.Components() {
		if c.Name == name {
			return "series-" + strconv.Itoa(i)
		}
	}
	switch name {
	case telemetry.OutcomeApproved:
		return "series-ok"
	case telemetry.OutcomeRejected:
		return "series-bad"
	case telemetry.OutcomeTimedOut:
		return "series-wait"
	}
	return "series-other"
}

// buildSystemView makes the page from history (oldest first), which sources filled.
func buildSystemView(history []*sample, sources []string) systemView {
	v := systemView{Sources: sources, SourcesText: cmp.Or(strings.Join(sources, ", "), "no source"),
		Poll: "/system", Every: "every " + sampleEvery.String()}
	switch {
	case len(sources) == 0:
		v.Empty = "Metrics are off in this process (METRICS_ADDR is empty) and METRICS_SOURCES names no other, so there is nothing to show."
		return v
	case len(history) == 0:
		v.Empty = "No sample yet: the first is taken as the site starts, then one every " + sampleEvery.String() + "."
		return v
	}
	last := history[len(history)-1]
	v.Failed = last.Failed
	v.Taken = last.At.Format("15:04:05")
	span := last.At.Sub(history[0].At)
	v.Span = "the last " + roundSpan(span)
	x := newTimeAxis(history)
	names := componentsIn(history, func(s *sample) []string { return slices.Collect(maps.Keys(s.Requests)) })

	// Requests: rate and p99 per component.
	recent := history[startOf(history, tableWindow):]
	var rate, p99 []series
	for _, c := range names {
		row := componentRow{Class: seriesClass(c), Name: c, Rate: "no data", P99: "no data", Total: "no data"}
		if t, ok := last.Requests[c]; ok {
			row.Total = strconv.FormatFloat(t, 'f', 0, 64)
		}
		requests := func(s *sample) (float64, bool) { v, ok := s.Requests[c]; return v, ok }
		duration := func(s *sample) (histogram, bool) { h, ok := s.Duration[c]; return h, ok }
		if r, ok := counterRate(recent, requests); ok {
			row.Rate = formatRate(r)
		}
		if q, ok := histogramSince(recent, duration).quantile(0.99); ok {
			row.P99 = formatSeconds(q)
		} else if row.Rate != "no data" {
			row.P99 = "no requests" // measured, but none answered in the window
		}
		v.HTTP = append(v.HTTP, row)
		rate = append(rate, series{name: c, points: pointsOf(history, func(window []*sample) (float64, bool) {
			return counterRate(window, requests)
		})})
		p99 = append(p99, series{name: c, points: pointsOf(history, func(window []*sample) (float64, bool) {
			return histogramSince(window, duration).quantile(0.99)
		})})
	}
	v.Rate = plotLines("chart-rate", "Requests per second", "No HTTP requests measured yet.", rate, x, formatRate)
	v.P99 = plotLines("chart-p99", "p99 latency", "No HTTP requests measured yet.", p99, x, formatSeconds)

	// Subscriptions: lag now, its largest in the span, and over time.
	var lag []series
	for _, c := range componentsIn(history, func(s *sample) []string { return slices.Collect(maps.Keys(s.Subs)) }) {
		st, ok := last.Subs[c]
		row := subRow{Class: seriesClass(c), Name: c, Position: "no data", Lag: "no data"}
		if ok {
			row.Position, row.Lag, row.Behind = strconv.FormatFloat(st.Position, 'f', 0, 64), strconv.FormatFloat(st.Lag, 'f', 0, 64), st.Lag > 0
		}
		worst := 0.0
		for _, s := range history {
			worst = max(worst, s.Subs[c].Lag)
		}
		row.MaxLag = strconv.FormatFloat(worst, 'f', 0, 64)
		v.Subs = append(v.Subs, row)
		lag = append(lag, series{name: c, points: gaugePoints(history, func(s *sample) (float64, bool) { st, ok := s.Subs[c]; return st.Lag, ok })})
	}
	v.Lag = plotLines("chart-lag", "Subscription lag (events)", "No subscription measured: no service with a read model reports to these sources.", lag, x, formatCount)

	// Dead letters: per queue, and per component over time.
	deadKeys := slices.Collect(maps.Keys(last.Dead))
	slices.SortFunc(deadKeys, func(a, b deadKey) int { return strings.Compare(a.Component+" "+a.Queue, b.Component+" "+b.Queue) })
	for _, k := range deadKeys {
		n, _ := counterIncrease(history, func(s *sample) (float64, bool) { v, ok := s.Dead[k]; return v, ok })
		v.Dead = append(v.Dead, deadQueueRow{Component: k.Component, Queue: k.Queue, Total: formatCount(last.Dead[k]),
			Recent: formatCount(n), Recently: n > 0})
	}
	var dead []series
	for _, c := range componentsIn(history, func(s *sample) []string {
		var cs []string
		for k := range s.Dead {
			cs = append(cs, k.Component)
		}
		return cs
	}) {
		dead = append(dead, series{name: c, points: gaugePoints(history, func(s *sample) (float64, bool) {
			total, seen := 0.0, false
			for k, n := range s.Dead {
				if k.Component == c {
					total, seen = total+n, true
				}
			}
			return total, seen
		})})
	}
	v.DeadTL = plotLines("chart-dead", "Dead letters (total)", "No consumer reports dead letters to these sources.", dead, x, formatCount)

	// Orders: decided per outcome.
	var decided []series
	for _, o := range []string{telemetry.OutcomeApproved, telemetry.OutcomeRejected, telemetry.OutcomeTimedOut} {
		total, ok := last.Orders[o]
		if !ok {
			continue
		}
		orders := func(s *sample) (float64, bool) { v, ok := s.Orders[o]; return v, ok }
		n, _ := counterIncrease(history, orders)
		v.Orders = append(v.Orders, outcomeRow{Class: seriesClass(o), Outcome: strings.ReplaceAll(o, "_", " "), Total: formatCount(total), Recent: formatCount(n)})
		decided = append(decided, series{name: strings.ReplaceAll(o, "_", " "), class: seriesClass(o), points: pointsOf(history, func(window []*sample) (float64, bool) {
			return counterRate(window, orders)
		})})
	}
	v.Decide = plotLines("chart-orders", "Orders decided per second", "The order service reports to none of these sources.", decided, x, formatRate)

	// The saga's duration: the histogram of the span's decisions.
	v.Saga = barChart{ID: "chart-saga", Title: "Saga duration, placed to decided (" + v.Span + ")"}
	switch {
	case !last.HasSaga:
		v.Saga.Empty = "The order service reports to none of these sources."
	default:
		h := histogramSince(history, func(s *sample) (histogram, bool) { return s.Saga, s.HasSaga })
		if h.Count == 0 {
			v.Saga.Empty = "No order was decided in " + v.Span + "."
			break
		}
		v.Saga = plotBars(v.Saga, h)
		p50, _ := h.quantile(0.5)
		p99, _ := h.quantile(0.99)
		v.SagaSummary = fmt.Sprintf("%s orders: p50 %s, p99 %s", formatCount(h.Count), formatSeconds(p50), formatSeconds(p99))
	}
	return v
}

// series is one line's points before they are placed on a plot.
type series struct {
	name, class string
	points      []point
}

type point struct {
	at time.Time
	v  float64
	ok bool
}

// pointsOf computes a point at every sample but the first from the window of samples
// that ends with it and reaches back pointWindow (at least two samples).
func pointsOf(history []*sample, f func(window []*sample) (float64, bool)) []point {
	pts := make([]point, 0, len(history))
	from := 0
	for i, s := range history {
		for from < i && s.At.Sub(history[from].At) > pointWindow {
			from++
		}
		if i == 0 {
			continue
		}
		v, ok := f(history[min(from, i-1) : i+1])
		pts = append(pts, point{at: s.At, v: v, ok: ok})
	}
	return pts
}

// gaugePoints is a gauge's value at every sample.
func gaugePoints(history []*sample, f func(*sample) (float64, bool)) []point {
	pts := make([]point, len(history))
	for i, s := range history {
		v, ok := f(s)
		pts[i] = point{at: s.At, v: v, ok: ok}
	}
	return pts
}

// baseline is the index of the sample of window that a counter's or histogram's
// increase starts from: the earliest, if it has the series or it is complete (no source
// failed, so the series did not exist yet and counted 0: it was created, at 0, after that
// sample), else the earliest that has it; -1 if none. So an order decided between the
// sample before the order service's series appeared and the next counts, and a source
// that failed does not make its whole value look new.
func baseline[V any](window []*sample, value func(*sample) (V, bool)) int {
	if _, ok := value(window[0]); ok || len(window[0].Failed) == 0 {
		return 0
	}
	for i, s := range window {
		if _, ok := value(s); ok {
			return i
		}
	}
	return -1
}

// counterIncrease is how much a counter rose over window (oldest first), from its
// baseline to the latest sample (a counter missing from a complete sample counts 0
// there). Not ok if the latest sample lacks it (its source failed) or there is no
// earlier sample to start from.
func counterIncrease(window []*sample, value func(*sample) (float64, bool)) (n float64, ok bool) {
	from, to := baseline(window, value), len(window)-1
	b, okB := value(window[to])
	if from < 0 || from == to || !okB {
		return 0, false
	}
	a, _ := value(window[from])
	return increase(a, b), true
}

// counterRate is counterIncrease per second of the samples' span.
func counterRate(window []*sample, value func(*sample) (float64, bool)) (float64, bool) {
	n, ok := counterIncrease(window, value)
	if !ok {
		return 0, false
	}
	dt := window[len(window)-1].At.Sub(window[baseline(window, value)].At).Seconds()
	if dt <= 0 {
		return 0, false
	}
	return n / dt, true
}

// histogramSince is the observations a histogram made over window: the bucket deltas
// from its baseline to the latest sample; empty (no quantile) if the latest lacks it or
// there is no earlier sample to start from.
func histogramSince(window []*sample, value func(*sample) (histogram, bool)) histogram {
	from, to := baseline(window, value), len(window)-1
	b, okB := value(window[to])
	if from < 0 || from == to || !okB {
		return histogram{}
	}
	a, _ := value(window[from]) // the zero histogram if the series was not there yet
	return b.since(a)
}

// startOf is the index of the earliest sample within window of the latest.
func startOf(history []*sample, window time.Duration) int {
	last := history[len(history)-1].At
	i := 0
	for i < len(history)-1 && last.Sub(history[i].At) > window {
		i++
	}
	return i
}

// timeAxis places times on a plot that ends at the latest sample and reaches back over
// the history kept (at least a minute, at most historySpan), so that a young history
// is not squeezed into the right edge.
type timeAxis struct {
	end  time.Time
	span time.Duration
}

func newTimeAxis(history []*sample) timeAxis {
	end := history[len(history)-1].At
	span := min(max(end.Sub(history[0].At), time.Minute), historySpan)
	return timeAxis{end: end, span: span}
}

func (t timeAxis) x(at time.Time) float64 {
	back := t.end.Sub(at).Seconds() / t.span.Seconds()
	return plotLeft + plotWidth*(1-back)
}

// ticks are at most 6, a round step apart, back from now.
func (t timeAxis) ticks() []chartTick {
	step := 2 * time.Minute
	for _, s := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute} {
		if t.span/s <= 5 {
			step = s
			break
		}
	}
	var ticks []chartTick
	for back := time.Duration(0); back <= t.span; back += step {
		label := "now"
		switch {
		case back >= time.Minute:
			label = "−" + strconv.Itoa(int(back.Minutes())) + " min"
		case back > 0:
			label = "−" + strconv.Itoa(int(back.Seconds())) + " s"
		}
		ticks = append(ticks, chartTick{X: num(t.x(t.end.Add(-back))), Label: label})
	}
	return ticks
}

// plotLines places lines on a plot whose y axis runs from 0 to a round number at or above
// every point.
func plotLines(id, title, empty string, lines []series, x timeAxis, format func(float64) string) lineChart {
	c := lineChart{ID: id, Title: title, XTicks: x.ticks()}
	top := 0.0
	for _, l := range lines {
		for _, p := range l.points {
			if p.ok {
				top = max(top, p.v)
			}
		}
	}
	top = niceCeil(top)
	y := func(v float64) float64 { return plotTop + plotHeight*(1-v/top) }
	for _, f := range []float64{0, 0.5, 1} {
		c.YTicks = append(c.YTicks, chartTick{Y: num(y(top * f)), Label: format(top * f)})
	}
	for _, l := range lines {
		cl := chartLine{Class: cmp.Or(l.class, seriesClass(l.name)), Name: l.name, Last: "no data"}
		var seg []string
		flush := func() {
			switch len(seg) {
			case 0:
			case 1:
				xy := strings.Split(seg[0], ",")
				cl.Dots = append(cl.Dots, chartDot{X: xy[0], Y: xy[1]})
			default:
				cl.Segments = append(cl.Segments, strings.Join(seg, " "))
			}
			seg = nil
		}
		for _, p := range l.points {
			if !p.ok {
				flush()
				continue
			}
			// Whole units: a unit is about a pixel, and a line of 300 points stays short.
			seg = append(seg, strconv.Itoa(int(math.Round(x.x(p.at))))+","+strconv.Itoa(int(math.Round(y(p.v)))))
		}
		flush()
		if n := len(l.points); n > 0 && l.points[n-1].ok {
			cl.Last = format(l.points[n-1].v)
		}
		if len(cl.Segments)+len(cl.Dots) > 0 {
			c.Lines = append(c.Lines, cl)
		}
	}
	if len(c.Lines) == 0 {
		c.Empty = empty
	}
	return c
}

// plotBars draws h's buckets (not cumulative) as bars, the +Inf bucket last.
func plotBars(c barChart, h histogram) barChart {
	counts := make([]float64, 0, len(h.Bounds)+1)
	labels := make([]string, 0, len(h.Bounds)+1)
	below := 0.0
	for i, b := range h.Bounds {
		counts = append(counts, h.Counts[i]-below)
		labels = append(labels, "≤"+formatSeconds(b))
		below = h.Counts[i]
	}
	counts = append(counts, h.Count-below)
	labels = append(labels, ">"+formatSeconds(h.Bounds[len(h.Bounds)-1]))
	top := niceCeil(slices.Max(counts))
	for _, f := range []float64{0, 0.5, 1} {
		c.YTicks = append(c.YTicks, chartTick{Y: num(plotTop + plotHeight*(1-f)), Label: formatCount(top * f)})
	}
	slot := plotWidth / float64(len(counts))
	for i, n := range counts {
		hgt := plotHeight * n / top
		x := plotLeft + slot*float64(i)
		lx, ly := num(x+slot/2), num(plotTop+plotHeight+barLabelBelowPlot)
		c.Bars = append(c.Bars, chartBar{X: num(x + 2), Y: num(plotTop + plotHeight - hgt), W: num(slot - 4), H: num(hgt),
			LabelX: lx, LabelY: ly, LabelTransform: "rotate(" + barLabelSlantAngle + " " + lx + " " + ly + ")",
			Label: labels[i], Count: formatCount(n)})
	}
	return c
}

// niceCeil is the smallest of 1, 2, 2.5, 5 times a power of ten at or above v (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= v*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// componentsIn is every name names finds in a sample of history, in the order of
// registry.Components (others after, sorted).
func componentsIn(history []*sample, names func(*sample) []string) []string {
	seen := map[string]bool{}
	for _, s := range history {
		for _, n := range names(s) {
			seen[n] = true
		}
	}
	var out []string
	for _, c := range registry.Components() {
		if seen[c.Name] {
			out = append(out, c.Name)
			delete(seen, c.Name)
		}
	}
	return append(out, slices.Sorted(maps.Keys(seen))...)
}

func formatRate(v float64) string {
	switch {
	case v == 0:
		return "0/s"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64) + "/s"
	default:
		return strconv.FormatFloat(v, 'f', 0, 64) + "/s"
	}
}

// formatSeconds shows a duration in seconds in the unit that suits it.
func formatSeconds(v float64) string {
	d := time.Duration(v * float64(time.Second))
	switch {
	case v == 0:
		return "0"
	case d < time.Millisecond:
		return strconv.FormatFloat(v*1e6, 'f', 0, 64) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(v*1e3, 'g', 3, 64) + " ms"
	default:
		return strconv.FormatFloat(v, 'g', 3, 64) + " s"
	}
}

func formatCount(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// roundSpan says how long span is, roughly: "40 s", "4 min".
func roundSpan(span time.Duration) string {
	if span < 2*time.Minute {
		return strconv.Itoa(int(span.Round(time.Second).Seconds())) + " s"
	}
	return strconv.Itoa(int(span.Round(time.Minute).Minutes())) + " min"
}
