package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema is the tables of a read model at one version.
//
// A read model is a projection of the event store, so a change of its tables is not
// migrated: the tables are dropped and created anew, empty, and the service's
// subscription, finding the checkpoint at 0, rebuilds them from the events as it catches
// up at start. That is always right, needs no migration code, and is what `msdemo
// rebuild` does. A table whose rows a rebuild does not give back is Kept across versions
// instead; a change of its own shape would need a real migration.
type Schema struct {
	// Name names the read model in the table read_model_schema, which holds each read
	// model's version.
	Name string
	// Version is the version of Create. Raise it with every change of Create, or of what
	// the read model writes into its tables.
	Version int
	// Create creates Tables, the empty checkpoint included, in a database that has none
	// of them, and Kept if missing (CREATE TABLE IF NOT EXISTS).
	Create string
	// Tables are the tables that Create makes, dropped before it runs.
	Tables []string
	// Kept are tables that Create makes if missing and that are never dropped.
	Kept []string
	// Former are the tables of earlier versions that Create no longer makes, dropped
	// with Tables.
	Former []string
}

// Ensure makes db hold the read model at s.Version and reports whether it created its
// tables. The read model is current when s.Version is recorded for s.Name and all of
// Tables and Kept exist. Otherwise (a new database, one made before versions, an older
// or newer build's schema, or tables deleted to have them rebuilt) it drops Tables and
// Former, runs Create and records s.Version, in one transaction: the read model is then
// empty, at checkpoint 0, and its subscription rebuilds it. Replicas that start at once
// take turns (a transaction-scoped advisory lock), so only the first one creates the
// tables. Replicas of another version must be stopped first: their tables change under
// them.
func (s Schema) Ensure(ctx context.Context, db *pgxpool.Pool) (created bool, err error) {
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('msdemo read model ' || $1))`, s.Name); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS read_model_schema (
			name    text PRIMARY KEY,
			version integer NOT NULL)`); err != nil {
			return err
		}
		var stored, missing int
		err := tx.QueryRow(ctx, `SELECT version FROM read_model_schema WHERE name = $1`, s.Name).Scan(&stored)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) AS t(name)
			WHERE to_regclass(quote_ident(name)) IS NULL`, slices.Concat(s.Tables, s.Kept)).Scan(&missing); err != nil {
			return fmt.Errorf("look for the tables: %w", err)
		}
		if stored == s.Version && missing == 0 {
			return nil
		}
		if drop := slices.Concat(s.Tables, s.Former); len(drop) > 0 {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+identifiers(drop)+` CASCADE`); err != nil {
				return fmt.Errorf("drop the tables of version %d: %w", stored, err)
			}
		}
		if _, err := tx.Exec(ctx, s.Create); err != nil {
			return fmt.Errorf("create the tables of version %d: %w", s.Version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO read_model_schema (name, version) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version`, s.Name, s.Version); err != nil {
			return fmt.Errorf("record the schema version: %w", err)
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("schema of the %s read model: %w", s.Name, err)
	}
	return created, nil
}

// identifiers quotes names for SQL, separated by commas.
func identifiers(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(quoted, ", ")
}
