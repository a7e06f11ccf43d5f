package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/rtcpeer"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// options are the bench's settings (its flags).
type options struct {
	subscribers     []int
	duration        time.Duration
	warmup          time.Duration
	drain           time.Duration
	runs            int
	stream          streamConfig
	joinConcurrency int
	joinTimeout     time.Duration
	rtcpFeedback    bool
	clientTWCC      bool   // pion subscribers send TWCC feedback and take retransmissions in their own stream
	client          string // "lite" or "pion"
	baseline        bool
	serverBin       string
	perfDir         string
	quietWait       time.Duration
	out             string
	jsonOut         string // also write the measurements as JSON here
	meeting         int    // publishers of a meeting, 0 for the fan-out sweep
	viewers         []int  // viewers of the meeting, one phase each
	serverFlags     []string
	simulcast       bool // the fan-out's publisher sends three layers
	compareBWE      bool // each subscriber count also without the server's bandwidth estimation

	// The record mode: publisher counts, one pair of phases each.
	record                []int
	recordSubs            int // subscribers per publisher
	clipLength            time.Duration
	clipWidth, clipHeight int
	clip                  *clip // the media the publishers send
}

// measurement is what one phase (the SFU or the relay, N subscribers)
// measured over its window.
type measurement struct {
	n          int
	subscribed int // receivers the phase started; the SFU's WHEP sessions that were set up
	window     time.Duration
	sent       uint64        // packets the publisher sent in the window
	received   uint64        // of those, distinct arrivals summed over the receivers
	arrived    uint64        // packets that arrived in the window, whenever sent
	wireBytes  uint64        // bytes the receivers' sockets got in the window
	serverCPU  time.Duration // the server's and its children's (thumbnails' ffmpeg)
	childCPU   time.Duration // of which its children's
	selfCPU    time.Duration
	machineCPU time.Duration
	drops      uint64
	latency    histogram
	joins      []time.Duration // WHEP request to first packet, of those that got one
	failed     int             // subscribers refused, or without a packet within the join timeout
	plis       uint64          // keyframe requests the publisher received while the subscribers joined
	expected   uint64          // packets that should have arrived, summed over the receivers; 0: sent × subscribed
	lower      uint64          // of arrived, packets of a lower simulcast layer than the top one
	rtx        uint64          // of arrived, packets in the retransmission stream: NACK answers and probes' padding

	// The server's resident memory (VmRSS): with the stage made and nobody
	// in it, once everyone has joined, and at the end of the window.
	rssIdle, rssJoined, rssEnd uint64

	// A meeting's phase only.
	viewers   int
	partJoins []time.Duration // a participant's first WHEP request to the first packet of its last stream
}

// window is the start or end of a measured window.
type window struct {
	cpu        cpuSample
	counter    uint64
	wire       uint64
	arrived    uint64
	lower, rtx uint64
}

// received adds what r received to w.
func (w *window) received(r receiver) {
	w.wire += r.wire()
	t := r.counts()
	w.arrived += t.arrivals()
	lower, rtx := t.extra()
	w.lower += lower
	w.rtx += rtx
}

func (m *measurement) between(a, b window) {
	m.window = b.cpu.at.Sub(a.cpu.at)
	m.sent = b.counter - a.counter
	m.wireBytes = b.wire - a.wire
	m.arrived = b.arrived - a.arrived
	m.lower = b.lower - a.lower
	m.rtx = b.rtx - a.rtx
	m.serverCPU = b.cpu.server - a.cpu.server
	m.childCPU = b.cpu.children - a.cpu.children
	m.selfCPU = b.cpu.self - a.cpu.self
	m.machineCPU = b.cpu.machine - a.cpu.machine
	m.drops = b.cpu.drops - a.cpu.drops
}

type participantToken struct{ id, token string }

// makeTokens creates a stage and n participant tokens in it.
func makeTokens(ctx context.Context, api *ivsrealtime.Client, n int) ([]participantToken, error) {
	return makeStageTokens(ctx, api, &ivsrealtime.CreateStageInput{Name: aws.String("sfubench")}, n)
}

// makeStageTokens creates a stage as in asks and n participant tokens in
// it.
func makeStageTokens(ctx context.Context, api *ivsrealtime.Client, in *ivsrealtime.CreateStageInput, n int) ([]participantToken, error) {
	stage, err := api.CreateStage(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("CreateStage: %w", err)
	}
	toks := make([]participantToken, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				out, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
					StageArn: stage.Stage.Arn, UserId: aws.String(fmt.Sprintf("sfubench-%d", i))})
				if err != nil {
					errs[i] = fmt.Errorf("CreateParticipantToken: %w", err)
					continue
				}
				toks[i] = participantToken{aws.ToString(out.ParticipantToken.ParticipantId), aws.ToString(out.ParticipantToken.Token)}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return toks, errors.Join(errs...)
}

