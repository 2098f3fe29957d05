package main

import (
	"maps"
	"slices"
	"testing"

	"github.com/msdemo/msdemo/internal/registry"
)

// TestComponentsAreTheRegistrys: -target, rebuild and the listen addresses cover exactly
// the components that internal/registry lists, so that adding one there is noticed here.
func TestComponentsAreTheRegistrys(t *testing.T) {
	var names []string
	for _, c := range registry.Components() {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if got := componentNames(); !slices.Equal(got, names) {
		t.Errorf("components: got %v, want registry.Components() %v", got, names)
	}
	subscribers := slices.Sorted(slices.Values(registry.Subscribers()))
	if got := slices.Sorted(maps.Keys(rebuilders)); !slices.Equal(got, subscribers) {
		t.Errorf("rebuilders: got %v, want registry.Subscribers() %v", got, subscribers)
	}
	cfg, err := loadConfig(mapEnv(map[string]string{"ORDER_ADDR": ":7003"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr[registry.Order] != ":7003" || cfg.Addr[registry.Admin] != ":5002" || len(cfg.Addr) != len(names) {
		t.Errorf("got addresses %v, want ORDER_ADDR's for order and the defaults for the rest", cfg.Addr)
	}
}
