package webtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// Chromium is a headless Chromium (1200×900) driven by one test. Its methods fail T.
type Chromium struct {
	T   testing.TB
	Ctx context.Context // the browser's context, for chromedp.Run and chromedp.Do
	// Shots is the folder that Shot writes into, ShotPrefix the start of each file name.
	Shots, ShotPrefix string
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
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)
	return &Chromium{T: t, Ctx: ctx, Shots: shots, ShotPrefix: prefix}
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
