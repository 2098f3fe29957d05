// Package postgres opens a service's own PostgreSQL database, creating it when missing, so
// that each service owns one database on a shared server (msdemo_order,
// msdemo_accounting). The database holds a read model: see Open for what that allows.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// minPoolConns is the least number of connections a service's pool may open.
const minPoolConns = 16

var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to database on the server of serverURL (POSTGRES_URL, whose own database
// is used only to create the missing one) and returns a pool. An unreachable server is an
// error naming POSTGRES_URL and how to start it.
func Open(ctx context.Context, serverURL, database string) (*pgxpool.Pool, error) {
	if !databaseName.MatchString(database) {
		return nil, fmt.Errorf("database name %q is not a plain identifier", database)
	}
	if err := Create(ctx, serverURL, database); err != nil {
		return nil, err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("POSTGRES_URL: %w", err)
	}
	u.Path = "/" + database
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", database, err)
	}
	// pgx's default (4 on this machine) is too few for a service whose subscription,
	// HTTP handlers and parallel saga deciders each hold a connection; a pool_max_conns in
	// POSTGRES_URL still wins.
	if !u.Query().Has("pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, minPoolConns)
	}
	// A service's database holds a read model, which the event store can always rebuild:
	// its transactions must be atomic (the change with its checkpoint), not each flushed to
	// disk before the commit returns. Without the flush wait, a read model that applies
	// events one at a time applies several times as many per second; after a crash of the
	// machine it may have lost its last few transactions, checkpoint included, and catches
	// up again from the event store.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", database, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s: %w", database, err)
	}
	return pool, nil
}

// Create creates database on the server of serverURL unless it exists.
func Create(ctx context.Context, serverURL, database string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("PostgreSQL not reachable at POSTGRES_URL=%s: %w; start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`", redact(serverURL), err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{database}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505")) {
		return fmt.Errorf("create database %s: %w", database, err)
	}
	return nil
}

// CreateNamed creates the database that databaseURL names unless it exists, connecting to
// the server's postgres database to do so.
func CreateNamed(ctx context.Context, databaseURL string) error {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	database := strings.TrimPrefix(u.Path, "/")
	if !databaseName.MatchString(database) {
		return fmt.Errorf("database URL %s: name a database with a plain identifier, such as /msdemo_eventstore", redact(databaseURL))
	}
	u.Path = "/postgres"
	return Create(ctx, u.String(), database)
}

// Drop drops database; tests use it to clean up.
func Drop(ctx context.Context, serverURL, database string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{database}.Sanitize()+" WITH (FORCE)")
	return err
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
