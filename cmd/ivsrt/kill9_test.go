//go:build unix

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/events/eventstest"
	"github.com/ivsrt/ivsrt/store/sqlite"
)

// TestKill9UnderLoad kills the server (SIGKILL) while API clients write,
// participants publish and subscribe on three stages and the webhook
// delivers the event stream, then starts it again on the same data folder:
// every acknowledged write is there; the sessions that were open are
// closed, with everyone in them LEFT; the webhook gets those departures and
// the ends of the sessions, every event of the stream in order per stage,
// and nothing written after the restart twice; the participants notice the
// kill, and a new one starts a new session.
func TestKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary with participants; skipped under -short")
	}
	began := time.Now()
	bin := durableBuild(t)
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	data := filepath.Join(t.TempDir(), "data")
	addr := durableFreeAddr(t)
	args := []string{"--webhook-url", rcv.URL(), "--webhook-secret", webhookSecret}
	srv := durableStart(t, bin, data, addr, args...)
	c := (&durableServer{addr: addr}).client()
	ctx := testContext(t)
	tStarted := time.Now()

	// API load, from now until the kill.
	load := kill9StartWriters(t, c, 4)

	// Three stages, each with a publisher and two subscribers really
	// connected, through tokens minted by the API.
	const stageCount, subsPerStage = 3, 2
	stages := make([]*kill9Stage, stageCount)
	var bots []*kill9Bot
	for i := range stageCount {
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("live-%d", i))})
		if err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		st := &kill9Stage{arn: aws.ToString(out.Stage.Arn)}
		stages[i] = st
		st.pub = kill9StartBot(t, c, st.arn, fmt.Sprintf("pub-%d", i), bot.Config{Video: true, Width: 160, Height: 128, FPS: 10, Index: i})
		bots = append(bots, st.pub)
		for j := range subsPerStage {
			sub := kill9StartBot(t, c, st.arn, fmt.Sprintf("sub-%d-%d", i, j), bot.Config{Subscribe: true, Index: i})
			st.subs = append(st.subs, sub)
			bots = append(bots, sub)
		}
	}
	eventually(t, 25*time.Second, "every publisher publishing, every subscriber receiving its video", func() error {
		for _, st := range stages {
			if s := st.pub.Stats(); s.State != bot.StatePublishing || s.Sent.VideoFrames < 3 {
				return fmt.Errorf("publisher %s: %s (%s), %d frames sent", s.ParticipantID, s.State, s.Error, s.Sent.VideoFrames)
			}
			for _, sub := range st.subs {
				s := sub.Stats()
				i := slices.IndexFunc(s.Received, func(r bot.RemoteStats) bool { return r.ParticipantID == st.pub.ParticipantID() })
				if i < 0 || s.Received[i].VideoFrames < 3 {
					return fmt.Errorf("subscriber %s: %s (%s), received %+v", s.ParticipantID, s.State, s.Error, s.Received)
				}
			}
		}
		return nil
	})
	eventually(t, 15*time.Second, "the webhook seeing every join and publication", func() error {
		got, _, _ := rcv.Snapshot()
		seen := map[string]bool{}
		for _, e := range got {
			seen[kill9Name(e)+" "+kill9Detail(e, "participant_id")] = true
		}
		for _, b := range bots {
			if !seen["Participant Joined "+b.ParticipantID()] {
				return fmt.Errorf("no Participant Joined for %s", b.user)
			}
		}
		for _, st := range stages {
			if !seen["Participant Published "+st.pub.ParticipantID()] {
				return fmt.Errorf("no Participant Published for %s", st.pub.user)
			}
		}
		return nil
	})
	for _, st := range stages {
		st.session = activeSession(t, c, st.arn)
		if st.session == "" {
			t.Fatalf("stage %s: no active session with its participants connected", st.arn)
		}
		for _, b := range st.bots() {
			if got := b.Stats().SessionID; got != st.session {
				t.Fatalf("%s: session %q, the stage's is %q", b.user, got, st.session)
			}
		}
	}
	tLoaded := time.Now()

	// Kill it mid-load: the writers at work for a few seconds, media
	// flowing, the webhook delivering what they write.
	if wait := time.Until(tStarted.Add(3 * time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	busy := load.inFlight.Load()
	load.killed.Store(true)
	killing := time.Now()
	srv.kill()
	killedAt := time.Now() // the process is gone: what comes next is the restart's
	load.stopAndWait()
	for _, err := range load.errs {
		t.Errorf("write failed before the kill: %v", err)
	}
	acks := load.acks
	if len(acks.names) == 0 || len(acks.tokens) == 0 || acks.updated == 0 {
		t.Fatalf("too little API load before the kill: %d stages, %d tokens, %d updates", len(acks.names), len(acks.tokens), acks.updated)
	}

	// The participants notice: each bot ends by itself, with an error.
	var noticed []string
	for _, b := range bots {
		err, ended := b.ended(time.Until(killing.Add(10 * time.Second)))
		switch {
		case !ended:
			t.Errorf("%s still running 10 s after the kill", b.user)
		case err == nil:
			t.Errorf("%s ended without an error after the kill", b.user)
		default:
			noticed = append(noticed, fmt.Sprintf("%s after %v: %v", b.user, b.endedAt.Sub(killing).Round(time.Millisecond), err))
		}
	}
	tNoticed := time.Now()

	// What the killed server had committed: a copy of its database, so
	// that the restart recovers from the files as the kill left them.
	committed := kill9Committed(t, data)
	var preKillSeq int64
	if n := len(committed); n > 0 {
		preKillSeq = committed[n-1].Seq
	}
	botIDs := map[string]*kill9Bot{}
	for _, b := range bots {
		botIDs[b.ParticipantID()] = b
	}
	for _, ev := range committed {
		if b := botIDs[kill9StreamDetail(ev, "participant_id")]; b != nil && ev.EventName() == ivsrt.StreamParticipantLeft {
			t.Errorf("%s LEFT before the kill (event %d): it was to be connected when the server died", b.user, ev.Seq)
		}
	}

	// A webhook request the killed server sent may reach the receiver
	// after killedAt; nothing reaches it from the restarted server before
	// restarting. Deliveries are told apart by that.
	restarting := time.Now()
	srv = durableStart(t, bin, data, addr, args...)
	c = (&durableServer{addr: addr}).client()
	tRestarted := time.Now()

	// (1) Every acknowledged write is there.
	kill9CheckWrites(ctx, t, c, acks)
	tWritesChecked := time.Now()

	// (2) The sessions open at the kill are closed: everyone in them LEFT.
	for _, st := range stages {
		kill9CheckClosed(ctx, t, c, st)
	}

	// (4) A participant joining now starts a new session.
	first := stages[0]
	fresh := kill9StartBot(t, c, first.arn, "after-restart", bot.Config{Video: true, Width: 160, Height: 128, FPS: 10, Index: 7})
	eventually(t, 15*time.Second, "a participant publishing after the restart", func() error {
		if s := fresh.Stats(); s.State != bot.StatePublishing || s.SessionID == "" {
			return fmt.Errorf("%s (%s), session %q", s.State, s.Error, s.SessionID)
		}
		return nil
	})
	newSession := fresh.Stats().SessionID
	if newSession == first.session {
		t.Errorf("after the restart, a new participant joined the session %s, ended by the restart", newSession)
	}
	if got := activeSession(t, c, first.arn); got != newSession {
		t.Errorf("stage %s after a join: active session %q, want the participant's %q", first.arn, got, newSession)
	}
	sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(first.arn)})
	if err != nil {
		t.Fatalf("ListStageSessions: %v", err)
	}
	if len(sessions.StageSessions) != 2 {
		t.Errorf("stage %s: %d sessions, want 2 (one ended by the restart, one new)", first.arn, len(sessions.StageSessions))
	}
	if !fresh.stop(10 * time.Second) {
		t.Fatalf("the participant joined after the restart did not stop")
	}
	if fresh.err != nil {
		t.Errorf("the participant joined after the restart: %v", fresh.err)
	}
	eventually(t, 10*time.Second, "the new session ended once its participant left", func() error {
		if s := activeSession(t, c, first.arn); s != "" {
			return fmt.Errorf("active session %s", s)
		}
		return nil
	})

	// (3) The webhook got the whole stream, in order per stage. A stage
	// created last marks the end of what is to be delivered.
	marker, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("end-marker")})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	stream := kill9ReadStream(ctx, t, srv.addr, aws.ToString(marker.Stage.Arn))
	var streamPreKill []string
	for _, ev := range stream {
		if ev.Seq <= preKillSeq {
			streamPreKill = append(streamPreKill, ev.ID)
		}
	}
	var committedIDs []string
	for _, ev := range committed {
		committedIDs = append(committedIDs, ev.ID)
	}
	if !slices.Equal(streamPreKill, committedIDs) {
		t.Errorf("the event stream after the restart has %d events up to seq %d, the database had %d at the kill",
			len(streamPreKill), preKillSeq, len(committedIDs))
	}
	want := map[string]bool{}
	for _, ev := range stream {
		want[ev.ID] = true
	}
	eventually(t, 20*time.Second, "the webhook getting every event of the stream", func() error {
		got, _, _ := rcv.Snapshot()
		missing := len(want)
		seen := map[string]bool{}
		for _, e := range got {
			if want[e.ID] && !seen[e.ID] {
				seen[e.ID] = true
				missing--
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d events not delivered", missing, len(want))
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // anything sent twice would show now
	times := rcv.AcceptedAt()
	accepted, tries, badSigs := rcv.Snapshot()
	accepted = accepted[:len(times)]
	if badSigs != 0 {
		t.Errorf("webhook: %d deliveries with a bad signature", badSigs)
	}
	report := kill9CheckDelivery(t, stream, accepted, times, restarting, preKillSeq)

	// The departures and the ends of the sessions reached the webhook
	// after the restart.
	afterRestart := map[string]bool{}
	for i, e := range accepted {
		if times[i].After(killedAt) {
			afterRestart[kill9Name(e)+" "+kill9Detail(e, "participant_id")+kill9Detail(e, "session_id")] = true
		}
	}
	for _, st := range stages {
		for _, b := range st.bots() {
			if !afterRestart["Participant Left "+b.ParticipantID()+st.session] {
				t.Errorf("webhook: no Participant Left for %s (%s) after the restart", b.user, b.ParticipantID())
			}
		}
		if !afterRestart["Session Ended "+st.session] {
			t.Errorf("webhook: no Session Ended for %s of %s after the restart", st.session, st.arn)
		}
		// In the stream, the session ends after its last departure, and
		// both were written by the restart.
		var left []int64
		var ended int64
		for _, ev := range stream {
			if ev.Session != st.session {
				continue
			}
			switch ev.Name {
			case ivsrt.StreamParticipantLeft:
				left = append(left, ev.Seq)
			case ivsrt.StreamSessionEnded:
				ended = ev.Seq
			}
		}
		if len(left) != len(st.bots()) || ended == 0 || left[0] <= preKillSeq || slices.Max(left) > ended {
			t.Errorf("session %s in the stream: departures at seq %v, end at %d, the kill after seq %d", st.session, left, ended, preKillSeq)
		}
	}

	writes := len(acks.names) + acks.updated + len(acks.tokens)
	t.Logf("API: %d writes acknowledged before the kill (%d stages created, %d updates, %d tokens), %d in flight at the kill",
		writes, len(acks.names), acks.updated, len(acks.tokens), busy)
	if len(noticed) > 0 {
		t.Logf("participants: %d on %d stages, %d noticed the kill; first: %s", len(bots), stageCount, len(noticed), noticed[0])
	}
	t.Logf("events: %d in the stream (%d before the kill); webhook: %d requests, %d accepted, %d duplicates (all written before the kill; %d of them on the bots' stages)",
		len(stream), len(committed), tries, len(accepted), report.duplicates, report.liveDuplicates(stages))
	t.Logf("timings: start %v, load and participants ready %v, bots ended %v after the kill, restart %v, writes checked %v, total %v",
		tStarted.Sub(began).Round(time.Millisecond), tLoaded.Sub(tStarted).Round(time.Millisecond),
		tNoticed.Sub(killing).Round(time.Millisecond), tRestarted.Sub(tNoticed).Round(time.Millisecond),
		tWritesChecked.Sub(tRestarted).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// kill9Stage is a stage with participants connected at the kill.
type kill9Stage struct {
	arn     string
	session string
	pub     *kill9Bot
	subs    []*kill9Bot
}

func (s *kill9Stage) bots() []*kill9Bot { return append([]*kill9Bot{s.pub}, s.subs...) }

// kill9Bot is a bot running until stopped or ended by the server.
type kill9Bot struct {
	*bot.Bot
	user    string
	cancel  context.CancelFunc
	done    chan struct{}
	err     error     // how Run ended; read after done is closed
	endedAt time.Time // when; read after done is closed
}

// kill9StartBot mints a token for user on the stage through the API and
// runs a bot with it.
func kill9StartBot(t *testing.T, c *ivsrealtime.Client, arn, user string, cfg bot.Config) *kill9Bot {
	t.Helper()
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(user)})
	cfg.Token, cfg.HTTPClient = aws.ToString(tok.Token), localHTTPClient(t)
	b, err := bot.New(cfg)
	if err != nil {
		t.Fatalf("bot %s: %v", user, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	kb := &kill9Bot{Bot: b, user: user, cancel: cancel, done: make(chan struct{})}
	go func() {
		kb.err = b.Run(ctx)
		kb.endedAt = time.Now()
		close(kb.done)
	}()
	t.Cleanup(func() { kb.stop(10 * time.Second) })
	return kb
}

// ended waits up to within for the bot to end by itself, and returns how.
func (b *kill9Bot) ended(within time.Duration) (err error, ended bool) {
	select {
	case <-b.done:
		return b.err, true
	case <-time.After(within):
		return nil, false
	}
}

// stop ends the bot and reports whether it stopped within the time given.
func (b *kill9Bot) stop(within time.Duration) bool {
	b.cancel()
	_, ok := b.ended(within)
	return ok
}

// kill9Acks are the writes the server acknowledged.
type kill9Acks struct {
	mu      sync.Mutex
	names   map[string]string // stage ARN → acknowledged name
	pending map[string]string // stage ARN → name sent in an update not answered
	tokens  map[string]string // participant id → stage ARN
	updated int               // acknowledged UpdateStage calls
}

// kill9Writers are API clients writing until the server dies.
type kill9Writers struct {
	acks     *kill9Acks
	killed   atomic.Bool // set just before the kill: failures after it are expected
	stop     atomic.Bool
	inFlight atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	errs     []error // failures before the kill
}

// kill9StartWriters starts n writers; each creates stages, mints tokens
// on them and renames them, in turn, one request at a time.
func kill9StartWriters(t *testing.T, c *ivsrealtime.Client, n int) *kill9Writers {
	w := &kill9Writers{acks: &kill9Acks{names: map[string]string{}, pending: map[string]string{}, tokens: map[string]string{}}}
	for id := range n {
		w.wg.Go(func() {
			var own []string
			for i := 0; !w.stop.Load(); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				w.inFlight.Add(1)
				err := w.acks.write(ctx, c, &own, id, i)
				w.inFlight.Add(-1)
				cancel()
				if err == nil {
					continue
				}
				if !w.killed.Load() {
					w.mu.Lock()
					w.errs = append(w.errs, err)
					w.mu.Unlock()
				}
				return
			}
		})
	}
	t.Cleanup(w.stopAndWait)
	return w
}

func (w *kill9Writers) stopAndWait() {
	w.stop.Store(true)
	w.wg.Wait()
}

// write makes the i-th write of writer w and records it once acknowledged.
func (a *kill9Acks) write(ctx context.Context, c *ivsrealtime.Client, own *[]string, w, i int) error {
	switch {
	case i%3 == 0 || len(*own) == 0:
		name := fmt.Sprintf("load-%d-%d", w, i)
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(name)})
		if err != nil {
			return fmt.Errorf("CreateStage: %w", err)
		}
		arn := aws.ToString(out.Stage.Arn)
		*own = append(*own, arn)
		a.mu.Lock()
		a.names[arn] = name
		a.mu.Unlock()
	case i%3 == 1:
		arn := (*own)[i%len(*own)]
		out, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
			StageArn: aws.String(arn), UserId: aws.String(fmt.Sprintf("user-%d-%d", w, i))})
		if err != nil {
			return fmt.Errorf("CreateParticipantToken: %w", err)
		}
		a.mu.Lock()
		a.tokens[aws.ToString(out.ParticipantToken.ParticipantId)] = arn
		a.mu.Unlock()
	default:
		// One of the writer's stages, renamed: only this writer writes it.
		arn := (*own)[(i/3)%len(*own)]
		name := fmt.Sprintf("renamed-%d-%d", w, i)
		a.mu.Lock()
		a.pending[arn] = name
		a.mu.Unlock()
		if _, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: aws.String(arn), Name: aws.String(name)}); err != nil {
			return fmt.Errorf("UpdateStage: %w", err)
		}
		a.mu.Lock()
		a.names[arn] = name
		delete(a.pending, arn)
		a.updated++
		a.mu.Unlock()
	}
	return nil
}

