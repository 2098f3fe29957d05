// Package accounting is the accounting service: it issues an invoice for every approved
// order and serves invoices and revenue.
//
// It follows the order saga's last step. The order service appends
//
//	order.approved {order_id, customer, lines: [{product_id, name, quantity,
//	                unit_price_cents}, ...], total_cents}
//
// on the stream "order-<order_id>"; accounting answers with
//
//	invoice.issued {order_id, number, customer, lines, total_cents, issued_at}
//
// on the stream "invoice-<order_id>", with expected version 0 and an event id derived
// from the order id, so an order never gets two invoices however often its approval is
// delivered. The number is "INV-<order_id>"; issued_at is the approval's recorded time
// (to the millisecond), so that issuing again yields the very same invoice.
//
// Issuing runs beside the event subscription, so that the service's queue does not wait
// for an append round trip per approval (the ledger in consume.go): applying order.approved
// records the approval as pending, in the transaction that moves the checkpoint, and hands
// it to parallel issuers; a sweeper issues what stays pending (a lost hand-over, a failed
// append, a crash). An invoice therefore appears a moment after its approval has been
// applied: GET /invoices/{order_id} answers 404 until then.
//
// The read model is PostgreSQL (database msdemo_accounting): invoices as JSONB documents
// with the columns the queries need, the pending approvals, and the checkpoint, written in
// one transaction with each change an event makes.
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
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/registry"
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
	// beforeIssue, if set, runs before each try to issue an invoice; an error fails the
	// try, and the sweeper tries again (tests hold failures with it).
	beforeIssue func(ctx context.Context, id OrderID) error
}

func (cfg Config) withDefaults() Config {
	cfg.Service.Name = cmp.Or(cfg.Service.Name, registry.Accounting)
	cfg.Database = cmp.Or(cfg.Database, "msdemo_accounting")
	cfg.queue = cmp.Or(cfg.queue, cfg.Service.Name)
	return cfg
}

// Run runs the accounting service until ctx is done: it opens the read model, listens,
// catches up with the event store and follows it, issues the invoices that are missing
// (parallel issuers and a sweeper, beside the subscription), and serves the API (503
// until caught up). It returns an error if it cannot start or a part of it fails.
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
	rt.Checkpoint = store.Checkpoint

	caughtUp := make(chan struct{})
	ready := service.Closed(caughtUp)
	l := newLedger(store, rt.Events, logger)
	l.bus, l.queue, l.caughtUp, l.beforeIssue = rt.Bus, event.Queue(cfg.queue), caughtUp, cfg.beforeIssue
	sub := eventclient.Subscription{Name: cfg.queue, Types: eventTypes, Progress: rt.Progress, CaughtUp: caughtUp}

	// The dead-letter routes serve the subscription's queue, which tests name apart.
	rt.Subscription = cfg.queue
	deadLetters := chi.NewRouter()
	rt.MountDeadLetters(deadLetters)

	h := newServer(logger, rt.TokenKey, store, deadLetters, ready)
	return rt.Serve(ctx, h,
		func(ctx context.Context) error {
			if err := rt.Events.Subscribe(ctx, sub, l, logger); err != nil {
				return fmt.Errorf("follow the event store: %w", err)
			}
			return nil
		},
		func(ctx context.Context) error { return l.Issue(ctx, issuers) },
		func(ctx context.Context) error { return l.Sweep(ctx, sweepInterval) })
}

// issuers is how many invoices are issued at once (ledger.Issue); each waits for its
// append's round trip without holding a database connection.
const issuers = 8

// sweepInterval is how often the sweeper looks for approvals left pending (ledger.Sweep).
const sweepInterval = time.Second

// Rebuild empties the read model and applies every invoice.issued from position 0 of the
// event store at cfg.Service.EventstoreURL, then returns. It reads the store's HTTP feed
// only (no broker needed) and issues nothing: it records no approval as pending, and
// keeps those that were (but for the ones whose invoice it finds), for the running
// service to issue. A malformed approval's invoice stays missing, and its dead letter can
// still be replayed. Run it while the service is stopped: a running service would go on
// from its own position.
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
