package product_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/product"
	"github.com/msdemo/msdemo/systest"
)

// shop is an event store, a gateway and the product service, running for one test.
type shop struct {
	sys      *systest.System
	cfg      product.Config
	api      string // the product API at the gateway
	manager  string // tokens
	customer string
	stop     func() // stops the product service (t's cleanup does too)
}

// startShop runs the product service, with a SQLite file of its own, behind a gateway.
func startShop(t *testing.T) *shop {
	t.Helper()
	sys := systest.Start(t)
	s := &shop{sys: sys, api: sys.GatewayURL + "/product",
		manager: sys.Token("boss", auth.Manager), customer: sys.Token("ann", auth.Customer),
		cfg: product.Config{Service: sys.ServiceConfig(t, "product"), DBPath: filepath.Join(t.TempDir(), "product.db"),
			Subscription: sys.Name + ".product", PostgresURL: testenv.PostgresURL(), Database: imagesDatabase(t)}}
	deleteQueuesAtEnd(t, s.cfg.Subscription)
	s.start(t)
	return s
}

// imagesDatabase returns a PostgreSQL database name of tb's own, for the pictures; the
// database is dropped when tb ends.
func imagesDatabase(tb testing.TB) string {
	name := testenv.DatabaseName(tb, "product")
	tb.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), name) })
	return name
}

// deleteQueuesAtEnd removes the durable queues of subscription when tb ends.
func deleteQueuesAtEnd(tb testing.TB, subscription string) {
	conn := testenv.Bus(tb)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.DeleteQueue(ctx, event.Queue(subscription))
		_ = conn.DeleteQueue(ctx, event.Queue(subscription)+".dead")
	})
}

// runProduct runs product.Run with cfg until the returned stop is called or tb ends, and
// waits for its /healthz.
func runProduct(tb testing.TB, cfg product.Config, logger *slog.Logger) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- product.Run(ctx, cfg, logger) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("product.Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				tb.Errorf("product service did not stop within 15 s")
			}
		})
	}
	tb.Cleanup(stop)
	testenv.WaitHealthy(tb, "http://"+cfg.Service.Addr+"/healthz", 20*time.Second)
	return stop
}

// start runs the product service and waits until the gateway routes to it.
func (s *shop) start(t *testing.T) {
	t.Helper()
	s.stop = runProduct(t, s.cfg, testenv.Logger(t))
	testenv.Eventually(t, 10*time.Second, "the gateway routes to the product service", func() bool {
		status, _ := call(t, "GET", s.api+"/categories", "", "")
		return status == http.StatusOK
	})
}

// call sends body (if not empty) as JSON with token (if not empty) and returns the status
// and the body of the answer.
func call(tb testing.TB, method, url, token, body string) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b
}

