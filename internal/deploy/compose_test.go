package deploy

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/msdemo/msdemo/internal/registry"
)

// component describes one -target of the msdemo binary as compose.yaml must run it.
type component struct {
	port   int  // the port it listens on: <NAME>_ADDR=:port
	routed bool // the gateway routes to it, so it announces ADVERTISE_URL
	public bool // it may publish its port on the host and join the edge network
}

// components lists every value msdemo accepts for -target: registry.Components, where the
// components not behind the gateway (the gateway and the two sites) are the public edge.
var components = func() map[string]component {
	m := map[string]component{}
	for _, c := range registry.Components() {
		port, err := strconv.Atoi(strings.TrimPrefix(c.DefaultAddr, ":"))
		if err != nil {
			panic(fmt.Sprintf("%s: default address %q is not :port", c.Name, c.DefaultAddr))
		}
		m[c.Name] = component{port: port, routed: c.Upstream, public: !c.Upstream}
	}
	return m
}()

// servers lists the third-party services compose.yaml may run next to the components.
var servers = []string{"rabbitmq", "mongo", "postgres", "redis"}

// observers lists the services that watch the components: the shop does not depend on
// them (none waits for them), and they may publish their UIs on the host's loopback.
var observers = []string{"prometheus", "jaeger"}

// How the components are watched in compose.yaml: each serves /metrics on metricsPort
// and sends traces to otlpEndpoint; Prometheus reads its scrape configuration from
// prometheusConfig (a path in the repository) mounted at prometheusConfigIn.
const (
	metricsPort        = 9464
	otlpEndpoint       = "http://jaeger:4318"
	prometheusConfig   = "deploy/prometheus/prometheus.yml"
	prometheusConfigIn = "/etc/prometheus/prometheus.yml"
)

const (
	image       = "msdemo"   // image repository every component container runs
	edgeNetwork = "net-edge" // the network shared by the gateway and the sites
)

// loadCompose loads ../../compose.yaml the way `docker compose` does (interpolation,
// normalization, consistency checks) with an empty environment, so the defaults apply.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(nil),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return project
}

func TestComposeServicesAreKnown(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	for name, svc := range project.Services {
		_, isComponent := components[name]
		switch {
		case isComponent:
		case isMsdemo(svc):
			t.Errorf("service %s runs image %s but is not a -target; want one of %v", name, svc.Image, componentNames())
		case !slices.Contains(servers, name) && !slices.Contains(observers, name):
			t.Errorf("service %s is neither a component nor a known server %v or observer %v; add it to the lists in this test", name, servers, observers)
		}
	}
	for _, name := range []string{"eventstore", "gateway"} {
		if _, ok := project.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	for name, svc := range project.Services {
		hc := svc.HealthCheck
		switch {
		case hc == nil:
			t.Errorf("service %s has no healthcheck", name)
		case hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE":
			t.Errorf("service %s: healthcheck disabled, got test %q", name, hc.Test)
		case hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil:
			t.Errorf("service %s: healthcheck needs interval, timeout and retries, got %+v", name, hc)
		}
	}
}

func TestComposeDependsOnHealthy(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	for name, svc := range project.Services {
		for dep, cfg := range svc.DependsOn {
			if cfg.Condition != types.ServiceConditionHealthy {
				t.Errorf("service %s depends on %s with condition %q, want %q", name, dep, cfg.Condition, types.ServiceConditionHealthy)
			}
		}
	}
}

func TestComposePublishedPorts(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	for name, svc := range project.Services {
		c, isComponent := components[name]
		if slices.Contains(observers, name) {
			for _, p := range svc.Ports {
				if p.HostIP != "127.0.0.1" {
					t.Errorf("service %s publishes %d on %q; an observer's UI (no login) may publish on 127.0.0.1 only", name, p.Target, p.HostIP)
				}
			}
			continue
		}
		if !isComponent || !c.public {
			if len(svc.Ports) > 0 {
				t.Errorf("service %s publishes %v; only %v may publish ports", name, svc.Ports, publicNames())
			}
			continue
		}
		for _, p := range svc.Ports {
			if int(p.Target) != c.port {
				t.Errorf("service %s publishes container port %d, want %d", name, p.Target, c.port)
			}
		}
	}
	if gw, ok := project.Services["gateway"]; ok && len(gw.Ports) == 0 {
		t.Errorf("gateway publishes no port, want %d", components["gateway"].port)
	}
}

func TestComposeComponents(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	root := filepath.Dir(project.ComposeFiles[0])
	for name, svc := range project.Services {
		c, isComponent := components[name]
		if !isComponent {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if !isMsdemo(svc) {
				t.Errorf("image: got %q, want %s:<tag>", svc.Image, image)
			}
			if svc.Build == nil || svc.Build.Context != root {
				t.Errorf("build: got %+v, want context %s (the repository root)", svc.Build, root)
			}
			if got, want := []string(svc.Command), []string{"-target=" + name}; !slices.Equal(got, want) {
				t.Errorf("command: got %q, want %q", got, want)
			}
			addrVar := strings.ToUpper(name) + "_ADDR"
			if got, want := env(svc, addrVar), fmt.Sprintf(":%d", c.port); got != want {
				t.Errorf("%s: got %q, want %q", addrVar, got, want)
			}
			healthURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", c.port)
			want := []string{"CMD", "msdemo", "healthcheck", "-url", healthURL}
			if svc.HealthCheck != nil && !slices.Equal([]string(svc.HealthCheck.Test), want) {
				t.Errorf("healthcheck test: got %q, want %q", svc.HealthCheck.Test, want)
			}
			advertise, hasAdvertise := svc.Environment["ADVERTISE_URL"]
			switch {
			case c.routed && !hasAdvertise:
				t.Errorf("ADVERTISE_URL missing; the gateway routes to %s only after it announces itself", name)
			case hasAdvertise && (advertise == nil || *advertise != fmt.Sprintf("http://%s:%d", name, c.port)):
				t.Errorf("ADVERTISE_URL: got %q, want %q", env(svc, "ADVERTISE_URL"), fmt.Sprintf("http://%s:%d", name, c.port))
			}
		})
	}
}

