package engine

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/composition/layout"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// BenchmarkComposite4x720p30 composes four 640x360 inputs in a 2x2 grid
// into 1280x720 at 30 fps for 10 s per iteration, and reports the CPU
// seconds spent per second of output (ffmpeg processes and this process),
// the real-time factor (output seconds per wall second from the encoder's
// start: 1 is keeping up), frames given up after a stall, and how long the
// encoder takes to start.
func BenchmarkComposite4x720p30(b *testing.B) {
	testmedia.NeedFFmpeg(b)
	colorsIn := []string{"red", "blue", "lime", "yellow"}
	media := make([]testmedia.Media, len(colorsIn))
	for i, c := range colorsIn {
		media[i] = testmedia.Media(colorClip(b, c, 300+200*i, 640, 360))
	}
	const run = 10 * time.Second
	var cpu, output, wall, startup time.Duration
	var late int64
	for b.Loop() {
		dir := b.TempDir()
		var before syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start := time.Now()
		e, err := New(b.Context(), Config{Outputs: []Output{{HLS: &HLS{Dir: dir}}}})
		if err != nil {
			b.Fatal(err)
		}
		<-e.Started()
		startup += time.Since(start)
		start = time.Now()
		var tiles []layout.Tile
		var stops []func()
		for i := range media {
			id := fmt.Sprint(i)
			in, err := e.AddInput(id)
			if err != nil {
				b.Fatal(err)
			}
			tiles = append(tiles, tile(id, layout.Rect{X: 640 * (i % 2), Y: 360 * (i / 2), Width: 640, Height: 360}))
			stops = append(stops, sender(in, media[i]))
		}
		e.SetLayout(tiles)
		time.Sleep(run)
		for _, stop := range stops {
			stop()
		}
		s := e.Stats()
		wall += time.Since(start)
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		var after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		self := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
		cpu += e.Stats().ProcessCPU + self
		d, _ := playlistDuration(b, dir+"/playlist.m3u8")
		output += d
		late += s.FramesLate
	}
	b.ReportMetric(cpu.Seconds()/output.Seconds(), "cpu-s/output-s")
	b.ReportMetric(output.Seconds()/wall.Seconds(), "output-s/wall-s")
	b.ReportMetric(float64(late)/float64(b.N), "late-frames/op")
	b.ReportMetric(startup.Seconds()/float64(b.N), "startup-s/op")
}
