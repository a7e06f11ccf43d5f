package layout

import (
	"fmt"
	"math"
	"slices"
)

// MaxCanvasSide bounds the canvas. IVS's encoder configurations stop at 1920
// pixels a side; the layout itself works for anything up to 8K.
const MaxCanvasSide = 7680

// Scene is what the composition shows at one moment.
type Scene struct {
	Canvas Size
	// Tiles are back to front: every tile with a lower Z before any with a
	// higher one; within a Z, the featured participant first, then the
	// others in the composition's order (row by row in a grid).
	Tiles []Tile
	// Featured is the id of the participant in the featured slot, "" if none.
	Featured string
	// PiP is the id of the participant in the PiP window, "" if none.
	PiP string
	// Hidden are the ids of the participants not shown, in the
	// composition's order: left out for stopped video, beyond
	// MaxParticipants, or without room on a tiny canvas.
	Hidden []string
}

// Tile is one participant's place in the picture.
type Tile struct {
	ParticipantID string
	// Slot is the tile, in canvas pixels. The engine paints it black, then
	// the picture over it.
	Slot Rect
	// Picture is where the participant's video goes, in canvas pixels: the
	// whole Slot, or for CONTAIN the letterboxed part of it. The engine
	// scales Crop of the video to Picture's size and draws it there.
	Picture Rect
	// Crop is the part of the participant's video to use, in the video's
	// own pixels: all of it for FILL and CONTAIN, the middle at the tile's
	// shape for COVER. The zero Rect means the video's size is unknown (use
	// all of it) or there is no video.
	Crop Rect
	// Fill is the fill mode the tile was placed with.
	Fill FillMode
	// Z is the stacking order: 0 for the grid and the featured slot, 1 for
	// a PiP window drawn over them.
	Z int
	// Featured and PiP tell which slot the participant is in.
	Featured, PiP bool
	// ShowsVideo is false when the participant's video is stopped or it
	// publishes none: the engine shows the empty Slot (or a placeholder).
	ShowsVideo bool
}

// Arrange lays out the participants on a canvas by the configuration: a
// grid, or a PiP window over a grid. The configuration's defaults are filled
// in first, so a *FieldError comes back for a value out of range. The
// canvas must have even sides between 2 and MaxCanvasSide, and every
// participant an id of its own.
//
// The result depends only on the input's values: listing the participants
// in another order gives the same Scene.
func Arrange(cfg Config, canvas Size, participants []Participant) (Scene, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return Scene{}, err
	}
	if err := checkCanvas(canvas); err != nil {
		return Scene{}, err
	}
	if err := checkParticipants(participants); err != nil {
		return Scene{}, err
	}
	if cfg.PiP != nil {
		return arrangePiP(*cfg.PiP, canvas, participants), nil
	}
	return arrangeGrid(*cfg.Grid, canvas, participants), nil
}

func checkCanvas(c Size) error {
	if c.Width < 2 || c.Height < 2 || c.Width > MaxCanvasSide || c.Height > MaxCanvasSide ||
		c.Width%2 != 0 || c.Height%2 != 0 {
		return fmt.Errorf("layout: the canvas must have even sides between 2 and %d pixels, got %dx%d",
			MaxCanvasSide, c.Width, c.Height)
	}
	return nil
}

// cast is who is shown and in which role, before any geometry.
type cast struct {
	featured *Participant  // in the featured slot
	pip      *Participant  // in the PiP window
	others   []Participant // the rest, in order
}

func (c cast) count() int {
	n := len(c.others)
	if c.featured != nil {
		n++
	}
	if c.pip != nil {
		n++
	}
	return n
}

// dropLast removes the participant of lowest priority, the last of the
// others, and reports false when there is none. Only they ever need to
// make room: the featured participant alone takes the whole area, which
// always fits, and the PiP window is always fitted to the canvas.
func (c *cast) dropLast() bool {
	if len(c.others) == 0 {
		return false
	}
	c.others = c.others[:len(c.others)-1]
	return true
}

