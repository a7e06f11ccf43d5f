package clusterbench

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	rtpcodecs "github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/publish"
	"github.com/ivsrt/ivsrt/bench/internal/rtcpeer"
	"github.com/ivsrt/ivsrt/store/postgres"
)

// The fan-out phase: one stage, one publisher of H.264 and Opus, S
// subscribers, on 1, 2 and 3 nodes of a cluster on PostgreSQL and NATS.
// The stage's host is its origin; on 2 and 3 nodes the other nodes serve
// their share of the subscribers as edges, each pulling the publication
// from the origin once for all its subscribers.

// subscribersEnv sets the default of -subscribers.
const subscribersEnv = "IVSRT_BENCH_SUBSCRIBERS"

var (
	flagSubscribers   = flag.Int("subscribers", envInt(subscribersEnv, 60), "fan-out: subscribers of the one publisher, split evenly over the nodes (default from "+subscribersEnv+")")
	flagFanoutNodes   = flag.String("fanout-nodes", "1,2,3", "fan-out: the deployments to measure, by number of nodes")
	flagFanoutWarmup  = flag.Duration("fanout-warmup", 5*time.Second, "fan-out: unmeasured time once every subscriber receives")
	flagFanoutWindow  = flag.Duration("fanout-window", 20*time.Second, "fan-out: measured time of each deployment")
	flagFanoutRuns    = flag.Int("fanout-runs", 3, "fan-out: rounds of the deployments; the report shows each deployment's run of median CPU per packet")
	flagFanoutIdle    = flag.Duration("fanout-idle", 5*time.Second, "fan-out: time the nodes' CPU is measured before the stage starts")
	flagVideoKbps     = flag.Int("video-kbps", 2500, "fan-out: the publisher's H.264 bit rate asked of x264")
	flagFanoutTWCC    = flag.Bool("fanout-twcc", false, "fan-out: subscribers negotiate transport-wide congestion control and RTX, as browsers do")
	flagJoinParallel  = flag.Int("join-concurrency", 8, "fan-out: subscribers joining at once")
	flagFanoutOut     = flag.String("fanout-out", "", "fan-out report; default bench/results/<YYYY-MM-DD>/cluster-fanout.md of the module, - for none")
	flagFanoutMinRecv = flag.Float64("fanout-min-received", 0.98, "fan-out: the run fails if a subscriber gets less than this share of the packets published in the window")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// The publisher's clip: 720p30 with a keyframe every 2 s, looped.
const (
	clipLength   = 10 * time.Second
	clipKeyEvery = 2 * time.Second
	clipWidth    = 1280
	clipHeight   = 720
)

// TestFanout measures the same fan-out on each deployment of -fanout-nodes
// and writes the report.
func TestFanout(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skipf("a benchmark of a few minutes; set %s=1 to run it", benchEnv)
	}
	root, err := procstat.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for f := range strings.SplitSeq(*flagFanoutNodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("-fanout-nodes: %q is not a number of nodes", f)
		}
		counts = append(counts, n)
	}
	if *flagSubscribers < 1 {
		t.Fatal("-subscribers: at least one")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	bin, err := procstat.BuildServer(ctx, root, t.TempDir())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().UTC()
	c, err := clip.Encode(t.TempDir(), clip.Spec{Name: "fanout", Length: clipLength, Width: clipWidth, Height: clipHeight,
		Kbps: *flagVideoKbps, KeyInterval: clipKeyEvery})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clip: %dx%d H.264 at %.0f kbit/s, Opus at %.0f kbit/s; encoded in %v", clipWidth, clipHeight,
		c.VideoKbps(), c.OpusKbps(), time.Since(started).Round(100*time.Millisecond))

	rep := &fanoutReport{started: started, root: root, clip: c, subscribers: *flagSubscribers}
	// The deployments in turn, round after round, so that a disturbance
	// of the machine does not fall on one deployment's runs only.
	for round := 1; round <= max(1, *flagFanoutRuns); round++ {
		for _, n := range counts {
			ok := t.Run(fmt.Sprintf("%d-nodes-run-%d", n, round), func(t *testing.T) {
				r := benchFanout(t, bin, c, n, *flagSubscribers)
				r.round = round
				rep.runs = append(rep.runs, r)
				t.Log(r.summary())
				if msg := r.unhealthy(); msg != "" {
					t.Errorf("%d nodes: %s", n, msg)
				}
			})
			if !ok {
				rep.failures = append(rep.failures, fmt.Sprintf("%d nodes, run %d: failed; see the test log", n, round))
			}
		}
	}

	out := *flagFanoutOut
	if out == "" {
		out = filepath.Join(root, "bench", "results", started.Format("2006-01-02"), "cluster-fanout.md")
	}
	text := rep.markdown()
	t.Logf("report:\n%s", text)
	if out == "-" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

