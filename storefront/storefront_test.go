package storefront_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/msdemo/msdemo/internal/testenv"
)

// TestStorefront drives the storefront in a whole shop: every form as a plain HTTP POST
// with the session cookie (a browser without JavaScript), CSRF, live order updates over
// SSE, and one real browser run that also takes the README's screenshots.
func TestStorefront(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ, PostgreSQL and Redis; skipped with -short")
	}
	s := startShop(t)
	t.Run("forms without JavaScript", func(t *testing.T) { testForms(t, s) })
	t.Run("cross-origin POST refused", func(t *testing.T) { testCrossOrigin(t, s) })
	t.Run("live order updates", func(t *testing.T) { testLive(t, s) })
	t.Run("browser", func(t *testing.T) { testBrowser(t, s) })
}

func testForms(t *testing.T, s *shop) {
	b := s.newBrowser()
	b.t = t

	home := b.get("/")
	if got := home.testID("category"); got != "Garden" {
		t.Errorf("home: category got %q, want Garden", got)
	}
	if home.count("nav-login") != 1 {
		t.Errorf("home: a visitor's nav has no log-in link")
	}

	// Invalid registration: the form again, with the API's messages.
	p := b.post("/register", url.Values{"username": {"x"}, "full_name": {""}, "email": {"nope"}, "password": {"short"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.count("register-form") != 1 {
		t.Fatalf("invalid registration: got %d (form %d), want 422 with the form", p.Status, p.count("register-form"))
	}
	for _, f := range []string{"email", "password"} {
		if p.testID("error-"+f) == "" {
			t.Errorf("invalid registration: no message for %s", f)
		}
	}
	if p.Doc.Find(`input[name="email"]`).AttrOr("value", "") != "nope" {
		t.Errorf("invalid registration: the email typed is not kept")
	}

	// Registration logs in and goes home.
	p = b.post("/register", url.Values{"username": {"ada"}, "full_name": {"Ada Lovelace"},
		"email": {"ada@example.com"}, "password": {"analytical engine"}}, nil)
	if p.Status != http.StatusOK || p.URL != "/" {
		t.Fatalf("registration: got %d at %s, want 200 at /", p.Status, p.URL)
	}
	if !strings.Contains(p.testID("flash"), "Welcome") || p.count("nav-orders") != 1 {
		t.Errorf("registration: flash %q, orders link %d; want a welcome and a logged-in nav", p.testID("flash"), p.count("nav-orders"))
	}
	// The same username again is taken.
	other := s.newBrowser()
	p = other.post("/register", url.Values{"username": {"ada"}, "full_name": {"Ada"}, "email": {"a@example.com"},
		"password": {"another password"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.testID("error-username") == "" {
		t.Errorf("duplicate username: got %d, message %q; want 422 with a message", p.Status, p.testID("error-username"))
	}

	// Category and product.
	p = b.get("/categories/" + s.Category)
	if got := p.testID("product"); !strings.Contains(got, "Watering can") {
		t.Errorf("category: product got %q, want Watering can", got)
	}
	p = b.get("/products/" + s.Product)
	if p.testID("product-name") != "Watering can" || p.testID("product-price") != "24.99 €" || p.count("order-form") != 1 {
		t.Errorf("product: got name %q price %q order form %d, want Watering can, 24.99 €, 1",
			p.testID("product-name"), p.testID("product-price"), p.count("order-form"))
	}
	if p = b.get("/products/nosuchproduct"); p.Status != http.StatusNotFound || p.count("error-404") != 1 {
		t.Errorf("unknown product: got %d, want the 404 page", p.Status)
	}

	// Profile: credit shown, change saved, invalid change refused.
	p = b.get("/profile")
	if p.testID("credit") != "1,000.00 €" {
		t.Errorf("profile: credit got %q, want 1,000.00 €", p.testID("credit"))
	}
	version := p.Doc.Find(`input[name="version"]`).AttrOr("value", "")
	p = b.post("/profile", url.Values{"full_name": {"Ada King"}, "email": {"ada@example.com"}, "version": {version}}, nil)
	if p.URL != "/profile" || p.Doc.Find(`input[name="full_name"]`).AttrOr("value", "") != "Ada King" {
		t.Errorf("profile change: got %s with name %q, want /profile with Ada King", p.URL,
			p.Doc.Find(`input[name="full_name"]`).AttrOr("value", ""))
	}
	p = b.post("/profile", url.Values{"full_name": {"Ada King"}, "email": {"not an email"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.testID("error-email") == "" {
		t.Errorf("invalid profile: got %d, message %q; want 422 with a message", p.Status, p.testID("error-email"))
	}

	// Ordering: too many is refused, one is placed and approved, then invoiced.
	p = b.post("/products/"+s.Product+"/order", url.Values{"quantity": {"0"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.testID("error-quantity") == "" {
		t.Errorf("quantity 0: got %d, message %q; want 422 with a message", p.Status, p.testID("error-quantity"))
	}
	p = b.post("/products/"+s.Product+"/order", url.Values{"quantity": {"2"}}, nil)
	if !strings.HasPrefix(p.URL, "/orders/") || p.count("timeline-step") < 1 {
		t.Fatalf("order: got %d at %s with %d steps, want its page with a timeline", p.Status, p.URL, p.count("timeline-step"))
	}
	orderURL := p.URL
	// The saga decides the order: approved when the product and customer services
	// reserve stock and credit, rejected ("timed out") while one of them does not
	// take part yet. Either way the page shows the decision and its reason.
	testenv.Eventually(t, 20*time.Second, "order decided", func() bool {
		p = b.get(orderURL)
		return p.testID("order-status") != "pending"
	})
	status := p.testID("order-status")
	switch status {
	case "approved":
		var inv page
		testenv.Eventually(t, 20*time.Second, "invoice issued", func() bool {
			inv = b.get(orderURL + "/invoice")
			return inv.count("invoice") == 1
		})
		if got := inv.testID("invoice-total"); got != "Total: 49.98 €" {
			t.Errorf("invoice total got %q, want Total: 49.98 €", got)
		}
	case "rejected":
		if p.testID("order-reason") == "" || p.count("invoice-link") != 0 {
			t.Errorf("rejected order: reason %q, invoice links %d; want a reason and no invoice", p.testID("order-reason"), p.count("invoice-link"))
		}
		t.Logf("order rejected (%s): the invoice page was not checked", p.testID("order-reason"))
	default:
		t.Fatalf("order status got %q, want approved or rejected", status)
	}
	p = b.get("/orders")
	if p.count("order-row") != 1 || p.testID("order-status") != status {
		t.Errorf("my orders: got %d rows, status %q; want 1 %s", p.count("order-row"), p.testID("order-status"), status)
	}
	if p = other.get(orderURL); p.URL != "/login?next="+url.QueryEscape(orderURL) {
		t.Errorf("a visitor's order page: got %s, want the log-in page", p.URL)
	}

	// Log out, log in with a wrong and then the right password (back to next).
	p = b.post("/logout", url.Values{}, nil)
	if p.URL != "/" || p.count("nav-login") != 1 {
		t.Errorf("log out: got %s, want / with a log-in link", p.URL)
	}
	p = b.post("/login", url.Values{"username": {"ada"}, "password": {"wrong password"}, "next": {"/orders"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.testID("form-error") != "Wrong username or password." {
		t.Errorf("wrong password: got %d %q, want 422 Wrong username or password.", p.Status, p.testID("form-error"))
	}
	p = b.post("/login", url.Values{"username": {"ada"}, "password": {"analytical engine"}, "next": {"/orders"}}, nil)
	if p.URL != "/orders" || p.count("order-row") != 1 {
		t.Errorf("log in: got %s with %d orders, want /orders with 1", p.URL, p.count("order-row"))
	}
	p = b.post("/login", url.Values{"username": {"admin"}, "password": {"admin password 1"}}, nil)
	if p.Status != http.StatusUnprocessableEntity {
		t.Errorf("a manager logging in: got %d, want 422", p.Status)
	}
}

func testCrossOrigin(t *testing.T, s *shop) {
	b := s.newBrowser()
	b.t = t
	for _, h := range []http.Header{
		{"Origin": {"http://evil.example"}},
		{"Sec-Fetch-Site": {"cross-site"}},
	} {
		p := b.post("/login", url.Values{"username": {"ada"}, "password": {"analytical engine"}}, h)
		if p.Status != http.StatusForbidden || p.count("error-403") != 1 {
			t.Errorf("POST /login with %v: got %d, want the 403 page", h, p.Status)
		}
	}
	// The same origin passes.
	p := b.post("/login", url.Values{"username": {"ada"}, "password": {"analytical engine"}},
		http.Header{"Origin": {s.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if p.Status != http.StatusOK || p.URL != "/" {
		t.Errorf("same-origin POST /login: got %d at %s, want 200 at /", p.Status, p.URL)
	}
}

// testLive follows /events of two customers while one of them orders: the buyer gets the
// order's updates up to its decision, the other customer nothing about it.
func testLive(t *testing.T, s *shop) {
	buyer, bystander := s.newBrowser(), s.newBrowser()
	buyer.t, bystander.t = t, t
	for i, b := range []*browser{buyer, bystander} {
		name := []string{"grace", "alan"}[i]
		b.post("/register", url.Values{"username": {name}, "full_name": {name}, "email": {name + "@example.com"},
			"password": {"a long password"}}, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buyerEvents := openEvents(ctx, t, buyer)
	bystanderEvents := openEvents(ctx, t, bystander)

	p := buyer.post("/products/"+s.Product+"/order", url.Values{"quantity": {"1"}}, nil)
	id := strings.TrimPrefix(p.URL, "/orders/")
	for {
		select {
		case ev := <-buyerEvents:
			if ev.name == "order-detail-"+id && (strings.Contains(ev.data, "status-approved") ||
				strings.Contains(ev.data, "status-rejected")) {
				select {
				case ev := <-bystanderEvents:
					t.Errorf("the other customer got event %q, want none", ev.name)
				default:
				}
				return
			}
		case ev := <-bystanderEvents:
			t.Errorf("the other customer got event %q, want none", ev.name)
		case <-ctx.Done():
			t.Fatalf("no update of order %s with its decision over SSE within 30 s", id)
		}
	}
}

type sseEvent struct{ name, data string }

// openEvents connects b to /events and returns its events (keep-alives skipped).
func openEvents(ctx context.Context, t *testing.T, b *browser) <-chan sseEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/events", nil)
	client := *b.c
	client.Timeout = 0
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /events: got %d %s, want 200 text/event-stream", resp.StatusCode, ct)
	}
	events := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ") + "\n"
			case line == "" && ev.name != "":
				events <- ev
				ev = sseEvent{}
			}
		}
	}()
	return events
}

// testBrowser registers, logs in, browses a category and opens a product in headless
// Chromium, and saves full-page screenshots into docs/screenshots.
func testBrowser(t *testing.T, s *shop) {
	const chromium = "/usr/bin/chromium"
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("Chromium not found at %s: install it with `apt-get install -y chromium`", chromium)
	}
	shots := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1200, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a timeout
		t.Fatalf("start Chromium: %v (install it with `apt-get install -y chromium`)", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	tid := func(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

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
	step("browse the category", chromedp.Click(chromedp.CSS(`[data-testid="category"] a`)), chromedp.WaitVisible(tid("products")))
	shot("category")
	step("open the product", chromedp.Click(chromedp.CSS(`[data-testid="product"] a`)), chromedp.WaitVisible(tid("order-form")))
	name, err := chromedp.Run(ctx, chromedp.Text(tid("product-name")))
	if err != nil || name != "Watering can" {
		t.Errorf("product page: got name %q (%v), want Watering can", name, err)
	}
	shot("product")
	step("order", chromedp.Click(tid("order-button")), chromedp.WaitVisible(tid("order-detail")))
	// The page updates itself over SSE: wait for the decision without reloading.
	step("see the order decided live", chromedp.WaitVisible(chromedp.CSS(
		`[data-testid="order-detail"] .status-approved, [data-testid="order-detail"] .status-rejected`)))
	shot("order")
}
