package product

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/service"
)

// A product's image is uploaded once (PUT /products/{id}/image) and kept as two pictures
// that the service made itself: the large one and a thumbnail, each re-encoded from the
// decoded pixels, so that what the shop serves is always a well-formed JPEG or PNG of a
// known size, never the uploaded bytes (nor their metadata: a photo's EXIF, its GPS
// position included, is dropped). Their bytes live in PostgreSQL (Images), keyed by the
// SHA-256 of the stored bytes; the product's stream records only those ids and sizes
// (product.image-set).

// ImageID names a stored picture: the SHA-256 of its bytes, 64 lowercase hex digits. The
// same bytes always have the same id, so storing them again changes nothing, and what an
// id names never changes (it can be cached for ever).
type ImageID string

// imageIDOf returns the id of the picture b.
func imageIDOf(b []byte) ImageID {
	sum := sha256.Sum256(b)
	return ImageID(hex.EncodeToString(sum[:]))
}

// validImageID reports whether id has the shape of an ImageID.
func validImageID(id string) bool {
	if len(id) != sha256.Size*2 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Picture is one stored picture: its bytes, their type, and its size in pixels.
type Picture struct {
	ID          ImageID
	ContentType string // image/jpeg or image/png
	Width       int
	Height      int
	Bytes       []byte
}

// ImageRef is a picture as a product shows it: its id, where the API serves it
// (GET /product/images/{id} at the gateway) and its size, for the width and height of an
// <img>. The zero ImageRef is no picture.
type ImageRef struct {
	ID     ImageID `json:"id"`
	URL    string  `json:"url"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
}

// refOf returns the ImageRef of the picture id of width×height; "" gives the zero one.
func refOf(id ImageID, width, height int) ImageRef {
	if id == "" {
		return ImageRef{}
	}
	return ImageRef{ID: id, URL: "/" + registry.Product + "/images/" + string(id), Width: width, Height: height}
}

// ImageSetData is the data of product.image-set: the ids and sizes of the product's
// large picture and of its thumbnail.
type ImageSetData struct {
	ImageID     ImageID `json:"image_id"`
	ThumbID     ImageID `json:"thumb_id"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	ThumbWidth  int     `json:"thumb_width"`
	ThumbHeight int     `json:"thumb_height"`
}

// Limits of an uploaded image and of the pictures made from it.
const (
	// MaxImageBytes bounds the uploaded file (larger: 413).
	MaxImageBytes = httplimit.MaxUploadBytes
	// maxImagePixels bounds width×height, read from the file's header before a pixel is
	// decoded: a few KB of a well-compressed file can claim gigabytes of pixels (a
	// decompression bomb).
	maxImagePixels = 40_000_000
	// maxDecodedBytes bounds the memory the decoded pixels take (width×height×bytes per
	// pixel): 40 megapixels of 8-bit RGBA, or half as many of 16-bit.
	maxDecodedBytes = 4 * maxImagePixels
	// largeSide and thumbSide are the longest side of the large picture and of the
	// thumbnail; a smaller image is not enlarged.
	largeSide = 1200
	thumbSide = 320
	// jpegQuality is the quality of the pictures stored as JPEG.
	jpegQuality = 85
)

// imageFormat is a file format the service accepts, told from the file's first bytes.
// The decoders are called directly, not through image.Decode's registry, so that what
// is accepted is this list, whatever another package of the binary registers (a GIF or
// BMP decoder, say).
type imageFormat struct {
	name         string
	magic        func(b []byte) bool
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(io.Reader) (image.Image, error)
}

var imageFormats = []imageFormat{
	{"JPEG", func(b []byte) bool { return bytes.HasPrefix(b, []byte("\xff\xd8\xff")) }, jpeg.DecodeConfig, jpeg.Decode},
	{"PNG", func(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }, png.DecodeConfig, png.Decode},
	{"WebP", func(b []byte) bool {
		return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
	}, webp.DecodeConfig, webp.Decode},
}

// imageError is the field error of an image that is refused.
func imageError(msg string) service.FieldErrors { return service.FieldErrors{"image": msg} }

// MakePictures decodes the uploaded file raw and makes the product's two pictures from
// it: the large one (longest side at most 1200 px) and the thumbnail (at most 320 px),
// each a JPEG (quality 85) or, when the image has transparent pixels, a PNG, turned
// upright as a JPEG's EXIF orientation says (orientation.go). It accepts
// JPEG, PNG and WebP, told from the bytes (whatever a Content-Type says), of at most 40
// megapixels; anything else is a service.FieldErrors for "image" that says why: not one
// of those formats (a GIF, an SVG, text), a header that claims too many pixels (checked
// before decoding), or a damaged or truncated file. The caller bounds len(raw)
// (MaxImageBytes) and how many run at once: a 40-megapixel PNG takes ~240 MB.
func MakePictures(raw []byte) (large, thumb Picture, err error) {
	if len(raw) == 0 {
		return Picture{}, Picture{}, imageError("is empty: send a JPEG, PNG or WebP image")
	}
	var f *imageFormat
	for i := range imageFormats {
		if imageFormats[i].magic(raw) {
			f = &imageFormats[i]
			break
		}
	}
	if f == nil {
		return Picture{}, Picture{}, imageError("is not a JPEG, PNG or WebP image")
	}
	cfg, err := f.decodeConfig(bytes.NewReader(raw))
	if err != nil {
		return Picture{}, Picture{}, imageError(fmt.Sprintf("is not a readable %s image (%v)", f.name, err))
	}
	if err := checkImageSize(cfg); err != nil {
		return Picture{}, Picture{}, err
	}
	src, err := f.decode(bytes.NewReader(raw))
	if err != nil {
		return Picture{}, Picture{}, imageError(fmt.Sprintf("is a damaged or incomplete %s image (%v)", f.name, err))
	}
	largeImg := scaleDown(shrink(src, shrinkFactor(cfg.Width, cfg.Height, largeSide)), largeSide)
	if f.name == "JPEG" {
		if o := jpegOrientation(raw); o != 1 {
			largeImg = orient(toRGBA(largeImg), o)
		}
	}
	if large, err = encodePicture(largeImg); err != nil {
		return Picture{}, Picture{}, err
	}
	if thumb, err = encodePicture(scaleDown(largeImg, thumbSide)); err != nil {
		return Picture{}, Picture{}, err
	}
	return large, thumb, nil
}

// checkImageSize refuses an image whose header claims no pixels, more than
// maxImagePixels, or pixels that would take more than maxDecodedBytes decoded.
func checkImageSize(cfg image.Config) error {
	w, h := int64(cfg.Width), int64(cfg.Height)
	switch {
	case w < 1 || h < 1:
		return imageError(fmt.Sprintf("has no pixels (%d×%d)", w, h))
	case w*h > maxImagePixels:
		return imageError(fmt.Sprintf("has %d×%d pixels: at most %d megapixels are accepted", w, h, maxImagePixels/1_000_000))
	case w*h*bytesPerPixel(cfg.ColorModel) > maxDecodedBytes:
		return imageError(fmt.Sprintf("has %d×%d pixels of 16 bits: at most %d megapixels of those are accepted",
			w, h, maxDecodedBytes/8/1_000_000))
	}
	return nil
}

// bytesPerPixel is what a pixel of an image of model takes decoded, at most: 8 bytes for
// 16-bit colour with alpha (PNG), 4 for the rest.
func bytesPerPixel(model color.Model) int64 {
	if model == color.RGBA64Model || model == color.NRGBA64Model {
		return 8
	}
	return 4
}

// scaleDown returns src scaled (Catmull-Rom) so that its longest side is at most side
// pixels, or src itself when it is that small already.
func scaleDown(src image.Image, side int) image.Image {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= side && h <= side {
		return src
	}
	if w >= h {
		w, h = side, max(1, (h*side+w/2)/w)
	} else {
		w, h = max(1, (w*side+h/2)/h), side
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h)) // RGBA: draw and jpeg have fast paths for it
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	return dst
}