// TestComposeTelemetry checks that every component can be watched: it serves /metrics on
// metricsPort beyond its loopback and exports traces to Jaeger, Prometheus scrapes every
// one of them (and nothing else) and shares a network with each, and the admin site's
// system page reads every other component's /metrics.
func TestComposeTelemetry(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	prom, ok := project.Services["prometheus"]
	if !ok {
		t.Fatal("service prometheus missing")
	}
	jaeger, ok := project.Services["jaeger"]
	if !ok {
		t.Fatal("service jaeger missing")
	}
	targets := prometheusTargets(t, filepath.Join(filepath.Dir(project.ComposeFiles[0]), prometheusConfig))
	mounted := false
	for _, v := range prom.Volumes {
		mounted = mounted || (strings.HasSuffix(filepath.ToSlash(v.Source), prometheusConfig) && v.Target == prometheusConfigIn)
	}
	if !mounted {
		t.Errorf("prometheus: %s is not mounted at %s (got %+v)", prometheusConfig, prometheusConfigIn, prom.Volumes)
	}
	var sources []string
	if admin, ok := project.Services["admin"]; ok {
		for _, u := range urlsIn(env(admin, "METRICS_SOURCES")) {
			sources = append(sources, u.Host)
		}
	}
	for name, svc := range project.Services {
		if _, isComponent := components[name]; !isComponent {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if got, want := env(svc, "METRICS_ADDR"), fmt.Sprintf(":%d", metricsPort); got != want {
				t.Errorf("METRICS_ADDR: got %q, want %q (the default listens on loopback only)", got, want)
			}
			if got := env(svc, "OTEL_EXPORTER_OTLP_ENDPOINT"); got != otlpEndpoint {
				t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: got %q, want %q", got, otlpEndpoint)
			}
			target := fmt.Sprintf("%s:%d", name, metricsPort)
			if !slices.Contains(targets, target) {
				t.Errorf("%s does not scrape %s; its targets: %v", prometheusConfig, target, targets)
			}
			if !shareNetwork(svc, prom) {
				t.Errorf("prometheus cannot reach %s: no shared network (got %v and %v)", name, keys(svc.Networks), keys(prom.Networks))
			}
			if !shareNetwork(svc, jaeger) {
				t.Errorf("%s cannot reach jaeger: no shared network (got %v and %v)", name, keys(svc.Networks), keys(jaeger.Networks))
			}
			if name != "admin" && !slices.Contains(sources, target) {
				t.Errorf("admin's METRICS_SOURCES does not name %s's /metrics (%s); got %v", name, target, sources)
			}
		})
	}
	for _, target := range targets {
		host, port, _ := strings.Cut(target, ":")
		if _, ok := components[host]; !ok || port != strconv.Itoa(metricsPort) {
			t.Errorf("%s scrapes %s, which is no component's :%d", prometheusConfig, target, metricsPort)
		}
	}
}

