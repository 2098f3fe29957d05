package testenv

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/postgres"
)

// PostgresURL is the PostgreSQL server tests use: POSTGRES_URL or the local default.
func PostgresURL() string {
	if u := os.Getenv("POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the Redis server tests use: REDIS_URL or the local default.
func RedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// DatabaseName returns a PostgreSQL database name of t's own (lower case, at most 63
// characters).
func DatabaseName(t testing.TB, prefix string) string {
	name := strings.ToLower(strings.ReplaceAll(Name(t), "-", "_"))
	if max := 63 - len(prefix) - 1; len(name) > max {
		name = name[len(name)-max:]
	}
	return prefix + "_" + strings.TrimLeft(name, "_")
}

// PostgresDatabaseURL returns the URL of a database of t's own (DatabaseName) on the
// PostgreSQL server tests use, which whoever connects creates; it is dropped when t ends.
func PostgresDatabaseURL(t testing.TB, prefix string) string {
	t.Helper()
	name := DatabaseName(t, prefix)
	u, err := url.Parse(PostgresURL())
	if err != nil {
		t.Fatalf("POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), PostgresURL(), name) })
	return u.String()
}