// toRGBA returns img as an *image.RGBA whose bounds start at (0, 0): img itself when it is
// one, else a copy.
func toRGBA(img image.Image) *image.RGBA {
	if rgba, ok := img.(*image.RGBA); ok && rgba.Rect.Min == (image.Point{}) {
		return rgba
	}
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	return dst
}

// encodePicture encodes img as a JPEG, or as a PNG when it has a pixel that is not opaque.
func encodePicture(img image.Image) (Picture, error) {
	var buf bytes.Buffer
	p := Picture{ContentType: "image/jpeg", Width: img.Bounds().Dx(), Height: img.Bounds().Dy()}
	var err error
	if opaque(img) {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQuality})
	} else {
		p.ContentType = "image/png"
		err = png.Encode(&buf, img)
	}
	if err != nil {
		return Picture{}, fmt.Errorf("encode a %d×%d picture as %s: %w", p.Width, p.Height, p.ContentType, err)
	}
	p.Bytes = buf.Bytes()
	p.ID = imageIDOf(p.Bytes)
	return p, nil
}

// opaque reports whether every pixel of img is opaque; an image type that cannot tell
// counts as transparent, and is stored as a PNG, which loses nothing.
func opaque(img image.Image) bool {
	o, ok := img.(interface{ Opaque() bool })
	return ok && o.Opaque()
}
