package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/msdemo/msdemo/internal/event"
)

// diskIndex is the store's index of every stored event, kept in a SQLite file of this
// process: where each event id was stored, and each stream's versions and positions. The
// writer decides expected versions and duplicate ids with it, and stream reads find their
// positions in it. It lives on disk so that start-up and memory do not grow with the
// number of stored events: a restart reads only what was committed after the index's
// head, and SQLite keeps a bounded page cache.
//
// It is derived from the commits, never the truth: its head is the last position it
// holds, recorded in the same SQLite transaction as the events, and a missing, foreign or
// damaged file is built again from the chunks and commits (reload). It is written without
// fsync (synchronous=OFF): a crash of the machine can lose its last transactions, which
// reload finds missing and adds again.
type diskIndex struct {
	db   *sql.DB
	path string
	// idStmt and versionStmt look up lookupGroup event ids and streams at once: prepared
	// once, they cost a fraction of a statement compiled for each batch, and one query for
	// a group a fraction of one per value.
	idStmt, versionStmt *sql.Stmt
}

// lookupGroup is how many values a prepared lookup takes; shorter groups are padded with
// "", which is no event id and no stream.
const lookupGroup = 16

// indexState is what the index recorded about itself.
type indexState struct {
	storeID string
	head    int64 // last position indexed (a commit's or a chunk's end)
	// chunked and tailCommit are the last chunk this process saw written: its last
	// position, and the first position of the commit that holds it.
	chunked, tailCommit int64
}

// indexCacheKiB is SQLite's page cache per connection, and indexConns how many
// connections there are: together the index's memory bound.
const (
	indexCacheKiB = 8 << 10
	indexConns    = 4
)

// openDiskIndex opens (or creates) the index file at path.
func openDiskIndex(ctx context.Context, path string) (*diskIndex, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("event index directory: %w", err)
	}
	q := url.Values{"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(OFF)",
		fmt.Sprintf("cache_size(-%d)", indexCacheKiB)}}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open event index %s: %w", path, err)
	}
	db.SetMaxOpenConns(indexConns)
	db.SetMaxIdleConns(indexConns)
	_, err = db.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS events (
			id       TEXT PRIMARY KEY,
			stream   TEXT NOT NULL,
			version  INTEGER NOT NULL,
			position INTEGER NOT NULL,
			UNIQUE (stream, version)
		) WITHOUT ROWID;
		CREATE TABLE IF NOT EXISTS streams (
			stream  TEXT PRIMARY KEY,
			version INTEGER NOT NULL
		) WITHOUT ROWID;
		CREATE TABLE IF NOT EXISTS state (
			key   TEXT PRIMARY KEY,
			value TEXT NOT NULL
		) WITHOUT ROWID;`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create event index %s: %w", path, err)
	}
	d := &diskIndex{db: db, path: path}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", lookupGroup), ",") + ")"
	if d.idStmt, err = db.PrepareContext(ctx, `SELECT id, stream, version, position FROM events WHERE id IN `+in); err == nil {
		d.versionStmt, err = db.PrepareContext(ctx, `SELECT stream, version FROM streams WHERE stream IN `+in)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare event index lookups: %w", err)
	}
	return d, nil
}

func (d *diskIndex) close() error { return d.db.Close() }

// state reads what the index recorded; a new index has an empty store id and zeros.
func (d *diskIndex) state(ctx context.Context) (indexState, error) {
	st := indexState{tailCommit: 1}
	rows, err := d.db.QueryContext(ctx, `SELECT key, value FROM state`)
	if err != nil {
		return st, fmt.Errorf("read event index state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			return st, err
		}
		var n int64
		if key != "store_id" {
			if _, err := fmt.Sscan(value, &n); err != nil {
				return st, fmt.Errorf("event index state %s=%q: %w", key, value, err)
			}
		}
		switch key {
		case "store_id":
			st.storeID = value
		case "head":
			st.head = n
		case "chunked":
			st.chunked = n
		case "tail_commit":
			st.tailCommit = n
		}
	}
	return st, rows.Err()
}

// reset empties the index and makes it the index of store storeID.
func (d *diskIndex) reset(ctx context.Context, storeID string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM events; DELETE FROM streams; DELETE FROM state;
		INSERT INTO state (key, value) VALUES ('store_id', ?)`, storeID)
	if err != nil {
		return fmt.Errorf("reset event index: %w", err)
	}
	return nil
}

