// Command compositionbench measures ivsrt's server-side compositions
// (StartComposition): what composing a stage's publishers into one
// 720p30 stream costs the server, beside the same publishers with no
// composition in the same run; whether the composite keeps real time; and
// the delay from a publisher's picture to the composite an RTMP target
// receives.
//
// Run it from the module root:
//
//	go run ./bench/compositionbench
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

func main() { serverproc.Main("compositionbench", run) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// keyInterval is the publishers' clips': the delay phase switches colour
// at a clip's first frame, a keyframe.
const keyInterval = time.Second

// options are the bench's settings (its flags).
type options struct {
	publishers      int
	phases          []string
	s3              bool
	duration        time.Duration
	warmup          time.Duration
	switches        int
	switchInterval  time.Duration
	delayPublishers []int
	zerolatency     bool
	clipLength      time.Duration
	width, height   int
	kbps            int
	out             encoding // the composite's encoder configuration
	quietWait       time.Duration
	serverBin       string
	report, jsonOut string
	args            []string

	clip    *clip.Clip   // the CPU phase's publishers'
	colours []*clip.Clip // the delay phase's switching publisher's
}

// encoding is an encoder configuration: the composite's size, frame rate
// and video bit rate.
type encoding struct {
	width, height, fps, kbps int
}

func parseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(s, "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w < 16 || h < 16 || w%2 != 0 || h%2 != 0 {
		return 0, 0, fmt.Errorf("%q: want WIDTHxHEIGHT, even numbers of 16 or more", s)
	}
	return w, h, nil
}

func parseFlags(args []string) (*options, error) {
	o := &options{args: args}
	fs := flag.NewFlagSet("compositionbench", flag.ContinueOnError)
	fs.IntVar(&o.publishers, "publishers", 4, "publishers of the CPU phase's stage, each a WHIP peer sending the 720p30 clip and Opus")
	phases := fs.String("phases", "cpu,delay", "what to measure: cpu (server CPU and the composite's real-time factor, with the baseline), delay (a publisher's picture → the composite)")
	fs.BoolVar(&o.s3, "s3", true, "the CPU phase also measures a composition to an S3 destination (the server's folder store)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each CPU window")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured time before each window: once the publishers are connected, and once the composite reaches its destination")
	fs.IntVar(&o.switches, "switches", 20, "colour switches of each delay phase")
	fs.DurationVar(&o.switchInterval, "switch-interval", 1500*time.Millisecond, "time between two colour switches")
	delayPublishers := fs.String("delay-publishers", "1,4", "publishers of the delay phases' stages, comma-separated, a phase each: the one that switches colour, and others sending the clip")
	fs.BoolVar(&o.zerolatency, "zerolatency", true, "the delay phase also measures the encoder alone with x264's -tune zerolatency, a what-if the server does not use")
	fs.DurationVar(&o.clipLength, "clip-length", 10*time.Second, "length of the clip ffmpeg encodes once, sent over and over")
	size := fs.String("size", "1280x720", "the publishers' picture size")
	fs.IntVar(&o.kbps, "bitrate", 1500, "the publishers' video bit rate, kbit/s")
	outSize := fs.String("composite-size", "1280x720", "the encoder configuration's size")
	fs.IntVar(&o.out.fps, "composite-fps", 30, "the encoder configuration's frame rate")
	fs.IntVar(&o.out.kbps, "composite-bitrate", 2500, "the encoder configuration's video bit rate, kbit/s")
	fs.DurationVar(&o.quietWait, "quiet-wait", 2*time.Second, "before each phase, wait up to this long for the rest of the machine to go idle; 0 to not wait")
	fs.StringVar(&o.serverBin, "server", "", "ivsrt binary to measure; default: build ./cmd/ivsrt")
	fs.StringVar(&o.report, "out", "", "report file; default bench/results/<date>/composition.md, - for none")
	fs.StringVar(&o.jsonOut, "json", "", "also write the measurements, with the delay samples, as JSON to this file")
	gogc := fs.Int("client-gogc", 400, "GOGC of the bench process (the publishers); the server keeps Go's default")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, f := range strings.Split(*phases, ",") {
		f = strings.TrimSpace(f)
		if f != "cpu" && f != "delay" {
			return nil, fmt.Errorf("--phases %q: want cpu, delay or both", *phases)
		}
		o.phases = append(o.phases, f)
	}
	for _, f := range strings.Split(*delayPublishers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 12 {
			return nil, fmt.Errorf("--delay-publishers %q: want numbers from 1 to 12 (a stage's most publishers) separated by commas", *delayPublishers)
		}
		o.delayPublishers = append(o.delayPublishers, n)
	}
	var err error
	if o.width, o.height, err = parseSize(*size); err != nil {
		return nil, fmt.Errorf("--size %w", err)
	}
	if o.out.width, o.out.height, err = parseSize(*outSize); err != nil {
		return nil, fmt.Errorf("--composite-size %w", err)
	}
	switch {
	case o.publishers < 1 || o.publishers > 12:
		return nil, errors.New("--publishers: want 1 to 12, a stage's most publishers")
	case o.duration <= 0 || o.warmup < 0:
		return nil, errors.New("--duration: want more than 0; --warmup: 0 or more")
	case o.switches < 1 || o.switchInterval < time.Second:
		return nil, errors.New("--switches: want 1 or more; --switch-interval: 1s or more")
	case o.clipLength < 2*keyInterval || o.clipLength%keyInterval != 0:
		return nil, fmt.Errorf("--clip-length: want whole seconds, %v or more", 2*keyInterval)
	case o.kbps < 100 || o.out.kbps < 100:
		return nil, errors.New("--bitrate and --composite-bitrate: want 100 kbit/s or more")
	case o.out.fps < 1 || o.out.fps > 60:
		return nil, errors.New("--composite-fps: want 1 to 60")
	}
	debug.SetGCPercent(*gogc)
	return o, nil
}

