package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/publish"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// The windows of the CPU phase.
const (
	windowBaseline = "baseline"
	windowChannel  = "channel"
	windowS3       = "s3"
	windowAfter    = "baseline after"
)

// isBaseline reports whether a window has no composition.
func (w *window) isBaseline() bool { return w.name == windowBaseline || w.name == windowAfter }

// baselinePct is the server's CPU with no composition, in % of a core:
// the mean of the windows before and after the compositions, which
// differ by a few % from the noise of the machine and the server's
// settling.
func baselinePct(windows []*window) float64 {
	var sum float64
	var n int
	for _, w := range windows {
		if w.isBaseline() {
			sum += procstat.Percent(w.server, w.length)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// startTimeout bounds a composition's start: StartComposition to the
// first frame at its destination.
const startTimeout = 30 * time.Second

// window is one measured window of the CPU phase.
type window struct {
	name       string
	publishers int
	length     time.Duration

	server   time.Duration // the server process and its descendants (ffmpeg)
	children time.Duration // of which the descendants
	encoder  time.Duration // of which the encoder (x264), the rest the decoders
	listener time.Duration // the RTMP listener (channel)
	bench    time.Duration // this process: the publishers
	machine  time.Duration

	// The composite as its destination received it.
	frames     int64         // channel: video frames the listener received
	bytes      int64         // channel: FLV bytes (video and audio)
	framesWall time.Duration // between the listener's two progress reports
	media      time.Duration // s3: media time of the segments completed
	mediaWall  time.Duration // between the first and last completion
	segments   int
	startup    time.Duration // StartComposition → the first frame (channel) or segment file (s3)
	state      string        // GetComposition's at the window's end
}

// other is the rest of the machine's CPU over the window.
func (w *window) other() time.Duration {
	return max(0, w.machine-w.server-w.listener-w.bench)
}

// fps is the composite's frame rate at its destination: frames per second
// of wall time at the channel's listener, or the media time of the
// segments per second of wall time × the configured rate at the bucket.
func (w *window) fps(configured int) float64 {
	switch {
	case w.framesWall > 0:
		return float64(w.frames) / w.framesWall.Seconds()
	case w.mediaWall > 0:
		return w.media.Seconds() / w.mediaWall.Seconds() * float64(configured)
	}
	return 0
}

// kbps is what the listener received, video and audio.
func (w *window) kbps() float64 {
	if w.framesWall <= 0 {
		return 0
	}
	return float64(w.bytes) * 8 / 1000 / w.framesWall.Seconds()
}

func (w *window) summary(o *options) string {
	s := fmt.Sprintf("%s: server %.1f%% of a core (ffmpeg %.1f%%, of which the encoder %.1f%%), bench %.1f%%, listener %.1f%%, other %.1f%%",
		w.name, procstat.Percent(w.server, w.length), procstat.Percent(w.children, w.length), procstat.Percent(w.encoder, w.length),
		procstat.Percent(w.bench, w.length), procstat.Percent(w.listener, w.length), procstat.Percent(w.other(), w.length))
	if !w.isBaseline() {
		s += fmt.Sprintf("; composite %.2f fps (real-time factor %.3f), started in %v", w.fps(o.out.fps), w.fps(o.out.fps)/float64(o.out.fps), w.startup.Round(time.Millisecond))
	}
	return s
}

// cpuSample is the CPU times at one moment.
type cpuSample struct {
	at                       time.Time
	tree                     procstat.Tree
	encoder                  time.Duration // the server's descendants that encode with x264
	listener, bench, machine time.Duration
}

func sampleCPU(srv *serverproc.Server, lis *listener) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	var err error
	if s.tree, err = procstat.TreeCPU(srv.PID()); err != nil {
		return s, fmt.Errorf("server CPU: %w", err)
	}
	below, err := procstat.DescendantCPU(srv.PID())
	if err != nil {
		return s, fmt.Errorf("server CPU: %w", err)
	}
	for pid, cpu := range below {
		if strings.Contains(procstat.Cmdline(pid), "libx264") {
			s.encoder += cpu
		}
	}
	if lis != nil {
		if s.listener, err = lis.cpu(); err != nil {
			return s, fmt.Errorf("listener CPU: %w", err)
		}
	}
	if s.bench, err = procstat.ProcessCPU(os.Getpid()); err != nil {
		return s, err
	}
	if s.machine, err = procstat.MachineCPU(); err != nil {
		return s, err
	}
	return s, nil
}

// measure samples the CPU over o.duration after o.warmup, into a window.
func measure(ctx context.Context, o *options, srv *serverproc.Server, lis *listener, w *window) (from, to time.Time, err error) {
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return from, to, err
	}
	var pa, pb progress
	a, err := sampleCPU(srv, lis)
	if err == nil && lis != nil {
		pa, err = lis.latest()
	}
	if err != nil {
		return from, to, err
	}
	if err := procstat.Sleep(ctx, o.duration); err != nil {
		return from, to, err
	}
	b, err := sampleCPU(srv, lis)
	if err == nil && lis != nil {
		pb, err = lis.latest()
	}
	if err != nil {
		return from, to, err
	}
	w.length = b.at.Sub(a.at)
	w.server = b.tree.Total() - a.tree.Total()
	w.children = b.tree.Descendants - a.tree.Descendants
	w.encoder = b.encoder - a.encoder
	w.listener = b.listener - a.listener
	w.bench = b.bench - a.bench
	w.machine = b.machine - a.machine
	w.frames, w.bytes, w.framesWall = pb.frames-pa.frames, pb.bytes-pa.bytes, pb.at.Sub(pa.at)
	return a.at, b.at, nil
}

// newClient is an HTTP client of the server's API and WHIP.
func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}
}

