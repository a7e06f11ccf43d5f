// Command ingestbench measures ivsrt's RTMP ingest: what an encoder's
// stream costs the server (the H.264 passed through to WebRTC, the AAC
// transcoded to Opus by an ffmpeg child of the server), and the delay
// from RTMP in to WebRTC out; each beside the same media published over
// WHIP in the same run, so that the difference is what RTMP and the
// transcoding add.
//
// Run it from the module root:
//
//	go run ./bench/ingestbench
//
// See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/report"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

func main() { serverproc.Main("ingestbench", run) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// keyInterval is the clip's: the delay phases identify keyframes by
// their send times.
const keyInterval = time.Second

// options are the bench's settings (its flags).
type options struct {
	streams       []int
	phases        []string
	duration      time.Duration
	warmup        time.Duration
	delayDuration time.Duration
	clipLength    time.Duration
	width, height int
	kbps          int
	quietWait     time.Duration
	serverBin     string
	out, jsonOut  string
	args          []string

	clip *clip.Clip
}

func parseFlags(args []string) (*options, error) {
	o := &options{args: args}
	fs := flag.NewFlagSet("ingestbench", flag.ContinueOnError)
	streams := fs.String("streams", "1,4", "concurrent streams of the CPU phases, comma-separated; each a stage with one publisher and one subscriber")
	phases := fs.String("phases", "cpu,delay", "what to measure: cpu (server CPU per stream), delay (RTMP in → WebRTC out)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each CPU phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time once every subscriber has its first frame and audio")
	fs.DurationVar(&o.delayDuration, "delay-duration", 12*time.Second, "measured time of each delay phase")
	fs.DurationVar(&o.clipLength, "clip-length", 10*time.Second, "length of the clip ffmpeg encodes once, sent over and over")
	size := fs.String("size", "1280x720", "the video's picture size")
	fs.IntVar(&o.kbps, "bitrate", 1500, "the video's bit rate, kbit/s")
	fs.DurationVar(&o.quietWait, "quiet-wait", 2*time.Second, "before each phase, wait up to this long for the rest of the machine to go idle; 0 to not wait")
	fs.StringVar(&o.serverBin, "server", "", "ivsrt binary to measure; default: build ./cmd/ivsrt")
	fs.StringVar(&o.out, "out", "", "report file; default bench/results/<date>/ingest.md, - for none")
	fs.StringVar(&o.jsonOut, "json", "", "also write the measurements, with the delay samples, as JSON to this file")
	gogc := fs.Int("client-gogc", 400, "GOGC of the bench process (publishers and subscribers); the server keeps Go's default")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, f := range strings.Split(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--streams %q: want positive numbers separated by commas", *streams)
		}
		o.streams = append(o.streams, n)
	}
	for _, f := range strings.Split(*phases, ",") {
		f = strings.TrimSpace(f)
		if f != "cpu" && f != "delay" {
			return nil, fmt.Errorf("--phases %q: want cpu, delay or both", *phases)
		}
		o.phases = append(o.phases, f)
	}
	if w, h, ok := strings.Cut(*size, "x"); ok {
		o.width, _ = strconv.Atoi(w)
		o.height, _ = strconv.Atoi(h)
	}
	switch {
	case o.duration <= 0 || o.delayDuration <= 0:
		return nil, errors.New("--duration and --delay-duration: want more than 0")
	case o.clipLength < 2*keyInterval || o.clipLength%keyInterval != 0:
		return nil, fmt.Errorf("--clip-length: want whole seconds, %v or more", 2*keyInterval)
	case o.width < 16 || o.height < 16 || o.width%2 != 0 || o.height%2 != 0:
		return nil, fmt.Errorf("--size %q: want WIDTHxHEIGHT, even numbers of 16 or more", *size)
	case o.kbps < 100:
		return nil, errors.New("--bitrate: want 100 kbit/s or more")
	}
	debug.SetGCPercent(*gogc)
	return o, nil
}

// results is everything a run measured.
type results struct {
	started     time.Time
	loadAverage string  // /proc/loadavg at the start
	busyBefore  float64 // cores busy over the second before the start
	cpu         [][2]*cpuPhase
	delay       [2]*delayPhase // RTMP, WHIP
	elapsed     time.Duration
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return errors.New("ffmpeg is missing (apt-get install ffmpeg): it encodes the clip, publishes it, and the server transcodes with it")
	}
	r := &results{started: time.Now()}
	if r.loadAverage, err = procstat.LoadAverage(); err != nil {
		return err
	}
	if r.busyBefore, _, err = procstat.WaitIdle(ctx, 0, 0); err != nil {
		return err
	}
	logf("load average %s, %.2f cores busy", r.loadAverage, r.busyBefore)
	tmp, err := os.MkdirTemp("", "ingestbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := serverproc.Defaults(ctx, tmp, &o.serverBin, &o.out, "ingest.md"); err != nil {
		return err
	}
	logf("encoding the clip: %v of %dx%d H.264 at %d kbit/s, AAC and Opus, with ffmpeg", o.clipLength, o.width, o.height, o.kbps)
	if o.clip, err = clip.Encode(tmp, clip.Spec{Length: o.clipLength, Width: o.width, Height: o.height, Kbps: o.kbps,
		KeyInterval: keyInterval, AAC: true}); err != nil {
		return err
	}
	c := o.clip
	logf("clip: H.264 %.0f kbit/s, AAC %.0f kbit/s, Opus %.0f kbit/s", c.VideoKbps(), c.AACKbps(), c.OpusKbps())

	if slices.Contains(o.phases, "cpu") {
		for _, n := range o.streams {
			var pair [2]*cpuPhase
			for i, path := range []string{pathRTMP, pathWHIP} {
				logf("CPU, %d stream(s) over %s", n, path)
				if pair[i], err = runCPU(ctx, o, tmp, path, n); err != nil {
					return fmt.Errorf("CPU, %d stream(s) over %s: %w", n, path, err)
				}
				logf("  %s", pair[i].summary())
			}
			r.cpu = append(r.cpu, pair)
		}
	}
	if slices.Contains(o.phases, "delay") {
		for i, path := range []string{pathRTMP, pathWHIP} {
			logf("delay over %s", path)
			if r.delay[i], err = runDelay(ctx, o, tmp, path); err != nil {
				return fmt.Errorf("delay over %s: %w", path, err)
			}
			logf("  %s", r.delay[i].summary())
		}
	}
	r.elapsed = time.Since(r.started)
	logf("done in %v", r.elapsed.Round(time.Second))
	if o.jsonOut != "" {
		if err := writeJSON(o, r); err != nil {
			return err
		}
	}
	return report.Write(o.out, writeReport(o, r))
}
