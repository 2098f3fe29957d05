package storefront_test

import (
	"bytes"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/seed"
)

// testPictures: a product without a picture shows a neutral box; once it has one, its page
// shows the large picture and the lists its thumbnail, each an <img> with its width,
// height, lazy loading and the product's name as alternative text, served by the
// storefront itself from the API, with its type, nosniff and an immutable cache.
func testPictures(t *testing.T, s *site) {
	b := s.newBrowser(t)
	if p := b.Get("/products/" + s.Product); p.Doc.Find(`div[data-testid="product-image"].no-picture`).Length() != 1 {
		t.Errorf("a product without a picture: want a neutral box in its place")
	}
	set := s.SetPicture(s.Product, seed.Picture("Watering can"))

	checkImg := func(page, sel, wantW, wantH string) {
		t.Helper()
		img := b.Get(page).Doc.Find(sel)
		src, _ := img.Attr("src")
		w, _ := img.Attr("width")
		h, _ := img.Attr("height")
		loading, _ := img.Attr("loading")
		alt, _ := img.Attr("alt")
		if img.Length() != 1 || src == "" || w != wantW || h != wantH || loading != "lazy" || alt != "Watering can" {
			t.Errorf("%s: got %d <img> src=%q width=%q height=%q loading=%q alt=%q, want one of %s×%s, lazy, alt Watering can",
				page, img.Length(), src, w, h, loading, alt, wantW, wantH)
		}
	}
	checkImg("/products/"+s.Product, `img[data-testid="product-image"]`, "1200", "900")
	checkImg("/categories/"+s.Category, `img[data-testid="product-thumb"]`, "320", "240")
	checkImg("/search?q=watering", `img[data-testid="product-thumb"]`, "320", "240")
	checkImg("/", `[data-testid="newest"] img[data-testid="product-thumb"]`, "320", "240")

	// The storefront serves the picture, with the API's headers.
	get := func(path, etag string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := get("/images/"+set.Image.ID, "")
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "image/jpeg" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(h.Get("Cache-Control"), "immutable") || h.Get("ETag") == "" {
		t.Errorf("GET /images/<id>: got %d %v, want 200 image/jpeg, nosniff, immutable, an ETag", resp.StatusCode, h)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 1200 {
		t.Errorf("GET /images/<id>: got a %d px wide picture (%v), want 1200", cfg.Width, err)
	}
	if again, _ := get("/images/"+set.Image.ID, h.Get("ETag")); again.StatusCode != http.StatusNotModified {
		t.Errorf("GET /images/<id> with its ETag: got %d, want 304", again.StatusCode)
	}
	for _, id := range []string{strings.Repeat("0", 64), "not-an-id"} {
		if resp, _ := get("/images/"+id, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /images/%s: got %d, want 404", id, resp.StatusCode)
		}
	}
}
