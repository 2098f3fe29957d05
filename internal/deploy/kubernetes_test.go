package deploy

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The Kubernetes manifests (deploy/kubernetes): a kustomize base and overlays.
const (
	kubernetesBase    = "deploy/kubernetes/base"
	kubernetesOverlay = "deploy/kubernetes/overlays/production"
	// secretName is the Secret the operator creates (deploy/kubernetes/README.md);
	// secretKeys are the keys the manifests may read from it.
	secretName = "msdemo-secrets"
	configName = "msdemo-config"
)

var secretKeys = []string{"token-key", "admin-password", "rabbitmq-password", "postgres-password"}

// singleReplica names the components that run one replica, and why; every other
// component is stateless and runs two, with a PodDisruptionBudget.
var singleReplica = map[string]string{}

// helperVars are environment variables the manifests set only to build another one's
// value with $(NAME) (Kubernetes expands those), not read by msdemo.
var helperVars = []string{"POD_IP", "RABBITMQ_PASSWORD", "POSTGRES_PASSWORD"}

// rendered is the objects a kustomization renders to, decoded strictly.
type rendered struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	configMaps   map[string]*corev1.ConfigMap
	all          []runtime.Object
}

// render builds the kustomization in dir (relative to the repository root) with
// kustomize's own API, as `kubectl apply -k` would, and decodes every object with
// client-go's scheme in strict mode: an unknown field (a typo such as readinessProbes), a
// duplicate field or a value of the wrong type fails the test.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	r := rendered{deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, res := range resources.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s %s: %v", dir, res.GetKind(), res.GetName(), err)
		}
		obj, _, err := decoder.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s: %s %s is not a valid Kubernetes object: %v", dir, res.GetKind(), res.GetName(), err)
			continue
		}
		r.all = append(r.all, obj)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r.deployments[o.Name] = o
		case *appsv1.StatefulSet:
			r.statefulSets[o.Name] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Secret:
			t.Errorf("%s: Secret %s: secrets are created by the operator, never kept in the repository", dir, o.Name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return r
}

// otelVars are the OpenTelemetry SDK's own variables that docs/tracing.md says apply to
// msdemo's traces; the SDK reads them, not config.go.
var otelVars = []string{
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
}

// msdemoVars returns the environment variables msdemo reads: every upper-case name with
// an underscore that config.go quotes (what it passes to getenv or lookupEnv, and the
// names it loops over, such as HTTP_READ_TIMEOUT), <COMPONENT>_ADDR of each component,
// and otelVars.
func msdemoVars(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, m := range regexp.MustCompile(`"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"`).FindAllSubmatch(src, -1) {
		vars = append(vars, string(m[1]))
	}
	for _, want := range []string{"RABBITMQ_URL", "MSDEMO_TOKEN_KEY", "HTTP_READ_TIMEOUT"} {
		if !slices.Contains(vars, want) {
			t.Fatalf("found %v in config.go, not %s: has the way it reads the environment changed?", vars, want)
		}
	}
	for _, name := range componentNames() {
		vars = append(vars, strings.ToUpper(name)+"_ADDR")
	}
	return append(vars, otelVars...)
}

func TestKubernetesManifestsRender(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{kubernetesBase, kubernetesOverlay} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			r := render(t, dir)
			checkComponents(t, r)
			checkEnvironment(t, r, msdemoVars(t))
			checkSecrets(t, r)
			checkAgainstCompose(t, r, loadCompose(t))
		})
	}
}

