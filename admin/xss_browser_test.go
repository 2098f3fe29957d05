package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/msdemo/msdemo/internal/web/webtest"
	"github.com/msdemo/msdemo/storefront"
)

// Script-ish catalog texts: each would run a script or add an element if a page put it
// into its HTML unescaped.
const (
	xssProduct     = `<img src=x onerror=alert(1)>`
	xssCategory    = `<script>alert("category")</script>`
	xssSupplier    = `"><svg onload=alert('supplier')>`
	xssDescription = `</textarea><script>alert('description')</script><b>bold</b>`
)

// jsonEscaped is s as encoding/json writes it inside a string: with < > & escaped.
func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// testScriptishNames adds a category, a product, its supplier and description whose
// texts are HTML that runs scripts, orders the product, and opens in headless Chromium
// every page of both sites that shows them: the storefront's categories, category,
// product, order (decided live over SSE), invoice and orders; the admin's products, the
// product's form, categories, orders (a new order arriving live over SSE), the order,
// the event explorer (stream and event) and the dashboard's live feed. Each page must
// show the texts as text, have no element made from them, and the browser must see no
// dialog, no uncaught exception and no Content-Security-Policy violation (the harness
// fails the test on any, so a CSP that broke htmx would fail it too).
func testScriptishNames(t *testing.T, s *site) {
	var category, product struct{ ID string }
	s.MustAPI(http.MethodPost, "/product/categories", s.ManagerToken, map[string]any{"name": xssCategory}, &category)
	s.MustAPI(http.MethodPost, "/product/products", s.ManagerToken, map[string]any{"name": xssProduct,
		"description": xssDescription, "supplier": xssSupplier, "category_id": category.ID,
		"price_cents": 100, "units_in_stock": 10}, &product)
	shopURL := s.StartSite(t, "storefront", storefront.Run)

	c := webtest.StartChromium(t, 120*time.Second, t.TempDir(), "")
	ctx, step, tid := c.Ctx, c.Step, webtest.TestID
	// shows checks the page that is open: each of texts is in its text, no element came
	// from a text (an <img src=x>, an <svg>, an inline <script>), and the browser saw no
	// problem.
	shows := func(page string, texts ...string) {
		t.Helper()
		time.Sleep(200 * time.Millisecond) // the browser reports a violation after it shows the page
		body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatalf("%s: read the page: %v", page, err)
		}
		for _, text := range texts {
			if !strings.Contains(body, text) {
				t.Errorf("%s: the page does not show %q as text", page, text)
			}
		}
		injected, err := chromedp.Run(ctx, chromedp.Evaluate[int](
			`document.querySelectorAll('img[src="x"], svg, script:not([src]), b').length`))
		if err != nil || injected != 0 {
			t.Errorf("%s: %d elements made from the catalog's texts (%v), want 0", page, injected, err)
		}
		for _, p := range c.Problems() {
			t.Errorf("%s: %s", page, p)
		}
	}

	// The storefront, as the customer.
	step("storefront: log in", chromedp.Navigate(shopURL+"/login"), chromedp.WaitVisible(tid("login-form")),
		chromedp.SendKeys(chromedp.ID("f-username"), customerName),
		chromedp.SendKeys(chromedp.ID("f-password"), customerPass),
		chromedp.Click(tid("login-button")), chromedp.WaitVisible(tid("categories")))
	shows("storefront home", xssCategory)
	step("storefront: the category", chromedp.Navigate(shopURL+"/categories/"+category.ID), chromedp.WaitVisible(tid("products")))
	shows("storefront category", xssCategory, xssProduct)
	step("storefront: the product", chromedp.Navigate(shopURL+"/products/"+product.ID), chromedp.WaitVisible(tid("order-form")))
	shows("storefront product", xssProduct, xssDescription, xssSupplier, xssCategory)
	step("storefront: order it, decided live", chromedp.Click(tid("order-button")), chromedp.WaitVisible(tid("order-detail")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-detail"] .status-approved`)))
	shows("storefront order", xssProduct)
	step("storefront: the invoice", chromedp.WaitVisible(tid("invoice-link")), chromedp.Click(tid("invoice-link")),
		chromedp.WaitVisible(tid("invoice-total")))
	shows("storefront invoice", xssProduct)
	step("storefront: my orders", chromedp.Navigate(shopURL+"/orders"), chromedp.WaitVisible(tid("orders")))
	shows("storefront orders", xssProduct)

	// The admin site, as a manager.
	step("admin: log in", chromedp.Navigate(s.URL+"/login"), chromedp.WaitVisible(tid("login-form")),
		chromedp.SendKeys(chromedp.ID("f-username"), managerName),
		chromedp.SendKeys(chromedp.ID("f-password"), managerPassword),
		chromedp.Click(tid("login-button")), chromedp.WaitVisible(tid("feed-event")))
	shows("admin dashboard")
	step("admin: products", chromedp.Navigate(s.URL+"/products"), chromedp.WaitVisible(tid("products")))
	shows("admin products", xssProduct, xssCategory)
	step("admin: the product's form", chromedp.Navigate(s.URL+"/products/"+product.ID), chromedp.WaitVisible(tid("product-form")))
	for id, want := range map[string]string{"f-name": xssProduct, "f-supplier": xssSupplier, "f-description": xssDescription} {
		if got, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID(id))); err != nil || got != want {
			t.Errorf("admin product form: %s holds %q (%v), want %q", id, got, err, want)
		}
	}
	shows("admin product form")
	step("admin: categories", chromedp.Navigate(s.URL+"/categories"), chromedp.WaitVisible(tid("category-add-form")))
	shows("admin categories", xssCategory)

	step("admin: orders", chromedp.Navigate(s.URL+"/orders"), chromedp.WaitVisible(tid("orders")))
	time.Sleep(500 * time.Millisecond) // let the EventSource connect; the row must come over SSE
	var placed struct{ ID string }
	s.MustAPI(http.MethodPost, "/order/orders", s.customerToken(), map[string]any{"product_id": product.ID, "quantity": 1}, &placed)
	row := `[data-order="` + placed.ID + `"]`
	step("admin: the new order arrives live", chromedp.WaitVisible(chromedp.CSS(row+` .status-approved`)))
	shows("admin orders", xssProduct)
	step("admin: the order", chromedp.Click(chromedp.CSS(row+` [data-testid="order-link"]`)), chromedp.WaitVisible(tid("timeline")))
	shows("admin order", xssProduct)

	step("admin: the product's stream", chromedp.Navigate(s.URL+"/eventstore/streams/product-"+product.ID),
		chromedp.WaitVisible(tid("stream-name")))
	shows("admin stream", "product-"+product.ID)
	// The event's JSON as stored: Go's encoding/json writes "<" and ">" as \u003c and
	// \u003e, which the page shows as they are.
	step("admin: the product's first event", chromedp.Click(tid("event-link")), chromedp.WaitVisible(tid("event-json")))
	shows("admin event", jsonEscaped(xssProduct), jsonEscaped(xssSupplier))

	// The dashboard's feed gets the events of an edit live; the edit's texts are
	// script-ish too.
	step("admin: the dashboard", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(tid("feed-event")))
	time.Sleep(500 * time.Millisecond) // let the EventSource connect
	s.MustAPI(http.MethodPost, "/product/products", s.ManagerToken, map[string]any{"name": xssProduct + " 2",
		"description": xssDescription, "supplier": xssSupplier, "category_id": category.ID,
		"price_cents": 100, "units_in_stock": 1}, &product)
	step("admin: the new product's event arrives live", chromedp.WaitVisible(chromedp.CSS(
		`[data-testid="feed-event"] a[href="/eventstore/streams/product-`+product.ID+`"]`)))
	shows("admin live feed", "product-"+product.ID)
}
