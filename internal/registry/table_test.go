package registry

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

// clock is a settable time source for the table.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestTable(ttl time.Duration, static map[string]string) (*Table, *clock) {
	c := &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	t := NewTable(ttl, static)
	t.now = c.Now
	return t, c
}

func TestPickRoundRobin(t *testing.T) {
	t.Parallel()
	table, _ := newTestTable(0, nil)
	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://a"})
	table.Observe(Instance{Service: "product", Instance: "p2", URL: "http://b"})
	table.Observe(Instance{Service: "order", Instance: "o1", URL: "http://o"})

	seen := map[string]int{}
	for range 10 {
		url, ok := table.Pick("product")
		if !ok {
			t.Fatalf("Pick(product): got ok=false, want true")
		}
		seen[url]++
	}
	if seen["http://a"] != 5 || seen["http://b"] != 5 {
		t.Errorf("10 picks: got %v, want 5 each of http://a and http://b", seen)
	}
	if url, ok := table.Pick("order"); url != "http://o" || !ok {
		t.Errorf("Pick(order): got %q, %v, want http://o, true", url, ok)
	}
}

func TestPickExpiryAndStatic(t *testing.T) {
	t.Parallel()
	table, clock := newTestTable(6*time.Second, map[string]string{"product": "http://static", "empty": ""})

	if url, ok := table.Pick("product"); url != "http://static" || !ok {
		t.Errorf("Pick before any announcement: got %q, %v, want http://static, true", url, ok)
	}
	if url, ok := table.Pick("order"); ok {
		t.Errorf("Pick(order) with no instance and no fallback: got %q, true, want ok=false", url)
	}
	if url, ok := table.Pick("empty"); ok {
		t.Errorf("Pick(empty) with an empty fallback: got %q, true, want ok=false", url)
	}

	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://live"})
	clock.Advance(6 * time.Second) // exactly the TTL: still live
	if url, _ := table.Pick("product"); url != "http://live" {
		t.Errorf("Pick at the TTL: got %q, want http://live", url)
	}
	clock.Advance(time.Millisecond)
	if url, _ := table.Pick("product"); url != "http://static" {
		t.Errorf("Pick after the TTL: got %q, want the fallback http://static", url)
	}
	if got := table.Instances(); len(got) != 0 {
		t.Errorf("Instances after the TTL: got %v, want none", got)
	}

	// A fresh announcement brings it back; a leaving one drops it at once.
	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://live"})
	if url, _ := table.Pick("product"); url != "http://live" {
		t.Errorf("Pick after a new announcement: got %q, want http://live", url)
	}
	table.Forget("product", "p1")
	if url, _ := table.Pick("product"); url != "http://static" {
		t.Errorf("Pick after Forget: got %q, want http://static", url)
	}
}

func TestPickSkipsExpiredInstance(t *testing.T) {
	t.Parallel()
	table, clock := newTestTable(6*time.Second, nil)
	table.Observe(Instance{Service: "product", Instance: "old", URL: "http://old"})
	clock.Advance(4 * time.Second)
	table.Observe(Instance{Service: "product", Instance: "new", URL: "http://new"})
	clock.Advance(4 * time.Second) // old is 8 s old, new 4 s
	for range 4 {
		if url, _ := table.Pick("product"); url != "http://new" {
			t.Fatalf("Pick: got %q, want http://new (http://old expired)", url)
		}
	}
}

func TestObserveRefreshesAndIgnoresIncomplete(t *testing.T) {
	t.Parallel()
	table, clock := newTestTable(0, nil)
	start := clock.Now()
	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://a"})
	clock.Advance(time.Second)
	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://a2"}) // moved
	table.Observe(Instance{Service: "order", Instance: "", URL: "http://x"})
	table.Observe(Instance{Service: "", Instance: "x", URL: "http://x"})
	table.Observe(Instance{Service: "order", Instance: "x", URL: ""})

	got := table.Instances()
	want := []Entry{{Instance: Instance{Service: "product", Instance: "p1", URL: "http://a2"}, LastSeen: start.Add(time.Second)}}
	if !slices.Equal(got, want) {
		t.Errorf("Instances: got %v, want %v", got, want)
	}
}

