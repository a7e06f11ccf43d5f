package layout

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestGridSizes(t *testing.T) {
	// The default grid (16:9 tiles, a gap of 2) for each number of
	// participants, on a landscape and a portrait canvas: how many tiles
	// each row holds and how large they are.
	tests := []struct {
		canvas   Size
		n        int
		wantRows []int
		wantTile Size
	}{
		{landscape, 1, []int{1}, Size{1280, 720}},
		{landscape, 2, []int{2}, Size{638, 358}},
		{landscape, 3, []int{2, 1}, Size{638, 358}},
		{landscape, 4, []int{2, 2}, Size{638, 358}},
		{landscape, 5, []int{3, 2}, Size{424, 238}},
		{landscape, 9, []int{3, 3, 3}, Size{422, 238}},
		{landscape, 12, []int{4, 4, 4}, Size{318, 178}},
		{portrait, 1, []int{1}, Size{720, 404}},
		{portrait, 2, []int{1, 1}, Size{720, 404}},
		{portrait, 3, []int{1, 1, 1}, Size{720, 404}},
		{portrait, 4, []int{1, 1, 1, 1}, Size{564, 318}},
		{portrait, 5, []int{1, 1, 1, 1, 1}, Size{450, 254}},
		{portrait, 9, []int{2, 2, 2, 2, 1}, Size{358, 200}},
		{portrait, 12, []int{2, 2, 2, 2, 2, 2}, Size{358, 200}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d/%d", tt.canvas.Width, tt.canvas.Height, tt.n), func(t *testing.T) {
			ps := cameras(tt.n)
			s := mustArrange(t, Config{}, tt.canvas, ps)
			if got := tileIDs(s); !slices.Equal(got, tileIDs(Scene{Tiles: tilesFor(ps)})) {
				t.Errorf("tiles %v, want arrival order", got)
			}
			rows, tile := rowsOf(t, s)
			if !slices.Equal(rows, tt.wantRows) || tile != tt.wantTile {
				t.Errorf("got rows %v of %v tiles, want %v of %v", rows, tile, tt.wantRows, tt.wantTile)
			}
			checkCentred(t, s)
			for _, tile := range s.Tiles {
				if tile.Fill != FillCover || tile.Featured || tile.PiP || tile.Z != 0 {
					t.Errorf("tile %+v: want a plain COVER grid tile", tile)
				}
			}
			if s.Featured != "" || s.PiP != "" || len(s.Hidden) != 0 {
				t.Errorf("featured %q, pip %q, hidden %v: want none", s.Featured, s.PiP, s.Hidden)
			}
		})
	}
}

func tilesFor(ps []Participant) []Tile {
	tiles := make([]Tile, len(ps))
	for i, p := range ps {
		tiles[i].ParticipantID = p.ID
	}
	return tiles
}

// checkCentred checks that each row of the Z=0 grid is centred across the
// canvas, and the rows together down it, to within the 2 pixels that even
// rounding may leave.
func checkCentred(t *testing.T, s Scene) {
	t.Helper()
	top, bottom := s.Canvas.Height, 0
	rows := map[int][2]int{} // y → leftmost x, rightmost edge
	for _, tile := range s.Tiles {
		if tile.Z != 0 {
			continue
		}
		r := tile.Slot
		top, bottom = min(top, r.Y), max(bottom, r.Y+r.Height)
		span, ok := rows[r.Y]
		if !ok {
			span = [2]int{r.X, r.X + r.Width}
		}
		rows[r.Y] = [2]int{min(span[0], r.X), max(span[1], r.X+r.Width)}
	}
	for y, span := range rows {
		if left, right := span[0], s.Canvas.Width-span[1]; abs(left-right) > 2 {
			t.Errorf("row at y=%d: %d pixels left, %d right", y, left, right)
		}
	}
	if above, below := top, s.Canvas.Height-bottom; abs(above-below) > 2 {
		t.Errorf("%d pixels above the grid, %d below", above, below)
	}
}

func abs(v int) int { return max(v, -v) }