// listenURL is where a listener on a free port of 127.0.0.1 receives the
// channel's stream.
func listenURL() (url string, port int, err error) {
	if port, err = serverproc.FreePort(); err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/compositionbench", port), port, nil
}

// phaseServer is a phase's fresh server, whose composition channel
// sends to a local RTMP target, and the stage it composes.
type phaseServer struct {
	srv      *serverproc.Server
	hc       *http.Client
	api      *ivsrealtime.Client
	stageARN string
	target   string // the channel's RTMP URL, on port
	port     int
}

// startPhaseServer waits for a quiet machine, then starts a server whose
// channel sends to a free local port, and creates a stage named name.
func startPhaseServer(ctx context.Context, o *options, tmp, name string) (*phaseServer, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	target, port, err := listenURL()
	if err != nil {
		return nil, err
	}
	srv, err := serverproc.StartServer(ctx, o.serverBin, tmp, []string{"--composition-channel", channelARN + "=" + target})
	if err != nil {
		return nil, err
	}
	ps := &phaseServer{srv: srv, hc: newClient(), target: target, port: port}
	ps.api = srv.API(ps.hc)
	stage, err := ps.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		ps.close()
		return nil, fmt.Errorf("CreateStage: %w", err)
	}
	ps.stageARN = aws.ToString(stage.Stage.Arn)
	return ps, nil
}

func (ps *phaseServer) close() {
	ps.hc.CloseIdleConnections()
	ps.srv.Stop()
}

// fail adds the server's last log lines to err.
func (ps *phaseServer) fail(err error) error {
	return fmt.Errorf("%w (server log: %s)", err, serverproc.Tail(ps.srv.Log))
}

