package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
)

func testDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	name := testenv.DatabaseName(t, "msdemo_test")
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), name) })
	pool, err := postgres.Open(context.Background(), testenv.PostgresURL(), name)
	if err != nil {
		t.Fatalf("PostgreSQL at POSTGRES_URL: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Ensure creates the tables of a new version empty, dropping the old ones but the kept,
// and leaves the tables of the current version as they are.
func TestSchemaEnsure(t *testing.T) {
	t.Parallel()
	db := testDatabase(t)
	ctx := context.Background()
	v1 := postgres.Schema{Name: "things", Version: 1, Tables: []string{"things", "checkpoint"}, Kept: []string{"kept"}, Create: `
		CREATE TABLE things (id text PRIMARY KEY);
		CREATE TABLE IF NOT EXISTS kept (id text PRIMARY KEY);
		CREATE TABLE checkpoint (position bigint NOT NULL);
		INSERT INTO checkpoint VALUES (0);`}
	v2 := postgres.Schema{Name: "things", Version: 2, Tables: []string{"things", "checkpoint"}, Kept: []string{"kept"},
		Former: []string{"gone"}, Create: `
		CREATE TABLE things (id text PRIMARY KEY, name text NOT NULL);
		CREATE TABLE IF NOT EXISTS kept (id text PRIMARY KEY);
		CREATE TABLE checkpoint (position bigint NOT NULL);
		INSERT INTO checkpoint VALUES (0);`}
	count := func(table string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	}
	ensure := func(s postgres.Schema, wantCreated bool) {
		t.Helper()
		created, err := s.Ensure(ctx, db)
		if err != nil || created != wantCreated {
			t.Fatalf("Ensure version %d: got created=%v, %v; want created=%v", s.Version, created, err, wantCreated)
		}
	}

	// A database from before versions: its tables are replaced.
	if _, err := db.Exec(ctx, `CREATE TABLE things (id text PRIMARY KEY); INSERT INTO things VALUES ('old');
		CREATE TABLE gone (id text)`); err != nil {
		t.Fatal(err)
	}
	ensure(v1, true)
	if n := count("things"); n != 0 {
		t.Fatalf("after creating version 1: %d things, want 0", n)
	}
	if _, err := db.Exec(ctx, `INSERT INTO things VALUES ('a'); INSERT INTO kept VALUES ('work');
		UPDATE checkpoint SET position = 7`); err != nil {
		t.Fatal(err)
	}
	ensure(v1, false) // the current version: nothing changes
	if count("things") != 1 {
		t.Fatal("Ensure of the current version emptied the table")
	}
	ensure(v2, true) // a newer version: rebuilt, but for kept
	var position int64
	if err := db.QueryRow(ctx, `SELECT position FROM checkpoint`).Scan(&position); err != nil || position != 0 {
		t.Fatalf("checkpoint after version 2: %d (%v), want 0", position, err)
	}
	if count("things") != 0 || count("kept") != 1 {
		t.Fatalf("after version 2: %d things and %d kept, want 0 and 1", count("things"), count("kept"))
	}
	if _, err := db.Exec(ctx, `INSERT INTO things VALUES ('b', 'named')`); err != nil {
		t.Fatalf("version 2's table: %v", err)
	}
	var gone bool
	if err := db.QueryRow(ctx, `SELECT to_regclass('gone') IS NULL`).Scan(&gone); err != nil || !gone {
		t.Errorf("table gone of an old version still there (%v)", err)
	}
	ensure(v1, true) // an older build after a newer one: rebuilt to its own version
	if count("things") != 0 {
		t.Fatal("going back to version 1 kept version 2's rows")
	}
	if _, err := db.Exec(ctx, `INSERT INTO things VALUES ('c'); DROP TABLE checkpoint`); err != nil {
		t.Fatal(err)
	}
	ensure(v1, true) // a table deleted by hand, to have the read model rebuilt
	if count("things") != 0 || count("checkpoint") != 1 {
		t.Fatalf("after deleting a table: %d things and %d checkpoints, want 0 and 1", count("things"), count("checkpoint"))
	}
}

// Replicas that start at once create the tables once.
func TestSchemaEnsureConcurrently(t *testing.T) {
	t.Parallel()
	db := testDatabase(t)
	s := postgres.Schema{Name: "race", Version: 1, Tables: []string{"race"}, Create: `CREATE TABLE race (id text)`}
	var created atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := s.Ensure(context.Background(), db)
			if err != nil {
				t.Error(err)
			}
			if c {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 1 {
		t.Errorf("8 replicas at once created the tables %d times, want 1", n)
	}
}
