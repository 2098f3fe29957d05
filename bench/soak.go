package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/registry"
)

// soakOptions are the flags of the chaos soak (-soak).
type soakOptions struct {
	Duration   time.Duration // of the load; 0: no soak, the benchmark instead
	Servers    bool          // restart PostgreSQL, Redis and RabbitMQ too
	Customers  int
	Managers   int
	FaultEvery time.Duration // mean time between faults
	Seed       uint64        // of the soak's random choices; 0: from the clock
	Logs       string        // directory for each component's log; "": kept in memory, the tail shown on trouble
}

// soakReport is what the soak prints.
type soakReport struct {
	Command     string            `json:"command"`
	Duration    string            `json:"duration"` // of the load
	Took        string            `json:"took"`     // start to end, checks included
	CPUs        int               `json:"cpus"`
	Seed        uint64            `json:"seed"`
	Customers   int               `json:"customers"`
	Managers    int               `json:"managers"`
	Operations  map[string]int    `json:"operations"` // acknowledged, by kind
	Requests    int               `json:"requests"`
	Statuses    map[string]int    `json:"statuses"` // "0": no answer
	Failing     map[string]int    `json:"failing_answers,omitempty"`
	Samples     []string          `json:"failing_samples,omitempty"`
	SSEFollowed int               `json:"orders_followed_live"`
	SSEFallback int               `json:"orders_followed_by_api_after_the_stream_failed"`
	Faults      map[string]int    `json:"faults"`
	Recovery    map[string]string `json:"longest_kill_to_healthy"` // by component
	FaultIssues []string          `json:"fault_problems,omitempty"`
	Exits       int               `json:"unexpected_exits"`
	ExitNotes   []string          `json:"unexpected_exit_notes,omitempty"`
	Checks      []soakCheck       `json:"checks"`
}

// failed reports whether any check failed.
func (r *soakReport) failed() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return true
		}
	}
	return false
}

// soak runs the chaos soak: the shop as one process per component, the load of customers
// and managers for o.Soak.Duration while faults are injected, then, with everything back
// up, the checks. It writes the report to stdout and returns an error when a check failed.
func soak(ctx context.Context, o options, args []string, logger *slog.Logger, stdout io.Writer) error {
	so := o.Soak
	if so.Seed == 0 {
		so.Seed = uint64(time.Now().UnixNano())
	}
	start := time.Now()
	s, err := startSoakShop(ctx, o, logger)
	if err != nil {
		return err
	}
	defer s.stop()
	rng := rand.New(rand.NewPCG(so.Seed, 0))
	l := newSoakLoad(s)
	if err := l.setUp(ctx); err != nil {
		return err
	}
	f := &faults{shop: s, rng: rand.New(rand.NewPCG(so.Seed, 3)), every: so.FaultEvery, withServers: so.Servers, count: map[string]int{}, recovery: map[string]time.Duration{}}

	logger.Info("soak: load and faults", "duration", so.Duration, "customers", so.Customers, "managers", so.Managers, "seed", so.Seed)
	loadCtx, stopLoad := context.WithTimeout(ctx, so.Duration)
	var wg sync.WaitGroup
	for range so.Customers {
		seed := rng.Uint64()
		wg.Go(func() { l.customer(loadCtx, seed) })
	}
	for range so.Managers {
		seed := rng.Uint64()
		wg.Go(func() { l.manager(loadCtx, seed) })
	}
	var faultsDone sync.WaitGroup
	faultsDone.Go(func() { f.inject(loadCtx) })
	faultsDone.Wait() // ends with the load's time, after the fault in progress is undone
	stopLoad()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	logger.Info("soak: load ended; checking")
	c := &checker{l: l, token: s.managerToken()}
	var setupProblems []string
	for _, comp := range registry.Components() {
		if err := s.waitHealthy(ctx, comp.Name, 120*time.Second); err != nil {
			setupProblems = append(setupProblems, err.Error())
		}
	}
	if err := s.waitRoutable(ctx, 60*time.Second); err != nil {
		setupProblems = append(setupProblems, err.Error())
	}
	c.add("every component back up", setupProblems, fmt.Sprintf("%d components healthy, every service routed", len(registry.Components())))
	undecided := c.awaitDecisions(ctx, 2*soakSagaTimeout+60*time.Second)
	snap, err := c.settledSnapshot(ctx, 60*time.Second)
	if err != nil {
		c.add("read models settle", []string{err.Error()}, "")
	} else if err := c.readFeed(ctx); err != nil {
		c.add("read the feed", []string{err.Error()}, "")
	} else {
		c.checkFeed()
		c.checkOrders(snap, undecided)
		c.checkBalances(snap)
		c.checkAcks(snap)
		c.checkRebuild(ctx, snap)
	}

	r := l.report(so, f, s)
	r.Command = "go run ./bench " + strings.Join(args, " ")
	r.Took = time.Since(start).Round(time.Second).String()
	r.Seed = so.Seed
	r.Checks = append(c.out, r.statusChecks(so)...)
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.writeTable(stdout)
	}
	if r.failed() {
		return fmt.Errorf("soak: a check failed (seed %d)", so.Seed)
	}
	return nil
}

