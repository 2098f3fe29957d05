// Package eventstore is msdemo's event store: the only source of truth. It takes append
// requests over RabbitMQ (queue eventstore.append), stores them in a MongoDB-API database,
// publishes every stored event to the msdemo.events exchange, and serves the global feed
// and single streams over HTTP. docs/eventstore.md is the wire contract.
package eventstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Config is what the event store needs to run.
type Config struct {
	Addr        string // HTTP address of the read API, e.g. ":6005"
	RabbitMQURL string
	// QueueType is what the append queue is declared as (default classic).
	QueueType bus.QueueType
	// MongoURI names the MongoDB to use; empty runs an embedded FerretDB: on the
	// PostgreSQL database at PostgresURL, which several event store processes can share,
	// or else on SQLite in DataDir/eventstore.
	MongoURI    string
	PostgresURL string
	// DataDir holds the embedded FerretDB's SQLite files and this process's event index
	// (DataDir/eventstore-index).
	DataDir  string
	Database string // default "msdemo_eventstore"
	// Exchange, AppendQueue and RegistryExchange default to the shop's names; tests use
	// their own.
	Exchange         string
	AppendQueue      string
	RegistryExchange string
	// AdvertiseURL is the URL announced to the gateway; empty means
	// http://127.0.0.1:<port of Addr>.
	AdvertiseURL string
	// Metrics records the event store's metrics (its HTTP requests, bus, commits); nil
	// records none.
	Metrics *telemetry.Component

	// holdPublishing stores without publishing, as a process that died between the two
	// would (tests only).
	holdPublishing bool
}

