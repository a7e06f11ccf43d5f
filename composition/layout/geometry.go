package layout

import "fmt"

// Size is a width and height in pixels.
type Size struct {
	Width, Height int
}

// Rect is a rectangle in pixels: X and Y its top-left corner.
type Rect struct {
	X, Y, Width, Height int
}

func (r Rect) String() string { return fmt.Sprintf("%dx%d+%d+%d", r.Width, r.Height, r.X, r.Y) }

// Empty reports whether r has no area.
func (r Rect) Empty() bool { return r.Width <= 0 || r.Height <= 0 }

// Within reports whether r lies entirely inside outer.
func (r Rect) Within(outer Rect) bool {
	return r.X >= outer.X && r.Y >= outer.Y &&
		r.X+r.Width <= outer.X+outer.Width && r.Y+r.Height <= outer.Y+outer.Height
}

// Even reports whether r's corner and size are all even numbers, which 4:2:0
// video needs to place and size a picture exactly.
func (r Rect) Even() bool {
	return r.X%2 == 0 && r.Y%2 == 0 && r.Width%2 == 0 && r.Height%2 == 0
}

// minTileSide is the smallest tile side: the smallest even picture.
const minTileSide = 2

// evenDown rounds a non-negative v down to an even number.
func evenDown(v int) int { return v &^ 1 }

// evenUp rounds a non-negative v up to an even number.
func evenUp(v int) int { return (v + 1) &^ 1 }

// evenQuotient returns num/den rounded to the nearest even number (halves
// upward), for num ≥ 0 and den > 0. It works in int64 so that the products
// of two sizes behind num never overflow.
func evenQuotient(num, den int64) int {
	return int(2 * ((num + den) / (2 * den)))
}

// ratio is an aspect ratio, width:height, both positive.
type ratio struct{ w, h int64 }

var (
	ratioVideo    = ratio{16, 9}
	ratioSquare   = ratio{1, 1}
	ratioPortrait = ratio{3, 4}
	ratioTall     = ratio{9, 16} // a phone held upright
)

// fittedArea returns, in units comparable across calls with the same ratio,
// the area of the largest rectangle of shape r inside w×h. Integer
// arithmetic keeps the comparison exact and the same on every machine: the
// area is w²·r.h/r.w when the width limits it and h²·r.w/r.h otherwise, and
// both are multiplied here by r.w·r.h.
func fittedArea(w, h int, r ratio) int64 {
	W, H := int64(w), int64(h)
	if W*r.h <= H*r.w { // narrower than r: the width limits
		return W * W * r.h * r.h
	}
	return H * H * r.w * r.w
}

// fitted returns the largest w×h of shape r inside the given size, rounded
// down to even sides but never below minTileSide: the caller's size is at
// least that, and a tiny tile slightly off shape beats no tile at all.
func fitted(width, height int, r ratio) (w, h int) {
	W, H := int64(width), int64(height)
	if W*r.h <= H*r.w {
		w, h = width, int(W*r.h/r.w)
	} else {
		w, h = int(H*r.w/r.h), height
	}
	return max(evenDown(w), minTileSide), max(evenDown(h), minTileSide)
}

// gridSpec is how a set of tiles is arranged in an area.
type gridSpec struct {
	// shape is the tiles' aspect ratio; when stretch is set it only guides
	// the choice of rows and columns, and tiles fill their cells.
	shape   ratio
	stretch bool
	gap     int // even
}

// gridTiles arranges n equal tiles in area, row by row, and returns them in
// that order, or false when area cannot give each a tile of at least
// minTileSide.
//
// IVS does not document its grid; this one is what its pictures and every
// video-call grid show. The number of columns (and so rows, ceil(n/cols)) is
// the one that makes tiles of the given shape largest; between two equally
// good, the one with fewer empty places (2×2 rather than 3+1 for four
// squares), then in an area wider than tall more columns, in a taller one
// more rows.
// Tiles are as large as their cells allow at that shape, the block of them
// is centred in area, and a last row with fewer tiles is centred under the
// others rather than left-aligned, so the picture stays balanced. A gap
// that would leave no room for the tiles is dropped rather than the tiles.
func gridTiles(area Rect, n int, spec gridSpec) ([]Rect, bool) {
	if n <= 0 {
		return nil, true
	}
	if tiles, ok := gridTilesWithGap(area, n, spec); ok || spec.gap == 0 {
		return tiles, ok
	}
	spec.gap = 0
	return gridTilesWithGap(area, n, spec)
}

