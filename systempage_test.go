package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web/webtest"
)

// The admin site's system page in a shop whose components all run in this process (so
// its registry has every one): after an approved and a rejected order, each panel shows
// real figures from the samples, the panels come alone as the fragment htmx polls, and
// neither has an inline script (the site's CSP allows none). In Chromium the panels are
// swapped for newer ones as htmx polls; it saves docs/screenshots/admin-system.png.
func TestSystemPageAfterOrders(t *testing.T) {
	t.Parallel()
	s := startInProcess(t)
	site := s.urls[registry.Admin]

	// Anonymous: sent to log in.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := noRedirect.Get(site + "/system"); err != nil || resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("GET /system without a session: got %v %v, want 303 to /login", resp, err)
	}

	customer := s.customer("system_alice")
	var approved, rejected struct{ ID string }
	s.must(http.StatusAccepted, http.MethodPost, "/order/orders", customer, map[string]any{"product_id": s.product, "quantity": 2}, &approved)
	s.must(http.StatusAccepted, http.MethodPost, "/order/orders", customer, map[string]any{"product_id": s.product, "quantity": 500}, &rejected)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(site+"/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get := func(fragment bool) (*goquery.Document, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site+"/system", nil)
		if fragment {
			req.Header.Set("HX-Request", "true")
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /system (fragment %v): got %d, want 200", fragment, resp.StatusCode)
		}
		if !resp.Uncompressed { // net/http asked for gzip and unpacked it
			t.Errorf("GET /system (fragment %v): not gzipped, want it compressed", fragment)
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		return doc, string(body)
	}
	tid := func(id string) string { return `[data-testid="` + id + `"]` }
	outcome := func(doc *goquery.Document, name string) int {
		n := -1
		doc.Find(tid("outcome-row")).Each(func(_ int, row *goquery.Selection) {
			if strings.TrimSpace(row.Find(tid("outcome")).Text()) == name {
				n, _ = strconv.Atoi(row.Find(tid("outcome-total")).Text())
			}
		})
		return n
	}
	// The sampler takes a sample every 2 s, and a rate needs two: keep requests coming
	// (an order's page: gateway and order) until the page has figures for every panel.
	var doc *goquery.Document
	var body string
	t.Cleanup(func() {
		if t.Failed() && doc != nil {
			t.Logf("the last panels' tables:\n%s", strings.Join(strings.Fields(doc.Find("table").Text()), " "))
		}
	})
	testenv.Eventually(t, 30*time.Second, "the system page shows both orders decided, rates and positions", func() bool {
		time.Sleep(200 * time.Millisecond) // a sample comes every 2 s
		s.api(http.MethodGet, "/order/orders/"+approved.ID, customer, nil, nil)
		doc, body = get(true)
		figures := true
		doc.Find(tid("http-row")).Each(func(_ int, row *goquery.Selection) {
			if name := strings.TrimSpace(row.Find("td").First().Text()); name == registry.Gateway || name == registry.Order {
				figures = figures && row.Find(tid("http-p99")).Text() != "no data"
			}
		})
		doc.Find(tid("sub-position")).Each(func(_ int, p *goquery.Selection) { figures = figures && p.Text() != "0" })
		return figures && doc.Find(tid("http-row")).Length() > 0 && outcome(doc, "approved") >= 1 && outcome(doc, "rejected") >= 1 &&
			doc.Find(tid("bar")).Length() > 0
	})

	// The fragment: the panels alone, polling again.
	if strings.Contains(body, "<html") || doc.Find(tid("nav")).Length() != 0 {
		t.Errorf("the fragment holds the whole page, want the panels alone")
	}
	panels := doc.Find("#system-panels")
	if panels.AttrOr("hx-get", "") != "/system" || panels.AttrOr("hx-trigger", "") != "every 2s" || panels.AttrOr("hx-swap", "") != "outerHTML" {
		t.Errorf("panels: hx-get %q hx-trigger %q hx-swap %q, want /system, every 2s, outerHTML",
			panels.AttrOr("hx-get", ""), panels.AttrOr("hx-trigger", ""), panels.AttrOr("hx-swap", ""))
	}

	// Requests: a rate and a p99 for the components the orders went through.
	rows := map[string][2]string{}
	doc.Find(tid("http-row")).Each(func(_ int, row *goquery.Selection) {
		rows[strings.TrimSpace(row.Find("td").First().Text())] = [2]string{row.Find(tid("http-rate")).Text(), row.Find(tid("http-p99")).Text()}
	})
	for _, c := range []string{registry.Gateway, registry.Order, registry.EventStore} {
		r, ok := rows[c]
		switch {
		case !ok:
			t.Errorf("requests table: no row for %s (got %v)", c, rows)
		case !strings.HasSuffix(r[0], "/s") || r[1] == "no data" || r[1] == "":
			t.Errorf("requests table, %s: rate %q p99 %q, want figures", c, r[0], r[1])
		}
	}
	for _, chart := range []string{"chart-rate", "chart-p99", "chart-lag", "chart-orders"} {
		c := doc.Find(tid(chart))
		if c.Find("svg polyline, svg circle").Length() == 0 || c.Find(tid("legend-item")).Length() == 0 {
			t.Errorf("%s: no line or no legend, want the plot drawn (%q)", chart, c.Find(tid("no-data")).Text())
		}
	}

	// Subscriptions: every read model, at a position past the orders' events.
	subs := map[string]string{}
	doc.Find(tid("sub-row")).Each(func(_ int, row *goquery.Selection) {
		subs[strings.TrimSpace(row.Find("td").First().Text())] = row.Find(tid("sub-position")).Text()
	})
	for _, c := range registry.Subscribers() {
		if p, err := strconv.Atoi(subs[c]); err != nil || p <= 0 {
			t.Errorf("subscriptions: %s at %q, want a position > 0 (got %v)", c, subs[c], subs)
		}
	}

	// Dead letters: every consumer's queues, none dead-lettered.
	dead := doc.Find(tid("dead-row"))
	if dead.Length() < len(registry.Subscribers()) {
		t.Errorf("dead letters: %d rows, want one per consumer's queue at least (%d)", dead.Length(), len(registry.Subscribers()))
	}
	dead.Each(func(_ int, row *goquery.Selection) {
		if got := row.Find(tid("dead-total")).Text(); got != "0" {
			t.Errorf("dead letters of %s: got %q, want 0", row.Find("td").First().Text(), got)
		}
	})
	if doc.Find(tid("chart-dead")+" svg polyline").Length() == 0 {
		t.Errorf("dead-letter plot: no line, want a flat one at 0")
	}

	// Orders and the saga's histogram.
	if got := outcome(doc, "timed out"); got != 0 {
		t.Errorf("timed out orders: got %d, want 0", got)
	}
	if summary := doc.Find(tid("saga-summary")).Text(); !strings.Contains(summary, "p99") {
		t.Errorf("saga summary: got %q, want its p50 and p99", summary)
	}

	// The whole page: in the admin layout, linked from the nav, with no inline script.
	doc, body = get(false)
	if doc.Find(tid("nav-system")).Length() != 1 || doc.Find("#system-panels").Length() != 1 {
		t.Errorf("the page: nav-system %d, panels %d, want both once", doc.Find(tid("nav-system")).Length(), doc.Find("#system-panels").Length())
	}
	doc.Find("script").Each(func(_ int, sc *goquery.Selection) {
		if _, ok := sc.Attr("src"); !ok {
			t.Errorf("an inline script: %q, want none", sc.Text())
		}
	})
	for _, attr := range []string{"onclick", "onload", "hx-on"} {
		if strings.Contains(body, attr) {
			t.Errorf("the page has %s, want no inline handler", attr)
		}
	}

	// In a browser: the panels are swapped in again every 2 s (the sample's time moves),
	// and they fit a phone's width.
	c := webtest.StartChromium(t, 60*time.Second, filepath.Join("docs", "screenshots"), "admin-")
	step := c.Step
	step("log in", chromedp.Navigate(site+"/login"), chromedp.WaitVisible(webtest.TestID("login-form")),
		chromedp.SendKeys(chromedp.ID("f-username"), "admin"), chromedp.SendKeys(chromedp.ID("f-password"), adminPassword),
		chromedp.Click(webtest.TestID("login-button")), chromedp.WaitVisible(webtest.TestID("revenue")))
	step("open the system page", chromedp.Click(webtest.TestID("nav-system")), chromedp.WaitVisible(webtest.TestID("chart-saga")))
	first, err := chromedp.Run(c.Ctx, chromedp.Text(webtest.TestID("system-taken")))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "the panels are swapped for a newer sample", func() bool {
		time.Sleep(200 * time.Millisecond)
		now, err := chromedp.Run(c.Ctx, chromedp.Text(webtest.TestID("system-taken")))
		return err == nil && now != first
	})
	c.Shot("system")
	step("on a phone", chromedp.EmulateViewport(360, 740), chromedp.Navigate(site+"/system"), chromedp.WaitVisible(webtest.TestID("chart-rate")))
	if width, err := chromedp.Run(c.Ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || width > 360 {
		t.Errorf("on a 360 px screen the system page is %d px wide (%v): it scrolls sideways", width, err)
	}
}
