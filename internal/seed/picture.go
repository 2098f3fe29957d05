package seed

import (
	"bytes"
	"crypto/sha256"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strings"
	"unicode"

	"golang.org/x/image/draw"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	xfont "golang.org/x/image/font"
)

// The size of a demo picture: the shop's large picture, so it is stored as drawn.
const (
	pictureWidth  = 1200
	pictureHeight = 900
)

// Picture draws the demo picture of the product named name, as a JPEG: a tile of a colour
// and a shape (a disc, a ring, a diamond, a triangle or a square) chosen from the name's
// SHA-256, with the name's initials. The same name always gives the same bytes, and the
// shop stores one picture for them however often it is seeded.
func Picture(name string) []byte {
	sum := sha256.Sum256([]byte(name))
	hue := float64(sum[5]) / 256 * 360
	ground := hsl(hue, 0.45, 0.82)
	shade := hsl(hue, 0.55, 0.42)
	accent := hsl(math.Mod(hue+150, 360), 0.6, 0.55)

	img := image.NewRGBA(image.Rect(0, 0, pictureWidth, pictureHeight))
	// The ground: a vertical gradient from the tile's colour to a little darker.
	for y := range pictureHeight {
		c := mix(ground, shade, float64(y)/pictureHeight*0.35)
		for x := range pictureWidth {
			img.SetRGBA(x, y, c)
		}
	}
	cx, cy, r := pictureWidth/2, pictureHeight/2, 300.0
	inShape := shapes[int(sum[1])%len(shapes)]
	for y := range pictureHeight {
		for x := range pictureWidth {
			dx, dy := float64(x-cx)/r, float64(y-cy)/r
			if inShape(dx, dy) {
				img.SetRGBA(x, y, accent)
			}
		}
	}
	drawInitials(img, initials(name), color.RGBA{255, 255, 255, 255})

	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic("seed: encode a picture: " + err.Error()) // into memory: cannot fail
	}
	return buf.Bytes()
}

// shapes say whether the point (dx, dy), in units of the shape's radius from its centre,
// is inside the shape.
var shapes = []func(dx, dy float64) bool{
	func(dx, dy float64) bool { return dx*dx+dy*dy <= 1 },                           // disc
	func(dx, dy float64) bool { d := dx*dx + dy*dy; return d <= 1 && d >= 0.45 },    // ring
	func(dx, dy float64) bool { return math.Abs(dx)+math.Abs(dy) <= 1.1 },           // diamond
	func(dx, dy float64) bool { return dy <= 0.8 && dy >= 1.9*math.Abs(dx)-1.0 },    // triangle
	func(dx, dy float64) bool { return math.Abs(dx) <= 0.8 && math.Abs(dy) <= 0.8 }, // square
}

// initials are the first letters of name's first two words, upper case.
func initials(name string) string {
	var out []rune
	for _, w := range strings.Fields(name) {
		for _, r := range w {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				out = append(out, unicode.ToUpper(r))
				break
			}
		}
		if len(out) == 2 {
			break
		}
	}
	return string(out)
}

// drawInitials draws text in c at the centre of img, in basicfont's 7×13 face scaled up
// twelve times.
func drawInitials(img *image.RGBA, text string, c color.RGBA) {
	face := basicfont.Face7x13
	const scale = 12
	small := image.NewRGBA(image.Rect(0, 0, 7*len(text)+2, 13+2))
	d := xfont.Drawer{Dst: small, Src: image.NewUniform(c), Face: face, Dot: fixed.P(1, 1+face.Ascent)}
	d.DrawString(text)
	b := small.Bounds()
	w, h := b.Dx()*scale, b.Dy()*scale
	at := image.Rect((pictureWidth-w)/2, (pictureHeight-h)/2, (pictureWidth+w)/2, (pictureHeight+h)/2)
	draw.NearestNeighbor.Scale(img, at, small, b, draw.Over, nil)
}

// hsl is the colour of hue h (degrees), saturation s and lightness l (0 to 1).
func hsl(h, s, l float64) color.RGBA {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	return color.RGBA{uint8((r + m) * 255), uint8((g + m) * 255), uint8((b + m) * 255), 255}
}

// mix is a blended with b by t (0: a, 1: b).
func mix(a, b color.RGBA, t float64) color.RGBA {
	f := func(x, y uint8) uint8 { return uint8(float64(x)*(1-t) + float64(y)*t) }
	return color.RGBA{f(a.R, b.R), f(a.G, b.G), f(a.B, b.B), 255}
}
