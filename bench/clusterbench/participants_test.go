package clusterbench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/store/postgres"
)

// The shape of the participants ramp.
const (
	stageSize      = 10               // participants per stage: one publisher, the rest subscribers
	joinTimeout    = 10 * time.Second // a join slower than this counts as failed
	maxJoinP95     = 2 * time.Second  // the ramp stops when a step's join p95 exceeds this
	saturatedShare = 0.95             // …or when its own processes keep this share of the cores busy

	// The publishers' test pattern (the bot's sizes are multiples of 16).
	videoWidth, videoHeight, videoFPS = 160, 128, 15
)

// rampStep is one step of the ramp: the joins it added, and the CPU with
// everyone connected afterwards.
type rampStep struct {
	participants int // connected after the step
	joins        int // bots started in the step
	failed       int
	firstErr     string
	subLat       []time.Duration // subscribers: start to first video frame, sorted
	pubLat       []time.Duration // publishers: start to publishing, sorted
	cpu          cpuUse          // steady time after the step's joins
}

// rampResult is the ramp of one setup.
type rampResult struct {
	setup     string
	nodes     int
	steps     []rampStep
	sustained int    // participants of the last step that passed
	stop      string // why the ramp stopped
	subLat    []time.Duration
	pubLat    []time.Duration
	hold      cpuUse // at the top, everyone connected
	receiving int    // subscribers whose frame count grew during the hold
	watching  int    // subscribers connected during the hold
	publishing,
	publishers int
	stagesByNode       map[string]int // from the store's placements
	participantsByNode map[string]int // as GET /v1/cluster/nodes reports them
}

// runningBot is a bot of the ramp and its Run.
type runningBot struct {
	b       *bot.Bot
	start   time.Time
	cancel  context.CancelFunc
	exited  chan struct{}
	err     error // how Run ended; read once exited is closed
	publish bool
	failed  atomic.Bool // counted as a failed join already
}

func (rb *runningBot) ended() bool {
	select {
	case <-rb.exited:
		return true
	default:
		return false
	}
}

// fleet is the ramp's bots.
type fleet struct {
	hc   *http.Client
	mu   sync.Mutex
	bots []*runningBot
}

func (f *fleet) start(cfg bot.Config) (*runningBot, error) {
	cfg.HTTPClient = f.hc
	b, err := bot.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBot{b: b, start: time.Now(), cancel: cancel, exited: make(chan struct{}), publish: cfg.Video}
	go func() {
		rb.err = b.Run(ctx)
		close(rb.exited)
	}()
	f.mu.Lock()
	f.bots = append(f.bots, rb)
	f.mu.Unlock()
	return rb, nil
}

// stopAll ends every bot and waits up to within for them to leave.
func (f *fleet) stopAll(within time.Duration) int {
	f.mu.Lock()
	bots := slices.Clone(f.bots)
	f.mu.Unlock()
	for _, rb := range bots {
		rb.cancel()
	}
	deadline := time.After(within)
	stuck := 0
	for _, rb := range bots {
		select {
		case <-rb.exited:
		case <-deadline:
			stuck++
		}
	}
	return stuck
}

// awaitPublishing waits until rb has sent its first video frame and
// returns how long that took from its start.
func awaitPublishing(rb *runningBot) (time.Duration, error) {
	return await(rb, func(st bot.Stats) bool { return st.State == bot.StatePublishing && st.Sent.VideoFrames > 0 })
}

// awaitFirstFrame waits until rb has received a whole video frame and
// returns how long that took from its start.
func awaitFirstFrame(rb *runningBot) (time.Duration, error) {
	return await(rb, func(st bot.Stats) bool {
		for _, r := range st.Received {
			if r.VideoFrames > 0 {
				return true
			}
		}
		return false
	})
}

