package eventstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/testenv"
)

// The embedded FerretDB answers lookups by _id from an index, not by scanning the table
// (see indexFerretIDs). If a FerretDB upgrade changes the query it sends, this fails.
func TestFerretIDLookupsUseIndex(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := openDatabase(context.Background(), Config{DataDir: dir, Database: "plan"}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.close(context.Background())
	for _, c := range []struct{ database, collection string }{
		{"plan", collCommits}, {"plan", collChunks}, {"plan", collMeta}, {"plan_pages", collPages},
	} {
		if plan := idQueryPlan(t, filepath.Join(dir, "eventstore", c.database+".sqlite"), c.collection); !strings.Contains(plan, "USING INDEX") {
			t.Errorf("%s: query plan %q, want a search using an index", c.collection, plan)
		}
	}
}

// idQueryPlan explains the query that FerretDB's SQLite backend sends for a filter
// {_id: "<string>"} on collection in the database file path.
func idQueryPlan(t *testing.T, path, collection string) string {
	t.Helper()
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	var table string
	if err := sqlDB.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, collection).Scan(&table); err != nil {
		t.Fatalf("table of %s: %v", collection, err)
	}
	rows, err := sqlDB.Query(fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"k1"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// An embedded FerretDB that stops without being asked to reports it (the event store's Run
// then fails, db.lost); one that is stopped reports nothing.
func TestFerretStoppingUnaskedIsAnError(t *testing.T) {
	t.Parallel()
	unasked, err := startFerretDB(ferretBackend{sqliteDir: t.TempDir()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	unasked.cancel() // FerretDB's Run returns, as it would if it failed by itself
	<-unasked.done
	if unasked.err == nil || !strings.Contains(unasked.err.Error(), "stopped unasked") {
		t.Errorf("FerretDB stopped by itself: got %v, want an error saying so", unasked.err)
	}
	db := &mongoStore{embedded: unasked}
	select {
	case <-db.lost():
		if db.lostErr() != unasked.err {
			t.Errorf("lostErr: got %v, want %v", db.lostErr(), unasked.err)
		}
	default:
		t.Error("lost is not closed after FerretDB stopped")
	}

	asked, err := startFerretDB(ferretBackend{sqliteDir: t.TempDir()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	asked.stop()
	if asked.err != nil {
		t.Errorf("FerretDB stopped by stop: got %v, want no error", asked.err)
	}
}

// FerretDB's logger passes on only errors, with the attributes and groups it was given
// before, in their order; until an error comes, the handler below is not asked to format
// them.
func TestQuietHandler(t *testing.T) {
	var out bytes.Buffer
	text := &countingHandler{Handler: slog.NewTextHandler(&out, nil)}
	logger := slog.New(quietHandler{Handler: text})
	conn := logger.With("conn", "c1").WithGroup("cmd").With("name", "insert")
	conn.Info("connection accepted")
	conn.Warn("command failed", "command", "endSessions")
	if out.Len() != 0 {
		t.Fatalf("info and warnings were passed on: %q", out.String())
	}
	if text.with != 0 {
		t.Errorf("the handler was asked for %d WithAttrs/WithGroup before any error, want 0", text.with)
	}
	conn.Error("write failed", "error", "disk full")
	got := out.String()
	want := `level=ERROR msg="write failed" conn=c1 cmd.name=insert cmd.error="disk full"`
	if !strings.Contains(got, want) {
		t.Errorf("got %q, want it to contain %q", got, want)
	}
}

// countingHandler counts the WithAttrs and WithGroup calls made on it.
type countingHandler struct {
	slog.Handler
	with int
}

func (h *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h.with++
	return h.Handler.WithAttrs(attrs)
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	h.with++
	return h.Handler.WithGroup(name)
}
