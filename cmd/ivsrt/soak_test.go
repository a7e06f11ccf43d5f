package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
)

// The soak test runs short by default (about 40 participants on 4 stages
// over 20 s). A longer run:
//
//	go test -race -count=1 -run TestSoak ./cmd/ivsrt/ -soak.duration=5m -soak.participants=600
//
// or IVSRT_SOAK=long (3 minutes, 360 participants, 8 stages; the flags
// still override it). A failing run is replayed with -soak.seed=N, N
// being the seed the test logs (the schedule is replayed, not the exact
// timing of the network).
var (
	soakDuration     = flag.Duration("soak.duration", 0, "how long the soak test's load runs (default 20s, or 3m with IVSRT_SOAK=long)")
	soakParticipants = flag.Int("soak.participants", 0, "how many participants the soak test runs (default 40, or 360 with IVSRT_SOAK=long)")
	soakStages       = flag.Int("soak.stages", 0, "how many stages the soak test spreads its participants over (default 4, or 8 with IVSRT_SOAK=long)")
	soakSeed         = flag.Uint64("soak.seed", 0, "seed of the soak test's schedule (default: random, and logged)")
)

// Bounds of the soak test's waits and slack of its growth checks.
const (
	soakJoinWait      = 30 * time.Second // the joined message, PUBLISHING, PUBLISH_STARTED on record
	soakLeaveWait     = 15 * time.Second // Run returning once told to leave
	soakIdleWait      = 25 * time.Second // every stage without an active session
	soakSettleWait    = 5 * time.Second  // goroutines back near the baseline
	soakGoroutineRoom = 10
	soakHeapRoom      = 20 << 20
	soakMaxPublishers = 10 // per stage at once; the server allows 12
	soakGrace         = sfuRepublishGrace + time.Second
	sfuRepublishGrace = 5 * time.Second // docs/protocol.md, "Reconnecting publishers"
)

// soakConfig is the size of a soak run.
type soakConfig struct {
	duration     time.Duration
	participants int
	stages       int
	seed         uint64
}

func soakSettings() soakConfig {
	cfg := soakConfig{duration: 20 * time.Second, participants: 40, stages: 4}
	if os.Getenv("IVSRT_SOAK") == "long" {
		cfg = soakConfig{duration: 3 * time.Minute, participants: 360, stages: 8}
	}
	if *soakDuration > 0 {
		cfg.duration = *soakDuration
	}
	if *soakParticipants > 0 {
		cfg.participants = *soakParticipants
	}
	if *soakStages > 0 {
		cfg.stages = *soakStages
	}
	cfg.seed = *soakSeed
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	return cfg
}

// TestSoak has many participants join, publish, subscribe, leave, get
// disconnected by the API and come back, at random on a schedule drawn
// from a seed, against one server; then checks that the API's sessions,
// participants and events, and the event stream, tell exactly what the
// load did, and that the idle server holds no more goroutines or memory
// than it did after a warm-up round.
//
// It is not parallel: the goroutine count and heap are the process's.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	cfg := soakSettings()
	t.Logf("soak: %d participants on %d stages over %v, seed %d (replay with -soak.seed=%d)",
		cfg.participants, cfg.stages, cfg.duration, cfg.seed, cfg.seed)

	m, c := startServer(t)
	run := newSoakRun(t, m, cfg.duration+time.Minute)

	// Warm-up: one stage through every kind of action, so that what the
	// server starts once and keeps (media sockets, pools) is running
	// before the baseline is taken.
	warm := run.addStage(c, "soak-warm-up")
	start := time.Now()
	run.run(warmUpPlans(warm))
	run.waitIdle()
	t.Logf("soak: warm-up of %d participants took %v", len(run.ledgers), time.Since(start).Round(time.Millisecond))
	base := run.settleBaseline()

	var stages []*soakStage
	for i := range cfg.stages {
		stages = append(stages, run.addStage(c, fmt.Sprintf("soak-%d", i)))
	}
	plans := soakSchedule(cfg, stages)
	start = time.Now()
	run.run(plans)
	loadTook := time.Since(start)
	run.waitIdle()
	t.Logf("soak: load ran %v, the server was idle %v later", loadTook.Round(time.Millisecond),
		(time.Since(start) - loadTook).Round(time.Millisecond))

	run.checkGrowth(base)
	run.logActions()
	run.verify(c)
}

// soakRole is what a participant does while in the stage.
type soakRole int

const (
	soakPublisher  soakRole = iota // PUBLISH+SUBSCRIBE token, publishes video
	soakPubSub                     // publishes and subscribes to the others
	soakSubscriber                 // SUBSCRIBE-only token, subscribes; asks to publish too, which it may not
	soakWatcher                    // only the events WebSocket
)

func (r soakRole) String() string {
	return [...]string{"publisher", "publisher+subscriber", "subscriber", "watcher"}[r]
}

// soakPlan is what one participant will do: one token, visits one after
// the other, and perhaps an attempt to come back once disconnected.
type soakPlan struct {
	index    int
	stage    *soakStage
	user     string
	role     soakRole
	canPub   bool
	start    time.Duration
	visits   []soakVisitPlan
	retry    bool          // try the revoked token again after the last visit
	retryGap time.Duration // before that
}

