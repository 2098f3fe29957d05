package customer

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/service"
)

func TestRegistrationValidate(t *testing.T) {
	valid := Registration{Username: "ann.lee_2", FullName: "Ann Lee", Email: "ann@example.com", Password: "correct horse"}
	tests := []struct {
		name       string
		change     func(r *Registration)
		wantFields []string
	}{
		{"valid", func(*Registration) {}, nil},
		{"all missing", func(r *Registration) { *r = Registration{} }, []string{"email", "full_name", "password", "username"}},
		{"username too short", func(r *Registration) { r.Username = "an" }, []string{"username"}},
		{"username 32", func(r *Registration) { r.Username = "a" + strings.Repeat("b", 31) }, nil},
		{"username 33", func(r *Registration) { r.Username = "a" + strings.Repeat("b", 32) }, []string{"username"}},
		{"username upper case", func(r *Registration) { r.Username = "Ann" }, []string{"username"}},
		{"username starts with digit", func(r *Registration) { r.Username = "1ann" }, []string{"username"}},
		{"username with slash", func(r *Registration) { r.Username = "ann/../x" }, []string{"username"}},
		{"username with space", func(r *Registration) { r.Username = "ann lee" }, []string{"username"}},
		{"username unicode", func(r *Registration) { r.Username = "annë" }, []string{"username"}},
		{"name blank", func(r *Registration) { r.FullName = "   " }, []string{"full_name"}},
		{"name 100 runes", func(r *Registration) { r.FullName = strings.Repeat("é", 100) }, nil},
		{"name 101 runes", func(r *Registration) { r.FullName = strings.Repeat("é", 101) }, []string{"full_name"}},
		{"name 10 KB", func(r *Registration) { r.FullName = strings.Repeat("x", 10<<10) }, []string{"full_name"}},
		{"name control char", func(r *Registration) { r.FullName = "Ann\x00Lee" }, []string{"full_name"}},
		{"name newline", func(r *Registration) { r.FullName = "Ann\nLee" }, []string{"full_name"}},
		{"name bad UTF-8", func(r *Registration) { r.FullName = "Ann \xff" }, []string{"full_name"}},
		{"email no at", func(r *Registration) { r.Email = "ann.example.com" }, []string{"email"}},
		{"email two ats", func(r *Registration) { r.Email = "ann@b@example.com" }, []string{"email"}},
		{"email no dot in domain", func(r *Registration) { r.Email = "ann@localhost" }, []string{"email"}},
		{"email empty label", func(r *Registration) { r.Email = "ann@example..com" }, []string{"email"}},
		{"email space", func(r *Registration) { r.Email = "an n@example.com" }, []string{"email"}},
		{"email plus", func(r *Registration) { r.Email = "ann+shop@mail.example.com" }, nil},
		{"email 255 bytes", func(r *Registration) { r.Email = "a@" + strings.Repeat("b", 249) + ".com" }, []string{"email"}},
		{"password 7 bytes", func(r *Registration) { r.Password = "1234567" }, []string{"password"}},
		{"password 72 bytes", func(r *Registration) { r.Password = strings.Repeat("p", 72) }, nil},
		{"password 73 bytes", func(r *Registration) { r.Password = strings.Repeat("p", 73) }, []string{"password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid
			tt.change(&r)
			if got := fieldNames(r.Validate()); !slices.Equal(got, tt.wantFields) {
				t.Errorf("got invalid fields %v, want %v", got, tt.wantFields)
			}
		})
	}
}

func fieldNames(err error) []string {
	var fields service.FieldErrors
	if !errors.As(err, &fields) {
		return nil
	}
	return slices.Sorted(maps.Keys(fields))
}