// report sums up what the load did.
func (l *soakLoad) report(so soakOptions, f *faults, s *soakShop) *soakReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &soakReport{Duration: so.Duration.String(), CPUs: numCPU(), Customers: so.Customers, Managers: so.Managers,
		Operations: map[string]int{}, Statuses: map[string]int{}, Failing: l.bad, Samples: l.samples.all(),
		SSEFollowed: l.sse.followed, SSEFallback: l.sse.fallback, Faults: f.counts(), FaultIssues: f.problems.all(),
		Exits: int(s.unexpectedExits.Load()), ExitNotes: s.exitNotes.all(), Recovery: map[string]string{}}
	f.mu.Lock()
	for k, d := range f.recovery {
		r.Recovery[k] = d.String()
	}
	f.mu.Unlock()
	for k, v := range l.ops {
		r.Operations[k] = v
	}
	for code, n := range l.status {
		r.Statuses[fmt.Sprint(code)] = n
		r.Requests += n
	}
	return r
}

// statusChecks are the checks of what the clients were answered and how the faults went.
func (r *soakReport) statusChecks(so soakOptions) []soakCheck {
	var out []soakCheck
	bad := 0
	for _, n := range r.Failing {
		bad += n
	}
	ck := soakCheck{Name: "no 500 (nor 400/403/413/415/422/429)", OK: bad == 0 && r.Statuses["500"] == 0,
		Detail: fmt.Sprintf("%d requests; 502/503/504 and no answer are expected while a component is down", r.Requests)}
	if !ck.OK {
		ck.Detail = fmt.Sprintf("%d failing answers: %v", bad, r.Failing)
	}
	out = append(out, ck)
	// A component may exit by itself while a server it needs restarts (compose restarts
	// it); without server restarts, one that does is a bug.
	exits := soakCheck{Name: "no component exited by itself", OK: r.Exits == 0 || so.Servers,
		Detail: fmt.Sprintf("%d exits", r.Exits)}
	out = append(out, exits)
	undone := soakCheck{Name: "every fault undone", OK: len(r.FaultIssues) == 0,
		Detail: "each killed component healthy again within 90 s, each server back within 60 s"}
	if !undone.OK {
		undone.Detail = strings.Join(r.FaultIssues, "; ")
	}
	out = append(out, undone)
	// A soak without a fault proves nothing: one too short for any fails.
	out = append(out, soakCheck{Name: "faults injected", OK: r.Faults[faultKill] > 0, Detail: fmt.Sprint(r.Faults)})
	return out
}

// writeTable prints the report for people.
func (r *soakReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "chaos soak: %s of load (%s in all), %d customers, %d managers, %d CPUs, seed %d\n",
		r.Duration, r.Took, r.Customers, r.Managers, r.CPUs, r.Seed)
	fmt.Fprintf(w, "  %s\n\n", r.Command)
	fmt.Fprintf(w, "operations acknowledged:\n")
	for _, k := range sortedKeys(r.Operations) {
		fmt.Fprintf(w, "  %-28s %8d\n", k, r.Operations[k])
	}
	fmt.Fprintf(w, "  %-28s %8d (live on the storefront's SSE; %d by the API after the stream broke)\n", "orders followed live", r.SSEFollowed, r.SSEFallback)
	fmt.Fprintf(w, "requests: %d; answers by status (0: none, the gateway was down):\n", r.Requests)
	for _, k := range sortedKeys(r.Statuses) {
		fmt.Fprintf(w, "  %-28s %8d\n", k, r.Statuses[k])
	}
	fmt.Fprintf(w, "faults injected:\n")
	for _, k := range sortedKeys(r.Faults) {
		fmt.Fprintf(w, "  %-28s %8d\n", k, r.Faults[k])
	}
	fmt.Fprintf(w, "longest from SIGKILL to healthy again (down 0.2-3.2 s, then catching up):\n")
	for _, k := range sortedKeys(r.Recovery) {
		fmt.Fprintf(w, "  %-28s %8s\n", k, r.Recovery[k])
	}
	fmt.Fprintf(w, "components that exited by themselves: %d\n", r.Exits)
	for _, n := range r.ExitNotes {
		fmt.Fprintf(w, "  %s\n", n)
	}
	fmt.Fprintf(w, "checks:\n")
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-42s %s\n", mark, c.Name, c.Detail)
	}
	for _, s := range r.Samples {
		fmt.Fprintf(w, "  failing answer: %s\n", s)
	}
}