func (p *soakPlan) video() bool     { return p.role != soakWatcher }
func (p *soakPlan) subscribe() bool { return p.role == soakPubSub || p.role == soakSubscriber }
func (p *soakPlan) publishes() bool { return p.canPub && p.video() }

// soakVisitPlan is one stay in the stage.
type soakVisitPlan struct {
	gap   time.Duration // after the previous visit
	stay  time.Duration
	byAPI bool // ended with DisconnectParticipant, not by leaving
}

// soakSchedule draws the plans of cfg.participants participants from
// cfg.seed. Everyone is done within about cfg.duration.
func soakSchedule(cfg soakConfig, stages []*soakStage) []*soakPlan {
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))
	maxStay := min(6*time.Second, cfg.duration/8)
	minStay := min(1500*time.Millisecond, maxStay/2)
	maxGap := 1500 * time.Millisecond
	// Joining and publishing take a moment, leaving another.
	lifetime := 2*maxStay + maxGap + 3*time.Second
	window := max(cfg.duration-lifetime, cfg.duration/4)
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }

	var plans []*soakPlan
	for i := range cfg.participants {
		p := &soakPlan{
			index: i,
			stage: stages[rng.IntN(len(stages))],
			user:  fmt.Sprintf("soak-user-%d", i),
			start: time.Duration(rng.Int64N(int64(window))),
		}
		switch n := rng.IntN(100); {
		case n < 30:
			p.role, p.canPub = soakPublisher, true
		case n < 55:
			p.role, p.canPub = soakPubSub, true
		case n < 85:
			p.role = soakSubscriber
		default:
			p.role, p.canPub = soakWatcher, rng.IntN(2) == 0
		}
		v := soakVisitPlan{stay: between(minStay, maxStay), byAPI: rng.IntN(100) < 20}
		p.visits = append(p.visits, v)
		if !v.byAPI && rng.IntN(100) < 30 {
			p.visits = append(p.visits, soakVisitPlan{
				gap:   between(100*time.Millisecond, maxGap),
				stay:  between(minStay, maxStay),
				byAPI: rng.IntN(100) < 15,
			})
		}
		if p.visits[len(p.visits)-1].byAPI && rng.IntN(2) == 0 {
			p.retry, p.retryGap = true, between(50*time.Millisecond, 500*time.Millisecond)
		}
		plans = append(plans, p)
	}
	return plans
}

// warmUpPlans go through every kind of action on one stage: publishing,
// subscribing, leaving and coming back, disconnection by the API and a
// refused return, in about three seconds.
func warmUpPlans(st *soakStage) []*soakPlan {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	return []*soakPlan{
		{stage: st, user: "warm-watcher", role: soakWatcher, start: 0,
			visits: []soakVisitPlan{{stay: ms(3000)}}},
		{stage: st, user: "warm-pubsub", role: soakPubSub, canPub: true, start: ms(100),
			visits: []soakVisitPlan{{stay: ms(1000)}, {gap: ms(100), stay: ms(1000)}}},
		{stage: st, user: "warm-publisher", role: soakPublisher, canPub: true, start: ms(200),
			visits: []soakVisitPlan{{stay: ms(1200), byAPI: true}}},
		{stage: st, user: "warm-subscriber", role: soakSubscriber, start: ms(300),
			visits: []soakVisitPlan{{stay: ms(1000), byAPI: true}}, retry: true, retryGap: ms(100)},
	}
}

// soakStage is one stage of the run and who the load knows to be in it.
type soakStage struct {
	arn   string
	slots chan struct{} // publishers at once

	// gate orders refused returns against departures: a refused return
	// holds it shared while it checks that someone is in the stage and
	// tries, a departure holds it to leave present; so a refused return
	// always happens during an active session, and its JOIN_ERROR is on
	// record in that session.
	gate    sync.RWMutex
	mu      sync.Mutex
	present map[string]string // participant id → session, joined and not leaving
}

// soakRun is the load generator and its ledger.
type soakRun struct {
	t    *testing.T
	m    *Main
	ctx  context.Context
	api  *ivsrealtime.Client // the load's own: the test client keeps every exchange
	http *http.Client        // the bots'
	tr   []*http.Transport

	stages  []*soakStage
	mu      sync.Mutex
	ledgers []*soakLedger
	timings map[string]*soakTiming
	strays  int // JOIN_ERRORs of WHEP requests under way at a disconnection
}

// soakTiming sums up how long one kind of step took.
type soakTiming struct {
	n          int
	total, max time.Duration
}

// took notes that a step of kind what took d.
func (r *soakRun) took(what string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timings == nil {
		r.timings = map[string]*soakTiming{}
	}
	tm := r.timings[what]
	if tm == nil {
		tm = &soakTiming{}
		r.timings[what] = tm
	}
	tm.n++
	tm.total += d
	tm.max = max(tm.max, d)
}

func newSoakRun(t *testing.T, m *Main, budget time.Duration) *soakRun {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	t.Cleanup(cancel)
	apiTr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
	botTr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
	t.Cleanup(apiTr.CloseIdleConnections)
	t.Cleanup(botTr.CloseIdleConnections)
	api := ivsrealtime.NewFromConfig(aws.Config{
		Region:           testRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(testAccessKeyID, testSecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: apiTr, Timeout: 30 * time.Second},
	}, func(o *ivsrealtime.Options) { o.BaseEndpoint = aws.String("http://" + m.Addr()) })
	return &soakRun{t: t, m: m, ctx: ctx, api: api, tr: []*http.Transport{apiTr, botTr},
		http: &http.Client{Transport: botTr, Timeout: 30 * time.Second}}
}

