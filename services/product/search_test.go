package product_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/msdemo/msdemo/services/product"
)

// Search finds products by any word of their name, description or supplier, or the
// start of one, whatever the case; a name match ranks first; deleted products and renamed
// words drop out; bad input is 400.
func TestSearch(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	tea := s.addCategory(t, "Tea")
	add := func(name, description, supplier string) product.Product {
		t.Helper()
		var p product.Product
		must(t, 201, "POST", s.api+"/products", s.manager, fmt.Sprintf(`{"name":%q,"description":%q,"supplier":%q,
			"category_id":%q,"price_cents":900,"units_in_stock":5}`, name, description, supplier, tea.ID), &p)
		return p
	}
	sencha := add("Sencha", "A grassy green tea from Shizuoka", "Uji Gardens")
	matcha := add("Matcha", "Stone-ground powder of shaded green leaves, good with sencha", "Uji Gardens")
	chai := add("Masala Chai", "Black tea with cardamom and ginger", "Exotic Liquids")
	search := func(q string, more ...string) []product.ProductID {
		t.Helper()
		query := url.Values{"q": {q}}
		for i := 0; i+1 < len(more); i += 2 {
			query.Set(more[i], more[i+1])
		}
		return productIDs(t, s.api+"/search?"+query.Encode())
	}
	for _, tt := range []struct {
		q    string
		want []product.ProductID
	}{
		{"sencha", []product.ProductID{sencha.ID, matcha.ID}}, // the name first, then the description
		{"CARDAMOM", []product.ProductID{chai.ID}},            // a word of the description, any case
		{"shizu", []product.ProductID{sencha.ID}},             // the start of a word
		{"green tea", []product.ProductID{sencha.ID}},         // every word must match
		{"oolong", nil},
		{`"green" OR NEAR(x)`, nil}, // FTS5 syntax is taken as words, not obeyed
	} {
		if got := search(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("search %q: got %v, want %v", tt.q, got, tt.want)
		}
	}
	bySupplier := search("uji")
	if len(bySupplier) != 2 || !slices.Contains(bySupplier, sencha.ID) || !slices.Contains(bySupplier, matcha.ID) {
		t.Errorf("search uji (the supplier): got %v, want %v and %v", bySupplier, sencha.ID, matcha.ID)
	} else if got := search("uji", "limit", "1", "offset", "1"); !slices.Equal(got, bySupplier[1:]) {
		t.Errorf("search uji, the second page of one: got %v, want %v", got, bySupplier[1:])
	}

	must(t, 200, "PUT", s.api+"/products/"+string(sencha.ID), s.manager, fmt.Sprintf(`{"name":"Gyokuro","description":"Shaded green tea",
		"supplier":"Uji Gardens","category_id":%q,"price_cents":900,"units_in_stock":5,"expected_version":1}`, tea.ID), nil)
	must(t, 204, "DELETE", s.api+"/products/"+string(chai.ID), s.manager, "", nil)
	if got := search("gyokuro"); !slices.Equal(got, []product.ProductID{sencha.ID}) {
		t.Errorf("after renaming: search gyokuro got %v, want %v", got, sencha.ID)
	}
	if got := search("shizuoka"); got != nil {
		t.Errorf("after the description changed: search shizuoka got %v, want none", got)
	}
	if got := search("cardamom"); got != nil {
		t.Errorf("after deleting: search cardamom got %v, want none", got)
	}

	for _, bad := range []string{"", "q=", "q=%21%21", "q=tea&offset=-1", "q=tea&offset=x", "q=tea&limit=0",
		"q=a+b+c+d+e+f+g+h+i+j+k"} {
		if status, body := call(t, "GET", s.api+"/search?"+bad, "", ""); status != 400 {
			t.Errorf("GET /search?%s: got %d %s, want 400", bad, status, body)
		}
	}
}

// Lists are sorted by name (the default), by price or newest first, and page the same way.
func TestSortedLists(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	tea := s.addCategory(t, "Tea")
	add := func(name string, cents int) product.ProductID {
		t.Helper()
		var p product.Product
		must(t, 201, "POST", s.api+"/products", s.manager, fmt.Sprintf(`{"name":%q,"description":"d","supplier":"s",
			"category_id":%q,"price_cents":%d,"units_in_stock":5}`, name, tea.ID, cents), &p)
		return p.ID
	}
	assam, bancha, chai := add("Assam", 300), add("Bancha", 100), add("Chai", 200)
	list := func(query string) []product.ProductID {
		t.Helper()
		return productIDs(t, s.api+"/products?category_id="+string(tea.ID)+"&"+query)
	}
	for _, tt := range []struct {
		query string
		want  []product.ProductID
	}{
		{"", []product.ProductID{assam, bancha, chai}},
		{"sort=name", []product.ProductID{assam, bancha, chai}},
		{"sort=price", []product.ProductID{bancha, chai, assam}},
		{"sort=newest", []product.ProductID{chai, bancha, assam}},
		{"sort=price&limit=1&after=" + string(bancha), []product.ProductID{chai}},
		{"sort=newest&limit=1&after=" + string(bancha), []product.ProductID{assam}},
	} {
		if got := list(tt.query); !slices.Equal(got, tt.want) {
			t.Errorf("GET /products?%s: got %v, want %v", tt.query, got, tt.want)
		}
	}
	if status, body := call(t, "GET", s.api+"/products?sort=cheapest", "", ""); status != 400 {
		t.Errorf("sort=cheapest: got %d %s, want 400", status, body)
	}
}

// productIDs GETs address, a page of products (a list or a search), and returns their ids
// in order; it fails t unless the answer is 200.
func productIDs(t *testing.T, address string) []product.ProductID {
	t.Helper()
	var page struct {
		Products []product.Product `json:"products"`
	}
	must(t, 200, "GET", address, "", "", &page)
	var ids []product.ProductID
	for _, p := range page.Products {
		ids = append(ids, p.ID)
	}
	return ids
}
