// Package systest runs parts of the shop inside a test, on free ports and with exchange
// and queue names of the test's own, so that tests of several packages run at once
// against the same RabbitMQ without seeing each other's events.
//
// It sits above the components it starts (the event store, the gateway) and is imported
// only by tests: internal/ is the floor every component may import, and a harness that
// imports components is not part of it. What a harness needs from the floor alone (real
// servers, free ports, running a component until the test ends) is in internal/testenv.
package systest

import (
	"context"
	"testing"
	"time"

	"github.com/msdemo/msdemo/eventstore"
	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/view"
	"github.com/msdemo/msdemo/services/gateway"
)

// System is an event store and a gateway running for one test.
type System struct {
	Name             string // prefix of the test's exchanges and queues
	DataDir          string
	EventstoreURL    string
	GatewayURL       string
	Exchange         string
	AppendQueue      string
	RegistryExchange string
	TokenKey         auth.Key
}

// CustomerKeyPrefix is the Redis key prefix for the customer service of the system: its
// gateway reads the token revocations under it (auth.RevocationKey).
func (s *System) CustomerKeyPrefix() string { return s.Name + ":customer:" }

// Start runs an event store (embedded FerretDB in a temporary DATA_DIR) and a gateway
// for t; both stop when t ends.
func Start(t testing.TB) *System {
	t.Helper()
	conn := testenv.Bus(t)
	name := testenv.Name(t)
	key, err := auth.LoadKey("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &System{Name: name, DataDir: t.TempDir(), Exchange: name + ".events", AppendQueue: name + ".append",
		RegistryExchange: name + ".registry", TokenKey: key}
	esAddr, gwAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	s.EventstoreURL, s.GatewayURL = "http://"+esAddr, "http://"+gwAddr
	testenv.Go(t, "event store", func(ctx context.Context) error {
		return eventstore.Run(ctx, eventstore.Config{Addr: esAddr, RabbitMQURL: testenv.RabbitMQURL(),
			DataDir: s.DataDir, Exchange: s.Exchange, AppendQueue: s.AppendQueue,
			RegistryExchange: s.RegistryExchange}, testenv.Logger(t))
	})
	testenv.WaitHealthy(t, s.EventstoreURL+"/healthz", 20*time.Second)
	testenv.Go(t, "gateway", func(ctx context.Context) error {
		return gateway.Run(ctx, gateway.Config{Addr: gwAddr, RabbitMQURL: testenv.RabbitMQURL(),
			RegistryExchange: s.RegistryExchange, TokenKey: key, RedisURL: testenv.RedisURL(),
			RevocationPrefix: s.CustomerKeyPrefix()}, testenv.Logger(t))
	})
	testenv.WaitHealthy(t, s.GatewayURL+"/healthz", 20*time.Second)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.DeleteQueue(ctx, s.AppendQueue)
		_ = conn.DeleteExchange(ctx, s.Exchange)
		_ = conn.DeleteExchange(ctx, s.RegistryExchange)
		_ = conn.DeleteExchange(ctx, view.ExchangeFor(s.Exchange)) // the order service declares it
	})
	return s
}

// ServiceConfig returns the frame configuration for a service named name that joins s.
func (s *System) ServiceConfig(t testing.TB, name string) service.Config {
	return service.Config{Name: name, Addr: testenv.FreeAddr(t), RabbitMQURL: testenv.RabbitMQURL(),
		EventstoreURL: s.EventstoreURL, TokenKey: s.TokenKey, Exchange: s.Exchange,
		AppendQueue: s.AppendQueue, RegistryExchange: s.RegistryExchange}
}

// Token returns a valid bearer token for user with role.
func (s *System) Token(user string, role auth.Role) string {
	return s.TokenKey.Sign(auth.Claims{User: user, Role: role, ExpiresAt: time.Now().Add(time.Hour)})
}
