// Package customer is msdemo's customer service: registration, login (it issues the shop's
// tokens), profiles and credit. Every change is an event in the customer's stream
// "customer-<username>" (domain.go); the service answers reads from its read model in
// Redis (redis.go), which it keeps up to date from the event store and can rebuild from it
// at any time. In the order saga it reserves, rejects and releases the credit of orders
// (participant.go). routes.go lists its HTTP API; DESIGN.md describes the shop around it.
//
// On its first start against an event store, the service registers the manager "admin"
// (see Config.AdminPassword).
package customer

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/redisclient"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/service"
)

// Config is what the customer service needs.
type Config struct {
	Service  service.Config // Name defaults to "customer"
	RedisURL string
	// KeyPrefix prefixes every Redis key of the read model (default "msdemo:customer:");
	// tests use their own.
	KeyPrefix string
	// DataDir holds admin-password when AdminPassword is empty.
	DataDir string
	// AdminPassword is the password of the manager "admin" registered on first start.
	// Empty: a random one, stored in DataDir/admin-password (created once, reused after)
	// and printed once to stderr.
	AdminPassword string
	// StartCreditCents is the credit of a new customer (default 100000).
	StartCreditCents int64
	// TokenTTL is how long a login token is valid (default 24 h).
	TokenTTL time.Duration
	// Subscription names the durable queue "<Subscription>.events" that feeds the read
	// model (default "customer"); tests running beside each other set their own.
	Subscription string
	// Limits are the rate limits of login and registration (zero: DefaultLimits).
	Limits Limits
}

// adminUser is the manager that the service registers on its first start.
const adminUser = "admin"

func (cfg *Config) setDefaults() {
	cfg.Service.Name = cmp.Or(cfg.Service.Name, registry.Customer)
	cfg.KeyPrefix = cmp.Or(cfg.KeyPrefix, "msdemo:customer:")
	cfg.StartCreditCents = cmp.Or(cfg.StartCreditCents, 100000)
	cfg.TokenTTL = cmp.Or(cfg.TokenTTL, 24*time.Hour)
	cfg.Subscription = cmp.Or(cfg.Subscription, registry.Customer)
}

// Run runs the customer service until ctx is done: it empties a read model of another
// schema version (ensureSchema), catches the read model up with the event store,
// registers the manager "admin" if there is none, and serves the API; its /healthz
// answers 503 until then. An unreachable Redis or RabbitMQ, or a busy port,
// fails Run at once.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg.setDefaults()
	if cfg.AdminPassword != "" {
		if p := passwordProblem(cfg.AdminPassword); p != "" {
			return fmt.Errorf("MSDEMO_ADMIN_PASSWORD %s", p)
		}
	}
	rdb, err := redisclient.Open(ctx, cfg.RedisURL, nil)
	if err != nil {
		return err
	}
	defer rdb.Close()
	rt, err := service.Start(ctx, cfg.Service, logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	users := newStore(rdb, cfg.KeyPrefix)
	users.tokenTTL = cfg.TokenTTL
	if _, err := users.ensureSchema(ctx); err != nil {
		return err
	}
	if cfg.Limits.Off {
		logger.Warn("the rate limits of login and registration are off")
	}
	app, err := newApp(cfg, rt, users)
	if err != nil {
		return err
	}
	return rt.Serve(ctx, app.routes(), app.subscribe, app.bootstrap)
}

// Rebuild deletes the read model and applies every customer event from the event store's
// position 0 up to its head, then returns. Run it while the service is stopped (or expect
// the running service to retry events while the rebuild passes them).
func Rebuild(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg.setDefaults()
	rdb, err := redisclient.Open(ctx, cfg.RedisURL, nil)
	if err != nil {
		return err
	}
	defer rdb.Close()
	users := newStore(rdb, cfg.KeyPrefix)
	users.tokenTTL = cfg.TokenTTL
	if _, err := users.ensureSchema(ctx); err != nil {
		return err
	}
	// The feed only: no broker needed.
	if _, err := eventclient.New(nil, cfg.Service.EventstoreURL, "", "").Rebuild(ctx, subscribedTypes, users, logger); err != nil {
		return fmt.Errorf("rebuild the customer read model: %w", err)
	}
	return nil
}