// must calls and fails t unless the answer has status want; it decodes the body into v
// (if not nil).
func must(t *testing.T, want int, method, url, token, body string, v any) {
	t.Helper()
	status, b := call(t, method, url, token, body)
	if status != want {
		t.Fatalf("%s %s %s: got %d %s, want %d", method, url, body, status, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
}

func (s *shop) addCategory(t *testing.T, name string) product.Category {
	t.Helper()
	var c product.Category
	must(t, 201, "POST", s.api+"/categories", s.manager, fmt.Sprintf(`{"name":%q}`, name), &c)
	return c
}

func (s *shop) addProduct(t *testing.T, name string, category product.CategoryID) product.Product {
	t.Helper()
	var p product.Product
	must(t, 201, "POST", s.api+"/products", s.manager, fmt.Sprintf(`{"name":%q,"description":"d","supplier":"s",
		"category_id":%q,"price_cents":1250,"units_in_stock":7}`, name, category), &p)
	return p
}

// feed returns the event store's whole feed, to see that nothing was appended.
func (s *shop) feed(t *testing.T) string {
	t.Helper()
	status, b := call(t, "GET", s.sys.EventstoreURL+"/events?limit=1000", "", "")
	if status != 200 {
		t.Fatalf("GET /events: got %d %s, want 200", status, b)
	}
	return string(b)
}

func TestCategoryRoutes(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	url := s.api + "/categories"

	// Writes need a manager.
	must(t, 401, "POST", url, "", `{"name":"Beverages"}`, nil)
	must(t, 403, "POST", url, s.customer, `{"name":"Beverages"}`, nil)
	must(t, 401, "POST", url, "not-a-token", `{"name":"Beverages"}`, nil)

	bev := s.addCategory(t, "Beverages")
	if len(bev.ID) != 10 || bev.Name != "Beverages" || bev.Version != 1 {
		t.Fatalf("got %+v, want a 10 character id, name Beverages, version 1", bev)
	}
	cond := s.addCategory(t, "  Condiments ")
	if cond.Name != "Condiments" {
		t.Errorf("got name %q, want it trimmed to Condiments", cond.Name)
	}
	must(t, 409, "POST", url, s.manager, `{"name":"bEVERAGES"}`, nil)

	var got product.Category
	must(t, 200, "GET", url+"/"+string(bev.ID), "", "", &got)
	if got != bev {
		t.Errorf("GET: got %+v, want %+v", got, bev)
	}
	must(t, 404, "GET", url+"/aaaaaaaaaa", "", "", nil)
	must(t, 404, "GET", url+"/not-an-id", "", "", nil)

	// Rename: optional expected_version, names stay unique.
	must(t, 401, "PUT", url+"/"+string(bev.ID), "", `{"name":"Drinks"}`, nil)
	must(t, 403, "PUT", url+"/"+string(bev.ID), s.customer, `{"name":"Drinks"}`, nil)
	must(t, 409, "PUT", url+"/"+string(bev.ID), s.manager, `{"name":"condiments"}`, nil)
	must(t, 200, "PUT", url+"/"+string(bev.ID), s.manager, `{"name":"Drinks"}`, &got)
	if got.Name != "Drinks" || got.Version != 2 {
		t.Errorf("rename: got %+v, want Drinks at version 2", got)
	}
	must(t, 200, "PUT", url+"/"+string(bev.ID), s.manager, `{"name":"DRINKS","expected_version":2}`, &got)
	var conflict struct {
		Error          string `json:"error"`
		CurrentVersion int64  `json:"current_version"`
	}
	must(t, 409, "PUT", url+"/"+string(bev.ID), s.manager, `{"name":"Stale","expected_version":2}`, &conflict)
	if conflict.CurrentVersion != 3 || conflict.Error == "" {
		t.Errorf("stale rename: got %+v, want current_version 3 and an error", conflict)
	}
	must(t, 404, "PUT", url+"/aaaaaaaaaa", s.manager, `{"name":"Ghost"}`, nil)

	// The list is ordered by name.
	var list struct {
		Categories []product.Category `json:"categories"`
		NextAfter  string             `json:"next_after"`
	}
	must(t, 200, "GET", url, "", "", &list)
	if len(list.Categories) != 2 || list.Categories[0].Name != "Condiments" || list.Categories[1].Name != "DRINKS" || list.NextAfter != "" {
		t.Errorf("list: got %+v, want Condiments, DRINKS and no next page", list)
	}
	must(t, 200, "GET", url+"?limit=1", "", "", &list)
	if len(list.Categories) != 1 || list.NextAfter != string(cond.ID) {
		t.Errorf("first page of 1: got %+v, want Condiments and next_after %s", list, cond.ID)
	}

	// A category with products cannot be deleted; once they are gone, it can.
	p := s.addProduct(t, "Chai", cond.ID)
	before := s.feed(t)
	must(t, 409, "DELETE", url+"/"+string(cond.ID), s.manager, "", nil)
	must(t, 200, "GET", url+"/"+string(cond.ID), "", "", nil)
	if after := s.feed(t); after != before {
		t.Errorf("a refused delete appended events")
	}
	must(t, 401, "DELETE", url+"/"+string(cond.ID), "", "", nil)
	must(t, 403, "DELETE", url+"/"+string(cond.ID), s.customer, "", nil)
	must(t, 204, "DELETE", s.api+"/products/"+string(p.ID), s.manager, "", nil)
	must(t, 204, "DELETE", url+"/"+string(cond.ID), s.manager, "", nil)
	must(t, 404, "GET", url+"/"+string(cond.ID), "", "", nil)
	must(t, 404, "DELETE", url+"/"+string(cond.ID), s.manager, "", nil)
	must(t, 404, "DELETE", url+"/aaaaaaaaaa", s.manager, "", nil)
	// Its name is free again.
	s.addCategory(t, "Condiments")
}

func TestProductRoutes(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	url := s.api + "/products"
	bev := s.addCategory(t, "Beverages")
	sea := s.addCategory(t, "Seafood")
	body := fmt.Sprintf(`{"name":"Chai","description":"Tea","supplier":"Exotic Liquids","category_id":%q,"price_cents":1800,"units_in_stock":39}`, bev.ID)

	must(t, 401, "POST", url, "", body, nil)
	must(t, 403, "POST", url, s.customer, body, nil)
	var chai product.Product
	must(t, 201, "POST", url, s.manager, body, &chai)
	want := product.Product{ID: chai.ID, Version: 1, ProductFields: product.ProductFields{Name: "Chai", Description: "Tea",
		Supplier: "Exotic Liquids", CategoryID: bev.ID, PriceCents: 1800, UnitsInStock: 39}}
	if chai != want {
		t.Fatalf("POST: got %+v, want %+v", chai, want)
	}
	var got product.Product
	must(t, 200, "GET", url+"/"+string(chai.ID), "", "", &got)
	if got != want {
		t.Errorf("GET: got %+v, want %+v", got, want)
	}
	// The answer has exactly the documented fields.
	_, raw := call(t, "GET", url+"/"+string(chai.ID), "", "")
	var fields map[string]any
	_ = json.Unmarshal(raw, &fields)
	if keys := slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(keys, []string{"category_id", "description", "id", "name", "price_cents", "supplier", "units_in_stock", "version"}) {
		t.Errorf("GET: got fields %v", keys)
	}
	must(t, 404, "GET", url+"/aaaaaaaaaa", "", "", nil)

	// Update: expected_version is required and must be current.
	update := func(version int64, price int) string {
		return fmt.Sprintf(`{"name":"Chai tea","description":"","supplier":"Exotic Liquids","category_id":%q,"price_cents":%d,"units_in_stock":20,"expected_version":%d}`,
			sea.ID, price, version)
	}
	must(t, 401, "PUT", url+"/"+string(chai.ID), "", update(1, 1900), nil)
	must(t, 403, "PUT", url+"/"+string(chai.ID), s.customer, update(1, 1900), nil)
	must(t, 404, "PUT", url+"/aaaaaaaaaa", s.manager, update(1, 1900), nil)
	must(t, 200, "PUT", url+"/"+string(chai.ID), s.manager, update(1, 1900), &got)
	want.Name, want.Description, want.CategoryID, want.PriceCents, want.UnitsInStock, want.Version = "Chai tea", "", sea.ID, 1900, 20, 2
	if got != want {
		t.Errorf("PUT: got %+v, want %+v", got, want)
	}
	before := s.feed(t)
	var conflict struct {
		Error          string `json:"error"`
		CurrentVersion int64  `json:"current_version"`
	}
	must(t, 409, "PUT", url+"/"+string(chai.ID), s.manager, update(1, 2500), &conflict)
	if conflict.CurrentVersion != 2 || conflict.Error == "" {
		t.Errorf("stale PUT: got %+v, want current_version 2 and an error", conflict)
	}
	must(t, 200, "GET", url+"/"+string(chai.ID), "", "", &got)
	if got != want || s.feed(t) != before {
		t.Errorf("after a stale PUT: got %+v and a changed feed, want %+v unchanged", got, want)
	}

	// Lists: by name, per category, paged.
	for _, name := range []string{"Ikura", "anchovies", "Konbu", "Boston Crab Meat"} {
		s.addProduct(t, name, sea.ID)
	}
	s.addProduct(t, "Guaraná", bev.ID)
	var page struct {
		Products  []product.Product `json:"products"`
		NextAfter string            `json:"next_after"`
	}
	names := func() (ns []string) {
		for _, p := range page.Products {
			ns = append(ns, p.Name)
		}
		return ns
	}
	must(t, 200, "GET", url+"?category_id="+string(sea.ID), "", "", &page)
	if got, want := names(), []string{"anchovies", "Boston Crab Meat", "Chai tea", "Ikura", "Konbu"}; !slices.Equal(got, want) || page.NextAfter != "" {
		t.Errorf("seafood: got %v next %q, want %v and no next page", got, page.NextAfter, want)
	}
	var all []string
	for after := ""; ; {
		must(t, 200, "GET", url+"?limit=2&after="+after, "", "", &page)
		all = append(all, names()...)
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	if want := []string{"anchovies", "Boston Crab Meat", "Chai tea", "Guaraná", "Ikura", "Konbu"}; !slices.Equal(all, want) {
		t.Errorf("pages of 2: got %v, want %v", all, want)
	}
	must(t, 400, "GET", url+"?limit=0", "", "", nil)
	must(t, 400, "GET", url+"?limit=x", "", "", nil)
	must(t, 400, "GET", url+"?after=aaaaaaaaaa", "", "", nil)

	// Delete.
	must(t, 401, "DELETE", url+"/"+string(chai.ID), "", "", nil)
	must(t, 403, "DELETE", url+"/"+string(chai.ID), s.customer, "", nil)
	must(t, 204, "DELETE", url+"/"+string(chai.ID), s.manager, "", nil)
	must(t, 404, "GET", url+"/"+string(chai.ID), "", "", nil)
	must(t, 404, "PUT", url+"/"+string(chai.ID), s.manager, update(3, 1900), nil)
	must(t, 404, "DELETE", url+"/"+string(chai.ID), s.manager, "", nil)
	must(t, 404, "DELETE", url+"/aaaaaaaaaa", s.manager, "", nil)
	must(t, 200, "GET", url+"?category_id="+string(sea.ID), "", "", &page)
	if slices.Contains(names(), "Chai tea") {
		t.Errorf("a deleted product is listed: %v", names())
	}
}

// Bad input to every write route answers 400 with field errors and appends nothing.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	cat := s.addCategory(t, "Beverages")
	p := s.addProduct(t, "Chai", cat.ID)
	huge := strings.Repeat("x", 10_000)
	good := map[string]any{"name": "Chang", "description": "Beer", "supplier": "Exotic", "category_id": cat.ID,
		"price_cents": 1900, "units_in_stock": 17}
	with := func(key string, v any, extra ...any) string {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	catURL, prodURL := s.api+"/categories", s.api+"/products"
	putProd := prodURL + "/" + string(p.ID)
	tests := []struct {
		name, method, url, body string
		field                   string // the field with an error
	}{
		{"category: empty body", "POST", catURL, "", "body"},
		{"category: not JSON", "POST", catURL, `{"name":`, "body"},
		{"category: array", "POST", catURL, `["x"]`, "body"},
		{"category: missing name", "POST", catURL, `{}`, "name"},
		{"category: null name", "POST", catURL, `{"name":null}`, "name"},
		{"category: number name", "POST", catURL, `{"name":5}`, "name"},
		{"category: blank name", "POST", catURL, `{"name":"  "}`, "name"},
		{"category: 10 KB name", "POST", catURL, `{"name":"` + huge + `"}`, "name"},
		{"category: unknown field", "POST", catURL, `{"name":"a","colour":"red"}`, "colour"},
		{"category: trailing data", "POST", catURL, `{"name":"a"} {}`, "body"},
		{"rename: missing name", "PUT", catURL + "/" + string(cat.ID), `{"expected_version":1}`, "name"},
		{"rename: version as string", "PUT", catURL + "/" + string(cat.ID), `{"name":"a","expected_version":"1"}`, "expected_version"},
		{"rename: version zero", "PUT", catURL + "/" + string(cat.ID), `{"name":"a","expected_version":0}`, "expected_version"},
		{"product: empty body", "POST", prodURL, "", "body"},
		{"product: missing name", "POST", prodURL, with("name", nil), "name"},
		{"product: 10 KB name", "POST", prodURL, with("name", huge), "name"},
		{"product: 10 KB supplier", "POST", prodURL, with("supplier", huge), "supplier"},
		{"product: long description", "POST", prodURL, with("description", strings.Repeat("d", 2001)), "description"},
		{"product: missing price", "POST", prodURL, with("price_cents", nil), "price_cents"},
		{"product: price as float", "POST", prodURL, with("price_cents", raw("12.5")), "price_cents"},
		{"product: price as string", "POST", prodURL, with("price_cents", "1250"), "price_cents"},
		{"product: price in exponent form", "POST", prodURL, with("price_cents", raw("1e3")), "price_cents"},
		{"product: negative price", "POST", prodURL, with("price_cents", -1), "price_cents"},
		{"product: free", "POST", prodURL, with("price_cents", 0), "price_cents"},
		{"product: absurd price", "POST", prodURL, with("price_cents", raw("100000000000000000000")), "price_cents"},
		{"product: price over the limit", "POST", prodURL, with("price_cents", 100_000_001), "price_cents"},
		{"product: negative stock", "POST", prodURL, with("units_in_stock", -5), "units_in_stock"},
		{"product: absurd stock", "POST", prodURL, with("units_in_stock", 1_000_001), "units_in_stock"},
		{"product: stock as bool", "POST", prodURL, with("units_in_stock", true), "units_in_stock"},
		{"product: missing category", "POST", prodURL, with("category_id", nil), "category_id"},
		{"product: unknown category", "POST", prodURL, with("category_id", "aaaaaaaaaa"), "category_id"},
		{"product: category of another shape", "POST", prodURL, with("category_id", "../etc"), "category_id"},
		{"product: category as number", "POST", prodURL, with("category_id", 7), "category_id"},
		{"product: unknown field", "POST", prodURL, with("colour", "red"), "colour"},
		{"product: expected_version on create", "POST", prodURL, with("expected_version", 1), "expected_version"},
		{"update: no expected_version", "PUT", putProd, with("name", "Chang"), "expected_version"},
		{"update: expected_version float", "PUT", putProd, with("name", "Chang", "expected_version", 1.5), "expected_version"},
		{"update: negative price", "PUT", putProd, with("price_cents", -1, "expected_version", 1), "price_cents"},
		{"update: unknown category", "PUT", putProd, with("category_id", "aaaaaaaaaa", "expected_version", 1), "category_id"},
		{"update: not JSON", "PUT", putProd, `nope`, "body"},
		{"update: unknown field", "PUT", putProd, with("id", "x", "expected_version", 1), "id"},
	}
	before := s.feed(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var answer struct {
				Error  string            `json:"error"`
				Fields map[string]string `json:"fields"`
			}
			must(t, 400, tt.method, tt.url, s.manager, tt.body, &answer)
			if answer.Error != "invalid input" || answer.Fields[tt.field] == "" {
				t.Errorf("got %+v, want invalid input with an error for %q", answer, tt.field)
			}
			if after := s.feed(t); after != before {
				t.Errorf("the event feed changed")
			}
		})
	}
	// A body over 1 MiB is refused by the gateway, and by the service too.
	status, _ := call(t, "POST", "http://"+s.cfg.Service.Addr+"/products", s.manager, `{"name":"`+strings.Repeat("x", 1<<20)+`"}`)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: got %d, want 413", status)
	}
	var got product.Product
	must(t, 200, "GET", putProd, "", "", &got)
	if got != p {
		t.Errorf("product after the bad updates: got %+v, want %+v", got, p)
	}
}

