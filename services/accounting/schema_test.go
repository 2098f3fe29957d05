package accounting

import (
	"context"
	"testing"

	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
)

// A read model of another schema version is emptied when it is opened, at checkpoint 0,
// for the subscription to rebuild, but for the approvals still to be invoiced, which a
// rebuild does not record again; one of the current version is opened as it is.
func TestNewStoreEmptiesOtherSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	database := testenv.DatabaseName(t, "accounting")
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), database) })
	db, err := postgres.Open(ctx, testenv.PostgresURL(), database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := func(wantPosition int64, wantInvoices, wantPending int) {
		t.Helper()
		store, err := NewStore(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		_, position, err := store.Checkpoint(ctx)
		var invoices, pending int
		if err == nil {
			err = db.QueryRow(ctx, `SELECT (SELECT count(*) FROM invoices), (SELECT count(*) FROM pending_invoices)`).
				Scan(&invoices, &pending)
		}
		if err != nil || position != wantPosition || invoices != wantInvoices || pending != wantPending {
			t.Fatalf("opened at checkpoint %d with %d invoices and %d pending (%v); want %d, %d and %d",
				position, invoices, pending, err, wantPosition, wantInvoices, wantPending)
		}
		if _, err := db.Exec(ctx, `
			INSERT INTO invoices VALUES ('o1', 'ann', 100, now(), 1, '{}') ON CONFLICT DO NOTHING;
			INSERT INTO pending_invoices (order_id, approval, event_id, metadata, approved_at)
				VALUES ('o2', '{}', 'e2', '{}', now()) ON CONFLICT DO NOTHING;
			UPDATE checkpoint SET store_id = 's', position = 9`); err != nil {
			t.Fatal(err)
		}
	}
	open(0, 0, 0) // new
	open(9, 1, 1) // current version: as it was
	for _, change := range []string{
		`UPDATE read_model_schema SET version = version - 1 WHERE name = 'accounting'`,
		`UPDATE read_model_schema SET version = version + 5 WHERE name = 'accounting'`,
		`DROP TABLE read_model_schema`,
	} {
		if _, err := db.Exec(ctx, change); err != nil {
			t.Fatal(err)
		}
		open(0, 0, 1) // emptied, but for the approval still to be invoiced
	}
}
