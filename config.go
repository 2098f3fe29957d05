package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msdemo/msdemo/admin"
	"github.com/msdemo/msdemo/eventstore"
	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/telemetry"
	"github.com/msdemo/msdemo/internal/web"
	"github.com/msdemo/msdemo/services/accounting"
	"github.com/msdemo/msdemo/services/customer"
	"github.com/msdemo/msdemo/services/gateway"
	"github.com/msdemo/msdemo/services/order"
	"github.com/msdemo/msdemo/services/product"
	"github.com/msdemo/msdemo/storefront"
)

// config is everything msdemo reads from the environment, loaded once by run.
type config struct {
	RabbitMQURL string
	// QueueType is what the event store and the services declare their durable queues as
	// (RABBITMQ_QUEUE_TYPE: classic, the default, or quorum for a RabbitMQ cluster).
	QueueType bus.QueueType
	MongoURI  string
	// EventstorePostgresURL runs the event store's embedded FerretDB on PostgreSQL, so
	// that several event store processes share one store (EVENTSTORE_POSTGRES_URL).
	EventstorePostgresURL string
	PostgresURL           string
	RedisURL              string
	DataDir               string
	EventstoreURL         string // the event store's HTTP API, for the services' catch-up
	GatewayURL            string // the REST API, for the sites
	LogLevel              slog.Level
	// Addr is each component's listen address, from <COMPONENT>_ADDR.
	Addr map[string]string
	// AdvertiseURL is the URL the one component of a process that the gateway routes to
	// announces (ADVERTISE_URL; compose sets it per container); empty, each announces
	// http://127.0.0.1:<port>. checkAdvertiseURL refuses it for several such components.
	AdvertiseURL string
	// Upstreams are the gateway's static fallbacks, from GATEWAY_UPSTREAMS
	// ("product=http://product:6004,customer=http://customer:6002").
	Upstreams map[string]string
	// TokenKeyHex is MSDEMO_TOKEN_KEY, the token key set (hex keys separated by commas,
	// the signing key first; see auth.LoadKey); empty: the keys in DATA_DIR/token.key.
	TokenKeyHex string
	// TokenKey is loaded from TokenKeyHex or DATA_DIR by run, once.
	TokenKey auth.Key
	// AdminPassword is the bootstrap manager's password (MSDEMO_ADMIN_PASSWORD); empty:
	// generated on first start and stored in DATA_DIR/admin-password.
	AdminPassword string
	// Namespace prefixes what the shop keeps on the shared servers (MSDEMO_NAMESPACE,
	// default "msdemo"): PostgreSQL databases <namespace>_order (and _accounting, _product), Redis keys
	// <namespace>:customer:..., so that two shops (or tests) can share the servers.
	Namespace string
	// StartCreditCents is a new customer's credit (MSDEMO_START_CREDIT_CENTS).
	StartCreditCents int64
	// SagaTimeout is how long an order may stay pending (SAGA_TIMEOUT, default 30s).
	SagaTimeout time.Duration
	// MetricsAddr is where the process serves GET /metrics (METRICS_ADDR; unset:
	// telemetry.DefaultAddr, 127.0.0.1:9464; set to "": no metrics and no listener).
	MetricsAddr string
	// Profiles serves Go's profiles (/debug/pprof/) beside /metrics (METRICS_PPROF=on;
	// default off: a profile shows the code's inner workings and costs CPU while taken).
	// Each component's goroutines carry the pprof label component=<name>.
	Profiles bool
	// MetricsSources are other processes' /metrics URLs that the admin site's system page
	// reads next to this process's own (METRICS_SOURCES, comma-separated; compose sets
	// the other containers').
	MetricsSources []string
	// Metrics holds the components' metrics, made by runComponents when MetricsAddr is
	// set; nil records none.
	Metrics *telemetry.Metrics
	// TrustedProxies are the addresses and CIDR ranges whose X-Forwarded-For the gateway
	// believes (TRUSTED_PROXIES, comma-separated; default loopback: the sites of the
	// all-in-one process).
	TrustedProxies []string
	// RateLimitsOff turns the rate limits of login and registration off
	// (MSDEMO_RATE_LIMITS=off), for load tests whose clients share one address.
	RateLimitsOff bool
	// Limits bound the requests and clients of the public servers, the gateway and the
	// sites (docs/security.md): HTTP_READ_HEADER_TIMEOUT, HTTP_READ_TIMEOUT,
	// HTTP_WRITE_TIMEOUT, HTTP_IDLE_TIMEOUT (durations) and HTTP_MAX_CONNS_PER_IP (0: no
	// cap, for a shop behind a proxy); unset: httplimit.Defaults.
	Limits httplimit.Limits
	// SecureCookie marks the sites' session cookies Secure (COOKIE_SECURE=true), for a
	// shop served over HTTPS by a proxy in front of it.
	SecureCookie bool
	// Tracing is how the process traces (docs/tracing.md): the standard
	// OTEL_SDK_DISABLED and OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, and TRACE_UI_URL; run
	// sets its Service.
	Tracing telemetry.TraceConfig
}