func TestGridExactRects(t *testing.T) {
	// A few layouts spelled out, pixel for pixel.
	tests := []struct {
		name   string
		cfg    Config
		canvas Size
		n      int
		want   []Rect
	}{
		{
			name: "three: the last row centred", canvas: landscape, n: 3,
			want: []Rect{{0, 0, 638, 358}, {640, 0, 638, 358}, {320, 360, 638, 358}},
		},
		{
			name: "two side by side, centred down the canvas", canvas: landscape, n: 2,
			want: []Rect{{0, 180, 638, 358}, {640, 180, 638, 358}},
		},
		{
			name: "four without a gap tile the canvas", cfg: Config{Grid: &Grid{GridGap: intp(0)}}, canvas: landscape, n: 4,
			want: []Rect{{0, 0, 640, 360}, {640, 0, 640, 360}, {0, 360, 640, 360}, {640, 360, 640, 360}},
		},
		{
			name: "two stacked on a portrait canvas", canvas: portrait, n: 2,
			want: []Rect{{0, 234, 720, 404}, {0, 640, 720, 404}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustArrange(t, tt.cfg, tt.canvas, cameras(tt.n))
			var got []Rect
			for _, tile := range s.Tiles {
				got = append(got, tile.Slot)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGridGap(t *testing.T) {
	tests := []struct {
		name     string
		gap      *int
		wantGap  int // between neighbouring tiles, across and down
		wantTile Size
	}{
		{"default", nil, 2, Size{638, 358}},
		{"none", intp(0), 0, Size{640, 360}},
		{"ten", intp(10), 10, Size{630, 354}},
		{"odd, widened to even", intp(3), 4, Size{636, 358}},
		{"one, widened to two", intp(1), 2, Size{638, 358}},
		{"wider than the canvas, dropped", intp(5000), 0, Size{640, 360}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustArrange(t, Config{Grid: &Grid{GridGap: tt.gap}}, landscape, cameras(4))
			a, b, c := s.Tiles[0].Slot, s.Tiles[1].Slot, s.Tiles[2].Slot
			if across, down := b.X-(a.X+a.Width), c.Y-(a.Y+a.Height); across != tt.wantGap || down != tt.wantGap {
				t.Errorf("gaps %d across and %d down, want %d", across, down, tt.wantGap)
			}
			if got := (Size{a.Width, a.Height}); got != tt.wantTile {
				t.Errorf("tile %v, want %v", got, tt.wantTile)
			}
		})
	}
}

func TestGridAspectRatio(t *testing.T) {
	portraitVideo := func(n int) []Participant {
		ps := cameras(n)
		for i := range ps {
			ps[i].VideoWidth, ps[i].VideoHeight = 720, 1280
		}
		return ps
	}
	tests := []struct {
		name     string
		aspect   AspectRatio
		canvas   Size
		in       []Participant
		wantRows []int
		wantTile Size
	}{
		{"VIDEO is 16:9", AspectVideo, landscape, cameras(4), []int{2, 2}, Size{640, 360}},
		{"SQUARE is 1:1, two by two rather than three and one", AspectSquare, landscape, cameras(4), []int{2, 2}, Size{360, 360}},
		{"SQUARE, two", AspectSquare, landscape, cameras(2), []int{2}, Size{640, 640}},
		{"PORTRAIT is 3:4", AspectPortrait, landscape, cameras(4), []int{4}, Size{320, 426}},
		{"PORTRAIT, three", AspectPortrait, landscape, cameras(3), []int{3}, Size{426, 568}},
		{"PORTRAIT on a portrait canvas", AspectPortrait, portrait, cameras(4), []int{2, 2}, Size{360, 480}},
		{"AUTO fills the canvas", AspectAuto, landscape, cameras(4), []int{2, 2}, Size{640, 360}},
		{"AUTO, three: the last row centred", AspectAuto, landscape, cameras(3), []int{2, 1}, Size{640, 360}},
		{"AUTO with upright videos: side by side", AspectAuto, landscape, portraitVideo(4), []int{4}, Size{320, 720}},
		{"AUTO with upright videos on a portrait canvas", AspectAuto, portrait, portraitVideo(3), []int{2, 1}, Size{360, 640}},
		{"AUTO with landscape videos on a portrait canvas", AspectAuto, portrait, cameras(2), []int{1, 1}, Size{720, 640}},
		{"AUTO with unknown sizes aims at 16:9", AspectAuto, landscape, []Participant{camera("a", 0, 0, 0), camera("b", 1, 0, 0)}, []int{2}, Size{640, 720}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Grid: &Grid{VideoAspectRatio: tt.aspect, GridGap: intp(0)}}
			s := mustArrange(t, cfg, tt.canvas, tt.in)
			rows, tile := rowsOf(t, s)
			if !slices.Equal(rows, tt.wantRows) || tile != tt.wantTile {
				t.Errorf("got rows %v of %v tiles, want %v of %v", rows, tile, tt.wantRows, tt.wantTile)
			}
			checkCentred(t, s)
		})
	}
}

func TestGridFeatured(t *testing.T) {
	p := cameras(4)
	star := func(q Participant) Participant { return with(q, "screen-share", "true") }
	tests := []struct {
		name         string
		canvas       Size
		fill         FillMode
		in           []Participant
		wantFeatured string
		wantSlot     Rect // the featured slot
		wantPicture  Rect // the featured participant's picture
		wantOthers   []Rect
		wantFill     [2]FillMode // featured, others
	}{
		{
			name: "landscape: featured on the left, the others in a column on the right", canvas: landscape,
			in:           []Participant{p[0], star(p[1]), p[2]},
			wantFeatured: "p1", wantSlot: Rect{0, 0, 958, 720}, wantPicture: Rect{0, 90, 958, 538},
			wantOthers: []Rect{{960, 178, 320, 180}, {960, 360, 320, 180}},
			wantFill:   [2]FillMode{FillContain, FillCover},
		},
		{
			name: "portrait: featured on top, the others in a row below", canvas: portrait,
			in:           []Participant{p[0], star(p[1]), p[2]},
			wantFeatured: "p1", wantSlot: Rect{0, 0, 720, 958}, wantPicture: Rect{0, 276, 720, 406},
			wantOthers: []Rect{{0, 1020, 358, 200}, {360, 1020, 358, 200}},
			wantFill:   [2]FillMode{FillContain, FillCover},
		},
		{
			name: "alone, the featured participant takes the canvas", canvas: landscape,
			in:           []Participant{star(p[0])},
			wantFeatured: "p0", wantSlot: Rect{0, 0, 1280, 720}, wantPicture: Rect{0, 0, 1280, 720},
			wantFill: [2]FillMode{FillContain},
		},
		{
			name: "a fill mode set applies to the featured slot too", canvas: landscape, fill: FillStretch,
			in:           []Participant{star(p[3]), p[1]},
			wantFeatured: "p3", wantSlot: Rect{0, 0, 958, 720}, wantPicture: Rect{0, 0, 958, 720},
			wantOthers: []Rect{{960, 270, 320, 180}},
			wantFill:   [2]FillMode{FillStretch, FillStretch},
		},
		{
			name: "only the string true marks the featured participant", canvas: landscape,
			in: []Participant{with(p[0], "screen-share", "TRUE"), with(p[1], "screen-share", "1"),
				with(p[2], "screen-share", "yes"), with(p[3], "other", "true")},
			wantOthers: []Rect{{0, 0, 638, 358}, {640, 0, 638, 358}, {0, 360, 638, 358}, {640, 360, 638, 358}},
			wantFill:   [2]FillMode{"", FillCover},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Grid: &Grid{FeaturedParticipantAttribute: "screen-share", VideoFillMode: tt.fill}}
			s := mustArrange(t, cfg, tt.canvas, tt.in)
			if s.Featured != tt.wantFeatured {
				t.Fatalf("featured %q, want %q", s.Featured, tt.wantFeatured)
			}
			others := s.Tiles
			if tt.wantFeatured != "" {
				f := s.Tiles[0]
				if f.ParticipantID != tt.wantFeatured || !f.Featured || f.Slot != tt.wantSlot ||
					f.Picture != tt.wantPicture || f.Fill != tt.wantFill[0] {
					t.Errorf("featured tile %+v, want %s in %v, picture %v, %s",
						f, tt.wantFeatured, tt.wantSlot, tt.wantPicture, tt.wantFill[0])
				}
				others = s.Tiles[1:]
			}
			var got []Rect
			for _, o := range others {
				got = append(got, o.Slot)
				if o.Featured || o.Fill != tt.wantFill[1] {
					t.Errorf("tile %+v: want not featured, %s", o, tt.wantFill[1])
				}
			}
			if !slices.Equal(got, tt.wantOthers) {
				t.Errorf("others %v, want %v", got, tt.wantOthers)
			}
		})
	}
}

