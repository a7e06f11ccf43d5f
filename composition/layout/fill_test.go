package layout

import (
	"fmt"
	"testing"
)

func TestPlaceVideo(t *testing.T) {
	wide := Rect{X: 100, Y: 50, Width: 640, Height: 360} // a 16:9 tile
	square := Rect{Width: 360, Height: 360}
	tests := []struct {
		name        string
		slot        Rect
		mode        FillMode
		w, h        int
		wantPicture Rect
		wantCrop    Rect
	}{
		// FILL: the whole video over the whole tile.
		{"fill, same shape", wide, FillStretch, 1280, 720, wide, Rect{0, 0, 1280, 720}},
		{"fill, upright video stretched", wide, FillStretch, 720, 1280, wide, Rect{0, 0, 720, 1280}},
		{"fill, odd size: the last row and column left out", wide, FillStretch, 641, 361, wide, Rect{0, 0, 640, 360}},

		// COVER: the whole tile, the video's middle cropped to its shape.
		{"cover, same shape: nothing cropped", wide, FillCover, 1280, 720, wide, Rect{0, 0, 1280, 720}},
		{"cover, 4:3 video: top and bottom cropped", wide, FillCover, 640, 480, wide, Rect{0, 60, 640, 360}},
		{"cover, upright video: its middle band", wide, FillCover, 720, 1280, wide, Rect{0, 436, 720, 406}},
		{"cover, odd 16:9 video in a square: its middle", square, FillCover, 641, 361, square, Rect{140, 0, 360, 360}},
		{"cover, odd video just wider than the tile", wide, FillCover, 1279, 719, wide, Rect{0, 0, 1276, 718}},
		{"cover, odd upright video in a square", square, FillCover, 361, 641, square, Rect{0, 140, 360, 360}},

		// CONTAIN: the whole video, as large as fits, centred.
		{"contain, same shape: the whole tile", wide, FillContain, 1280, 720, wide, Rect{0, 0, 1280, 720}},
		{"contain, upright video: bars left and right", wide, FillContain, 720, 1280, Rect{318, 50, 202, 360}, Rect{0, 0, 720, 1280}},
		{"contain, 4:3 video: narrower bars", wide, FillContain, 640, 480, Rect{180, 50, 480, 360}, Rect{0, 0, 640, 480}},
		{"contain, 16:9 in a square: bars above and below", square, FillContain, 1280, 720, Rect{0, 78, 360, 202}, Rect{0, 0, 1280, 720}},
		{"contain, odd video of the tile's shape", wide, FillContain, 641, 361, wide, Rect{0, 0, 640, 360}},
		{"contain, odd upright video", wide, FillContain, 481, 855, Rect{318, 50, 202, 360}, Rect{0, 0, 480, 854}},
		{"contain, a sliver still gets two pixels", wide, FillContain, 2, 1000, Rect{418, 50, 2, 360}, Rect{0, 0, 2, 1000}},

		// Unknown or unusable sizes: the whole video over the whole tile.
		{"unknown size, cover", wide, FillCover, 0, 0, wide, Rect{}},
		{"unknown size, contain", wide, FillContain, 0, 720, wide, Rect{}},
		{"a one-pixel video", wide, FillContain, 1, 1, wide, Rect{}},
		{"negative size", wide, FillCover, -1280, 720, wide, Rect{}},
		{"absurd size", wide, FillCover, 1 << 20, 1 << 20, wide, Rect{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := camera("p", 0, tt.w, tt.h)
			tile := tileFor(p, tt.slot, tt.mode)
			if tile.Picture != tt.wantPicture || tile.Crop != tt.wantCrop {
				t.Errorf("got picture %v crop %v, want %v and %v", tile.Picture, tile.Crop, tt.wantPicture, tt.wantCrop)
			}
			if !tile.Picture.Even() || !tile.Picture.Within(tt.slot) || !tile.Crop.Even() {
				t.Errorf("picture %v or crop %v not even, or outside the slot %v", tile.Picture, tile.Crop, tt.slot)
			}
		})
	}
}

func TestCoverKeepsTheTileShape(t *testing.T) {
	// Whatever the video, COVER's crop has the tile's shape to within the
	// two pixels of even rounding, so nothing is stretched.
	slots := []Rect{{Width: 640, Height: 360}, {Width: 360, Height: 360}, {Width: 202, Height: 360}, {Width: 1920, Height: 2}}
	sizes := [][2]int{{1280, 720}, {641, 361}, {720, 1280}, {3, 3}, {1919, 1081}, {4000, 2}, {2, 4000}}
	for _, slot := range slots {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%v/%dx%d", slot, size[0], size[1]), func(t *testing.T) {
				tile := tileFor(camera("p", 0, size[0], size[1]), slot, FillCover)
				c := tile.Crop
				if !c.Even() || !c.Within(Rect{Width: size[0], Height: size[1]}) || c.Empty() {
					t.Fatalf("crop %v: not even or outside the video", c)
				}
				// c.Width/c.Height against slot.Width/slot.Height, in
				// pixels of the crop's longer side: off by at most 2,
				// unless a side is already at its 2-pixel minimum.
				wantW := float64(c.Height) * float64(slot.Width) / float64(slot.Height)
				wantH := float64(c.Width) * float64(slot.Height) / float64(slot.Width)
				if offW, offH := float64(c.Width)-wantW, float64(c.Height)-wantH; (offW > 2 || offW < -2) &&
					(offH > 2 || offH < -2) && c.Width > 2 && c.Height > 2 {
					t.Errorf("crop %v is not the shape of %v", c, slot)
				}
			})
		}
	}
}

func TestFillModesInAGrid(t *testing.T) {
	// End to end: an odd-sized upright video in a 16:9 grid tile, by each
	// fill mode.
	in := []Participant{camera("a", 0, 481, 855), camera("b", 1, 1280, 720)}
	tests := []struct {
		mode        FillMode
		wantPicture Rect
		wantCrop    Rect
	}{
		{FillStretch, Rect{0, 180, 638, 358}, Rect{0, 0, 480, 854}},
		{FillCover, Rect{0, 180, 638, 358}, Rect{0, 292, 480, 270}},
		{FillContain, Rect{218, 180, 202, 358}, Rect{0, 0, 480, 854}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			s := mustArrange(t, Config{Grid: &Grid{VideoFillMode: tt.mode}}, landscape, in)
			a := tileOf(t, s, "a")
			if a.Fill != tt.mode || a.Picture != tt.wantPicture || a.Crop != tt.wantCrop {
				t.Errorf("got %s picture %v crop %v, want %s %v %v", a.Fill, a.Picture, a.Crop, tt.mode, tt.wantPicture, tt.wantCrop)
			}
		})
	}
}