func (r *soakRun) addStage(c *ivsrealtime.Client, name string) *soakStage {
	st := &soakStage{arn: createStage(r.t, c, name), slots: make(chan struct{}, soakMaxPublishers),
		present: map[string]string{}}
	r.stages = append(r.stages, st)
	return st
}

// soakLedger is what one participant did, as the load saw it.
type soakLedger struct {
	plan  *soakPlan
	id    string
	steps []soakStep
	errs  []string
}

// soakStep is one visit, or one refused return.
type soakStep struct {
	session      string
	refused      bool
	published    bool
	byAPI        bool
	joined, left time.Time
}

func (s soakStep) String() string {
	if s.refused {
		return fmt.Sprintf("refused in %s at %s", s.session, s.joined.Format("15:04:05.000"))
	}
	how := "left"
	if s.byAPI {
		how = "disconnected"
	}
	return fmt.Sprintf("in %s from %s to %s (published %v, %s)", s.session,
		s.joined.Format("15:04:05.000"), s.left.Format("15:04:05.000"), s.published, how)
}

func (l *soakLedger) fail(format string, args ...any) {
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

// run carries out plans, each participant on its own goroutine, and
// returns once every one is done.
func (r *soakRun) run(plans []*soakPlan) {
	begin := time.Now()
	var wg sync.WaitGroup
	for _, p := range plans {
		l := &soakLedger{plan: p}
		r.mu.Lock()
		r.ledgers = append(r.ledgers, l)
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.participant(l, begin)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-r.ctx.Done():
		r.t.Fatalf("soak: participants still running when the test's time ran out")
	}
	for _, l := range r.ledgers {
		for _, e := range l.errs {
			r.t.Errorf("participant %d %s (%s): %s", l.plan.index, l.id, l.plan.user, e)
		}
	}
}

// sleep waits d unless the run's time is out.
func (r *soakRun) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.ctx.Done():
		return false
	}
}

// participant carries out one plan.
func (r *soakRun) participant(l *soakLedger, begin time.Time) {
	p, st := l.plan, l.plan.stage
	if !r.sleep(time.Until(begin.Add(p.start))) {
		return
	}
	caps := []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}
	if p.canPub {
		caps = append(caps, types.ParticipantTokenCapabilityPublish)
	}
	out, err := r.api.CreateParticipantToken(r.ctx, &ivsrealtime.CreateParticipantTokenInput{
		StageArn: aws.String(st.arn), UserId: aws.String(p.user), Capabilities: caps,
		Attributes: map[string]string{"role": p.role.String()},
	})
	if err != nil {
		l.fail("CreateParticipantToken: %v", err)
		return
	}
	token := aws.ToString(out.ParticipantToken.Token)
	l.id = aws.ToString(out.ParticipantToken.ParticipantId)

	for i, v := range p.visits {
		if i > 0 && !r.sleep(v.gap) {
			return
		}
		if !r.visit(l, token, v) {
			return
		}
	}
	if p.retry {
		if !r.sleep(p.retryGap) {
			return
		}
		r.refusedReturn(l, token)
	}
}

// visit joins, publishes as planned, stays, and leaves or is
// disconnected. It reports whether all went as planned. (A plan has
// nothing after a disconnection but a refused return.)
func (r *soakRun) visit(l *soakLedger, token string, v soakVisitPlan) bool {
	p, st := l.plan, l.plan.stage
	if p.publishes() {
		select {
		case st.slots <- struct{}{}:
			defer func() { <-st.slots }()
		case <-r.ctx.Done():
			return false
		}
	}
	b, err := bot.New(bot.Config{Token: token, Index: p.index, Video: p.video(), Subscribe: p.subscribe(),
		Width: 160, Height: 96, FPS: 5, HTTPClient: r.http})
	if err != nil {
		l.fail("bot: %v", err)
		return false
	}
	bctx, cancel := context.WithCancel(r.ctx)
	defer cancel() // a disconnected bot's media goroutines end with its context
	done := make(chan error, 1)
	go func() { done <- b.Run(bctx) }()
	finish := func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(soakLeaveWait):
			return fmt.Errorf("still running %v after being told to leave", soakLeaveWait)
		}
	}

	began := time.Now()
	s, ok := waitBot(b, done, func(s bot.Stats) bool { return s.State != bot.StateJoining })
	r.took("join", time.Since(began))
	if !ok || s.State != bot.StateJoined && s.State != bot.StatePublishing {
		cancel()
		l.fail("join: state %s %s", s.State, s.Error)
		finish()
		return false
	}
	step := soakStep{session: s.SessionID, joined: time.Now(), byAPI: v.byAPI}
	st.mu.Lock()
	st.present[l.id] = s.SessionID
	st.mu.Unlock()
	leave := func() {
		st.gate.Lock()
		st.mu.Lock()
		delete(st.present, l.id)
		st.mu.Unlock()
		if v.byAPI {
			if _, err := r.api.DisconnectParticipant(r.ctx, &ivsrealtime.DisconnectParticipantInput{
				StageArn: aws.String(st.arn), ParticipantId: aws.String(l.id), Reason: aws.String("soak")}); err != nil {
				l.fail("DisconnectParticipant: %v", err)
			}
		}
		st.gate.Unlock()
	}
	// abandon ends a visit that went wrong, keeping what it did.
	abandon := func() bool {
		leave()
		cancel()
		finish()
		step.left = time.Now()
		l.steps = append(l.steps, step)
		return false
	}

	stay := v.stay
	if p.publishes() {
		s, ok := waitBot(b, done, func(s bot.Stats) bool { return s.State == bot.StatePublishing })
		if !ok {
			l.fail("publish: state %s %s after %v", s.State, s.Error, time.Since(step.joined).Round(time.Millisecond))
			return abandon()
		}
		step.published = true
		// The bot is PUBLISHING once its side of the connection is up; the
		// server records PUBLISH_STARTED once its side is, which can be
		// later. Leaving in between is a publication that never started,
		// as far as the server can tell: stay until it is on record.
		if !r.awaitPublished(l, step) {
			return abandon()
		}
		r.took("publish", time.Since(step.joined))
		stay = max(stay-time.Since(step.joined), 0)
	}
	select {
	case err := <-done:
		l.fail("ended by itself %v into its stay: %v", time.Since(step.joined).Round(time.Millisecond), err)
		leave()
		step.left = time.Now()
		l.steps = append(l.steps, step)
		return false
	case <-time.After(stay):
	case <-r.ctx.Done():
	}

	leaving := time.Now()
	defer func() { r.took("leave", time.Since(leaving)) }()
	leave()
	if v.byAPI {
		err := finish()
		if err == nil || !strings.Contains(err.Error(), "DISCONNECTED") {
			l.fail("disconnected by the API: Run returned %v, want the server's DISCONNECTED", err)
		}
		cancel()
	} else {
		cancel()
		if err := finish(); err != nil {
			l.fail("leave: %v", err)
		}
	}
	step.left = time.Now()
	l.steps = append(l.steps, step)
	r.awaitDeparture(l, step)
	return true
}

