package event

import "testing"

func TestAggregate(t *testing.T) {
	if got := Order.Stream("42"); got != "order-42" {
		t.Errorf("Order.Stream(42) = %q, want order-42", got)
	}
	tests := []struct {
		a      Aggregate
		stream string
		id     string
		ok     bool
	}{
		{Order, "order-42", "42", true},
		{Customer, "customer-ann-marie", "ann-marie", true},
		{Order, "order-", "", false},
		{Order, "orders-42", "", false},
		{Product, "order-42", "", false},
		{Invoice, "invoice-order-1", "order-1", true},
	}
	for _, tt := range tests {
		id, ok := tt.a.ID(tt.stream)
		if id != tt.id && ok || ok != tt.ok {
			t.Errorf("%s.ID(%q) = %q, %v; want %q, %v", tt.a, tt.stream, id, ok, tt.id, tt.ok)
		}
	}
	if !TypeMatches([]string{Product.Types()}, ProductStockReserved) || TypeMatches([]string{Product.Types()}, OrderPlaced) {
		t.Errorf("Product.Types() = %q: want it to match product.* types only", Product.Types())
	}
}

// TestTypesAreValid: every type of the catalog is one an append request may carry, and
// starts with its aggregate.
func TestTypesAreValid(t *testing.T) {
	byAggregate := map[Aggregate][]string{
		Customer: {CustomerRegistered, CustomerProfileUpdated, CustomerPasswordChanged, CustomerCreditSet,
			CustomerCreditReserved, CustomerCreditRejected, CustomerCreditReleased},
		Category: {CategoryAdded, CategoryRenamed, CategoryDeleted},
		Product: {ProductAdded, ProductUpdated, ProductDeleted, ProductImageSet,
			ProductStockReserved, ProductStockRejected, ProductStockReleased},
		Order:   {OrderPlaced, OrderApproved, OrderRejected},
		Cart:    {CartLineSet, CartLineRemoved, CartCheckedOut},
		Invoice: {InvoiceIssued},
	}
	seen := map[string]bool{}
	for a, types := range byAggregate {
		for _, typ := range types {
			req := AppendRequest{Stream: a.Stream("x1"), Events: []New{{ID: "e1", Type: typ}}}
			if err := req.Validate(); err != nil {
				t.Errorf("%s: %v", typ, err)
			}
			if !TypeMatches([]string{a.Types()}, typ) {
				t.Errorf("%s is not a type of %s", typ, a)
			}
			if seen[typ] {
				t.Errorf("%s is declared twice", typ)
			}
			seen[typ] = true
		}
	}
}
