package layout

import (
	"cmp"
	"slices"
	"testing"
)

// host and guest are the usual two of a PiP layout: the guest marked for
// the window.
func hostAndGuest() []Participant {
	return []Participant{camera("host", 0, 1280, 720), with(camera("guest", 1, 1280, 720), "guest", "true")}
}

func TestPipPosition(t *testing.T) {
	// The default window on a 1280×720 canvas, for 16:9 video, is 320×180.
	tests := []struct {
		name     string
		position PipPosition
		offset   int
		want     Rect
	}{
		{"default: bottom right", "", 0, Rect{960, 540, 320, 180}},
		{"bottom right, offset", PipBottomRight, 20, Rect{940, 520, 320, 180}},
		{"top left", PipTopLeft, 0, Rect{0, 0, 320, 180}},
		{"top left, offset", PipTopLeft, 16, Rect{16, 16, 320, 180}},
		{"top right, offset", PipTopRight, 16, Rect{944, 16, 320, 180}},
		{"bottom left, offset", PipBottomLeft, 16, Rect{16, 524, 320, 180}},
		{"odd offset rounded down to even", PipTopLeft, 15, Rect{14, 14, 320, 180}},
		{"an offset beyond the canvas stops at the far edge", PipTopLeft, 5000, Rect{960, 540, 320, 180}},
		{"the same from the bottom right", PipBottomRight, 5000, Rect{0, 0, 320, 180}},
		{"an offset too large one way only", PipTopRight, 600, Rect{360, 540, 320, 180}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{PiP: &PiP{PipParticipantAttribute: "guest", PipPosition: tt.position, PipOffset: tt.offset}}
			s := mustArrange(t, cfg, landscape, hostAndGuest())
			if got, want := tileIDs(s), []string{"host", "guest"}; !slices.Equal(got, want) {
				t.Fatalf("tiles %v, want %v: the window drawn last", got, want)
			}
			host, guest := s.Tiles[0], s.Tiles[1]
			if host.Slot != (Rect{0, 0, 1280, 720}) || host.Z != 0 || host.PiP {
				t.Errorf("host %+v, want the whole canvas below", host)
			}
			if guest.Slot != tt.want || guest.Z != 1 || !guest.PiP || s.PiP != "guest" {
				t.Errorf("guest %+v (scene pip %q), want %v above", guest, s.PiP, tt.want)
			}
		})
	}
}

func TestPipSize(t *testing.T) {
	tests := []struct {
		name          string
		canvas        Size
		width, height *int
		videoW        int
		videoH        int
		want          Size
	}{
		{"default, 16:9 video: a sixteenth of the canvas", landscape, nil, nil, 1280, 720, Size{320, 180}},
		{"default, upright video: upright window of the same area", landscape, nil, nil, 720, 1280, Size{180, 320}},
		{"default, 4:3 video", landscape, nil, nil, 640, 480, Size{278, 208}},
		{"default, size unknown: the canvas's shape", landscape, nil, nil, 0, 0, Size{320, 180}},
		{"default on a portrait canvas, size unknown", portrait, nil, nil, 0, 0, Size{180, 320}},
		{"default on a 1920×1080 canvas", Size{1920, 1080}, nil, nil, 1920, 1080, Size{480, 270}},
		{"width only: height from the video", landscape, intp(400), nil, 1280, 720, Size{400, 226}},
		{"height only: width from the video", landscape, nil, intp(200), 720, 1280, Size{112, 200}},
		{"width only, size unknown: the canvas's shape", landscape, intp(640), nil, 0, 0, Size{640, 360}},
		{"both", landscape, intp(300), intp(300), 1280, 720, Size{300, 300}},
		{"odd sizes rounded up to even", landscape, intp(321), intp(181), 1280, 720, Size{322, 182}},
		{"one pixel becomes two", landscape, intp(1), intp(1), 1280, 720, Size{2, 2}},
		{"larger than the canvas: the canvas", landscape, intp(5000), intp(5000), 1280, 720, Size{1280, 720}},
		{"width only, larger than the canvas", landscape, intp(5000), nil, 1280, 720, Size{1280, 720}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hostAndGuest()
			in[1].VideoWidth, in[1].VideoHeight = tt.videoW, tt.videoH
			cfg := Config{PiP: &PiP{PipParticipantAttribute: "guest", PipWidth: tt.width, PipHeight: tt.height}}
			s := mustArrange(t, cfg, tt.canvas, in)
			w := tileOf(t, s, "guest").Slot
			if got := (Size{w.Width, w.Height}); got != tt.want {
				t.Errorf("window %v, want %v", got, tt.want)
			}
			if w.X+w.Width != tt.canvas.Width || w.Y+w.Height != tt.canvas.Height {
				t.Errorf("window %v not in the bottom-right corner of %v", w, tt.canvas)
			}
		})
	}
}

