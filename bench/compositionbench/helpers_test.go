package main

import (
	"slices"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
)

func TestParseProgressLine(t *testing.T) {
	for _, tt := range []struct {
		line, key, value string
		ok               bool
	}{
		{"frame=133", "frame", "133", true},
		{"bitrate= 950.9kbits/s", "bitrate", "950.9kbits/s", true},
		{"progress=continue\r", "progress", "continue", true},
		{"garbage", "", "", false},
		{"=1", "", "", false},
	} {
		key, value, ok := parseProgressLine(tt.line)
		if key != tt.key || value != tt.value || ok != tt.ok {
			t.Errorf("parseProgressLine(%q) got %q, %q, %v; want %q, %q, %v", tt.line, key, value, ok, tt.key, tt.value, tt.ok)
		}
	}
}

func TestMeanColour(t *testing.T) {
	const w, h = 4, 2
	rgb := make([]byte, w*h*3)
	// The right half red, the left half blue.
	for y := range h {
		for x := range w {
			i := (y*w + x) * 3
			if x >= 2 {
				rgb[i] = 200
			} else {
				rgb[i+2] = 100
			}
		}
	}
	for _, tt := range []struct {
		r    rect
		want [3]float64
	}{
		{rect{2, 0, 2, 2}, [3]float64{200, 0, 0}},
		{rect{0, 0, 2, 1}, [3]float64{0, 0, 100}},
		{rect{1, 0, 2, 2}, [3]float64{100, 0, 50}},
	} {
		if got := meanColour(rgb, w, tt.r); got != tt.want {
			t.Errorf("meanColour over %+v got %v, want %v", tt.r, got, tt.want)
		}
	}
}

// TestSwitchDelays: each switch is matched to the first picture after it
// nearer its new colour than its old one, a blend of the two counting
// once past the middle; a change that never comes is missed, and a late
// picture of it is not taken for the next switch's.
func TestSwitchDelays(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	red, green, blue := colours[0].rgb, colours[1].rgb, colours[2].rgb
	blend := func(a, b [3]float64, f float64) [3]float64 {
		var c [3]float64
		for i := range c {
			c[i] = a[i]*(1-f) + b[i]*f
		}
		return c
	}
	switches := []colourSwitch{
		{at: ms(1000), from: 0, to: 1}, // red → green, seen at 1600 (1500 is a blend still nearer red)
		{at: ms(3000), from: 1, to: 2}, // green → blue, never seen before the next switch
		{at: ms(5000), from: 2, to: 0}, // blue → red: the blue at 5300 is the late one; red at 5700
	}
	pics := []picture{
		{ms(900), red}, {ms(1200), red}, {ms(1500), blend(red, green, 0.3)}, {ms(1600), blend(red, green, 0.7)}, {ms(1700), green},
		{ms(3100), green}, {ms(4900), green},
		{ms(5300), blue}, {ms(5700), red},
	}
	got := switchDelays(switches, pics)
	want := []time.Duration{600 * time.Millisecond, -1, 700 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := switchDelays(switches[:1], pics[:2]); !slices.Equal(got, []time.Duration{-1}) {
		t.Errorf("no picture after the switch: got %v, want missed", got)
	}
	if c, _ := nearestColour(blend(blue, red, 0.1)); c != 2 {
		t.Errorf("nearestColour of a blue with a little red got %s, want blue", colours[c].name)
	}
}

// TestSwitcher: a switch starts the next colour's clip at its first
// frame, from the frame after it is asked for, and is recorded there.
func TestSwitcher(t *testing.T) {
	var clips []*clip.Clip
	for c := range 3 {
		cl := &clip.Clip{Opus: [][]byte{{byte(c)}}}
		for i := range 4 {
			cl.Frames = append(cl.Frames, clip.Frame{NALUs: [][]byte{{byte(c), byte(i)}}, Key: i == 0})
		}
		clips = append(clips, cl)
	}
	s := newSwitcher(clips)
	s.hold = func() time.Duration { return 0 }
	var got [][2]byte
	for i := range 12 {
		if i == 6 || i == 8 {
			s.next()
		}
		f := s.Video(i)
		got = append(got, [2]byte{f.NALUs[0][0], f.NALUs[0][1]})
	}
	want := [][2]byte{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}, {2, 1}, {2, 2}, {2, 3}}
	if !slices.Equal(got, want) {
		t.Errorf("frames (colour, index) got %v, want %v", got, want)
	}
	if sw := s.switches(); !slices.Equal(sw, []switchAt{{6, 1}, {8, 2}}) {
		t.Errorf("switches got %v, want at frames 6 and 8", sw)
	}
	if a := s.Audio(5); a[0] != 0 {
		t.Errorf("audio of the first clip, got %v", a)
	}
}

