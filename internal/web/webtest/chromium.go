package webtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/audits"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// Chromium is a headless Chromium (1200×900) driven by one test. Its methods fail T.
//
// It watches the pages for what must never happen on the shop's sites: a JavaScript
// dialog (an alert an injected script opened; it is dismissed), an exception nothing
// caught (htmx failing, e.g. on an eval the Content-Security-Policy refused), a CSP
// violation (a refused inline script, style, handler or eval, reported as a DevTools
// issue), and an error or security entry of the browser's log. Each is a Problem; any left when the test ends fails it.
// Network errors are no problem: an SSE stream cut by a page change or the shop's
// shutdown is expected.
type Chromium struct {
	T   testing.TB
	Ctx context.Context // the browser's context, for chromedp.Run and chromedp.Do
	// Shots is the folder that Shot writes into, ShotPrefix the start of each file name.
	Shots, ShotPrefix string

	mu       sync.Mutex
	problems []string
}

// StartChromium starts Chromium for t; it stops when t ends. Every action must be done
// within timeout of the start (browser start-up not counted). Shot saves full-page
// screenshots as shots/<prefix><name>.png (the folder is created). No Chromium at
// /usr/bin/chromium fails t with how to install it.
func StartChromium(t testing.TB, timeout time.Duration, shots, prefix string) *Chromium {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("Chromium not found at %s: install it with `apt-get install -y chromium`", chromiumPath)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1200, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a timeout
		t.Fatalf("start Chromium: %v (install it with `apt-get install -y chromium`)", err)
	}
	c := &Chromium{T: t, Shots: shots, ShotPrefix: prefix}
	if err := chromedp.Listen(ctx, c.watch(ctx)); err != nil {
		t.Fatalf("watch Chromium's pages: %v", err)
	}
	// The issues of the DevTools' Issues tab: every CSP violation is one, also those the
	// browser's log does not show (an eval that a script caught).
	if _, err := chromedp.Call(ctx, audits.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("watch Chromium's issues: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)
	c.Ctx = ctx
	// Runs first of the cleanups, while the browser is still up.
	t.Cleanup(func() {
		for _, p := range c.Problems() {
			t.Errorf("in the browser: %s", p)
		}
	})
	return c
}

// watch returns the listener of the browser's events that records the problems; ctx is
// the browser's context, to dismiss a dialog with.
func (c *Chromium) watch(ctx context.Context) func(ev any) {
	return func(ev any) {
		var problem string
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			problem = fmt.Sprintf("a JavaScript %s dialog opened on %s: %q", ev.Type, ev.URL, ev.Message)
			// Not from the listener, which must not wait for the browser.
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			problem = fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, d.Text)
			if d.Exception != nil {
				problem += " " + d.Exception.Description
			}
		case *audits.EventIssueAdded:
			d := ev.Issue.Details
			if ev.Issue.Code != audits.InspectorIssueCodeContentSecurityPolicyIssue || d == nil || d.ContentSecurityPolicyIssueDetails == nil {
				return
			}
			csp := d.ContentSecurityPolicyIssueDetails
			problem = fmt.Sprintf("Content Security Policy violated: %s, directive %s", csp.ContentSecurityPolicyViolationType, csp.ViolatedDirective)
			if csp.BlockedURL != "" {
				problem += ", blocked " + csp.BlockedURL
			}
			if loc := csp.SourceCodeLocation; loc != nil {
				problem += fmt.Sprintf(", at %s:%d", loc.URL, loc.LineNumber)
			}
		case *log.EventEntryAdded:
			e := ev.Entry
			if e.Source == log.EntrySourceNetwork || (e.Level != log.EntryLevelError && e.Source != log.EntrySourceSecurity) {
				return
			}
			problem = fmt.Sprintf("browser log (%s, %s) on %s: %s", e.Source, e.Level, e.URL, e.Text)
		default:
			return
		}
		c.mu.Lock()
		c.problems = append(c.problems, problem)
		c.mu.Unlock()
	}
}

// Problems returns the problems seen since the last call, and forgets them.
func (c *Chromium) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.problems
	c.problems = nil
	return p
}

// Step does actions, one after the other; an error fails T with what.
func (c *Chromium) Step(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.T.Helper()
	if err := chromedp.Do(c.Ctx, actions...); err != nil {
		c.T.Fatalf("%s: %v", what, err)
	}
}

// Shot saves a full-page screenshot as Shots/<ShotPrefix><name>.png.
func (c *Chromium) Shot(name string) {
	c.T.Helper()
	png, err := chromedp.Run(c.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.T.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(c.Shots, c.ShotPrefix+name+".png"), png, 0o644); err != nil {
		c.T.Fatal(err)
	}
}

// TestID selects the elements with data-testid id.
func TestID(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// WaitImageLoaded waits up to 10 s until the page's first <img> matching the CSS selector
// sel has loaded a picture, and returns its natural width; an image that is missing,
// broken (naturalWidth 0) or still loading then fails T. A lazy image loads once it is
// near the viewport, so scroll to it first if it is further down.
func (c *Chromium) WaitImageLoaded(sel string) int {
	c.T.Helper()
	expr := fmt.Sprintf(`(() => { const img = document.querySelector(%q); return img && img.complete ? img.naturalWidth : -1; })()`, sel)
	deadline := time.Now().Add(10 * time.Second)
	for {
		width, err := chromedp.Run(c.Ctx, chromedp.Evaluate[int](expr))
		switch {
		case err != nil:
			c.T.Fatalf("image %s: %v", sel, err)
		case width > 0:
			return width
		case time.Now().After(deadline):
			c.T.Fatalf("image %s: not loaded within 10 s (naturalWidth %d: -1 missing or loading, 0 broken)", sel, width)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