// Run runs the event store until ctx is done, then shuts down: it stops taking append
// requests, lets those in flight finish, and closes the database last. It also shuts
// down, and returns the error, when the embedded FerretDB stops by itself: without its
// database the store could only answer "unavailable".
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg.Database = cmp.Or(cfg.Database, "msdemo_eventstore")
	cfg.Exchange = cmp.Or(cfg.Exchange, event.Exchange)
	cfg.AppendQueue = cmp.Or(cfg.AppendQueue, event.AppendQueue)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (EVENTSTORE_ADDR): %w", cfg.Addr, err)
	}
	defer ln.Close()

	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.Background())

	store, err := openStore(ctx, db, logger)
	if err != nil {
		return fmt.Errorf("load event store: %w", err)
	}
	defer store.waitForFlush() // before the database closes, after the writer stopped

	store.metrics = cfg.Metrics
	store.metrics.StoreOpened(store.Head())
	dialOpts := []bus.DialOption{bus.WithName(registry.EventStore), bus.WithQueueType(cfg.QueueType)}
	if cfg.Metrics != nil {
		dialOpts = append(dialOpts, bus.WithObserver(cfg.Metrics))
	}
	conn, err := bus.Dial(ctx, cfg.RabbitMQURL, logger, dialOpts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.DeclareExchange(ctx, cfg.Exchange, "topic"); err != nil {
		return fmt.Errorf("declare exchange %s: %w", cfg.Exchange, err)
	}

	advertise := cmp.Or(cfg.AdvertiseURL, registry.LoopbackURL(ln.Addr()))
	pub := newPublisher(store, conn, cfg.Exchange)
	srv := &http.Server{Handler: cfg.Metrics.HTTP(telemetry.TraceHTTP(registry.EventStore, false, newServer(store, pub, logger))),
		ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// The writer and the publisher stop only after the append consumer has answered or
	// requeued every request it holds.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var work sync.WaitGroup
	work.Go(func() {
		inst := registry.Instance{Service: registry.EventStore, Instance: registry.InstanceID(registry.EventStore), URL: advertise}
		var opts []registry.Option
		if cfg.RegistryExchange != "" {
			opts = append(opts, registry.WithExchange(cfg.RegistryExchange))
		}
		if err := registry.Announce(ctx, conn, inst, 0, logger, opts...); err != nil {
			logger.Error("announce to the gateway", "error", err)
		}
	})
	logger.Info("event store ready", "addr", ln.Addr().String(), "store_id", store.ID(), "head", store.Head())

	// runCtx ends with ctx, or, whatever the store's role, when its HTTP server or its
	// embedded database stops: its cause says why.
	runCtx, stopRunning := context.WithCancelCause(ctx)
	defer stopRunning(nil)
	go func() {
		select {
		case e := <-serveErr:
			stopRunning(fmt.Errorf("serve HTTP: %w", e))
		case <-db.lost():
			stopRunning(db.lostErr())
		case <-runCtx.Done():
		}
	}()

	// Until it holds the writer lease, the store serves reads and follows the writer's
	// commits; then it writes. It stops when it loses the lease.
	lease := &writerLease{db: db, holder: advertise, logger: logger}
	store.following.Store(true)
	held := make(chan error, 1)
	var appends *bus.Consumer
	err = lease.acquire(runCtx, func() {
		if err := store.follow(runCtx); err != nil && runCtx.Err() == nil {
			logger.Warn("follow the writer", "error", err)
		}
		store.learnIndexed(runCtx)
	})
	if err == nil {
		appends, err = startWriting(runCtx, workCtx, &work, cfg, store, pub, conn, logger)
		work.Go(func() { held <- lease.hold(workCtx) })
	}
	if err == nil {
		select {
		case <-runCtx.Done():
		case err = <-held:
		}
	}
	if runCtx.Err() != nil && ctx.Err() == nil {
		err = context.Cause(runCtx) // the server or the database stopped
	} else if ctx.Err() != nil {
		err = nil // asked to stop
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e := srv.Shutdown(shutdownCtx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		err = cmp.Or(err, e)
	}
	if appends != nil {
		select {
		case <-appends.Done:
		case <-shutdownCtx.Done():
		}
	}
	stopWork()
	work.Wait()
	if appends != nil {
		if e := lease.release(shutdownCtx); e != nil {
			logger.Warn("release the writer lease", "error", e)
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// startWriting makes store the writer: it catches up with the commits of the writer before
// it, then runs the writer and the followers (until workCtx is done) and takes append
// requests (until ctx is done).
func startWriting(ctx, workCtx context.Context, work *sync.WaitGroup, cfg Config, store *Store, pub *follower,
	conn *bus.Conn, logger *slog.Logger) (*bus.Consumer, error) {
	if err := store.follow(ctx); err != nil {
		return nil, fmt.Errorf("catch up before writing: %w", err)
	}
	store.following.Store(false)
	work.Go(func() { store.runWriter(workCtx) })
	followers := []*follower{store.indexer}
	if !cfg.holdPublishing {
		followers = append(followers, pub)
	}
	for _, f := range followers {
		work.Go(func() {
			if err := f.run(workCtx); err != nil {
				logger.Error("follower stopped", "follower", f.mark, "error", err)
			}
		})
	}
	appends, err := conn.Serve(ctx, bus.QueueConfig{Name: cfg.AppendQueue, Durable: true,
		Prefetch: 512, Concurrency: 256}, appendHandler(store))
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", cfg.AppendQueue, err)
	}
	return appends, nil
}

// openDatabase connects to the MongoDB at cfg.MongoURI, or starts the embedded FerretDB
// and indexes it, and opens this process's event index (in DataDir/eventstore-index).
// The embedded FerretDB outlives ctx: closing the store stops it.
func openDatabase(ctx context.Context, cfg Config, logger *slog.Logger) (*mongoStore, error) {
	db, err := connectDatabase(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	// Not in FerretDB's directory: its SQLite backend takes every *.sqlite file there
	// for a database.
	db.index, err = openDiskIndex(ctx, filepath.Join(cfg.DataDir, "eventstore-index", cfg.Database+".sqlite"))
	if err != nil {
		db.close(context.Background())
		return nil, err
	}
	return db, nil
}

// connectDatabase connects to the MongoDB at cfg.MongoURI, or starts the embedded FerretDB
// and indexes it.
func connectDatabase(ctx context.Context, cfg Config, logger *slog.Logger) (*mongoStore, error) {
	if cfg.MongoURI != "" {
		db, err := openMongo(ctx, cfg.MongoURI, cfg.Database)
		if err != nil {
			return nil, fmt.Errorf("MongoDB at MONGODB_URI not reachable: %w", err)
		}
		return db, nil
	}
	backend := ferretBackend{sqliteDir: filepath.Join(cfg.DataDir, "eventstore"), postgresURL: cfg.PostgresURL}
	if backend.postgresURL != "" {
		if err := postgres.CreateNamed(ctx, backend.postgresURL); err != nil {
			return nil, fmt.Errorf("EVENTSTORE_POSTGRES_URL: %w", err)
		}
	}
	ferret, err := startFerretDB(backend, logger)
	if err != nil {
		return nil, err
	}
	db, err := openMongo(ctx, ferret.uri, cfg.Database)
	if err != nil {
		ferret.stop()
		return nil, fmt.Errorf("embedded FerretDB on %s: %w", backend, err)
	}
	db.embedded = ferret
	if backend.postgresURL != "" {
		err = createCollections(ctx, db.client.Database(cfg.Database), collCommits, collChunks, collMeta)
		if err == nil {
			err = createCollections(ctx, db.client.Database(cfg.Database+"_pages"), collPages)
		}
	} else {
		err = indexFerretIDs(ctx, backend.sqliteDir, cfg.Database, db.client.Database(cfg.Database), collCommits, collChunks, collMeta)
		if err == nil {
			err = indexFerretIDs(ctx, backend.sqliteDir, cfg.Database+"_pages", db.client.Database(cfg.Database+"_pages"), collPages)
		}
	}
	if err != nil {
		db.close(context.Background())
		return nil, fmt.Errorf("embedded FerretDB on %s: %w", backend, err)
	}
	return db, nil
}

// appendHandler answers one append message: a request, or a batch of them (a JSON array,
// answered with an array of replies in the same order). A malformed request gets an
// "invalid" reply; a message that the writer could not finish before shutdown is requeued.
func appendHandler(store *Store) func(ctx context.Context, d bus.Delivery) ([]byte, error) {
	return func(ctx context.Context, d bus.Delivery) ([]byte, error) {
		if event.IsAppendBatch(d.Body) {
			return appendBatch(ctx, store, d.Body)
		}
		req, err := event.ParseAppendRequest(d.Body)
		if err != nil {
			return json.Marshal(invalidReply(err))
		}
		end := appendSpans(ctx, []event.AppendRequest{req})
		reply, err := store.Append(ctx, req)
		end([]event.AppendReply{reply}, err)
		if err != nil {
			return nil, err
		}
		return json.Marshal(reply)
	}
}

// appendBatch stores the valid requests of a batch message and answers every request.
func appendBatch(ctx context.Context, store *Store, body []byte) ([]byte, error) {
	reqs, problems, err := event.ParseAppendBatch(body)
	if err != nil {
		return json.Marshal(invalidReply(err))
	}
	var valid []event.AppendRequest
	for i, req := range reqs {
		if problems[i] == nil {
			valid = append(valid, req)
		}
	}
	end := appendSpans(ctx, valid)
	stored, err := store.AppendAll(ctx, valid)
	end(stored, err)
	if err != nil {
		return nil, err
	}
	replies := make([]event.AppendReply, len(reqs))
	for i := range reqs {
		if problems[i] != nil {
			replies[i] = invalidReply(problems[i])
			continue
		}
		replies[i], stored = stored[0], stored[1:]
	}
	return json.Marshal(replies)
}

func invalidReply(err error) event.AppendReply {
	return event.AppendReply{Error: event.ErrInvalid, Message: err.Error()}
}
