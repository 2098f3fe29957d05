// Package order is the order service: customers fill a cart and place orders of one or
// more lines, and the service orchestrates the order saga (DESIGN.md, "The order saga";
// docs/orders.md) with its state in PostgreSQL.
//
// An order's events, order.placed, order.approved and order.rejected, are on the stream
// "order-<id>" (id: 12 characters a-z, 2-7); a customer's cart is the stream
// "cart-<username>" (cart.go). They and the participants' events below, with their data,
// are declared in internal/event (types.go).
//
// The saga: POST /orders prices each line from the service's own read model of products
// (product.added, product.updated, product.deleted) and appends order.placed; an order of
// an unknown or deleted product is refused (400) and not placed. The product service
// reserves each line's stock and the customer service the credit of the total, in
// parallel, and they answer on their own streams with product.stock-reserved / -rejected
// {order_id, quantity | reason} (one per line) and customer.credit-reserved / -rejected
// {order_id, amount_cents | reason}. While applying those events this service decides:
// every line and the credit reserved gives order.approved, any rejection gives
// order.rejected with the participant's reason (naming the line), and a sweeper rejects
// orders still pending after the saga timeout ("timed out"). Whoever holds a reservation
// of a rejected order releases it (product.stock-released per line,
// customer.credit-released); accounting invoices approved orders (invoice.issued). Every
// step is on the order's timeline, in the order of the events' positions (which is
// causal), with the steps "placed", "stock reserved", "stock rejected", "credit reserved",
// "credit rejected", "approved", "rejected", "invoiced", "stock released", "credit
// released" (a stock step names its line's product).
//
// Decisions are appended with the order stream's expected version and deterministic event
// ids, and applied at once in the transaction that marks their trigger applied (saga.go),
// so a crash anywhere resumes and a redelivered event changes nothing.
//
// The HTTP API (at the gateway under /order): POST /orders {lines: [{product_id,
// quantity}]} or {product_id, quantity} for customers (202 {id, status}); GET
// /orders[?status=&limit=&after=] (a customer's own, all for a manager; newest first); GET
// /orders/{id} with its timeline (the owner or a manager; 404 for anyone else); the
// caller's cart: GET /cart, POST /cart/lines (add), PUT and DELETE
// /cart/lines/{product_id}, POST /cart/checkout [{version}];
// the managers' /dead-letters; GET /healthz.
package order

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/view"
)

// Config is what the order service needs.
type Config struct {
	Service     service.Config // Name defaults to "order"
	PostgresURL string
	Database    string // default "msdemo_order"; tests use their own
	// SagaTimeout is how long an order may stay pending before it is rejected ("timed
	// out"); default 30 s. SweepInterval is how often that is checked; default 1 s.
	SagaTimeout   time.Duration
	SweepInterval time.Duration
	// Subscription names the durable queue "<Subscription>.events" the read model is fed
	// from; default "order". Tests that share a broker set their own.
	Subscription string
}

// eventTypes are the events the read model applies.
var eventTypes = []string{event.Order.Types(), event.Cart.Types(), event.ProductAdded, event.ProductUpdated, event.ProductDeleted,
	event.ProductStockReserved, event.ProductStockRejected, event.ProductStockReleased,
	event.CustomerCreditReserved, event.CustomerCreditRejected, event.CustomerCreditReleased, event.InvoiceIssued}

func (cfg Config) withDefaults() Config {
	cfg.Service.Name = cmp.Or(cfg.Service.Name, registry.Order)
	cfg.Database = cmp.Or(cfg.Database, "msdemo_order")
	cfg.SagaTimeout = cmp.Or(cfg.SagaTimeout, 30*time.Second)
	cfg.SweepInterval = cmp.Or(cfg.SweepInterval, time.Second)
	cfg.Subscription = cmp.Or(cfg.Subscription, registry.Order)
	return cfg
}

// Run runs the order service until ctx is done: it opens the read model, listens, catches
// up with the event store and follows it (deciding the saga as it goes), announces each
// order it changed on the view exchange (view.ExchangeFor the event exchange; announce.go),
// sweeps timed-out orders, and serves the API (503 until caught up). It returns an error if it cannot start
// or a part of it fails.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	store, err := OpenStore(ctx, cfg.PostgresURL, cfg.Database)
	if err != nil {
		return err
	}
	defer store.Close()
	rt, err := service.Start(ctx, cfg.Service, logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	rt.Checkpoint = store.Checkpoint
	rt.Subscription = cfg.Subscription // the dead-letter routes serve its queue

	caughtUp := make(chan struct{})
	ready := service.Closed(caughtUp)
	saga := NewSaga(store, rt.Events, logger)
	saga.metrics = cfg.Service.Metrics
	saga.metrics.DecidesOrders()
	sub := eventclient.Subscription{Name: cfg.Subscription, Types: eventTypes, Progress: rt.Progress, CaughtUp: caughtUp}
	h := newServer(logger, rt, store, saga.watch, ready)
	ann := newAnnouncer(rt.Bus, view.ExchangeFor(cmp.Or(cfg.Service.Exchange, event.Exchange)), store, logger)
	return rt.Serve(ctx, h,
		func(ctx context.Context) error { return ann.run(ctx, caughtUp) },
		func(ctx context.Context) error {
			if err := rt.Events.Subscribe(ctx, sub, ann.readModel(saga), logger); err != nil {
				return fmt.Errorf("follow the event store: %w", err)
			}
			return nil
		},
		func(ctx context.Context) error {
			select { // decide timeouts only on a read model that has caught up
			case <-caughtUp:
			case <-ctx.Done():
				return nil
			}
			return saga.Sweep(ctx, cfg.SweepInterval, cfg.SagaTimeout)
		},
		func(ctx context.Context) error { return saga.Decide(ctx, deciders) })
}

// deciders is how many orders are decided at once (Saga.Decide); each holds a database
// connection while its decision's append makes its round trip.
const deciders = 8

// Rebuild empties the read model and applies every event it follows from position 0 of
// the event store at cfg.Service.EventstoreURL, then returns. It reads the store's HTTP
// feed only (no broker needed) and decides nothing: a decision lost in a crash is made by
// the running service's sweeper. Run it while the service is stopped.
func Rebuild(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	store, err := OpenStore(ctx, cfg.PostgresURL, cfg.Database)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := eventclient.New(nil, cfg.Service.EventstoreURL, "", "").Rebuild(ctx, eventTypes, store, logger); err != nil {
		return fmt.Errorf("rebuild the order read model in %s: %w", cfg.Database, err)
	}
	return nil
}
