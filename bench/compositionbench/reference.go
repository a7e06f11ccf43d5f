package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// The delay phase's baseline, in the same run: the composite's encoder
// alone, an ffmpeg with the command line the server's compositions give
// theirs, fed by the bench as the compositor feeds it (raw yuv420p
// canvases on its standard input at the frame rate, 20 ms of silent PCM
// on fd 3 every 20 ms), sending to the same kind of listener. The same
// switches of colour, timed from the write of the first canvas of the new
// colour, give the delay of the encoder, RTMP and the listener; the
// composition's delay less this is the server's part: receiving the
// publisher, decoding it, and the compositor.

// referenceArgs is the encoder's command line for one RTMP output, as
// package composition/engine gives it (encoderArgs): x264 veryfast
// without B-frames, a keyframe every 2 s, AAC, FLV. A tune other than ""
// is added to x264's options: the what-if of zerolatency, which turns off
// x264's look-ahead and frame threads.
func referenceArgs(e encoding, url, tune string) []string {
	gop := strconv.Itoa(2 * e.fps)
	kbps := strconv.Itoa(e.kbps) + "k"
	buf := strconv.Itoa(2*e.kbps) + "k"
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-probesize", "32", "-analyzeduration", "0", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", fmt.Sprintf("%dx%d", e.width, e.height),
		"-framerate", strconv.Itoa(e.fps), "-thread_queue_size", "64", "-i", "pipe:0",
		"-probesize", "32", "-analyzeduration", "0", "-f", "s16le", "-ar", "48000", "-ac", "2",
		"-thread_queue_size", "512", "-i", "pipe:3",
		"-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
		"-bf", "0", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
		"-b:v", kbps, "-maxrate", kbps, "-bufsize", buf,
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"}
	if tune != "" {
		args = append(args, "-tune", tune)
	}
	return append(args, "-f", "flv", url)
}

// yuv is a colour in BT.601 limited range, as ffmpeg converts RGB to
// yuv420p by default.
func yuv(rgb [3]float64) (y, cb, cr byte) {
	r, g, b := rgb[0], rgb[1], rgb[2]
	clamp := func(v float64) byte { return byte(min(255, max(0, v+0.5))) }
	return clamp(16 + (65.738*r+129.057*g+25.064*b)/256),
		clamp(128 + (-37.945*r-74.494*g+112.439*b)/256),
		clamp(128 + (112.439*r-94.154*g-18.285*b)/256)
}

// plainCanvas is a yuv420p picture of one colour.
func plainCanvas(width, height int, rgb [3]float64) []byte {
	y, cb, cr := yuv(rgb)
	luma := width * height
	b := make([]byte, luma*3/2)
	for i := range b {
		switch {
		case i < luma:
			b[i] = y
		case i < luma+luma/4:
			b[i] = cb
		default:
			b[i] = cr
		}
	}
	return b
}

