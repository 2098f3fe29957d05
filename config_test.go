package main

import (
	"maps"
	"slices"
	"strings"
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

// METRICS_SOURCES is a comma-separated list of http(s) URLs; anything else stops the
// process at start, naming the variable.
func TestLoadConfigMetricsSources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value   string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"http://order:9464/metrics", []string{"http://order:9464/metrics"}, false},
		{" http://order:9464/metrics, https://gateway:9464/metrics ,", []string{"http://order:9464/metrics", "https://gateway:9464/metrics"}, false},
		{"order:9464", nil, true},
		{"http://order:9464/metrics,ftp://x/metrics", nil, true},
		{"http:///metrics", nil, true},
	} {
		cfg, err := loadConfig(mapEnv(map[string]string{"METRICS_SOURCES": tc.value}))
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "METRICS_SOURCES")):
			t.Errorf("METRICS_SOURCES=%q: got error %v, want one naming METRICS_SOURCES", tc.value, err)
		case !tc.wantErr && (err != nil || !slices.Equal(cfg.MetricsSources, tc.want)):
			t.Errorf("METRICS_SOURCES=%q: got %q %v, want %q", tc.value, cfg.MetricsSources, err, tc.want)
		}
	}
}