func TestGridFeaturedWithTwelve(t *testing.T) {
	// The featured participant and eleven others in the strip, which holds
	// them in a grid of its own: every one visible, none overlapping.
	ps := cameras(12)
	ps[5] = with(ps[5], "f", "true")
	for _, canvas := range []Size{landscape, portrait, {Width: 1080, Height: 1080}} {
		s := mustArrange(t, Config{Grid: &Grid{FeaturedParticipantAttribute: "f"}}, canvas, ps)
		if len(s.Tiles) != 12 || s.Featured != "p5" || s.Tiles[0].ParticipantID != "p5" {
			t.Errorf("%v: %d tiles, featured %q first %q; want 12, p5 first", canvas, len(s.Tiles), s.Featured, s.Tiles[0].ParticipantID)
		}
		if _, tile := rowsOf(t, s); tile.Width < 100 || tile.Height < 56 {
			t.Errorf("%v: strip tiles %v, want them recognisable", canvas, tile)
		}
	}
}

func TestOmitStoppedVideo(t *testing.T) {
	p := cameras(5)
	stopped := p[1]
	stopped.VideoStopped = true
	audioOnly := p[2]
	audioOnly.PublishesVideo, audioOnly.VideoWidth, audioOnly.VideoHeight = false, 0, 0
	unknownSize := p[3]
	unknownSize.VideoWidth, unknownSize.VideoHeight = 0, 0
	in := []Participant{p[0], stopped, audioOnly, unknownSize, p[4]}

	t.Run("kept", func(t *testing.T) {
		s := mustArrange(t, Config{Grid: &Grid{}}, landscape, in)
		if got, want := tileIDs(s), []string{"p0", "p1", "p2", "p3", "p4"}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for _, id := range []string{"p1", "p2"} {
			if tile := tileOf(t, s, id); tile.ShowsVideo || tile.Crop != (Rect{}) || tile.Picture != tile.Slot {
				t.Errorf("%s: %+v, want an empty tile", id, tile)
			}
		}
		if tile := tileOf(t, s, "p3"); !tile.ShowsVideo || tile.Crop != (Rect{}) || tile.Picture != tile.Slot {
			t.Errorf("p3, size unknown: %+v, want its whole video over the slot", tile)
		}
	})
	t.Run("omitted", func(t *testing.T) {
		for _, cfg := range []Config{{Grid: &Grid{OmitStoppedVideo: true}}, {PiP: &PiP{OmitStoppedVideo: true}}} {
			s := mustArrange(t, cfg, landscape, in)
			got := tileIDs(s)
			slices.Sort(got)
			if want := []string{"p0", "p3", "p4"}; !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if want := []string{"p1", "p2"}; !slices.Equal(s.Hidden, want) {
				t.Errorf("hidden %v, want %v", s.Hidden, want)
			}
		}
	})
	t.Run("a featured participant's stopped video gives the slot to the next", func(t *testing.T) {
		a, b := with(p[0], "f", "true"), with(p[1], "f", "true")
		a.VideoStopped = true
		s := mustArrange(t, Config{Grid: &Grid{FeaturedParticipantAttribute: "f", OmitStoppedVideo: true}}, landscape, []Participant{a, b, p[2]})
		if s.Featured != "p1" || !slices.Equal(s.Hidden, []string{"p0"}) {
			t.Errorf("featured %q, hidden %v; want p1, [p0]", s.Featured, s.Hidden)
		}
		s = mustArrange(t, Config{Grid: &Grid{FeaturedParticipantAttribute: "f"}}, landscape, []Participant{a, b, p[2]})
		if s.Featured != "p0" || tileOf(t, s, "p0").ShowsVideo {
			t.Errorf("not omitted: featured %q; want p0, shown without video", s.Featured)
		}
	})
}

