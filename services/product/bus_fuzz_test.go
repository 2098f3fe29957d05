package product

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/testenv"
)

// readEventTypes are the types of eventTypes, one by one.
var readEventTypes = []string{event.CategoryAdded, event.CategoryRenamed, event.CategoryDeleted,
	event.ProductAdded, event.ProductUpdated, event.ProductDeleted, event.ProductImageSet, event.ProductStockReserved,
	event.ProductStockRejected, event.ProductStockReleased, event.OrderPlaced, event.OrderRejected}

// FuzzEventData applies an event of each type the service reads, with any data, to the
// read model (a real SQLite store, opened once for the target): a category's or a
// product's event to a new aggregate of its own (after a valid added event, for the types
// that follow one). Data that does not decode is a permanent failure (dead-lettered, never
// retried) and changes nothing: neither the aggregate, its reservations, nor the
// checkpoint. For order.placed it also takes the saga's decision as the participant does,
// on a product of price 18.00 with 5 units: a decision is an event the store accepts, and
// a reservation holds from 1 to 5 units at the order's price.
// The seed corpus is in testdata/fuzz/FuzzEventData.
func FuzzEventData(f *testing.F) {
	testenv.AddEventSeeds(f, readEventTypes, eventTypes)
	ctx := context.Background()
	s, err := OpenStore(ctx, filepath.Join(f.TempDir(), "product.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	position := int64(0)
	apply := func(e event.Stored) error {
		position++
		e.Position = position
		return s.Apply(ctx, "store-1", e)
	}
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		typ := testenv.EventType(readEventTypes, n)
		id := idgen.Short(idLen)
		var first event.Stored
		switch aggregate, _, _ := strings.Cut(typ, "."); event.Aggregate(aggregate) {
		case event.Category:
			first = event.Stored{ID: idgen.New(), Stream: categoryStream(CategoryID(id)), Version: 1, Type: event.CategoryAdded, Data: []byte(`{"name":"Beverages"}`)}
		case event.Product:
			first = event.Stored{ID: idgen.New(), Stream: productStream(ProductID(id)), Version: 1, Type: event.ProductAdded,
				Data: []byte(`{"name":"Chai","category_id":"bevbevbev2","price_cents":1800,"units_in_stock":5}`)}
		default:
			checkOrderEvent(t, typ, data)
			first = event.Stored{Stream: "order-abcdefgh2345", Version: 1}
		}
		e := event.Stored{ID: idgen.New(), Stream: first.Stream, Version: 1, Type: typ, Data: data}
		if typ != first.Type && first.Type != "" {
			if err := apply(first); err != nil {
				t.Fatal(err)
			}
			e.Version = 2
		}
		before := readModel(t, s, id)
		err := apply(e)
		testenv.CheckDeadLettered(t, typ, data, err)
		if err != nil {
			if after := readModel(t, s, id); !reflect.DeepEqual(after, before) {
				t.Fatalf("%s %q: refused (%v), but the read model went from %+v to %+v", typ, data, err, before, after)
			}
		}
	})
}

// readModelState is what the read model holds about one aggregate, and its checkpoint.
type readModelState struct {
	Category     Category
	Product      Product
	Reservations []Reservation
	Errors       string
	StoreID      string
	Position     int64
}

func readModel(t *testing.T, s *Store, id string) readModelState {
	t.Helper()
	ctx := context.Background()
	var r readModelState
	var errs []error
	var err error
	r.Category, err = s.Category(ctx, CategoryID(id))
	errs = append(errs, err)
	r.Product, err = s.Product(ctx, ProductID(id))
	errs = append(errs, err)
	r.Reservations, err = s.Reservations(ctx, ProductID(id))
	errs = append(errs, err)
	r.StoreID, r.Position, err = s.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.Errors = fmt.Sprint(errs)
	return r
}

// checkOrderEvent takes the participant's decision about an order event of type typ with
// data, on a product of price 18.00 with 5 units that has not answered the order.
func checkOrderEvent(t *testing.T, typ string, data []byte) {
	t.Helper()
	if typ != event.OrderPlaced {
		return
	}
	var o OrderPlacedData
	if err := json.Unmarshal(data, &o); err != nil || o.OrderID == "" {
		return // the participant skips it
	}
	for _, l := range o.All() {
		id := ProductID(l.ProductID)
		if !validID(string(id)) {
			return // the participant answers no more lines
		}
		d, ok := ReserveStock(Stock{PriceCents: 1800, UnitsInStock: 5, Version: 1}, Reservation{ProductID: id}, o.OrderID, l)
		if !ok {
			t.Fatalf("order.placed %q: no decision about a new order", data)
		}
		testenv.CheckAppendable(t, data, productStream(id), d)
		var r StockData
		if err := json.Unmarshal(d.Data, &r); err != nil {
			t.Fatal(err)
		}
		if d.Type == event.ProductStockReserved && (r.Quantity < 1 || r.Quantity > 5 || r.Quantity != l.Quantity || l.UnitPriceCents != 1800) {
			t.Fatalf("order.placed %q: reserved %d units of 5 at %d cents", data, r.Quantity, l.UnitPriceCents)
		}
	}
}