// checkComponents: every component is a Deployment of the image with -target=<name>, with
// its port, probes on /healthz, resource requests, the metrics annotations, a Service, and
// two replicas and a PodDisruptionBudget unless singleReplica says why not.
func checkComponents(t *testing.T, r rendered) {
	for name, c := range components {
		d := r.deployments[name]
		if d == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		want, why := int32(2), singleReplica[name]
		if why != "" {
			want = 1
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
			t.Errorf("Deployment %s: replicas %v, want %d", name, d.Spec.Replicas, want)
		}
		pod := d.Spec.Template
		if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("Deployment %s: its selector does not match its pods' labels %v (%v)", name, pod.Labels, err)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Errorf("Deployment %s: %d containers, want 1", name, len(pod.Spec.Containers))
			continue
		}
		ctr := pod.Spec.Containers[0]
		if !strings.HasPrefix(ctr.Image, image) && !strings.Contains(ctr.Image, "/"+image) {
			t.Errorf("Deployment %s: image %s, want msdemo's", name, ctr.Image)
		}
		if !slices.Equal(ctr.Args, []string{"-target=" + name}) {
			t.Errorf("Deployment %s: args %q, want -target=%s", name, ctr.Args, name)
		}
		ports := map[string]int32{}
		for _, p := range ctr.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if ports["http"] != int32(c.port) || ports["metrics"] != metricsPort {
			t.Errorf("Deployment %s: container ports %v, want http %d and metrics %d", name, ports, c.port, metricsPort)
		}
		if v := envValue(ctr, strings.ToUpper(name)+"_ADDR"); v != fmt.Sprintf(":%d", c.port) {
			t.Errorf("Deployment %s: %s_ADDR=%q, want :%d", name, strings.ToUpper(name), v, c.port)
		}
		if c.routed && !strings.Contains(envValue(ctr, "ADVERTISE_URL"), "$(POD_IP)") {
			t.Errorf("Deployment %s: ADVERTISE_URL=%q, want the pod's own address, $(POD_IP)", name, envValue(ctr, "ADVERTISE_URL"))
		}
		for probe, p := range map[string]*corev1.Probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe, "startup": ctr.StartupProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "http" {
				t.Errorf("Deployment %s: %s probe %+v, want GET /healthz on port http", name, probe, p)
			}
		}
		if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
			t.Errorf("Deployment %s: resources %v, want CPU and memory requests and a memory limit", name, ctr.Resources)
		}
		a := pod.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(metricsPort) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("Deployment %s: scrape annotations %v, want port %d path /metrics", name, a, metricsPort)
		}
		if sc := ctr.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("Deployment %s: want a read-only root file system, no privilege escalation and every capability dropped", name)
		}
		nonRoot := pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.RunAsNonRoot != nil && *pod.Spec.SecurityContext.RunAsNonRoot
		if sc := ctr.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if !nonRoot {
			t.Errorf("Deployment %s: want runAsNonRoot", name)
		}
		if svc := r.services[name]; svc == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) ||
			len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != int32(c.port) {
			t.Errorf("Service %s: want one selecting the Deployment's pods on port %d, got %+v", name, c.port, svc)
		}
		if why == "" && !slices.ContainsFunc(r.pdbs, func(b *policyv1.PodDisruptionBudget) bool {
			sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			return err == nil && sel.Matches(labels.Set(pod.Labels)) && b.Spec.MinAvailable != nil && b.Spec.MinAvailable.IntValue() >= 1
		}) {
			t.Errorf("Deployment %s: no PodDisruptionBudget keeps one of its pods available", name)
		}
	}
	for name := range r.deployments {
		if _, ok := components[name]; !ok {
			t.Errorf("Deployment %s is not a component of msdemo (registry.Components)", name)
		}
	}
}

