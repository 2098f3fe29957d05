package storefront_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web/webtest"
)

// TestStorefront drives the storefront in a whole shop: every form as a plain HTTP POST
// with the session cookie (a browser without JavaScript), CSRF, live order updates over
// SSE, and one real browser run that also takes the README's screenshots.
func TestStorefront(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ, PostgreSQL and Redis; skipped with -short")
	}
	s := startSite(t)
	t.Run("forms without JavaScript", func(t *testing.T) { testForms(t, s) })
	t.Run("cross-origin POST refused", func(t *testing.T) { testCrossOrigin(t, s) })
	t.Run("password change logs out the other browsers", func(t *testing.T) { testPasswordChange(t, s) })
	t.Run("too many wrong passwords", func(t *testing.T) { testTooManyLogins(t, s) })
	t.Run("live order updates", func(t *testing.T) { testLive(t, s) })
	t.Run("a rejected order back into the cart", func(t *testing.T) { testReorder(t, s) })
	t.Run("product pictures", func(t *testing.T) { testPictures(t, s) }) // before the browser's screenshots
	t.Run("browser", func(t *testing.T) { testBrowser(t, s) })
}

func testForms(t *testing.T, s *site) {
	b := s.newBrowser(t)

	home := b.Get("/")
	if got := home.TestID("category"); got != "Garden" {
		t.Errorf("home: category got %q, want Garden", got)
	}
	if got := home.Doc.Find(`[data-testid="newest"] [data-testid="product"]`).Text(); !strings.Contains(got, "Watering can") {
		t.Errorf("home: the newest products show %q, want Watering can", got)
	}
	if home.Count("nav-login") != 1 {
		t.Errorf("home: a visitor's nav has no log-in link")
	}

	// Invalid registration: the form again, with the API's messages.
	p := b.Post("/register", url.Values{"username": {"x"}, "full_name": {""}, "email": {"nope"}, "password": {"short"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.Count("register-form") != 1 {
		t.Fatalf("invalid registration: got %d (form %d), want 422 with the form", p.Status, p.Count("register-form"))
	}
	for _, f := range []string{"email", "password"} {
		if p.TestID("error-"+f) == "" {
			t.Errorf("invalid registration: no message for %s", f)
		}
	}
	if p.Doc.Find(`input[name="email"]`).AttrOr("value", "") != "nope" {
		t.Errorf("invalid registration: the email typed is not kept")
	}

	// Registration logs in and goes home.
	p = b.Post("/register", url.Values{"username": {"ada"}, "full_name": {"Ada Lovelace"},
		"email": {"ada@example.com"}, "password": {"analytical engine"}}, nil)
	if p.Status != http.StatusOK || p.URL != "/" {
		t.Fatalf("registration: got %d at %s, want 200 at /", p.Status, p.URL)
	}
	if !strings.Contains(p.TestID("flash"), "Welcome") || p.Count("nav-orders") != 1 {
		t.Errorf("registration: flash %q, orders link %d; want a welcome and a logged-in nav", p.TestID("flash"), p.Count("nav-orders"))
	}
	// The same username again is taken.
	other := s.newBrowser(t)
	p = other.Post("/register", url.Values{"username": {"ada"}, "full_name": {"Ada"}, "email": {"a@example.com"},
		"password": {"another password"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("error-username") == "" {
		t.Errorf("duplicate username: got %d, message %q; want 422 with a message", p.Status, p.TestID("error-username"))
	}

	// Search: a word of the description, any case; nothing found; a query without words.
	p = b.Get("/search?q=GALVANISED")
	if p.Status != http.StatusOK || !strings.Contains(p.TestID("product"), "Watering can") {
		t.Errorf("search galvanised: got %d with %q, want 200 with Watering can", p.Status, p.TestID("product"))
	}
	if p = b.Get("/search?q=porcelain"); p.Status != http.StatusOK || p.Count("no-results") != 1 {
		t.Errorf("search porcelain: got %d, %d no-results, want 200 and a no-results message", p.Status, p.Count("no-results"))
	}
	if p = b.Get("/search?q=%21%21"); p.Status != http.StatusUnprocessableEntity || p.TestID("search-problem") == "" {
		t.Errorf("search !!: got %d with problem %q, want 422 and why", p.Status, p.TestID("search-problem"))
	}

	// Category, sorted by price, and product.
	if p = b.Get("/categories/" + s.Category + "?sort=price"); p.Count("sort-name") != 1 || !strings.Contains(p.TestID("product"), "Watering can") {
		t.Errorf("category by price: got %d with %q, want a link back to by name and Watering can", p.Count("sort-name"), p.TestID("product"))
	}
	p = b.Get("/categories/" + s.Category)
	if got := p.TestID("product"); !strings.Contains(got, "Watering can") {
		t.Errorf("category: product got %q, want Watering can", got)
	}
	p = b.Get("/products/" + s.Product)
	if p.TestID("product-name") != "Watering can" || p.TestID("product-price") != "€24.99" || p.Count("order-form") != 1 {
		t.Errorf("product: got name %q price %q order form %d, want Watering can, €24.99, 1",
			p.TestID("product-name"), p.TestID("product-price"), p.Count("order-form"))
	}
	if p = b.Get("/products/nosuchproduct"); p.Status != http.StatusNotFound || p.Count("error-404") != 1 {
		t.Errorf("unknown product: got %d, want the 404 page", p.Status)
	}

	// Profile: credit shown, change saved, invalid change refused.
	p = b.Get("/profile")
	if p.TestID("credit") != "€1,000.00" {
		t.Errorf("profile: credit got %q, want €1,000.00", p.TestID("credit"))
	}
	version := p.Doc.Find(`input[name="version"]`).AttrOr("value", "")
	p = b.Post("/profile", url.Values{"full_name": {"Ada King"}, "email": {"ada@example.com"}, "version": {version}}, nil)
	if p.URL != "/profile" || p.Doc.Find(`input[name="full_name"]`).AttrOr("value", "") != "Ada King" {
		t.Errorf("profile change: got %s with name %q, want /profile with Ada King", p.URL,
			p.Doc.Find(`input[name="full_name"]`).AttrOr("value", ""))
	}
	p = b.Post("/profile", url.Values{"full_name": {"Ada King"}, "email": {"not an email"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("error-email") == "" {
		t.Errorf("invalid profile: got %d, message %q; want 422 with a message", p.Status, p.TestID("error-email"))
	}

	// Ordering: too many is refused, one is placed and approved, then invoiced.
	p = b.Post("/products/"+s.Product+"/order", url.Values{"quantity": {"0"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("error-quantity") == "" {
		t.Errorf("quantity 0: got %d, message %q; want 422 with a message", p.Status, p.TestID("error-quantity"))
	}
	p = b.Post("/products/"+s.Product+"/order", url.Values{"quantity": {"2"}}, nil)
	if !strings.HasPrefix(p.URL, "/orders/") || p.Count("timeline-step") < 1 {
		t.Fatalf("order: got %d at %s with %d steps, want its page with a timeline", p.Status, p.URL, p.Count("timeline-step"))
	}
	orderURL := p.URL
	// The saga approves it (the shop has stock and the customer credit), and the
	// accounting service invoices it.
	testenv.Eventually(t, 20*time.Second, "order decided", func() bool {
		p = b.Get(orderURL)
		return p.TestID("order-status") != "pending"
	})
	status := p.TestID("order-status")
	if status != "approved" {
		t.Fatalf("order status got %q (reason %q), want approved", status, p.TestID("order-reason"))
	}
	var inv page
	testenv.Eventually(t, 20*time.Second, "invoice issued", func() bool {
		inv = b.Get(orderURL + "/invoice")
		return inv.Count("invoice") == 1
	})
	if got := inv.TestID("invoice-total"); got != "Total: €49.98" {
		t.Errorf("invoice total got %q, want Total: €49.98", got)
	}
	p = b.Get("/orders")
	if p.Count("order-row") != 1 || p.TestID("order-status") != status {
		t.Errorf("my orders: got %d rows, status %q; want 1 %s", p.Count("order-row"), p.TestID("order-status"), status)
	}
	if p.Count("page-first") != 0 || p.Count("page-next") != 0 {
		t.Errorf("my orders, all on one page: got a pager (first %d, next %d), want none", p.Count("page-first"), p.Count("page-next"))
	}
	// The page after the only order is empty and links back to the first; an after that
	// is no order id is a page that does not exist.
	p = b.Get("/orders?after=" + strings.TrimPrefix(orderURL, "/orders/"))
	if p.Status != http.StatusOK || p.Count("order-row") != 0 || p.TestID("no-orders") != "No older orders." || p.Count("page-first") != 1 {
		t.Errorf("the page after the only order: got %d with %d rows, %q, first-page links %d; want 200, 0 rows, No older orders., 1",
			p.Status, p.Count("order-row"), p.TestID("no-orders"), p.Count("page-first"))
	}
	if p = b.Get("/orders?after=not-an-order"); p.Status != http.StatusNotFound {
		t.Errorf("orders after a malformed id: got %d, want 404", p.Status)
	}
	if p = other.Get(orderURL); p.URL != "/login?next="+url.QueryEscape(orderURL) {
		t.Errorf("a visitor's order page: got %s, want the log-in page", p.URL)
	}

	// Log out, log in with a wrong and then the right password (back to next).
	p = b.Post("/logout", url.Values{}, nil)
	if p.URL != "/" || p.Count("nav-login") != 1 {
		t.Errorf("log out: got %s, want / with a log-in link", p.URL)
	}
	p = b.Post("/login", url.Values{"username": {"ada"}, "password": {"wrong password"}, "next": {"/orders"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("form-error") != "Wrong username or password." {
		t.Errorf("wrong password: got %d %q, want 422 Wrong username or password.", p.Status, p.TestID("form-error"))
	}
	p = b.Post("/login", url.Values{"username": {"ada"}, "password": {"analytical engine"}, "next": {"/orders"}}, nil)
	if p.URL != "/orders" || p.Count("order-row") != 1 {
		t.Errorf("log in: got %s with %d orders, want /orders with 1", p.URL, p.Count("order-row"))
	}
	p = b.Post("/login", url.Values{"username": {"admin"}, "password": {"admin password 1"}}, nil)
	if p.Status != http.StatusUnprocessableEntity {
		t.Errorf("a manager logging in: got %d, want 422", p.Status)
	}
}

// testPasswordChange: the profile's password change needs the current password; it keeps
// the browser that made it logged in and logs out the user's other browser.
func testPasswordChange(t *testing.T, s *site) {
	changer, other := s.newBrowser(t), s.newBrowser(t)
	changer.Post("/register", url.Values{"username": {"hopper"}, "full_name": {"Grace Hopper"},
		"email": {"grace@example.com"}, "password": {"first password"}}, nil)
	if p := other.Post("/login", url.Values{"username": {"hopper"}, "password": {"first password"}}, nil); p.Count("nav-orders") != 1 {
		t.Fatalf("the other browser logs in: got %d at %s, want a logged-in page", p.Status, p.URL)
	}
	form := func(current string) url.Values {
		return url.Values{"full_name": {"Grace Hopper"}, "email": {"grace@example.com"}, "password": {"second password"},
			"current_password": {current}}
	}
	p := changer.Post("/profile", form("not my password"), nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("error-current_password") == "" {
		t.Errorf("a wrong current password: got %d, message %q; want 422 with a message", p.Status, p.TestID("error-current_password"))
	}
	if p = other.Get("/profile"); p.URL != "/profile" {
		t.Fatalf("after a refused change the other browser is at %s, want still logged in at /profile", p.URL)
	}
	p = changer.Post("/profile", form("first password"), nil)
	if p.URL != "/profile" || !strings.Contains(p.TestID("flash"), "other sessions are logged out") {
		t.Errorf("password change: got %d at %s, flash %q; want /profile saying the other sessions are logged out", p.Status, p.URL, p.TestID("flash"))
	}
	if p = changer.Get("/profile"); p.URL != "/profile" {
		t.Errorf("the changing browser after the change: got %s, want still logged in at /profile", p.URL)
	}
	p = other.Get("/profile")
	if !strings.HasPrefix(p.URL, "/login") || !strings.Contains(p.TestID("flash"), "password was changed") {
		t.Errorf("the other browser after the change: got %s, flash %q; want the log-in page saying why", p.URL, p.TestID("flash"))
	}
	if p = other.Post("/login", url.Values{"username": {"hopper"}, "password": {"first password"}}, nil); p.Status != http.StatusUnprocessableEntity {
		t.Errorf("the old password: got %d, want 422", p.Status)
	}
	if p = other.Post("/login", url.Values{"username": {"hopper"}, "password": {"second password"}, "next": {"/profile"}}, nil); p.URL != "/profile" {
		t.Errorf("the new password: got %d at %s, want /profile", p.Status, p.URL)
	}
}

// testTooManyLogins: after a few wrong passwords for one account from one browser, the
// log-in form says to wait, with 429, even for the right password.
func testTooManyLogins(t *testing.T, s *site) {
	b := s.newBrowser(t)
	b.Post("/register", url.Values{"username": {"lovelace"}, "full_name": {"Ada"}, "email": {"lovelace@example.com"},
		"password": {"right password"}}, nil)
	b.Post("/logout", url.Values{}, nil)
	var p page
	for i := range 6 {
		p = b.Post("/login", url.Values{"username": {"lovelace"}, "password": {fmt.Sprintf("wrong password %d", i)}}, nil)
	}
	p = b.Post("/login", url.Values{"username": {"lovelace"}, "password": {"right password"}}, nil)
	if p.Status != http.StatusTooManyRequests || !strings.Contains(p.TestID("form-error"), "Too many attempts") ||
		!strings.Contains(p.TestID("form-error"), "seconds") {
		t.Errorf("the right password after 6 wrong ones: got %d %q, want 429 saying how long to wait", p.Status, p.TestID("form-error"))
	}
}

func testCrossOrigin(t *testing.T, s *site) {
	b := s.newBrowser(t)
	for _, h := range []http.Header{
		{"Origin": {"http://evil.example"}},
		{"Sec-Fetch-Site": {"cross-site"}},
	} {
		p := b.Post("/login", url.Values{"username": {"ada"}, "password": {"analytical engine"}}, h)
		if p.Status != http.StatusForbidden || p.Count("error-403") != 1 {
			t.Errorf("POST /login with %v: got %d, want the 403 page", h, p.Status)
		}
	}
	// The same origin passes.
	p := b.Post("/login", url.Values{"username": {"ada"}, "password": {"analytical engine"}},
		http.Header{"Origin": {s.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if p.Status != http.StatusOK || p.URL != "/" {
		t.Errorf("same-origin POST /login: got %d at %s, want 200 at /", p.Status, p.URL)
	}
}

// testReorder: an order the customer's credit does not cover is rejected, and its
// products go back into the cart with one button.
func testReorder(t *testing.T, s *site) {
	b := s.newBrowser(t)
	b.Post("/register", url.Values{"username": {"ida"}, "full_name": {"Ida"}, "email": {"ida@example.com"},
		"password": {"a long password"}}, nil)
	p := b.Post("/products/"+s.Product+"/order", url.Values{"quantity": {"41"}}, nil) // €1024.59 > €1000 of credit
	id, ok := strings.CutPrefix(p.URL, "/orders/")
	if !ok {
		t.Fatalf("order 41 watering cans: got %d at %s, want the order's page", p.Status, p.URL)
	}
	testenv.Eventually(t, 15*time.Second, "the order is rejected", func() bool {
		return b.Get("/orders/"+id).Count("reorder") == 1
	})
	p = b.Post("/orders/"+id+"/reorder", nil, nil)
	if p.URL != "/cart" || p.Count("cart-line") != 1 || p.Value("quantity") != "41" {
		t.Errorf("reorder: got %d at %s with %d lines (quantity %q), want the cart with 41 watering cans",
			p.Status, p.URL, p.Count("cart-line"), p.Value("quantity"))
	}
	for _, id := range []string{s.Product} {
		b.Post("/cart/lines/"+id+"/remove", nil, nil)
	}
	if p := b.Get("/cart"); p.Count("cart-empty") != 1 {
		t.Errorf("after removing the line the cart is not empty")
	}
}

// testLive follows /events of two customers while one of them orders: the buyer gets the
// order's updates up to its decision, the other customer nothing about it.
func testLive(t *testing.T, s *site) {
	buyer, bystander := s.newBrowser(t), s.newBrowser(t)
	for i, b := range []*browser{buyer, bystander} {
		name := []string{"grace", "alan"}[i]
		b.Post("/register", url.Values{"username": {name}, "full_name": {name}, "email": {name + "@example.com"},
			"password": {"a long password"}}, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buyerEvents := buyer.Events(ctx, "/events")
	bystanderEvents := bystander.Events(ctx, "/events")

	p := buyer.Post("/products/"+s.Product+"/order", url.Values{"quantity": {"1"}}, nil)
	id := strings.TrimPrefix(p.URL, "/orders/")
	for {
		select {
		case ev := <-buyerEvents:
			if ev.Name == "order-detail-"+id && strings.Contains(ev.Data, "status-approved") {
				select {
				case ev := <-bystanderEvents:
					t.Errorf("the other customer got event %q, want none", ev.Name)
				default:
				}
				return
			}
		case ev := <-bystanderEvents:
			t.Errorf("the other customer got event %q, want none", ev.Name)
		case <-ctx.Done():
			t.Fatalf("no update of order %s with its decision over SSE within 30 s", id)
		}
	}
}

// testBrowser registers, logs in, browses a category and opens a product in headless
// Chromium, and saves full-page screenshots into docs/screenshots.
func testBrowser(t *testing.T, s *site) {
	c := webtest.StartChromium(t, 60*time.Second, filepath.Join("..", "docs", "screenshots"), "")
	ctx, step, shot, tid := c.Ctx, c.Step, c.Shot, webtest.TestID

	step("open the registration", chromedp.Navigate(s.URL+"/register"), chromedp.WaitVisible(tid("register-form")))
	step("fill in the registration",
		chromedp.SendKeys(chromedp.ID("f-username"), "margaret"),
		chromedp.SendKeys(chromedp.ID("f-full_name"), "Margaret Hamilton"),
		chromedp.SendKeys(chromedp.ID("f-email"), "margaret@example.com"),
		chromedp.SendKeys(chromedp.ID("f-password"), "apollo eleven"))
	shot("register")
	step("register", chromedp.Click(tid("register-button")), chromedp.WaitVisible(tid("nav-orders")))
	step("log out", chromedp.Click(tid("logout")), chromedp.WaitVisible(tid("nav-login")))
	step("open the log-in page", chromedp.Click(tid("nav-login")), chromedp.WaitVisible(tid("login-form")))
	step("log in",
		chromedp.SendKeys(chromedp.ID("f-username"), "margaret"),
		chromedp.SendKeys(chromedp.ID("f-password"), "apollo eleven"),
		chromedp.Click(tid("login-button")), chromedp.WaitVisible(tid("nav-orders")),
		chromedp.WaitVisible(tid("categories")))
	shot("home")
	step("search by a word of the description",
		chromedp.SendKeys(tid("search-input"), "galvanised"),
		chromedp.Click(tid("search-button")),
		// The home page lists products too: wait for the results page (the body is boosted).
		chromedp.Poll[chromedp.Void](`location.pathname === "/search" && document.querySelector('[data-testid="product"]')`))
	if found, err := chromedp.Run(ctx, chromedp.Text(tid("product"))); err != nil || !strings.Contains(found, "Watering can") {
		t.Errorf("search galvanised: got %q (%v), want Watering can", found, err)
	}
	shot("search")
	step("back home", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(tid("categories")))
	step("browse the category", chromedp.Click(chromedp.CSS(`[data-testid="category"] a`)), chromedp.WaitVisible(tid("products")))
	shot("category")
	step("open the product", chromedp.Click(chromedp.CSS(`[data-testid="product"] a`)), chromedp.WaitVisible(tid("order-form")))
	name, err := chromedp.Run(ctx, chromedp.Text(tid("product-name")))
	if err != nil || name != "Watering can" {
		t.Errorf("product page: got name %q (%v), want Watering can", name, err)
	}
	if width := c.WaitImageLoaded(`img[data-testid="product-image"]`); width != 1200 {
		t.Errorf("product page: the picture is %d px wide, want 1200", width)
	}
	shot("product")
	step("order 2 units",
		chromedp.SetValue(chromedp.ID("f-quantity"), "2"),
		chromedp.Click(tid("order-button")), chromedp.WaitVisible(tid("order-detail")))
	// The page updates itself over SSE: the order turns from pending to approved without
	// a reload.
	step("see the order approved live", chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-detail"] .status-approved`)))
	shot("order")
	step("open the invoice", chromedp.WaitVisible(tid("invoice-link")), chromedp.Click(tid("invoice-link")),
		chromedp.WaitVisible(tid("invoice-total")))
	total, err := chromedp.Run(ctx, chromedp.Text(tid("invoice-total")))
	if err != nil || total != "Total: €49.98" {
		t.Errorf("invoice: got total %q (%v), want Total: €49.98", total, err)
	}
	shot("invoice")

	// The cart: two products, a quantity changed, one order of both lines through the
	// saga, approved live, and its invoice with both lines.
	var rake struct{ ID string }
	s.MustAPI(http.MethodPost, "/product/products", s.ManagerToken, map[string]any{"name": "Rake",
		"description": "Ash handle.", "supplier": "Acme", "category_id": s.Category,
		"price_cents": 1250, "units_in_stock": 20}, &rake)
	step("put the watering can in the cart", chromedp.Navigate(s.URL+"/products/"+s.Product), chromedp.WaitVisible(tid("order-form")),
		chromedp.SetValue(chromedp.ID("f-quantity"), "1"), chromedp.Click(tid("add-to-cart")), chromedp.WaitVisible(tid("cart")))
	step("put two rakes in the cart", chromedp.Navigate(s.URL+"/products/"+rake.ID), chromedp.WaitVisible(tid("order-form")),
		chromedp.SetValue(chromedp.ID("f-quantity"), "2"), chromedp.Click(tid("add-to-cart")), chromedp.WaitVisible(tid("cart")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="cart-line"]').length`)); err != nil || n != 2 {
		t.Errorf("cart: got %d lines (%v), want 2", n, err)
	}
	step("change the watering cans to 3",
		chromedp.SetValue(chromedp.ID("q-"+s.Product), "3"),
		// The mark goes with the table that the answer replaces (the body is boosted).
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="cart"]').dataset.old = "yes"`),
		chromedp.Click(chromedp.CSS(`[data-product-id="`+s.Product+`"] [data-testid="cart-update"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid="cart"]:not([data-old])')`))
	if total, err := chromedp.Run(ctx, chromedp.Text(tid("cart-total"))); err != nil || total != "Total: €99.97" {
		t.Errorf("cart: got %q (%v), want Total: €99.97 (3 × €24.99 + 2 × €12.50)", total, err)
	}
	if label, err := chromedp.Run(ctx, chromedp.Text(tid("nav-cart"))); err != nil || label != "Cart (5)" {
		t.Errorf("cart link: got %q (%v), want Cart (5)", label, err)
	}
	shot("cart")
	step("check out", chromedp.Click(tid("checkout")), chromedp.WaitVisible(tid("order-detail")))
	step("see the order of two lines approved live",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-detail"] .status-approved`)))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="order-lines"] [data-testid="line"]').length`)); err != nil || n != 2 {
		t.Errorf("order page: got %d lines (%v), want 2", n, err)
	}
	step("open its invoice", chromedp.WaitVisible(tid("invoice-link")), chromedp.Click(tid("invoice-link")),
		chromedp.WaitVisible(tid("invoice-total")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="invoice-lines"] [data-testid="line"]').length`)); err != nil || n != 2 {
		t.Errorf("invoice: got %d lines (%v), want 2", n, err)
	}
	if total, err := chromedp.Run(ctx, chromedp.Text(tid("invoice-total"))); err != nil || total != "Total: €99.97" {
		t.Errorf("invoice: got total %q (%v), want Total: €99.97", total, err)
	}
	if label, err := chromedp.Run(ctx, chromedp.Text(tid("nav-cart"))); err != nil || label != "Cart" {
		t.Errorf("cart link after checkout: got %q (%v), want Cart (empty)", label, err)
	}
	shot("invoice-two-lines")
	step("open the profile", chromedp.Click(tid("nav-profile")), chromedp.WaitVisible(tid("profile-form")))
	step("change the name",
		chromedp.SetValue(chromedp.ID("f-full_name"), "Margaret H. Hamilton"),
		chromedp.Click(tid("profile-save")), chromedp.WaitVisible(tid("profile-form")))
	fullName, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("f-full_name")))
	if err != nil || fullName != "Margaret H. Hamilton" {
		t.Errorf("profile after saving: got name %q (%v), want Margaret H. Hamilton", fullName, err)
	}
	shot("profile")
	step("on a phone", chromedp.EmulateViewport(360, 740), chromedp.Navigate(s.URL+"/orders"), chromedp.WaitVisible(tid("orders")))
	shot("phone-orders")
	if width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || width > 360 {
		t.Errorf("on a 360 px screen the page is %d px wide (%v): it scrolls sideways", width, err)
	}
	step("log out", chromedp.Click(tid("logout")), chromedp.WaitVisible(tid("nav-login")))
}