// runSFU measures ivsrt, started with flags after the bench's own,
// forwarding one publisher to n subscribers. name tells the phase apart
// in the names of perf's files.
func runSFU(ctx context.Context, o *options, tmp string, n int, run int, flags []string, name string) (*measurement, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	srv, err := serverproc.StartServer(ctx, o.serverBin, tmp, flags)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: o.joinConcurrency + 8}}
	defer hc.CloseIdleConnections()
	toks, err := makeTokens(ctx, srv.API(hc), n+1)
	if err != nil {
		return nil, err
	}
	rssIdle := processRSS(srv.PID())

	pub, err := publish(ctx, hc, srv.URL, toks[0].token, o.stream, o.rtcpFeedback, o.simulcast)
	if err != nil {
		return nil, fmt.Errorf("%w (server log: %s)", err, serverproc.Tail(srv.Log))
	}
	defer pub.close()
	if o.simulcast {
		// Subscribers join a publication under way, whose layers the
		// server has measured: each then starts as any later one does.
		// Before, the first ones would start while the layers' bitrates
		// are unknown, which the layer selection treats otherwise.
		if err := procstat.Sleep(ctx, simulcastLead); err != nil {
			return nil, err
		}
	}

	m := &measurement{n: n, rssIdle: rssIdle}
	subs := make([]receiver, n)
	video := vp8Video
	if o.simulcast {
		video = vp8Simulcast
	}
	defer func() {
		// The server goes first: nobody's departure needs recording.
		srv.Stop()
		var wg sync.WaitGroup
		for _, s := range subs {
			if s != nil {
				wg.Go(s.close)
			}
		}
		wg.Wait()
	}()
	joinErrs := make([]error, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range o.joinConcurrency {
		wg.Go(func() {
			for i := range next {
				s, err := joinOne(ctx, hc, srv.URL, toks[i+1].token, toks[0].id, o, video)
				mu.Lock()
				subs[i], joinErrs[i] = s, err
				mu.Unlock()
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	m.plis = pub.keyRequests()
	var firstErr error
	for i, s := range subs {
		if s == nil {
			m.failed++
			if firstErr == nil {
				firstErr = joinErrs[i]
			}
			continue
		}
		m.subscribed++
		if at := s.counts().firstAt(); !at.IsZero() {
			m.joins = append(m.joins, at.Sub(s.began()))
		} else {
			m.failed++
		}
	}
	if m.subscribed == 0 {
		return nil, fmt.Errorf("no subscriber could join: %v (server log: %s)", firstErr, serverproc.Tail(srv.Log))
	}
	if firstErr != nil {
		logf("  %d of %d subscribers failed to join, the first: %v", m.failed, n, firstErr)
	}

	m.rssJoined = processRSS(srv.PID())
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	var perf *exec.Cmd
	if o.perfDir != "" {
		perf = startPerf(o.perfDir, fmt.Sprintf("%s-n%d-run%d", name, n, run), srv.PID())
	}
	wire := func(w *window) {
		for _, s := range subs {
			if s != nil {
				w.received(s)
			}
		}
	}
	measure := func(on bool) {
		for _, s := range subs {
			if s != nil {
				s.counts().setMeasure(on)
			}
		}
	}
	measure(true)
	start, err := mark(srv.PID(), pub.sender, wire)
	if err != nil {
		return nil, err
	}
	if err := procstat.Sleep(ctx, o.duration); err != nil {
		return nil, err
	}
	end, err := mark(srv.PID(), pub.sender, wire)
	if err != nil {
		return nil, err
	}
	measure(false)
	stopPerf(perf)
	m.between(start, end)
	m.rssEnd = processRSS(srv.PID())
	if err := procstat.Sleep(ctx, o.drain); err != nil {
		return nil, err
	}
	for _, s := range subs {
		if s != nil {
			t := s.counts()
			m.received += t.count(start.counter, end.counter)
			t.mu.Lock()
			m.latency.merge(&t.latency)
			t.mu.Unlock()
		}
	}
	return m, nil
}

// simulcastLead is how long a simulcast publisher sends before the
// subscribers join: more than the second the server measures a layer for
// before it gives it.
const simulcastLead = 2 * time.Second

// joinOne subscribes and waits for the first packet. A subscriber that
// was refused for want of a publisher (the server may see the publisher
// connected a moment after the publisher does) tries again.
func joinOne(ctx context.Context, hc *http.Client, base, token, publisherID string, o *options, video videoSpec) (receiver, error) {
	deadline := time.Now().Add(o.joinTimeout)
	for {
		var s receiver
		var err error
		if o.client == "pion" {
			s, err = subscribe(ctx, hc, base, token, publisherID, o.rtcpFeedback, o.clientTWCC, video)
		} else {
			s, err = subscribeLite(ctx, hc, base, token, publisherID, video)
		}
		var ref *rtcpeer.Refused
		if errors.As(err, &ref) && ref.Code == "PUBLISHER_NOT_FOUND" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, err
		}
		for s.counts().firstAt().IsZero() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond)
		}
		return s, nil
	}
}

// mark samples the CPU times, the publisher's counter and the bytes
// received, at the start or end of a window.
func mark(pid int, snd *sender, received func(*window)) (window, error) {
	var w window
	w.counter = snd.sent.Load()
	received(&w)
	var err error
	w.cpu, err = sampleCPU(pid)
	return w, err
}

// runBaseline measures the relay forwarding the same stream to n
// receivers.
func runBaseline(ctx context.Context, o *options, n int) (*measurement, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	relay, err := startRelay(ctx)
	if err != nil {
		return nil, err
	}
	defer relay.stop()
	rs, err := joinRelay(relay.addr, n)
	if err != nil {
		return nil, err
	}
	defer closeReceivers(rs)
	conn, err := net.DialUDP("udp4", nil, relay.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetWriteBuffer(socketBuffer)
	snd := newSender(o.stream, func(raw []byte) error {
		_, err := conn.Write(raw)
		return err
	})
	go snd.run()
	defer snd.close()

	m := &measurement{n: n, subscribed: n}
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	wire := func(w *window) {
		for _, r := range rs {
			w.wire += r.bytes.Load()
			w.arrived += r.tally.arrivals()
		}
	}
	for _, r := range rs {
		r.tally.setMeasure(true)
	}
	start, err := mark(relay.pid(), snd, wire)
	if err != nil {
		return nil, err
	}
	if err := procstat.Sleep(ctx, o.duration); err != nil {
		return nil, err
	}
	end, err := mark(relay.pid(), snd, wire)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		r.tally.setMeasure(false)
	}
	m.between(start, end)
	if err := procstat.Sleep(ctx, o.drain); err != nil {
		return nil, err
	}
	for _, r := range rs {
		m.received += r.tally.count(start.counter, end.counter)
		r.tally.mu.Lock()
		m.latency.merge(&r.tally.latency)
		r.tally.mu.Unlock()
	}
	return m, nil
}

// startPerf records a CPU profile of pid with perf until stopPerf; nil if
// perf cannot be started.
func startPerf(dir, name string, pid int) *exec.Cmd {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("  perf: %v", err)
		return nil
	}
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-p", fmt.Sprint(pid),
		"-o", filepath.Join(dir, name+".perf.data"))
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := serverproc.Start(cmd); err != nil {
		logf("  perf: %v", err)
		return nil
	}
	return cmd
}