// checkEnvironment: every variable a component sets (itself or through the ConfigMap) is
// one msdemo reads, or a helper that another's value uses; every $(NAME) refers to a
// variable set before it; each component's METRICS_ADDR (its own or the ConfigMap's) is
// the port its pods are annotated with for scraping.
func checkEnvironment(t *testing.T, r rendered, known []string) {
	config := r.configMaps[configName]
	if config == nil {
		t.Fatalf("no ConfigMap %s", configName)
	}
	for name := range config.Data {
		if !slices.Contains(known, name) {
			t.Errorf("ConfigMap %s: %s is not a variable msdemo reads (config.go)", configName, name)
		}
	}
	if got := config.Data["METRICS_ADDR"]; got != fmt.Sprintf(":%d", metricsPort) {
		t.Errorf("ConfigMap %s: METRICS_ADDR=%q, want :%d (the annotated port, on the pod's network)", configName, got, metricsPort)
	}
	reference := regexp.MustCompile(`\$\(([A-Za-z0-9_]+)\)`)
	for name := range components {
		d := r.deployments[name]
		if d == nil {
			continue
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		if !slices.ContainsFunc(ctr.EnvFrom, func(s corev1.EnvFromSource) bool {
			return s.ConfigMapRef != nil && s.ConfigMapRef.Name == configName
		}) {
			t.Errorf("Deployment %s: does not take its environment from ConfigMap %s", name, configName)
		}
		var set, used []string
		for _, e := range ctr.Env {
			if !slices.Contains(known, e.Name) && !slices.Contains(helperVars, e.Name) {
				t.Errorf("Deployment %s: %s is not a variable msdemo reads (config.go)", name, e.Name)
			}
			for _, m := range reference.FindAllStringSubmatch(e.Value, -1) {
				if !slices.Contains(set, m[1]) {
					t.Errorf("Deployment %s: %s uses $(%s), which is not set before it", name, e.Name, m[1])
				}
				used = append(used, m[1])
			}
			set = append(set, e.Name)
		}
		for _, helper := range helperVars {
			if slices.Contains(set, helper) && !slices.Contains(used, helper) {
				t.Errorf("Deployment %s: sets %s but no variable uses $(%s)", name, helper, helper)
			}
		}
		// A variable of the container's own wins over the ConfigMap's.
		metricsAddr := config.Data["METRICS_ADDR"]
		if slices.Contains(set, "METRICS_ADDR") {
			metricsAddr = envValue(ctr, "METRICS_ADDR")
		}
		if port := d.Spec.Template.Annotations["prometheus.io/port"]; metricsAddr != ":"+port {
			t.Errorf("Deployment %s: METRICS_ADDR=%q, but its pods are annotated for scraping on port %s", name, metricsAddr, port)
		}
	}
}

// imageDataDir returns DATA_DIR as the Dockerfile sets it for every component.
func imageDataDir(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENV DATA_DIR=(\S+)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("the Dockerfile sets no DATA_DIR (ENV DATA_DIR=...)")
	}
	return string(m[1])
}

// composeOnly lists the variables compose.yaml sets for a component that the Kubernetes
// manifests leave out on purpose, and why.
var composeOnly = map[string]string{
	"DATA_DIR":                    "the image sets it; the pods mount an emptyDir there",
	"OTEL_EXPORTER_OTLP_ENDPOINT": "compose runs Jaeger; on a cluster the operator names a collector in msdemo-config",
	"SAGA_TIMEOUT":                "compose lets the tests shorten it; the default applies",
	"METRICS_SOURCES":             "the admin's System page on compose; on a cluster Prometheus scrapes the pods",
}

// checkAgainstCompose: each component gets, from its own env or the ConfigMap, every
// variable compose.yaml gives it (but composeOnly), so what the binary needs on compose
// (a token key, a database URL) is not forgotten on Kubernetes. And what only Kubernetes
// needs: DATA_DIR is a mounted volume (the root file system is read-only), the event store
// keeps its events in MongoDB (not in an emptyDir), and the gateway's static fallback for
// each service it routes to is that service's Kubernetes Service.
func checkAgainstCompose(t *testing.T, r rendered, project *types.Project) {
	config := r.configMaps[configName]
	dataDir := imageDataDir(t)
	for name := range components {
		d := r.deployments[name]
		svc, ok := project.Services[name]
		if d == nil || !ok || config == nil {
			continue
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		set := maps.Clone(config.Data)
		for _, e := range ctr.Env {
			set[e.Name] = e.Value
			if e.ValueFrom != nil {
				set[e.Name] = "(from elsewhere)"
			}
		}
		for key := range svc.Environment {
			if _, ok := set[key]; !ok && composeOnly[key] == "" {
				t.Errorf("Deployment %s: compose.yaml sets %s, the Deployment and ConfigMap %s do not", name, key, configName)
			}
		}
		dir := cmp.Or(set["DATA_DIR"], dataDir)
		if !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir && !m.ReadOnly }) {
			t.Errorf("Deployment %s: no writable volume mounted at DATA_DIR %s (the root file system is read-only)", name, dir)
		}
		if name == "eventstore" && set["MONGODB_URI"] == "" {
			t.Errorf("Deployment %s: no MONGODB_URI: the events would be kept in an emptyDir and lost with the pod", name)
		}
		if name == "gateway" {
			static := map[string]string{}
			for pair := range strings.SplitSeq(set["GATEWAY_UPSTREAMS"], ",") {
				if k, v, ok := strings.Cut(pair, "="); ok {
					static[k] = v
				}
			}
			for upstream, u := range components {
				if want := fmt.Sprintf("http://%s:%d", upstream, u.port); u.routed && static[upstream] != want {
					t.Errorf("Deployment gateway: GATEWAY_UPSTREAMS gives %s %q, want its Service %s", upstream, static[upstream], want)
				}
				if s := r.services[upstream]; u.routed && (s == nil || len(s.Spec.Ports) == 0 || s.Spec.Ports[0].Port != int32(u.port)) {
					t.Errorf("Deployment gateway: no Service %s on port %d for its fallback", upstream, u.port)
				}
			}
		}
	}
}

