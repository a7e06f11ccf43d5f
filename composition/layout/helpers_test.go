package layout

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

var (
	landscape = Size{Width: 1280, Height: 720}
	portrait  = Size{Width: 720, Height: 1280}
)

// camera returns a participant publishing w×h video, who joined join-th.
func camera(id string, join int64, w, h int) Participant {
	return Participant{ID: id, JoinOrder: join, PublishesVideo: true, VideoWidth: w, VideoHeight: h}
}

// cameras returns n participants p0, p1, ... publishing 1280×720, in that
// order of arrival.
func cameras(n int) []Participant {
	ps := make([]Participant, n)
	for i := range ps {
		ps[i] = camera(fmt.Sprintf("p%d", i), int64(i), 1280, 720)
	}
	return ps
}

// with returns p with the attributes added.
func with(p Participant, kv ...string) Participant {
	attrs := make(map[string]string, len(p.Attributes)+len(kv)/2)
	for k, v := range p.Attributes {
		attrs[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		attrs[kv[i]] = kv[i+1]
	}
	p.Attributes = attrs
	return p
}

func tileIDs(s Scene) []string {
	ids := make([]string, len(s.Tiles))
	for i, t := range s.Tiles {
		ids[i] = t.ParticipantID
	}
	return ids
}

func tileOf(t *testing.T, s Scene, id string) Tile {
	t.Helper()
	for _, tile := range s.Tiles {
		if tile.ParticipantID == id {
			return tile
		}
	}
	t.Fatalf("no tile for %s in %v", id, tileIDs(s))
	return Tile{}
}

// mustArrange arranges and checks every property a Scene must have.
func mustArrange(t *testing.T, cfg Config, canvas Size, ps []Participant) Scene {
	t.Helper()
	s, err := Arrange(cfg, canvas, ps)
	if err != nil {
		t.Fatalf("Arrange: %v", err)
	}
	if err := sceneProblem(s, ps); err != nil {
		t.Fatal(err)
	}
	// The same participants listed in another order give the same Scene.
	shuffled := slices.Clone(ps)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	again, err := Arrange(cfg, canvas, shuffled)
	if err != nil {
		t.Fatalf("Arrange, shuffled: %v", err)
	}
	if !reflect.DeepEqual(s, again) {
		t.Fatalf("Arrange depends on the input's order:\n%+v\n%+v", s, again)
	}
	return s
}

// sceneProblem returns what is wrong with s, arranged from ps, or nil.
func sceneProblem(s Scene, ps []Participant) error {
	canvas := Rect{Width: s.Canvas.Width, Height: s.Canvas.Height}
	byID := make(map[string]Participant, len(ps))
	for _, p := range ps {
		byID[p.ID] = p
	}
	if len(s.Tiles) > MaxParticipants {
		return fmt.Errorf("%d tiles, more than %d", len(s.Tiles), MaxParticipants)
	}
	if len(s.Tiles)+len(s.Hidden) != len(ps) {
		return fmt.Errorf("%d tiles and %d hidden for %d participants", len(s.Tiles), len(s.Hidden), len(ps))
	}
	seen := map[string]bool{}
	for _, id := range s.Hidden {
		if seen[id] {
			return fmt.Errorf("%s hidden twice", id)
		}
		seen[id] = true
	}
	lastZ := 0
	for i, t := range s.Tiles {
		p, ok := byID[t.ParticipantID]
		if !ok {
			return fmt.Errorf("tile for unknown participant %q", t.ParticipantID)
		}
		if seen[t.ParticipantID] {
			return fmt.Errorf("%s shown twice, or shown and hidden", t.ParticipantID)
		}
		seen[t.ParticipantID] = true
		if t.Z < lastZ {
			return fmt.Errorf("tile %d (%s) has Z %d after Z %d", i, t.ParticipantID, t.Z, lastZ)
		}
		lastZ = t.Z
		for name, r := range map[string]Rect{"slot": t.Slot, "picture": t.Picture} {
			if !r.Even() || !r.Within(canvas) || r.Width < minTileSide || r.Height < minTileSide {
				return fmt.Errorf("%s of %s is %v: not even, not inside %v, or too small", name, t.ParticipantID, r, canvas)
			}
		}
		if !t.Picture.Within(t.Slot) {
			return fmt.Errorf("picture %v of %s outside its slot %v", t.Picture, t.ParticipantID, t.Slot)
		}
		if t.ShowsVideo != p.showsVideo() {
			return fmt.Errorf("%s: ShowsVideo %v", t.ParticipantID, t.ShowsVideo)
		}
		if t.Crop != (Rect{}) {
			w, h, known := p.videoSize()
			if !known || !t.ShowsVideo {
				return fmt.Errorf("%s: crop %v without a known video", t.ParticipantID, t.Crop)
			}
			if !t.Crop.Even() || !t.Crop.Within(Rect{Width: w, Height: h}) || t.Crop.Empty() {
				return fmt.Errorf("%s: crop %v not even or outside its %dx%d video", t.ParticipantID, t.Crop, w, h)
			}
		}
		if t.Featured != (t.ParticipantID == s.Featured) || t.PiP != (t.ParticipantID == s.PiP) {
			return fmt.Errorf("%s: Featured %v, PiP %v, but the scene's are %q and %q",
				t.ParticipantID, t.Featured, t.PiP, s.Featured, s.PiP)
		}
	}
	// Tiles in the same layer never overlap.
	for i, a := range s.Tiles {
		for _, b := range s.Tiles[i+1:] {
			if a.Z == b.Z && overlap(a.Slot, b.Slot) {
				return fmt.Errorf("%s %v and %s %v overlap", a.ParticipantID, a.Slot, b.ParticipantID, b.Slot)
			}
		}
	}
	return nil
}

func overlap(a, b Rect) bool {
	return a.X < b.X+b.Width && b.X < a.X+a.Width && a.Y < b.Y+b.Height && b.Y < a.Y+a.Height
}

// rowsOf returns how many tiles each row of the scene's Z=0 layer holds,
// top to bottom, and checks that all its tiles are one size.
func rowsOf(t *testing.T, s Scene) (perRow []int, size Size) {
	t.Helper()
	lastY := -1
	for _, tile := range s.Tiles {
		if tile.Z != 0 || tile.Featured {
			continue
		}
		got := Size{tile.Slot.Width, tile.Slot.Height}
		if size == (Size{}) {
			size = got
		} else if got != size {
			t.Fatalf("tile %s is %v, others %v", tile.ParticipantID, got, size)
		}
		if tile.Slot.Y != lastY {
			perRow = append(perRow, 0)
			lastY = tile.Slot.Y
		}
		perRow[len(perRow)-1]++
	}
	return perRow, size
}
