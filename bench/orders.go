package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pollInterval is how often a customer asks again whether its order is decided, when the
// order service answered before the decision (its wait ended) or not at all.
const pollInterval = 100 * time.Millisecond

// decisionWait asks the order service to answer GET /order/orders/{id} once the order is
// decided (RFC 7240 "Prefer: wait", at most 20 s): a customer learns of the decision in one
// request, as a browser on the storefront does by SSE, instead of polling.
var decisionWait = http.Header{"Prefer": {"wait=20"}}

// orderView is what GET /order/orders/{id} answers, as far as the bench reads it. Its
// times are the event store's recorded_at of each event (millisecond precision).
type orderView struct {
	ID       string    `json:"id"`
	Status   string    `json:"status"`
	PlacedAt time.Time `json:"placed_at"`
	Timeline []struct {
		Step string    `json:"step"`
		At   time.Time `json:"at"`
	} `json:"timeline"`
}

func (o orderView) decided() bool { return o.Status == "approved" || o.Status == "rejected" }

// at is when the timeline reached step, zero if it did not.
func (o orderView) at(step string) time.Time {
	for _, st := range o.Timeline {
		if st.Step == step {
			return st.At
		}
	}
	return time.Time{}
}

// saturation is the closed-loop run.
type saturation struct {
	OrdersPerSec  float64            `json:"orders_per_sec"` // approved + rejected, decided in the window
	ApprovedShare float64            `json:"approved_share"`
	Completed     int                `json:"completed"`
	Failed        int                `json:"failed"` // placements or polls that failed
	SagaP50Ms     float64            `json:"saga_p50_ms"`
	SagaP99Ms     float64            `json:"saga_p99_ms"`
	CPU           map[string]float64 `json:"cpu_percent_of_one_core"` // by process name
	Perf          []string           `json:"perf_top,omitempty"`      // hottest symbols of msdemo
	// ByComponent is msdemo's CPU split by component (its pprof labels), when its metrics
	// and profiles are served.
	ByComponent []componentCPU `json:"cpu_by_component,omitempty"`
	// QueueDepths are the messages waiting in each queue of the vhost in the middle of
	// the window: the queue with a backlog is the consumer that limits the saga.
	QueueDepths map[string]int `json:"queue_depths_mid_run"`
	maxRSSMB    float64
}

// placeOrder places one order of a unit of product for c and returns its id.
func (s *shop) placeOrder(ctx context.Context, c customer, product string) (string, error) {
	var o orderView
	st := s.api(ctx, http.MethodPost, "/order/orders", c.token, map[string]any{"product_id": product, "quantity": 1}, &o)
	if st != http.StatusAccepted {
		return "", fmt.Errorf("place order: got %d, want 202", st)
	}
	return o.ID, nil
}