// TestWatchedRegion: the middle half of the first publisher's tile, in
// the listener's 64×36 pictures.
func TestWatchedRegion(t *testing.T) {
	out := encoding{width: 1280, height: 720, fps: 30, kbps: 2500}
	for _, tt := range []struct {
		ids  []string
		want rect
	}{
		{[]string{"a"}, rect{16, 9, 32, 18}},
		// Four in a 2×2 grid with the 2 px gap: the first is the top left
		// tile.
		{[]string{"a", "b", "c", "d"}, rect{7, 4, 16, 9}},
	} {
		got, err := watchedRegion(out, tt.ids, 1280, 720)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%d publishers: got %+v, want %+v", len(tt.ids), got, tt.want)
		}
	}
}

func TestHLSRate(t *testing.T) {
	playlist := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n" +
		"#EXTINF:2.000000,\n0.ts\n#EXTINF:2.000000,\n1.ts\n#EXTINF:2.033333,\n2.ts\n#EXTINF:1.966667,\n3.ts\n#EXTINF:2.000000,\n4.ts\n#EXTINF:0.5,\n5.ts\n#EXT-X-ENDLIST\n"
	segs := parsePlaylist(playlist)
	if len(segs) != 6 || segs[2].name != "2.ts" || segs[2].duration != 2033333000*time.Nanosecond {
		t.Fatalf("parsePlaylist got %+v", segs)
	}
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// Segment i+1's file appears when segment i is complete; the encoder
	// runs a little slow.
	appeared := map[string]time.Time{"0.ts": at(0), "1.ts": at(2.1), "2.ts": at(4.2), "3.ts": at(6.3), "4.ts": at(8.4), "5.ts": at(10.5)}
	media, wall, n := hlsRate(segs, appeared, at(3), at(9))
	// In the window: 2.ts (1 complete) at 4.2, 3.ts at 6.3, 4.ts at 8.4:
	// segments 2 and 3 between 4.2 and 8.4.
	if n != 2 || media != 4*time.Second || wall != 4200*time.Millisecond {
		t.Errorf("hlsRate got %v of media over %v in %d segments; want 4s over 4.2s in 2", media, wall, n)
	}
	if _, _, n := hlsRate(segs, appeared, at(4), at(6)); n != 0 {
		t.Errorf("one completion in the window: got %d segments, want 0", n)
	}
}

// TestYUV: the colours as ffmpeg's default RGB → yuv420p conversion
// (BT.601, limited range) gives them.
func TestYUV(t *testing.T) {
	for _, tt := range []struct {
		rgb       [3]float64
		y, cb, cr byte
	}{
		{[3]float64{0, 0, 0}, 16, 128, 128},
		{[3]float64{255, 255, 255}, 235, 128, 128},
		{colours[0].rgb, 81, 90, 240},
		{colours[1].rgb, 145, 54, 34},
		{colours[2].rgb, 41, 240, 110},
	} {
		y, cb, cr := yuv(tt.rgb)
		if y != tt.y || cb != tt.cb || cr != tt.cr {
			t.Errorf("yuv(%v) got %d, %d, %d; want %d, %d, %d", tt.rgb, y, cb, cr, tt.y, tt.cb, tt.cr)
		}
	}
	c := plainCanvas(4, 2, colours[0].rgb)
	if want := []byte{81, 81, 81, 81, 81, 81, 81, 81, 90, 90, 240, 240}; !slices.Equal(c, want) {
		t.Errorf("plainCanvas got %v, want %v", c, want)
	}
}

func TestWindowFPS(t *testing.T) {
	ch := &window{frames: 299, framesWall: 10 * time.Second, bytes: 3_200_000}
	if got := ch.fps(30); got != 29.9 {
		t.Errorf("channel fps got %v, want 29.9", got)
	}
	if got := ch.kbps(); got != 2560 {
		t.Errorf("kbps got %v, want 2560", got)
	}
	s3 := &window{media: 8 * time.Second, mediaWall: 8 * time.Second}
	if got := s3.fps(30); got != 30 {
		t.Errorf("s3 fps got %v, want 30", got)
	}
}

func TestParseSize(t *testing.T) {
	if w, h, err := parseSize("1280x720"); err != nil || w != 1280 || h != 720 {
		t.Errorf("1280x720: got %d, %d, %v", w, h, err)
	}
	for _, bad := range []string{"1280", "1281x720", "8x8", "axb", "1280x"} {
		if _, _, err := parseSize(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestListening(t *testing.T) {
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 147 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 148 1 0 100 0 0 10 0\n"
	for _, tt := range []struct {
		port int
		want bool
	}{{2024, true}, {8080, false}, {1935, false}} {
		if got := listening(table, tt.port); got != tt.want {
			t.Errorf("listening on %d: got %v, want %v", tt.port, got, tt.want)
		}
	}
}