// firstMarked returns the first participant, in order, whose attribute name
// is "true" and which is not skip: IVS's custom ordering decides between
// several so marked. The rest of them are placed like anyone else.
func firstMarked(inOrder []Participant, name string, skip *Participant) *Participant {
	for i := range inOrder {
		p := &inOrder[i]
		if skip != nil && p.ID == skip.ID {
			continue
		}
		if p.hasTrueAttribute(name) {
			return p
		}
	}
	return nil
}

// visible orders the participants and leaves out those with stopped video
// when the option says so.
func visible(participants []Participant, orderAttribute string, omitStopped bool) []Participant {
	inOrder := ordered(participants, orderAttribute)
	if omitStopped {
		inOrder = slices.DeleteFunc(inOrder, func(p Participant) bool { return !p.showsVideo() })
	}
	return inOrder
}

// castOf picks who is shown: the featured and PiP participants first, then
// the others in order until MaxParticipants. Special roles come first so
// that a latecomer marked featured is never the one squeezed out of a full
// stage.
func castOf(inOrder []Participant, featured, pip *Participant) cast {
	c := cast{featured: featured, pip: pip}
	for _, p := range inOrder {
		if c.count() == MaxParticipants {
			break
		}
		if (featured != nil && p.ID == featured.ID) || (pip != nil && p.ID == pip.ID) {
			continue
		}
		c.others = append(c.others, p)
	}
	return c
}

// hiddenFrom lists the participants, in order, that have no tile.
func hiddenFrom(all []Participant, orderAttribute string, tiles []Tile) []string {
	shown := make(map[string]bool, len(tiles))
	for _, t := range tiles {
		shown[t.ParticipantID] = true
	}
	var hidden []string
	for _, p := range ordered(all, orderAttribute) {
		if !shown[p.ID] {
			hidden = append(hidden, p.ID)
		}
	}
	return hidden
}

// tileFor places p's video in slot.
func tileFor(p Participant, slot Rect, mode FillMode) Tile {
	t := Tile{ParticipantID: p.ID, Slot: slot, Picture: slot, Fill: mode, ShowsVideo: p.showsVideo()}
	if t.ShowsVideo {
		w, h, ok := p.videoSize()
		t.Picture, t.Crop = placeVideo(slot, mode, w, h, ok)
	}
	return t
}

// effectiveGap makes the configured gap usable: even, so that tiles keep
// even corners (an odd gap is widened by one pixel rather than narrowed, so
// that a gap of 1 still separates tiles), and no wider than the canvas,
// beyond which it could only be dropped anyway.
func effectiveGap(gap int, canvas Size) int {
	return evenUp(min(gap, max(canvas.Width, canvas.Height)))
}

// autoShape is the tile shape AUTO aims at. IVS does not say what AUTO
// does; here its tiles take whatever shape fills the canvas, and the rows
// and columns are chosen for the participants' own videos: upright phone
// video (9:16) when most of the known ones are portrait, 16:9 otherwise.
func autoShape(ps []Participant) ratio {
	portrait, landscape := 0, 0
	for _, p := range ps {
		if w, h, ok := p.videoSize(); ok && p.showsVideo() {
			if h > w {
				portrait++
			} else {
				landscape++
			}
		}
	}
	if portrait > landscape {
		return ratioTall
	}
	return ratioVideo
}

// gridArea lays out a featured participant (or none) and the others in
// area, returning their slots: the featured one first. A lone participant,
// featured or not, takes the whole area.
func gridArea(area Rect, featured bool, others int, spec gridSpec) ([]Rect, bool) {
	if !featured {
		return gridTiles(area, others, spec)
	}
	if others == 0 {
		return []Rect{area}, true
	}
	featuredSlot, strip, ok := featuredSplit(area, spec.gap)
	if !ok {
		return nil, false
	}
	rest, ok := gridTiles(strip, others, spec)
	if !ok {
		return nil, false
	}
	return append([]Rect{featuredSlot}, rest...), true
}