func TestMaxParticipants(t *testing.T) {
	t.Run("the first twelve in order", func(t *testing.T) {
		s := mustArrange(t, Config{}, landscape, cameras(14))
		if len(s.Tiles) != MaxParticipants || !slices.Equal(s.Hidden, []string{"p12", "p13"}) {
			t.Errorf("%d tiles, hidden %v; want 12, [p12 p13]", len(s.Tiles), s.Hidden)
		}
	})
	t.Run("a late featured participant is still shown", func(t *testing.T) {
		ps := cameras(13)
		ps[12] = with(ps[12], "f", "true")
		s := mustArrange(t, Config{Grid: &Grid{FeaturedParticipantAttribute: "f"}}, landscape, ps)
		if s.Featured != "p12" || !slices.Equal(s.Hidden, []string{"p11"}) {
			t.Errorf("featured %q, hidden %v; want p12, [p11]", s.Featured, s.Hidden)
		}
	})
	t.Run("a late PiP participant is still shown", func(t *testing.T) {
		ps := cameras(13)
		ps[12] = with(ps[12], "guest", "true")
		s := mustArrange(t, Config{PiP: &PiP{PipParticipantAttribute: "guest"}}, landscape, ps)
		if s.PiP != "p12" || !slices.Equal(s.Hidden, []string{"p11"}) {
			t.Errorf("pip %q, hidden %v; want p12, [p11]", s.PiP, s.Hidden)
		}
	})
	t.Run("omitted participants leave room for others", func(t *testing.T) {
		ps := cameras(14)
		ps[0].VideoStopped, ps[1].PublishesVideo = true, false
		s := mustArrange(t, Config{Grid: &Grid{OmitStoppedVideo: true}}, landscape, ps)
		if len(s.Tiles) != 12 || !slices.Equal(s.Hidden, []string{"p0", "p1"}) {
			t.Errorf("%d tiles, hidden %v; want 12, [p0 p1]", len(s.Tiles), s.Hidden)
		}
	})
}