// kill9CheckWrites checks that the restarted server has every write it
// acknowledged: each stage, with its last acknowledged name (or the name
// of an update it had not answered when it died), and each token.
func kill9CheckWrites(ctx context.Context, t *testing.T, c *ivsrealtime.Client, acks *kill9Acks) {
	t.Helper()
	var failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	checks := make(chan func())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for check := range checks {
				check()
			}
		})
	}
	for arn, name := range acks.names {
		checks <- func() {
			got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
			if err != nil {
				fail("acknowledged stage %s after kill -9: GetStage: %v", arn, err)
				return
			}
			if n := aws.ToString(got.Stage.Name); n != name && n != acks.pending[arn] {
				fail("stage %s after kill -9: name %q, want the acknowledged %q", arn, n, name)
			}
		}
	}
	for id, arn := range acks.tokens {
		checks <- func() {
			if _, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{
				StageArn: aws.String(arn), ParticipantId: aws.String(id)}); err != nil {
				fail("acknowledged participant token %s on %s after kill -9: %v", id, arn, err)
			}
		}
	}
	close(checks)
	wg.Wait()

	listed := map[string]bool{}
	var next *string
	for {
		out, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(100), NextToken: next})
		if err != nil {
			t.Fatalf("ListStages: %v", err)
		}
		for _, s := range out.Stages {
			listed[aws.ToString(s.Arn)] = true
		}
		if next = out.NextToken; next == nil {
			break
		}
	}
	for arn := range acks.names {
		if !listed[arn] {
			fail("acknowledged stage %s after kill -9: not in ListStages", arn)
		}
	}
}