func await(rb *runningBot, done func(bot.Stats) bool) (time.Duration, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := rb.start.Add(joinTimeout)
	for {
		st := rb.b.Stats()
		if done(st) {
			return time.Since(rb.start), nil
		}
		if rb.ended() {
			if rb.err != nil {
				return 0, rb.err
			}
			return 0, errors.New("the bot left")
		}
		for _, r := range st.Received {
			if r.Error != "" {
				return 0, fmt.Errorf("subscribe: %s", r.Error)
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not within %v (state %s)", joinTimeout, st.State)
		}
		<-tick.C
	}
}

// benchParticipants starts a cluster of s and ramps participants up,
// -step at a time in stages of ten, until joins fail, a step's join p95
// exceeds 2 s, the nodes, PostgreSQL and the bots saturate the cores, or
// -max-participants are connected.
func benchParticipants(t *testing.T, bin string, s setup) rampResult {
	c := startCluster(t, bin, s)
	res := rampResult{setup: s.name, nodes: s.nodes}
	tr := newTransport(64)
	t.Cleanup(tr.CloseIdleConnections)
	api := make([]*ivsrealtime.Client, len(c.nodes))
	for i, n := range c.nodes {
		api[i] = newClient(n, tr)
	}

	// Stages and tokens for the whole ramp: participant j's token is made
	// through node j mod N, so that it joins through that node.
	stageCount := (*flagMaxParticipants + stageSize - 1) / stageSize
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var arns []string
	tokens := make([]string, 0, stageCount*stageSize)
	for k := range stageCount {
		out, err := api[k%len(api)].CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("ramp-%02d", k))})
		if err != nil {
			t.Fatalf("create stage %d: %v", k, err)
		}
		arn := aws.ToString(out.Stage.Arn)
		arns = append(arns, arn)
		for i := range stageSize {
			j := k*stageSize + i
			caps := []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}
			if i == 0 {
				caps = append(caps, types.ParticipantTokenCapabilityPublish)
			}
			tok, err := api[j%len(api)].CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
				StageArn: aws.String(arn), UserId: aws.String(fmt.Sprintf("bot-%03d", j)), Capabilities: caps})
			if err != nil {
				t.Fatalf("token %d: %v", j, err)
			}
			tokens = append(tokens, aws.ToString(tok.ParticipantToken.Token))
		}
	}

	f := &fleet{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	defer func() {
		if stuck := f.stopAll(30 * time.Second); stuck > 0 {
			t.Logf("%d bots did not leave within 30s", stuck)
		}
	}()
	waitQuiet(*flagQuietWait)

	stagesPerStep := max(1, *flagStep/stageSize)
	connected := 0
	for next := 0; next < stageCount; next += stagesPerStep {
		stages := make([]int, 0, stagesPerStep)
		for k := next; k < min(next+stagesPerStep, stageCount); k++ {
			stages = append(stages, k)
		}
		step := rampOnce(f, tokens, stages)
		connected += step.joins
		step.participants = connected
		// The steady time: everyone of this level connected, nobody joining.
		before := c.sampleCPU()
		time.Sleep(*flagSettle)
		step.cpu = before.until(c.sampleCPU())
		for _, rb := range f.bots {
			if rb.ended() && !rb.failed.Swap(true) {
				step.failed++
				if step.firstErr == "" {
					step.firstErr = fmt.Sprintf("left after joining: %v", rb.err)
				}
			}
		}
		res.steps = append(res.steps, step)
		busy := step.cpu.cores(step.cpu.machine)
		p95 := percentile(step.subLat, 0.95)
		t.Logf("%s: %d participants: %d failed, join p50 %.0f ms p95 %.0f ms; cores busy: machine %.2f, nodes %.2f, PostgreSQL %.2f, bench %.2f",
			s.name, connected, step.failed, ms(percentile(step.subLat, 0.5)), ms(p95),
			busy, step.cpu.cores(step.cpu.nodes), step.cpu.cores(step.cpu.postgres), step.cpu.cores(step.cpu.bench))
		switch {
		case step.failed > 0:
			res.stop = fmt.Sprintf("joins failed at %d (%d of %d; first: %s)", connected, step.failed, step.joins, step.firstErr)
		case p95 > maxJoinP95:
			res.stop = fmt.Sprintf("join p95 %.0f ms > %v at %d", ms(p95), maxJoinP95, connected)
		default:
			res.sustained = connected
			res.subLat = append(res.subLat, step.subLat...)
			res.pubLat = append(res.pubLat, step.pubLat...)
			if own := step.cpu.cores(step.cpu.machine - step.cpu.other()); own >= saturatedShare*float64(runtime.NumCPU()) {
				res.stop = fmt.Sprintf("CPU saturated at %d (nodes, PostgreSQL and bots %.2f of %d cores)", connected, own, runtime.NumCPU())
			}
		}
		if res.stop != "" {
			break
		}
	}
	if res.stop == "" {
		res.stop = fmt.Sprintf("cap of %d reached", *flagMaxParticipants)
	}
	slices.Sort(res.subLat)
	slices.Sort(res.pubLat)

	// Hold at the top: who still gets video, and what everyone costs.
	frames := func() map[*runningBot]int64 {
		m := map[*runningBot]int64{}
		for _, rb := range f.bots {
			st := rb.b.Stats()
			if rb.publish {
				m[rb] = st.Sent.VideoFrames
				continue
			}
			for _, r := range st.Received {
				m[rb] += r.VideoFrames
			}
		}
		return m
	}
	first := frames()
	before := c.sampleCPU()
	time.Sleep(*flagHold)
	res.hold = before.until(c.sampleCPU())
	last := frames()
	for _, rb := range f.bots {
		if rb.publish {
			res.publishers++
			if last[rb] > first[rb] {
				res.publishing++
			}
			continue
		}
		res.watching++
		if last[rb] > first[rb] {
			res.receiving++
		}
	}
	res.stagesByNode, res.participantsByNode = placement(ctx, t, c, arns)
	return res
}

