package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// countingProxy stands between the sites and the gateway (the sites' GATEWAY_URL points
// at it; the bench itself calls the gateway directly), and counts the requests the sites
// make: what a live view costs the API, counted from the outside.
type countingProxy struct {
	ln       net.Listener
	srv      *http.Server
	requests atomic.Int64
}

// startCountingProxy listens on a free loopback port; it forwards to the gateway at
// gatewayAddr once serving.
func startCountingProxy(gatewayAddr string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the counting proxy: %w", err)
	}
	target := &url.URL{Scheme: "http", Host: gatewayAddr}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	p := &countingProxy{ln: ln}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }

func (p *countingProxy) close() { _ = p.srv.Close() }

// liveRun is one run of row 8: followers SSE clients on the admin's live order list while
// orders are placed at a fixed rate.
type liveRun struct {
	Followers int     `json:"followers"`
	Orders    int     `json:"orders"`
	Events    int64   `json:"events"`       // stored during the run
	Requests  int64   `json:"api_requests"` // by the sites, at the counting proxy
	PerEvent  float64 `json:"api_requests_per_event"`
	SSEP50Ms  float64 `json:"sse_delay_p50_ms"`
	SSEP99Ms  float64 `json:"sse_delay_p99_ms"`
	Seen      int     `json:"approvals_seen"`     // (client, order) pairs that saw the approval
	Expected  int     `json:"approvals_expected"` // followers x approved orders
}

// liveFollowers are the runs of row 8.
var liveFollowers = []int{1, 10, 100}

// liveRuns measures, for each count of liveFollowers, what n browsers that follow the
// admin's live order list (GET /events/orders) cost the API and how late they see each
// approval: orders are placed at rate per second for d, every order is awaited, and the
// requests the sites made meanwhile (at the counting proxy) are divided by the events the
// event store stored meanwhile. The delay is when a client read the row's approved state
// minus the approval's recorded_at.
func (s *shop) liveRuns(ctx context.Context, rate float64, d time.Duration) ([]liveRun, error) {
	jar, err := s.adminSession()
	if err != nil {
		return nil, err
	}
	var runs []liveRun
	for _, n := range liveFollowers {
		s.logger.Info("live order list", "followers", n, "rate", rate, "duration", d)
		r, err := s.liveRun(ctx, jar, n, rate, d)
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

func (s *shop) liveRun(ctx context.Context, jar http.CookieJar, n int, rate float64, d time.Duration) (liveRun, error) {
	res := liveRun{Followers: n}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	clients := make([]*sseSeen, n)
	var connected sync.WaitGroup
	for i := range n {
		connected.Add(1)
		seen, err := s.followAdminStream(sctx, jar, "/events/orders", approvedRow, connected.Done)
		if err != nil {
			return res, err
		}
		clients[i] = seen
	}
	connected.Wait()
	time.Sleep(2 * time.Second) // the streams' initial state, and the last run's stragglers
	head0, err := s.feedHead(ctx)
	if err != nil {
		return res, err
	}
	req0 := s.proxy.requests.Load()

	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	count := int(rate * d.Seconds())
	start := time.Now()
	for i := range count {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		c := s.customers[i%len(s.customers)]
		wg.Go(func() {
			if id, err := s.placeOrder(ctx, c, s.products[i%orderedProducts]); err == nil {
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Orders = len(ids)
	wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	approved := map[string]time.Time{}
	for _, id := range ids {
		o, err := s.awaitDecision(wctx, s.admin, id)
		if err == nil && o.Status == "approved" {
			approved[id] = o.at("approved")
		}
	}
	// The invoices come after the approvals, and the streams deliver after the reads.
	if err := s.poll(ctx, 30*time.Second, func() bool {
		for _, c := range clients {
			c.mu.Lock()
			k := 0
			for id := range approved {
				if _, ok := c.at[id]; ok {
					k++
				}
			}
			c.mu.Unlock()
			if k < len(approved) {
				return false
			}
		}
		return true
	}); err != nil {
		s.logger.Warn("not every client saw every approval within 30 s", "followers", n)
	}
	time.Sleep(2 * time.Second) // the invoices' announcements and reads
	head1, err := s.feedHead(ctx)
	if err != nil {
		return res, err
	}
	res.Requests = s.proxy.requests.Load() - req0
	res.Events = head1 - head0
	if res.Events > 0 {
		res.PerEvent = float64(res.Requests) / float64(res.Events)
	}
	stop()

	var delays []float64
	for _, c := range clients {
		c.mu.Lock()
		for id, at := range approved {
			if got, ok := c.at[id]; ok {
				delays = append(delays, ms(got.Sub(at)))
			}
		}
		c.mu.Unlock()
	}
	res.Expected = n * len(approved)
	res.Seen = len(delays)
	res.SSEP50Ms, res.SSEP99Ms = percentile(delays, 50), percentile(delays, 99)
	return res, nil
}

// adminSession logs in to the admin site as the manager, once (a password hash is slow):
// every client of a run shares the session, as tabs of one browser do.
func (s *shop) adminSession() (http.CookieJar, error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := client.PostForm("http://"+s.addr["admin"]+"/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {"/"}})
	if err != nil {
		return nil, fmt.Errorf("log in to the admin site: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("log in to the admin site: got %d, want 200 after the redirect", resp.StatusCode)
	}
	return jar, nil
}

// approvedRow matches an SSE message that swaps a row of /orders in its approved state.
var approvedRow = regexp.MustCompile(`^event: order-([0-9a-z]+)\n(?s:.*)status-approved`)
