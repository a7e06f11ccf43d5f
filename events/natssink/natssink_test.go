package natssink

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/store/sqlite"
)

const (
	testRegion  = "eu-west-1"
	testAccount = "111122223333"
)

// testServer is a NATS server on a loopback port that can be down or up.
// It keeps its port, and its JetStream store, across restarts.
type testServer struct {
	t    *testing.T
	opts server.Options

	mu  sync.Mutex
	srv *server.Server
}

// newTestServer reserves a loopback port and returns a server that is
// down. With jetStream the server has JetStream, stored in a temporary
// folder. user and password, if set, are required of clients.
func newTestServer(t *testing.T, jetStream bool, user, password string) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ts := &testServer{t: t, opts: server.Options{
		Host:     "127.0.0.1",
		Port:     port,
		NoLog:    true,
		NoSigs:   true,
		Username: user,
		Password: password,
	}}
	if jetStream {
		ts.opts.JetStream = true
		ts.opts.StoreDir = t.TempDir()
	}
	t.Cleanup(ts.down)
	return ts
}

// startTestServer returns a server that is up.
func startTestServer(t *testing.T, jetStream bool) *testServer {
	t.Helper()
	ts := newTestServer(t, jetStream, "", "")
	ts.up()
	return ts
}

func (ts *testServer) url() string {
	return "nats://" + net.JoinHostPort(ts.opts.Host, strconv.Itoa(ts.opts.Port))
}

// clientURL is url with the credentials clients need.
func (ts *testServer) clientURL() string {
	if ts.opts.Username == "" {
		return ts.url()
	}
	return "nats://" + ts.opts.Username + ":" + ts.opts.Password + "@" +
		net.JoinHostPort(ts.opts.Host, strconv.Itoa(ts.opts.Port))
}

