package product

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// A read model file of another schema version, older, newer or none (made before
// versions), is emptied when it is opened, at checkpoint 0, so that the subscription
// rebuilds it from the events as it catches up; one of the current version is opened as
// it is.
func TestOpenStoreEmptiesOtherSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "product.db")
	// open opens the store, checks what it holds, leaves a category at checkpoint 9, and
	// then sets the file's schema version to next (-1: leaves it).
	open := func(wantPosition int64, wantCategories, next int) {
		t.Helper()
		s, err := OpenStore(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, position, err := s.Checkpoint(ctx)
		var categories int
		if err == nil {
			err = s.read.QueryRowContext(ctx, `SELECT count(*) FROM categories`).Scan(&categories)
		}
		if err != nil || position != wantPosition || categories != wantCategories {
			t.Fatalf("opened at checkpoint %d with %d categories (%v), want %d and %d", position, categories, err, wantPosition, wantCategories)
		}
		if _, err := s.write.ExecContext(ctx, `INSERT OR IGNORE INTO categories VALUES ('c1', 'Tea', 1, 0);
			UPDATE checkpoint SET store_id = 's', position = 9`); err != nil {
			t.Fatal(err)
		}
		if next >= 0 {
			if _, err := s.write.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, next)); err != nil {
				t.Fatal(err)
			}
		}
	}
	open(0, 0, -1)              // a new file
	open(9, 1, schemaVersion+5) // the current version: as it was; then a newer one
	open(0, 0, 0)               // a newer version: emptied; then none (made before versions)
	open(0, 0, -1)              // none: emptied
	open(9, 1, -1)              // the current version again

	s, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, `DROP TABLE checkpoint`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	open(0, 0, -1) // a table deleted by hand, to have the read model rebuilt
}