// placeGrid gives the cast's featured participant and others their tiles in
// area, the featured one first, leaving out the last of the others for as
// long as they do not all fit. The PiP participant is not placed here.
func placeGrid(c *cast, area Rect, spec gridSpec, featuredFill, othersFill FillMode) []Tile {
	var slots []Rect
	for {
		var ok bool
		if slots, ok = gridArea(area, c.featured != nil, len(c.others), spec); ok || !c.dropLast() {
			break
		}
	}
	tiles := make([]Tile, 0, c.count())
	if c.featured != nil {
		t := tileFor(*c.featured, slots[0], featuredFill)
		t.Featured = true
		tiles = append(tiles, t)
		slots = slots[1:]
	}
	for i, p := range c.others {
		tiles = append(tiles, tileFor(p, slots[i], othersFill))
	}
	return tiles
}

// arrangeGrid is the grid layout (GridConfiguration): every participant in
// a tile of the configured shape, the featured one in a larger slot.
func arrangeGrid(g Grid, canvas Size, participants []Participant) Scene {
	inOrder := visible(participants, g.ParticipantOrderAttribute, g.OmitStoppedVideo)
	c := castOf(inOrder, firstMarked(inOrder, g.FeaturedParticipantAttribute, nil), nil)
	area := Rect{Width: canvas.Width, Height: canvas.Height}

	gridFill, featuredFill := DefaultGridFillMode, DefaultFeaturedFillMode
	if g.VideoFillMode != "" { // set explicitly, it applies to every tile
		gridFill, featuredFill = g.VideoFillMode, g.VideoFillMode
	}
	spec := gridSpec{gap: effectiveGap(*g.GridGap, canvas)}
	switch g.VideoAspectRatio {
	case AspectAuto:
		spec.shape, spec.stretch = autoShape(c.others), true
	case AspectSquare:
		spec.shape = ratioSquare
	case AspectPortrait:
		spec.shape = ratioPortrait
	default:
		spec.shape = ratioVideo
	}

	tiles := placeGrid(&c, area, spec, featuredFill, gridFill)
	s := Scene{Canvas: canvas, Tiles: tiles, Hidden: hiddenFrom(participants, g.ParticipantOrderAttribute, tiles)}
	if c.featured != nil {
		s.Featured = c.featured.ID
	}
	return s
}

// arrangePiP is the picture-in-picture layout (PipConfiguration): one
// participant in a small window in a corner, over everyone else.
//
// Who goes where, where IVS is silent:
//   - With pipParticipantAttribute set, the window holds the first
//     participant (in order) marked with it; while no one is, there is no
//     window and everyone is behind, rather than a stranger taking the
//     guest's place.
//   - With it unset, the window holds the first participant in order who is
//     not the main one (the featured participant, or else the first in
//     order): two people give the familiar host-and-guest picture.
//   - Everyone but the window's participant shares the canvas behind it as
//     a grid whose tiles fill the canvas (PiP has no videoAspectRatio), the
//     featured participant in the grid's featured slot. The window covers
//     whatever lies under it; that is what a PiP window is.
//   - pipBehavior applies when the window's participant is the only one
//     shown, whether the others left or were omitted for stopped video:
//     STATIC keeps the window in its corner, DYNAMIC gives it the canvas.
func arrangePiP(p PiP, canvas Size, participants []Participant) Scene {
	inOrder := visible(participants, p.ParticipantOrderAttribute, p.OmitStoppedVideo)
	featured := firstMarked(inOrder, p.FeaturedParticipantAttribute, nil)
	var pip *Participant
	if p.PipParticipantAttribute != "" {
		// A participant marked both featured and PiP is featured: the
		// featured slot is decided first, as it is in the grid.
		pip = firstMarked(inOrder, p.PipParticipantAttribute, featured)
	} else if len(inOrder) >= 2 {
		main := featured
		if main == nil {
			main = &inOrder[0]
		}
		for i := range inOrder {
			if inOrder[i].ID != main.ID {
				pip = &inOrder[i]
				break
			}
		}
	}
	c := castOf(inOrder, featured, pip)
	area := Rect{Width: canvas.Width, Height: canvas.Height}
	spec := gridSpec{gap: effectiveGap(*p.GridGap, canvas), shape: autoShape(c.others), stretch: true}

	tiles := placeGrid(&c, area, spec, p.VideoFillMode, p.VideoFillMode)
	if c.pip != nil {
		alone := len(tiles) == 0
		var t Tile
		if alone && p.PipBehavior == PipDynamic {
			t = tileFor(*c.pip, area, p.VideoFillMode)
		} else {
			t = tileFor(*c.pip, pipWindow(p, canvas, *c.pip), p.VideoFillMode)
			t.Z = 1
		}
		t.PiP = true
		tiles = append(tiles, t)
	}
	s := Scene{Canvas: canvas, Tiles: tiles, Hidden: hiddenFrom(participants, p.ParticipantOrderAttribute, tiles)}
	if c.featured != nil {
		s.Featured = c.featured.ID
	}
	if c.pip != nil {
		s.PiP = c.pip.ID
	}
	return s
}

