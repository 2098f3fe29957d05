package product

import (
	"bytes"
	"encoding/binary"
	"image"
)

// A camera stores a photo as its sensor saw it and says in the JPEG's EXIF data how to
// turn it for display (the Orientation tag, 1 to 8, TIFF 6.0 and EXIF 2.3): a phone held
// upright stores a landscape picture with orientation 6, "turn 90° clockwise". Browsers
// apply it to a JPEG they show; the pictures the shop makes carry no EXIF, so the service
// applies it itself before dropping the metadata.

// jpegOrientation returns the EXIF orientation of the JPEG file b (1 to 8), or 1 when it
// has none or it cannot be read. It reads only the markers before the image data.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return 1
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			return 1
		}
		marker := b[i+1]
		if marker == 0xd8 || marker >= 0xd0 && marker <= 0xd7 || marker == 0x01 || marker == 0xff {
			i += 2 // markers without a length
			if marker == 0xff {
				i-- // fill byte
			}
			continue
		}
		if marker == 0xda || marker == 0xd9 { // start of scan, end of image: no EXIF ahead
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		segment := b[i+4 : i+2+n]
		if marker == 0xe1 && bytes.HasPrefix(segment, []byte("Exif\x00\x00")) {
			return tiffOrientation(segment[6:])
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation returns the Orientation tag (0x0112) of the first IFD of the TIFF
// structure t, or 1.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int(order.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > len(t) {
		return 1
	}
	entries := int(order.Uint16(t[ifd:]))
	for e := range entries {
		at := ifd + 2 + 12*e
		if at+12 > len(t) {
			return 1
		}
		const orientationTag, typeShort = 0x0112, 3
		if order.Uint16(t[at:]) == orientationTag && order.Uint16(t[at+2:]) == typeShort {
			if o := int(order.Uint16(t[at+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// orient returns img turned as EXIF orientation o says, so that it shows upright: the
// same image for 1 (or an unknown value), a new one otherwise, its width and height
// swapped for 5 to 8.
func orient(img *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		for x := range dw {
			// (sx, sy) is the stored pixel that shows at (x, y).
			var sx, sy int
			switch o {
			case 2: // mirrored
				sx, sy = w-1-x, y
			case 3: // turned 180°
				sx, sy = w-1-x, h-1-y
			case 4: // upside down, mirrored
				sx, sy = x, h-1-y
			case 5: // mirrored along the diagonal
				sx, sy = y, x
			case 6: // turn 90° clockwise
				sx, sy = y, h-1-x
			case 7: // mirrored along the other diagonal
				sx, sy = w-1-y, h-1-x
			case 8: // turn 90° counter-clockwise
				sx, sy = w-1-y, x
			}
			s := img.PixOffset(b.Min.X+sx, b.Min.Y+sy)
			d := dst.PixOffset(x, y)
			copy(dst.Pix[d:d+4], img.Pix[s:s+4])
		}
	}
	return dst
}