func gridTilesWithGap(area Rect, n int, spec gridSpec) ([]Rect, bool) {
	gap := spec.gap
	bestCols, bestCellW, bestCellH, bestEmpty := 0, 0, 0, 0
	var bestArea int64
	for cols := 1; cols <= n; cols++ {
		rows := (n + cols - 1) / cols
		cellW := (area.Width - (cols-1)*gap) / cols
		cellH := (area.Height - (rows-1)*gap) / rows
		if cellW < minTileSide || cellH < minTileSide {
			continue
		}
		a, empty := fittedArea(cellW, cellH, spec.shape), rows*cols-n
		better := a > bestArea ||
			(a == bestArea && empty < bestEmpty) ||
			(a == bestArea && empty == bestEmpty && area.Width >= area.Height)
		if bestCols == 0 || better {
			bestCols, bestCellW, bestCellH, bestArea, bestEmpty = cols, cellW, cellH, a, empty
		}
	}
	if bestCols == 0 {
		return nil, false
	}
	cols, rows := bestCols, (n+bestCols-1)/bestCols
	tileW, tileH := evenDown(bestCellW), evenDown(bestCellH)
	if !spec.stretch {
		tileW, tileH = fitted(bestCellW, bestCellH, spec.shape)
	}
	if tileW < minTileSide || tileH < minTileSide {
		return nil, false
	}
	blockH := rows*tileH + (rows-1)*gap
	y := area.Y + evenDown((area.Height-blockH)/2)
	tiles := make([]Rect, 0, n)
	for row := range rows {
		inRow := min(cols, n-row*cols)
		rowW := inRow*tileW + (inRow-1)*gap
		x := area.X + evenDown((area.Width-rowW)/2)
		for range inRow {
			tiles = append(tiles, Rect{X: x, Y: y, Width: tileW, Height: tileH})
			x += tileW + gap
		}
		y += tileH + gap
	}
	return tiles, true
}

// featuredSplit divides area between the featured participant and a strip
// for the others: the featured slot first, then the strip.
//
// IVS does not document where the featured slot goes. Here the featured
// participant takes three quarters of the canvas's longer side, the full
// length of the shorter, and the others share the remaining quarter: a
// column on the right of a landscape (or square) canvas, a row at the
// bottom of a portrait one. That keeps the featured picture (often a
// screen share) as large as possible while every other face stays
// recognisable, as in the speaker views of video-call services.
func featuredSplit(area Rect, gap int) (featured, strip Rect, ok bool) {
	if area.Width >= area.Height {
		stripW := evenDown(area.Width / 4)
		featuredW := area.Width - stripW - gap
		if featuredW < minTileSide && gap > 0 { // no room for the gap: drop it
			featuredW = area.Width - stripW
		}
		featured = Rect{X: area.X, Y: area.Y, Width: featuredW, Height: area.Height}
		strip = Rect{X: area.X + area.Width - stripW, Y: area.Y, Width: stripW, Height: area.Height}
	} else {
		stripH := evenDown(area.Height / 4)
		featuredH := area.Height - stripH - gap
		if featuredH < minTileSide && gap > 0 {
			featuredH = area.Height - stripH
		}
		featured = Rect{X: area.X, Y: area.Y, Width: area.Width, Height: featuredH}
		strip = Rect{X: area.X, Y: area.Y + area.Height - stripH, Width: area.Width, Height: stripH}
	}
	ok = featured.Width >= minTileSide && featured.Height >= minTileSide &&
		strip.Width >= minTileSide && strip.Height >= minTileSide
	return featured, strip, ok
}

// placeVideo fits a w×h video (ok false when its size is unknown) into a
// tile by the fill mode. It returns where the picture goes in the canvas and
// which part of the video to use, in the video's own pixels.
//
//   - FILL stretches the whole video over the tile.
//   - COVER covers the tile, cropping the video's middle to the tile's shape.
//   - CONTAIN shows the whole video as large as the tile allows at its own
//     shape, centred, with bars on the two sides it does not reach.
//
// Both rectangles are even. The crop of an odd-sized video leaves out its
// last row or column, which no one can see and which 4:2:0 could not place
// exactly anyway. While the size is unknown the picture goes over the whole
// tile and the crop is the zero Rect, meaning "all of it".
func placeVideo(slot Rect, mode FillMode, w, h int, ok bool) (picture, crop Rect) {
	if !ok {
		return slot, Rect{}
	}
	srcW, srcH := evenDown(w), evenDown(h)
	full := Rect{Width: srcW, Height: srcH}
	sw, sh := int64(srcW), int64(srcH)
	tw, th := int64(slot.Width), int64(slot.Height)
	wider := sw*th > sh*tw // the video is wider than the tile
	switch mode {
	case FillCover:
		crop = full
		if wider {
			crop.Width = clampEven(evenQuotient(sh*tw, th), srcW)
			crop.X = evenDown((srcW - crop.Width) / 2)
		} else {
			crop.Height = clampEven(evenQuotient(sw*th, tw), srcH)
			crop.Y = evenDown((srcH - crop.Height) / 2)
		}
		return slot, crop
	case FillContain:
		picture = slot
		if wider {
			picture.Height = clampEven(evenQuotient(tw*sh, sw), slot.Height)
			picture.Y += evenDown((slot.Height - picture.Height) / 2)
		} else {
			picture.Width = clampEven(evenQuotient(th*sw, sh), slot.Width)
			picture.X += evenDown((slot.Width - picture.Width) / 2)
		}
		return picture, full
	default: // FillStretch
		return slot, full
	}
}

// clampEven keeps an even v between minTileSide and an even limit.
func clampEven(v, limit int) int {
	return max(minTileSide, min(v, limit))
}
