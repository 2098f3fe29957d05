package product_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/product"
)

// upload sends file to PUT url as the body (contentType, if not empty) with token, and
// returns the status and the body of the answer.
func upload(tb testing.TB, url, token, contentType string, file []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(file))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// multipartForm is a multipart/form-data body with file as its field "image", and its
// content type.
func multipartForm(tb testing.TB, file []byte) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("note", "a field before the file")
	part, err := w.CreateFormFile("image", "picture.png")
	if err != nil {
		tb.Fatal(err)
	}
	part.Write(file)
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

// mustUpload uploads file and fails t unless the answer is 200; it returns the product.
func mustUpload(t *testing.T, url, token, contentType string, file []byte) product.Product {
	t.Helper()
	status, b := upload(t, url, token, contentType, file)
	if status != http.StatusOK {
		t.Fatalf("PUT %s: got %d %s, want 200", url, status, b)
	}
	var p product.Product
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// fetchPicture GETs the picture ref from base (the gateway's product API or a service's own
// address) and checks what every picture's answer carries: 200, its stored type, nosniff,
// the immutable cache, the id as ETag, bytes whose SHA-256 is the id and that decode to
// its size. It returns the content type.
func fetchPicture(t *testing.T, base string, ref product.ImageRef) string {
	t.Helper()
	if ref.ID == "" || ref.URL != "/product/images/"+string(ref.ID) {
		t.Fatalf("picture %+v: want an id and the url /product/images/<id>", ref)
	}
	resp, err := http.Get(base + "/images/" + string(ref.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	h := resp.Header
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET picture %s: got %d %s, want 200", ref.ID, resp.StatusCode, body)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		h.Get("ETag") != `"`+string(ref.ID)+`"` {
		t.Errorf("GET picture %s: got headers %v, want nosniff, the immutable cache and the id as ETag", ref.ID, h)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != string(ref.ID) {
		t.Errorf("GET picture %s: the bytes' SHA-256 is %x", ref.ID, sum)
	}
	var img image.Image
	switch ct := h.Get("Content-Type"); ct {
	case "image/jpeg":
		img, err = jpeg.Decode(bytes.NewReader(body))
	case "image/png":
		img, err = png.Decode(bytes.NewReader(body))
	default:
		t.Fatalf("GET picture %s: Content-Type %q, want image/jpeg or image/png", ref.ID, ct)
	}
	if err != nil {
		t.Fatalf("GET picture %s: does not decode: %v", ref.ID, err)
	}
	if b := img.Bounds(); b.Dx() != ref.Width || b.Dy() != ref.Height {
		t.Errorf("GET picture %s: %d×%d, want %d×%d", ref.ID, b.Dx(), b.Dy(), ref.Width, ref.Height)
	}
	return h.Get("Content-Type")
}

// A manager uploads JPEG, PNG and WebP files, as a body or a form; the product shows its
// pictures, which anyone can fetch with their type, nosniff and an immutable cache. The
// same file twice is the same picture.
func TestImageUpload(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	cat := s.addCategory(t, "Beverages")
	p := s.addProduct(t, "Chai", cat.ID)
	url := s.api + "/products/" + string(p.ID) + "/image"

	got := mustUpload(t, url, s.manager, "image/jpeg", product.JPEGFile(t, 2400, 1600))
	if got.Version != 2 || got.Image.Width != 1200 || got.Image.Height != 800 || got.Thumbnail.Width != 320 || got.Thumbnail.Height != 213 {
		t.Fatalf("after a JPEG upload: got %+v, want version 2, a 1200×800 image and a 320×213 thumbnail", got)
	}
	if ct := fetchPicture(t, s.api, got.Image); ct != "image/jpeg" {
		t.Errorf("image: got %s, want image/jpeg", ct)
	}
	fetchPicture(t, s.api, got.Thumbnail)

	// Reads show the pictures: the product, the lists, the search.
	var shown product.Product
	must(t, 200, "GET", s.api+"/products/"+string(p.ID), "", "", &shown)
	if shown != got {
		t.Errorf("GET after the upload: got %+v, want %+v", shown, got)
	}
	var page struct{ Products []product.Product }
	for _, list := range []string{"/products?category_id=" + string(cat.ID), "/products?sort=newest", "/search?q=chai"} {
		must(t, 200, "GET", s.api+list, "", "", &page)
		if len(page.Products) != 1 || page.Products[0] != got {
			t.Errorf("GET %s: got %+v, want the product with its pictures", list, page.Products)
		}
	}
	// A product without a picture has none in its JSON.
	bare := s.addProduct(t, "Chang", cat.ID)
	_, raw := call(t, "GET", s.api+"/products/"+string(bare.ID), "", "")
	if bytes.Contains(raw, []byte(`"image"`)) || bytes.Contains(raw, []byte(`"thumbnail"`)) {
		t.Errorf("a product without a picture: got %s, want no image nor thumbnail", raw)
	}

	// The same file again: the same pictures (one row each), a new version.
	again := mustUpload(t, url, s.manager, "", product.JPEGFile(t, 2400, 1600))
	if again.Image != got.Image || again.Thumbnail != got.Thumbnail || again.Version != 3 {
		t.Errorf("the same file again: got %+v, want the same pictures at version 3", again)
	}

	// A PNG with transparency, as a form's file field: stored as PNG.
	form, contentType := multipartForm(t, product.PNGFile(t, 640, 480, true))
	withAlpha := mustUpload(t, url, s.manager, contentType, form)
	if ct := fetchPicture(t, s.api, withAlpha.Image); ct != "image/png" || withAlpha.Image.Width != 640 {
		t.Errorf("a PNG with transparency: got %s %+v, want image/png 640×480", ct, withAlpha.Image)
	}
	// WebP, whatever the Content-Type claims.
	webp := mustUpload(t, url+"?expected_version=4", s.manager, "text/plain", product.WebPFile(t, "gradient.lossy.webp"))
	if webp.Version != 5 || webp.Image.Width != 400 || webp.Image.Height != 300 {
		t.Errorf("a WebP: got %+v, want a 400×300 image at version 5", webp)
	}
	fetchPicture(t, s.api, webp.Thumbnail)

	// An ETag that the browser has gets 304; ids of the wrong shape 400, unknown ones 404.
	req, _ := http.NewRequest(http.MethodGet, s.api+"/images/"+string(got.Image.ID), nil)
	req.Header.Set("If-None-Match", `"`+string(got.Image.ID)+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") == "" {
		t.Errorf("If-None-Match: got %d %v, want 304 with the ETag", resp.StatusCode, resp.Header)
	}
	must(t, 404, "GET", s.api+"/images/"+strings.Repeat("0", 64), "", "", nil)
	for _, id := range []string{"abc", strings.Repeat("A", 64), strings.Repeat("g", 64)} {
		if status, _ := call(t, "GET", s.api+"/images/"+id, "", ""); status != 400 {
			t.Errorf("GET /images/%s: got %d, want 400: not an image id", id, status)
		}
	}
	if status, _ := call(t, "GET", s.api+"/images/..%2F..%2Fetc", "", ""); status != 400 && status != 404 {
		t.Errorf("GET /images/..%%2F..%%2Fetc: got %d, want 400 (or the gateway's 404)", status)
	}
	status, body := call(t, "GET", "http://"+s.cfg.Service.Addr+"/images/"+strings.Repeat("A", 64), "", "")
	if status != 400 || !strings.Contains(string(body), `"id"`) {
		t.Errorf("GET an id of capitals: got %d %s, want 400 with fields.id", status, body)
	}
}

// Whatever is wrong with an upload, it is refused with a message and changes nothing.
func TestImageUploadRefused(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	cat := s.addCategory(t, "Beverages")
	p := s.addProduct(t, "Chai", cat.ID)
	url := s.api + "/products/" + string(p.ID) + "/image"
	jpg := product.JPEGFile(t, 300, 200)
	huge := make([]byte, product.MaxImageBytes+1)
	rand.Read(huge)
	copy(huge, jpg) // a JPEG's first bytes, then noise

	form, formType := multipartForm(t, product.GIFFile(t))
	noFile, noFileType := func() ([]byte, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("note", "no file")
		w.Close()
		return buf.Bytes(), w.FormDataContentType()
	}()
	tests := []struct {
		name, url, token, contentType string
		file                          []byte
		status                        int
		field                         string // with an error, for a 400 or 413
	}{
		{"GIF", url, s.manager, "image/gif", product.GIFFile(t), 400, "image"},
		{"GIF in a form", url, s.manager, formType, form, 400, "image"},
		{"form without a file", url, s.manager, noFileType, noFile, 400, "image"},
		{"SVG", url, s.manager, "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 400, "image"},
		{"text", url, s.manager, "image/jpeg", []byte("not a picture"), 400, "image"},
		{"empty", url, s.manager, "image/jpeg", nil, 400, "image"},
		{"truncated JPEG", url, s.manager, "image/jpeg", jpg[:len(jpg)/2], 400, "image"},
		{"decompression bomb", url, s.manager, "image/png", product.BombPNG(t, 50_000, 50_000, false), 400, "image"},
		{"over 5 MiB", url, s.manager, "image/jpeg", huge, 413, "image"},
		{"bad expected_version", url + "?expected_version=x", s.manager, "", jpg, 400, "expected_version"},
		{"stale expected_version", url + "?expected_version=7", s.manager, "", jpg, 409, ""},
		{"anonymous", url, "", "", jpg, 401, ""},
		{"customer", url, s.customer, "", jpg, 403, ""},
		{"unknown product", s.api + "/products/aaaaaaaaaa/image", s.manager, "", jpg, 404, ""},
	}
	before := s.feed(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := upload(t, tt.url, tt.token, tt.contentType, tt.file)
			var answer struct {
				Error  string            `json:"error"`
				Fields map[string]string `json:"fields"`
			}
			if err := json.Unmarshal(body, &answer); err != nil || answer.Error == "" {
				t.Errorf("got body %q, want a JSON error", body)
			}
			if status != tt.status || tt.field != "" && answer.Fields[tt.field] == "" {
				t.Errorf("got %d %s, want %d with an error for %q", status, body, tt.status, tt.field)
			}
			t.Logf("%d %s", status, body)
			if s.feed(t) != before {
				t.Errorf("the event feed changed")
			}
		})
	}
	// Only a manager may send the gateway more than its 1 MiB: an anonymous caller that
	// asks first (Expect: 100-continue, as curl does) gets 413 before sending a byte of it.
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(huge))
	req.Header.Set("Expect", "100-continue")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("over 1 MiB, anonymous: got %v %v, want 413", resp, err)
	} else {
		resp.Body.Close()
	}
	// The service's own limit holds too, without the gateway in front.
	status, _ := upload(t, "http://"+s.cfg.Service.Addr+"/products/"+string(p.ID)+"/image", s.manager, "", huge)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("over 5 MiB to the service itself: got %d, want 413", status)
	}
	// A manager's other writes keep their 1 MiB limit (asked first, as above: the gateway
	// answers before reading the body, and may cut a client still sending it).
	req, _ = http.NewRequest(http.MethodPost, s.api+"/products", strings.NewReader(`{"name":"`+strings.Repeat("x", 2<<20)+`"}`))
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("Authorization", "Bearer "+s.manager)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB product from a manager: got %v %v, want 413", resp, err)
	} else {
		resp.Body.Close()
	}
	var got product.Product
	must(t, 200, "GET", s.api+"/products/"+string(p.ID), "", "", &got)
	if got != p {
		t.Errorf("after the refused uploads: got %+v, want %+v", got, p)
	}
}

