// Package registry is msdemo's service registry: component instances announce themselves on
// the fanout exchange "msdemo.registry" (Announce), and a Table fed by those announcements
// (Table.Listen) tells the gateway where a live instance of a service is (Table.Pick).
//
// The wire format is one JSON object per announcement, so a component written in any
// language can join:
//
//	{"service": "product", "instance": "product-host1-4711", "url": "http://10.0.0.5:6004"}
//
// An instance that stops sends the same object with "leaving": true, and the table drops it
// at once; an instance that dies silently expires after the table's TTL.
package registry

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Exchange is the durable fanout exchange that announcements are published on.
const Exchange = "msdemo.registry"

// DefaultInterval is how often Announce repeats an announcement by default.
const DefaultInterval = 2 * time.Second

// DefaultTTL is how long a Table keeps an instance it has not heard from again:
// three announcement intervals, so one or two lost announcements do not drop it.
const DefaultTTL = 3 * DefaultInterval

// Instance is what one running instance of a component announces.
type Instance struct {
	Service  string `json:"service"`  // e.g. "product"; the gateway's first path segment
	Instance string `json:"instance"` // unique per process, e.g. "product-host1-4711"
	URL      string `json:"url"`      // base URL the gateway forwards to, e.g. "http://127.0.0.1:6004"
}

// announcement is the wire format: an Instance, and whether it is leaving.
type announcement struct {
	Instance
	Leaving bool `json:"leaving,omitempty"`
}

// Entry is an instance a Table has heard from, with when it last did.
type Entry struct {
	Instance
	LastSeen time.Time `json:"last_seen"`
}

// Table is the gateway's view of which instances are up. It is safe for concurrent use.
//
// Instances are added and refreshed by Observe (normally through Listen), removed by a
// leaving announcement, and ignored by Pick and Instances once they have not been heard
// from for the TTL. A static URL per service is the fallback when no instance is live.
type Table struct {
	ttl    time.Duration
	static map[string]string
	now    func() time.Time // time.Now; tests replace it

	// onRestart, if set, is called (outside the lock) with the URL of an instance that
	// another instance announced itself at: a process restarted on the same address.
	onRestart func(url string)

	mu       sync.RWMutex
	services map[string]*service
}

// service holds the instances of one service, in the order they were first seen.
type service struct {
	next      atomic.Uint64 // round-robin counter
	instances []*Entry
}

// NewTable returns an empty table whose instances expire after ttl (DefaultTTL if ttl <= 0).
// static maps a service name to the base URL used when no instance of it is live; it may
// be nil, and it is copied.
func NewTable(ttl time.Duration, static map[string]string) *Table {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s := make(map[string]string, len(static))
	for name, url := range static {
		if url != "" {
			s[name] = url
		}
	}
	return &Table{ttl: ttl, static: s, now: time.Now, services: make(map[string]*service)}
}

// OnRestart sets f to be called with the URL of an instance when another instance
// announces itself at that URL: the process there was restarted, and connections kept to
// the old one (keep-alive pools) are dead. Set it before the table is used.
func (t *Table) OnRestart(f func(url string)) { t.onRestart = f }

// Observe records that inst announced itself now. It ignores an announcement without a
// service, instance or URL. A new instance at the URL of another one of its service
// replaces it (the other was a process that died there without leaving), and OnRestart's
// function is told.
func (t *Table) Observe(inst Instance) {
	if inst.Service == "" || inst.Instance == "" || inst.URL == "" {
		return
	}
	if t.observe(inst) && t.onRestart != nil {
		t.onRestart(inst.URL)
	}
}

// observe records inst, and reports whether it replaced another instance at its URL.
func (t *Table) observe(inst Instance) (replaced bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	svc := t.services[inst.Service]
	if svc == nil {
		svc = &service{}
		t.services[inst.Service] = svc
	}
	for i, e := range svc.instances {
		if e.Instance.Instance == inst.Instance {
			// Entries are replaced, never changed in place, so a reader holding an old
			// pointer never sees a torn value.
			svc.instances[i] = &Entry{Instance: inst, LastSeen: now}
			return false
		}
	}
	// Drop expired instances while we hold the write lock, so the list cannot grow
	// without bound when instances come and go with fresh names, and the one that this
	// instance took the address of.
	svc.instances = slices.DeleteFunc(svc.instances, func(e *Entry) bool {
		if e.URL == inst.URL {
			replaced = true
			return true
		}
		return t.expired(e, now)
	})
	svc.instances = append(svc.instances, &Entry{Instance: inst, LastSeen: now})
	return replaced
}

// Forget removes the instance named inst of service at once (it announced that it leaves).
func (t *Table) Forget(serviceName, inst string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	svc := t.services[serviceName]
	if svc == nil {
		return
	}
	svc.instances = slices.DeleteFunc(svc.instances, func(e *Entry) bool { return e.Instance.Instance == inst })
}

// Drop removes the instances of serviceName at url at once: the gateway could not connect
// to it. An instance that is alive after all comes back with its next announcement.
func (t *Table) Drop(serviceName, url string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if svc := t.services[serviceName]; svc != nil {
		svc.instances = slices.DeleteFunc(svc.instances, func(e *Entry) bool { return e.URL == url })
	}
}

// Pick returns the base URL of a live instance of serviceName, rotating over the live
// instances on each call (round robin). Without a live instance it returns the static
// fallback for the service; ok is false when there is neither.
func (t *Table) Pick(serviceName string) (url string, ok bool) {
	now := t.now()
	t.mu.RLock()
	if svc := t.services[serviceName]; svc != nil && len(svc.instances) > 0 {
		n := uint64(len(svc.instances))
		start := svc.next.Add(1)
		for i := range n {
			e := svc.instances[(start+i)%n]
			if !t.expired(e, now) {
				t.mu.RUnlock()
				return e.URL, true
			}
		}
	}
	t.mu.RUnlock()
	url, ok = t.static[serviceName]
	return url, ok
}

// Instances returns the live instances, sorted by service and instance name.
func (t *Table) Instances() []Entry {
	now := t.now()
	t.mu.RLock()
	var list []Entry
	for _, svc := range t.services {
		for _, e := range svc.instances {
			if !t.expired(e, now) {
				list = append(list, *e)
			}
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(list, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Instance.Instance, b.Instance.Instance))
	})
	return list
}

// Static returns a copy of the static fallback URLs by service.
func (t *Table) Static() map[string]string {
	return maps.Clone(t.static)
}

// TTL returns how long an instance stays live after its last announcement.
func (t *Table) TTL() time.Duration { return t.ttl }

func (t *Table) expired(e *Entry, now time.Time) bool {
	return now.Sub(e.LastSeen) > t.ttl
}
