package product

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The image files the tests upload: drawn here (JPEG, PNG, GIF), or committed
// (testdata/images: WebP, which Go cannot encode). Exported for the tests of package
// product_test.

// gradient draws a w×h picture whose colour changes across it; its pixels are opaque
// unless alpha, when its left half is transparent.
func gradient(w, h int, alpha bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if alpha && x < w/2 {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / max(1, w-1)), uint8(y * 255 / max(1, h-1)), 128, a})
		}
	}
	return img
}

// JPEGFile is a w×h JPEG.
func JPEGFile(tb testing.TB, w, h int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, gradient(w, h, false), &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// PNGFile is a w×h PNG, with transparent pixels if alpha.
func PNGFile(tb testing.TB, w, h int, alpha bool) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, gradient(w, h, alpha)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// GIFFile is a 40×30 GIF.
func GIFFile(tb testing.TB) []byte {
	var buf bytes.Buffer
	if err := gif.Encode(&buf, gradient(40, 30, false), nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// WebPFile is the committed WebP file testdata/images/<name>.
func WebPFile(tb testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "images", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BombPNG is a PNG of a few hundred bytes whose header claims w×h pixels of 8-bit RGBA
// (of 16-bit if deep): a 1×1 PNG with its IHDR chunk rewritten (and its CRC made again).
// Decoding it would fail on its data, so a refusal that names the pixels came from the
// header alone.
func BombPNG(tb testing.TB, w, h uint32, deep bool) []byte {
	b := PNGFile(tb, 1, 1, true)
	// The signature (8 bytes), then IHDR: length (4), "IHDR" (4), width, height, bit
	// depth, colour type, ..., CRC of type and data.
	ihdr := b[8+8 : 8+8+13]
	binary.BigEndian.PutUint32(ihdr[0:4], w)
	binary.BigEndian.PutUint32(ihdr[4:8], h)
	ihdr[9] = 6 // colour type RGBA
	ihdr[8] = 8
	if deep {
		ihdr[8] = 16
	}
	binary.BigEndian.PutUint32(b[8+8+13:], crc32.ChecksumIEEE(b[8+4:8+8+13]))
	return b
}

// withOrientation is the JPEG file jpg with an EXIF segment (APP1) that says orientation
// o, in the byte order of a camera that writes little-endian TIFF if little.
func withOrientation(jpg []byte, o uint16, little bool) []byte {
	var order binary.ByteOrder = binary.BigEndian
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	if little {
		order, tiff = binary.LittleEndian, []byte("II\x2a\x00\x08\x00\x00\x00")
	}
	ifd := make([]byte, 2+2*12+4)
	order.PutUint16(ifd, 2)
	// An entry before it (ImageDescription, ASCII), then Orientation (SHORT, 1 value).
	order.PutUint16(ifd[2:], 0x010e)
	order.PutUint16(ifd[4:], 2)
	order.PutUint16(ifd[14:], 0x0112)
	order.PutUint16(ifd[16:], 3)
	order.PutUint32(ifd[18:], 1)
	order.PutUint16(ifd[22:], o)
	segment := append(append([]byte("Exif\x00\x00"), tiff...), ifd...)
	app1 := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(app1[2:], uint16(2+len(segment)))
	out := append([]byte{0xff, 0xd8}, app1...)
	out = append(out, segment...)
	return append(out, jpg[2:]...)
}