// secretVar matches the names of variables that hold a secret: a password or a key.
var secretVar = regexp.MustCompile(`(?:PASSWORD|_PASS|_KEY|SECRET|TOKEN)$`)

// urlPassword finds the password of a URL's user information (scheme://user:password@).
var urlPassword = regexp.MustCompile(`://[^/:@\s]*:([^@\s]*)@`)

// checkSecrets: no secret is written in the manifests. Every variable that holds one, in
// a component or a server, comes from the operator's Secret by a known key, none is in
// the ConfigMap, and a URL with a password takes it from such a variable with $(NAME).
func checkSecrets(t *testing.T, r rendered) {
	checkURLs := func(where, value string) {
		for _, m := range urlPassword.FindAllStringSubmatch(value, -1) {
			if name, ok := strings.CutPrefix(m[1], "$("); !ok || !secretVar.MatchString(strings.TrimSuffix(name, ")")) {
				t.Errorf("%s: a URL with its password written in; take it from a variable set from the Secret %s, as $(RABBITMQ_PASSWORD)", where, secretName)
			}
		}
	}
	for _, config := range r.configMaps {
		for key, value := range config.Data {
			if secretVar.MatchString(key) {
				t.Errorf("ConfigMap %s: %s holds a secret; take it from the Secret %s (secretKeyRef)", config.Name, key, secretName)
			}
			checkURLs(fmt.Sprintf("ConfigMap %s: %s", config.Name, key), value)
		}
	}
	pods := map[string]corev1.PodTemplateSpec{}
	for name, d := range r.deployments {
		pods["Deployment "+name] = d.Spec.Template
	}
	for name, s := range r.statefulSets {
		pods["StatefulSet "+name] = s.Spec.Template
	}
	for owner, pod := range pods {
		for _, ctr := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
			for _, e := range ctr.Env {
				where := fmt.Sprintf("%s: container %s: %s", owner, ctr.Name, e.Name)
				checkURLs(where, e.Value)
				var ref *corev1.SecretKeySelector
				if e.ValueFrom != nil {
					ref = e.ValueFrom.SecretKeyRef
				}
				switch {
				case ref != nil && (ref.Name != secretName || !slices.Contains(secretKeys, ref.Key)):
					t.Errorf("%s from secret %s key %s, want %s with one of %v", where, ref.Name, ref.Key, secretName, secretKeys)
				case ref == nil && secretVar.MatchString(e.Name):
					t.Errorf("%s holds a secret; take it from the Secret %s (secretKeyRef), not a value", where, secretName)
				}
			}
		}
	}
}

// envValue returns the value ctr sets for name ("" if none, or if it comes from elsewhere).
func envValue(ctr corev1.Container, name string) string {
	for _, e := range ctr.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// The production overlay declares quorum queues, puts everything in the msdemo namespace,
// and makes the sites' cookies Secure behind its HTTPS ingress.
func TestKubernetesProductionOverlay(t *testing.T) {
	t.Parallel()
	r := render(t, kubernetesOverlay)
	config := r.configMaps[configName]
	if config.Data["RABBITMQ_QUEUE_TYPE"] != "quorum" || config.Data["COOKIE_SECURE"] != "true" {
		t.Errorf("ConfigMap %s: RABBITMQ_QUEUE_TYPE=%q COOKIE_SECURE=%q, want quorum and true", configName,
			config.Data["RABBITMQ_QUEUE_TYPE"], config.Data["COOKIE_SECURE"])
	}
	for _, obj := range r.all {
		if m, ok := obj.(interface{ GetNamespace() string }); ok && m.GetNamespace() != "msdemo" {
			t.Errorf("%T %v: namespace %q, want msdemo", obj, obj, m.GetNamespace())
		}
	}
	for name, d := range r.deployments {
		if img := d.Spec.Template.Spec.Containers[0].Image; !strings.Contains(img, ":") {
			t.Errorf("Deployment %s: image %s without a tag", name, img)
		}
	}
}
