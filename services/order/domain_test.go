package order

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/msdemo/msdemo/internal/event"
)

func TestDecide(t *testing.T) {
	tea, mug := Line{ProductID: "tea", Name: "Green tea", Quantity: 1}, Line{ProductID: "mug", Name: "Mug", Quantity: 2}
	stock := func(id string) TimelineEntry { return TimelineEntry{Step: StepStockReserved, ProductID: id} }
	noStock := func(id string) TimelineEntry {
		return TimelineEntry{Step: StepStockRejected, ProductID: id, Reason: "out of stock"}
	}
	credit := TimelineEntry{Step: StepCreditReserved}
	step := func(s Step) TimelineEntry { return TimelineEntry{Step: s} }
	order := func(lines []Line, entries ...TimelineEntry) Order {
		return Order{ID: "aaaaaaaaaaaa", Customer: "ann", Status: Pending, Version: 1, Lines: lines, Timeline: entries}
	}
	one := func(entries ...TimelineEntry) Order { return order([]Line{tea}, entries...) }
	two := func(entries ...TimelineEntry) Order { return order([]Line{tea, mug}, entries...) }
	decided := func(s Status) Order { o := one(stock("tea")); o.Status = s; return o }
	approve := Decision{Approve: true}
	reject := func(reason string) Decision { return Decision{Reject: true, Reason: reason} }
	tests := []struct {
		name  string
		order Order
		now   TimelineEntry
		want  Decision
	}{
		{"placed, nothing yet", one(), step(StepPlaced), Decision{}},
		{"stock first", one(), stock("tea"), Decision{}},
		{"credit first", one(), credit, Decision{}},
		{"credit after stock", one(stock("tea")), credit, approve},
		{"stock after credit", one(credit), stock("tea"), approve},
		{"both recorded, redelivered", one(stock("tea"), credit), credit, approve},
		{"both recorded, decided by a worker", one(stock("tea"), credit), TimelineEntry{}, approve},
		{"stock rejected", one(credit), noStock("tea"), reject("out of stock")},
		{"credit rejected", one(stock("tea")), TimelineEntry{Step: StepCreditRejected, Reason: "not enough credit"}, reject("not enough credit")},
		{"rejected without reason", one(), step(StepCreditRejected), reject("credit rejected")},
		{"rejection recorded, other reserves", one(noStock("tea")), credit, reject("out of stock")},
		{"timed out", one(stock("tea")), step(StepTimedOut), reject(ReasonTimedOut)},
		{"timed out with both in", one(stock("tea"), credit), step(StepTimedOut), approve},
		{"approved: late rejection", decided(Approved), step(StepCreditRejected), Decision{}},
		{"rejected: late reservation", decided(Rejected), credit, Decision{}},
		{"rejected: timeout", decided(Rejected), step(StepTimedOut), Decision{}},
		{"release changes nothing", one(stock("tea")), TimelineEntry{Step: StepStockReleased, ProductID: "tea"}, Decision{}},
		{"invoice changes nothing", decided(Approved), step(StepInvoiced), Decision{}},
		{"two lines: one reserved is not enough", two(stock("tea"), credit), TimelineEntry{}, Decision{}},
		{"two lines: the second reserved", two(stock("tea"), credit), stock("mug"), approve},
		{"two lines: a reservation of another product counts for nothing", two(stock("tea"), credit), stock("cup"), Decision{}},
		{"two lines: the second rejected, named", two(stock("tea"), credit), noStock("mug"), reject("Mug (line 2): out of stock")},
		{"two lines: timed out with one reserved", two(stock("tea"), credit), step(StepTimedOut), reject(ReasonTimedOut)},
		{"no lines is never approved", order(nil, credit), step(StepTimedOut), reject(ReasonTimedOut)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.order, tt.now); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPlace(t *testing.T) {
	lines := []Line{{ProductID: "abcdefghij", Name: "Tea", Quantity: 3, UnitPriceCents: 250},
		{ProductID: "bcdefghijk", Name: "Mug", Quantity: 1, UnitPriceCents: 900}}
	events := Place("aaaaaaaaaaaa", "ann", lines)
	if len(events) != 1 || events[0].Type != event.OrderPlaced {
		t.Fatalf("got %+v, want one order.placed", events)
	}
	var p Placed
	if err := json.Unmarshal(events[0].Data, &p); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.All(), lines) || p.TotalCents != 1650 || p.Customer != "ann" {
		t.Errorf("got %+v, want the two lines, total 1650, for ann", p)
	}
	if again := Place("aaaaaaaaaaaa", "ann", lines); again[0].ID != events[0].ID {
		t.Errorf("placing order aaaaaaaaaaaa twice gave the event ids %s and %s, want one", events[0].ID, again[0].ID)
	}
}

// TestPlacedReadsOrdersOfOneProduct: an order.placed of before orders had lines is read as
// an order of one line.
func TestPlacedReadsOrdersOfOneProduct(t *testing.T) {
	var p Placed
	old := `{"order_id":"aaaaaaaaaaaa","customer":"ann","product_id":"abcdefghij","quantity":2,"unit_price_cents":250,"total_cents":500}`
	if err := json.Unmarshal([]byte(old), &p); err != nil {
		t.Fatal(err)
	}
	want := []Line{{ProductID: "abcdefghij", Quantity: 2, UnitPriceCents: 250}}
	if !reflect.DeepEqual(p.All(), want) {
		t.Errorf("lines of an old order.placed = %+v, want %+v", p.All(), want)
	}
}

func TestWanted(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int64) *int64 { return &v }
	line := func(id string, q int64) LineInput { return LineInput{ProductID: s(id), Quantity: n(q)} }
	many := make([]LineInput, MaxLines+1)
	for i := range many {
		many[i] = line(fmt.Sprintf("p%d", i), 1)
	}
	tests := []struct {
		name   string
		in     PlaceOrder
		want   []Wanted
		errors []string // fields with errors
	}{
		{"one product", PlaceOrder{ProductID: s("abcdefghij"), Quantity: n(1)}, []Wanted{{ProductID: "abcdefghij", Quantity: 1}}, nil},
		{"max", PlaceOrder{ProductID: s("abcdefghij"), Quantity: n(1000)}, []Wanted{{ProductID: "abcdefghij", Quantity: 1000}}, nil},
		{"empty", PlaceOrder{}, nil, []string{"lines"}},
		{"zero", PlaceOrder{ProductID: s("abcdefghij"), Quantity: n(0)}, nil, []string{"quantity"}},
		{"too many", PlaceOrder{ProductID: s("abcdefghij"), Quantity: n(1001)}, nil, []string{"quantity"}},
		{"negative", PlaceOrder{ProductID: s("abcdefghij"), Quantity: n(-1)}, nil, []string{"quantity"}},
		{"bad product", PlaceOrder{ProductID: s("../x"), Quantity: n(1)}, nil, []string{"product_id"}},
		{"no quantity", PlaceOrder{ProductID: s("abcdefghij")}, nil, []string{"quantity"}},
		{"lines", PlaceOrder{Lines: []LineInput{line("tea", 2), line("mug", 1)}}, []Wanted{{ProductID: "tea", Quantity: 2}, {ProductID: "mug", Quantity: 1}}, nil},
		{"lines of one product merge", PlaceOrder{Lines: []LineInput{line("tea", 2), line("mug", 1), line("tea", 3)}},
			[]Wanted{{ProductID: "tea", Quantity: 5}, {ProductID: "mug", Quantity: 1}}, nil},
		{"merged over the max", PlaceOrder{Lines: []LineInput{line("tea", 600), line("tea", 600)}}, nil, []string{"lines.1.quantity"}},
		{"a bad line", PlaceOrder{Lines: []LineInput{line("tea", 2), line("M!", 0)}}, nil,
			[]string{"lines.1.product_id", "lines.1.quantity"}},
		{"lines and a product", PlaceOrder{Lines: []LineInput{line("tea", 2)}, ProductID: s("tea")}, nil, []string{"lines"}},
		{"too many lines", PlaceOrder{Lines: many}, nil, []string{"lines"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := tt.in.Wanted()
			if len(errs) != len(tt.errors) {
				t.Fatalf("got errors %v, want errors on %v", errs, tt.errors)
			}
			for _, f := range tt.errors {
				if errs[f] == "" {
					t.Errorf("got %v, want an error on %s", errs, f)
				}
			}
			for i := range got {
				got[i].at = 0 // TestWantedNamesTheLinesAsSent checks it
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got lines %+v, want %+v", got, tt.want)
			}
		})
	}
}

// An error about a line names it by its place in the input, also after lines of one
// product were merged.
func TestWantedNamesTheLinesAsSent(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int64) *int64 { return &v }
	wanted, errs := PlaceOrder{Lines: []LineInput{{s("tea"), n(1)}, {s("tea"), n(2)}, {s("mug"), n(1)}}}.Wanted()
	if len(errs) != 0 || len(wanted) != 2 || wanted[0].at != 0 || wanted[1].at != 2 {
		t.Errorf("got %+v %v, want tea at line 0 and mug at line 2", wanted, errs)
	}
}

func TestCartOrderID(t *testing.T) {
	id := CartOrderID("ann", 7)
	if !validOrderID(string(id)) {
		t.Errorf("CartOrderID = %q, not an order id", id)
	}
	if CartOrderID("ann", 7) != id || CartOrderID("ann", 8) == id || CartOrderID("bob", 7) == id {
		t.Error("CartOrderID is not one id per customer and version")
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