func TestRegisterStoresOnlyAHash(t *testing.T) {
	events, err := Register(Registration{Username: "ann", FullName: " Ann Lee ", Email: "ann@example.com",
		Password: "correct horse"}, auth.Customer, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Type != event.CustomerRegistered {
		t.Fatalf("got %d events %v, want one %s", len(events), events, event.CustomerRegistered)
	}
	if strings.Contains(string(events[0].Data), "correct horse") {
		t.Fatalf("event data %s holds the password", events[0].Data)
	}
	var d Registered
	if err := json.Unmarshal(events[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if !auth.CheckPassword(d.PasswordHash, "correct horse") {
		t.Errorf("password_hash %q does not check against the password", d.PasswordHash)
	}
	want := Registered{Username: "ann", FullName: "Ann Lee", Email: "ann@example.com", PasswordHash: d.PasswordHash,
		Role: auth.Customer, CreditCents: 500}
	if d != want {
		t.Errorf("got data %+v, want %+v", d, want)
	}
}

func stored(version int64, typ string, data any) event.Stored {
	raw, _ := json.Marshal(data)
	return event.Stored{Stream: "customer-ann", Version: version, Type: typ, Data: raw}
}

func TestApply(t *testing.T) {
	registered := stored(1, event.CustomerRegistered, Registered{Username: "ann", FullName: "Ann", Email: "a@b.co",
		PasswordHash: "h1", Role: auth.Customer, CreditCents: 1000})
	ann := Customer{Username: "ann", FullName: "Ann", Email: "a@b.co", PasswordHash: "h1", Role: auth.Customer,
		CreditCents: 1000, Version: 1, PasswordVersion: 1}
	tests := []struct {
		name        string
		from        Customer
		e           event.Stored
		want        Customer
		wantApplied bool
		wantErr     error
	}{
		{"registered", Customer{}, registered, ann, true, nil},
		{"registered again is skipped", ann, registered, ann, false, nil},
		{"profile updated", ann, stored(2, event.CustomerProfileUpdated, ProfileUpdated{FullName: "Ann Lee", Email: "x@y.co"}),
			Customer{"ann", "Ann Lee", "x@y.co", "h1", auth.Customer, 1000, 2, 1}, true, nil},
		{"password changed", ann, stored(2, event.CustomerPasswordChanged, PasswordChanged{PasswordHash: "h2"}),
			Customer{"ann", "Ann", "a@b.co", "h2", auth.Customer, 1000, 2, 2}, true, nil},
		{"credit set", ann, stored(2, event.CustomerCreditSet, CreditSet{CreditCents: 7}),
			Customer{"ann", "Ann", "a@b.co", "h1", auth.Customer, 7, 2, 1}, true, nil},
		{"credit reserved", ann, stored(2, event.CustomerCreditReserved, CreditReservation{OrderID: "o1", AmountCents: 300}),
			Customer{"ann", "Ann", "a@b.co", "h1", auth.Customer, 700, 2, 1}, true, nil},
		{"credit released", ann, stored(2, event.CustomerCreditReleased, CreditReservation{OrderID: "o1", AmountCents: 300}),
			Customer{"ann", "Ann", "a@b.co", "h1", auth.Customer, 1300, 2, 1}, true, nil},
		{"credit rejected: version only", ann, stored(2, event.CustomerCreditRejected, CreditReservation{OrderID: "o1", AmountCents: 5000, Reason: "too little"}),
			Customer{"ann", "Ann", "a@b.co", "h1", auth.Customer, 1000, 2, 1}, true, nil},
		{"unknown type: version only", ann, stored(2, "customer.frobbed", map[string]int{"x": 1}),
			Customer{"ann", "Ann", "a@b.co", "h1", auth.Customer, 1000, 2, 1}, true, nil},
		{"gap", ann, stored(3, event.CustomerCreditSet, CreditSet{CreditCents: 7}), ann, false, ErrVersionGap},
		{"bad data", ann, stored(2, event.CustomerCreditSet, "not an object"), ann, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, applied, err := tt.from.Apply(tt.e)
			if tt.name == "bad data" {
				if err == nil {
					t.Fatal("got no error for data that is not an object, want one")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want || applied != tt.wantApplied {
				t.Errorf("got %+v applied=%v, want %+v applied=%v", got, applied, tt.want, tt.wantApplied)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestUpdateProfile(t *testing.T) {
	hash, err := auth.HashPassword("old secret")
	if err != nil {
		t.Fatal(err)
	}
	ann := Customer{Username: "ann", FullName: "Ann", Email: "a@b.co", PasswordHash: hash, Role: auth.Customer, Version: 4}
	tests := []struct {
		name       string
		ch         ProfileChange
		wantTypes  []string
		wantFields []string
		wantErr    bool // a conflict
	}{
		{"same: nothing", ProfileChange{FullName: "Ann", Email: "a@b.co"}, nil, nil, false},
		{"same, right version", ProfileChange{FullName: "Ann", Email: "a@b.co", ExpectedVersion: ptr[int64](4)}, nil, nil, false},
		{"same, stale version", ProfileChange{FullName: "Ann", Email: "a@b.co", ExpectedVersion: ptr[int64](3)}, nil, nil, true},
		{"new name", ProfileChange{FullName: "Ann Lee", Email: "a@b.co"}, []string{event.CustomerProfileUpdated}, nil, false},
		{"password only", ProfileChange{FullName: "Ann", Email: "a@b.co", Password: ptr("new secret"), CurrentPassword: "old secret"}, []string{event.CustomerPasswordChanged}, nil, false},
		{"both", ProfileChange{FullName: "Ann", Email: "c@d.co", Password: ptr("new secret"), CurrentPassword: "old secret"}, []string{event.CustomerProfileUpdated, event.CustomerPasswordChanged}, nil, false},
		{"password without the current one", ProfileChange{FullName: "Ann", Email: "a@b.co", Password: ptr("new secret")}, nil, []string{"current_password"}, false},
		{"a manager's reset", ProfileChange{FullName: "Ann", Email: "a@b.co", Password: ptr("new secret"), SkipCurrentPassword: true}, []string{event.CustomerPasswordChanged}, nil, false},
		{"empty password", ProfileChange{FullName: "Ann", Email: "a@b.co", Password: ptr(""), CurrentPassword: "old secret"}, nil, []string{"password"}, false},
		{"missing fields", ProfileChange{}, nil, []string{"email", "full_name"}, false},
		{"version 0", ProfileChange{FullName: "Ann", Email: "a@b.co", ExpectedVersion: ptr[int64](0)}, nil, []string{"expected_version"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := UpdateProfile(ann, tt.ch)
			checkDecision(t, events, err, tt.wantTypes, tt.wantFields, tt.wantErr)
		})
	}
	// A wrong current password changes nothing, even with a new name.
	events, err := UpdateProfile(ann, ProfileChange{FullName: "Ann Lee", Email: "a@b.co", Password: ptr("new secret"), CurrentPassword: "wrong secret"})
	if !errors.Is(err, ErrWrongCurrentPassword) || events != nil {
		t.Errorf("wrong current password: got %v, %v, want no events and ErrWrongCurrentPassword", events, err)
	}
}

// PasswordVersion follows the events that set the password, and only them.
func TestPasswordVersion(t *testing.T) {
	c := Customer{}
	steps := []struct {
		typ  string
		data string
		want int64
	}{
		{event.CustomerRegistered, `{"username":"ann","password_hash":"h1"}`, 1},
		{event.CustomerProfileUpdated, `{"full_name":"Ann","email":"a@b.co"}`, 1},
		{event.CustomerPasswordChanged, `{"password_hash":"h2"}`, 3},
		{event.CustomerCreditSet, `{"credit_cents":5}`, 3},
	}
	for i, s := range steps {
		next, _, err := c.Apply(event.Stored{Stream: Stream("ann"), Version: int64(i + 1), Type: s.typ, Data: []byte(s.data)})
		if err != nil {
			t.Fatal(err)
		}
		if c = next; c.PasswordVersion != s.want {
			t.Errorf("after %s: got password version %d, want %d", s.typ, c.PasswordVersion, s.want)
		}
	}
}

func TestSetCredit(t *testing.T) {
	ann := Customer{Username: "ann", CreditCents: 100, Version: 2}
	tests := []struct {
		name       string
		ch         CreditChange
		wantTypes  []string
		wantFields []string
		wantErr    bool
	}{
		{"set", CreditChange{ptr[int64](5), ptr[int64](2)}, []string{event.CustomerCreditSet}, nil, false},
		{"zero", CreditChange{ptr[int64](0), ptr[int64](2)}, []string{event.CustomerCreditSet}, nil, false},
		{"max", CreditChange{ptr[int64](MaxCreditCents), ptr[int64](2)}, []string{event.CustomerCreditSet}, nil, false},
		{"same", CreditChange{ptr[int64](100), ptr[int64](2)}, nil, nil, false},
		{"same, stale", CreditChange{ptr[int64](100), ptr[int64](1)}, nil, nil, true},
		{"negative", CreditChange{ptr[int64](-1), ptr[int64](2)}, nil, []string{"credit_cents"}, false},
		{"absurd", CreditChange{ptr[int64](MaxCreditCents + 1), ptr[int64](2)}, nil, []string{"credit_cents"}, false},
		{"missing", CreditChange{}, nil, []string{"credit_cents", "expected_version"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := SetCredit(ann, tt.ch)
			checkDecision(t, events, err, tt.wantTypes, tt.wantFields, tt.wantErr)
		})
	}
}

func checkDecision(t *testing.T, events []event.New, err error, wantTypes, wantFields []string, wantConflict bool) {
	t.Helper()
	var conflict *service.ConflictError
	switch {
	case wantConflict:
		if !errors.As(err, &conflict) {
			t.Fatalf("got error %v, want a conflict", err)
		}
		return
	case wantFields != nil:
		if got := fieldNames(err); !slices.Equal(got, wantFields) {
			t.Fatalf("got invalid fields %v (error %v), want %v", got, err, wantFields)
		}
		return
	case err != nil:
		t.Fatalf("got error %v, want none", err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("got events %v, want %v", types, wantTypes)
	}
}

func TestCustomerWith(t *testing.T) {
	events, err := Register(Registration{Username: "bob", FullName: "Bob", Email: "b@c.de", Password: "12345678"}, auth.Manager, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Customer{}.With(events, 1)
	if err != nil || c.Username != "bob" || c.Role != auth.Manager || c.Version != 1 {
		t.Fatalf("got %+v, %v; want bob, manager, version 1", c, err)
	}
}

func TestReserveCredit(t *testing.T) {
	ann := Customer{Username: "ann", CreditCents: 1000, Version: 3}
	order := OrderPlaced{OrderID: "o1", Customer: "ann", TotalCents: 600}
	tests := []struct {
		name     string
		c        Customer
		r        Reservation
		o        OrderPlaced
		wantType string // "" = no decision
	}{
		{"enough credit", ann, Reservation{}, order, event.CustomerCreditReserved},
		{"exactly the credit", ann, Reservation{}, OrderPlaced{OrderID: "o1", TotalCents: 1000}, event.CustomerCreditReserved},
		{"free order", ann, Reservation{}, OrderPlaced{OrderID: "o1", TotalCents: 0}, event.CustomerCreditReserved},
		{"one cent short", ann, Reservation{}, OrderPlaced{OrderID: "o1", TotalCents: 1001}, event.CustomerCreditRejected},
		{"no credit", Customer{Username: "ann", Version: 1}, Reservation{}, order, event.CustomerCreditRejected},
		{"negative total", ann, Reservation{}, OrderPlaced{OrderID: "o1", TotalCents: -5}, event.CustomerCreditRejected},
		{"reserved before", ann, Reservation{OrderID: "o1", AmountCents: 600, State: Reserved}, order, ""},
		{"rejected before", ann, Reservation{OrderID: "o1", State: Rejected}, order, ""},
		{"released before", ann, Reservation{OrderID: "o1", AmountCents: 600, State: Released}, order, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := ReserveCredit(tt.c, tt.r, tt.o)
			if !ok {
				if tt.wantType != "" {
					t.Fatalf("got no decision, want %s", tt.wantType)
				}
				return
			}
			if e.Type != tt.wantType {
				t.Fatalf("got %s, want %s", e.Type, tt.wantType)
			}
			var d CreditReservation
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			want := CreditReservation{OrderID: tt.o.OrderID, AmountCents: tt.o.TotalCents}
			if e.Type == event.CustomerCreditRejected {
				want = CreditReservation{OrderID: tt.o.OrderID, Reason: ReasonNotEnoughCredit}
			}
			if d != want {
				t.Errorf("got data %+v, want %+v", d, want)
			}
			again, _ := ReserveCredit(tt.c, tt.r, tt.o)
			if again.ID != e.ID {
				t.Errorf("got id %s deciding again, want the same id %s", again.ID, e.ID)
			}
		})
	}
}

func TestReleaseCredit(t *testing.T) {
	tests := []struct {
		name string
		r    Reservation
		want bool
	}{
		{"held", Reservation{OrderID: "o1", AmountCents: 600, State: Reserved}, true},
		{"never answered", Reservation{}, false},
		{"rejected", Reservation{OrderID: "o1", State: Rejected}, false},
		{"released before", Reservation{OrderID: "o1", AmountCents: 600, State: Released}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := ReleaseCredit(tt.r, "o1")
			if ok != tt.want {
				t.Fatalf("got decision %v, want %v", ok, tt.want)
			}
			if !ok {
				return
			}
			var d CreditReservation
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if e.Type != event.CustomerCreditReleased || d.AmountCents != tt.r.AmountCents || d.OrderID != "o1" {
				t.Errorf("got %s %+v, want %s of %d for o1", e.Type, d, event.CustomerCreditReleased, tt.r.AmountCents)
			}
		})
	}
}

// The ids of the saga's events depend on the order and the kind of answer only.
func TestReservationIDs(t *testing.T) {
	c := Customer{Username: "ann", CreditCents: 1000, Version: 1}
	reserve1, _ := ReserveCredit(c, Reservation{}, OrderPlaced{OrderID: "o1", TotalCents: 10})
	reserve1b, _ := ReserveCredit(Customer{Username: "ann", CreditCents: 50, Version: 7}, Reservation{}, OrderPlaced{OrderID: "o1", TotalCents: 20})
	reserve2, _ := ReserveCredit(c, Reservation{}, OrderPlaced{OrderID: "o2", TotalCents: 10})
	reject1, _ := ReserveCredit(c, Reservation{}, OrderPlaced{OrderID: "o1", TotalCents: 5000})
	release1, _ := ReleaseCredit(Reservation{OrderID: "o1", AmountCents: 10, State: Reserved}, "o1")
	if reserve1.ID != reserve1b.ID {
		t.Errorf("got ids %s and %s for reservations of o1, want one", reserve1.ID, reserve1b.ID)
	}
	ids := map[string]bool{reserve1.ID: true, reserve2.ID: true, reject1.ID: true, release1.ID: true}
	if len(ids) != 4 {
		t.Errorf("got %d distinct ids for 4 different answers, want 4", len(ids))
	}
}

// Applying the saga's events moves the credit, and ReservationOf reads the record.
func TestApplyReservations(t *testing.T) {
	c := Customer{Username: "ann", CreditCents: 1000, Version: 1}
	steps := []struct {
		typ        string
		data       string
		wantCredit int64
		wantState  ReservationState
	}{
		{event.CustomerCreditReserved, `{"order_id": "o1", "amount_cents": 600}`, 400, Reserved},
		{event.CustomerCreditRejected, `{"order_id": "o2", "reason": "not enough credit"}`, 400, Rejected},
		{event.CustomerCreditReleased, `{"order_id": "o1", "amount_cents": 600}`, 1000, Released},
	}
	for i, s := range steps {
		e := event.Stored{Stream: "customer-ann", Version: int64(i + 2), Type: s.typ, Data: json.RawMessage(s.data)}
		next, applied, err := c.Apply(e)
		if err != nil || !applied || next.CreditCents != s.wantCredit {
			t.Fatalf("%s: got credit %d (applied %v, %v), want %d", s.typ, next.CreditCents, applied, err, s.wantCredit)
		}
		r, ok, err := ReservationOf(e.Type, e.Data)
		if err != nil || !ok || r.State != s.wantState {
			t.Fatalf("%s: got reservation %+v (%v, %v), want state %s", s.typ, r, ok, err, s.wantState)
		}
		c = next
	}
	if _, ok, _ := ReservationOf(event.CustomerCreditSet, json.RawMessage(`{"credit_cents": 5}`)); ok {
		t.Errorf("customer.credit-set: got a reservation, want none")
	}
}