// runReference measures the delay of o.switches switches through the
// encoder alone, with tune if not "".
func runReference(ctx context.Context, o *options, tune string) (*delayPhase, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	target, port, err := listenURL()
	if err != nil {
		return nil, err
	}
	p := &delayPhase{reference: true, tune: tune}
	// The whole canvas is the one colour.
	if p.region, err = watchedRegion(o.out, []string{"canvas"}, o.out.width, o.out.height); err != nil {
		return nil, err
	}
	lis, err := startPictures(target, p.region)
	if err != nil {
		return nil, err
	}
	defer lis.stop()
	if err := lis.waitListening(port, 10*time.Second); err != nil {
		return nil, err
	}

	vr, vw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ar, aw, err := os.Pipe()
	if err != nil {
		vr.Close()
		vw.Close()
		return nil, err
	}
	errs := &syncBuffer{}
	enc := exec.Command("ffmpeg", referenceArgs(o.out, target, tune)...)
	enc.Stdin, enc.ExtraFiles, enc.Stdout, enc.Stderr = vr, []*os.File{ar}, errs, errs
	err = serverproc.Start(enc)
	vr.Close()
	ar.Close()
	if err != nil {
		vw.Close()
		aw.Close()
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	encDone := make(chan struct{})
	go func() { enc.Wait(); close(encDone) }()

	// The feeders: canvases at the frame rate, silence every 20 ms, each
	// on the clock from the start, as the compositor feeds its encoder.
	canvases := make([][]byte, len(colours))
	for i, c := range colours {
		canvases[i] = plainCanvas(o.out.width, o.out.height, c.rgb)
	}
	var want atomic.Int32
	var mu sync.Mutex
	var switches []colourSwitch
	feedCtx, stopFeeding := context.WithCancel(ctx)
	var feeders sync.WaitGroup
	started := time.Now()
	feeders.Go(func() {
		defer vw.Close()
		period := time.Second / time.Duration(o.out.fps)
		cur := 0
		for n := 0; ; n++ {
			if procstat.Sleep(feedCtx, time.Until(started.Add(time.Duration(n)*period))) != nil {
				return
			}
			if c := int(want.Load()); c != cur {
				mu.Lock()
				switches = append(switches, colourSwitch{at: time.Now(), from: cur, to: c})
				mu.Unlock()
				cur = c
			}
			if _, err := vw.Write(canvases[cur]); err != nil {
				return
			}
		}
	})
	feeders.Go(func() {
		defer aw.Close()
		silence := make([]byte, 48000/50*2*2)
		for n := 0; ; n++ {
			if procstat.Sleep(feedCtx, time.Until(started.Add(time.Duration(n)*20*time.Millisecond))) != nil {
				return
			}
			if _, err := aw.Write(silence); err != nil {
				return
			}
		}
	})
	defer func() {
		stopFeeding()
		serverproc.Stop(enc, encDone, 5*time.Second) // a feeder's write blocked on it fails
		feeders.Wait()
	}()
	fail := func(err error) error { return fmt.Errorf("%w (encoder: %s)", err, errs.String()) }
	if err := lis.waitFirst(startTimeout); err != nil {
		return nil, fail(err)
	}
	p.startup = time.Since(started)
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	pics := lis.received()
	p.startRGB = pics[len(pics)-1].rgb
	if c, d := nearestColour(p.startRGB); c != 0 || d > 100*100 {
		return nil, fmt.Errorf("the encoder's picture is RGB %.0f before the first switch, not %s", p.startRGB, colours[0].name)
	}
	a, err := sampleProcesses(enc, lis)
	if err != nil {
		return nil, err
	}
	for k := range o.switches {
		if err := procstat.Sleep(ctx, o.switchInterval); err != nil {
			return nil, err
		}
		want.Store(int32((k + 1) % len(colours)))
	}
	if err := procstat.Sleep(ctx, o.switchInterval); err != nil {
		return nil, err
	}
	b, err := sampleProcesses(enc, lis)
	if err != nil {
		return nil, err
	}
	if out, ok := lis.exited(); ok {
		return nil, fail(fmt.Errorf("the RTMP listener exited during the switches: %s", out))
	}
	p.length = b.at.Sub(a.at)
	p.children = b.tree.Process - a.tree.Process // the encoder
	p.listener, p.bench, p.machine = b.listener-a.listener, b.bench-a.bench, b.machine-a.machine
	pics = lis.received()
	mu.Lock()
	p.switches = append([]colourSwitch(nil), switches...)
	mu.Unlock()
	p.delays = switchDelays(p.switches, pics)
	for _, pic := range pics {
		if !pic.at.Before(a.at) && pic.at.Before(b.at) {
			p.pictures++
		}
	}
	p.wall = b.at.Sub(a.at)
	return p, nil
}

// sampleProcesses is sampleCPU with the encoder in the place of the
// server (in tree.Process).
func sampleProcesses(enc *exec.Cmd, lis *listener) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	var err error
	if s.tree.Process, err = procstat.ProcessCPU(enc.Process.Pid); err != nil {
		return s, fmt.Errorf("encoder CPU: %w", err)
	}
	if s.listener, err = lis.cpu(); err != nil {
		return s, fmt.Errorf("listener CPU: %w", err)
	}
	if s.bench, err = procstat.ProcessCPU(os.Getpid()); err != nil {
		return s, err
	}
	if s.machine, err = procstat.MachineCPU(); err != nil {
		return s, err
	}
	return s, nil
}