// A process restarted on the address of one that died without leaving replaces it at
// once, and the table says so; a new instance at another address, or the same instance
// again, does not.
func TestObserveReplacesAnInstanceRestartedAtItsURL(t *testing.T) {
	t.Parallel()
	table, _ := newTestTable(0, nil)
	var restarted []string
	table.OnRestart(func(url string) { restarted = append(restarted, url) })
	table.Observe(Instance{Service: "order", Instance: "o1", URL: "http://a"})
	table.Observe(Instance{Service: "order", Instance: "o2", URL: "http://b"})
	table.Observe(Instance{Service: "order", Instance: "o1", URL: "http://a"})
	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://a"}) // another service's table
	if len(restarted) != 0 {
		t.Fatalf("OnRestart called with %v before any restart", restarted)
	}
	table.Observe(Instance{Service: "order", Instance: "o3", URL: "http://a"})
	if !slices.Equal(restarted, []string{"http://a"}) {
		t.Errorf("OnRestart: got %v, want [http://a]", restarted)
	}
	var got []string
	for _, e := range table.Instances() {
		if e.Service == "order" {
			got = append(got, e.Instance.Instance)
		}
	}
	if !slices.Equal(got, []string{"o2", "o3"}) {
		t.Errorf("order instances: got %v, want [o2 o3] (o1 replaced by o3)", got)
	}
}

// Drop removes a service's instances at one URL at once, and only those; the next
// announcement brings one back.
func TestDrop(t *testing.T) {
	t.Parallel()
	table, _ := newTestTable(0, nil)
	table.Observe(Instance{Service: "order", Instance: "o1", URL: "http://a"})
	table.Observe(Instance{Service: "order", Instance: "o2", URL: "http://b"})
	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://a"})
	table.Drop("order", "http://a")
	for range 4 {
		if url, _ := table.Pick("order"); url != "http://b" {
			t.Fatalf("Pick after Drop: got %q, want http://b", url)
		}
	}
	if url, _ := table.Pick("product"); url != "http://a" {
		t.Errorf("Drop of order's http://a dropped product's: got %q", url)
	}
	table.Observe(Instance{Service: "order", Instance: "o1", URL: "http://a"})
	if n := len(table.Instances()); n != 3 {
		t.Errorf("after o1 announced again: got %d instances, want 3", n)
	}
}

func TestInstancesSorted(t *testing.T) {
	t.Parallel()
	table, _ := newTestTable(0, nil)
	for _, inst := range []Instance{
		{Service: "product", Instance: "p2", URL: "http://p2"},
		{Service: "customer", Instance: "c1", URL: "http://c1"},
		{Service: "product", Instance: "p1", URL: "http://p1"},
	} {
		table.Observe(inst)
	}
	var got []string
	for _, e := range table.Instances() {
		got = append(got, e.Service+"/"+e.Instance.Instance)
	}
	want := []string{"customer/c1", "product/p1", "product/p2"}
	if !slices.Equal(got, want) {
		t.Errorf("Instances: got %v, want %v", got, want)
	}
}

func TestHandle(t *testing.T) {
	t.Parallel()
	table, _ := newTestTable(0, nil)
	ctx := context.Background()
	if err := table.handle(ctx, bus.Delivery{Message: bus.Message{Body: []byte(`{"service":"order","instance":"o1","url":"http://o"}`)}}); err != nil {
		t.Fatalf("handle announcement: got error %v, want nil", err)
	}
	if url, ok := table.Pick("order"); url != "http://o" || !ok {
		t.Errorf("Pick after announcement: got %q, %v, want http://o, true", url, ok)
	}
	if err := table.handle(ctx, bus.Delivery{Message: bus.Message{Body: []byte(`{"service":"order","instance":"o1","url":"http://o","leaving":true}`)}}); err != nil {
		t.Fatalf("handle leaving: got error %v, want nil", err)
	}
	if url, ok := table.Pick("order"); ok {
		t.Errorf("Pick after leaving: got %q, true, want ok=false", url)
	}
	if err := table.handle(ctx, bus.Delivery{Message: bus.Message{Body: []byte(`{not json`)}}); !errors.Is(err, bus.ErrPermanent) {
		t.Errorf("handle malformed body: got %v, want an error wrapping bus.ErrPermanent", err)
	}
}

func BenchmarkPick(b *testing.B) {
	table := NewTable(0, nil)
	table.Observe(Instance{Service: "product", Instance: "p1", URL: "http://a"})
	table.Observe(Instance{Service: "product", Instance: "p2", URL: "http://b"})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := table.Pick("product"); !ok {
				b.Fatal("Pick: got ok=false, want true")
			}
		}
	})
}
