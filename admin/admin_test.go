package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/msdemo/msdemo/admin"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web"
)

// TestAdmin drives the admin site in a whole shop: who may see it, every form as a plain
// HTTP POST with the session cookie (a browser without JavaScript), conflicts, dead
// letters, the event explorer, live orders over SSE, and one real browser run that also
// takes the README's screenshots.
func TestAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ, PostgreSQL and Redis; skipped with -short")
	}
	s := startSite(t)
	t.Run("only managers", func(t *testing.T) { testAccess(t, s) })
	t.Run("cross-origin POST refused", func(t *testing.T) { testCrossOrigin(t, s) })
	t.Run("catalog forms", func(t *testing.T) { testCatalog(t, s) })
	t.Run("customer credit", func(t *testing.T) { testCredit(t, s) })
	t.Run("dead letters", func(t *testing.T) { testDeadLetters(t, s) })
	t.Run("live orders and explorer", func(t *testing.T) { testOrders(t, s) })
	t.Run("services", func(t *testing.T) { testServices(t, s) })
	t.Run("browser", func(t *testing.T) { testBrowser(t, s) })
	t.Run("product picture form", func(t *testing.T) { testPictureForm(t, s) })
	t.Run("product picture in a browser", func(t *testing.T) { testPictureBrowser(t, s) })
	t.Run("script-ish names stay text", func(t *testing.T) { testScriptishNames(t, s) })
	t.Run("manager login rate-limited", func(t *testing.T) { testLoginLimited(t, s) }) // last: it locks the manager out here
}

// testLoginLimited: after a few wrong passwords for the manager from one address, the
// log-in form says to wait, with 429, even for the right password; a logged-in session
// goes on.
func testLoginLimited(t *testing.T, s *site) {
	mgr, guesser := s.newBrowser(t), s.newBrowser(t)
	if p := mgr.Post("/login", url.Values{"username": {managerName}, "password": {managerPassword}}, nil); p.Status != http.StatusOK {
		t.Fatalf("manager log in: got %d at %s, want 200", p.Status, p.URL)
	}
	for i := range 6 {
		guesser.Post("/login", url.Values{"username": {managerName}, "password": {fmt.Sprintf("guess %d", i)}}, nil)
	}
	p := guesser.Post("/login", url.Values{"username": {managerName}, "password": {managerPassword}}, nil)
	if p.Status != http.StatusTooManyRequests || !strings.Contains(p.TestID("form-error"), "Too many attempts") {
		t.Errorf("the right password after 6 wrong ones: got %d %q, want 429 saying to wait", p.Status, p.TestID("form-error"))
	}
	if p := mgr.Get("/customers"); p.URL != "/customers" {
		t.Errorf("the logged-in manager during the guessing: got %s, want /customers", p.URL)
	}
}

// adminPages are pages that only a manager may open.
var adminPages = []string{"/", "/categories", "/products", "/customers", "/orders", "/eventstore", "/dead-letters", "/services"}

