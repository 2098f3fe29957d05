package customer

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
)

// FuzzEventData applies an event of each type the service reads, with any data, to
// customer ann at version 1 with 1,000.00 of credit, as the read model does (change.then),
// and for the order events takes the saga's decision as the participant does. Malformed
// data is a permanent failure (dead-lettered, never retried) that changes nothing; a
// decision is an event the store accepts, and a reservation takes no more than the
// order's total, never a negative amount, and only credit the customer has.
// The seed corpus is in testdata/fuzz/FuzzEventData.
func FuzzEventData(f *testing.F) {
	testenv.AddEventSeeds(f, subscribedEventTypes, subscribedTypes)
	p := &participant{logger: slog.New(slog.DiscardHandler)}
	ann := Customer{Username: "ann", FullName: "Ann", Email: "ann@example.com", Role: "customer", CreditCents: 100000, Version: 1}
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		typ := testenv.EventType(subscribedEventTypes, n)
		e := event.Stored{ID: "e2", Stream: Stream(ann.Username), Version: 2, Position: 9, Type: typ, Data: data}
		switch typ {
		case event.OrderPlaced:
			e.Stream = "order-abcdefgh2345"
			var o OrderPlaced
			if !p.decode(e, &o, &o.OrderID, &o.Customer) {
				return
			}
			d, ok := ReserveCredit(ann, Reservation{}, o)
			checkSagaDecision(t, data, o.Customer, d, ok)
			if d.Type == event.CustomerCreditReserved {
				var r CreditReservation
				_ = json.Unmarshal(d.Data, &r)
				if r.AmountCents != o.TotalCents || r.AmountCents < 0 || r.AmountCents > ann.CreditCents {
					t.Fatalf("order.placed %q: reserved %d of %d credit", data, r.AmountCents, ann.CreditCents)
				}
			}
		case event.OrderRejected:
			e.Stream = "order-abcdefgh2345"
			var o OrderRejected
			if !p.decode(e, &o, &o.OrderID, &o.Customer) {
				return
			}
			d, ok := ReleaseCredit(Reservation{OrderID: o.OrderID, AmountCents: 3600, State: Reserved}, o.OrderID)
			checkSagaDecision(t, data, o.Customer, d, ok)
		default:
			start := change{username: ann.Username, customer: ann}
			next, err := start.then(e)
			testenv.CheckDeadLettered(t, typ, data, err)
			if err != nil && (next.applied || next.customer != ann || len(next.reservations) > 0) {
				t.Fatalf("%s %q: refused (%v), but the change is %+v", typ, data, err, next)
			}
		}
	})
}

// checkSagaDecision fails t unless the participant decided (ok) an event d that the store
// accepts on the stream of customer.
func checkSagaDecision(t *testing.T, data []byte, customer string, d event.New, ok bool) {
	t.Helper()
	if !ok {
		t.Fatalf("%q: no decision about a new order", data)
	}
	testenv.CheckAppendable(t, data, Stream(customer), d)
}

// subscribedEventTypes are the types of subscribedTypes, one by one.
var subscribedEventTypes = []string{event.CustomerRegistered, event.CustomerProfileUpdated, event.CustomerPasswordChanged,
	event.CustomerCreditSet, event.CustomerCreditReserved, event.CustomerCreditRejected, event.CustomerCreditReleased,
	event.OrderPlaced, event.OrderRejected}
