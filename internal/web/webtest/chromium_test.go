package webtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/msdemo/msdemo/internal/middleware"
	"github.com/msdemo/msdemo/internal/web/webtest"
)

// TestChromiumProblems: the browser harness reports what a page must never do, so that
// the sites' browser tests can fail on it: a script the site's Content-Security-Policy
// refused (inline, in a handler, by eval), and a dialog a script opened.
func TestChromiumProblems(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	page := func(csp bool, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if csp {
				w.Header().Set("Content-Security-Policy", middleware.ContentSecurityPolicy)
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!DOCTYPE html><html><head><title>t</title></head><body>"+body+"<p id=done>done</p></body></html>")
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/clean", page(true, `<p>nothing to see</p>`))
	mux.Handle("/inline", page(true, `<script>document.title = "ran"</script>`))
	mux.Handle("/handler", page(true, `<img src="/nothing.png" onerror="document.title='ran'">`))
	mux.Handle("/style", page(true, `<p style="color: red">red</p>`))
	mux.Handle("/eval", page(true, `<script src="/eval.js"></script>`))
	mux.HandleFunc("/eval.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, `try { eval("1") } catch (e) { console.log("caught") }`)
	})
	mux.Handle("/alert", page(false, `<script>alert("injected")</script>`))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	c := webtest.StartChromium(t, 60*time.Second, t.TempDir(), "")
	for _, tc := range []struct{ path, want string }{
		{"/clean", ""},
		{"/inline", "Content Security Policy"},
		{"/handler", "Content Security Policy"},
		{"/style", "Content Security Policy"},
		{"/eval", "Content Security Policy"},
		{"/alert", "alert dialog"},
	} {
		c.Step("open "+tc.path, chromedp.Navigate(srv.URL+tc.path), chromedp.WaitVisible(chromedp.ID("done")))
		time.Sleep(200 * time.Millisecond) // the events of the page arrive after it shows
		problems := strings.Join(c.Problems(), "\n")
		if tc.want == "" && problems != "" || !strings.Contains(problems, tc.want) {
			t.Errorf("%s: problems %q, want one with %q", tc.path, problems, tc.want)
		}
	}
}
