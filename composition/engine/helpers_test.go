package engine

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/composition/layout"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// colorClip is a second of a solid colour (an ffmpeg colour name) at
// w×h, H.264 as a browser sends it, and a tone of freq Hz in Opus; looped,
// its first picture makes a keyframe each second.
func colorClip(t testing.TB, color string, freq, w, h int) testmedia.Media {
	t.Helper()
	return testmedia.EncodeColor(t, 1, w, h, color, freq)
}

func ffmpeg(t testing.TB, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// send plays m into in in real time, as a publisher would, until ctx ends.
func send(ctx context.Context, in *Input, m testmedia.Media, video bool) {
	loop := testmedia.NewRTPLoop(m, 1200)
	start := time.Now()
	for {
		u := loop.Next()
		if d := time.Until(start.Add(u.At)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		for _, p := range u.Packets {
			if u.Video {
				if video {
					in.WriteVideoRTP(CodecH264, p)
				}
			} else {
				in.WriteAudioRTP(p)
			}
		}
	}
}

// sender starts send in the background and returns its stop, which waits.
func sender(in *Input, m testmedia.Media) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		send(ctx, in, m, true)
	}()
	return func() {
		cancel()
		<-done
	}
}

// hlsOutput returns an HLS output into a fresh directory, and the playlist.
func hlsOutput(t testing.TB) (Output, string) {
	dir := t.TempDir()
	return Output{HLS: &HLS{Dir: dir}}, filepath.Join(dir, "playlist.m3u8")
}

// frameAt extracts the output's picture at second sec as RGB.
func frameAt(t testing.TB, path string, sec float64, w, h int) []byte {
	t.Helper()
	b := ffmpeg(t, "-ss", strconv.FormatFloat(sec, 'f', 2, 64), "-i", path, "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	if len(b) != w*h*3 {
		t.Fatalf("frame at %.2f s: %d bytes, want %dx%dx3", sec, len(b), w, h)
	}
	return b
}

var colors = map[string][3]int{
	"black": {0, 0, 0}, "red": {255, 0, 0}, "blue": {0, 0, 255}, "lime": {0, 255, 0}, "yellow": {255, 255, 0},
}

// colorAt names the colour nearest to the pixel at x, y.
func colorAt(rgb []byte, w, x, y int) string {
	p := rgb[(y*w+x)*3:]
	best, bestD := "", 1<<30
	for name, c := range colors {
		d := 0
		for i := range 3 {
			d += (int(p[i]) - c[i]) * (int(p[i]) - c[i])
		}
		if d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

// wantColors checks the colour at the centre of each rectangle.
func wantColors(t testing.TB, rgb []byte, w int, when string, want map[layout.Rect]string) {
	t.Helper()
	for r, c := range want {
		x, y := r.X+r.Width/2, r.Y+r.Height/2
		if got := colorAt(rgb, w, x, y); got != c {
			t.Errorf("%s: colour at %d,%d (centre of %v) is %s, want %s", when, x, y, r, got, c)
		}
	}
}

func tile(id string, r layout.Rect) layout.Tile {
	return layout.Tile{ParticipantID: id, Slot: r, Picture: r, ShowsVideo: true}
}

// checkNoLeak fails if goroutines started during the test remain.
func checkNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines after, %d before:\n%s", n, before, buf)
		}
	})
}

// newEngine starts an engine for a test, closed at its end.
func newEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	testmedia.NeedFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	select {
	case <-e.Started():
	case <-time.After(20 * time.Second):
		t.Fatal("the encoder did not start")
	}
	return e
}

// outputPos is how far the engine's output has got: the time, in the
// stream it makes, of the next frame it gives the encoder. Tests pick the
// frames they check by it rather than by the wall clock: on a loaded
// machine the encoder starts late and falls behind the clock, and
// decoders take seconds to start.
func outputPos(e *Engine) time.Duration {
	return time.Duration(e.Stats().FramesSent) * time.Second / time.Duration(e.cfg.FPS)
}

// waitOutput waits for the output to reach pos.
func waitOutput(t *testing.T, e *Engine, pos time.Duration) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for outputPos(e) < pos {
		if time.Now().After(deadline) {
			t.Fatalf("the output is at %v after 30 s, want %v: %+v", outputPos(e), pos, e.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDecoded waits for each input of ids to have decoded n frames, and
// returns the output's position then: from there on the output shows
// them.
func waitDecoded(t *testing.T, e *Engine, n int64, ids ...string) time.Duration {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := e.Stats()
		if !slices.ContainsFunc(ids, func(id string) bool { return s.Inputs[id].Frames < n }) {
			return outputPos(e)
		}
		if time.Now().After(deadline) {
			t.Fatalf("inputs %v have not decoded %d frames after 30 s: %+v", ids, n, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRestart waits for input id's decoder to have restarted more than
// restarts times, and returns the frames it had decoded by then.
func waitRestart(t *testing.T, e *Engine, id string, restarts int64) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := e.Stats().Inputs[id]
		if s.Restarts > restarts {
			return s.Frames
		}
		if time.Now().After(deadline) {
			t.Fatalf("input %s's decoder has not restarted after 30 s: %+v", id, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// playlistDuration sums the EXTINF durations and tells whether the
// playlist is one continuous, finished stream.
func playlistDuration(t testing.TB, path string) (time.Duration, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d float64
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "#EXTINF:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			d += f
		}
	}
	s := string(b)
	return time.Duration(d * float64(time.Second)), strings.Contains(s, "#EXT-X-ENDLIST") && !strings.Contains(s, "DISCONTINUITY")
}
