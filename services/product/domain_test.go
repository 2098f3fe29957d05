package product

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/service"
)

func ptr[T any](v T) *T { return &v }

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if !validID(id) {
			t.Fatalf("newID() = %q, want 10 characters of a-z2-7", id)
		}
		if seen[id] {
			t.Fatalf("newID() returned %q twice in 1000 calls", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "abcdefghi", "abcdefghij1", "ABCDEFGHIJ", "abcdefgh18", "../abcdefg", "abcdefghi\x00"} {
		if validID(bad) {
			t.Errorf("validID(%q) = true, want false", bad)
		}
	}
}

func TestValidFields(t *testing.T) {
	valid := func() ProductInput {
		return ProductInput{Name: ptr("  Chai "), Description: ptr("Tea\nfrom India"), Supplier: ptr("Exotic Liquids"),
			CategoryID: ptr("abcdefghij"), PriceCents: ptr(int64(1800)), UnitsInStock: ptr(int64(39))}
	}
	tests := []struct {
		name   string
		change func(*ProductInput)
		want   service.FieldErrors // nil: valid
	}{
		{"valid", func(*ProductInput) {}, nil},
		{"optional text left out", func(in *ProductInput) { in.Description, in.Supplier = nil, nil }, nil},
		{"zero stock", func(in *ProductInput) { in.UnitsInStock = ptr(int64(0)) }, nil},
		{"largest price", func(in *ProductInput) { in.PriceCents = ptr(int64(100_000_000)) }, nil},
		{"100 characters", func(in *ProductInput) { in.Name = ptr(strings.Repeat("ü", 100)) }, nil},
		{"everything missing", func(in *ProductInput) { *in = ProductInput{} }, service.FieldErrors{
			"name": "required", "category_id": "required", "price_cents": "required", "units_in_stock": "required"}},
		{"blank name", func(in *ProductInput) { in.Name = ptr("   ") }, service.FieldErrors{"name": "must not be empty"}},
		{"101 characters", func(in *ProductInput) { in.Name = ptr(strings.Repeat("ü", 101)) },
			service.FieldErrors{"name": "must be at most 100 characters"}},
		{"control character in name", func(in *ProductInput) { in.Name = ptr("a\x00b") },
			service.FieldErrors{"name": "must not contain control characters"}},
		{"newline in supplier", func(in *ProductInput) { in.Supplier = ptr("a\nb") },
			service.FieldErrors{"supplier": "must not contain control characters"}},
		{"long description", func(in *ProductInput) { in.Description = ptr(strings.Repeat("x", 2001)) },
			service.FieldErrors{"description": "must be at most 2000 characters"}},
		{"free", func(in *ProductInput) { in.PriceCents = ptr(int64(0)) },
			service.FieldErrors{"price_cents": "must be a whole number from 1 to 100000000"}},
		{"absurd price", func(in *ProductInput) { in.PriceCents = ptr(int64(100_000_001)) },
			service.FieldErrors{"price_cents": "must be a whole number from 1 to 100000000"}},
		{"negative stock", func(in *ProductInput) { in.UnitsInStock = ptr(int64(-1)) },
			service.FieldErrors{"units_in_stock": "must be a whole number from 0 to 1000000"}},
		{"category id of another shape", func(in *ProductInput) { in.CategoryID = ptr("1") },
			service.FieldErrors{"category_id": "unknown category"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.change(&in)
			got, errs := in.ValidFields()
			if !maps.Equal(errs, tt.want) {
				t.Fatalf("got errors %v, want %v", errs, tt.want)
			}
			if errs == nil && (got.Name != strings.TrimSpace(*in.Name) || got.CategoryID != CategoryID(*in.CategoryID)) {
				t.Errorf("got fields %+v from %+v", got, in)
			}
		})
	}
}

