package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/composition/layout"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// TestOneInputFullCanvas: one input over the whole default canvas gives an
// HLS stream of IVS's default encoder configuration showing its colour.
func TestOneInputFullCanvas(t *testing.T) {
	checkNoLeak(t)
	red := colorClip(t, "red", 440, 640, 360)
	out, playlist := hlsOutput(t)
	// 640x360: at the default 1280x720 under the race detector beside
	// other packages' tests the encoder falls seconds behind (its pace
	// is the benchmark's to measure, bench/compositionbench).
	e := newEngine(t, Config{Width: 640, Height: 360, Outputs: []Output{out}})
	in, err := e.AddInput("a")
	if err != nil {
		t.Fatal(err)
	}
	full := layout.Rect{Width: 640, Height: 360}
	if err := e.SetLayout([]layout.Tile{tile("a", full)}); err != nil {
		t.Fatal(err)
	}
	stop := sender(in, red)
	shown := waitDecoded(t, e, 5, "a")
	waitOutput(t, e, max(shown+1500*time.Millisecond, 3*time.Second))
	stop()
	t.Logf("%+v; the input shown from %v", e.Stats(), shown)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	p := testmedia.FFprobe(t, playlist)
	if len(p.Streams) != 2 {
		t.Fatalf("streams %+v, want video and audio", p.Streams)
	}
	for _, s := range p.Streams {
		switch s.CodecType {
		case "video":
			if s.CodecName != "h264" || s.Width != 640 || s.Height != 360 || s.FrameRate != "30/1" {
				t.Errorf("video %s %dx%d at %s fps, want h264 640x360 at 30/1", s.CodecName, s.Width, s.Height, s.FrameRate)
			}
		case "audio":
			if s.CodecName != "aac" {
				t.Errorf("audio %s, want aac", s.CodecName)
			}
		}
	}
	// An encoder behind the clock (1280x720 while other tests run beside,
	// under the race detector) loses what it had not taken when closed:
	// this checks the output's form, and leaves its pace to the benchmark
	// (bench/compositionbench: a real-time factor of 1.00).
	if d := p.Duration(t); d < shown+time.Second {
		t.Errorf("duration %v, want %v or more", d, shown+time.Second)
	}
	if d, ok := playlistDuration(t, playlist); !ok || d < shown+time.Second {
		t.Errorf("playlist: %v, continuous and ended %v", d, ok)
	}
	at := (shown + 500*time.Millisecond).Seconds()
	rgb := frameAt(t, playlist, at, 640, 360)
	wantColors(t, rgb, 640, fmt.Sprintf("at %.2f s", at), map[layout.Rect]string{
		full: "red", {X: 10, Y: 10, Width: 2, Height: 2}: "red", {X: 620, Y: 340, Width: 2, Height: 2}: "red",
	})
}

// TestLayoutChanges: two inputs side by side; the layout changes mid-way
// (the red one becomes a window over the blue one) and a third input
// added later appears in its tile, all in one continuous HLS stream. The
// frames checked are picked by the output's own timeline (outputPos), a
// moment after each change was in place.
func TestLayoutChanges(t *testing.T) {
	checkNoLeak(t)
	red := colorClip(t, "red", 440, 320, 180)
	blue := colorClip(t, "blue", 660, 320, 180)
	yellow := colorClip(t, "yellow", 880, 320, 180)
	out, playlist := hlsOutput(t)
	e := newEngine(t, Config{Width: 640, Height: 360, Outputs: []Output{out}})
	left, right := layout.Rect{Width: 320, Height: 360}, layout.Rect{X: 320, Width: 320, Height: 360}
	if err := e.SetLayout([]layout.Tile{tile("red", left), tile("blue", right)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id string
		m  testmedia.Media
	}{{"red", red}, {"blue", blue}} {
		in, err := e.AddInput(c.id)
		if err != nil {
			t.Fatal(err)
		}
		defer sender(in, c.m)()
	}
	sideBySide := waitDecoded(t, e, 5, "red", "blue") + 500*time.Millisecond
	waitOutput(t, e, sideBySide+500*time.Millisecond)

	full := layout.Rect{Width: 640, Height: 360}
	window := layout.Rect{X: 440, Y: 240, Width: 160, Height: 90}
	topLeft := layout.Rect{Width: 200, Height: 120}
	pip := tile("red", window)
	pip.Z = 1
	// Listed front first: the engine draws by Z.
	before := e.Stats().Inputs
	if err := e.SetLayout([]layout.Tile{pip, tile("blue", full), tile("yellow", topLeft)}); err != nil {
		t.Fatal(err)
	}
	// Each input's decoder restarts for its tile's new size: the new
	// layout is checked once both have given pictures again.
	windowed := time.Duration(0)
	for _, id := range []string{"red", "blue"} {
		restarted := waitRestart(t, e, id, before[id].Restarts)
		windowed = max(windowed, waitDecoded(t, e, restarted+5, id))
	}
	windowed += 500 * time.Millisecond
	waitOutput(t, e, windowed+500*time.Millisecond)

	in, err := e.AddInput("yellow")
	if err != nil {
		t.Fatal(err)
	}
	defer sender(in, yellow)()
	withYellow := waitDecoded(t, e, 5, "yellow") + 500*time.Millisecond
	waitOutput(t, e, withYellow+time.Second)
	t.Logf("%+v; checked at %v, %v, %v", e.Stats(), sideBySide, windowed, withYellow)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	d, ok := playlistDuration(t, playlist)
	if !ok || d < withYellow+500*time.Millisecond {
		t.Errorf("playlist: %v long, continuous and ended %v; want one stream past %v", d, ok, withYellow)
	}
	at := func(d time.Duration) (float64, string) { return d.Seconds(), fmt.Sprintf("at %.2f s", d.Seconds()) }
	sec, when := at(sideBySide)
	wantColors(t, frameAt(t, playlist, sec, 640, 360), 640, when, map[layout.Rect]string{left: "red", right: "blue"})
	sec, when = at(windowed)
	wantColors(t, frameAt(t, playlist, sec, 640, 360), 640, when, map[layout.Rect]string{
		window: "red", {X: 300, Y: 200, Width: 2, Height: 2}: "blue", {X: 100, Y: 200, Width: 2, Height: 2}: "blue",
		topLeft: "black", // yellow has no input yet: its slot is empty
	})
	sec, when = at(withYellow)
	wantColors(t, frameAt(t, playlist, sec, 640, 360), 640, when, map[layout.Rect]string{
		window: "red", {X: 300, Y: 200, Width: 2, Height: 2}: "blue", topLeft: "yellow",
	})
}
