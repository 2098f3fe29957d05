package product

import (
	"errors"
	"maps"
	"strings"
	"testing"

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
