package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/google/pprof/profile"
)

// componentCPU is one component's share of msdemo's CPU in a profile.
type componentCPU struct {
	Component string   `json:"component"` // the pprof label; "(none)" for goroutines of no component (GC, scheduler, timer callbacks, the metrics listener)
	Percent   float64  `json:"percent_of_msdemo"`
	Hottest   []string `json:"hottest,omitempty"` // its hottest functions, self time, "name 12.3%"
}

// cpuProfile is a running CPU profile of msdemo, taken from its METRICS_PPROF endpoint.
type cpuProfile struct {
	done chan profileResult
}

type profileResult struct {
	p   *profile.Profile
	err error
}

// startCPUProfile asks msdemo's /debug/pprof/profile for d of CPU samples; file, if not
// empty, keeps the profile for `go tool pprof` (try -tagfocus component=order).
func startCPUProfile(ctx context.Context, client *http.Client, metricsAddr string, d time.Duration, file string) *cpuProfile {
	c := &cpuProfile{done: make(chan profileResult, 1)}
	go func() {
		p, err := fetchProfile(ctx, client, metricsAddr, d, file)
		c.done <- profileResult{p, err}
	}()
	return c
}

func fetchProfile(ctx context.Context, client *http.Client, metricsAddr string, d time.Duration, file string) (*profile.Profile, error) {
	secs := max(1, int(d.Round(time.Second).Seconds()))
	url := "http://" + metricsAddr + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	long := *client
	long.Timeout = d + 30*time.Second
	resp, err := long.Do(req)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CPU profile: %s answered %s (msdemo needs METRICS_PPROF=on)", url, resp.Status)
	}
	p, err := profile.Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if file != "" {
		f, err := os.Create(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := p.Write(f); err != nil {
			return nil, fmt.Errorf("write %s: %w", file, err)
		}
	}
	return p, nil
}

// byComponent waits for the profile and splits its CPU time by the label "component",
// with each component's hottest functions (self time, at least 1% of msdemo's CPU).
func (c *cpuProfile) byComponent() ([]componentCPU, error) {
	r := <-c.done
	if r.err != nil {
		return nil, r.err
	}
	return splitByComponent(r.p), nil
}

// splitByComponent sums the samples' CPU time per component label, largest first.
func splitByComponent(p *profile.Profile) []componentCPU {
	value := len(p.SampleType) - 1 // cpu nanoseconds (samples/count come first)
	total := int64(0)
	perComponent := map[string]int64{}
	perFunc := map[string]map[string]int64{}
	for _, s := range p.Sample {
		name := "(none)"
		if l := s.Label["component"]; len(l) > 0 {
			name = l[0]
		}
		v := s.Value[value]
		total += v
		perComponent[name] += v
		if perFunc[name] == nil {
			perFunc[name] = map[string]int64{}
		}
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 {
			perFunc[name][s.Location[0].Line[0].Function.Name] += v // the innermost of inlined frames
		}
	}
	if total == 0 {
		return nil
	}
	share := func(v int64) float64 { return 100 * float64(v) / float64(total) }
	var out []componentCPU
	for name, v := range perComponent {
		cc := componentCPU{Component: name, Percent: share(v)}
		type fn struct {
			name string
			v    int64
		}
		var fns []fn
		for f, v := range perFunc[name] {
			if share(v) >= 1 {
				fns = append(fns, fn{f, v})
			}
		}
		slices.SortFunc(fns, func(a, b fn) int { return cmp.Or(cmp.Compare(b.v, a.v), cmp.Compare(a.name, b.name)) })
		for _, f := range fns[:min(len(fns), 4)] {
			cc.Hottest = append(cc.Hottest, fmt.Sprintf("%s %.1f%%", f.name, share(f.v)))
		}
		out = append(out, cc)
	}
	slices.SortFunc(out, func(a, b componentCPU) int {
		return cmp.Or(cmp.Compare(b.Percent, a.Percent), cmp.Compare(a.Component, b.Component))
	})
	return out
}
