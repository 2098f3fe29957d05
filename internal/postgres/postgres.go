// Package postgres opens a service's own PostgreSQL database, creating it when missing, so
// that each service owns one database on a shared server (msdemo_order,
// msdemo_accounting).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

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
	pool, err := pgxpool.New(ctx, u.String())
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