// runCPU measures, on one server with o.publishers publishing into one
// stage: the server with no composition (the baseline), then with a
// composition to the channel the listener receives, then (o.s3) with one
// to the bucket.
func runCPU(ctx context.Context, o *options, tmp string) ([]*window, error) {
	ps, err := startPhaseServer(ctx, o, tmp, "compositionbench")
	if err != nil {
		return nil, err
	}
	defer ps.close()
	srv, hc, api, stageARN, target, port, fail := ps.srv, ps.hc, ps.api, ps.stageARN, ps.target, ps.port, ps.fail
	pubs, err := startPublishers(ctx, api, hc, srv, stageARN, o.publishers, func(int) publish.Source { return publish.Loop(o.clip, o.clip.Opus) })
	if err != nil {
		return nil, fail(err)
	}
	defer func() {
		srv.Stop()
		closePublishers(pubs)
	}()
	encoderARN, err := createEncoder(ctx, api, o.out)
	if err != nil {
		return nil, err
	}

	var windows []*window
	base := &window{name: windowBaseline, publishers: o.publishers}
	logf("  %d publishers, no composition", o.publishers)
	if _, _, err := measure(ctx, o, srv, nil, base); err != nil {
		return nil, err
	}
	logf("  %s", base.summary(o))
	windows = append(windows, base)

	logf("  composing to the channel")
	lis, err := startCounting(target)
	if err != nil {
		return nil, err
	}
	defer lis.stop()
	if err := lis.waitListening(port, 10*time.Second); err != nil {
		return nil, err
	}
	ch := &window{name: windowChannel, publishers: o.publishers}
	started := time.Now()
	arn, err := startComposition(ctx, api, stageARN, channelDestination(encoderARN))
	if err != nil {
		return nil, fail(err)
	}
	if err := lis.waitFirst(startTimeout); err != nil {
		return nil, fail(err)
	}
	ch.startup = time.Since(started)
	if err := waitActive(ctx, api, arn, startTimeout); err != nil {
		return nil, fail(err)
	}
	if _, _, err := measure(ctx, o, srv, lis, ch); err != nil {
		return nil, fail(err)
	}
	if ch.state, err = compositionState(ctx, api, arn); err != nil {
		return nil, err
	}
	if out, ok := lis.exited(); ok {
		return nil, fail(fmt.Errorf("the RTMP listener exited during the window: %s", out))
	}
	if err := publishersFailed(pubs); err != nil {
		return nil, fail(err)
	}
	logf("  %s", ch.summary(o))
	windows = append(windows, ch)
	if err := stopComposition(ctx, api, arn); err != nil {
		return nil, fail(err)
	}
	lis.stop()

	if o.s3 {
		logf("  composing to the bucket")
		s3, err := measureS3(ctx, o, srv, api, stageARN, encoderARN, pubs)
		if err != nil {
			return nil, fail(err)
		}
		logf("  %s", s3.summary(o))
		windows = append(windows, s3)
	}

	after := &window{name: windowAfter, publishers: o.publishers}
	logf("  %d publishers, no composition again", o.publishers)
	if _, _, err := measure(ctx, o, srv, nil, after); err != nil {
		return nil, err
	}
	logf("  %s", after.summary(o))
	return append(windows, after), nil
}

