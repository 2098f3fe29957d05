package product

import "image"

// Before the Catmull-Rom pass that makes the large picture, an image much larger than it
// is first made a whole number of times smaller by averaging blocks of pixels (a box
// filter, the plain anti-aliasing filter for a whole factor). The kernel scaler of
// x/image/draw keeps a buffer of destination width × source height × 32 bytes: 210 MB for
// a 40-megapixel photo, a quarter of that after a 4× shrink, and the pass is that much
// faster too.

// shrinkFactor is how many times smaller a w×h image may be made before it is scaled so
// that its longest side is side: the largest whole number that leaves that side at least
// 1.5 × side, so the Catmull-Rom pass still scales down and smooths the block averages.
func shrinkFactor(w, h, side int) int {
	return max(1, 2*max(w, h)/(3*side))
}

// shrink returns src made k times smaller in each direction (rounded up) by averaging
// k×k blocks, for the image types that large uploads decode to: *image.YCbCr (JPEG, lossy
// WebP) plane by plane, *image.RGBA (opaque PNG) and *image.NRGBA (PNG and lossless WebP
// with transparency, averaged weighted by alpha). Any other image, or k < 2, is returned
// as it is.
func shrink(src image.Image, k int) image.Image {
	if k < 2 {
		return src
	}
	switch src := src.(type) {
	case *image.YCbCr:
		return shrinkYCbCr(src, k)
	case *image.RGBA:
		dst := image.NewRGBA(shrunkRect(src.Rect, k))
		boxAverage4(dst.Pix, dst.Stride, dst.Rect.Dx(), dst.Rect.Dy(), src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y):],
			src.Stride, src.Rect.Dx(), src.Rect.Dy(), k, false)
		return dst
	case *image.NRGBA:
		dst := image.NewNRGBA(shrunkRect(src.Rect, k))
		boxAverage4(dst.Pix, dst.Stride, dst.Rect.Dx(), dst.Rect.Dy(), src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y):],
			src.Stride, src.Rect.Dx(), src.Rect.Dy(), k, true)
		return dst
	}
	return src
}

// shrunkRect is the bounds of an image of bounds r made k times smaller, from (0, 0).
func shrunkRect(r image.Rectangle, k int) image.Rectangle {
	return image.Rect(0, 0, (r.Dx()+k-1)/k, (r.Dy()+k-1)/k)
}

// shrinkYCbCr is shrink of a YCbCr image, each plane averaged on its own.
func shrinkYCbCr(ycc *image.YCbCr, k int) *image.YCbCr {
	r := ycc.Rect
	w, h := r.Dx(), r.Dy()
	dst := image.NewYCbCr(shrunkRect(r, k), ycc.SubsampleRatio)
	boxAverage(dst.Y, dst.YStride, dst.Rect.Dx(), dst.Rect.Dy(), ycc.Y[ycc.YOffset(r.Min.X, r.Min.Y):], ycc.YStride, w, h, k)
	hs, vs := chromaSubsampling(ycc.SubsampleRatio)
	cw, ch := chromaSize(r, hs, vs)
	dcw, dch := chromaSize(dst.Rect, hs, vs)
	c := ycc.COffset(r.Min.X, r.Min.Y)
	boxAverage(dst.Cb, dst.CStride, dcw, dch, ycc.Cb[c:], ycc.CStride, cw, ch, k)
	boxAverage(dst.Cr, dst.CStride, dcw, dch, ycc.Cr[c:], ycc.CStride, cw, ch, k)
	return dst
}

// chromaSubsampling is how many luma samples, across and down, share one chroma sample.
func chromaSubsampling(ratio image.YCbCrSubsampleRatio) (hs, vs int) {
	switch ratio {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

// chromaSize is the width and height, in chroma samples, of the chroma planes of an
// image of bounds r, as image.YCbCr lays them out.
func chromaSize(r image.Rectangle, hs, vs int) (w, h int) {
	return (r.Max.X+hs-1)/hs - r.Min.X/hs, (r.Max.Y+vs-1)/vs - r.Min.Y/vs
}

// boxAverage sets each of the dw×dh samples of dst (rows stride dstStride apart) to the
// average of its k×k block of the sw×sh samples of src (rows srcStride apart); a block
// cut by src's edge averages what it has, and one past the edge repeats the last.
func boxAverage(dst []byte, dstStride, dw, dh int, src []byte, srcStride, sw, sh, k int) {
	for dy := range dh {
		y0 := min(dy*k, sh-1)
		y1 := min(y0+k, sh)
		for dx := range dw {
			x0 := min(dx*k, sw-1)
			x1 := min(x0+k, sw)
			sum := 0
			for y := y0; y < y1; y++ {
				row := src[y*srcStride:]
				for x := x0; x < x1; x++ {
					sum += int(row[x])
				}
			}
			n := (y1 - y0) * (x1 - x0)
			dst[dy*dstStride+dx] = byte((sum + n/2) / n)
		}
	}
}

// boxAverage4 is boxAverage of pixels of four bytes, red, green, blue and alpha; with
// straight (non-premultiplied) alpha, the colours are weighted by it, so that a
// transparent pixel's colour, which shows nowhere, does not tint its block.
func boxAverage4(dst []byte, dstStride, dw, dh int, src []byte, srcStride, sw, sh, k int, straight bool) {
	for dy := range dh {
		y0 := min(dy*k, sh-1)
		y1 := min(y0+k, sh)
		for dx := range dw {
			x0 := min(dx*k, sw-1)
			x1 := min(x0+k, sw)
			var r, g, b, a int
			for y := y0; y < y1; y++ {
				row := src[y*srcStride:]
				for x := x0; x < x1; x++ {
					p := row[4*x : 4*x+4 : 4*x+4]
					w := 1
					if straight {
						w = int(p[3])
					}
					r, g, b, a = r+int(p[0])*w, g+int(p[1])*w, b+int(p[2])*w, a+int(p[3])
				}
			}
			n := (y1 - y0) * (x1 - x0)
			weight := n
			if straight {
				weight = a
			}
			d := dst[dy*dstStride+4*dx : dy*dstStride+4*dx+4 : dy*dstStride+4*dx+4]
			if weight > 0 {
				d[0], d[1], d[2] = byte((r+weight/2)/weight), byte((g+weight/2)/weight), byte((b+weight/2)/weight)
			}
			d[3] = byte((a + n/2) / n)
		}
	}
}
