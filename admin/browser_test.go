package admin_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/web/webtest"
	"github.com/msdemo/msdemo/storefront"
)

// testBrowser runs a manager's session in headless Chromium: log in, add a category and
// a product (which the storefront then lists), lose a race on a product edit and see the conflict, set a customer's credit,
// watch an order placed through the API appear and be decided on the orders page, and
// find its events in the explorer. It saves full-page screenshots into docs/screenshots.
func testBrowser(t *testing.T, s *site) {
	c := webtest.StartChromium(t, 90*time.Second, filepath.Join("..", "docs", "screenshots"), "admin-")
	ctx, step, shot, tid := c.Ctx, c.Step, c.Shot, webtest.TestID

	step("log in", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(tid("login-form")),
		chromedp.SendKeys(chromedp.ID("f-username"), managerName),
		chromedp.SendKeys(chromedp.ID("f-password"), managerPassword),
		chromedp.Click(tid("login-button")), chromedp.WaitVisible(tid("revenue")), chromedp.WaitVisible(tid("feed-event")))
	shot("dashboard")

	step("add a category", chromedp.Click(tid("nav-categories")), chromedp.WaitVisible(tid("category-add-form")),
		chromedp.SendKeys(chromedp.ID("f-new-category"), "Balcony"),
		chromedp.Click(tid("category-add")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"].flash-success`)))
	shot("categories")

	step("add a product", chromedp.Click(tid("nav-products")), chromedp.WaitVisible(tid("product-new")),
		chromedp.Click(tid("product-new")), chromedp.WaitVisible(tid("product-form")),
		chromedp.SendKeys(chromedp.ID("f-name"), "Flower box"),
		chromedp.SetValue(chromedp.ID("f-category_id"), s.Category),
		chromedp.SendKeys(chromedp.ID("f-price"), "19.90"),
		chromedp.SetValue(chromedp.ID("f-units_in_stock"), "12"),
		chromedp.SendKeys(chromedp.ID("f-supplier"), "Acme"),
		chromedp.Click(tid("product-save")), chromedp.WaitVisible(tid("products")))
	shot("products")
	// A customer sees the new product in the shop at once.
	shopURL := s.StartSite(t, "storefront", storefront.Run)
	if names := webtest.NewBrowser(t, shopURL).Get("/categories/" + s.Category).Doc.Find(`[data-testid="product"]`).Text(); !strings.Contains(names, "Flower box") {
		t.Errorf("the storefront's category page lists %q, want the new Flower box", names)
	}

	// Open the edit form, then another manager saves first (through the API).
	step("open the product", chromedp.Navigate(s.URL+"/products/"+s.Product), chromedp.WaitVisible(tid("product-form")))
	manager := s.Token(managerName, auth.Manager)
	var current struct {
		Name, Description, Supplier string
		CategoryID                  string `json:"category_id"`
		PriceCents                  int64  `json:"price_cents"`
		UnitsInStock                int64  `json:"units_in_stock"`
		Version                     int64
	}
	s.MustAPI(http.MethodGet, "/product/products/"+s.Product, "", nil, &current)
	s.MustAPI(http.MethodPut, "/product/products/"+s.Product, manager, map[string]any{"name": "Watering can (new model)",
		"description": current.Description, "supplier": current.Supplier, "category_id": current.CategoryID,
		"price_cents": current.PriceCents, "units_in_stock": current.UnitsInStock, "expected_version": current.Version}, nil)
	step("save a stale edit", chromedp.SetValue(chromedp.ID("f-price"), "9.99"),
		chromedp.Click(tid("product-save")), chromedp.WaitVisible(tid("conflict")))
	if name, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("f-name"))); err != nil || name != "Watering can (new model)" {
		t.Errorf("after the conflict the form shows name %q (%v), want the current Watering can (new model)", name, err)
	}
	shot("conflict")

	step("set a credit", chromedp.Navigate(s.URL+"/customers/"+customerName), chromedp.WaitVisible(tid("credit-form")),
		chromedp.SetValue(chromedp.ID("f-credit"), "500"), chromedp.Click(tid("credit-save")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"].flash-success`)))
	if credit, err := chromedp.Run(ctx, chromedp.Text(tid("credit"))); err != nil || credit != "€500.00" {
		t.Errorf("credit after saving: got %q (%v), want €500.00", credit, err)
	}
	shot("customer")

	// The orders page is open when the customer orders: the row appears and is decided live.
	step("open the orders", chromedp.Click(tid("nav-orders")), chromedp.WaitVisible(tid("orders")))
	time.Sleep(500 * time.Millisecond) // let the EventSource connect; the row must come over SSE, not a reload
	var placed struct{ ID string }
	s.MustAPI(http.MethodPost, "/order/orders", s.customerToken(), map[string]any{"product_id": s.Product, "quantity": 2}, &placed)
	row := `[data-order="` + placed.ID + `"]`
	step("see the order appear and be decided live", chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(row+` .status-approved`)))
	if cells, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+row+` > td').length`)); err != nil || cells != 6 {
		t.Errorf("the live row has %d cells (%v), want 6", cells, err)
	}
	shot("orders")

	step("open the order", chromedp.Click(chromedp.CSS(row+` [data-testid="order-link"]`)), chromedp.WaitVisible(tid("timeline")))
	shot("order")
	step("find its events", chromedp.Click(tid("order-events")), chromedp.WaitVisible(tid("stream-name")))
	if first, err := chromedp.Run(ctx, chromedp.Text(tid("event-type"))); err != nil || first != "order.placed" {
		t.Errorf("the order's stream starts with %q (%v), want order.placed", first, err)
	}
	shot("stream")
	step("open an event", chromedp.Click(tid("event-link")), chromedp.WaitVisible(tid("event-json")))
	shot("event")

	step("on a phone", chromedp.EmulateViewport(360, 740), chromedp.Navigate(s.URL+"/orders"), chromedp.WaitVisible(tid("orders")))
	shot("phone-orders")
	if width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || width > 360 {
		t.Errorf("on a 360 px screen the page is %d px wide (%v): it scrolls sideways", width, err)
	}
}
