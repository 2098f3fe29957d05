package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on Linux).
const clockTicks = 100

type procTime struct {
	name  string
	ticks int64
}

// cpuTimes reads the CPU time (user + system) of every process.
func cpuTimes() map[int]procTime {
	times := map[int]procTime{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		times[pid] = procTime{name: s[open+1 : end], ticks: utime + stime}
	}
	return times
}

// cpuShares is the CPU each process name used between before and after, in percent of
// one core over d; msdemo's own pid is named "msdemo", processes under 1% are summed as
// "other".
func cpuShares(before, after map[int]procTime, d time.Duration, msdemo int) map[string]float64 {
	shares := map[string]float64{}
	for pid, a := range after {
		delta := a.ticks - before[pid].ticks // a process started meanwhile counts whole
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
		shares[name] += float64(delta) / clockTicks / d.Seconds() * 100
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
