package product

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/service"
)

// decodePicture decodes p's bytes as its content type says, and checks its id and size.
func decodePicture(t *testing.T, what string, p Picture) image.Image {
	t.Helper()
	var img image.Image
	var err error
	switch p.ContentType {
	case "image/jpeg":
		img, err = jpeg.Decode(bytes.NewReader(p.Bytes))
	case "image/png":
		img, err = png.Decode(bytes.NewReader(p.Bytes))
	default:
		t.Fatalf("%s: content type %q, want image/jpeg or image/png", what, p.ContentType)
	}
	if err != nil {
		t.Fatalf("%s: the stored %s does not decode: %v", what, p.ContentType, err)
	}
	if b := img.Bounds(); b.Dx() != p.Width || b.Dy() != p.Height {
		t.Errorf("%s: decodes to %d×%d, want the %d×%d it claims", what, b.Dx(), b.Dy(), p.Width, p.Height)
	}
	if p.ID != imageIDOf(p.Bytes) || !validImageID(string(p.ID)) {
		t.Errorf("%s: id %s is not the SHA-256 of its bytes", what, p.ID)
	}
	return img
}

func TestMakePictures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		file                []byte
		wantType            string
		largeW, largeH      int
		thumbW, thumbH      int
		wantOpaqueThumbnail bool
	}{
		{"large JPEG photo", JPEGFile(t, 2400, 1600), "image/jpeg", 1200, 800, 320, 213, true},
		{"portrait JPEG", JPEGFile(t, 900, 1800), "image/jpeg", 600, 1200, 160, 320, true},
		{"small JPEG, not enlarged", JPEGFile(t, 200, 100), "image/jpeg", 200, 100, 200, 100, true},
		{"opaque PNG becomes a JPEG", PNGFile(t, 1600, 1600, false), "image/jpeg", 1200, 1200, 320, 320, true},
		{"PNG with transparency stays a PNG", PNGFile(t, 500, 250, true), "image/png", 500, 250, 320, 160, false},
		{"lossy WebP", WebPFile(t, "gradient.lossy.webp"), "image/jpeg", 400, 300, 320, 240, true},
		{"WebP with alpha", WebPFile(t, "disc.lossless.webp"), "image/png", 64, 64, 64, 64, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			large, thumb, err := MakePictures(tt.file)
			if err != nil {
				t.Fatalf("got %v, want pictures", err)
			}
			decodePicture(t, "large", large)
			decodePicture(t, "thumbnail", thumb)
			if large.ContentType != tt.wantType || thumb.ContentType != tt.wantType {
				t.Errorf("got %s and %s, want %s for both", large.ContentType, thumb.ContentType, tt.wantType)
			}
			if large.Width != tt.largeW || large.Height != tt.largeH || thumb.Width != tt.thumbW || thumb.Height != tt.thumbH {
				t.Errorf("got %d×%d and a %d×%d thumbnail, want %d×%d and %d×%d", large.Width, large.Height,
					thumb.Width, thumb.Height, tt.largeW, tt.largeH, tt.thumbW, tt.thumbH)
			}
			// The same file makes the same bytes: one id, one row, however often it is sent.
			again, _, err := MakePictures(tt.file)
			if err != nil || again.ID != large.ID {
				t.Errorf("the same file again: got id %s (%v), want %s", again.ID, err, large.ID)
			}
		})
	}
}

func TestMakePicturesRefuses(t *testing.T) {
	t.Parallel()
	jpg, pngFile := JPEGFile(t, 300, 200), PNGFile(t, 300, 200, false)
	tests := []struct {
		name string
		file []byte
		want string // in the message of fields.image
	}{
		{"empty", nil, "empty"},
		{"GIF", GIFFile(t), "not a JPEG, PNG or WebP"},
		{"SVG", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "not a JPEG, PNG or WebP"},
		{"text", []byte("hello, this is not a picture"), "not a JPEG, PNG or WebP"},
		{"HTML", []byte("<!doctype html><p>hi"), "not a JPEG, PNG or WebP"},
		{"JPEG magic only", []byte("\xff\xd8\xff"), "not a readable JPEG"},
		{"truncated JPEG", jpg[:len(jpg)/2], "damaged or incomplete JPEG"},
		{"truncated PNG", pngFile[:len(pngFile)/2], "damaged or incomplete PNG"},
		{"PNG header only", pngFile[:33], "PNG"},
		{"truncated WebP", WebPFile(t, "gradient.lossy.webp")[:400], "WebP"},
		{"RIFF that is not WebP", []byte("RIFF\x10\x00\x00\x00WAVEfmt "), "not a JPEG, PNG or WebP"},
		{"100000×100000 bomb", BombPNG(t, 100_000, 100_000, false), "at most 40 megapixels"},
		{"8000×6000: 48 megapixels", BombPNG(t, 8000, 6000, false), "at most 40 megapixels"},
		{"6000×6000 of 16 bits", BombPNG(t, 6000, 6000, true), "of 16 bits"},
		{"no pixels", BombPNG(t, 0, 10, false), "PNG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, _, err := MakePictures(tt.file)
			var fields service.FieldErrors
			if !errors.As(err, &fields) || !strings.Contains(fields["image"], tt.want) {
				t.Fatalf("got %v %v, want a field error for image saying %q", err, fields, tt.want)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("refusing took %s: decoded more than the header?", took)
			}
		})
	}
}

// A 40-megapixel image is the largest accepted; BenchmarkMakePictures measures it.
func BenchmarkMakePictures(b *testing.B) {
	for _, size := range []struct{ w, h int }{{1600, 1200}, {4000, 3000}, {7300, 5470}} {
		file := JPEGFile(b, size.w, size.h)
		b.Run(strings.ReplaceAll(image.Pt(size.w, size.h).String(), ",", "x"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := MakePictures(file); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
