package order

import (
	"encoding/json"
	"testing"

	"github.com/msdemo/msdemo/internal/event"
)

func TestDecide(t *testing.T) {
	pending := func(steps ...Step) Order {
		o := Order{ID: "aaaaaaaaaaaa", Customer: "ann", Status: Pending, Version: 1}
		for _, s := range steps {
			reason := ""
			if s == StepStockRejected {
				reason = "out of stock"
			}
			o.Timeline = append(o.Timeline, TimelineEntry{Step: s, Reason: reason})
		}
		return o
	}
	decided := func(s Status) Order { o := pending(StepStockReserved); o.Status = s; return o }
	approve := Decision{Approve: true}
	reject := func(reason string) Decision { return Decision{Reject: true, Reason: reason} }
	tests := []struct {
		name   string
		order  Order
		step   Step
		reason string
		want   Decision
	}{
		{"placed, nothing yet", pending(), StepPlaced, "", Decision{}},
		{"stock first", pending(), StepStockReserved, "", Decision{}},
		{"credit first", pending(), StepCreditReserved, "", Decision{}},
		{"credit after stock", pending(StepStockReserved), StepCreditReserved, "", approve},
		{"stock after credit", pending(StepCreditReserved), StepStockReserved, "", approve},
		{"both recorded, redelivered", pending(StepStockReserved, StepCreditReserved), StepCreditReserved, "", approve},
		{"stock rejected", pending(StepCreditReserved), StepStockRejected, "out of stock", reject("out of stock")},
		{"credit rejected", pending(StepStockReserved), StepCreditRejected, "not enough credit", reject("not enough credit")},
		{"rejected without reason", pending(), StepCreditRejected, "", reject("credit rejected")},
		{"rejection recorded, other reserves", pending(StepStockRejected), StepCreditReserved, "", reject("out of stock")},
		{"timed out", pending(StepStockReserved), StepTimedOut, "", reject(ReasonTimedOut)},
		{"timed out with both in", pending(StepStockReserved, StepCreditReserved), StepTimedOut, "", approve},
		{"approved: late rejection", decided(Approved), StepCreditRejected, "x", Decision{}},
		{"rejected: late reservation", decided(Rejected), StepCreditReserved, "", Decision{}},
		{"rejected: timeout", decided(Rejected), StepTimedOut, "", Decision{}},
		{"release changes nothing", pending(StepStockReserved), StepStockReleased, "", Decision{}},
		{"invoice changes nothing", decided(Approved), StepInvoiced, "", Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.order, tt.step, tt.reason); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPlace(t *testing.T) {
	pid, qty := "abcdefghij", int64(3)
	events := Place("aaaaaaaaaaaa", "ann", PlaceOrder{ProductID: &pid, Quantity: &qty}, Price{Cents: 250, Known: true})
	if len(events) != 1 || events[0].Type != event.OrderPlaced {
		t.Fatalf("got %+v, want one order.placed", events)
	}
	var p Placed
	if err := json.Unmarshal(events[0].Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.UnitPriceCents != 250 || p.TotalCents != 750 || p.Quantity != qty || p.Customer != "ann" || p.ProductID != pid {
		t.Errorf("got %+v, want 3 of %s at 250, total 750, for ann", p, pid)
	}
}

func TestValidate(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		name string
		in   PlaceOrder
		want []string // fields with errors
	}{
		{"valid", PlaceOrder{s("abcdefghij"), n(1)}, nil},
		{"max", PlaceOrder{s("abcdefghij"), n(1000)}, nil},
		{"empty", PlaceOrder{}, []string{"product_id", "quantity"}},
		{"zero", PlaceOrder{s("abcdefghij"), n(0)}, []string{"quantity"}},
		{"too many", PlaceOrder{s("abcdefghij"), n(1001)}, []string{"quantity"}},
		{"negative", PlaceOrder{s("abcdefghij"), n(-1)}, []string{"quantity"}},
		{"bad product", PlaceOrder{s("../x"), n(1)}, []string{"product_id"}},
		{"empty product", PlaceOrder{s(""), n(1)}, []string{"product_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.Validate()
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want errors on %v", got, tt.want)
			}
			for _, f := range tt.want {
				if got[f] == "" {
					t.Errorf("got %v, want an error on %s", got, f)
				}
			}
		})
	}
}

func TestDecisionIDsAreDeterministic(t *testing.T) {
	o := Order{ID: "aaaaaaaaaaaa", Customer: "ann"}
	a1, a2 := decisionEvent(o, Decision{Approve: true}), decisionEvent(o, Decision{Approve: true})
	r := decisionEvent(o, Decision{Reject: true, Reason: "x"})
	if a1.ID != a2.ID {
		t.Errorf("approval ids %s and %s differ, want equal", a1.ID, a2.ID)
	}
	if a1.ID == r.ID {
		t.Errorf("approval and rejection have the same id %s", r.ID)
	}
	if other := decisionEvent(Order{ID: "bbbbbbbbbbbb"}, Decision{Approve: true}); other.ID == a1.ID {
		t.Errorf("two orders' approvals share id %s", a1.ID)
	}
}

func TestNewOrderID(t *testing.T) {
	for range 100 {
		if id := newOrderID(); !validOrderID(string(id)) {
			t.Fatalf("newOrderID() = %q, not a valid id", id)
		}
	}
}