func TestPipWhoGoesWhere(t *testing.T) {
	a, b, c := camera("a", 0, 1280, 720), camera("b", 1, 1280, 720), camera("c", 2, 1280, 720)
	full := Rect{0, 0, 1280, 720}
	corner := Rect{960, 540, 320, 180}
	tests := []struct {
		name string
		cfg  PiP
		in   []Participant
		// wantTiles lists the tiles back to front.
		wantTiles    []string
		wantFeatured string
		wantPiP      string
		wantPipSlot  Rect
		wantPipZ     int
	}{
		{
			name: "no attributes, one participant: the whole canvas, no window",
			in:   []Participant{a}, wantTiles: []string{"a"},
		},
		{
			name: "no attributes, two: the second in the window",
			in:   []Participant{b, a}, wantTiles: []string{"a", "b"}, wantPiP: "b", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "no attributes, three: the first and third share the canvas",
			in:   []Participant{a, b, c}, wantTiles: []string{"a", "c", "b"}, wantPiP: "b", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "featured only: the first other one in the window",
			cfg:  PiP{FeaturedParticipantAttribute: "host"},
			in:   []Participant{a, with(b, "host", "true")}, wantTiles: []string{"b", "a"},
			wantFeatured: "b", wantPiP: "a", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "the window's participant marked: it takes the window whatever the order",
			cfg:  PiP{PipParticipantAttribute: "guest"},
			in:   []Participant{with(a, "guest", "true"), b, c}, wantTiles: []string{"b", "c", "a"},
			wantPiP: "a", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "the window's participant marked but absent: no window",
			cfg:  PiP{PipParticipantAttribute: "guest"},
			in:   []Participant{a, b}, wantTiles: []string{"a", "b"},
		},
		{
			name: "featured and window: the featured slot, the others beside it, the window over all",
			cfg:  PiP{FeaturedParticipantAttribute: "host", PipParticipantAttribute: "guest"},
			in:   []Participant{a, with(b, "guest", "true"), with(c, "host", "true")}, wantTiles: []string{"c", "a", "b"},
			wantFeatured: "c", wantPiP: "b", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "marked both featured and for the window: featured",
			cfg:  PiP{FeaturedParticipantAttribute: "star", PipParticipantAttribute: "star"},
			in:   []Participant{with(a, "star", "true"), with(b, "star", "true")}, wantTiles: []string{"a", "b"},
			wantFeatured: "a", wantPiP: "b", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "STATIC: alone, the window keeps its corner",
			cfg:  PiP{PipParticipantAttribute: "guest", PipBehavior: PipStatic},
			in:   []Participant{with(a, "guest", "true")}, wantTiles: []string{"a"},
			wantPiP: "a", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "the default is STATIC",
			cfg:  PiP{PipParticipantAttribute: "guest", PipPosition: PipTopLeft, PipOffset: 8},
			in:   []Participant{with(a, "guest", "true")}, wantTiles: []string{"a"},
			wantPiP: "a", wantPipSlot: Rect{8, 8, 320, 180}, wantPipZ: 1,
		},
		{
			name: "DYNAMIC: alone, the window takes the canvas",
			cfg:  PiP{PipParticipantAttribute: "guest", PipBehavior: PipDynamic},
			in:   []Participant{with(a, "guest", "true")}, wantTiles: []string{"a"},
			wantPiP: "a", wantPipSlot: full, wantPipZ: 0,
		},
		{
			name: "DYNAMIC with company: still a window",
			cfg:  PiP{PipParticipantAttribute: "guest", PipBehavior: PipDynamic},
			in:   []Participant{with(a, "guest", "true"), b}, wantTiles: []string{"b", "a"},
			wantPiP: "a", wantPipSlot: corner, wantPipZ: 1,
		},
		{
			name: "DYNAMIC: the others omitted for stopped video count as gone",
			cfg:  PiP{PipParticipantAttribute: "guest", PipBehavior: PipDynamic, OmitStoppedVideo: true},
			in:   []Participant{with(a, "guest", "true"), {ID: "b", JoinOrder: 1}}, wantTiles: []string{"a"},
			wantPiP: "a", wantPipSlot: full, wantPipZ: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			s := mustArrange(t, Config{PiP: &cfg}, landscape, tt.in)
			if got := tileIDs(s); !slices.Equal(got, tt.wantTiles) {
				t.Errorf("tiles %v, want %v", got, tt.wantTiles)
			}
			if s.Featured != tt.wantFeatured || s.PiP != tt.wantPiP {
				t.Errorf("featured %q and window %q, want %q and %q", s.Featured, s.PiP, tt.wantFeatured, tt.wantPiP)
			}
			if tt.wantPiP != "" {
				w := s.Tiles[len(s.Tiles)-1]
				if w.ParticipantID != tt.wantPiP || w.Slot != tt.wantPipSlot || w.Z != tt.wantPipZ {
					t.Errorf("window %+v, want %s in %v at Z %d", w, tt.wantPiP, tt.wantPipSlot, tt.wantPipZ)
				}
			}
			for _, tile := range s.Tiles {
				if !tile.PiP && tile.Z != 0 {
					t.Errorf("%s: Z %d below the window", tile.ParticipantID, tile.Z)
				}
			}
		})
	}
}