// measureS3 measures a composition to the bucket.
func measureS3(ctx context.Context, o *options, srv *serverproc.Server, api *ivsrealtime.Client, stageARN, encoderARN string, pubs []*publisher) (*window, error) {
	dest, err := s3Destination(ctx, api, encoderARN)
	if err != nil {
		return nil, err
	}
	watch := watchSegments(filepath.Join(srv.Data, "compositions"))
	defer watch.close()
	s3 := &window{name: windowS3, publishers: o.publishers}
	started := time.Now()
	arn, err := startComposition(ctx, api, stageARN, dest)
	if err != nil {
		return nil, err
	}
	for len(watch.seen()) == 0 {
		if time.Since(started) > startTimeout {
			return nil, fmt.Errorf("no HLS segment within %v", startTimeout)
		}
		if err := procstat.Sleep(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
	s3.startup = time.Since(started)
	if err := waitActive(ctx, api, arn, startTimeout); err != nil {
		return nil, err
	}
	from, to, err := measure(ctx, o, srv, nil, s3)
	if err != nil {
		return nil, err
	}
	if s3.state, err = compositionState(ctx, api, arn); err != nil {
		return nil, err
	}
	if err := publishersFailed(pubs); err != nil {
		return nil, err
	}
	if err := stopComposition(ctx, api, arn); err != nil {
		return nil, err
	}
	watch.close()
	playlist, err := findPlaylist(filepath.Join(srv.Data, "s3", compositionBucket))
	if err != nil {
		return nil, err
	}
	s3.media, s3.mediaWall, s3.segments = hlsRate(parsePlaylist(playlist), watch.seen(), from, to)
	if s3.segments == 0 {
		return nil, fmt.Errorf("no HLS segment completed within the window (playlist:\n%s)", playlist)
	}
	return s3, nil
}

// delayPhase is the delay from a publisher's switch of colour to the
// composite's.
type delayPhase struct {
	publishers int
	reference  bool   // the encoder alone (reference.go): no server, no publisher
	tune       string // the reference's x264 tune, "" as the server's
	region     rect
	switches   []colourSwitch
	delays     []time.Duration // -1 for a switch whose change was not seen
	startup    time.Duration
	pictures   int           // the listener decoded, while switching
	wall       time.Duration // of which
	startRGB   [3]float64    // the watched region before the first switch

	// CPU while switching.
	length                            time.Duration
	server, children, listener, bench time.Duration
	machine                           time.Duration
}

// seen is the delays of the switches whose change was seen.
func (p *delayPhase) seen() []time.Duration {
	var ds []time.Duration
	for _, d := range p.delays {
		if d >= 0 {
			ds = append(ds, d)
		}
	}
	return ds
}

func (p *delayPhase) other() time.Duration {
	return max(0, p.machine-p.server-p.listener-p.bench)
}

// runDelay measures the delay of colour switches on a fresh server: the
// first of the publishers switches colour every
// o.switchInterval, the others send the clip, and a listener decodes the
// composite.
func runDelay(ctx context.Context, o *options, tmp string, publishers int) (*delayPhase, error) {
	ps, err := startPhaseServer(ctx, o, tmp, "compositionbench-delay")
	if err != nil {
		return nil, err
	}
	defer ps.close()
	srv, hc, api, stageARN, target, port, fail := ps.srv, ps.hc, ps.api, ps.stageARN, ps.target, ps.port, ps.fail
	sw := newSwitcher(o.colours)
	pubs, err := startPublishers(ctx, api, hc, srv, stageARN, publishers, func(i int) publish.Source {
		if i == 0 {
			return sw
		}
		return publish.Loop(o.clip, o.clip.Opus)
	})
	if err != nil {
		return nil, fail(err)
	}
	defer func() {
		srv.Stop()
		closePublishers(pubs)
	}()
	ids := make([]string, len(pubs))
	for i, p := range pubs {
		ids[i] = p.id
	}
	p := &delayPhase{publishers: publishers}
	if p.region, err = watchedRegion(o.out, ids, o.width, o.height); err != nil {
		return nil, err
	}
	encoderARN, err := createEncoder(ctx, api, o.out)
	if err != nil {
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
	started := time.Now()
	arn, err := startComposition(ctx, api, stageARN, channelDestination(encoderARN))
	if err != nil {
		return nil, fail(err)
	}
	if err := lis.waitFirst(startTimeout); err != nil {
		return nil, fail(err)
	}
	p.startup = time.Since(started)
	if err := waitActive(ctx, api, arn, startTimeout); err != nil {
		return nil, fail(err)
	}
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	pics := lis.received()
	p.startRGB = pics[len(pics)-1].rgb
	if c, d := nearestColour(p.startRGB); c != 0 || d > 100*100 {
		return nil, fmt.Errorf("the composite's watched region %+v is RGB %.0f before the first switch, not the publisher's %s", p.region, p.startRGB, colours[0].name)
	}
	a, err := sampleCPU(srv, lis)
	if err != nil {
		return nil, err
	}
	for range o.switches {
		if err := procstat.Sleep(ctx, o.switchInterval); err != nil {
			return nil, err
		}
		sw.next()
	}
	// The last switch's change arrives within this.
	if err := procstat.Sleep(ctx, o.switchInterval); err != nil {
		return nil, err
	}
	b, err := sampleCPU(srv, lis)
	if err != nil {
		return nil, err
	}
	p.length = b.at.Sub(a.at)
	p.server, p.children = b.tree.Total()-a.tree.Total(), b.tree.Descendants-a.tree.Descendants
	p.listener, p.bench, p.machine = b.listener-a.listener, b.bench-a.bench, b.machine-a.machine
	if err := publishersFailed(pubs); err != nil {
		return nil, fail(err)
	}
	if out, ok := lis.exited(); ok {
		return nil, fail(fmt.Errorf("the RTMP listener exited during the switches: %s", out))
	}
	pics = lis.received()
	if err := stopComposition(ctx, api, arn); err != nil {
		return nil, fail(err)
	}

	sent, _ := pubs[0].log.Snapshot()
	prev := 0
	for _, s := range sw.switches() {
		p.switches = append(p.switches, colourSwitch{at: sent[s.frame].At, from: prev, to: s.colour})
		prev = s.colour
	}
	p.delays = switchDelays(p.switches, pics)
	for _, pic := range pics {
		if !pic.at.Before(a.at) && pic.at.Before(b.at) {
			p.pictures++
		}
	}
	p.wall = b.at.Sub(a.at)
	return p, nil
}
