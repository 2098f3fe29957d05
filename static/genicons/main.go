// Command genicons draws the storefront's app icons (a shopping bag on the shop's colour)
// as PNG files, so that they are reproducible without an image editor. Run it with
// `go generate ./static`; the PNGs are committed.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("out", "icons", "folder to write the icons into")
	flag.Parse()
	for _, size := range []int{192, 512} {
		for _, maskable := range []bool{false, true} {
			name := fmt.Sprintf("icon-%d.png", size)
			if maskable {
				name = fmt.Sprintf("icon-maskable-%d.png", size)
			}
			if err := write(filepath.Join(*out, name), draw(size, maskable)); err != nil {
				fmt.Fprintln(os.Stderr, "genicons:", err)
				os.Exit(1)
			}
		}
	}
}

var (
	brand = color.RGBA{0x1d, 0x4e, 0xd8, 0xff} // --brand in css/shop.css
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// draw returns a size×size icon: a white bag with a handle on the brand colour. A
// maskable icon fills the square (the platform cuts its own shape) and keeps the bag in
// the central safe zone; the plain one has rounded corners.
func draw(size int, maskable bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	radius := s * 0.18
	if maskable {
		radius = 0
	}
	scale := 1.0
	if maskable {
		scale = 0.8 // keep the bag inside the 80 % safe zone
	}
	for y := range size {
		for x := range size {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			if !inRoundedRect(fx, fy, 0, 0, s, s, radius) {
				continue
			}
			img.Set(x, y, brand)
			// Coordinates relative to the centre, scaled for the safe zone.
			u, v := (fx-s/2)/(s*scale)+0.5, (fy-s/2)/(s*scale)+0.5
			bag := inRoundedRect(u, v, 0.25, 0.38, 0.75, 0.80, 0.05)
			dx, dy := u-0.5, v-0.38
			ring := dx*dx + dy*dy
			handle := v < 0.38 && ring < 0.15*0.15 && ring > 0.10*0.10
			if bag || handle {
				img.Set(x, y, white)
			}
		}
	}
	return img
}

// inRoundedRect reports whether (x, y) lies in the rectangle (x0, y0)-(x1, y1) with
// corners rounded by r.
func inRoundedRect(x, y, x0, y0, x1, y1, r float64) bool {
	if x < x0 || x >= x1 || y < y0 || y >= y1 {
		return false
	}
	cx := min(max(x, x0+r), x1-r)
	cy := min(max(y, y0+r), y1-r)
	return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
}

func write(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return f.Close()
}