// A second instance of the service, on the same databases, serves a picture that the
// first stored, and shows it on the product; a rebuilt read model keeps the pictures.
func TestImageReplicaAndRebuild(t *testing.T) {
	t.Parallel()
	s := startShop(t)
	cat := s.addCategory(t, "Beverages")
	p := s.addProduct(t, "Chai", cat.ID)
	first := "http://" + s.cfg.Service.Addr
	got := mustUpload(t, first+"/products/"+string(p.ID)+"/image", s.manager, "image/png", product.PNGFile(t, 900, 600, false))

	replica := s.cfg
	replica.Service.Addr = testenv.FreeAddr(t)
	replica.DBPath = filepath.Join(t.TempDir(), "replica.db")
	runProduct(t, replica, testenv.Logger(t))
	second := "http://" + replica.Service.Addr
	var shown product.Product
	must(t, 200, "GET", second+"/products/"+string(p.ID), "", "", &shown)
	if shown != got {
		t.Errorf("the replica shows %+v, want %+v", shown, got)
	}
	fetchPicture(t, second, got.Image)
	fetchPicture(t, second, got.Thumbnail)

	// Rebuilt from the events, the read model has the same picture references.
	s.stop()
	want := dump(t, s.cfg.DBPath)
	removeDB(t, s.cfg.DBPath)
	s.start(t)
	equalDumps(t, "after deleting the file and restarting", dump(t, s.cfg.DBPath), want)
	must(t, 200, "GET", first+"/products/"+string(p.ID), "", "", &shown)
	if shown != got {
		t.Errorf("after the rebuild: got %+v, want %+v", shown, got)
	}
	fetchPicture(t, first, got.Image)
	if !strings.Contains(fmt.Sprint(want["products"]), string(got.Image.ID)) {
		t.Errorf("the read model's products %v do not hold the picture %s", want["products"], got.Image.ID)
	}
}
