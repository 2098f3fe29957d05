// Package accounting is the accounting service: it issues an invoice for every approved
// order and serves invoices and revenue.
//
// It follows the order saga's last step. The order service appends
//
//	order.approved {order_id, customer, product_id, quantity, unit_price_cents, total_cents}
//
// on the stream "order-<order_id>"; accounting answers with
//
//	invoice.issued {order_id, number, customer, product_id, quantity, unit_price_cents,
//	                total_cents, issued_at}
//
// on the stream "invoice-<order_id>", with expected version 0 and an event id derived
// from the order id, so an order never gets two invoices however often its approval is
// delivered. The number is "INV-<order_id>"; issued_at is the approval's recorded time
// (to the millisecond), so that issuing again yields the very same invoice.
//
// The read model is PostgreSQL (database msdemo_accounting): invoices as JSONB documents
// with the columns the queries need, and the checkpoint, written in one transaction with
// each change (the ledger in consume.go).
//
// The HTTP API (at the gateway under /accounting): GET /invoices[?limit=&after=] (a
// customer's own, a manager's all, newest first; after = the next_after of the previous
// page), GET /invoices/{order_id} (its customer or a manager; 404 for others), GET
// /revenue (manager) {revenue_cents, invoices}, the managers' /dead-letters routes, and
// GET /healthz.
package accounting

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/service"
)

// Config is what the accounting service needs.
type Config struct {
	Service     service.Config // Name defaults to "accounting"
	PostgresURL string         // the server (POSTGRES_URL); the database is created if missing
	Database    string         // default "msdemo_accounting"

	// queue names the durable event queue "<queue>.events"; default Service.Name. Tests
	// that share a broker set their own.
	queue string
	// beforeIssue, if set, runs before each invoice is issued (tests hold failures with it).
	beforeIssue func(ctx context.Context, id OrderID) error
}

func (cfg Config) withDefaults() Config {
	cfg.Service.Name = cmp.Or(cfg.Service.Name, "accounting")
	cfg.Database = cmp.Or(cfg.Database, "msdemo_accounting")
	cfg.queue = cmp.Or(cfg.queue, cfg.Service.Name)
	return cfg
}

// Run runs the accounting service until ctx is done: it opens the read model, listens,
// catches up with the event store (issuing the invoices that are missing) and follows
// it, and serves the API (503 until caught up). It returns an error if it cannot start or
// a part of it fails.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	db, err := postgres.Open(ctx, cfg.PostgresURL, cfg.Database)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := NewStore(ctx, db)
	if err != nil {
		return err
	}
	rt, err := service.Start(ctx, cfg.Service, logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	rt.Checkpoint = func(ctx context.Context) (int64, error) {
		_, position, err := store.Checkpoint(ctx)
		return position, err
	}

	caughtUp := make(chan struct{})
	ready := func() bool {
		select {
		case <-caughtUp:
			return true
		default:
			return false
		}
	}
	l := &ledger{store: store, logger: logger, events: rt.Events, bus: rt.Bus, queue: cfg.queue + ".events",
		caughtUp: caughtUp, beforeIssue: cfg.beforeIssue}
	sub := eventclient.Subscription{Name: cfg.queue, Types: eventTypes, Progress: rt.Progress, CaughtUp: caughtUp}

	// The dead-letter routes serve the subscription's queue, which tests name apart.
	rt.Subscription = cfg.queue
	deadLetters := chi.NewRouter()
	rt.MountDeadLetters(deadLetters)

	h := newServer(logger, rt.TokenKey, store, deadLetters, ready)
	return rt.Serve(ctx, h, func(ctx context.Context) error {
		if err := rt.Events.Subscribe(ctx, sub, l, logger); err != nil {
			return fmt.Errorf("follow the event store: %w", err)
		}
		return nil
	})
}

// Rebuild empties the read model and applies every invoice.issued from position 0 of the
// event store at cfg.Service.EventstoreURL, then returns. It reads the store's HTTP feed
// only (no broker needed) and issues nothing: an approval whose invoice is missing (its
// handling was dead-lettered) stays so, and its dead letter can still be replayed. Run it
// while the service is stopped: a running service would go on from its own position.
func Rebuild(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	db, err := postgres.Open(ctx, cfg.PostgresURL, cfg.Database)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := NewStore(ctx, db)
	if err != nil {
		return err
	}
	l := &ledger{store: store, logger: logger}
	r, err := eventclient.New(nil, cfg.Service.EventstoreURL, "", "").Rebuild(ctx, eventTypes, l, logger)
	if err != nil {
		return fmt.Errorf("rebuild the accounting read model in %s: %w", cfg.Database, err)
	}
	// The feed was filtered: the checkpoint is where it ended, past events of other types.
	return store.Skip(ctx, r.StoreID, r.Position)
}