// A write answers once the read model shows it: a GET right after sees it, every time.
func TestPostThenGet(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	cat := s.addCategory(t, "Beverages")
	var worst time.Duration
	for i := range 100 {
		start := time.Now()
		p := s.addProduct(t, fmt.Sprintf("Product %03d", i), cat.ID)
		var got product.Product
		must(t, 200, "GET", s.api+"/products/"+string(p.ID), "", "", &got)
		worst = max(worst, time.Since(start))
		if got != p {
			t.Fatalf("GET after POST %d: got %+v, want %+v", i, got, p)
		}
		if i%10 == 0 {
			var page struct{ Products []product.Product }
			must(t, 200, "GET", s.api+"/products?limit=500&category_id="+string(cat.ID), "", "", &page)
			if len(page.Products) != i+1 {
				t.Fatalf("list after POST %d: got %d products, want %d", i, len(page.Products), i+1)
			}
		}
	}
	t.Logf("slowest POST and GET: %s", worst)
}

// dump returns every row of the read model in the SQLite file at path.
func dump(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables := map[string]string{
		"categories": `SELECT id, name, version, deleted FROM categories ORDER BY id`,
		"products": `SELECT id, name, description, supplier, category_id, price_cents, units_in_stock, version, deleted,
			image_id, image_width, image_height, thumb_id, thumb_width, thumb_height FROM products ORDER BY id`,
		"checkpoint": `SELECT store_id, position FROM checkpoint`,
	}
	out := map[string][]string{}
	for table, q := range tables {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], fmt.Sprint(vals...))
		}
		rows.Close()
	}
	return out
}