// kill9CheckClosed checks that the session open on the stage at the kill
// is over: no active session, an end time, every participant DISCONNECTED
// with LEFT as their last event.
func kill9CheckClosed(ctx context.Context, t *testing.T, c *ivsrealtime.Client, st *kill9Stage) {
	t.Helper()
	got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(st.arn)})
	if err != nil {
		t.Fatalf("GetStage %s: %v", st.arn, err)
	}
	if s := aws.ToString(got.Stage.ActiveSessionId); s != "" {
		t.Errorf("stage %s after the restart: active session %s, want none", st.arn, s)
	}
	sess, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(st.arn), SessionId: aws.String(st.session)})
	if err != nil {
		t.Fatalf("GetStageSession %s: %v", st.session, err)
	}
	if sess.StageSession.EndTime == nil {
		t.Errorf("session %s of %s after the restart: no endTime", st.session, st.arn)
	}
	ps, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(st.arn), SessionId: aws.String(st.session)})
	if err != nil {
		t.Fatalf("ListParticipants %s: %v", st.session, err)
	}
	states := map[string]types.ParticipantState{}
	for _, p := range ps.Participants {
		states[aws.ToString(p.ParticipantId)] = p.State
	}
	if len(states) != len(st.bots()) {
		t.Errorf("session %s: %d participants listed (%v), want %d", st.session, len(states), states, len(st.bots()))
	}
	for _, b := range st.bots() {
		if s, ok := states[b.ParticipantID()]; !ok || s != types.ParticipantStateDisconnected {
			t.Errorf("%s in session %s after the restart: state %q, want DISCONNECTED", b.user, st.session, s)
		}
		evs, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{
			StageArn: aws.String(st.arn), SessionId: aws.String(st.session), ParticipantId: aws.String(b.ParticipantID())})
		if err != nil {
			t.Fatalf("ListParticipantEvents %s: %v", b.ParticipantID(), err)
		}
		var names []string
		for _, e := range evs.Events {
			names = append(names, string(e.Name))
		}
		left := string(types.EventNameLeft)
		if len(names) < 2 || names[0] != string(types.EventNameJoined) || names[len(names)-1] != left || slices.Index(names, left) != len(names)-1 {
			t.Errorf("%s in session %s after the restart: events %v, want JOINED first and one LEFT, last", b.user, st.session, names)
		}
	}
}