// rampOnce starts the publishers of the given stages, waits until they
// publish, then starts the stages' subscribers at once and waits for each
// one's first video frame.
func rampOnce(f *fleet, tokens []string, stages []int) rampStep {
	var (
		step rampStep
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	fail := func(rb *runningBot, err error) {
		if rb != nil {
			rb.failed.Store(true)
		}
		mu.Lock()
		step.failed++
		if step.firstErr == "" {
			step.firstErr = err.Error()
		}
		mu.Unlock()
	}
	launch := func(j int, cfg bot.Config, await func(*runningBot) (time.Duration, error), into *[]time.Duration) {
		cfg.Token, cfg.Index = tokens[j], j
		step.joins++
		rb, err := f.start(cfg)
		if err != nil {
			fail(nil, err)
			return
		}
		wg.Go(func() {
			d, err := await(rb)
			if err != nil {
				fail(rb, err)
				return
			}
			mu.Lock()
			*into = append(*into, d)
			mu.Unlock()
		})
	}
	for _, k := range stages {
		launch(k*stageSize, bot.Config{Video: true, Width: videoWidth, Height: videoHeight, FPS: videoFPS}, awaitPublishing, &step.pubLat)
	}
	wg.Wait()
	if step.failed > 0 {
		return step // no video to wait for
	}
	for _, k := range stages {
		for i := 1; i < stageSize; i++ {
			launch(k*stageSize+i, bot.Config{Subscribe: true}, awaitFirstFrame, &step.subLat)
		}
	}
	wg.Wait()
	slices.Sort(step.subLat)
	slices.Sort(step.pubLat)
	return step
}

// placement returns how many of the stages each node hosts, from the
// store, and how many participants each node reports; nil on SQLite.
func placement(ctx context.Context, t *testing.T, c *deployment, arns []string) (stages, participants map[string]int) {
	if !c.setup.postgres {
		return nil, nil
	}
	stages, participants = map[string]int{}, map[string]int{}
	if st, err := clusterStatus(ctx, c.nodes[0]); err != nil {
		t.Logf("cluster status: %v", err)
	} else {
		for _, n := range st.Nodes {
			participants[n.ID] = n.Participants
		}
	}
	db, err := postgres.Open(ctx, c.dsn)
	if err != nil {
		t.Logf("open the store: %v", err)
		return stages, participants
	}
	defer db.Close()
	for _, arn := range arns {
		h, err := db.GetStageHost(ctx, ivsrt.StageARN(arn))
		if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
			continue // never joined: the ramp stopped before it
		}
		if err != nil {
			t.Logf("host of %s: %v", arn, err)
			continue
		}
		stages[h.NodeID]++
	}
	return stages, participants
}