// awaitDecision asks for the order, waiting for its decision, until it is approved or
// rejected, at most until ctx is done.
func (s *shop) awaitDecision(ctx context.Context, token, id string) (orderView, error) {
	for {
		var o orderView
		st := s.callWith(ctx, "http://"+s.addr["gateway"]+"/order/orders/"+id, http.MethodGet, token, decisionWait, nil, &o)
		if st == http.StatusOK && o.decided() {
			return o, nil
		}
		select {
		case <-ctx.Done():
			return orderView{}, fmt.Errorf("order %s not decided: %w", id, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// saturate runs the closed loop: every customer places an order and waits until it is
// decided, again and again. A warm-up of a tenth of d is not counted; after d no customer
// places another order, and the run waits (bounded) for the orders still open. It samples
// msdemo's RSS every 200 ms and the CPU time of every process, takes msdemo's CPU profile
// (kept in pprofFile if it is not empty), and records a perf profile into perfFile if it is
// not empty.
func (s *shop) saturate(ctx context.Context, customers int, d time.Duration, perfFile, pprofFile string) (saturation, error) {
	warm := d / 10
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+d)
	var (
		mu       sync.Mutex
		res      saturation
		sagas    []float64
		approved int
		failed   atomic.Int64
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Sampling: RSS throughout, CPU time and perf over the counted window.
	var samplers sync.WaitGroup
	samplers.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(until) {
			mu.Lock()
			res.maxRSSMB = max(res.maxRSSMB, s.rssMB())
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	samplers.Go(func() {
		time.Sleep(time.Until(from))
		before := cpuTimes()
		var perf *perfRecord
		if perfFile != "" {
			perf = startPerf(ctx, s.cmd.Process.Pid, perfFile, d, s.logger)
		}
		var prof *cpuProfile
		if s.metricsAddr != "" {
			prof = startCPUProfile(ctx, s.http, s.metricsAddr, d, pprofFile)
		}
		time.Sleep(time.Until(from.Add(d / 2)))
		depths := s.queueDepths()
		time.Sleep(time.Until(until))
		res.QueueDepths = depths
		res.CPU = cpuShares(before, cpuTimes(), d, s.cmd.Process.Pid)
		if perf != nil {
			res.Perf = perf.top(s.logger)
		}
		if prof != nil {
			var err error
			if res.ByComponent, err = prof.byComponent(); err != nil {
				s.logger.Warn("no CPU by component", "error", err)
			}
		}
	})

	for i := range customers {
		c := s.customers[i]
		wg.Go(func() {
			for n := 0; time.Now().Before(until); n++ {
				id, err := s.placeOrder(ctx, c, s.products[(i+n)%orderedProducts])
				if err != nil {
					failed.Add(1)
					time.Sleep(pollInterval)
					continue
				}
				octx, ocancel := context.WithTimeout(ctx, 40*time.Second) // saga timeout 30 s
				o, err := s.awaitDecision(octx, c.token, id)
				ocancel()
				done := time.Now()
				if err != nil {
					failed.Add(1)
					continue
				}
				if done.Before(from) || done.After(until) {
					continue
				}
				decided := o.at(o.Status) // "approved" or "rejected"
				mu.Lock()
				res.Completed++
				if o.Status == "approved" {
					approved++
				}
				sagas = append(sagas, ms(decided.Sub(o.PlacedAt)))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	samplers.Wait()
	res.Failed = int(failed.Load())
	res.OrdersPerSec = float64(res.Completed) / d.Seconds()
	if res.Completed > 0 {
		res.ApprovedShare = float64(approved) / float64(res.Completed)
	}
	res.SagaP50Ms, res.SagaP99Ms = percentile(sagas, 50), percentile(sagas, 99)
	if res.Completed == 0 {
		return res, fmt.Errorf("no order was decided in %s (%d failures)\nmsdemo output:\n%s", d, res.Failed, s.output)
	}
	return res, nil
}

// latency is the open-loop run at a fixed offered rate.
type latency struct {
	RatePerSec  float64 `json:"offered_rate_per_sec"`
	Placed      int     `json:"placed"`
	Approved    int     `json:"approved"`
	Undecided   int     `json:"undecided"` // still pending 40 s after the run
	P50Ms       float64 `json:"placed_to_approved_p50_ms"`
	P95Ms       float64 `json:"placed_to_approved_p95_ms"`
	P99Ms       float64 `json:"placed_to_approved_p99_ms"`
	PostP99Ms   float64 `json:"post_to_202_p99_ms"`
	SSEP50Ms    float64 `json:"sse_delay_p50_ms"`
	SSEP99Ms    float64 `json:"sse_delay_p99_ms"`
	SSEReceived int     `json:"sse_received"` // approvals the SSE client saw
	// CPUPerOrderMs is the CPU time each process used from the first placement until
	// every order was decided, and one second more (the invoices, the admin feed's last
	// messages), per placed order (by process name, as saturation.CPU). It includes what
	// the shop spends idle meanwhile and the bench's reads of each order's decision.
	// Below saturation it moves less with the machine's drift than orders/s does: the
	// figure to compare a change that saves CPU by.
	CPUPerOrderMs map[string]float64 `json:"cpu_ms_per_order"`
}

// fixedRate places orders at rate per second for d (open loop: a placement does not wait
// for the one before), with an SSE client of the admin site's live feed listening, then
// reads every order's timeline. Latency is approved minus placed_at, both the event
// store's recorded_at; the SSE delay is when the client read the approval minus its
// recorded_at.
func (s *shop) fixedRate(ctx context.Context, rate float64, d time.Duration) (latency, error) {
	res := latency{RatePerSec: rate}
	sseCtx, stopSSE := context.WithCancel(ctx)
	defer stopSSE()
	seen, err := s.followAdminFeed(sseCtx)
	if err != nil {
		return res, err
	}

	var (
		mu    sync.Mutex
		ids   []string
		posts []float64
		wg    sync.WaitGroup
	)
	n := int(rate * d.Seconds())
	start, cpuBefore := time.Now(), cpuTimes()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		c := s.customers[i%len(s.customers)]
		wg.Go(func() {
			t0 := time.Now()
			id, err := s.placeOrder(ctx, c, s.products[i%orderedProducts])
			took := ms(time.Since(t0))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ids, posts = append(ids, id), append(posts, took)
			}
		})
	}
	wg.Wait()
	res.Placed = len(ids)
	res.PostP99Ms = percentile(posts, 99)

	var sagas, delays []float64
	wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	for _, id := range ids {
		o, err := s.awaitDecision(wctx, s.admin, id)
		if err != nil {
			res.Undecided++
			continue
		}
		approvedAt := o.at("approved")
		if o.Status != "approved" || approvedAt.IsZero() {
			continue
		}
		res.Approved++
		sagas = append(sagas, ms(approvedAt.Sub(o.PlacedAt)))
	}
	time.Sleep(time.Second) // the last approvals' SSE messages (and invoices)
	stopSSE()
	if res.Placed > 0 {
		// cpuShares over one second is in hundredths of a CPU second.
		res.CPUPerOrderMs = cpuShares(cpuBefore, cpuTimes(), time.Second, s.cmd.Process.Pid)
		for name, v := range res.CPUPerOrderMs {
			res.CPUPerOrderMs[name] = v * 10 / float64(res.Placed)
		}
	}
	for _, id := range ids {
		seen.mu.Lock()
		got, ok := seen.at[id]
		seen.mu.Unlock()
		if !ok {
			continue
		}
		var o orderView
		if s.api(ctx, http.MethodGet, "/order/orders/"+id, s.admin, nil, &o) == http.StatusOK && !o.at("approved").IsZero() {
			delays = append(delays, ms(got.Sub(o.at("approved"))))
		}
	}
	res.SSEReceived = len(delays)
	res.P50Ms, res.P95Ms, res.P99Ms = percentile(sagas, 50), percentile(sagas, 95), percentile(sagas, 99)
	res.SSEP50Ms, res.SSEP99Ms = percentile(delays, 50), percentile(delays, 99)
	return res, nil
}

// sseSeen records when the SSE client first read the approval of each order.
type sseSeen struct {
	mu sync.Mutex
	at map[string]time.Time
}

// approvedItem matches an SSE message of the admin's feed that shows an order.approved.
var approvedItem = regexp.MustCompile(`(?s)order\.approved.*?order-([0-9a-zA-Z-]+)`)

// followAdminFeed logs in to the admin site as the manager (a cookie session, as a
// browser) and reads GET /events/feed, the dashboard's live feed of every event, until
// ctx is done. The site serves it from its per-instance queue bound to msdemo.events.
func (s *shop) followAdminFeed(ctx context.Context) (*sseSeen, error) {
	jar, err := s.adminSession()
	if err != nil {
		return nil, err
	}
	return s.followAdminStream(ctx, jar, "/events/feed", approvedItem, func() {})
}

// followAdminStream reads the admin site's SSE stream at path with the session in jar
// until ctx is done, recording when it first read each order that approved matches (its
// first group is the order's id); connected is called once the stream is open, or could
// not be opened.
func (s *shop) followAdminStream(ctx context.Context, jar http.CookieJar, path string, approved *regexp.Regexp, connected func()) (*sseSeen, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr["admin"]+path, nil)
	resp, err := (&http.Client{Jar: jar}).Do(req) // no timeout: the stream lasts until ctx is done
	if err != nil {
		connected()
		return nil, fmt.Errorf("GET %s of the admin site: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		connected()
		return nil, fmt.Errorf("GET %s of the admin site: got %d %s, want 200 text/event-stream", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	seen := &sseSeen{at: map[string]time.Time{}}
	go func() {
		defer resp.Body.Close()
		readSSE(resp.Body, connected, func(msg string) {
			if m := approved.FindStringSubmatch(msg); m != nil {
				now := time.Now()
				seen.mu.Lock()
				if _, ok := seen.at[m[1]]; !ok {
					seen.at[m[1]] = now
				}
				seen.mu.Unlock()
			}
		})
	}()
	return seen, nil
}

// readSSE reads the messages of an SSE stream from r until it ends, handing each (its
// lines up to a blank one) to message; connected is called once, at the site's
// ": connected" comment or when the stream ends before it.
func readSSE(r io.Reader, connected func(), message func(msg string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var msg strings.Builder
	once := sync.OnceFunc(connected)
	defer once()
	for sc.Scan() {
		if sc.Text() != "" {
			msg.WriteString(sc.Text())
			msg.WriteByte('\n')
			continue
		}
		if strings.HasPrefix(msg.String(), ": connected") {
			once()
		}
		message(msg.String())
		msg.Reset()
	}
}

// percentile is the p-th percentile (nearest rank) of xs, 0 for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