func stopPerf(cmd *exec.Cmd) {
	if cmd == nil {
		return
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	serverproc.Signal(cmd, done, syscall.SIGINT, 30*time.Second)
}

// session is one subscription of a phase: a receiver of publisher pub's
// stream, or the error that kept it from subscribing.
type session struct {
	recv receiver
	pub  int
	err  error
}

// measureWindow measures one phase's window, once its participants have
// warmed up: the server's CPU and what the subscribers in live received
// over o.duration, against the np publishers' counters (sent(i) is
// publisher i's), then, after o.drain, the packets of the window that
// arrived and their latency. It fills in m.
func measureWindow(ctx context.Context, o *options, srv *serverproc.Server, m *measurement, live []*session, np int, sent func(i int) uint64) error {
	counters := func() []uint64 {
		c := make([]uint64, np)
		for i := range np {
			c[i] = sent(i)
		}
		return c
	}
	received := func(w *window) {
		for _, s := range live {
			w.received(s.recv)
		}
	}
	for _, s := range live {
		s.recv.counts().setMeasure(true)
	}
	var start, end window
	var err error
	from := counters()
	received(&start)
	if start.cpu, err = sampleCPU(srv.PID()); err != nil {
		return err
	}
	if err := procstat.Sleep(ctx, o.duration); err != nil {
		return err
	}
	to := counters()
	received(&end)
	if end.cpu, err = sampleCPU(srv.PID()); err != nil {
		return err
	}
	for _, s := range live {
		s.recv.counts().setMeasure(false)
	}
	for i := range np {
		start.counter += from[i]
		end.counter += to[i]
	}
	m.between(start, end)
	m.rssEnd = processRSS(srv.PID())
	if err := procstat.Sleep(ctx, o.drain); err != nil {
		return err
	}
	for _, s := range live {
		t := s.recv.counts()
		m.expected += to[s.pub] - from[s.pub]
		m.received += t.count(from[s.pub], to[s.pub])
		t.mu.Lock()
		m.latency.merge(&t.latency)
		t.mu.Unlock()
	}
	return nil
}
