package main

import (
	"os"
	"testing"
	"time"
)

// The CPU this process burns shows under its own name, in percent of one core.
func TestCPUShares(t *testing.T) {
	before := cpuTimes()
	if _, ok := before[os.Getpid()]; !ok {
		t.Fatalf("cpuTimes has no entry for this process (pid %d)", os.Getpid())
	}
	start := time.Now()
	for x := 0; time.Since(start) < 300*time.Millisecond; x++ {
		_ = x * x
	}
	d := time.Since(start)
	shares := cpuShares(before, cpuTimes(), d, -1)
	if got := shares["bench (load generator)"]; got < 30 || got > 210 {
		t.Errorf("this process used %.0f%% of a core while it spun for %s, want about 100%%: %v", got, d, shares)
	}
}