// onOff reads the switch name: "on" or "off", unset or empty is def.
func onOff(getenv func(string) string, name string, def bool) (bool, error) {
	switch v := getenv(name); v {
	case "":
		return def, nil
	case "on":
		return true, nil
	case "off":
		return false, nil
	default:
		return def, fmt.Errorf("%s %q: want on or off", name, v)
	}
}

// checkAdvertiseURL fails when ADVERTISE_URL is set for a process that runs more than one
// component behind the gateway: it names one address, and each would announce it as its
// own, so the gateway would send one component's requests to another.
func (cfg config) checkAdvertiseURL(names []string) error {
	if cfg.AdvertiseURL == "" {
		return nil
	}
	var routed []string
	for _, c := range registry.Components() {
		if c.Upstream && slices.Contains(names, c.Name) {
			routed = append(routed, c.Name)
		}
	}
	if len(routed) > 1 {
		return fmt.Errorf("ADVERTISE_URL=%s names one address, but -target runs %s behind the gateway: "+
			"leave it unset (each announces http://127.0.0.1:<its port>) or run one of them per process",
			cfg.AdvertiseURL, strings.Join(routed, ", "))
	}
	return nil
}

// components maps each -target name (registry.Components) to the function that runs it.
var components = map[string]func(ctx context.Context, cfg config, logger *slog.Logger) error{
	registry.EventStore: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return eventstore.Run(ctx, eventstore.Config{Addr: cfg.Addr[registry.EventStore], RabbitMQURL: cfg.RabbitMQURL,
			QueueType: cfg.QueueType, MongoURI: cfg.MongoURI, PostgresURL: cfg.EventstorePostgresURL,
			DataDir: cfg.DataDir, AdvertiseURL: cfg.AdvertiseURL,
			Metrics: cfg.Metrics.For(registry.EventStore)}, logger)
	},
	registry.Gateway: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return gateway.Run(ctx, gateway.Config{Addr: cfg.Addr[registry.Gateway], RabbitMQURL: cfg.RabbitMQURL,
			Static: cfg.Upstreams, TokenKey: cfg.TokenKey, Metrics: cfg.Metrics.For(registry.Gateway),
			RedisURL: cfg.RedisURL, RevocationPrefix: cfg.revocationPrefix(), TrustedProxies: cfg.TrustedProxies,
			Limits: cfg.Limits}, logger)
	},
	registry.Customer: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return customer.Run(ctx, customerConfig(cfg), logger)
	},
	registry.Product: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return product.Run(ctx, productConfig(cfg), logger)
	},
	registry.Order: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return order.Run(ctx, orderConfig(cfg), logger)
	},
	registry.Accounting: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return accounting.Run(ctx, accountingConfig(cfg), logger)
	},
	registry.Storefront: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return storefront.Run(ctx, storefront.Config{Addr: cfg.Addr[registry.Storefront], GatewayURL: cfg.GatewayURL,
			RedisURL: cfg.RedisURL, SessionPrefix: cfg.Namespace + ":storefront:session:", RevocationPrefix: cfg.revocationPrefix(),
			RabbitMQURL: cfg.RabbitMQURL, Metrics: cfg.Metrics.For(registry.Storefront),
			Limits: cfg.Limits, SecureCookie: cfg.SecureCookie}, logger)
	},
	registry.Admin: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return admin.Run(ctx, admin.Config{SiteConfig: web.SiteConfig{Addr: cfg.Addr[registry.Admin], GatewayURL: cfg.GatewayURL,
			RedisURL: cfg.RedisURL, SessionPrefix: cfg.Namespace + ":admin:session:", RevocationPrefix: cfg.revocationPrefix(),
			RabbitMQURL: cfg.RabbitMQURL, Metrics: cfg.Metrics.For(registry.Admin),
			Limits: cfg.Limits, SecureCookie: cfg.SecureCookie}, MetricsSources: cfg.MetricsSources}, logger)
	},
}

