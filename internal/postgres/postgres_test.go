package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
)

func TestOpenCreatesTheDatabaseOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	t.Parallel()
	ctx := context.Background()
	name := testenv.DatabaseName(t, "msdemo_test")
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), name) })
	for range 2 { // the second Open finds it there
		pool, err := postgres.Open(ctx, testenv.PostgresURL(), name)
		if err != nil {
			t.Fatalf("PostgreSQL at POSTGRES_URL: %v", err)
		}
		var got string
		if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&got); err != nil || got != name {
			t.Fatalf("current_database: got %q (%v), want %q", got, err, name)
		}
		pool.Close()
	}
	if _, err := postgres.Open(ctx, testenv.PostgresURL(), "Bad-Name"); err == nil {
		t.Error("a database name with capitals and a dash was accepted")
	}
	_, err := postgres.Open(ctx, "postgres://postgres:secret@127.0.0.1:1/postgres", name)
	if err == nil || !strings.Contains(err.Error(), "POSTGRES_URL") || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable server: got %v, want an error naming POSTGRES_URL without the password", err)
	}
}

func TestReadModelsDoNotWaitForTheFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	t.Parallel()
	ctx := context.Background()
	name := testenv.DatabaseName(t, "msdemo_test")
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), name) })
	pool, err := postgres.Open(ctx, testenv.PostgresURL(), name)
	if err != nil {
		t.Fatalf("PostgreSQL at POSTGRES_URL: %v", err)
	}
	defer pool.Close()
	var setting string
	if err := pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&setting); err != nil || setting != "off" {
		t.Fatalf("synchronous_commit: got %q (%v), want off", setting, err)
	}
	if got := pool.Config().MaxConns; got < 16 {
		t.Errorf("pool size: got %d, want at least 16", got)
	}
}