func TestTinyCanvas(t *testing.T) {
	// A canvas too small for everyone shows those that fit, in order.
	tests := []struct {
		canvas Size
		cfg    Config
		want   []string
	}{
		{Size{2, 2}, Config{}, []string{"p0"}},
		{Size{8, 2}, Config{}, []string{"p0", "p1", "p2", "p3"}},
		{Size{2, 2}, Config{Grid: &Grid{FeaturedParticipantAttribute: "f"}}, []string{"p3"}},
		{Size{4, 4}, Config{PiP: &PiP{}}, []string{"p0", "p2", "p3", "p4", "p1"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v %v", tt.canvas, tt.cfg.Grid != nil), func(t *testing.T) {
			ps := cameras(12)
			ps[3] = with(ps[3], "f", "true")
			s := mustArrange(t, tt.cfg, tt.canvas, ps)
			if got := tileIDs(s); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestArrangeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		canvas Size
		in     []Participant
	}{
		{"odd width", Size{1279, 720}, cameras(1)},
		{"odd height", Size{1280, 719}, cameras(1)},
		{"zero", Size{}, cameras(1)},
		{"negative", Size{-2, 720}, cameras(1)},
		{"too large", Size{MaxCanvasSide + 2, 720}, cameras(1)},
		{"a participant without an id", landscape, []Participant{{JoinOrder: 1}}},
		{"a participant twice", landscape, append(cameras(2), cameras(1)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Arrange(Config{}, tt.canvas, tt.in); err == nil {
				t.Error("got no error")
			}
		})
	}
}

func TestArrangeRefusesConfig(t *testing.T) {
	// Arrange fills in the defaults itself, and refuses what WithDefaults
	// refuses, with the same error.
	for _, cfg := range []Config{
		{Grid: &Grid{GridGap: intp(-1)}},
		{PiP: &PiP{PipPosition: "MIDDLE"}},
		{Grid: &Grid{}, PiP: &PiP{}},
	} {
		_, want := cfg.WithDefaults()
		_, got := Arrange(cfg, landscape, cameras(2))
		var fe *FieldError
		if !errors.As(got, &fe) || got.Error() != want.Error() {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}

func TestNoParticipants(t *testing.T) {
	for _, cfg := range []Config{{}, {PiP: &PiP{PipParticipantAttribute: "g"}}} {
		s := mustArrange(t, cfg, landscape, nil)
		if len(s.Tiles) != 0 || s.Canvas != landscape {
			t.Errorf("got %+v, want an empty scene", s)
		}
	}
}