// prometheusTargets returns every static target of the Prometheus configuration at path,
// failing t if it cannot be read or names no metrics path other than /metrics.
func prometheusTargets(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the Prometheus configuration: %v", err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("%s: job %s scrapes %s, want /metrics", path, sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	return targets
}

func TestComposeEdgeNetwork(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	for name, svc := range project.Services {
		_, onEdge := svc.Networks[edgeNetwork]
		if onEdge && !components[name].public {
			t.Errorf("service %s is on %s; only %v may be", name, edgeNetwork, publicNames())
		}
	}
}

// TestComposeURLsReachable checks every environment value that is a URL naming
// another service: the two must share a network, a server must be waited for, and
// a component must be addressed on its own port.
func TestComposeURLsReachable(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	for name, svc := range project.Services {
		for key, value := range svc.Environment {
			if value == nil {
				continue
			}
			for _, u := range urlsIn(*value) {
				checkURL(t, project, name, key, u)
			}
		}
	}
}

// checkURL checks that u, found in the environment variable key of service name,
// reaches the service it names.
func checkURL(t *testing.T, project *types.Project, name, key string, u *url.URL) {
	t.Helper()
	svc := project.Services[name]
	host := u.Hostname()
	target, ok := project.Services[host]
	if !ok || host == name {
		return
	}
	if !shareNetwork(svc, target) {
		t.Errorf("service %s: %s names %s, but they share no network (got %v and %v)",
			name, key, host, keys(svc.Networks), keys(target.Networks))
	}
	if slices.Contains(servers, host) {
		if _, ok := svc.DependsOn[host]; !ok {
			t.Errorf("service %s: %s names server %s, but %s does not depend on it", name, key, host, name)
		}
	}
	if slices.Contains(observers, host) {
		if _, ok := svc.DependsOn[host]; ok {
			t.Errorf("service %s depends on observer %s; the shop must run while it is down", name, host)
		}
	}
	if c, ok := components[host]; ok {
		want := strconv.Itoa(c.port)
		if key == "METRICS_SOURCES" {
			want = strconv.Itoa(metricsPort)
		}
		if got := u.Port(); got != want {
			t.Errorf("service %s: %s port: got %q, want %q", name, key, got, want)
		}
	}
}

// urlsIn returns the URLs in an environment value: the value itself, or each
// value of a "name=url,name=url" list such as GATEWAY_UPSTREAMS.
func urlsIn(value string) []*url.URL {
	var urls []*url.URL
	for part := range strings.SplitSeq(value, ",") {
		if name, rest, ok := strings.Cut(part, "="); ok && !strings.Contains(name, "://") {
			part = rest
		}
		if u, err := url.Parse(strings.TrimSpace(part)); err == nil && u.Host != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// isMsdemo reports whether svc runs the msdemo image, whatever its tag.
func isMsdemo(svc types.ServiceConfig) bool {
	repo, _, _ := strings.Cut(svc.Image, ":")
	return repo == image
}

// env returns the value of key in svc's environment, or "" if unset.
func env(svc types.ServiceConfig, key string) string {
	if v := svc.Environment[key]; v != nil {
		return *v
	}
	return ""
}

func shareNetwork(a, b types.ServiceConfig) bool {
	for n := range a.Networks {
		if _, ok := b.Networks[n]; ok {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func componentNames() []string { return keys(components) }

func publicNames() []string {
	var names []string
	for _, name := range componentNames() {
		if components[name].public {
			names = append(names, name)
		}
	}
	return names
}
