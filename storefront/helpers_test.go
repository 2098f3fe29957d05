package storefront_test

import (
	"testing"

	"github.com/msdemo/msdemo/internal/web/webtest"
	"github.com/msdemo/msdemo/storefront"
	"github.com/msdemo/msdemo/systest/shop"
)

// site is a whole shop (shop.Shop) with the storefront, running for one test.
type site struct {
	*shop.Shop
	URL string // the storefront
}

// startSite starts the shop and the storefront. The shop sets RABBITMQ_URL for t
// (shop.Start), hence t may not run in parallel.
func startSite(t *testing.T) *site {
	t.Helper()
	sh := shop.Start(t)
	s := &site{Shop: sh}
	s.URL = sh.StartSite(t, "storefront", storefront.Run)
	return s
}

// browser is a browser without JavaScript; page is its answer.
type (
	browser = webtest.Browser
	page    = webtest.Page
)

func (s *site) newBrowser(t *testing.T) *browser { return webtest.NewBrowser(t, s.URL) }