// pipWindow returns the PiP window's rectangle: its size from pipWidth and
// pipHeight (see pipWindowSize), in the pipPosition corner, pipOffset from
// both of that corner's edges.
//
// A window or offset too large for the canvas is reduced to fit: the
// window never leaves the canvas, because the engine could not draw it.
// An odd offset is rounded down to even, keeping the window's corner even.
func pipWindow(p PiP, canvas Size, who Participant) Rect {
	w, h := pipWindowSize(p, canvas, who)
	offX := min(evenDown(p.PipOffset), canvas.Width-w)
	offY := min(evenDown(p.PipOffset), canvas.Height-h)
	r := Rect{Width: w, Height: h, X: offX, Y: offY}
	if p.PipPosition == PipTopRight || p.PipPosition == PipBottomRight {
		r.X = canvas.Width - w - offX
	}
	if p.PipPosition == PipBottomLeft || p.PipPosition == PipBottomRight {
		r.Y = canvas.Height - h - offY
	}
	return r
}

// pipWindowSize is the PiP window's size, even and within the canvas.
//
// IVS says only that an unset pipWidth or pipHeight is "based on the size
// of the composition and the aspect ratio of the participant's video".
// Here the unset window covers a sixteenth of the canvas (320×180 on a
// 1280×720 canvas, a quarter of each side, for 16:9 video) at the shape of
// the participant's video, so an upright phone gets an upright window of
// the same area. With one side set, the other follows the video's shape;
// with both set, the window is as given and the fill mode fits the video.
// While the video's size is unknown, the canvas's shape stands in for it.
func pipWindowSize(p PiP, canvas Size, who Participant) (w, h int) {
	vw, vh, ok := who.videoSize()
	if !ok {
		vw, vh = canvas.Width, canvas.Height
	}
	switch {
	case p.PipWidth != nil && p.PipHeight != nil:
		w, h = *p.PipWidth, *p.PipHeight
	case p.PipWidth != nil:
		w = *p.PipWidth
		h = evenQuotient(int64(min(w, canvas.Width))*int64(vh), int64(vw))
	case p.PipHeight != nil:
		h = *p.PipHeight
		w = evenQuotient(int64(min(h, canvas.Height))*int64(vw), int64(vh))
	default:
		area := float64(canvas.Width) * float64(canvas.Height) / 16
		w = int(math.Round(math.Sqrt(area * float64(vw) / float64(vh))))
		h = evenQuotient(int64(w)*int64(vh), int64(vw))
	}
	// An odd size set by the caller is rounded up: a 1-pixel window is
	// still a window.
	w = clampEven(evenUp(min(w, canvas.Width)), canvas.Width)
	h = clampEven(evenUp(min(h, canvas.Height)), canvas.Height)
	return w, h
}
