package main

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
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

// TestSecuritySettings: TRUSTED_PROXIES is a list, MSDEMO_RATE_LIMITS is on or off, and
// anything else is an error that names the variable.
func TestSecuritySettings(t *testing.T) {
	cfg, err := loadConfig(mapEnv(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7", "MSDEMO_RATE_LIMITS": "off"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.TrustedProxies, []string{"10.0.0.0/8", "192.0.2.7"}) || !cfg.RateLimitsOff || !customerConfig(cfg).Limits.Off {
		t.Errorf("got trusted proxies %v, rate limits off %v, want the two proxies and off", cfg.TrustedProxies, cfg.RateLimitsOff)
	}
	if cfg, err = loadConfig(mapEnv(nil)); err != nil || cfg.TrustedProxies != nil || cfg.RateLimitsOff {
		t.Errorf("defaults: got %v, %v, %v; want no proxies (the gateway's default) and limits on", cfg.TrustedProxies, cfg.RateLimitsOff, err)
	}
	if _, err := loadConfig(mapEnv(map[string]string{"MSDEMO_RATE_LIMITS": "sometimes"})); err == nil || !strings.Contains(err.Error(), "MSDEMO_RATE_LIMITS") {
		t.Errorf("MSDEMO_RATE_LIMITS=sometimes: got %v, want an error naming it", err)
	}
}

// RABBITMQ_QUEUE_TYPE reaches the event store and every service; classic is the default.
func TestQueueTypeSetting(t *testing.T) {
	cfg, err := loadConfig(mapEnv(map[string]string{"RABBITMQ_QUEUE_TYPE": "quorum"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueType != bus.Quorum || orderConfig(cfg).Service.QueueType != bus.Quorum || customerConfig(cfg).Service.QueueType != bus.Quorum {
		t.Errorf("RABBITMQ_QUEUE_TYPE=quorum: got %q (order %q), want quorum everywhere", cfg.QueueType, orderConfig(cfg).Service.QueueType)
	}
	if cfg, err = loadConfig(mapEnv(nil)); err != nil || cfg.QueueType != bus.Classic {
		t.Errorf("default: got %q, %v; want classic", cfg.QueueType, err)
	}
	if _, err := loadConfig(mapEnv(map[string]string{"RABBITMQ_QUEUE_TYPE": "stream"})); err == nil || !strings.Contains(err.Error(), "RABBITMQ_QUEUE_TYPE") {
		t.Errorf("RABBITMQ_QUEUE_TYPE=stream: got %v, want an error naming it", err)
	}
}

// Tracing is on by default without an exporter; the standard variables turn it off or
// make it export.
func TestTracingConfig(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want telemetry.TraceConfig
	}{
		{nil, telemetry.TraceConfig{}},
		{map[string]string{"OTEL_SDK_DISABLED": "TRUE"}, telemetry.TraceConfig{Disabled: true}},
		{map[string]string{"OTEL_SDK_DISABLED": "false"}, telemetry.TraceConfig{}},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, telemetry.TraceConfig{Export: true}},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"}, telemetry.TraceConfig{Export: true}},
		{map[string]string{"TRACE_UI_URL": "http://localhost:16686/trace/"}, telemetry.TraceConfig{UIURL: "http://localhost:16686/trace/"}},
	} {
		cfg, err := loadConfig(mapEnv(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Tracing != tt.want {
			t.Errorf("%v: got %+v, want %+v", tt.env, cfg.Tracing, tt.want)
		}
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

// METRICS_PPROF is on or off (default), and on needs a metrics listener to serve on.
func TestLoadConfigProfiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env     map[string]string
		want    bool
		wantErr bool
	}{
		{map[string]string{}, false, false},
		{map[string]string{"METRICS_PPROF": "off"}, false, false},
		{map[string]string{"METRICS_PPROF": "on"}, true, false},
		{map[string]string{"METRICS_PPROF": "yes"}, false, true},
		{map[string]string{"METRICS_PPROF": "on", "METRICS_ADDR": ""}, false, true},
	} {
		cfg, err := loadConfig(mapEnv(tc.env))
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "METRICS_PPROF")):
			t.Errorf("%v: got error %v, want one naming METRICS_PPROF", tc.env, err)
		case !tc.wantErr && (err != nil || cfg.Profiles != tc.want):
			t.Errorf("%v: got %v %v, want %v", tc.env, cfg.Profiles, err, tc.want)
		}
	}
}

// The event store runs on one database: MongoDB or the embedded FerretDB on PostgreSQL,
// not both.
func TestEventstoreDatabaseSettings(t *testing.T) {
	cfg, err := loadConfig(mapEnv(map[string]string{"EVENTSTORE_POSTGRES_URL": "postgres://postgres@127.0.0.1:5432/es"}))
	if err != nil || cfg.EventstorePostgresURL != "postgres://postgres@127.0.0.1:5432/es" {
		t.Errorf("EVENTSTORE_POSTGRES_URL: got %q, %v", cfg.EventstorePostgresURL, err)
	}
	_, err = loadConfig(mapEnv(map[string]string{"EVENTSTORE_POSTGRES_URL": "postgres://x/es", "MONGODB_URI": "mongodb://mongo"}))
	if err == nil || !strings.Contains(err.Error(), "EVENTSTORE_POSTGRES_URL") {
		t.Errorf("both set: got %v, want an error naming both", err)
	}
}
