package order

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/testenv"
)

// readEventTypes are the types of eventTypes, one by one.
var readEventTypes = []string{event.OrderPlaced, event.OrderApproved, event.OrderRejected,
	event.ProductAdded, event.ProductUpdated, event.ProductDeleted,
	event.ProductStockReserved, event.ProductStockRejected, event.ProductStockReleased,
	event.CustomerCreditReserved, event.CustomerCreditRejected, event.CustomerCreditReleased, event.InvoiceIssued}

// FuzzEventData applies an event of each type the service reads, with any data, to the
// read model (a real PostgreSQL database, created once for the target) as a rebuild does
// (Store.Apply, which the saga's Apply shares): an order event to a new order (after a
// valid order.placed, for the types that follow it), a product event to a new product,
// and a participant's answer with the data's order_id made the new order's. Data that does
// not decode is a permanent failure (dead-lettered, never retried) and changes nothing:
// neither the order, its timeline, the product's price, nor the checkpoint.
// The seed corpus is in testdata/fuzz/FuzzEventData.
func FuzzEventData(f *testing.F) {
	testenv.AddEventSeeds(f, readEventTypes, eventTypes)
	s := openTestStore(f)
	ctx := context.Background()
	position := int64(0)
	apply := func(e event.Stored) error {
		position++
		e.Position, e.RecordedAt = position, time.Now().UTC().Truncate(time.Millisecond)
		return s.Apply(ctx, "store-1", e)
	}
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		typ := testenv.EventType(readEventTypes, n)
		id, product := OrderID(idgen.Short(idLen)), idgen.Short(10)
		// The seeds name order abcdefgh2345 and product chaichai22: make them new ones.
		data = []byte(strings.NewReplacer("abcdefgh2345", string(id), "chaichai22", product).Replace(string(data)))
		e := event.Stored{ID: idgen.New(), Version: 1, Type: typ, Data: data}
		switch aggregate, _, _ := strings.Cut(typ, "."); event.Aggregate(aggregate) {
		case event.Order:
			e.Stream = Stream(id)
			if typ != event.OrderPlaced {
				placed := fmt.Sprintf(`{"order_id":%q,"customer":"ann","product_id":%q,"quantity":2,"unit_price_cents":1800,"total_cents":3600}`, id, product)
				if err := apply(event.Stored{ID: idgen.New(), Stream: e.Stream, Version: 1, Type: event.OrderPlaced, Data: []byte(placed)}); err != nil {
					t.Fatal(err)
				}
				e.Version = 2
			}
		case event.Product:
			e.Stream = event.Product.Stream(product)
		case event.Customer:
			e.Stream = "customer-ann"
		default:
			e.Stream = event.Invoice.Stream(string(id))
		}
		before := orderReadModel(t, s, id, product)
		err := apply(e)
		testenv.CheckDeadLettered(t, typ, data, err)
		if err != nil {
			if after := orderReadModel(t, s, id, product); !reflect.DeepEqual(after, before) {
				t.Fatalf("%s %q: refused (%v), but the read model went from %+v to %+v", typ, data, err, before, after)
			}
		}
	})
}

// orderReadModelState is what the read model holds about one order and one product, and
// its checkpoint.
type orderReadModelState struct {
	Order    Order
	Price    Price
	Errors   string
	StoreID  string
	Position int64
}

func orderReadModel(t *testing.T, s *Store, id OrderID, product string) orderReadModelState {
	t.Helper()
	ctx := context.Background()
	var r orderReadModelState
	var orderErr, priceErr, err error
	r.Order, orderErr = s.Order(ctx, id)
	r.Price, priceErr = s.Price(ctx, product)
	r.Errors = fmt.Sprint(orderErr, priceErr)
	if r.StoreID, r.Position, err = s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}
