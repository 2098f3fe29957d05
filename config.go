package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/msdemo/msdemo/eventstore"
	"github.com/msdemo/msdemo/services/gateway"
)

// config is everything msdemo reads from the environment, loaded once by run.
type config struct {
	RabbitMQURL string
	MongoURI    string
	DataDir     string
	LogLevel    slog.Level
	// Addr is each component's listen address, from <COMPONENT>_ADDR.
	Addr map[string]string
	// Upstreams are the gateway's static fallbacks, from GATEWAY_UPSTREAMS
	// ("product=http://product:6004,customer=http://customer:6002").
	Upstreams map[string]string
}

// defaultAddr is each component's port (DESIGN.md).
var defaultAddr = map[string]string{
	"eventstore": ":6005",
	"gateway":    ":8080",
}

// components maps each -target name to the function that runs it.
var components = map[string]func(ctx context.Context, cfg config, logger *slog.Logger) error{
	"eventstore": func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return eventstore.Run(ctx, eventstore.Config{Addr: cfg.Addr["eventstore"],
			RabbitMQURL: cfg.RabbitMQURL, MongoURI: cfg.MongoURI, DataDir: cfg.DataDir}, logger)
	},
	"gateway": func(ctx context.Context, cfg config, logger *slog.Logger) error {
		return gateway.Run(ctx, gateway.Config{Addr: cfg.Addr["gateway"],
			RabbitMQURL: cfg.RabbitMQURL, Static: cfg.Upstreams}, logger)
	},
}

func componentNames() []string { return slices.Sorted(maps.Keys(components)) }

// loadConfig reads the configuration, with defaults that work where the servers run on this
// machine, and reports every problem at once.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		RabbitMQURL: cmp.Or(getenv("RABBITMQ_URL"), "amqp://guest:guest@127.0.0.1:5672/"),
		MongoURI:    getenv("MONGODB_URI"),
		DataDir:     cmp.Or(getenv("DATA_DIR"), "data"),
		Addr:        map[string]string{},
		Upstreams:   map[string]string{},
	}
	var problems []error
	if err := cfg.LogLevel.UnmarshalText([]byte(cmp.Or(getenv("LOG_LEVEL"), "info"))); err != nil {
		problems = append(problems, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	for name, addr := range defaultAddr {
		cfg.Addr[name] = cmp.Or(getenv(strings.ToUpper(name)+"_ADDR"), addr)
	}
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