// rebuilders maps each service with a read model (registry.Subscribers) to the function
// that rebuilds it from the event store (`msdemo rebuild -target=<service>`).
var rebuilders = map[string]func(ctx context.Context, cfg config, logger *slog.Logger) error{
	registry.Customer: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return customer.Rebuild(ctx, customerConfig(cfg), logger)
	},
	registry.Product: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return product.Rebuild(ctx, productConfig(cfg), logger)
	},
	registry.Order: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return order.Rebuild(ctx, orderConfig(cfg), logger)
	},
	registry.Accounting: func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return accounting.Rebuild(ctx, accountingConfig(cfg), logger)
	},
}

// serviceConfig is the frame configuration of the backend service name.
func serviceConfig(cfg config, name string) service.Config {
	return service.Config{Name: name, Addr: cfg.Addr[name], AdvertiseURL: cfg.AdvertiseURL,
		RabbitMQURL: cfg.RabbitMQURL, QueueType: cfg.QueueType, EventstoreURL: cfg.EventstoreURL, TokenKey: cfg.TokenKey,
		Metrics: cfg.Metrics.For(name)}
}

func customerConfig(cfg config) customer.Config {
	return customer.Config{Service: serviceConfig(cfg, registry.Customer), RedisURL: cfg.RedisURL,
		KeyPrefix: cfg.revocationPrefix(), DataDir: cfg.DataDir, AdminPassword: cfg.AdminPassword,
		StartCreditCents: cfg.StartCreditCents, Limits: customer.Limits{Off: cfg.RateLimitsOff}}
}

// revocationPrefix is the customer service's Redis key prefix, under which it keeps the
// token revocations that the gateway and the sites read (auth.RevocationKey).
func (cfg config) revocationPrefix() string { return cfg.Namespace + ":customer:" }

func orderConfig(cfg config) order.Config {
	return order.Config{Service: serviceConfig(cfg, registry.Order), PostgresURL: cfg.PostgresURL,
		Database: cfg.Namespace + "_order", SagaTimeout: cfg.SagaTimeout}
}

func accountingConfig(cfg config) accounting.Config {
	return accounting.Config{Service: serviceConfig(cfg, registry.Accounting), PostgresURL: cfg.PostgresURL,
		Database: cfg.Namespace + "_accounting"}
}

func productConfig(cfg config) product.Config {
	return product.Config{Service: serviceConfig(cfg, registry.Product), DataDir: cfg.DataDir,
		PostgresURL: cfg.PostgresURL, Database: cfg.Namespace + "_product"}
}

func componentNames() []string { return slices.Sorted(maps.Keys(components)) }