func testAccess(t *testing.T, s *site) {
	// An anonymous visitor is sent to log in, and back afterwards.
	anon := s.newBrowser(t)
	for _, path := range adminPages {
		if p := anon.Get(path); p.URL != "/login?next="+url.QueryEscape(path) || p.Count("login-form") != 1 {
			t.Errorf("anonymous GET %s: got %d at %s, want the log-in page", path, p.Status, p.URL)
		}
	}
	if p := anon.Post("/categories", url.Values{"name": {"Sneaky"}}, nil); !strings.HasPrefix(p.URL, "/login") {
		t.Errorf("anonymous POST /categories: got %d at %s, want the log-in page", p.Status, p.URL)
	}

	// A customer's login is refused, with a message; the session stays anonymous.
	cust := s.newBrowser(t)
	p := cust.Post("/login", url.Values{"username": {customerName}, "password": {customerPass}}, nil)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.TestID("form-error"), "customer account") {
		t.Errorf("customer log in: got %d %q, want 422 saying it is a customer account", p.Status, p.TestID("form-error"))
	}
	if p := cust.Get("/"); !strings.HasPrefix(p.URL, "/login") {
		t.Errorf("after a refused customer login GET /: got %s, want the log-in page", p.URL)
	}
	p = cust.Post("/login", url.Values{"username": {managerName}, "password": {"wrong password"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("form-error") != "Wrong username or password." {
		t.Errorf("wrong password: got %d %q, want 422 Wrong username or password.", p.Status, p.TestID("form-error"))
	}

	// A customer's token put into the session directly is refused too: as a customer by
	// the site's role check, and disguised as a manager (a session only the site's login
	// writes, with the role of the login answer; the site never reads the token) by the
	// API on every page that shows what only a manager may see.
	token := s.customerToken()
	customerSession := s.withSession(t, web.User{Username: customerName, Role: "customer", Token: token, ExpiresAt: time.Now().Add(time.Hour)})
	for _, path := range adminPages {
		if p := customerSession.Get(path); p.Status != http.StatusForbidden || p.Count("error-403") != 1 {
			t.Errorf("customer token as customer: GET %s got %d at %s, want the 403 page", path, p.Status, p.URL)
		}
	}
	disguised := s.withSession(t, web.User{Username: customerName, Role: "manager", Token: token, ExpiresAt: time.Now().Add(time.Hour)})
	for _, path := range []string{"/", "/customers", "/eventstore", "/dead-letters", "/services"} {
		if p := disguised.Get(path); p.Status != http.StatusForbidden || p.Count("error-403") != 1 {
			t.Errorf("customer token as manager: GET %s got %d at %s, want the 403 page", path, p.Status, p.URL)
		}
	}

	// A manager gets in, is sent back to next, and logs out.
	b := s.newBrowser(t)
	p = b.Post("/login", url.Values{"username": {managerName}, "password": {managerPassword}, "next": {"/orders"}}, nil)
	if p.URL != "/orders" || p.Count("orders") != 1 {
		t.Errorf("manager log in with next: got %d at %s, want /orders", p.Status, p.URL)
	}
	p = b.Get("/")
	if p.TestID("revenue-value") == "" || p.Count("count-pending-value") != 1 || p.Count("feed-event") == 0 {
		t.Log(p.Status, p.URL, p.Doc.Find("main").Text())
		t.Errorf("dashboard: revenue %q, pending count %d, feed %d events; want all shown", p.TestID("revenue-value"),
			p.Count("count-pending-value"), p.Count("feed-event"))
	}
	if p = b.Post("/logout", url.Values{}, nil); p.URL != "/login" || p.Count("nav-login") != 1 {
		t.Errorf("log out: got %s, want /login", p.URL)
	}
	if p := b.Get("/nothing-here"); p.Status != http.StatusNotFound || p.Count("error-404") != 1 {
		t.Errorf("unknown page: got %d, want the 404 page", p.Status)
	}
}

// withSession returns a browser whose admin session holds u, written the way the site
// writes it (scs in Redis), without logging in.
func (s *site) withSession(t *testing.T, u web.User) *browser {
	t.Helper()
	ctx := context.Background()
	sessions, err := web.OpenSessions(ctx, web.SessionConfig{RedisURL: s.RedisURL, Prefix: s.SessionPrefix, CookieName: admin.CookieName})
	if err != nil {
		t.Fatal(err)
	}
	defer sessions.Close()
	srv := httptest.NewServer(sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Login(r.Context(), u); err != nil {
			t.Error(err)
		}
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b := s.newBrowser(t)
	base, _ := url.Parse(s.URL)
	b.Client.Jar.SetCookies(base, resp.Cookies())
	if len(resp.Cookies()) == 0 {
		t.Fatal("no session cookie")
	}
	return b
}

func testCrossOrigin(t *testing.T, s *site) {
	b := s.loggedIn(t)
	for _, h := range []http.Header{{"Origin": {"http://evil.example"}}, {"Sec-Fetch-Site": {"cross-site"}}} {
		p := b.Post("/categories", url.Values{"name": {"Evil"}}, h)
		if p.Status != http.StatusForbidden || p.Count("error-403") != 1 {
			t.Errorf("POST /categories with %v: got %d, want the 403 page", h, p.Status)
		}
	}
	if p := b.Get("/categories"); strings.Contains(p.Doc.Text(), "Evil") {
		t.Errorf("a refused cross-origin POST added a category")
	}
	p := b.Post("/categories", url.Values{"name": {"Kitchen"}}, http.Header{"Origin": {s.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if p.URL != "/categories" || !strings.Contains(p.TestID("flash"), "Kitchen") {
		t.Errorf("same-origin POST /categories: got %d at %s (%q), want /categories with a flash", p.Status, p.URL, p.TestID("flash"))
	}
}

func testCatalog(t *testing.T, s *site) {
	b := s.loggedIn(t)

	// Categories: invalid, added, renamed, refused while it has products, deleted.
	p := b.Post("/categories", url.Values{"name": {" "}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("error-name") == "" {
		t.Errorf("empty category name: got %d, message %q; want 422 with a message", p.Status, p.TestID("error-name"))
	}
	p = b.Post("/categories", url.Values{"name": {"Tools"}}, nil)
	if p.URL != "/categories" || !strings.Contains(p.Doc.Find(`[data-testid="categories"]`).Text(), "Tools") {
		t.Fatalf("add category: got %d at %s, want /categories listing Tools", p.Status, p.URL)
	}
	var toolsID, version string
	p.Doc.Find(`[data-testid="category-row"]`).Each(func(_ int, row *goquery.Selection) {
		if strings.TrimSpace(row.Find(`[data-testid="category-name"]`).Text()) == "Tools" {
			action := row.Find(`form`).First().AttrOr("action", "")
			toolsID = strings.TrimPrefix(action, "/categories/")
			version = row.Find(`input[name="version"]`).AttrOr("value", "")
		}
	})
	if toolsID == "" {
		t.Fatal("no rename form for Tools")
	}
	p = b.Post("/categories/"+toolsID, url.Values{"name": {"Garden tools"}, "version": {version}}, nil)
	if p.URL != "/categories" || !strings.Contains(p.Doc.Find(`[data-testid="categories"]`).Text(), "Garden tools") {
		t.Errorf("rename category: got %d at %s, want /categories listing Garden tools", p.Status, p.URL)
	}
	p = b.Post("/categories/"+s.Category+"/delete", url.Values{}, nil)
	if p.Status != http.StatusConflict || !strings.Contains(p.TestID("form-error"), "cannot be deleted") {
		t.Errorf("delete a category with products: got %d %q, want 409 with a message", p.Status, p.TestID("form-error"))
	}
	p = b.Post("/categories/"+toolsID+"/delete", url.Values{}, nil)
	if p.URL != "/categories" || strings.Contains(p.Doc.Find(`[data-testid="categories"]`).Text(), "Garden tools") {
		t.Errorf("delete category: got %d at %s, want /categories without it", p.Status, p.URL)
	}

	// Products: invalid, added, listed, edited, a stale edit is a conflict, deleted.
	p = b.Post("/products", url.Values{"name": {"Rake"}, "category_id": {s.Category}, "price": {"abc"}, "units_in_stock": {"-1"}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("error-price") == "" || p.TestID("error-units_in_stock") == "" {
		t.Errorf("invalid product: got %d, messages %q %q; want 422 with both", p.Status, p.TestID("error-price"), p.TestID("error-units_in_stock"))
	}
	if p.Value("name") != "Rake" {
		t.Errorf("invalid product: name kept %q, want Rake", p.Value("name"))
	}
	p = b.Post("/products", url.Values{"name": {"Rake"}, "category_id": {s.Category}, "price": {"12.50"},
		"units_in_stock": {"7"}, "supplier": {"Acme"}, "description": {"Sturdy."}}, nil)
	if p.URL != "/products" || !strings.Contains(p.Doc.Find(`[data-testid="products"]`).Text(), "€12.50") {
		t.Fatalf("add product: got %d at %s, want /products with Rake at €12.50", p.Status, p.URL)
	}
	edit := b.Get("/products/" + s.Product)
	stale := edit.Value("version")
	if edit.Value("name") != "Watering can" || edit.Value("price") != "24.99" || stale == "" {
		t.Fatalf("edit form: got name %q price %q version %q", edit.Value("name"), edit.Value("price"), stale)
	}
	form := url.Values{"name": {"Watering can XL"}, "category_id": {s.Category}, "price": {"29.99"},
		"units_in_stock": {"40"}, "supplier": {"Acme"}, "description": {"Twelve litres."}, "version": {stale}}
	if p = b.Post("/products/"+s.Product, form, nil); p.URL != "/products" {
		t.Fatalf("edit product: got %d at %s (%q), want /products", p.Status, p.URL, p.TestID("form-error"))
	}
	form.Set("name", "Watering can S") // the same old version again: someone saved meanwhile
	p = b.Post("/products/"+s.Product, form, nil)
	if p.Status != http.StatusConflict || p.Count("conflict") != 1 {
		t.Fatalf("stale edit: got %d with %d conflict messages, want 409 with one", p.Status, p.Count("conflict"))
	}
	if p.Value("name") != "Watering can XL" || p.Value("version") == stale || !strings.Contains(p.TestID("conflict-yours"), "Watering can S") {
		t.Errorf("stale edit: form shows %q version %q, yours %q; want the current values, a new version and what was typed",
			p.Value("name"), p.Value("version"), p.TestID("conflict-yours"))
	}
	var rakeID string
	b.Get("/products").Doc.Find(`[data-testid="product-name"]`).Each(func(_ int, a *goquery.Selection) {
		if strings.TrimSpace(a.Text()) == "Rake" {
			rakeID = strings.TrimPrefix(a.AttrOr("href", ""), "/products/")
		}
	})
	p = b.Post("/products/"+rakeID+"/delete", url.Values{}, nil)
	if p.URL != "/products" || strings.Contains(p.Doc.Find(`[data-testid="products"]`).Text(), "Rake") {
		t.Errorf("delete product: got %d at %s, want /products without Rake", p.Status, p.URL)
	}
	if p := b.Get("/products/nosuchproduct"); p.Status != http.StatusNotFound {
		t.Errorf("unknown product: got %d, want 404", p.Status)
	}
}

func testCredit(t *testing.T, s *site) {
	b := s.loggedIn(t)
	p := b.Get("/customers")
	if !strings.Contains(p.Doc.Find(`[data-testid="customers"]`).Text(), customerName) {
		t.Fatalf("customers: %s not listed: %d %s", customerName, p.Status, p.Doc.Find("main").Text())
	}
	p = b.Get("/customers/" + customerName)
	version := p.Value("version")
	if p.TestID("credit") != "€1,000.00" || version == "" {
		t.Fatalf("customer page: credit %q, version %q; want €1,000.00 and a version", p.TestID("credit"), version)
	}
	p = b.Post("/customers/"+customerName+"/credit", url.Values{"credit": {"lots"}, "version": {version}}, nil)
	if p.Status != http.StatusUnprocessableEntity || p.TestID("error-credit") == "" {
		t.Errorf("invalid credit: got %d %q, want 422 with a message", p.Status, p.TestID("error-credit"))
	}
	p = b.Post("/customers/"+customerName+"/credit", url.Values{"credit": {"250.00"}, "version": {version}}, nil)
	if p.URL != "/customers/"+customerName || p.TestID("credit") != "€250.00" {
		t.Fatalf("set credit: got %d at %s, credit %q; want €250.00", p.Status, p.URL, p.TestID("credit"))
	}
	p = b.Post("/customers/"+customerName+"/credit", url.Values{"credit": {"300"}, "version": {version}}, nil)
	if p.Status != http.StatusConflict || !strings.Contains(p.TestID("form-error"), "changed meanwhile") ||
		p.TestID("credit") != "€250.00" {
		t.Errorf("stale credit: got %d %q, credit %q; want 409, a message and €250.00", p.Status, p.TestID("form-error"), p.TestID("credit"))
	}
}

func testDeadLetters(t *testing.T, s *site) {
	b := s.loggedIn(t)
	// A poison message: not JSON, straight into the accounting service's event queue.
	conn := testenv.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := idgen.New()
	if err := conn.Publish(ctx, "", event.Queue(registry.Accounting), bus.Message{ID: id, Type: event.OrderApproved, Body: []byte("not json")}); err != nil {
		t.Fatalf("publish a poison message: %v", err)
	}
	listed := func() page {
		var p page
		testenv.Eventually(t, 20*time.Second, "dead letter "+id+" listed", func() bool {
			p = b.Get("/dead-letters")
			return p.Doc.Find(`[data-testid="dead-accounting"] [data-id="`+id+`"]`).Length() == 1
		})
		return p
	}
	p := listed()
	for _, svc := range []string{"customer", "product", "order"} {
		if p.Count("dead-"+svc) != 1 {
			t.Errorf("dead letters: no section for %s", svc)
		}
	}
	p = b.Post("/dead-letters/accounting/"+id+"/replay", url.Values{}, nil)
	if p.URL != "/dead-letters" || !strings.Contains(p.TestID("flash"), "replayed") {
		t.Errorf("replay: got %s %q, want /dead-letters with a flash", p.URL, p.TestID("flash"))
	}
	listed() // still not JSON: back again
	p = b.Post("/dead-letters/accounting/replay", url.Values{}, nil)
	if !strings.Contains(p.TestID("flash"), "replayed") {
		t.Errorf("replay all: flash %q, want replayed", p.TestID("flash"))
	}
	listed()
	p = b.Post("/dead-letters/accounting/"+id+"/discard", url.Values{}, nil)
	if p.Doc.Find(`[data-id="`+id+`"]`).Length() != 0 || !strings.Contains(p.TestID("flash"), "discarded") {
		t.Errorf("discard: still listed or no flash (%q)", p.TestID("flash"))
	}
	if p := b.Post("/dead-letters/nosuch/"+id+"/discard", url.Values{}, nil); p.Status != http.StatusNotFound {
		t.Errorf("dead letter of an unknown service: got %d, want 404", p.Status)
	}
}

// testOrders follows /events/orders while a customer orders through the API: the new
// row and its decision arrive live; then the explorer shows the order's stream.
func testOrders(t *testing.T, s *site) {
	b := s.loggedIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := b.Events(ctx, "/events/orders")
	feed := b.Events(ctx, "/events/feed")

	var placed struct{ ID string }
	s.MustAPI(http.MethodPost, "/order/orders", s.customerToken(), map[string]any{"product_id": s.Product, "quantity": 1}, &placed)
	sawNew, sawFeed := false, false
	for decided := false; !decided; {
		select {
		case ev := <-events:
			switch {
			case ev.Name == "order-new" && strings.Contains(ev.Data, placed.ID):
				sawNew = true
			case ev.Name == "order-"+placed.ID && strings.Contains(ev.Data, "status-approved"):
				decided = true
			}
		case ev := <-feed:
			sawFeed = sawFeed || ev.Name == "feed" && strings.Contains(ev.Data, "order-"+placed.ID)
		case <-ctx.Done():
			t.Fatalf("no decision of order %s over SSE within 30 s (new row seen: %v)", placed.ID, sawNew)
		}
	}
	// The new row may come after the decision: an order decided before the site read it
	// is sent as its row's cells, its detail and then the new row, all at once.
	for !sawNew {
		select {
		case ev := <-events:
			sawNew = ev.Name == "order-new" && strings.Contains(ev.Data, placed.ID)
		case <-ctx.Done():
			t.Fatalf("no order-new row for %s", placed.ID)
		}
	}
	for !sawFeed {
		select {
		case ev := <-feed:
			sawFeed = ev.Name == "feed" && strings.Contains(ev.Data, "order-"+placed.ID)
		case <-ctx.Done():
			t.Fatalf("the feed did not show order-%s", placed.ID)
		}
	}

	// The order page's stream starts with the order as it is now, so a decision made
	// between the page's render and the stream's start is not missed.
	select {
	case ev := <-b.Events(ctx, "/events/orders?order="+placed.ID):
		if ev.Name != "order-detail-"+placed.ID || !strings.Contains(ev.Data, "status-approved") {
			t.Errorf("first message of the order page's stream: %q %.80q, want its approved detail", ev.Name, ev.Data)
		}
	case <-ctx.Done():
		t.Fatalf("the order page's stream sent nothing")
	}
	// So does the live list's, with its rows' cells.
	list := b.Events(ctx, "/events/orders")
	for found := false; !found; {
		select {
		case ev := <-list:
			if found = ev.Name == "order-"+placed.ID; found && !strings.Contains(ev.Data, "status-approved") {
				t.Errorf("the list's stream starts with %s as %.80q, want it approved", placed.ID, ev.Data)
			}
		case <-ctx.Done():
			t.Fatalf("the list's stream did not start with %s's row", placed.ID)
		}
	}

	p := b.Get("/orders")
	if p.Doc.Find(`[data-order="`+placed.ID+`"]`).Length() != 1 {
		t.Errorf("orders: %s not listed", placed.ID)
	}
	p = b.Get("/orders/" + placed.ID)
	if p.Count("timeline-step") < 2 || p.TestID("order-status") == "pending" {
		t.Errorf("order page: %d steps, status %q; want a decided order with a timeline", p.Count("timeline-step"), p.TestID("order-status"))
	}

	// The explorer: the feed, the order's stream, one event's JSON.
	if p = b.Get("/eventstore"); p.Count("event-row") == 0 {
		t.Errorf("explorer: no events")
	}
	p = b.Get("/eventstore/streams?stream=order-" + placed.ID)
	if p.URL != "/eventstore/streams/order-"+placed.ID || p.TestID("stream-name") != "order-"+placed.ID || p.TestID("event-type") != "order.placed" {
		t.Fatalf("stream: got %s, name %q, first event %q; want the order's stream starting with order.placed",
			p.URL, p.TestID("stream-name"), p.TestID("event-type"))
	}
	link := p.Doc.Find(`[data-testid="event-link"]`).First().AttrOr("href", "")
	if p = b.Get(link); !strings.Contains(p.TestID("event-json"), `"type": "order.placed"`) {
		t.Errorf("event page %s: JSON %q, want the order.placed event", link, p.TestID("event-json"))
	}
	if p = b.Get("/eventstore/streams/no-such-stream"); p.Status != http.StatusNotFound {
		t.Errorf("unknown stream: got %d, want 404", p.Status)
	}
}

func testServices(t *testing.T, s *site) {
	p := s.loggedIn(t).Get("/services")
	text := p.Doc.Find(`[data-testid="instances"]`).Text()
	for _, svc := range []string{"customer", "product", "order", "accounting"} {
		if !strings.Contains(text, svc) || !strings.Contains(p.TestID("health-"+svc), "up") {
			t.Errorf("services: %s not listed as up (health %q)", svc, p.TestID("health-"+svc))
		}
	}
}
