package web

import (
	"slices"
	"testing"
)

// Of two reads of one thing that end in either order, a browser keeps the state of the
// read that began later: an earlier read's frame replaces neither a waiting nor a sent
// frame of a later read, and a later read's frame replaces an earlier one's.
func TestOutboxKeepsTheLaterReadsState(t *testing.T) {
	f := func(data string) []frame { return []frame{{key: "order-1", data: []byte(data)}} }
	take := func(o *Outbox) []string {
		frames, _, _ := o.take()
		var got []string
		for _, b := range frames {
			got = append(got, string(b))
		}
		return got
	}
	o := NewOutbox(10, nil)

	o.put(f("v5"), false, 5)
	o.put(f("v4"), false, 4) // a refresh that began earlier ends later
	if got := take(o); !slices.Equal(got, []string{"v5"}) {
		t.Errorf("waiting v5, then an earlier read's v4: sent %q, want [v5]", got)
	}
	o.put(f("v3"), false, 3)
	if got := take(o); len(got) != 0 {
		t.Errorf("v5 sent, then an earlier read's v3: sent %q, want nothing", got)
	}
	o.put(f("v6"), false, 6)
	o.put(f("v7"), true, 7) // a stream's first state, read later than what waits
	if got := take(o); !slices.Equal(got, []string{"v7"}) {
		t.Errorf("v6 waiting, then v7 of a later read: sent %q, want [v7]", got)
	}
	o.put(f("unordered"), false, 0)
	if got := take(o); !slices.Equal(got, []string{"unordered"}) {
		t.Errorf("a message without a read sequence: sent %q, want it", got)
	}
}