// loadConfig reads the configuration from lookupEnv, with defaults that work where the
// servers run on this machine, and reports every problem at once. A variable set to ""
// counts as unset, but for METRICS_ADDR, where "" turns metrics off.
func loadConfig(lookupEnv func(string) (string, bool)) (config, error) {
	getenv := func(name string) string { v, _ := lookupEnv(name); return v }
	cfg := config{
		RabbitMQURL:           cmp.Or(getenv("RABBITMQ_URL"), "amqp://guest:guest@127.0.0.1:5672/"),
		MongoURI:              getenv("MONGODB_URI"),
		EventstorePostgresURL: getenv("EVENTSTORE_POSTGRES_URL"),
		PostgresURL:           cmp.Or(getenv("POSTGRES_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		RedisURL:              cmp.Or(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"),
		DataDir:               cmp.Or(getenv("DATA_DIR"), "data"),
		AdvertiseURL:          getenv("ADVERTISE_URL"),
		TokenKeyHex:           getenv("MSDEMO_TOKEN_KEY"),
		AdminPassword:         getenv("MSDEMO_ADMIN_PASSWORD"),
		Namespace:             cmp.Or(getenv("MSDEMO_NAMESPACE"), "msdemo"),
		Addr:                  map[string]string{},
		Upstreams:             map[string]string{},
		MetricsAddr:           telemetry.DefaultAddr,
	}
	if v, ok := lookupEnv("METRICS_ADDR"); ok {
		cfg.MetricsAddr = v
	}
	for p := range strings.SplitSeq(getenv("TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.TrustedProxies = append(cfg.TrustedProxies, p)
		}
	}
	cfg.Tracing = telemetry.TraceConfig{
		Disabled: strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true"),
		Export:   getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "",
		UIURL:    getenv("TRACE_UI_URL"),
	}
	var problems []error
	var err error
	if cfg.QueueType, err = bus.ParseQueueType(getenv("RABBITMQ_QUEUE_TYPE")); err != nil {
		problems = append(problems, fmt.Errorf("RABBITMQ_QUEUE_TYPE: %w", err))
	}
	rateLimits, err := onOff(getenv, "MSDEMO_RATE_LIMITS", true)
	if err != nil {
		problems = append(problems, err)
	}
	cfg.RateLimitsOff = !rateLimits
	if cfg.Profiles, err = onOff(getenv, "METRICS_PPROF", false); err != nil {
		problems = append(problems, err)
	}
	if cfg.Profiles && cfg.MetricsAddr == "" {
		problems = append(problems, fmt.Errorf("METRICS_PPROF=on serves profiles on METRICS_ADDR, which is empty"))
	}
	if cfg.MongoURI != "" && cfg.EventstorePostgresURL != "" {
		problems = append(problems, fmt.Errorf("MONGODB_URI and EVENTSTORE_POSTGRES_URL are both set: the event store uses one database, set one of them"))
	}
	if !namespacePattern.MatchString(cfg.Namespace) {
		problems = append(problems, fmt.Errorf("MSDEMO_NAMESPACE %q: want lower-case letters, digits and _, starting with a letter", cfg.Namespace))
	}
	if cfg.StartCreditCents, err = parseInt(getenv("MSDEMO_START_CREDIT_CENTS"), 100_000); err != nil || cfg.StartCreditCents < 0 {
		problems = append(problems, fmt.Errorf("MSDEMO_START_CREDIT_CENTS: want a whole number of cents >= 0"))
	}
	if cfg.SagaTimeout, err = time.ParseDuration(cmp.Or(getenv("SAGA_TIMEOUT"), "30s")); err != nil || cfg.SagaTimeout <= 0 {
		problems = append(problems, fmt.Errorf("SAGA_TIMEOUT: want a duration such as 30s"))
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(cmp.Or(getenv("LOG_LEVEL"), "info"))); err != nil {
		problems = append(problems, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	for name, d := range map[string]*time.Duration{"HTTP_READ_HEADER_TIMEOUT": &cfg.Limits.ReadHeaderTimeout,
		"HTTP_READ_TIMEOUT": &cfg.Limits.ReadTimeout, "HTTP_WRITE_TIMEOUT": &cfg.Limits.WriteTimeout,
		"HTTP_IDLE_TIMEOUT": &cfg.Limits.IdleTimeout} {
		if v := getenv(name); v != "" {
			if *d, err = time.ParseDuration(v); err != nil || *d <= 0 {
				problems = append(problems, fmt.Errorf("%s: want a duration such as 10s", name))
			}
		}
	}
	if v := getenv("HTTP_MAX_CONNS_PER_IP"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0:
			problems = append(problems, fmt.Errorf("HTTP_MAX_CONNS_PER_IP: want a whole number >= 0 (0: no cap)"))
		case n == 0:
			cfg.Limits.MaxConnsPerIP = httplimit.NoCap
		default:
			cfg.Limits.MaxConnsPerIP = n
		}
	}
	if v := getenv("COOKIE_SECURE"); v != "" {
		if cfg.SecureCookie, err = strconv.ParseBool(v); err != nil {
			problems = append(problems, fmt.Errorf("COOKIE_SECURE: want true or false"))
		}
	}
	for _, c := range registry.Components() {
		cfg.Addr[c.Name] = cmp.Or(getenv(strings.ToUpper(c.Name)+"_ADDR"), c.DefaultAddr)
	}
	for u := range strings.SplitSeq(getenv("METRICS_SOURCES"), ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			problems = append(problems, fmt.Errorf("METRICS_SOURCES: %q is not an http:// URL such as http://order:9464/metrics", u))
			continue
		}
		cfg.MetricsSources = append(cfg.MetricsSources, u)
	}
	cfg.EventstoreURL = cmp.Or(getenv("EVENTSTORE_URL"), localURL(cfg.Addr[registry.EventStore]))
	cfg.GatewayURL = cmp.Or(getenv("GATEWAY_URL"), localURL(cfg.Addr[registry.Gateway]))
	if v := getenv("GATEWAY_UPSTREAMS"); v != "" {
		for pair := range strings.SplitSeq(v, ",") {
			service, url, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || service == "" || !strings.HasPrefix(url, "http") {
				problems = append(problems, fmt.Errorf("GATEWAY_UPSTREAMS: %q is not service=http://host:port", pair))
				continue
			}
			cfg.Upstreams[service] = url
		}
	}
	return cfg, errors.Join(problems...)
}

var namespacePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

func parseInt(v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// localURL is the URL of a listen address on this machine (":6005" -> http://127.0.0.1:6005).
func localURL(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "http://127.0.0.1" + addr
	}
	return "http://" + addr
}
