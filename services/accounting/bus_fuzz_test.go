package accounting

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
)

// FuzzEventData parses the data of each type the service reads, order.approved of order
// abcdefgh2345 and its invoice.issued, as the ledger does. Data that breaks the contract
// is refused with ErrMalformed (which the ledger dead-letters); an approval it accepts
// has a quantity of at least 1 and a total that is quantity times a price of at least 0,
// and the invoice issued for it is an event that the store accepts and that this service
// accepts again when it comes back from the bus.
// The seed corpus is in testdata/fuzz/FuzzEventData.
func FuzzEventData(f *testing.F) {
	testenv.AddEventSeeds(f, eventTypes, eventTypes)
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		typ := testenv.EventType(eventTypes, n)
		var a Approved
		var err error
		if typ == event.OrderApproved {
			a, err = ParseApproved("order-abcdefgh2345", data)
		} else {
			var inv Invoice
			inv, err = ParseIssued("invoice-abcdefgh2345", data)
			a = Approved{OrderID: inv.OrderID, Customer: inv.Customer, OrderLines: event.OrderLines{Lines: inv.Lines},
				TotalCents: inv.TotalCents}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s %q: got error %v, want ErrMalformed", typ, data, err)
			}
			return
		}
		sum := int64(0)
		for _, l := range a.All() {
			if l.Quantity < 1 || l.UnitPriceCents < 0 || l.ProductID == "" {
				t.Fatalf("%s %q: accepted line %+v", typ, data, l)
			}
			sum += l.TotalCents()
		}
		if a.OrderID != "abcdefgh2345" || len(a.All()) == 0 || a.TotalCents != sum {
			t.Fatalf("%s %q: accepted %+v", typ, data, a)
		}
		inv := a.Invoice(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
		issued, err := json.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		testenv.CheckAppendable(t, data, InvoiceStream(a.OrderID), event.New{ID: InvoiceEventID(a.OrderID), Type: event.InvoiceIssued, Data: issued})
		if _, err := ParseIssued(InvoiceStream(a.OrderID), issued); err != nil {
			t.Fatalf("%s %q: the invoice %s is refused when it comes back: %v", typ, data, issued, err)
		}
	})
}
