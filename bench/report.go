package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// report is every figure of one run; it is also the -json output.
type report struct {
	StartedAt  string       `json:"started_at"`
	FinishedAt string       `json:"finished_at"`
	CPUs       int          `json:"cpus"`
	Duration   string       `json:"duration"`
	Customers  int          `json:"customers"`
	Conns      int          `json:"http_conns"`
	Parts      []string     `json:"measured"`
	Saturation saturation   `json:"saturation"`
	Latency    latency      `json:"fixed_rate"`
	AtTarget   *latency     `json:"fixed_rate_at_target,omitempty"` // at targetSagaRate, when that differs
	HTTP       httpRuns     `json:"http"`
	Store      storeRuns    `json:"event_store"`
	Bus        busRuns      `json:"bus"`
	Live       []liveRun    `json:"live_views"`
	History    []historyRun `json:"history"`
	LiveRate   float64      `json:"live_rate_per_sec"`
	RSSIdleMB  float64      `json:"rss_idle_mb"`
	RSSLoadMB  float64      `json:"rss_load_max_mb"`
}

// ran reports whether the run measured part.
func (r *report) ran(part string) bool { return slices.Contains(r.Parts, part) }

// Targets of the issue "Performance, second step" (issue 13): 200 orders/s, saga p99 at
// most 50 ms at half that load, RSS at most 150 MB, 64-writer appends 3 x the raw insert
// rate. The gateway's is the first issue's (0.7 x nginx).
const (
	targetOrdersPerSec = 200
	targetSagaP99Ms    = 50
	targetSagaRate     = targetOrdersPerSec / 2
	targetGatewayNginx = 0.7
	targetAppendRaw    = 3
	targetRSSMB        = 150
)

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// writeTable prints the report as one table, with notes below it.
func (r *report) writeTable(w io.Writer) {
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Each row is numbered by the figure of the issue it reports; rows of measurements
	// that -only left out are not printed.
	partOfRow := map[string]string{"1": partOrders, "2": partOrders, "3": partHTTP, "4": partStore,
		"5": partBroker, "6": partOrders, "7": partOrders, "8": partLive, "9": partHistory}
	row := func(cells ...string) {
		if r.ran(partOfRow[cells[0]]) {
			fmt.Fprintln(t, strings.Join(cells, "\t"))
		}
	}
	sat, lat, h, st, b := r.Saturation, r.Latency, r.HTTP, r.Store, r.Bus
	fmt.Fprintln(t, "#\tmeasure\tvalue\ttarget\t")
	row("1", fmt.Sprintf("orders/s at saturation (%d customers, closed loop)", r.Customers),
		fmt.Sprintf("%.1f/s (%.0f%% approved, %d decided, %d failed)", sat.OrdersPerSec, 100*sat.ApprovedShare, sat.Completed, sat.Failed),
		fmt.Sprintf(">= %d", targetOrdersPerSec), verdict(sat.OrdersPerSec >= targetOrdersPerSec))
	row("1", "  saga placed->decided at saturation, p50 / p99",
		fmt.Sprintf("%.0f / %.0f ms", sat.SagaP50Ms, sat.SagaP99Ms), "", "")
	// The saga target is judged at its own rate: the run at it, or the half-saturation run
	// when that was (about) the same rate.
	judged := lat
	if r.AtTarget != nil {
		judged = *r.AtTarget
	}
	sagaVerdict := verdict(judged.P99Ms <= targetSagaP99Ms && judged.Undecided == 0)
	switch {
	case math.Abs(judged.RatePerSec-targetSagaRate) >= 1 && sat.OrdersPerSec < targetSagaRate:
		sagaVerdict = fmt.Sprintf("MISSED: %d/s is above the saturation", targetSagaRate)
	case math.Abs(judged.RatePerSec-targetSagaRate) >= 1:
		sagaVerdict = fmt.Sprintf("not at %d/s: run -rate %d", targetSagaRate, targetSagaRate)
	}
	latencyRow := func(l latency, target, verdict string) {
		row("2", fmt.Sprintf("placed->approved at %.1f orders/s, p50 / p95 / p99", l.RatePerSec),
			fmt.Sprintf("%.0f / %.0f / %.0f ms (%d placed, %d approved, %d undecided)", l.P50Ms, l.P95Ms, l.P99Ms, l.Placed, l.Approved, l.Undecided),
			target, verdict)
	}
	target := fmt.Sprintf("p99 <= %d ms at %d/s", targetSagaP99Ms, targetSagaRate)
	if r.AtTarget == nil {
		latencyRow(lat, target, sagaVerdict)
	} else {
		latencyRow(lat, "", "")
		latencyRow(*r.AtTarget, target, sagaVerdict)
	}
	row("2", "  POST /order/orders -> 202, p99", fmt.Sprintf("%.1f ms", lat.PostP99Ms), "", "")
	cpu := lat.CPUPerOrderMs
	row("2", fmt.Sprintf("  CPU per order at %.1f orders/s: shop / msdemo / RabbitMQ / PostgreSQL", lat.RatePerSec),
		fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", cpu["msdemo"]+cpu["beam.smp"]+cpu["postgres"]+cpu["redis-server"],
			cpu["msdemo"], cpu["beam.smp"], cpu["postgres"]), "", "")
	for _, x := range []httpRun{h.Gateway, h.Direct, h.Nginx} {
		if x.Skipped != "" {
			row("3", "GET /product/products?limit=50 via "+x.Path, "skipped: "+x.Skipped, "", "")
			continue
		}
		row("3", "GET /product/products?limit=50 via "+x.Path,
			fmt.Sprintf("%.0f req/s, p99 %.1f ms, %d errors", x.RPS, x.P99Ms, x.Errors), "", "")
	}
	if h.Nginx.Skipped == "" && h.Nginx.RPS > 0 {
		row("3", "  gateway / nginx", fmt.Sprintf("%.2f", h.GatewayVsNgx),
			fmt.Sprintf(">= %.1f", targetGatewayNginx), verdict(h.GatewayVsNgx >= targetGatewayNginx))
	}
	row("4", "event store appends over RabbitMQ, 1 writer", fmt.Sprintf("%.0f/s", st.Append1), "", "")
	row("4", "event store appends over RabbitMQ, 16 writers", fmt.Sprintf("%.0f/s", st.Append16), "", "")
	row("4", "event store appends over RabbitMQ, 64 writers", fmt.Sprintf("%.0f/s (%d errors in all)", st.Append64, st.AppendErrors), "", "")
	row("4", "raw insertOne, embedded FerretDB (SQLite), 1 writer, before / after the appends", fmt.Sprintf("%.0f/s (%.0f / %.0f)", st.RawInsert, st.RawBefore, st.RawAfter), "", "")
	row("4", "  16-writer appends / raw inserts", fmt.Sprintf("%.2f", st.Append16Raw), "", "")
	row("4", "  64-writer appends / raw inserts", fmt.Sprintf("%.2f", st.Append64Raw),
		fmt.Sprintf(">= %d", targetAppendRaw), verdict(st.Append64Raw >= targetAppendRaw))
	row("5", "RabbitMQ confirmed persistent publishes, PublishBatch(100)", fmt.Sprintf("%.0f msgs/s", b.BatchRate), "", "")
	row("5", "RabbitMQ confirmed persistent publishes, Publish x64 goroutines", fmt.Sprintf("%.0f msgs/s", b.SingleRate), "", "")
	row("5", "broker messages per order (publishes)", fmt.Sprintf("%d (%d)", b.MessagesPerOrder, b.PublishesPerOrder), "", "")
	row("5", "bus bound for orders; orders/s as a share of it", fmt.Sprintf("%.0f orders/s; %.0f%%", b.OrdersBound, 100*b.OrdersOfBound), "", "")
	row("6", "order.approved stored -> admin SSE client, p50 / p99",
		fmt.Sprintf("%.0f / %.0f ms (%d of %d approvals seen)", lat.SSEP50Ms, lat.SSEP99Ms, lat.SSEReceived, lat.Approved), "", "")
	row("7", "msdemo RSS idle / max under load", fmt.Sprintf("%.0f / %.0f MB", r.RSSIdleMB, r.RSSLoadMB),
		fmt.Sprintf("<= %d MB", targetRSSMB), verdict(r.RSSLoadMB > 0 && r.RSSLoadMB <= targetRSSMB))
	for _, l := range r.Live {
		row("8", fmt.Sprintf("live order list, %d SSE clients: API requests per event", l.Followers),
			fmt.Sprintf("%.2f (%d requests, %d events, %d orders)", l.PerEvent, l.Requests, l.Events, l.Orders), "", "")
		row("8", fmt.Sprintf("  order.approved stored -> %d clients' rows, p50 / p99", l.Followers),
			fmt.Sprintf("%.0f / %.0f ms (%d of %d seen)", l.SSEP50Ms, l.SSEP99Ms, l.Seen, l.Expected), "", "")
	}
	for _, hr := range r.History {
		row("9", fmt.Sprintf("with %d events seeded: orders/s at saturation, saga p99", hr.Seeded),
			fmt.Sprintf("%.1f/s, %.0f ms (seeded at %.0f events/s)", hr.OrdersPerSec, hr.SagaP99Ms, hr.SeedPerSec), "", "")
		row("9", fmt.Sprintf("  placed->approved p99 at %.1f orders/s", hr.RatePerSec),
			fmt.Sprintf("%.0f ms (%d undecided)", hr.P99Ms, hr.Undecided), "", "")
	}
	t.Flush()

	fmt.Fprintf(w, "\nNotes (%d CPUs, shared by the shop, RabbitMQ, PostgreSQL, Redis and the load; -duration %s):\n", r.CPUs, r.Duration)
	note := func(part, format string, args ...any) {
		if r.ran(part) {
			fmt.Fprintf(w, format, args...)
		}
	}
	note(partOrders, "- 2: open loop at %.1f orders/s (half the saturation unless -rate); latency is the order's timeline, approved minus placed_at (event store recorded_at, ms).\n", lat.RatePerSec)
	note(partHTTP, "- 3: %s; nginx worker_processes auto, upstream keepalive 64.\n", h.Gateway.Tool)
	note(partStore, "- 4: raw inserts go to a second embedded FerretDB started in the bench process (the shop's own is not exposed).\n")
	note(partBroker, "- 5: per event of an order: append request + reply + one copy per bound queue. Events: %s; queue copies: %s.\n",
		formatCounts(b.EventsPerOrder), formatCounts(b.QueueCopies))
	note(partLive, "- 8: %g orders/s for half of -duration per run, every client on one shared manager session; the sites call the gateway through a counting proxy (their GATEWAY_URL), the bench directly, so the requests are the sites' own (order reads and the product names of each render).\n", r.LiveRate)
	note(partOrders, "- CPU during the saturation window, %% of one core: %s\n", formatShares(sat.CPU))
	note(partOrders, "- CPU per order at %.1f orders/s, ms (shop = msdemo, RabbitMQ, PostgreSQL and Redis; the rest is the bench and the machine): %s\n", lat.RatePerSec, formatLargestFirst(foldSmall(lat.CPUPerOrderMs, 0.1), "%s %.2f"))
	note(partOrders, "- messages waiting per queue in the middle of the saturation window: %s\n", formatCounts(sat.QueueDepths))
	if len(sat.ByComponent) > 0 {
		fmt.Fprintln(w, "- msdemo's CPU in the saturation window by component (pprof labels; (none): goroutines of no component: the runtime's GC and scheduler, timer callbacks, the metrics listener, the trace exporter), with each one's hottest functions (self time, share of msdemo):")
		for _, c := range sat.ByComponent {
			fmt.Fprintf(w, "    %-12s %5.1f%%  %s\n", c.Component, c.Percent, strings.Join(c.Hottest, ", "))
		}
	}
	if len(sat.Perf) > 0 {
		fmt.Fprintln(w, "- hottest symbols of msdemo (perf, self time):")
		for _, line := range sat.Perf[:min(len(sat.Perf), 25)] {
			fmt.Fprintln(w, "    "+line)
		}
	}
}

// foldSmall returns m with the values under least summed as "other".
func foldSmall(m map[string]float64, least float64) map[string]float64 {
	folded := map[string]float64{}
	for name, v := range m {
		if v < least && name != "msdemo" {
			name = "other"
		}
		folded[name] += v
	}
	return folded
}

func formatCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func formatShares(m map[string]float64) string { return formatLargestFirst(m, "%s %.0f%%") }

// formatLargestFirst prints each name and value of m with format, largest first.
func formatLargestFirst(m map[string]float64, format string) string {
	names := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] > m[b] {
			return -1
		}
		if m[a] < m[b] {
			return 1
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf(format, n, m[n]))
	}
	return strings.Join(parts, ", ")
}