// results is everything a run measured.
type results struct {
	started     time.Time
	loadAverage string  // /proc/loadavg at the start
	busyBefore  float64 // cores busy over the second before the start
	cpu         []*window
	delay       []*delayPhase // one per count of publishers, then the reference
	elapsed     time.Duration
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return errors.New("ffmpeg is missing (apt-get install ffmpeg): it encodes the clips, the server composes with it, and it receives the composite")
	}
	r := &results{started: time.Now()}
	if r.loadAverage, err = procstat.LoadAverage(); err != nil {
		return err
	}
	if r.busyBefore, _, err = procstat.WaitIdle(ctx, 0, 0); err != nil {
		return err
	}
	logf("load average %s, %.2f cores busy", r.loadAverage, r.busyBefore)
	tmp, err := os.MkdirTemp("", "compositionbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := serverproc.Defaults(ctx, tmp, &o.serverBin, &o.report, "composition.md"); err != nil {
		return err
	}
	logf("encoding the clips with ffmpeg: %v of %dx%d H.264 at %d kbit/s and Opus; %v of each colour", o.clipLength, o.width, o.height, o.kbps, colourClipLength)
	if o.clip, err = clip.Encode(tmp, clip.Spec{Length: o.clipLength, Width: o.width, Height: o.height, Kbps: o.kbps, KeyInterval: keyInterval}); err != nil {
		return err
	}
	if slices.Contains(o.phases, "delay") {
		for _, c := range colours {
			cc, err := clip.Encode(tmp, clip.Spec{Name: c.name, Length: colourClipLength, Width: o.width, Height: o.height,
				Kbps: o.kbps, KeyInterval: keyInterval, Color: c.ffmpeg})
			if err != nil {
				return err
			}
			o.colours = append(o.colours, cc)
		}
	}
	logf("clip: H.264 %.0f kbit/s, Opus %.0f kbit/s", o.clip.VideoKbps(), o.clip.OpusKbps())

	if slices.Contains(o.phases, "cpu") {
		logf("CPU, %d publishers", o.publishers)
		if r.cpu, err = runCPU(ctx, o, tmp); err != nil {
			return fmt.Errorf("CPU: %w", err)
		}
	}
	if slices.Contains(o.phases, "delay") {
		for _, n := range o.delayPublishers {
			logf("delay, %d publisher(s), %d switches", n, o.switches)
			p, err := runDelay(ctx, o, tmp, n)
			if err != nil {
				return fmt.Errorf("delay, %d publisher(s): %w", n, err)
			}
			logf("  %s", p.summary())
			r.delay = append(r.delay, p)
		}
		tunes := []string{""}
		if o.zerolatency {
			tunes = append(tunes, "zerolatency")
		}
		for _, tune := range tunes {
			logf("delay, the encoder alone %s, %d switches", tune, o.switches)
			p, err := runReference(ctx, o, tune)
			if err != nil {
				return fmt.Errorf("delay, the encoder alone %s: %w", tune, err)
			}
			logf("  %s", p.summary())
			r.delay = append(r.delay, p)
		}
	}
	r.elapsed = time.Since(r.started)
	logf("done in %v", r.elapsed.Round(time.Second))
	if o.jsonOut != "" {
		if err := writeJSON(o, r); err != nil {
			return err
		}
	}
	return report.Write(o.report, writeReport(o, r))
}