func TestValidExpectedVersion(t *testing.T) {
	for _, tt := range []struct {
		in     *int64
		wantOK bool
	}{{nil, false}, {ptr(int64(0)), false}, {ptr(int64(-3)), false}, {ptr(int64(1)), true}, {ptr(int64(77)), true}} {
		_, errs := ProductUpdate{ExpectedVersion: tt.in}.ValidExpectedVersion()
		if (errs == nil) != tt.wantOK {
			t.Errorf("expected_version %v: got errors %v, want ok=%v", tt.in, errs, tt.wantOK)
		}
	}
}

func TestCategoryRules(t *testing.T) {
	cats := []Category{{ID: "aaaaaaaaaa", Name: "Beverages"}, {ID: "bbbbbbbbbb", Name: "Condiments"}}
	tests := []struct {
		name     string
		input    string
		self     CategoryID
		conflict bool
	}{
		{"new name", "Seafood", "", false},
		{"same name", "Beverages", "", true},
		{"other case", "bEVERAGES", "", true},
		{"its own name", "BEVERAGES", "aaaaaaaaaa", false},
		{"another's name", "condiments", "aaaaaaaaaa", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCategoryName(cats, tt.input, tt.self)
			var c *service.ConflictMessageError
			if got := errors.As(err, &c); got != tt.conflict {
				t.Errorf("got conflict %v (%v), want %v", got, err, tt.conflict)
			}
		})
	}
	if err := CheckCategoryDeletable(0); err != nil {
		t.Errorf("empty category: got %v, want deletable", err)
	}
	var c *service.ConflictMessageError
	if err := CheckCategoryDeletable(2); !errors.As(err, &c) {
		t.Errorf("category with 2 products: got %v, want a conflict", err)
	}
	var v *service.ConflictError
	if err := CheckExpectedVersion("product-x", 3, 4); !errors.As(err, &v) || v.Current != 4 {
		t.Errorf("stale version: got %v, want a conflict at version 4", err)
	}
	if err := CheckExpectedVersion("product-x", 4, 4); err != nil {
		t.Errorf("current version: got %v, want nil", err)
	}
	if _, errs := (CategoryInput{Name: ptr(strings.Repeat("n", 10_000))}).ValidCategoryName(); errs["name"] == "" {
		t.Errorf("10 000 character name: got no error")
	}
}

func TestReserveStock(t *testing.T) {
	tea := Stock{PriceCents: 1250, UnitsInStock: 5, Version: 3}
	order := event.OrderLine{ProductID: "tea", Quantity: 3, UnitPriceCents: 1250}
	tests := []struct {
		name       string
		s          Stock
		r          Reservation
		o          event.OrderLine
		wantType   string // "" = no decision
		wantReason string
	}{
		{"enough units", tea, Reservation{}, order, event.ProductStockReserved, ""},
		{"exactly the units", tea, Reservation{}, event.OrderLine{ProductID: "tea", Quantity: 5, UnitPriceCents: 1250}, event.ProductStockReserved, ""},
		{"one unit short", tea, Reservation{}, event.OrderLine{ProductID: "tea", Quantity: 6, UnitPriceCents: 1250}, event.ProductStockRejected, ReasonOutOfStock},
		{"none left", Stock{PriceCents: 1250, Version: 9}, Reservation{}, order, event.ProductStockRejected, ReasonOutOfStock},
		{"zero quantity", tea, Reservation{}, event.OrderLine{ProductID: "tea", Quantity: 0, UnitPriceCents: 1250}, event.ProductStockRejected, ReasonOutOfStock},
		{"price went up", Stock{PriceCents: 1300, UnitsInStock: 5}, Reservation{}, order, event.ProductStockRejected, ReasonPriceChanged},
		{"price went down", Stock{PriceCents: 1000, UnitsInStock: 5}, Reservation{}, order, event.ProductStockRejected, ReasonPriceChanged},
		{"deleted", Stock{PriceCents: 1250, UnitsInStock: 5, Deleted: true}, Reservation{}, order, event.ProductStockRejected, ReasonDeleted},
		{"deleted and out of stock", Stock{PriceCents: 1, Deleted: true}, Reservation{}, order, event.ProductStockRejected, ReasonDeleted},
		{"reserved before", tea, Reservation{OrderID: "o1", Quantity: 3, State: Reserved}, order, "", ""},
		{"rejected before", tea, Reservation{OrderID: "o1", State: Rejected}, order, "", ""},
		{"released before", tea, Reservation{OrderID: "o1", Quantity: 3, State: Released}, order, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.ProductID = "tea"
			e, ok := ReserveStock(tt.s, tt.r, "o1", tt.o)
			if !ok {
				if tt.wantType != "" {
					t.Fatalf("got no decision, want %s", tt.wantType)
				}
				return
			}
			if e.Type != tt.wantType {
				t.Fatalf("got %s, want %s", e.Type, tt.wantType)
			}
			var d StockData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			want := StockData{OrderID: "o1", Quantity: tt.o.Quantity}
			if e.Type == event.ProductStockRejected {
				want = StockData{OrderID: "o1", Reason: tt.wantReason}
			}
			if d != want {
				t.Errorf("got data %+v, want %+v", d, want)
			}
			if again, _ := ReserveStock(tt.s, tt.r, "o1", tt.o); again.ID != e.ID {
				t.Errorf("got id %s deciding again, want the same id %s", again.ID, e.ID)
			}
			other := tt.r
			other.ProductID = "mug"
			if line2, _ := ReserveStock(tt.s, other, "o1", tt.o); line2.ID == e.ID {
				t.Errorf("two lines of one order got the same id %s", e.ID)
			}
		})
	}
}

