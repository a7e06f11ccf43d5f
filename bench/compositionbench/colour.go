package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/composition/layout"
)

// The delay phase's switching publisher sends a plain colour, and
// switches to the next one of these, round and round.
var colours = []struct {
	name, ffmpeg string
	rgb          [3]float64
}{
	{"red", "0xff0000", [3]float64{255, 0, 0}},
	{"green", "0x00ff00", [3]float64{0, 255, 0}},
	{"blue", "0x0000ff", [3]float64{0, 0, 255}},
}

// colourClipLength is the length of each colour's clip: a switch starts
// it at its first frame, and it loops until the next.
const colourClipLength = 2 * time.Second

// switcher is the delay phase's publisher's source: one colour's clip,
// from its first frame (a keyframe) at each switch. It is a
// publish.Source.
//
// The publisher's frames and the compositor's ticks are both paced by
// the clock, so they would keep one phase through a run, and every
// switch would wait the same time for the compositor's next tick. The
// first frame of a new colour is held back a random part of a frame's
// time (its RTP timestamp unchanged, as a camera's frames come with
// jitter), so that the switches sample every phase of the tick; the
// frames after it go out on time.
type switcher struct {
	clips []*clip.Clip
	hold  func() time.Duration // how long to hold a switch's first frame back

	mu    sync.Mutex
	cur   int // the colour being sent
	want  int // the colour asked for
	start int // the frame the current colour started at
	done  []switchAt
}

// switchAt is a switch as sent: the first frame of the new colour.
type switchAt struct {
	frame, colour int
}

func newSwitcher(clips []*clip.Clip) *switcher {
	return &switcher{clips: clips, hold: func() time.Duration { return rand.N(clip.FrameTime) }}
}

// Video is frame i: the current colour's, or the next colour's first
// frame once a switch was asked for.
func (s *switcher) Video(i int) clip.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.want != s.cur {
		s.cur, s.start = s.want, i
		s.done = append(s.done, switchAt{frame: i, colour: s.cur})
		time.Sleep(s.hold())
	}
	c := s.clips[s.cur]
	return c.Frames[(i-s.start)%len(c.Frames)]
}

// Audio is the tone, whatever the colour.
func (s *switcher) Audio(j int) []byte {
	a := s.clips[0].Opus
	return a[j%len(a)]
}

// next asks for the next colour from the next frame on.
func (s *switcher) next() {
	s.mu.Lock()
	s.want = (s.want + 1) % len(s.clips)
	s.mu.Unlock()
}

// switches returns the switches sent so far.
func (s *switcher) switches() []switchAt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]switchAt(nil), s.done...)
}

// colourSwitch is a switch with the time its first frame was sent.
type colourSwitch struct {
	at       time.Time
	from, to int // colours
}

// switchDelays finds, for each switch, the first picture at or after its
// send whose colour is nearer the new colour than the old one, and
// returns the delays. A switch whose change is not seen before the next
// switch is sent (or in the pictures at all, for the last) is missed; its
// delay is -1.
func switchDelays(switches []colourSwitch, pics []picture) []time.Duration {
	delays := make([]time.Duration, len(switches))
	p := 0
	for k, s := range switches {
		delays[k] = -1
		for p < len(pics) && pics[p].at.Before(s.at) {
			p++
		}
		for q := p; q < len(pics); q++ {
			if k+1 < len(switches) && !pics[q].at.Before(switches[k+1].at) {
				break
			}
			if dist2(pics[q].rgb, colours[s.to].rgb) < dist2(pics[q].rgb, colours[s.from].rgb) {
				delays[k] = pics[q].at.Sub(s.at)
				p = q
				break
			}
		}
	}
	return delays
}

// dist2 is the squared distance of two colours.
func dist2(a, b [3]float64) float64 {
	var d float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
	}
	return d
}

// nearestColour is the palette's colour nearest rgb, and how far it is.
func nearestColour(rgb [3]float64) (int, float64) {
	best, bd := 0, dist2(rgb, colours[0].rgb)
	for i := 1; i < len(colours); i++ {
		if d := dist2(rgb, colours[i].rgb); d < bd {
			best, bd = i, d
		}
	}
	return best, bd
}

// meanColour is the mean RGB of a region of an RGB picture width wide.
func meanColour(rgb []byte, width int, r rect) [3]float64 {
	var sum [3]float64
	for y := r.y; y < r.y+r.h; y++ {
		for x := r.x; x < r.x+r.w; x++ {
			i := (y*width + x) * 3
			sum[0] += float64(rgb[i])
			sum[1] += float64(rgb[i+1])
			sum[2] += float64(rgb[i+2])
		}
	}
	n := float64(r.w * r.h)
	return [3]float64{sum[0] / n, sum[1] / n, sum[2] / n}
}

// watchedRegion is the middle half (each way) of the first publisher's
// picture in the composite, as the grid places it (the server lays out
// with package layout too), in the listener's 64×36 pictures: away from
// the tile's edges, where scaling blends it with its neighbours.
func watchedRegion(out encoding, ids []string, width, height int) (rect, error) {
	ps := make([]layout.Participant, len(ids))
	for i, id := range ids {
		ps[i] = layout.Participant{ID: id, JoinOrder: int64(i), Attributes: map[string]string{orderAttribute: fmt.Sprint(i)},
			PublishesVideo: true, VideoWidth: width, VideoHeight: height}
	}
	scene, err := layout.Arrange(layout.Config{Grid: &layout.Grid{ParticipantOrderAttribute: orderAttribute}},
		layout.Size{Width: out.width, Height: out.height}, ps)
	if err != nil {
		return rect{}, err
	}
	for _, t := range scene.Tiles {
		if t.ParticipantID != ids[0] {
			continue
		}
		p := t.Picture
		// The middle half, scaled from the canvas to the pictures.
		x0 := (p.X + p.Width/4) * pictureWidth / out.width
		x1 := (p.X + 3*p.Width/4) * pictureWidth / out.width
		y0 := (p.Y + p.Height/4) * pictureHeight / out.height
		y1 := (p.Y + 3*p.Height/4) * pictureHeight / out.height
		return rect{x: x0, y: y0, w: max(1, x1-x0), h: max(1, y1-y0)}, nil
	}
	return rect{}, fmt.Errorf("the grid gives %s no tile", ids[0])
}
