package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	_ "modernc.org/sqlite" // the driver FerretDB's SQLite backend uses too
)

// ferretNew serializes ferretdb.New, which is not safe to call concurrently (tests run
// several stores in one process).
var ferretNew sync.Mutex

// ferretProcess is an embedded FerretDB running in this process.
type ferretProcess struct {
	uri string
	// done is closed when FerretDB has stopped; err says why, and is nil only when stop
	// asked it to.
	done chan struct{}
	err  error

	cancel   context.CancelFunc
	stopping atomic.Bool
}

// ferretBackend is where an embedded FerretDB keeps its data: SQLite files in a directory
// (one process), or a PostgreSQL database that several event store processes share.
type ferretBackend struct {
	sqliteDir   string
	postgresURL string
}

func (b ferretBackend) String() string {
	if b.postgresURL != "" {
		return "PostgreSQL (EVENTSTORE_POSTGRES_URL)"
	}
	return b.sqliteDir
}

// startFerretDB runs an embedded FerretDB on backend on a loopback port until stop is
// called. Telemetry is off (the embedded package turns it off and locks it). If it stops
// by itself, or fails, it logs that, and done says so: the event store cannot go on
// without its database.
func startFerretDB(backend ferretBackend, logger *slog.Logger) (*ferretProcess, error) {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		// FerretDB logs every connection at info level and every failed command (such as
		// the driver's endSessions, which it lacks) as a warning; only its errors matter.
		Logger: slog.New(quietHandler{Handler: logger.Handler()}),
	}
	if backend.postgresURL != "" {
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", backend.postgresURL
	} else {
		abs, err := filepath.Abs(backend.sqliteDir)
		if err != nil {
			return nil, fmt.Errorf("embedded FerretDB data dir %s: %w", backend.sqliteDir, err)
		}
		if err := os.MkdirAll(abs, 0o750); err != nil {
			return nil, fmt.Errorf("embedded FerretDB data dir: %w", err)
		}
		cfg.Handler, cfg.SQLiteURL = "sqlite", "file:"+abs+"/"
	}
	ferretNew.Lock() // ferretdb.New writes a package-level variable of FerretDB's
	f, err := ferretdb.New(cfg)
	ferretNew.Unlock()
	if err != nil {
		return nil, fmt.Errorf("start embedded FerretDB on %s: %w", backend, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &ferretProcess{uri: f.MongoDBURI(), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		err := f.Run(ctx)
		switch {
		case err != nil:
			p.err = fmt.Errorf("embedded FerretDB on %s failed: %w", backend, err)
		case !p.stopping.Load():
			p.err = fmt.Errorf("embedded FerretDB on %s stopped unasked", backend)
		}
		if p.err != nil {
			logger.Error("embedded FerretDB stopped", "error", p.err)
		}
	}()
	return p, nil
}

// stop stops FerretDB and waits until it has.
func (p *ferretProcess) stop() {
	p.stopping.Store(true)
	p.cancel()
	<-p.done
}

// quietHandler passes on only errors. FerretDB makes a logger with attributes for every
// command (1.3 % of the shop's CPU at saturation when each was formatted at once), and
// nearly all of them log nothing: the attributes and groups are only kept, and applied to
// the handler when a record is handled.
type quietHandler struct {
	slog.Handler
	with func(slog.Handler) slog.Handler // the WithAttrs and WithGroup calls so far; nil: none
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.with == nil {
		return h.Handler.Handle(ctx, r)
	}
	return h.with(h.Handler).Handle(ctx, r)
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.then(func(next slog.Handler) slog.Handler { return next.WithAttrs(attrs) })
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return h.then(func(next slog.Handler) slog.Handler { return next.WithGroup(name) })
}

// then returns h with step applied after the calls h keeps.
func (h quietHandler) then(step func(slog.Handler) slog.Handler) quietHandler {
	before := h.with
	if before == nil {
		return quietHandler{h.Handler, step}
	}
	return quietHandler{h.Handler, func(next slog.Handler) slog.Handler { return step(before(next)) }}
}

// indexFerretIDs makes _id lookups on the embedded FerretDB use an index.
//
// FerretDB v1's SQLite backend creates a unique index on each collection's
// `_ferretdb_sjson->"_id"` but queries `_ferretdb_sjson->'$._id'`, an expression SQLite
// does not match to that index: every lookup by _id scans and parses the whole table
// (EXPLAIN QUERY PLAN says SCAN). With 100,000 events that is about 200 ms a lookup. This
// adds an index on the expression the queries use; FerretDB does not know of it, and it
// goes when FerretDB drops the table. TestFerretIDLookupsUseIndex checks the plan.
func indexFerretIDs(ctx context.Context, dir, database string, db *mongo.Database, collections ...string) error {
	if err := createCollections(ctx, db, collections...); err != nil {
		return err
	}
	abs, err := filepath.Abs(filepath.Join(dir, database+".sqlite"))
	if err != nil {
		return err
	}
	sqlDB, err := sql.Open("sqlite", "file:"+abs+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", abs, err)
	}
	defer sqlDB.Close()
	for _, name := range collections {
		var table string
		err := sqlDB.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, name).Scan(&table)
		if err != nil {
			return fmt.Errorf("find the table of collection %s in %s: %w", name, abs, err)
		}
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+"_msdemo_id", table)
		if _, err := sqlDB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index _id of %s: %w", name, err)
		}
	}
	return nil
}

// createCollections creates those of collections that do not exist yet. FerretDB keeps
// a catalog of collections in each process; creating them all at start-up, before any
// write, keeps two processes sharing one PostgreSQL database from both creating one on
// first use.
func createCollections(ctx context.Context, db *mongo.Database, collections ...string) error {
	for _, name := range collections {
		err := db.CreateCollection(ctx, name)
		var cmdErr mongo.CommandError
		if err != nil && !(errors.As(err, &cmdErr) && cmdErr.Name == "NamespaceExists") {
			return fmt.Errorf("create collection %s: %w", name, err)
		}
	}
	return nil
}
