package registry_test

import (
	"slices"
	"testing"

	"github.com/msdemo/msdemo/internal/registry"
)

func TestComponents(t *testing.T) {
	names, addrs := map[string]bool{}, map[string]bool{}
	for _, c := range registry.Components() {
		if names[c.Name] || addrs[c.DefaultAddr] {
			t.Errorf("%s %s: name or address repeated", c.Name, c.DefaultAddr)
		}
		names[c.Name], addrs[c.DefaultAddr] = true, true
	}
	if len(names) != 8 {
		t.Errorf("got %d components, want 8", len(names))
	}
	up := registry.Upstreams()
	if want := []string{"customer", "product", "order", "accounting", "eventstore"}; !slices.Equal(up, want) {
		t.Errorf("Upstreams() = %v, want %v", up, want)
	}
	for _, s := range registry.Subscribers() {
		if !slices.Contains(up, s) {
			t.Errorf("subscriber %s is not behind the gateway: its dead letters would be unreachable", s)
		}
	}
	registry.Components()[0].Name = "changed"
	if registry.Components()[0].Name == "changed" {
		t.Error("Components() gave the package's own table")
	}
}