// fanoutNode is what one node did over the measured window.
type fanoutNode struct {
	id          string
	origin      bool
	subscribers int           // placed on it
	idle        float64       // cores it kept busy before the stage started
	cpu         time.Duration // its process's user+system time in the window
	before      metricValues  // its /metrics at the window's start…
	after       metricValues  // …and end
}

// delta is how much counter name grew over the window.
func (n *fanoutNode) delta(name string) float64 { return n.after[name] - n.before[name] }

// fanoutRun is one deployment's measurements.
type fanoutRun struct {
	nodes     int
	round     int
	wall      time.Duration // of the window
	perNode   []*fanoutNode // the origin first
	cpu       cpuUse        // all the nodes, PostgreSQL, the bench, the machine
	published uint64        // packets the publisher sent in the window (video and audio)
	pubVideo  uint64
	subs      []subWindow
	joins     []time.Duration // WHEP request to first video packet, sorted
}

// subWindow is what one subscriber received over the window.
type subWindow struct {
	node     string
	packets  uint64 // read from its tracks, retransmissions and duplicates included
	unique   uint64 // distinct sequence numbers
	expected uint64 // sequence numbers the window spans
}

// benchFanout starts n nodes, publishes on the stage's host and places
// subscribers evenly on the nodes, then measures a window.
func benchFanout(t *testing.T, bin string, c *clip.Clip, n, subscribers int) *fanoutRun {
	waitQuiet(*flagQuietWait)
	d := startCluster(t, bin, setup{key: fmt.Sprintf("fanout%d", n), name: fmt.Sprintf("PostgreSQL, %d nodes", n), postgres: true, nodes: n})
	// What the nodes cost doing nothing: the cluster's heartbeats, the
	// runtime.
	idle := map[string]float64{}
	{
		before := make([]time.Duration, len(d.nodes))
		for i, nd := range d.nodes {
			before[i], _ = procstat.ProcessCPU(nd.pid())
		}
		start := time.Now()
		time.Sleep(*flagFanoutIdle)
		for i, nd := range d.nodes {
			after, _ := procstat.ProcessCPU(nd.pid())
			idle[nd.id] = (after - before[i]).Seconds() / time.Since(start).Seconds()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tr := newTransport(64)
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	api := newClient(d.nodes[0], tr)

	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	out, err := api.CreateStage(sctx, &ivsrealtime.CreateStageInput{Name: aws.String("fanout")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Stage.Arn)
	token := func(user string, caps ...types.ParticipantTokenCapability) *types.ParticipantToken {
		tok, err := api.CreateParticipantToken(sctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn),
			UserId: aws.String(user), Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		return tok.ParticipantToken
	}
	pubTok := token("publisher", types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe)
	subToks := make([]string, subscribers)
	for i := range subToks {
		subToks[i] = aws.ToString(token(fmt.Sprintf("viewer-%03d", i), types.ParticipantTokenCapabilitySubscribe).Token)
	}

	// The publisher, through node-a: the stage is placed when it joins.
	w, err := publish.DialWHIP(sctx, hc, d.nodes[0].url(), aws.ToString(pubTok.Token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	pub := &countedWHIP{WHIP: w}
	sendDone := make(chan error, 1)
	go func() {
		sendDone <- publish.Send(ctx, publish.Loop(c, c.Opus), pub, &publish.Log{Unit: clip.OpusPacket})
	}()
	t.Cleanup(func() {
		cancel()
		<-sendDone
	})
	pubID := aws.ToString(pubTok.ParticipantId)

	// The origin is the stage's host; the other nodes are its edges.
	origin := hostOf(t, sctx, d, arn)
	order := []*node{origin}
	for _, nd := range d.nodes {
		if nd != origin {
			order = append(order, nd)
		}
	}
	run := &fanoutRun{nodes: n}
	byID := map[string]*fanoutNode{}
	for i, nd := range order {
		fn := &fanoutNode{id: nd.id, origin: i == 0, idle: idle[nd.id]}
		run.perNode = append(run.perNode, fn)
		byID[nd.id] = fn
	}
	t.Logf("%d nodes: origin %s; %d subscribers", n, origin.id, subscribers)

	// The subscribers: subscriber i asks node i mod n of order itself.
	subs := make([]*fanoutSub, subscribers)
	var (
		mu       sync.Mutex
		firstErr error
		failed   int
	)
	t.Cleanup(func() {
		for _, s := range subs {
			if s != nil {
				s.peer.Close()
			}
		}
	})
	sem := make(chan struct{}, max(1, *flagJoinParallel))
	var wg sync.WaitGroup
	for i := range subs {
		nd := order[i%n]
		byID[nd.id].subscribers++
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s, err := subscribeFanout(sctx, hc, nd, subToks[i], pubID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("subscriber %d on %s: %w", i, nd.id, err)
				}
				return
			}
			subs[i] = s
			run.joins = append(run.joins, s.joined)
		})
	}
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of %d subscribers did not receive video: %v", failed, subscribers, firstErr)
	}
	slices.Sort(run.joins)
	t.Logf("%d nodes: %d subscribers receive (join p50 %.0f ms, max %.0f ms); %v warm-up", n, subscribers,
		ms(percentile(run.joins, 0.5)), ms(run.joins[len(run.joins)-1]), *flagFanoutWarmup)
	time.Sleep(*flagFanoutWarmup)

	// The window.
	type snapshot struct {
		cpu  []time.Duration
		all  cpuSample
		subs []subCounts
		pub  [2]uint64
	}
	take := func(into func(*fanoutNode) *metricValues) snapshot {
		// The counters first, as close together as can be: the nodes'
		// in parallel, the subscribers' and the publisher's meanwhile.
		var s snapshot
		errs := make([]error, len(order))
		var wg sync.WaitGroup
		for i, nd := range order {
			wg.Go(func() {
				m, err := scrapeMetrics(nd)
				*into(run.perNode[i]), errs[i] = m, err
			})
		}
		for _, sub := range subs {
			s.subs = append(s.subs, sub.counts())
		}
		s.pub = [2]uint64{pub.video.Load(), pub.audio.Load()}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for _, nd := range order {
			c, err := procstat.ProcessCPU(nd.pid())
			if err != nil {
				t.Fatalf("%s: %v", nd.id, err)
			}
			s.cpu = append(s.cpu, c)
		}
		s.all = d.sampleCPU()
		return s
	}
	a := take(func(n *fanoutNode) *metricValues { return &n.before })
	time.Sleep(*flagFanoutWindow)
	b := take(func(n *fanoutNode) *metricValues { return &n.after })
	run.cpu = a.all.until(b.all)
	run.wall = run.cpu.wall
	for i, fn := range run.perNode {
		fn.cpu = b.cpu[i] - a.cpu[i]
	}
	run.pubVideo = b.pub[0] - a.pub[0]
	run.published = run.pubVideo + b.pub[1] - a.pub[1]
	for i, sub := range subs {
		x, y := a.subs[i], b.subs[i]
		sw := subWindow{node: sub.node, packets: y.packets - x.packets, unique: y.unique - x.unique, expected: y.expected - x.expected}
		run.subs = append(run.subs, sw)
	}
	select {
	case err := <-sendDone:
		t.Fatalf("the publisher stopped: %v", err)
	default:
	}
	return run
}

// hostOf waits for the stage's placement and returns its host.
func hostOf(t *testing.T, ctx context.Context, d *deployment, arn string) *node {
	t.Helper()
	db, err := postgres.Open(ctx, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := db.GetStageHost(ctx, ivsrt.StageARN(arn))
		if err == nil {
			for _, nd := range d.nodes {
				if nd.id == h.NodeID {
					return nd
				}
			}
			t.Fatalf("the stage is hosted on %s, not one of the nodes", h.NodeID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stage's host: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countedWHIP is the WHIP publisher, counting the RTP packets it sends:
// it cuts each frame as the publisher does, with a payloader of its own.
type countedWHIP struct {
	*publish.WHIP
	payloader    rtpcodecs.H264Payloader
	video, audio atomic.Uint64
}

func (w *countedWHIP) WriteVideo(pts time.Duration, f clip.Frame) error {
	n := len(w.payloader.Payload(publish.MTU, clip.AnnexB(f.NALUs)))
	err := w.WHIP.WriteVideo(pts, f)
	w.video.Add(uint64(n))
	return err
}

func (w *countedWHIP) WriteAudio(pts time.Duration, data []byte) error {
	err := w.WHIP.WriteAudio(pts, data)
	w.audio.Add(1)
	return err
}

// fanoutSub is a WHEP subscriber to the publisher's audio and video, a
// pion peer connection on a socket of its own, counting what it gets.
type fanoutSub struct {
	peer   *rtcpeer.Peer
	node   string
	joined time.Duration // WHEP request to first video packet

	mu     sync.Mutex
	tracks []*seqCount
}

type subCounts struct{ packets, unique, expected uint64 }

func (s *fanoutSub) counts() subCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c subCounts
	for _, tc := range s.tracks {
		c.packets += tc.packets
		c.unique += tc.unique
		if tc.started {
			c.expected += uint64(tc.highest - tc.first + 1)
		}
	}
	return c
}

// seqCount counts one track's packets by sequence number: all of them,
// the distinct ones (a retransmission of a packet that arrived, or one
// older than the window of seqWindow, is not counted again), and the span
// from the first to the highest, so that span less distinct is what was
// lost on the way. The SFU numbers a subscriber's packets without gaps
// for those it chose not to send, so those show only against what the
// publisher sent.
type seqCount struct {
	packets, unique uint64
	started         bool
	first, highest  int64 // extended sequence numbers
	seen            [seqWindow / 64]uint64
}

const seqWindow = 4096

func (c *seqCount) note(seq uint16) {
	c.packets++
	if !c.started {
		c.started, c.first, c.highest = true, int64(seq), int64(seq)
		c.mark(int64(seq))
		c.unique++
		return
	}
	ext := c.highest + int64(int16(seq-uint16(c.highest)))
	if ext > c.highest {
		for e := c.highest + 1; e <= ext && e <= c.highest+seqWindow; e++ {
			c.seen[(e%seqWindow)/64] &^= 1 << (e % 64)
		}
		c.highest = ext
	} else if c.highest-ext >= seqWindow || ext < c.first {
		return
	}
	if c.seen[(ext%seqWindow)/64]&(1<<(ext%64)) == 0 {
		c.mark(ext)
		c.unique++
	}
}

func (c *seqCount) mark(e int64) { c.seen[(e%seqWindow)/64] |= 1 << (e % 64) }

// subscribeFanout starts a WHEP session at nd to the publisher's audio
// and video and waits for the first video packet.
func subscribeFanout(ctx context.Context, hc *http.Client, nd *node, token, publisherID string) (*fanoutSub, error) {
	p, err := rtcpeer.New(rtcpeer.Options{Video: rtcpeer.H264, Audio: &rtcpeer.Opus, RTCPFeedback: true,
		TWCC: *flagFanoutTWCC, SocketBuffer: 1 << 20})
	if err != nil {
		return nil, err
	}
	s := &fanoutSub{peer: p, node: nd.id}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := p.PC.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			p.Close()
			return nil, err
		}
	}
	video := make(chan struct{})
	var once sync.Once
	p.PC.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		tc := &seqCount{}
		s.mu.Lock()
		s.tracks = append(s.tracks, tc)
		s.mu.Unlock()
		isVideo := tr.Kind() == webrtc.RTPCodecTypeVideo
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			s.mu.Lock()
			tc.note(binary.BigEndian.Uint16(buf[2:4]))
			s.mu.Unlock()
			if isVideo {
				once.Do(func() { close(video) })
			}
		}
	})
	offer, err := p.Offer(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	start := time.Now()
	if _, _, err := p.Exchange(ctx, hc, nd.url()+ivsrt.WHEPPrefix+publisherID, token, offer); err != nil {
		p.Close()
		return nil, err
	}
	select {
	case <-video:
		s.joined = time.Since(start)
		return s, nil
	case <-time.After(15 * time.Second):
		p.Close()
		return nil, errors.New("no video within 15s")
	case <-ctx.Done():
		p.Close()
		return nil, ctx.Err()
	}
}

// metricValues is a node's /metrics: each series's value by its name and
// labels, as name{k="v",…}, and each family's sum by its name alone.
type metricValues map[string]float64

var metricsClient = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}

func scrapeMetrics(nd *node) (metricValues, error) {
	resp, err := metricsClient.Get(nd.url() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("/metrics: %w", err)
	}
	m := metricValues{}
	for name, f := range fams {
		for _, s := range f.Metric {
			var v float64
			switch {
			case s.Counter != nil:
				v = s.Counter.GetValue()
			case s.Gauge != nil:
				v = s.Gauge.GetValue()
			case s.Untyped != nil:
				v = s.Untyped.GetValue()
			default:
				continue
			}
			m[name] += v
			if len(s.Label) > 0 {
				var labels []string
				for _, l := range s.Label {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				m[name+"{"+strings.Join(labels, ",")+"}"] = v
			}
		}
	}
	return m, nil
}
