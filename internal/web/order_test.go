package web

import "testing"

// Each step of the timeline is a sentence; a release says why the order was rejected.
func TestTimelineSentences(t *testing.T) {
	o := Order{Status: "rejected", Reason: "out of stock"}
	for _, tt := range []struct {
		step TimelineStep
		want string
	}{
		{TimelineStep{Step: "placed"}, "The order was placed."},
		{TimelineStep{Step: "stock rejected", Reason: "out of stock"}, "The stock was not reserved: out of stock."},
		{TimelineStep{Step: "rejected", Reason: "out of stock"}, "The order was rejected: out of stock."},
		{TimelineStep{Step: "credit released"}, "The reserved credit was given back, because the order was rejected (out of stock)."},
		{TimelineStep{Step: "a later step", Reason: "why"}, "a later step: why"},
	} {
		if got := tt.step.Sentence(o); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.step.Step, got, tt.want)
		}
	}
}