// subscribedTypes are the events the read model applies: the customers' own, and the
// order events that the service answers in the order saga (participant.go).
var subscribedTypes = []string{event.Customer.Types(), event.OrderPlaced, event.OrderRejected}

// app is the running service: what its handlers and tasks share.
type app struct {
	cfg    Config
	rt     *service.Runtime
	users  *store
	logger *slog.Logger
	// caughtUp is closed when the read model has caught up; ready is set after the
	// admin bootstrap that follows.
	caughtUp chan struct{}
	ready    atomic.Bool
	// dummyHash is checked at a login of an unknown user, so that it takes as long as one
	// with a wrong password.
	dummyHash string
	// limits are the rate limits of login and registration (nil: off).
	limits *limiter
	// revocations tell the tokens that a password change revoked.
	revocations *auth.Revocations
}

func newApp(cfg Config, rt *service.Runtime, users *store) (*app, error) {
	dummy, err := auth.HashPassword("not a password of anyone")
	if err != nil {
		return nil, fmt.Errorf("hash dummy password: %w", err)
	}
	rt.Checkpoint = users.Checkpoint
	return &app{cfg: cfg, rt: rt, users: users, logger: rt.Logger, caughtUp: make(chan struct{}), dummyHash: dummy,
		limits: newLimiter(users.rdb, cfg.KeyPrefix, cfg.Limits), revocations: auth.NewRevocations(users.rdb, cfg.KeyPrefix, 0)}, nil
}

// bootstrap waits for the catch-up, registers the manager "admin" if there is none, and
// then marks the service ready.
func (a *app) bootstrap(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-a.caughtUp:
	}
	_, err := a.users.Customer(ctx, adminUser)
	switch {
	case errors.Is(err, service.ErrNotFound):
		if err := a.registerAdmin(ctx); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	a.ready.Store(true)
	return nil
}

func (a *app) registerAdmin(ctx context.Context) error {
	password := a.cfg.AdminPassword
	if password == "" {
		var err error
		if password, err = adminPassword(a.cfg.DataDir); err != nil {
			return err
		}
	}
	events, err := Register(Registration{Username: adminUser, FullName: "Shop manager",
		Email: "admin@msdemo.example", Password: password}, auth.Manager, 0)
	if err != nil {
		return fmt.Errorf("register %s: %w", adminUser, err)
	}
	zero := int64(0)
	_, err = a.rt.Write(ctx, Stream(adminUser), &zero, events...)
	var conflict *service.ConflictError
	switch {
	case errors.As(err, &conflict):
		return nil // another replica registered it
	case err != nil:
		return fmt.Errorf("register %s: %w", adminUser, err)
	}
	a.logger.Info("registered the manager", "username", adminUser)
	return nil
}

// adminPassword returns the password in dataDir/admin-password, creating the file with a
// random password first if there is none (and telling the operator, once, on stderr).
func adminPassword(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "admin-password")
	if b, err := os.ReadFile(path); err == nil {
		if p := strings.TrimSpace(string(b)); passwordProblem(p) == "" {
			return p, nil
		}
		return "", fmt.Errorf("%s does not hold a password of 8 to 72 bytes", path)
	}
	var random [18]byte
	_, _ = rand.Read(random[:])
	password := base64.RawURLEncoding.EncodeToString(random[:]) // 24 characters
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("create DATA_DIR: %w", err)
	}
	// Write a temporary file, then link it into place: a replica starting at the same
	// time either wins the link or reads the complete file of the one that did.
	tmp, err := os.CreateTemp(dataDir, ".admin-password-*")
	if err != nil {
		return "", fmt.Errorf("create admin password file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(password + "\n")
	if err = errors.Join(err, tmp.Chmod(0o600), tmp.Close()); err != nil {
		return "", fmt.Errorf("write admin password file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return adminPassword(dataDir)
	} else if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	fmt.Fprintf(os.Stderr, "msdemo: created the manager account %q with password %s (stored in %s)\n",
		adminUser, password, path)
	return password, nil
}
