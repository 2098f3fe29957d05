package product

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

func stored(stream string, version, position int64, typ string, data any) event.Stored {
	raw, _ := json.Marshal(data)
	return event.Stored{ID: typ + stream, Stream: stream, Version: version, Position: position, Type: typ, Data: raw}
}

// Apply is idempotent by stream version, counts event types it does not know as versions,
// refuses a gap, and keeps the checkpoint in step.
func TestStoreApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := OpenStore(ctx, filepath.Join(t.TempDir(), "product.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fields := ProductFields{Name: "Chai", CategoryID: "aaaaaaaaaa", PriceCents: 1800, UnitsInStock: 39}
	steps := []struct {
		e         event.Stored
		permanent bool
	}{
		{stored("category-aaaaaaaaaa", 1, 1, event.CategoryAdded, CategoryAddedData{ID: "aaaaaaaaaa", Name: "Beverages"}), false},
		{stored("product-pppppppppp", 1, 2, event.ProductAdded, ProductAddedData{ID: "pppppppppp", ProductFields: fields}), false},
		{stored("product-pppppppppp", 1, 2, event.ProductAdded, ProductAddedData{ID: "pppppppppp", ProductFields: fields}), false}, // again
		{stored("product-pppppppppp", 2, 3, event.ProductStockReserved, map[string]any{"order_id": "o", "quantity": 1}), false},
		{stored("product-pppppppppp", 4, 5, event.ProductUpdated, fields), true}, // version 3 is missing
		{stored("product-qqqqqqqqqq", 1, 6, event.ProductUpdated, fields), true}, // no added event
		{stored("product-pppppppppp", 3, 4, event.ProductUpdated, json.RawMessage(`{"price_cents":"x"}`)), true},
		{stored("order-oooooooooo", 1, 7, event.OrderPlaced, nil), false}, // not the catalog's
	}
	for i, step := range steps {
		err := s.Apply(ctx, "store-1", step.e)
		if got := errors.Is(err, bus.ErrPermanent); got != step.permanent || (err != nil && !step.permanent) {
			t.Fatalf("step %d (%s v%d): got error %v, want permanent=%v", i, step.e.Type, step.e.Version, err, step.permanent)
		}
	}
	p, err := s.Product(ctx, "pppppppppp")
	if err != nil {
		t.Fatal(err)
	}
	reserved := fields
	reserved.UnitsInStock-- // product.stock-reserved took one unit
	if want := (Product{ID: "pppppppppp", ProductFields: reserved, Version: 2}); p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
	if id, pos, err := s.Checkpoint(ctx); id != "store-1" || pos != 7 || err != nil {
		t.Errorf("checkpoint: got %q %d %v, want store-1 7", id, pos, err)
	}
	if err := s.Reset(ctx, "store-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Category(ctx, "aaaaaaaaaa"); err == nil {
		t.Errorf("category still there after Reset")
	}
	if id, pos, _ := s.Checkpoint(ctx); id != "store-2" || pos != 0 {
		t.Errorf("checkpoint after Reset: got %q %d, want store-2 0", id, pos)
	}
}