func (ts *testServer) up() {
	ts.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		opts := ts.opts
		srv, err := server.NewServer(&opts)
		if err != nil {
			ts.t.Fatalf("nats server: %v", err)
		}
		srv.Start()
		if srv.ReadyForConnections(2 * time.Second) {
			ts.mu.Lock()
			ts.srv = srv
			ts.mu.Unlock()
			return
		}
		// The port was free a moment ago; something may hold it briefly.
		srv.Shutdown()
		srv.WaitForShutdown()
		if time.Now().After(deadline) {
			ts.t.Fatalf("nats server on port %d did not start", ts.opts.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (ts *testServer) down() {
	ts.mu.Lock()
	srv := ts.srv
	ts.srv = nil
	ts.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// connect returns a client of ts, closed when the test ends.
func connect(t *testing.T, ts *testServer) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(ts.clientURL(), nats.Name("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// createStream creates a file stream named name on subjects.
func createStream(t *testing.T, ts *testServer, name string, subjects ...string) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(connect(t, ts))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return st
}

// newSender returns a sender of cfg, closed when the test ends.
func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait = 50 * time.Millisecond
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// stageEvent returns an event of the stage stageID named name.
func stageEvent(stageID, name string) *ivsrt.StreamEvent {
	return &ivsrt.StreamEvent{
		Seq:        1,
		ID:         ivsrt.NewEventID(),
		Time:       time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC),
		StageARN:   ivsrt.NewStageARN(testRegion, testAccount, stageID),
		DetailType: ivsrt.DetailTypeStageUpdate,
		Detail: map[string]any{
			"event_name":     name,
			"session_id":     "st-0123456789abc",
			"participant_id": "p0123456789a",
			"user_id":        "u1",
		},
	}
}

// attempt returns try number n of ev, as the relay makes it.
func attempt(t *testing.T, ev *ivsrt.StreamEvent, n int) *events.Attempt {
	t.Helper()
	env := ev.Envelope(testRegion, testAccount)
	body, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return &events.Attempt{Event: ev, Envelope: env, Body: body, Number: n}
}

// subscribe returns a subscription of a new client of ts to subject,
// known to the server when it returns.
func subscribe(t *testing.T, ts *testServer, subject string) *nats.Subscription {
	t.Helper()
	nc := connect(t, ts)
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// send sends a, allowing it timeout.
func send(t *testing.T, s *Sender, a *events.Attempt, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return s.Send(ctx, a)
}

func TestCorePublish(t *testing.T) {
	ts := newTestServer(t, false, "ivs-relay", "s3cret-pw")
	ts.up()
	s := newSender(t, Config{URL: ts.clientURL()})
	if got, want := s.Target(), ts.url(); got != want {
		t.Errorf("Target: got %q, want %q", got, want)
	}
	sub := subscribe(t, ts, "ivs.>")

	ev := stageEvent("AbCdEf123456", ivsrt.StreamParticipantPublished)
	a := attempt(t, ev, 3)
	if err := send(t, s, a, 5*time.Second); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no message: %v", err)
	}
	if got, want := msg.Subject, "ivs.AbCdEf123456.participant_published"; got != want {
		t.Errorf("subject: got %q, want %q", got, want)
	}
	if got, want := string(msg.Data), string(a.Body); got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
	for k, want := range map[string]string{
		"Nats-Msg-Id":            ev.ID,
		"Content-Type":           "application/json",
		"Ivsrt-Delivery-Attempt": "3",
		"Ivsrt-Detail-Type":      ivsrt.DetailTypeStageUpdate,
	} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	var env ivsrt.Envelope
	if err := json.Unmarshal(msg.Data, &env); err != nil {
		t.Fatal(err)
	}
	if env.ID != ev.ID || env.Resources[0] != string(ev.StageARN) {
		t.Errorf("envelope: got id %s resources %v, want %s [%s]", env.ID, env.Resources, ev.ID, ev.StageARN)
	}
}

func TestSubject(t *testing.T) {
	for _, tt := range []struct {
		name   string
		prefix string
		arn    ivsrt.StageARN
		event  string
		want   string
	}{
		{"published", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/AbCdEf123456", ivsrt.StreamParticipantPublished, "ivs.AbCdEf123456.participant_published"},
		{"created", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/AbCdEf123456", ivsrt.StreamStageCreated, "ivs.AbCdEf123456.stage_created"},
		{"publish error", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/AbCdEf123456", ivsrt.StreamParticipantPublishError, "ivs.AbCdEf123456.participant_publish_error"},
		{"prefix of two tokens", "acme.ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/x-y_Z", ivsrt.StreamSessionEnded, "acme.ivs.x-y_Z.session_ended"},
		{"hostile event name", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/AbCdEf123456", "a.b *>", "ivs.AbCdEf123456.a_b___"},
		{"hostile stage id", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/a.*>b", "Stage Updated", "ivs.a___b.stage_updated"},
		{"nested path", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/x/Y1", "Stage Updated", "ivs.Y1.stage_updated"},
		{"not a stage ARN", "ivs", "a:b c", "Stage Updated", "ivs.a_b_c.stage_updated"},
		{"empty parts", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/", "", "ivs._._"},
		{"non-ASCII and controls", "ivs", "arn:aws:ivs:eu-west-1:111122223333:stage/Ä\r\n", "Été\tFin", "ivs.___._t__fin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := &ivsrt.StreamEvent{StageARN: tt.arn, Detail: map[string]any{"event_name": tt.event}}
			if got := Subject(tt.prefix, ev); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A hostile event name reaches subscribers as one token, not as extra
// tokens or wildcards.
func TestHostileEventNameStaysOneToken(t *testing.T) {
	ts := startTestServer(t, false)
	s := newSender(t, Config{URL: ts.url()})
	three := subscribe(t, ts, "ivs.*.*")
	all := subscribe(t, ts, ">")

	ev := stageEvent("AbCdEf123456", "a.b *>")
	if err := send(t, s, attempt(t, ev, 1), 5*time.Second); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := "ivs.AbCdEf123456.a_b___"
	for _, sub := range []*nats.Subscription{three, all} {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("%s: no message: %v", sub.Subject, err)
		}
		if msg.Subject != want {
			t.Errorf("%s: got subject %q, want %q", sub.Subject, msg.Subject, want)
		}
	}
	if msg, err := all.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("unexpected second message on %q", msg.Subject)
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pa55@h1:4222", "nats://h1:4222"},
		{"nats://s3cret-token@h1:4222, tls://u:p@h2:4443", "nats://h1:4222,tls://h2:4443"},
		{"h1:4222,h2", "nats://h1:4222,nats://h2"},
	} {
		if got := redactURLs(tt.in); got != tt.want {
			t.Errorf("redactURLs(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{URL: "nats://127.0.0.1:1", SubjectPrefix: "ivs.*"},
		{URL: "nats://127.0.0.1:1", SubjectPrefix: "ivs."},
		{URL: "nats://127.0.0.1:1", SubjectPrefix: "a b"},
		{URL: "nats://127.0.0.1:1", SubjectPrefix: ">"},
	} {
		if s, err := New(cfg, nil); err == nil {
			s.Close()
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

func TestJetStream(t *testing.T) {
	ts := startTestServer(t, true)
	st := createStream(t, ts, "IVS", "ivs.>")
	s := newSender(t, Config{URL: ts.url(), JetStream: true})

	msgs := func() uint64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	ev := stageEvent("AbCdEf123456", ivsrt.StreamParticipantJoined)
	first := attempt(t, ev, 1)
	if err := send(t, s, first, 5*time.Second); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := msgs(); got != 1 {
		t.Fatalf("stream holds %d messages, want 1", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	stored, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stored.Subject, "ivs.AbCdEf123456.participant_joined"; got != want {
		t.Errorf("subject: got %q, want %q", got, want)
	}
	if string(stored.Data) != string(first.Body) {
		t.Errorf("body: got %s, want %s", stored.Data, first.Body)
	}
	if got := stored.Header.Get("Nats-Msg-Id"); got != ev.ID {
		t.Errorf("Nats-Msg-Id: got %q, want %q", got, ev.ID)
	}

	// A retry of the same event is acknowledged, and not stored again.
	if err := send(t, s, attempt(t, ev, 2), 5*time.Second); err != nil {
		t.Fatalf("Send again: %v", err)
	}
	if got := msgs(); got != 1 {
		t.Errorf("after a retry the stream holds %d messages, want 1", got)
	}
	if err := send(t, s, attempt(t, stageEvent("AbCdEf123456", ivsrt.StreamParticipantLeft), 1), 5*time.Second); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := msgs(); got != 2 {
		t.Errorf("stream holds %d messages, want 2", got)
	}

	// No stream covers the subjects of another prefix.
	other := newSender(t, Config{URL: ts.url(), JetStream: true, SubjectPrefix: "elsewhere"})
	start := time.Now()
	err = send(t, other, attempt(t, ev, 1), 5*time.Second)
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("Send without a stream: got %v, want %v", err, jetstream.ErrNoStreamResponse)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Send without a stream took %v", d)
	}
}

// sendUntil tries a until it is sent or timeout has passed.
func sendUntil(t *testing.T, s *Sender, a *events.Attempt, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := send(t, s, a, time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not sent within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendFails checks that a send of a fails, within its deadline.
func sendFails(t *testing.T, s *Sender, a *events.Attempt) {
	t.Helper()
	const timeout = 2 * time.Second
	start := time.Now()
	err := send(t, s, a, timeout)
	if err == nil {
		t.Fatal("Send to a server that is down: no error")
	}
	if d := time.Since(start); d > timeout+500*time.Millisecond {
		t.Errorf("Send to a server that is down took %v, past its deadline of %v", d, timeout)
	}
	t.Logf("send while down: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
}

func TestServerDownThenUp(t *testing.T) {
	for _, jetStream := range []bool{false, true} {
		t.Run(map[bool]string{false: "core", true: "jetstream"}[jetStream], func(t *testing.T) {
			ts := newTestServer(t, jetStream, "", "")
			s := newSender(t, Config{URL: ts.url(), JetStream: jetStream})

			// Down from the start.
			lost := stageEvent("AbCdEf123456", ivsrt.StreamStageCreated)
			sendFails(t, s, attempt(t, lost, 1))

			ts.up()
			var st jetstream.Stream
			if jetStream {
				st = createStream(t, ts, "IVS", "ivs.>")
			}
			sub := subscribe(t, ts, "ivs.>")
			ev := stageEvent("AbCdEf123456", ivsrt.StreamStageUpdated)
			sendUntil(t, s, attempt(t, ev, 1), 10*time.Second)
			msg, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("no message: %v", err)
			}
			if got := msg.Header.Get("Nats-Msg-Id"); got != ev.ID {
				t.Errorf("got event %s, want %s", got, ev.ID)
			}
			// The failed send was not kept to go out on reconnecting.
			if msg, err := sub.NextMsg(200 * time.Millisecond); err == nil {
				t.Errorf("unexpected message: event %s", msg.Header.Get("Nats-Msg-Id"))
			}

			// Down while connected, then up again on the same port.
			ts.down()
			later := stageEvent("AbCdEf123456", ivsrt.StreamStageDeleted)
			sendFails(t, s, attempt(t, later, 1))
			ts.up()
			sub = subscribe(t, ts, "ivs.>")
			sendUntil(t, s, attempt(t, later, 2), 10*time.Second)
			msg, err = sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("no message after the restart: %v", err)
			}
			if got := msg.Header.Get("Nats-Msg-Id"); got != later.ID {
				t.Errorf("got event %s, want %s", got, later.ID)
			}
			if jetStream {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				info, err := st.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.State.Msgs != 2 {
					t.Errorf("stream holds %d messages, want 2", info.State.Msgs)
				}
			}
		})
	}
}

// The relay delivers every event of the store to a JetStream stream once,
// each stage's in order, through a NATS server that is down at first.
func TestRelayToJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ivsrt.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	ts := newTestServer(t, true, "", "")
	s := newSender(t, Config{URL: ts.url(), JetStream: true})
	relay, err := events.NewRelay(db,
		events.RelayConfig{Region: testRegion, AccountID: testAccount, PollInterval: 50 * time.Millisecond},
		[]events.SinkConfig{{Name: "nats", Kind: "nats", Target: s.Target(), Sender: s,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Close)

	const stages = 4
	var arns []ivsrt.StageARN
	rename := func(round int) {
		t.Helper()
		for _, arn := range arns {
			name := "v" + strconv.Itoa(round)
			if _, err := db.UpdateStage(ctx, arn, ivsrt.StageUpdate{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range stages {
		arn := ivsrt.NewStageARN(testRegion, testAccount, ivsrt.NewStageID())
		if err := db.CreateStage(ctx, &ivsrt.Stage{ARN: arn, Name: "v0"}, nil, ivsrt.StageQuota{}); err != nil {
			t.Fatal(err)
		}
		arns = append(arns, arn)
	}
	rename(1)
	rename(2)

	// While the server is down, tries fail.
	waitFor(t, ctx, "failed tries", func() bool { return relay.Status()[0].Failed >= stages })

	ts.up()
	// Until the stream exists, tries fail too (no responders).
	time.Sleep(100 * time.Millisecond)
	st := createStream(t, ts, "IVS", "ivs.>")
	rename(3)
	const perStage = 4 // created, then three renames

	want, err := db.ReadEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != stages*perStage {
		t.Fatalf("the store holds %d events, want %d", len(want), stages*perStage)
	}
	waitFor(t, ctx, "deliveries", func() bool {
		st := relay.Status()[0]
		return st.Delivered == int64(len(want)) && st.Pending == 0
	})

	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(want)) {
		t.Errorf("stream holds %d messages, want %d", info.State.Msgs, len(want))
	}
	// Each stage's events, in the order of the stream and of the store.
	got := map[string][]string{}
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var env ivsrt.Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if m.Header.Get("Nats-Msg-Id") != env.ID {
			t.Errorf("message %d: Nats-Msg-Id %q, envelope id %q", seq, m.Header.Get("Nats-Msg-Id"), env.ID)
		}
		if seen[env.ID] {
			t.Errorf("event %s stored twice", env.ID)
		}
		seen[env.ID] = true
		stage := ivsrt.StageARN(env.Resources[0])
		if !strings.HasPrefix(m.Subject, "ivs."+stage.ID()+".stage_") {
			t.Errorf("message %d: subject %q for stage %s", seq, m.Subject, stage)
		}
		got[string(stage)] = append(got[string(stage)], env.ID)
	}
	wantByStage := map[string][]string{}
	for _, ev := range want {
		wantByStage[string(ev.StageARN)] = append(wantByStage[string(ev.StageARN)], ev.ID)
	}
	for _, arn := range arns {
		if g, w := strings.Join(got[string(arn)], " "), strings.Join(wantByStage[string(arn)], " "); g != w {
			t.Errorf("stage %s: got events\n%s\nwant\n%s", arn, g, w)
		}
	}
}

// waitFor waits until cond holds, failing the test if ctx ends first.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