func TestPipBackground(t *testing.T) {
	// Behind the window, a grid whose tiles fill the canvas, spaced by
	// gridGap (0 by default in PiP).
	in := cameras(3) // p1 goes in the window
	tests := []struct {
		name string
		cfg  PiP
		want []Rect // p0 and p2
	}{
		{"no gap by default", PiP{}, []Rect{{0, 0, 640, 720}, {640, 0, 640, 720}}},
		{"a gap", PiP{GridGap: intp(8)}, []Rect{{0, 0, 636, 720}, {644, 0, 636, 720}}},
		{"a featured participant beside the others", PiP{FeaturedParticipantAttribute: "f"}, []Rect{{0, 0, 960, 720}, {960, 0, 320, 720}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := slices.Clone(in)
			ps[0] = with(ps[0], "f", "true")
			cfg := tt.cfg
			s := mustArrange(t, Config{PiP: &cfg}, landscape, ps)
			if got := []Rect{tileOf(t, s, "p0").Slot, tileOf(t, s, "p2").Slot}; !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPipFillMode(t *testing.T) {
	// The fill mode, COVER by default, applies to the window as to the rest.
	in := hostAndGuest()
	in[1].VideoWidth, in[1].VideoHeight = 720, 1280
	tests := []struct {
		mode        FillMode
		wantPicture Rect
		wantCrop    Rect
	}{
		{"", Rect{960, 540, 320, 180}, Rect{0, 436, 720, 406}},
		{FillContain, Rect{1068, 540, 102, 180}, Rect{0, 0, 720, 1280}},
		{FillStretch, Rect{960, 540, 320, 180}, Rect{0, 0, 720, 1280}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			cfg := Config{PiP: &PiP{PipParticipantAttribute: "guest", VideoFillMode: tt.mode,
				PipWidth: intp(320), PipHeight: intp(180)}}
			s := mustArrange(t, cfg, landscape, in)
			g := tileOf(t, s, "guest")
			if g.Picture != tt.wantPicture || g.Crop != tt.wantCrop {
				t.Errorf("picture %v crop %v, want %v and %v", g.Picture, g.Crop, tt.wantPicture, tt.wantCrop)
			}
			if want := cmp.Or(tt.mode, FillCover); g.Fill != want || tileOf(t, s, "host").Fill != want {
				t.Errorf("fill modes %s and %s, want %s", g.Fill, tileOf(t, s, "host").Fill, want)
			}
		})
	}
}
