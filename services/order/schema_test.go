package order

import (
	"context"
	"testing"

	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
)

// A read model of another schema version, older, newer or none (made before versions), is
// emptied when it is opened, at checkpoint 0, so that the subscription rebuilds it from
// the events as it catches up; one of the current version is opened as it is.
func TestOpenStoreEmptiesOtherSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	database := testenv.DatabaseName(t, "order")
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), database) })
	admin, err := postgres.Open(ctx, testenv.PostgresURL(), database)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// open opens the store, checks what it holds, and leaves a price at checkpoint 9.
	open := func(wantPosition int64, wantPrices int) {
		t.Helper()
		store, err := OpenStore(ctx, testenv.PostgresURL(), database)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		_, position, err := store.Checkpoint(ctx)
		var prices int
		if err == nil {
			err = store.pool.QueryRow(ctx, `SELECT count(*) FROM prices`).Scan(&prices)
		}
		if err != nil || position != wantPosition || prices != wantPrices {
			t.Fatalf("opened at checkpoint %d with %d prices (%v), want %d and %d", position, prices, err, wantPosition, wantPrices)
		}
		if _, err := store.pool.Exec(ctx, `INSERT INTO prices VALUES ('p1', 'Tea', 100, false, 1) ON CONFLICT DO NOTHING;
			UPDATE checkpoint SET store_id = 's', position = 9`); err != nil {
			t.Fatal(err)
		}
	}
	open(0, 0) // new
	open(9, 1) // current version: as it was
	for _, change := range []string{
		`UPDATE read_model_schema SET version = version - 1 WHERE name = 'order'`,
		`UPDATE read_model_schema SET version = version + 5 WHERE name = 'order'`,
		`DROP TABLE read_model_schema`,
	} {
		if _, err := admin.Exec(ctx, change); err != nil {
			t.Fatal(err)
		}
		open(0, 0)
	}
}
