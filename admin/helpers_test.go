package admin_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/msdemo/msdemo/admin"
	"github.com/msdemo/msdemo/internal/web"
	"github.com/msdemo/msdemo/internal/web/webtest"
	"github.com/msdemo/msdemo/systest/shop"
)

// The bootstrap manager of the test shop, and a customer.
const (
	managerName     = shop.ManagerName
	managerPassword = shop.ManagerPassword
	customerName    = "ada"
	customerPass    = "analytical engine"
)

// site is a whole shop (shop.Shop) with the admin site, running for one test.
type site struct {
	*shop.Shop
	URL string // the admin site
}

// startSite starts the shop, the admin site and registers the customer. The shop sets
// RABBITMQ_URL for t (shop.Start), hence t may not run in parallel.
func startSite(t *testing.T) *site {
	t.Helper()
	sh := shop.Start(t)
	s := &site{Shop: sh}
	s.URL = sh.StartSite(t, "admin", func(ctx context.Context, cfg web.SiteConfig, logger *slog.Logger) error {
		return admin.Run(ctx, admin.Config{SiteConfig: cfg}, logger)
	})
	s.MustAPI(http.MethodPost, "/customer/users", "", map[string]string{"username": customerName,
		"full_name": "Ada Lovelace", "email": "ada@example.com", "password": customerPass}, nil)
	return s
}

// customerToken logs the customer in through the API.
func (s *site) customerToken() string {
	var l struct{ Token string }
	s.MustAPI(http.MethodPost, "/customer/login", "", map[string]string{"username": customerName, "password": customerPass}, &l)
	return l.Token
}

// browser is a browser without JavaScript; page is its answer.
type (
	browser = webtest.Browser
	page    = webtest.Page
)

func (s *site) newBrowser(t *testing.T) *browser { return webtest.NewBrowser(t, s.URL) }

// loggedIn returns a browser with a manager's session.
func (s *site) loggedIn(t *testing.T) *browser {
	t.Helper()
	b := s.newBrowser(t)
	if p := b.Post("/login", url.Values{"username": {managerName}, "password": {managerPassword}}, nil); p.URL != "/" {
		t.Fatalf("manager log in: got %d at %s (%q), want the dashboard", p.Status, p.URL, p.TestID("form-error"))
	}
	return b
}
