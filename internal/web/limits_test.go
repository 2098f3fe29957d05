package web_test

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/middleware"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web"
	"github.com/msdemo/msdemo/static"
)

// TestRunSiteLimits runs a site with short timeouts and a per-address cap: every answer
// carries the browser security headers, the session cookie is Secure, HttpOnly and
// SameSite=Lax, an SSE stream outlives the read and write timeouts, and 300 slow clients
// of one address neither hold more than their share nor stop another client's requests.
func TestRunSiteLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis and RabbitMQ; skipped with -short")
	}
	const timeout, perIP = 500 * time.Millisecond, 20
	cfg := web.SiteConfig{Addr: testenv.FreeAddr(t), RedisURL: testenv.RedisURL(), RabbitMQURL: testenv.RabbitMQURL(),
		SessionPrefix: "msdemo:" + testenv.Name(t) + ":", SecureCookie: true,
		Limits: httplimit.Limits{ReadHeaderTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxConnsPerIP: perIP}}
	spec := web.SiteSpec{Name: "testsite", CookieName: "msdemo_testsite",
		NewHandler: func(logger *slog.Logger, api *web.Client, sessions *web.Sessions, hub *web.Hub, keepAlive time.Duration) http.Handler {
			site := &web.Site{Name: "test site", Home: "/", Login: "/login", Sessions: sessions, Logger: logger}
			r := web.NewRouter(site)
			r.Get("/remember", func(w http.ResponseWriter, r *http.Request) { sessions.Put(r.Context(), "k", "v") })
			r.Get("/stream", func(w http.ResponseWriter, r *http.Request) {
				web.ServeSSE(w, r, web.NewOutbox(1, nil), 100*time.Millisecond)
			})
			return site.Handler(r)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	var running errgroup.Group
	running.Go(func() error { return web.RunSite(ctx, spec, cfg, testenv.Logger(t)) })
	t.Cleanup(func() {
		cancel()
		if err := running.Wait(); err != nil {
			t.Errorf("RunSite after cancel: %v", err)
		}
	})
	base := "http://" + cfg.Addr
	testenv.WaitHealthy(t, base+"/healthz", 20*time.Second)

	t.Run("security headers and cookie", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/remember", "/no-such-page", static.Path("css/shop.css")} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for name, want := range map[string]string{"Content-Security-Policy": middleware.ContentSecurityPolicy,
				"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("GET %s: %s %q, want %q", path, name, got, want)
				}
			}
			if path != "/remember" {
				continue
			}
			cookies := resp.Cookies()
			if len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
				t.Errorf("GET /remember: cookies %v, want one Secure, HttpOnly, SameSite=Lax", resp.Header.Values("Set-Cookie"))
			}
		}
	})

	t.Run("an SSE stream outlives the timeouts", func(t *testing.T) {
		resp, err := http.Get(base + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		start := time.Now()
		for keepAlives := 0; time.Since(start) < 4*timeout; {
			if !lines.Scan() {
				t.Fatalf("the stream ended after %v (%d keep-alives, %v), want it open past the timeouts of %v",
					time.Since(start), keepAlives, lines.Err(), timeout)
			}
			if strings.HasPrefix(lines.Text(), ": keep-alive") {
				keepAlives++
			}
		}
	})

	t.Run("slow clients", func(t *testing.T) {
		wait := testenv.Slowloris(t, cfg.Addr, "127.0.0.2", "/", testenv.SlowHeaders, 300)
		testenv.StayResponsive(t, base+"/healthz", 2*timeout)
		testenv.CheckSlowClosed(t, wait(timeout+5*time.Second), perIP, timeout)
	})
}
