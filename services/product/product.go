// Package product is the catalog service: categories and products, with their price and
// stock.
//
// It is event sourced. Every change is an event appended to the event store, on the
// stream "category-<id>" or "product-<id>" (ids: 10 random characters a-z, 2-7):
//
//	category.added   {id, name}
//	category.renamed {name}
//	category.deleted {}
//	product.added    {id, name, description, supplier, category_id, price_cents, units_in_stock}
//	product.updated  {name, description, supplier, category_id, price_cents, units_in_stock}
//	product.deleted  {}
//	product.image-set {image_id, thumb_id, width, height, thumb_width, thumb_height}
//
// In the order saga the service reserves, rejects and releases the stock of orders
// (participant.go), with these events on the product's stream:
//
//	product.stock-reserved {order_id, quantity}  the units are taken from the stock
//	product.stock-rejected {order_id, reason}    "product deleted", "price changed", "out of stock"
//	product.stock-released {order_id, quantity}  the units of a rejected order are back
//
// product.updated replaces every editable field; product.image-set replaces the product's
// pictures, whose bytes the service keeps in PostgreSQL, not in the event (image.go,
// postgres.go). The service keeps its read model in a SQLite file, applies each event once (by stream version) with the checkpoint in the same
// transaction, and rebuilds the file from the events when it is deleted (or with
// Rebuild). A write answers once the read model shows it (read-your-writes).
//
// The HTTP API (at the gateway under /product): GET /categories, GET /categories/{id},
// GET /products[?category_id=&limit=&after=], GET /products/{id} and GET
// /search?q=words[&limit=&offset=] (full text, SQLite FTS5, best match first) for anyone;
// POST, PUT, DELETE of categories and products and PUT /products/{id}/image for managers;
// GET /images/{id} (a picture's bytes) for anyone. Lists are ordered by name (without
// case), then id, and page with ?after=<next_after of the previous page>.
package product

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/service"
)

// Config is what the product service needs.
type Config struct {
	Service service.Config // Name defaults to "product"
	// DBPath is the SQLite file of the read model; default <DataDir>/product.db.
	DBPath  string
	DataDir string
	// PostgresURL is the PostgreSQL server (POSTGRES_URL) of Database (default
	// "msdemo_product"), created if missing, where the products' pictures live (Images).
	PostgresURL string
	Database    string
	// Subscription names the durable queue "<Subscription>.events" the read model is
	// fed from; default "product". Tests that share a broker set their own.
	Subscription string
}

// eventTypes are the events the read model applies: the catalog's, and the order events
// that the service answers in the order saga (participant.go).
var eventTypes = []string{event.Category.Types(), event.Product.Types(), event.OrderPlaced, event.OrderRejected}

func (cfg Config) withDefaults() Config {
	cfg.Service.Name = cmp.Or(cfg.Service.Name, registry.Product)
	cfg.DBPath = cmp.Or(cfg.DBPath, filepath.Join(cmp.Or(cfg.DataDir, "data"), "product.db"))
	cfg.Subscription = cmp.Or(cfg.Subscription, registry.Product)
	cfg.Database = cmp.Or(cfg.Database, "msdemo_product")
	return cfg
}

// openStore opens the read model, creating its folder if needed.
func openStore(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create the folder of %s: %w", path, err)
	}
	return OpenStore(ctx, path)
}

// Run runs the product service until ctx is done: it opens the read model and the
// pictures (an unreachable PostgreSQL fails with a hint), listens,
// catches up with the event store and follows it, and serves the API (503 until caught
// up). It returns an error if it cannot start or a part of it fails.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	store, err := openStore(ctx, cfg.DBPath)
	if err != nil {
		return err
	}
	defer store.Close()
	images, err := OpenImages(ctx, cfg.PostgresURL, cfg.Database)
	if err != nil {
		return err
	}
	defer images.Close()
	rt, err := service.Start(ctx, cfg.Service, logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	rt.Subscription = cfg.Subscription // the dead-letter routes serve its queue
	rt.Checkpoint = store.Checkpoint
	rt.LargeBodies = largeBodies

	caughtUp := make(chan struct{})
	ready := service.Closed(caughtUp)
	// The read model is this instance's SQLite file, so each replica follows the events
	// itself; its saga decisions are made by every replica alike and stored once (their
	// ids come from the order's).
	sub := eventclient.Subscription{Name: cfg.Subscription, Types: eventTypes,
		Progress: rt.Progress, CaughtUp: caughtUp, PerInstance: true}
	c := &catalog{store: store, images: images, write: rt.Write, waitForStream: rt.WaitForStream,
		decoding: make(chan struct{}, imageDecoders)}
	deadLetters := chi.NewRouter()
	rt.MountDeadLetters(deadLetters)
	barrier := func(ctx context.Context) error { return rt.Events.Barrier(ctx, rt.Progress, eventTypes) }
	h := newServer(logger, rt.TokenKey, store, c, deadLetters, ready, barrier)
	return rt.Serve(ctx, h, func(ctx context.Context) error {
		p := &participant{store: store, events: rt.Events, logger: logger}
		if err := rt.Events.Subscribe(ctx, sub, p, logger); err != nil {
			return fmt.Errorf("follow the event store: %w", err)
		}
		return nil
	})
}

// Rebuild empties the read model and applies every catalog event from position 0 of the
// event store at cfg.Service.EventstoreURL, then returns. It reads the store's HTTP feed
// only (no broker needed). Run it while the service is stopped: a running service would
// go on from its own position. An event that can never be applied is skipped, as the
// running service dead-letters it, and logged; Rebuild then returns an error counting
// them after rebuilding the rest.
func Rebuild(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	store, err := openStore(ctx, cfg.DBPath)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := eventclient.New(nil, cfg.Service.EventstoreURL, "", "").Rebuild(ctx, eventTypes, store, logger); err != nil {
		return fmt.Errorf("rebuild the product read model in %s: %w", cfg.DBPath, err)
	}
	return nil
}