// kill9Committed returns the event stream as the killed server left it
// on disk, read from a copy of its database.
func kill9Committed(t *testing.T, data string) []*ivsrt.StreamEvent {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"ivsrt.db", "ivsrt.db-wal"} {
		b, err := os.ReadFile(filepath.Join(data, name))
		if errors.Is(err, fs.ErrNotExist) && name != "ivsrt.db" {
			continue
		}
		if err != nil {
			t.Fatalf("copy the database: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatalf("copy the database: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ivsrt.db"))
	if err != nil {
		t.Fatalf("open the copy of the database: %v", err)
	}
	defer db.Close()
	var all []*ivsrt.StreamEvent
	var after int64
	for {
		evs, err := db.ReadEvents(ctx, after, 1000)
		if err != nil {
			t.Fatalf("read the events of the copy: %v", err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
}

// kill9Event is an event of the server's stream.
type kill9Event struct {
	Seq                                   int64
	ID, Stage, Name, Participant, Session string
}

// kill9ReadStream reads the server's event stream from its start, signed
// with the durable keys, up to the creation of the stage until.
func kill9ReadStream(ctx context.Context, t *testing.T, addr, until string) []kill9Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/events/stream?after=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: durableKeyID, SecretAccessKey: durableSecret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, r, hex.EncodeToString(sum[:]), "ivs", durableRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := localHTTPClient(t).Do(r)
	if err != nil {
		t.Fatalf("GET event stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET event stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []kill9Event
	var seq int64
	var data string
	for sc.Scan() {
		field, value, _ := strings.Cut(sc.Text(), ": ")
		switch field {
		case "id":
			if seq, err = strconv.ParseInt(value, 10, 64); err != nil {
				t.Fatalf("event stream: id %q", value)
			}
		case "data":
			data = value
		case "":
			if data == "" {
				continue
			}
			var e ivsrt.Envelope
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatalf("event stream: %q: %v", data, err)
			}
			ev := kill9Event{Seq: seq, ID: e.ID, Stage: e.Resources[0], Name: kill9Name(&e),
				Participant: kill9Detail(&e, "participant_id"), Session: kill9Detail(&e, "session_id")}
			out = append(out, ev)
			if ev.Stage == until && ev.Name == ivsrt.StreamStageCreated {
				return out
			}
			data = ""
		}
	}
	t.Fatalf("event stream ended (%v) after %d events, before the creation of %s", sc.Err(), len(out), until)
	return nil
}

// kill9Delivery sums up what the webhook received.
type kill9Delivery struct {
	duplicates int
	byStage    map[string]int // duplicates per stage
}

func (d kill9Delivery) liveDuplicates(stages []*kill9Stage) int {
	n := 0
	for _, st := range stages {
		n += d.byStage[st.arn]
	}
	return n
}

// kill9CheckDelivery checks the webhook's deliveries against the stream,
// stage by stage: from the killed server (what reached the receiver before
// the restart began, which may be after the kill: a request already sent),
// a prefix of the stage's events in order; after the restart, the rest in
// order, starting at most where the prefix ended. The events sent both before and after are the relay's
// at-least-once after a crash (acknowledged, not yet recorded): they must
// have been written before the kill; nothing written later comes twice.
func kill9CheckDelivery(t *testing.T, stream []kill9Event, accepted []*ivsrt.Envelope, times []time.Time, restarting time.Time, preKillSeq int64) kill9Delivery {
	t.Helper()
	byID := map[string]kill9Event{}
	want := map[string][]int64{}
	for _, ev := range stream {
		byID[ev.ID] = ev
		want[ev.Stage] = append(want[ev.Stage], ev.Seq)
	}
	pre, post := map[string][]int64{}, map[string][]int64{}
	for i, e := range accepted {
		ev, ok := byID[e.ID]
		if !ok {
			t.Errorf("webhook: event %s (%s of %s) is not in the stream", e.ID, kill9Name(e), e.Resources[0])
			continue
		}
		if ev.Stage != e.Resources[0] || ev.Name != kill9Name(e) {
			t.Errorf("webhook: event %s is %s of %s, the stream has %s of %s", e.ID, kill9Name(e), e.Resources[0], ev.Name, ev.Stage)
		}
		if times[i].Before(restarting) {
			pre[ev.Stage] = append(pre[ev.Stage], ev.Seq)
		} else {
			post[ev.Stage] = append(post[ev.Stage], ev.Seq)
		}
	}
	d := kill9Delivery{byStage: map[string]int{}}
	failures := 0
	for stage, seqs := range want {
		p, q := pre[stage], post[stage]
		k := len(seqs) - len(q)
		ok := len(p) <= len(seqs) && slices.Equal(p, seqs[:len(p)]) && k >= 0 && k <= len(p) && slices.Equal(q, seqs[k:])
		if !ok {
			if failures++; failures <= 10 {
				t.Errorf("webhook, stage %s: got seqs %v before the kill and %v after the restart, want the stream's %v in order, once each but for a resend after the crash",
					stage, p, q, seqs)
			}
			continue
		}
		for _, seq := range seqs[k:len(p)] {
			if seq > preKillSeq {
				t.Errorf("webhook, stage %s: event %d, written after the restart, delivered twice", stage, seq)
			}
		}
		d.duplicates += len(p) - k
		d.byStage[stage] = len(p) - k
	}
	return d
}

func kill9Name(e *ivsrt.Envelope) string { return kill9Detail(e, "event_name") }

func kill9Detail(e *ivsrt.Envelope, key string) string {
	s, _ := e.Detail[key].(string)
	return s
}

func kill9StreamDetail(e *ivsrt.StreamEvent, key string) string {
	s, _ := e.Detail[key].(string)
	return s
}