func removeDB(t *testing.T, path string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

func equalDumps(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for _, table := range []string{"categories", "products", "checkpoint"} {
		if !slices.Equal(got[table], want[table]) {
			t.Errorf("%s: table %s:\ngot  %q\nwant %q", what, table, got[table], want[table])
		}
	}
}

// Deleting the SQLite file and restarting rebuilds the read model from the events, row
// for row; so does Rebuild.
func TestRebuildFromEvents(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	bev, sea, gone := s.addCategory(t, "Beverages"), s.addCategory(t, "Seafood"), s.addCategory(t, "Gone")
	must(t, 200, "PUT", s.api+"/categories/"+string(sea.ID), s.manager, `{"name":"Fish"}`, nil)
	must(t, 204, "DELETE", s.api+"/categories/"+string(gone.ID), s.manager, "", nil)
	var ps []product.Product
	for i := range 20 {
		ps = append(ps, s.addProduct(t, fmt.Sprintf("P%d", i), []product.CategoryID{bev.ID, sea.ID}[i%2]))
	}
	must(t, 200, "PUT", s.api+"/products/"+string(ps[3].ID), s.manager, fmt.Sprintf(`{"name":"Renamed","category_id":%q,
		"price_cents":99,"units_in_stock":0,"expected_version":1}`, bev.ID), nil)
	must(t, 204, "DELETE", s.api+"/products/"+string(ps[4].ID), s.manager, "", nil)
	ps[5] = mustUpload(t, s.api+"/products/"+string(ps[5].ID)+"/image", s.manager, "image/jpeg", product.JPEGFile(t, 800, 600))

	s.stop()
	want := dump(t, s.cfg.DBPath)
	if len(want["categories"]) != 3 || len(want["products"]) != 20 {
		t.Fatalf("read model before: got %d categories and %d products, want 3 and 20", len(want["categories"]), len(want["products"]))
	}

	removeDB(t, s.cfg.DBPath)
	s.start(t)
	s.stop()
	equalDumps(t, "after deleting the file and restarting", dump(t, s.cfg.DBPath), want)

	if err := product.Rebuild(context.Background(), s.cfg, testenv.Logger(t)); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	equalDumps(t, "after Rebuild", dump(t, s.cfg.DBPath), want)
	removeDB(t, s.cfg.DBPath)
	if err := product.Rebuild(context.Background(), s.cfg, testenv.Logger(t)); err != nil {
		t.Fatalf("Rebuild without a file: %v", err)
	}
	equalDumps(t, "after Rebuild without a file", dump(t, s.cfg.DBPath), want)

	// The service goes on from the rebuilt model.
	s.start(t)
	var got product.Product
	must(t, 200, "GET", s.api+"/products/"+string(ps[5].ID), "", "", &got)
	if got != ps[5] {
		t.Errorf("after the rebuild: got %+v, want %+v", got, ps[5])
	}
	s.addProduct(t, "After", bev.ID)
}

// Writers racing on one product with the same expected version: one wins, the others get
// 409; racing to add one category name: one wins.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	cat := s.addCategory(t, "Beverages")
	p := s.addProduct(t, "Chai", cat.ID)
	statuses := func(n int, req func(i int) (string, string, string)) map[int]int {
		var mu sync.Mutex
		counts := map[int]int{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				method, url, body := req(i)
				status, _ := call(t, method, url, s.manager, body)
				mu.Lock()
				counts[status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return counts
	}
	got := statuses(10, func(i int) (string, string, string) {
		return "PUT", s.api + "/products/" + string(p.ID), fmt.Sprintf(`{"name":"Chai %d","category_id":%q,
			"price_cents":%d,"units_in_stock":1,"expected_version":1}`, i, cat.ID, 100+i)
	})
	if got[200] != 1 || got[409] != 9 {
		t.Errorf("10 updates at version 1: got statuses %v, want one 200 and nine 409", got)
	}
	var after product.Product
	must(t, 200, "GET", s.api+"/products/"+string(p.ID), "", "", &after)
	if after.Version != 2 {
		t.Errorf("after the race: got version %d, want 2", after.Version)
	}
	got = statuses(10, func(i int) (string, string, string) {
		return "POST", s.api + "/categories", fmt.Sprintf(`{"name":"Seafood%s"}`, strings.Repeat(" ", i))
	})
	if got[201] != 1 || got[409] != 9 {
		t.Errorf("10 adds of one name: got statuses %v, want one 201 and nine 409", got)
	}
}
