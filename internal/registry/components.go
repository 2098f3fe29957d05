package registry

import "slices"

// The names of the shop's components, declared once. A name is what `msdemo -target=<name>`
// runs, the prefix of its <NAME>_ADDR variable, the service its instances announce
// (Instance.Service) and, for a service behind the gateway, the first segment of its
// routes there (/<name>/...).
const (
	Customer   = "customer"
	Product    = "product"
	Order      = "order"
	Accounting = "accounting"
	EventStore = "eventstore"
	Gateway    = "gateway"
	Storefront = "storefront"
	Admin      = "admin"
)

// Component is one of the shop's components and what the rest of the shop needs to know
// about it.
type Component struct {
	Name string
	// DefaultAddr is its listen address when <NAME>_ADDR is unset (DESIGN.md's ports).
	DefaultAddr string
	// Upstream: the gateway forwards /<Name>/... to a live instance of it.
	Upstream bool
	// Subscriber: it keeps a read model fed by its durable event queue
	// (event.Queue(Name)), so `msdemo rebuild` rebuilds it and managers see its dead
	// letters at /<Name>/dead-letters.
	Subscriber bool
}

// components is the table the functions below answer from; it is never changed.
var components = []Component{
	{Name: Customer, DefaultAddr: ":6002", Upstream: true, Subscriber: true},
	{Name: Product, DefaultAddr: ":6004", Upstream: true, Subscriber: true},
	{Name: Order, DefaultAddr: ":6003", Upstream: true, Subscriber: true},
	{Name: Accounting, DefaultAddr: ":6001", Upstream: true, Subscriber: true},
	{Name: EventStore, DefaultAddr: ":6005", Upstream: true},
	{Name: Gateway, DefaultAddr: ":8080"},
	{Name: Storefront, DefaultAddr: ":5001"},
	{Name: Admin, DefaultAddr: ":5002"},
}

// Components returns every component of the shop: the services behind the gateway first,
// in the order the managers' pages list them, then the gateway and the two sites. The
// slice is the caller's.
func Components() []Component { return slices.Clone(components) }

// Upstreams returns the names of the services the gateway forwards to, in the order of
// Components.
func Upstreams() []string { return names(func(c Component) bool { return c.Upstream }) }

// Subscribers returns the names of the services with an event queue and a read model, in
// the order of Components.
func Subscribers() []string { return names(func(c Component) bool { return c.Subscriber }) }

// DefaultAddr returns the default listen address of the component name, or "" for a name
// that is not one of Components.
func DefaultAddr(name string) string {
	for _, c := range components {
		if c.Name == name {
			return c.DefaultAddr
		}
	}
	return ""
}

func names(keep func(Component) bool) []string {
	var out []string
	for _, c := range components {
		if keep(c) {
			out = append(out, c.Name)
		}
	}
	return out
}