func TestReleaseStock(t *testing.T) {
	tests := []struct {
		name string
		r    Reservation
		want bool
	}{
		{"held", Reservation{OrderID: "o1", Quantity: 3, State: Reserved}, true},
		{"never answered", Reservation{OrderID: "o1"}, false},
		{"rejected", Reservation{OrderID: "o1", State: Rejected}, false},
		{"released before", Reservation{OrderID: "o1", Quantity: 3, State: Released}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := ReleaseStock(tt.r)
			if ok != tt.want {
				t.Fatalf("got decision %v, want %v", ok, tt.want)
			}
			if !ok {
				return
			}
			var d StockData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if e.Type != event.ProductStockReleased || d != (StockData{OrderID: "o1", Quantity: 3}) {
				t.Errorf("got %s %+v, want %s of 3 for o1", e.Type, d, event.ProductStockReleased)
			}
		})
	}
}

// The ids of the saga's events depend on the order, the line's product and the kind of
// answer only.
func TestStockEventIDs(t *testing.T) {
	tea := Stock{PriceCents: 10, UnitsInStock: 5}
	reserve1, _ := ReserveStock(tea, Reservation{ProductID: "tea"}, "o1", event.OrderLine{ProductID: "tea", Quantity: 1, UnitPriceCents: 10})
	reserve1b, _ := ReserveStock(Stock{PriceCents: 20, UnitsInStock: 9, Version: 7}, Reservation{ProductID: "tea"}, "o1", event.OrderLine{ProductID: "tea", Quantity: 2, UnitPriceCents: 20})
	reserve2, _ := ReserveStock(tea, Reservation{ProductID: "tea"}, "o2", event.OrderLine{ProductID: "tea", Quantity: 1, UnitPriceCents: 10})
	reject1, _ := ReserveStock(tea, Reservation{ProductID: "tea"}, "o1", event.OrderLine{ProductID: "tea", Quantity: 9, UnitPriceCents: 10})
	release1, _ := ReleaseStock(Reservation{ProductID: "tea", OrderID: "o1", Quantity: 1, State: Reserved})
	mug1, _ := ReserveStock(tea, Reservation{ProductID: "mug"}, "o1", event.OrderLine{ProductID: "mug", Quantity: 1, UnitPriceCents: 10})
	if reserve1.ID != reserve1b.ID {
		t.Errorf("got ids %s and %s for reservations of o1, want one", reserve1.ID, reserve1b.ID)
	}
	if ids := map[string]bool{reserve1.ID: true, reserve2.ID: true, reject1.ID: true, release1.ID: true, mug1.ID: true}; len(ids) != 5 {
		t.Errorf("got %d distinct ids for 5 different answers, want 5", len(ids))
	}
}
