package admin_test

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/seed"
	"github.com/msdemo/msdemo/internal/web"
	"github.com/msdemo/msdemo/internal/web/webtest"
	"github.com/msdemo/msdemo/storefront"
)

// gifFile is a small GIF, which the shop refuses.
func gifFile(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := gif.Encode(&buf, image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.White, color.Black}), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// currentProduct reads product id through the API.
func (s *site) currentProduct(t *testing.T, id string) web.Product {
	var p web.Product
	s.MustAPI("GET", "/product/products/"+id, "", nil, &p)
	return p
}

// testPictureForm posts the picture form as a browser without JavaScript: whatever is
// wrong with the file (none, not a JPEG, PNG or WebP image, too large) or the page (a
// version gone stale) shows the edit page again with the message, and changes nothing; a
// good file is saved and shown.
func testPictureForm(t *testing.T, s *site) {
	b := s.loggedIn(t)
	before := s.currentProduct(t, s.Product)
	version := url.Values{"version": {strings.TrimSpace(b.Get("/products/" + s.Product).Value("version"))}}
	path := "/products/" + s.Product + "/image"
	tests := []struct {
		name      string
		form      url.Values
		file      []byte
		status    int
		fieldHas  string // in the picture field's error
		formError string // in the form error
	}{
		{"no file", version, nil, 422, "Choose a picture", ""},
		{"a GIF", version, gifFile(t), 422, "not a JPEG, PNG or WebP", ""},
		{"over 5 MiB", version, make([]byte, httplimit.MaxUploadBytes+1), 413, "larger than 5 MiB", ""},
		{"a stale page", url.Values{"version": {"1000"}}, seed.Picture("Stale"), 409, "", "changed while you were looking"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := b.PostFile(path, tt.form, "image", "picture", tt.file)
			if p.Status != tt.status || !strings.Contains(p.TestID("error-image"), tt.fieldHas) ||
				!strings.Contains(p.TestID("form-error"), tt.formError) || p.Count("image-form") != 1 {
				t.Errorf("got %d with field error %q and form error %q, want %d, %q and %q, on the edit page",
					p.Status, p.TestID("error-image"), p.TestID("form-error"), tt.status, tt.fieldHas, tt.formError)
			}
		})
	}
	if after := s.currentProduct(t, s.Product); after != before {
		t.Errorf("after the refused uploads: got %+v, want %+v", after, before)
	}

	p := b.PostFile(path, version, "image", "can.jpg", seed.Picture("Watering can"))
	after := s.currentProduct(t, s.Product)
	img := p.Doc.Find(`img[data-testid="current-image"]`)
	if p.URL != "/products/"+s.Product || !strings.Contains(p.TestID("flash"), "Picture") || after.Image.ID == "" ||
		img.AttrOr("src", "") != web.ImageURL(after.Image.ID) || img.AttrOr("width", "") != "1200" {
		t.Errorf("a good picture: got %d at %s, flash %q, product %+v, <img> %q; want the edit page with the new picture",
			p.Status, p.URL, p.TestID("flash"), after, img.AttrOr("src", ""))
	}
}

// testPictureBrowser: in Chromium, a manager uploads a picture on the product's edit page
// (a refused GIF first) and sees it there; then the storefront's product page shows it,
// loaded (naturalWidth > 0), and so does its category page as a thumbnail.
func testPictureBrowser(t *testing.T, s *site) {
	dir := t.TempDir()
	gifPath, jpegPath := filepath.Join(dir, "banner.gif"), filepath.Join(dir, "watering-can.jpg")
	for path, b := range map[string][]byte{gifPath: gifFile(t), jpegPath: seed.Picture("Watering can, new")} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := webtest.StartChromium(t, 60*time.Second, filepath.Join("..", "docs", "screenshots"), "admin-")
	step, tid := c.Step, webtest.TestID

	step("log in", chromedp.Navigate(s.URL+"/login"), chromedp.WaitVisible(tid("login-form")),
		chromedp.SendKeys(chromedp.ID("f-username"), managerName),
		chromedp.SendKeys(chromedp.ID("f-password"), managerPassword),
		chromedp.Click(tid("login-button")), chromedp.WaitVisible(tid("revenue")))
	step("open the product", chromedp.Navigate(s.URL+"/products/"+s.Product), chromedp.WaitVisible(tid("image-form")))
	step("upload a GIF", chromedp.SetUploadFiles(chromedp.ID("f-image"), []string{gifPath}),
		chromedp.Click(tid("image-upload")), chromedp.WaitVisible(tid("error-image")))
	step("upload a JPEG", chromedp.SetUploadFiles(chromedp.ID("f-image"), []string{jpegPath}),
		chromedp.Click(tid("image-upload")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"].flash-success`)),
		chromedp.WaitVisible(chromedp.CSS(`img[data-testid="current-image"]`)))
	if width := c.WaitImageLoaded(`img[data-testid="current-image"]`); width != 1200 {
		t.Errorf("the edit page shows a picture %d px wide, want 1200", width)
	}
	c.Shot("product-picture")

	shopURL := s.StartSite(t, "storefront", storefront.Run)
	step("see it in the shop", chromedp.Navigate(shopURL+"/products/"+s.Product),
		chromedp.WaitVisible(chromedp.CSS(`img[data-testid="product-image"]`)))
	if width := c.WaitImageLoaded(`img[data-testid="product-image"]`); width != 1200 {
		t.Errorf("the storefront's product page shows a picture %d px wide, want 1200", width)
	}
	step("see its thumbnail", chromedp.Navigate(shopURL+"/categories/"+s.Category),
		chromedp.WaitVisible(chromedp.CSS(`img[data-testid="product-thumb"]`)))
	if width := c.WaitImageLoaded(`img[data-testid="product-thumb"]`); width != 320 {
		t.Errorf("the category page shows a thumbnail %d px wide, want 320", width)
	}
}
