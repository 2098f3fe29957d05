package product

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
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

// A 40-megapixel image is the largest accepted; BenchmarkMakePictures measures it, and a
// large PNG with transparency.
func BenchmarkMakePictures(b *testing.B) {
	for _, size := range []struct {
		w, h int
		png  bool
	}{{1600, 1200, false}, {4000, 3000, false}, {7300, 5470, false}, {6000, 4000, true}} {
		file, kind := JPEGFile(b, size.w, size.h), "JPEG"
		if size.png {
			file, kind = PNGFile(b, size.w, size.h, true), "PNG"
		}
		b.Run(fmt.Sprintf("%s-%dx%d", kind, size.w, size.h), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := MakePictures(file); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A JPEG's EXIF orientation is applied: a phone's portrait photo, stored as a landscape
// one with orientation 6, comes out upright.
func TestMakePicturesOrientation(t *testing.T) {
	t.Parallel()
	// 400×200, red growing to the right: after turning 90° clockwise, 200×400 with red
	// growing downwards.
	jpg := JPEGFile(t, 400, 200)
	tests := []struct {
		o              uint16
		little         bool
		w, h           int
		redTop, redBot bool // portrait: whether the top and the bottom rows are red
		redLeft        bool // landscape: whether the left column is red (else the right one)
	}{
		{1, false, 400, 200, false, false, false},
		{3, true, 400, 200, false, false, true}, // turned 180°: red on the left
		{6, false, 200, 400, false, true, false},
		{6, true, 200, 400, false, true, false},
		{8, false, 200, 400, true, false, false},
		{9, false, 400, 200, false, false, false}, // not an orientation: left alone
	}
	for _, tt := range tests {
		file := withOrientation(jpg, tt.o, tt.little)
		if got := jpegOrientation(file); tt.o <= 8 && got != int(tt.o) {
			t.Errorf("orientation %d: read %d", tt.o, got)
		}
		large, _, err := MakePictures(file)
		if err != nil {
			t.Fatalf("orientation %d: %v", tt.o, err)
		}
		img := decodePicture(t, "large", large)
		if large.Width != tt.w || large.Height != tt.h {
			t.Errorf("orientation %d: got %d×%d, want %d×%d", tt.o, large.Width, large.Height, tt.w, tt.h)
			continue
		}
		red := func(x, y int) bool {
			r, _, _, _ := img.At(x, y).RGBA()
			return r>>8 > 200
		}
		top, bottom := red(tt.w/2, 2), red(tt.w/2, tt.h-3) // the rows' middle pixels
		left, right := red(2, tt.h/2), red(tt.w-3, tt.h/2) // the columns' middle pixels
		switch {
		case tt.w < tt.h && (top != tt.redTop || bottom != tt.redBot):
			t.Errorf("orientation %d: red at the top %v, at the bottom %v; want %v and %v", tt.o, top, bottom, tt.redTop, tt.redBot)
		case tt.w > tt.h && (left != tt.redLeft || right == tt.redLeft):
			t.Errorf("orientation %d: red on the left %v, on the right %v; want the left %v", tt.o, left, right, tt.redLeft)
		}
	}
	if o := jpegOrientation([]byte("\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM")); o != 1 {
		t.Errorf("a cut EXIF segment: got orientation %d, want 1", o)
	}
}

// A photo several times the large picture's size is shrunk by averaging blocks first:
// the plane sizes follow the subsampling, and a flat colour stays that colour.
func TestShrink(t *testing.T) {
	t.Parallel()
	src := image.NewYCbCr(image.Rect(0, 0, 1001, 601), image.YCbCrSubsampleRatio420)
	for i := range src.Y {
		src.Y[i] = 200
	}
	for i := range src.Cb {
		src.Cb[i], src.Cr[i] = 90, 160
	}
	got, ok := shrink(src, 3).(*image.YCbCr)
	if !ok || got.Rect != image.Rect(0, 0, 334, 201) {
		t.Fatalf("got %T %v, want a 334×201 YCbCr", got, got.Bounds())
	}
	for _, p := range []image.Point{{0, 0}, {333, 200}, {167, 100}} {
		c := got.YCbCrAt(p.X, p.Y)
		if c.Y != 200 || c.Cb != 90 || c.Cr != 160 {
			t.Errorf("at %v: got %v, want Y 200, Cb 90, Cr 160", p, c)
		}
	}
	// Straight alpha: a block of two transparent blue pixels and two opaque red ones is
	// half-transparent red, not purple.
	n := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	copy(n.Pix, []byte{0, 0, 255, 0, 255, 0, 0, 255, 255, 0, 0, 255, 0, 0, 255, 0})
	if c := shrink(n, 2).(*image.NRGBA).NRGBAAt(0, 0); c != (color.NRGBA{255, 0, 0, 128}) {
		t.Errorf("NRGBA: got %v, want half-transparent red", c)
	}
	rgba := image.NewRGBA(image.Rect(0, 0, 3, 3))
	copy(rgba.Pix, bytes.Repeat([]byte{10, 20, 30, 255}, 9))
	if c := shrink(rgba, 2).(*image.RGBA); c.Rect.Dx() != 2 || c.RGBAAt(1, 1) != (color.RGBA{10, 20, 30, 255}) {
		t.Errorf("RGBA: got %v %v, want 2×2 of the same colour", c.Rect, c.RGBAAt(1, 1))
	}
	if k := shrinkFactor(7300, 5470, largeSide); k != 4 {
		t.Errorf("shrinkFactor of 7300×5470 to 1200: got %d, want 4", k)
	}
	if k := shrinkFactor(1600, 1200, largeSide); k != 1 {
		t.Errorf("shrinkFactor of 1600×1200 to 1200: got %d, want 1", k)
	}
}