// add records events (in position order) and head, the position they end at, in one
// transaction. Events it holds already are left as they are, so adding again what a crash
// may have kept from being recorded is safe.
func (d *diskIndex) add(ctx context.Context, events []event.Stored, head int64) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index events: %w", err)
	}
	defer tx.Rollback()
	last := map[string]int64{} // stream -> its last version among events
	for _, e := range events {
		last[e.Stream] = max(last[e.Stream], e.Version)
	}
	// One statement per group of rows: a statement per event costs several times as much.
	for len(events) > 0 {
		group := events[:min(len(events), maxInsertRows)]
		events = events[len(group):]
		args := make([]any, 0, 4*len(group))
		for _, e := range group {
			args = append(args, e.ID, e.Stream, e.Version, e.Position)
		}
		q := `INSERT OR IGNORE INTO events (id, stream, version, position) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?),", len(group)), ",")
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("index events from %d: %w", group[0].Position, err)
		}
	}
	// Each stream's version, kept apart: max(version) over a stream's events cannot be
	// answered for many streams at once without reading all their events.
	for len(last) > 0 {
		args := make([]any, 0, 2*maxInsertRows)
		for stream, v := range last {
			args = append(args, stream, v)
			delete(last, stream)
			if len(args) == 2*maxInsertRows {
				break
			}
		}
		q := `INSERT INTO streams (stream, version) VALUES ` + strings.TrimSuffix(strings.Repeat("(?,?),", len(args)/2), ",") +
			` ON CONFLICT (stream) DO UPDATE SET version = max(version, excluded.version)`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("index stream versions: %w", err)
		}
	}
	if err := setState(ctx, tx, "head", head); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index events: %w", err)
	}
	return nil
}

// setChunked records the last chunk seen written, where the next reload starts looking.
func (d *diskIndex) setChunked(ctx context.Context, chunked, tailCommit int64) error {
	if err := setState(ctx, d.db, "chunked", chunked); err != nil {
		return err
	}
	return setState(ctx, d.db, "tail_commit", tailCommit)
}

func setState(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, key string, value int64) error {
	_, err := db.ExecContext(ctx, `INSERT INTO state (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, fmt.Sprint(value))
	if err != nil {
		return fmt.Errorf("record event index %s: %w", key, err)
	}
	return nil
}

// maxInsertRows bounds the number of rows in one INSERT (SQLite allows 32,766 variables).
const maxInsertRows = 500

// lookupIDs returns where each of ids that the index holds was stored.
func (d *diskIndex) lookupIDs(ctx context.Context, ids []string) (map[string]idEntry, error) {
	found := map[string]idEntry{}
	err := lookUpGroups(ctx, d.idStmt, ids, func(rows *sql.Rows) error {
		var id string
		var e idEntry
		if err := rows.Scan(&id, &e.stream, &e.version, &e.position); err != nil {
			return err
		}
		found[id] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up event ids: %w", err)
	}
	return found, nil
}

// versions returns the current version of each of streams that has events.
func (d *diskIndex) versions(ctx context.Context, streams []string) (map[string]int64, error) {
	found := map[string]int64{}
	err := lookUpGroups(ctx, d.versionStmt, streams, func(rows *sql.Rows) error {
		var stream string
		var v int64
		if err := rows.Scan(&stream, &v); err != nil {
			return err
		}
		found[stream] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up stream versions: %w", err)
	}
	return found, nil
}

// lookUpGroups runs stmt for values, lookupGroup at a time, and hands each row to scan.
func lookUpGroups(ctx context.Context, stmt *sql.Stmt, values []string, scan func(*sql.Rows) error) error {
	args := make([]any, lookupGroup)
	for start := 0; start < len(values); start += lookupGroup {
		for i := range args {
			args[i] = ""
			if start+i < len(values) {
				args[i] = values[start+i]
			}
		}
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// positions returns the positions of stream's versions from..to (inclusive) that are at
// most head, in version order.
func (d *diskIndex) positions(ctx context.Context, stream string, from, to, head int64) ([]int64, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT position FROM events
		WHERE stream = ? AND version BETWEEN ? AND ? AND position <= ? ORDER BY version`, stream, from, to, head)
	if err != nil {
		return nil, fmt.Errorf("read positions of %s: %w", stream, err)
	}
	defer rows.Close()
	var positions []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		positions = append(positions, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read positions of %s: %w", stream, err)
	}
	return positions, nil
}

// errIndexAhead means the index holds positions the database does not: the database was
// restored from an older copy, or is another one.
var errIndexAhead = errors.New("the event index is ahead of the database")
