package bus

import (
	"testing"
	"time"
)

// The pauses between tries start at the first one, double up to maxBackoff, and each
// stays within ±backoffJitter of its nominal length.
func TestBackoffPauses(t *testing.T) {
	for _, first := range []time.Duration{10 * time.Millisecond, minBackoff, time.Minute} {
		b := newBackoff(first)
		nominal := first
		varied := false
		for i := range 20 {
			got := b.NextBackOff()
			lo := time.Duration(float64(nominal) * (1 - backoffJitter))
			hi := time.Duration(float64(nominal)*(1+backoffJitter)) + 1
			if got < lo || got > hi {
				t.Fatalf("first %v, pause %d: got %v, want within [%v, %v]", first, i+1, got, lo, hi)
			}
			varied = varied || got != nominal
			nominal = min(nominal*2, maxBackoff)
		}
		if !varied {
			t.Errorf("first %v: 20 pauses of exactly their nominal length, want them drawn at random", first)
		}
	}
}
