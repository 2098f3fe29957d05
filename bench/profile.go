package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

type procTime struct {
	name string
	cpu  float64 // seconds, user + system
}

// cpuTimes reads the CPU time of every process (procfs, /proc/<pid>/stat).
func cpuTimes() map[int]procTime {
	times := map[int]procTime{}
	procs, err := procfs.AllProcs()
	if err != nil {
		return times
	}
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // it exited meanwhile
		}
		times[p.PID] = procTime{name: st.Comm, cpu: st.CPUTime()}
	}
	return times
}

// cpuShares is the CPU each process name used between before and after, in percent of
// one core over d; msdemo's own pid is named "msdemo", processes under 1% are summed as
// "other".
func cpuShares(before, after map[int]procTime, d time.Duration, msdemo int) map[string]float64 {
	shares := map[string]float64{}
	for pid, a := range after {
		delta := a.cpu - before[pid].cpu // a process started meanwhile counts whole
		if delta <= 0 {
			continue
		}
		name := a.name
		switch {
		case pid == msdemo:
			name = "msdemo"
		case pid == os.Getpid():
			name = "bench (load generator)"
		}
		shares[name] += delta / d.Seconds() * 100
	}
	return foldSmall(shares, 1)
}

// perfRecord is a running `perf record` of one process.
type perfRecord struct {
	file string
	done chan error
}

// startPerf records the CPU profile of pid with call graphs (frame pointers, which Go
// keeps) at 499 Hz into file for d. It returns nil, with a warning logged, if perf is
// not installed.
func startPerf(ctx context.Context, pid int, file string, d time.Duration, logger *slog.Logger) *perfRecord {
	if _, err := exec.LookPath("perf"); err != nil {
		logger.Warn("perf is not installed (apt-get install -y linux-perf): no CPU profile")
		return nil
	}
	secs := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
	cmd := exec.CommandContext(ctx, "perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", file, "--", "sleep", secs)
	p := &perfRecord{file: file, done: make(chan error, 1)}
	go func() {
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("perf record: %w: %s", err, out)
		}
		p.done <- err
	}()
	return p
}

// top waits for the recording to end and returns the hottest symbols (self time, at least
// 1% of the samples), as `perf report` prints them.
func (p *perfRecord) top(logger *slog.Logger) []string {
	if err := <-p.done; err != nil {
		logger.Warn("no CPU profile", "error", err)
		return nil
	}
	out, err := exec.Command("perf", "report", "-i", p.file, "--stdio", "--no-children", "--sort", "dso,symbol",
		"-g", "none", "--percent-limit", "1").Output()
	if err != nil {
		logger.Warn("perf report", "error", err)
		return nil
	}
	var lines []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	return lines
}