// awaitPublished waits for the server to record that a visit's
// publication started: one PUBLISH_STARTED in the session for each visit
// of the participant there that published, this one included.
func (r *soakRun) awaitPublished(l *soakLedger, step soakStep) bool {
	want := 1
	for _, s := range l.steps {
		if s.session == step.session && s.published {
			want++
		}
	}
	deadline := time.Now().Add(soakJoinWait)
	for {
		started := 0
		p := ivsrealtime.NewListParticipantEventsPaginator(r.api, &ivsrealtime.ListParticipantEventsInput{
			StageArn: aws.String(l.plan.stage.arn), SessionId: aws.String(step.session),
			ParticipantId: aws.String(l.id), MaxResults: aws.Int32(100)})
		for p.HasMorePages() {
			page, err := p.NextPage(r.ctx)
			if err != nil {
				l.fail("ListParticipantEvents: %v", err)
				return false
			}
			for _, e := range page.Events {
				if e.Name == types.EventNamePublishStarted {
					started++
				}
			}
		}
		if started >= want {
			return true
		}
		if time.Now().After(deadline) {
			l.fail("PUBLISHING, but %d PUBLISH_STARTED in session %s %v later, want %d",
				started, step.session, soakJoinWait, want)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitDeparture waits for the server to record the departure of a
// visit, so that whatever the participant does next is a new visit. A
// bot that leaves does not wait for the WHEP requests it has under way;
// the server keeps the participant in the stage until it has dealt with
// them. How long that takes is noted as the departure lag.
func (r *soakRun) awaitDeparture(l *soakLedger, step soakStep) {
	deadline := time.Now().Add(soakLeaveWait)
	for {
		out, err := r.api.GetParticipant(r.ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(l.plan.stage.arn),
			SessionId: aws.String(step.session), ParticipantId: aws.String(l.id)})
		if err != nil {
			l.fail("GetParticipant: %v", err)
			return
		}
		if out.Participant.State == types.ParticipantStateDisconnected {
			r.took("departure lag", time.Since(step.left))
			return
		}
		if time.Now().After(deadline) {
			l.fail("still %s in session %s %v after it %s", out.Participant.State, step.session, soakLeaveWait,
				map[bool]string{true: "was disconnected", false: "left"}[step.byAPI])
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refusedReturn tries the revoked token again while someone else is in
// the stage: the join is refused, and JOIN_ERROR filed in their session.
func (r *soakRun) refusedReturn(l *soakLedger, token string) {
	st := l.plan.stage
	st.gate.RLock()
	defer st.gate.RUnlock()
	st.mu.Lock()
	session := ""
	for _, s := range st.present {
		session = s
		break
	}
	st.mu.Unlock()
	if session == "" {
		return // nobody to file it under: the server drops it, and so does the ledger
	}
	b, err := bot.New(bot.Config{Token: token, Index: l.plan.index, HTTPClient: r.http})
	if err != nil {
		l.fail("bot: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, soakJoinWait)
	defer cancel()
	at := time.Now()
	err = b.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "TOKEN_REVOKED") {
		l.fail("return with the revoked token: Run returned %v, want TOKEN_REVOKED", err)
		return
	}
	l.steps = append(l.steps, soakStep{session: session, refused: true, joined: at, left: at})
}

// waitBot polls the bot's stats until ok holds, the bot stops, or
// soakJoinWait passes.
func waitBot(b *bot.Bot, done chan error, ok func(bot.Stats) bool) (bot.Stats, bool) {
	deadline := time.Now().Add(soakJoinWait)
	for {
		s := b.Stats()
		if ok(s) {
			return s, true
		}
		if s.State == bot.StateFailed || s.State == bot.StateLeft || time.Now().After(deadline) {
			return s, false
		}
		select {
		case err := <-done:
			done <- err // for whoever waits for Run next
			s := b.Stats()
			return s, ok(s)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitIdle waits for every stage to be without an active session: every
// departure recorded.
func (r *soakRun) waitIdle() {
	r.t.Helper()
	deadline := time.Now().Add(soakIdleWait)
	for _, st := range r.stages {
		for {
			out, err := r.api.GetStage(r.ctx, &ivsrealtime.GetStageInput{Arn: aws.String(st.arn)})
			if err != nil {
				r.t.Fatalf("GetStage: %v", err)
			}
			active := aws.ToString(out.Stage.ActiveSessionId)
			if active == "" {
				break
			}
			if time.Now().After(deadline) {
				r.t.Errorf("stage %s: session %s still active %v after the load ended", st.arn, active, soakIdleWait)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// soakUsage is the process's goroutines and live heap at one moment.
type soakUsage struct {
	goroutines int
	heap       uint64
	stacks     map[string]int // goroutines by where they were started
}

func (r *soakRun) usage() soakUsage {
	for _, tr := range r.tr {
		tr.CloseIdleConnections()
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return soakUsage{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, stacks: goroutinesByOrigin()}
}

// settleBaseline waits for the goroutine count to hold still and returns
// the usage then.
func (r *soakRun) settleBaseline() soakUsage {
	u := r.usage()
	deadline := time.Now().Add(soakSettleWait)
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		next := r.usage()
		if next.goroutines == u.goroutines {
			break
		}
		u = next
	}
	r.t.Logf("soak: baseline after the warm-up: %d goroutines, heap %.1f MB", u.goroutines, float64(u.heap)/(1<<20))
	return u
}

// checkGrowth checks that the idle server came back near base.
func (r *soakRun) checkGrowth(base soakUsage) {
	r.t.Helper()
	start := time.Now()
	u := r.usage()
	for u.goroutines > base.goroutines+soakGoroutineRoom && time.Since(start) < soakSettleWait {
		time.Sleep(100 * time.Millisecond)
		u = r.usage()
	}
	r.t.Logf("soak: after the load: %d goroutines (baseline %d, settled in %v), heap %.1f MB (baseline %.1f MB)",
		u.goroutines, base.goroutines, time.Since(start).Round(time.Millisecond),
		float64(u.heap)/(1<<20), float64(base.heap)/(1<<20))
	if u.goroutines > base.goroutines+soakGoroutineRoom {
		r.t.Errorf("goroutines: %d after the load, %d before (room %d); more than before, by origin:\n%s",
			u.goroutines, base.goroutines, soakGoroutineRoom, stackGrowth(base.stacks, u.stacks))
	}
	if u.heap > base.heap+soakHeapRoom && float64(u.heap) > 1.5*float64(base.heap) {
		r.t.Errorf("heap: %.1f MB after the load, %.1f MB before", float64(u.heap)/(1<<20), float64(base.heap)/(1<<20))
	}
}

// goroutinesByOrigin counts goroutines by the function that started them
// and the one they are in.
func goroutinesByOrigin() map[string]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		if len(lines) < 2 {
			continue
		}
		top := lines[1]
		origin := ""
		for i, line := range lines {
			if strings.HasPrefix(line, "created by ") {
				origin = strings.TrimPrefix(line, "created by ")
				if i+1 < len(lines) {
					origin += " " + strings.TrimSpace(lines[i+1])
				}
			}
		}
		out[top+" ← "+origin]++
	}
	return out
}

func stackGrowth(before, after map[string]int) string {
	var lines []string
	for k, n := range after {
		if d := n - before[k]; d > 0 {
			lines = append(lines, fmt.Sprintf("  +%d  %s", d, k))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// logActions logs how much the load did.
func (r *soakRun) logActions() {
	var participants, visits, published, byAPI, rejoins, refused, subscribing int
	for _, l := range r.ledgers {
		if l.id == "" {
			continue
		}
		participants++
		if l.plan.subscribe() {
			subscribing++
		}
		n := 0
		for _, s := range l.steps {
			switch {
			case s.refused:
				refused++
			default:
				visits++
				if n > 0 {
					rejoins++
				}
				n++
				if s.published {
					published++
				}
				if s.byAPI {
					byAPI++
				}
			}
		}
	}
	r.t.Logf("soak: %d participants (%d subscribing), %d joins (%d rejoins), %d publishing, %d disconnected by the API, %d refused returns",
		participants, subscribing, visits, rejoins, published, byAPI, refused)
	for _, what := range []string{"join", "publish", "leave", "departure lag"} {
		if tm := r.timings[what]; tm != nil {
			r.t.Logf("soak: %s took %v on average, %v at most (%d times)", what,
				(tm.total / time.Duration(tm.n)).Round(time.Millisecond), tm.max.Round(time.Millisecond), tm.n)
		}
	}
}

// soakEvent is one participant event, from the API or the event stream.
type soakEvent struct {
	who, name, remote, code string
	time                    time.Time
}

func (e soakEvent) String() string {
	s := e.name
	if e.remote != "" {
		s += "→" + e.remote
	}
	if e.code != "" {
		s += "(" + e.code + ")"
	}
	return s + "@" + e.time.Format("15:04:05.000")
}

// soakStreamNames are the participant events' names in the event stream.
var soakStreamNames = map[string]string{
	ivsrt.StreamParticipantJoined:         string(types.EventNameJoined),
	ivsrt.StreamParticipantLeft:           string(types.EventNameLeft),
	ivsrt.StreamParticipantPublished:      string(types.EventNamePublishStarted),
	ivsrt.StreamParticipantUnpublished:    string(types.EventNamePublishStopped),
	ivsrt.StreamParticipantPublishError:   string(types.EventNamePublishError),
	ivsrt.StreamParticipantSubscribed:     string(types.EventNameSubscribeStarted),
	ivsrt.StreamParticipantUnsubscribed:   string(types.EventNameSubscribeStopped),
	ivsrt.StreamParticipantSubscribeError: string(types.EventNameSubscribeError),
	ivsrt.StreamParticipantJoinError:      string(types.EventNameJoinError),
}

// soakPair is one participant in one session.
type soakPair struct{ session, participant string }

// soakStream is what the event stream tells of one stage.
type soakStream struct {
	started, ended map[string]int
	sessions       map[string][]soakEvent // participant events in stream order
	byPair         map[soakPair][]soakEvent
}

// readStream reads the whole event stream, by stage.
func (r *soakRun) readStream() map[string]*soakStream {
	out := map[string]*soakStream{}
	for _, st := range r.stages {
		out[st.arn] = &soakStream{started: map[string]int{}, ended: map[string]int{},
			sessions: map[string][]soakEvent{}, byPair: map[soakPair][]soakEvent{}}
	}
	var after int64
	for {
		evs, err := r.m.DB.ReadEvents(r.ctx, after, 1000)
		if err != nil {
			r.t.Fatalf("ReadEvents: %v", err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, ev := range evs {
			after = ev.Seq
			s := out[string(ev.StageARN)]
			if s == nil {
				continue
			}
			str := func(k string) string { v, _ := ev.Detail[k].(string); return v }
			session := str("session_id")
			switch name := ev.EventName(); name {
			case ivsrt.StreamSessionStarted:
				s.started[session]++
			case ivsrt.StreamSessionEnded:
				s.ended[session]++
			default:
				api, ok := soakStreamNames[name]
				if !ok {
					continue // stage events
				}
				pair := soakPair{session, str("participant_id")}
				e := soakEvent{who: pair.participant, name: api, remote: str("remote_participant_id"), code: str("error_code"), time: ev.Time}
				s.byPair[pair] = append(s.byPair[pair], e)
				if s.started[session] == 0 {
					r.t.Errorf("stream: %s of %s in session %s before its Session Started", name, pair.participant, session)
				}
				if s.ended[session] > 0 {
					r.t.Errorf("stream: %s of %s in session %s after its Session Ended", name, pair.participant, session)
				}
				s.sessions[session] = append(s.sessions[session], e)
			}
		}
	}
}

// verify compares what the API and the event stream say with the ledger.
func (r *soakRun) verify(c *ivsrealtime.Client) {
	t := r.t
	ctx := r.ctx
	streams := r.readStream()

	// What the ledger expects, by stage and session.
	type expectation struct {
		ledger *soakLedger
		steps  []soakStep
	}
	want := map[string]map[soakPair]*expectation{}
	for _, l := range r.ledgers {
		if l.id == "" {
			continue
		}
		arn := l.plan.stage.arn
		if want[arn] == nil {
			want[arn] = map[soakPair]*expectation{}
		}
		for _, s := range l.steps {
			k := soakPair{s.session, l.id}
			if want[arn][k] == nil {
				want[arn][k] = &expectation{ledger: l}
			}
			want[arn][k].steps = append(want[arn][k].steps, s)
		}
	}

	byID := map[string]*soakLedger{}
	for _, l := range r.ledgers {
		byID[l.id] = l
	}
	var totalSessions, totalEvents int
	for _, st := range r.stages {
		stream := streams[st.arn]
		out, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(st.arn)})
		if err != nil {
			t.Fatalf("GetStage: %v", err)
		}
		if a := aws.ToString(out.Stage.ActiveSessionId); a != "" {
			t.Errorf("stage %s: activeSessionId %s, want none", st.arn, a)
		}

		sessions := map[string]types.StageSessionSummary{}
		sp := ivsrealtime.NewListStageSessionsPaginator(c, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(st.arn), MaxResults: aws.Int32(100)})
		for sp.HasMorePages() {
			page, err := sp.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListStageSessions: %v", err)
			}
			for _, s := range page.StageSessions {
				id := aws.ToString(s.SessionId)
				if _, dup := sessions[id]; dup {
					t.Errorf("stage %s: session %s listed twice", st.arn, id)
				}
				sessions[id] = s
				if s.EndTime == nil {
					t.Errorf("stage %s: session %s has no endTime", st.arn, id)
				} else if s.StartTime == nil || s.EndTime.Before(*s.StartTime) {
					t.Errorf("stage %s: session %s from %v to %v", st.arn, id, s.StartTime, s.EndTime)
				}
			}
		}
		totalSessions += len(sessions)
		for id := range sessions {
			if stream.started[id] != 1 || stream.ended[id] != 1 {
				t.Errorf("stage %s: session %s has %d Session Started and %d Session Ended in the stream, want 1 each",
					st.arn, id, stream.started[id], stream.ended[id])
			}
		}
		for id := range stream.started {
			if _, ok := sessions[id]; !ok {
				t.Errorf("stage %s: the stream started session %s, which the API does not list", st.arn, id)
			}
		}

		pairs := map[soakPair]bool{}
		for k := range want[st.arn] {
			pairs[k] = true
			if _, ok := sessions[k.session]; !ok {
				t.Errorf("stage %s: participant %s joined session %s, which the API does not list", st.arn, k.participant, k.session)
			}
		}
		for k := range stream.byPair {
			pairs[k] = true
		}

		// ListParticipants: everyone who joined the session, once, gone.
		for id := range sessions {
			listed := map[string]bool{}
			pp := ivsrealtime.NewListParticipantsPaginator(c, &ivsrealtime.ListParticipantsInput{
				StageArn: aws.String(st.arn), SessionId: aws.String(id), MaxResults: aws.Int32(100)})
			for pp.HasMorePages() {
				page, err := pp.NextPage(ctx)
				if err != nil {
					t.Fatalf("ListParticipants: %v", err)
				}
				for _, p := range page.Participants {
					pid := aws.ToString(p.ParticipantId)
					k := soakPair{id, pid}
					pairs[k] = true
					if listed[pid] {
						t.Errorf("session %s: participant %s listed twice", id, pid)
					}
					listed[pid] = true
					if p.State != types.ParticipantStateDisconnected {
						t.Errorf("session %s: participant %s is %s, want DISCONNECTED", id, pid, p.State)
					}
					w := want[st.arn][k]
					if w == nil || !slices.ContainsFunc(w.steps, func(s soakStep) bool { return !s.refused }) {
						t.Errorf("session %s: participant %s (%s) listed, but the load did not join it in this session", id, pid, aws.ToString(p.UserId))
						continue
					}
					published := slices.ContainsFunc(w.steps, func(s soakStep) bool { return s.published })
					if p.Published != published || aws.ToString(p.UserId) != w.ledger.plan.user {
						t.Errorf("session %s: participant %s: published %v, user %q; want %v, %q",
							id, pid, p.Published, aws.ToString(p.UserId), published, w.ledger.plan.user)
					}
				}
			}
			for k, w := range want[st.arn] {
				if k.session == id && !listed[k.participant] && slices.ContainsFunc(w.steps, func(s soakStep) bool { return !s.refused }) {
					t.Errorf("session %s: participant %s (%s) joined but is not listed", id, k.participant, w.ledger.plan.user)
				}
			}
		}

		// ListParticipantEvents of every participant in every session.
		for k := range pairs {
			got := r.participantEvents(c, st.arn, k)
			totalEvents += len(got)
			if s, ok := sessions[k.session]; ok && s.StartTime != nil && s.EndTime != nil {
				for _, e := range got {
					if e.time.Before(s.StartTime.Truncate(time.Millisecond)) || e.time.After(*s.EndTime) {
						t.Errorf("session %s: %s of %s at %v, outside the session (%v to %v)", k.session, e, k.participant, e.time, s.StartTime, s.EndTime)
					}
				}
			}
			if !slices.EqualFunc(got, stream.byPair[k], func(a, b soakEvent) bool {
				return a.name == b.name && a.remote == b.remote && a.code == b.code
			}) {
				t.Errorf("session %s, participant %s: the API lists %v, the event stream %v", k.session, k.participant, got, stream.byPair[k])
			}
			for i := 1; i < len(got); i++ {
				if got[i].time.Before(got[i-1].time) {
					t.Errorf("session %s, participant %s: events out of time order: %v", k.session, k.participant, got)
					break
				}
			}
			l, steps := byID[k.participant], []soakStep(nil)
			if w := want[st.arn][k]; w != nil {
				steps = w.steps
			}
			if l == nil {
				t.Errorf("session %s, participant %s: events %v of a participant the load does not know", k.session, k.participant, got)
				continue
			}
			r.compare(k, l, steps, got)
		}

		r.checkSubscriptions(stream)
	}
	t.Logf("soak: %d sessions on %d stages, %d participant events checked", totalSessions, len(r.stages), totalEvents)
	if r.strays > 0 {
		t.Logf("soak: %d JOIN_ERROR from subscriptions a disconnected bot had under way", r.strays)
	}
}

// participantEvents lists a participant's events in a session.
func (r *soakRun) participantEvents(c *ivsrealtime.Client, arn string, k soakPair) []soakEvent {
	var out []soakEvent
	p := ivsrealtime.NewListParticipantEventsPaginator(c, &ivsrealtime.ListParticipantEventsInput{
		StageArn: aws.String(arn), SessionId: aws.String(k.session), ParticipantId: aws.String(k.participant), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(r.ctx)
		if err != nil {
			r.t.Fatalf("ListParticipantEvents: %v", err)
		}
		for _, e := range page.Events {
			if aws.ToString(e.ParticipantId) != k.participant {
				r.t.Errorf("ListParticipantEvents of %s: an event of %s", k.participant, aws.ToString(e.ParticipantId))
			}
			out = append(out, soakEvent{name: string(e.Name), remote: aws.ToString(e.RemoteParticipantId),
				code: string(e.ErrorCode), time: aws.ToTime(e.EventTime)})
		}
	}
	return out
}

// compare checks one participant's events in one session against what
// it did there: for each visit JOINED, PUBLISH_STARTED and
// PUBLISH_STOPPED if it published, LEFT; JOIN_ERROR for each refused
// return; and subscriptions that open and close within its visits.
//
// A bot disconnected by the API may have WHEP requests under way, which
// reach the server after its token was revoked: each is a JOIN_ERROR
// (docs/protocol.md), in whatever session is active then. The ledger
// cannot tell how many there were; it takes JOIN_ERRORs beyond the
// refused returns from a subscribing participant once it was
// disconnected, and counts them.
func (r *soakRun) compare(k soakPair, l *soakLedger, steps []soakStep, got []soakEvent) {
	t := r.t
	var want, have []string
	wantRefused, haveRefused := 0, 0
	for _, s := range steps {
		switch {
		case s.refused:
			wantRefused++
		case s.published:
			want = append(want, string(types.EventNameJoined), string(types.EventNamePublishStarted),
				string(types.EventNamePublishStopped), string(types.EventNameLeft))
		default:
			want = append(want, string(types.EventNameJoined), string(types.EventNameLeft))
		}
	}
	lastLeft := -1
	for i, e := range got {
		switch {
		case e.name == string(types.EventNameJoinError):
		case strings.HasPrefix(e.name, "SUBSCRIBE_"):
		default:
			have = append(have, e.name)
			if e.name == string(types.EventNameLeft) {
				lastLeft = i
			}
		}
	}
	report := func(format string, args ...any) {
		t.Errorf("session %s, participant %s (%s, plan %d): %s\n  events: %v\n  ledger: %v\n  all its steps: %v",
			k.session, k.participant, l.plan.role, l.plan.index, fmt.Sprintf(format, args...), got, steps, l.steps)
	}
	if !slices.Equal(have, want) {
		report("events %v (JOIN_ERROR aside), want %v", have, want)
	}
	revoked := slices.ContainsFunc(l.steps, func(s soakStep) bool { return s.byAPI })
	for i, e := range got {
		if e.name != string(types.EventNameJoinError) {
			continue
		}
		haveRefused++
		if !revoked || i < lastLeft {
			report("%s, but its token was not revoked yet", e)
		}
	}
	switch {
	case haveRefused < wantRefused:
		report("%d JOIN_ERROR, want %d (refused returns)", haveRefused, wantRefused)
	case haveRefused > wantRefused && l.plan.subscribe():
		r.strays += haveRefused - wantRefused
	case haveRefused > wantRefused:
		report("%d JOIN_ERROR, want %d (refused returns)", haveRefused, wantRefused)
	}

	in := false
	open := map[string]bool{}
	for _, e := range got {
		switch types.EventName(e.name) {
		case types.EventNameJoined:
			in = true
		case types.EventNameLeft:
			if len(open) > 0 {
				report("LEFT with subscriptions open to %v", open)
			}
			in, open = false, map[string]bool{}
		case types.EventNameSubscribeStarted, types.EventNameSubscribeStopped, types.EventNameSubscribeError:
			if !l.plan.subscribe() {
				report("%s, but it does not subscribe", e)
			}
			if !in {
				report("%s outside a visit", e)
			}
			switch types.EventName(e.name) {
			case types.EventNameSubscribeStarted:
				if open[e.remote] {
					report("%s while subscribed to it", e)
				}
				open[e.remote] = true
			case types.EventNameSubscribeStopped:
				if !open[e.remote] {
					report("%s without a SUBSCRIBE_STARTED", e)
				}
				delete(open, e.remote)
			default:
				// A publisher the bot saw can stop before its WHEP request
				// arrives; nothing else should refuse it.
				if e.code != ivsrt.ErrPublisherNotFound {
					report("%s, want only %s", e, ivsrt.ErrPublisherNotFound)
				}
			}
		case types.EventNamePublishStarted, types.EventNamePublishStopped:
			if !in {
				report("%s outside a visit", e)
			}
		}
	}
}

// checkSubscriptions checks, in the order the server recorded them, that
// every subscription in a session is to a participant of that session
// that publishes then, or stopped within the republish grace.
func (r *soakRun) checkSubscriptions(stream *soakStream) {
	for session, evs := range stream.sessions {
		published := map[string]bool{}
		live := map[string]bool{}
		stopped := map[string]time.Time{}
		for _, e := range evs {
			who := e.who
			switch types.EventName(e.name) {
			case types.EventNamePublishStarted:
				published[who], live[who] = true, true
			case types.EventNamePublishStopped:
				live[who], stopped[who] = false, e.time
			case types.EventNameSubscribeStarted:
				switch {
				case e.remote == who:
					r.t.Errorf("session %s: %s subscribed to itself", session, who)
				case !published[e.remote]:
					r.t.Errorf("session %s: %s subscribed to %s, which has not published in this session", session, who, e.remote)
				case !live[e.remote] && e.time.Sub(stopped[e.remote]) > soakGrace:
					r.t.Errorf("session %s: %s subscribed to %s at %s, %v after it stopped publishing", session, who, e.remote,
						e.time.Format("15:04:05.000"), e.time.Sub(stopped[e.remote]))
				}
			}
		}
	}
}
