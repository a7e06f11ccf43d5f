package events_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/events/eventstest"
	"github.com/ivsrt/ivsrt/store/sqlite"
)

const testSecret = "whsec-test-0123456789"

// openDB opens a fresh SQLite store in dir (or a new temporary folder).
func openDB(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "ivsrt.db"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// fastRetries makes a sink retry quickly, for tests.
func fastRetries(c events.SinkConfig) events.SinkConfig {
	c.MinBackoff, c.MaxBackoff = 10*time.Millisecond, 80*time.Millisecond
	c.Timeout = 2 * time.Second
	return c
}

func webhookSink(t *testing.T, name, url string, secrets ...string) events.SinkConfig {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{testSecret}
	}
	w, err := events.NewWebhook(url, secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return fastRetries(events.SinkConfig{Name: name, Kind: "webhook", Target: events.Redact(url), Sender: w})
}

func startRelay(t *testing.T, db events.RelayStore, cfg events.RelayConfig, sinks ...events.SinkConfig) *events.Relay {
	t.Helper()
	if cfg.Region == "" {
		cfg.Region, cfg.AccountID = "eu-west-1", "111122223333"
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	r, err := events.NewRelay(db, cfg, sinks)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// stageChanges creates stages and renames each of them times times,
// interleaved, and returns the stages. Each stage's events carry the
// stage_names "v0", "v1", ... in the order they were written.
func stageChanges(t *testing.T, db *sqlite.DB, stages, times int) []ivsrt.StageARN {
	t.Helper()
	var arns []ivsrt.StageARN
	for range stages {
		arn := ivsrt.NewStageARN("eu-west-1", "111122223333", ivsrt.NewStageID())
		if err := db.CreateStage(t.Context(), &ivsrt.Stage{ARN: arn, Name: "v0"}, nil, ivsrt.StageQuota{}); err != nil {
			t.Fatal(err)
		}
		arns = append(arns, arn)
	}
	for i := 1; i <= times; i++ {
		for _, arn := range arns {
			name := "v" + strconv.Itoa(i)
			if _, err := db.UpdateStage(t.Context(), arn, ivsrt.StageUpdate{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return arns
}

// checkOrder checks that got holds every event of stages once, each
// stage's in the order written (v0, v1, ...).
func checkOrder(t *testing.T, got []*ivsrt.Envelope, stages []ivsrt.StageARN, perStage int) {
	t.Helper()
	ids := map[string]bool{}
	next := map[string]int{}
	for _, env := range got {
		if ids[env.ID] {
			t.Errorf("event %s accepted twice", env.ID)
		}
		ids[env.ID] = true
		stage := env.Resources[0]
		want := "v" + strconv.Itoa(next[stage])
		if name := env.Detail["stage_name"]; name != want {
			t.Errorf("stage %s: got %v, want %s (out of order)", stage, name, want)
		}
		next[stage]++
	}
	for _, arn := range stages {
		if next[string(arn)] != perStage {
			t.Errorf("stage %s: %d events accepted, want %d", arn, next[string(arn)], perStage)
		}
	}
}

func TestWebhookReceiverDownThenUp(t *testing.T) {
	db := openDB(t, "")
	defer db.Close()
	rcv := eventstest.NewReceiver(t, testSecret)
	relay := startRelay(t, db, events.RelayConfig{}, webhookSink(t, "hook", rcv.URL()))

	stages := stageChanges(t, db, 3, 5) // 18 events
	time.Sleep(400 * time.Millisecond)  // tries fail: connection refused
	st := relay.Status()[0]
	if st.Failed == 0 || st.Delivered != 0 || st.Pending != 18 || !strings.Contains(st.LastError, "refused") {
		t.Errorf("status while the receiver is down: %+v", st)
	}

	rcv.Up()
	got := rcv.WaitAccepted(18, 15*time.Second)
	checkOrder(t, got, stages, 6)
	time.Sleep(200 * time.Millisecond) // nothing more may come
	accepted, _, badSigs := rcv.Snapshot()
	if len(accepted) != 18 || badSigs != 0 {
		t.Errorf("after delivery: %d accepted (want 18), %d bad signatures", len(accepted), badSigs)
	}
	if first := rcv.Attempt(got[0].ID); first < 2 {
		t.Errorf("first event delivered at attempt %d, want a retry (>= 2)", first)
	}
	for _, env := range got {
		if env.Source != "aws.ivs" || env.DetailType != ivsrt.DetailTypeStageChange || env.Region != "eu-west-1" || env.Account != "111122223333" {
			t.Errorf("envelope: %+v", env)
		}
	}
	if q, err := db.PendingDeliveries(t.Context(), "hook"); err != nil || len(q) != 0 {
		t.Errorf("queue after delivery: %d, %v", len(q), err)
	}
	if st := relay.Status()[0]; st.Delivered != 18 || st.Pending != 0 || st.InFlight != 0 {
		t.Errorf("status after delivery: %+v", st)
	}
}

// TestWebhookStageIsolation checks that a stage whose events fail holds
// back only its own later events.
func TestWebhookStageIsolation(t *testing.T) {
	db := openDB(t, "")
	defer db.Close()
	rcv := eventstest.NewReceiver(t, testSecret)
	rcv.Up()
	var blocked sync.Map
	rcv.SetAnswer(func(env *ivsrt.Envelope) int {
		if _, ok := blocked.Load(env.Resources[0]); ok {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	relay := startRelay(t, db, events.RelayConfig{}, webhookSink(t, "hook", rcv.URL()))
	_ = relay

	// Block stage a before its events exist: create it by hand first.
	a := ivsrt.NewStageARN("eu-west-1", "111122223333", ivsrt.NewStageID())
	blocked.Store(string(a), true)
	if err := db.CreateStage(t.Context(), &ivsrt.Stage{ARN: a, Name: "v0"}, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		name := "v" + strconv.Itoa(i)
		if _, err := db.UpdateStage(t.Context(), a, ivsrt.StageUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	others := stageChanges(t, db, 2, 3)
	got := rcv.WaitAccepted(8, 10*time.Second) // the other stages flow
	checkOrder(t, got, others, 4)
	_, tries, _ := rcv.Snapshot()
	if tries <= 8 {
		t.Errorf("%d tries in all, want a's first event retried meanwhile", tries)
	}

	blocked.Delete(string(a))
	got = rcv.WaitAccepted(12, 10*time.Second)
	checkOrder(t, got, append(others, a), 4)
}

func TestWebhookDeadLetterAndRedrive(t *testing.T) {
	db := openDB(t, "")
	defer db.Close()
	rcv := eventstest.NewReceiver(t, testSecret)
	rcv.Up()
	var failing sync.Map
	rcv.SetAnswer(func(env *ivsrt.Envelope) int {
		if _, ok := failing.Load(env.Resources[0]); ok {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	sink := webhookSink(t, "hook", rcv.URL())
	sink.RetryFor = 300 * time.Millisecond
	relay := startRelay(t, db, events.RelayConfig{}, sink)

	a := ivsrt.NewStageARN("eu-west-1", "111122223333", ivsrt.NewStageID())
	failing.Store(string(a), true)
	if err := db.CreateStage(t.Context(), &ivsrt.Stage{ARN: a, Name: "v0"}, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatal(err)
	}
	// Wait for the dead letter.
	var letters []*ivsrt.DeadLetter
	deadline := time.Now().Add(10 * time.Second)
	for len(letters) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
		var err error
		if letters, err = db.ListDeadLetters(t.Context(), "hook", ivsrt.Page{Limit: 10}); err != nil {
			t.Fatal(err)
		}
	}
	l := letters[0]
	if l.Event.StageARN != a || l.Attempts < 2 || !strings.Contains(l.LastError, "HTTP 500: answered 500") {
		t.Errorf("dead letter: %+v", l)
	}
	if l.DeadAt.Sub(l.EnqueuedAt) < sink.RetryFor {
		t.Errorf("dead after %v, want at least %v of tries", l.DeadAt.Sub(l.EnqueuedAt), sink.RetryFor)
	}
	if st := relay.Status()[0]; st.DeadLettered != 1 || st.Pending != 0 {
		t.Errorf("status: %+v", st)
	}
	// The stage's later events are not held back by the dead one.
	failing.Delete(string(a))
	name := "v1"
	if _, err := db.UpdateStage(t.Context(), a, ivsrt.StageUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	got := rcv.WaitAccepted(1, 10*time.Second)
	if got[0].Detail["stage_name"] != "v1" {
		t.Errorf("after the dead letter: got %v", got[0].Detail)
	}

	if err := relay.Redrive(t.Context(), "nope", l.Event.ID); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
		t.Errorf("Redrive of an unknown sink: %v", err)
	}
	if err := relay.Redrive(t.Context(), "hook", l.Event.ID); err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	got = rcv.WaitAccepted(2, 10*time.Second)
	if got[1].ID != l.Event.ID {
		t.Errorf("after redrive: got %s, want the dead letter %s", got[1].ID, l.Event.ID)
	}
	if letters, _ := db.ListDeadLetters(t.Context(), "", ivsrt.Page{Limit: 10}); len(letters) != 0 {
		t.Errorf("dead letters after redrive: %d", len(letters))
	}
}

func TestWebhookFilter(t *testing.T) {
	db := openDB(t, "")
	defer db.Close()
	rcv := eventstest.NewReceiver(t, testSecret)
	rcv.Up()
	stages := []ivsrt.StageARN{
		ivsrt.NewStageARN("eu-west-1", "111122223333", ivsrt.NewStageID()),
		ivsrt.NewStageARN("eu-west-1", "111122223333", ivsrt.NewStageID()),
	}
	p, err := events.ParsePattern(`{"resources": ["` + string(stages[1]) + `"], "detail": {"event_name": ["Stage Updated"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	sink := webhookSink(t, "hook", rcv.URL())
	sink.Filter = p
	relay := startRelay(t, db, events.RelayConfig{}, sink)
	for _, arn := range stages {
		if err := db.CreateStage(t.Context(), &ivsrt.Stage{ARN: arn, Name: "v0"}, nil, ivsrt.StageQuota{}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"v1", "v2"} {
			if _, err := db.UpdateStage(t.Context(), arn, ivsrt.StageUpdate{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := rcv.WaitAccepted(2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	got, _, _ = rcv.Snapshot()
	if len(got) != 2 || got[0].Detail["stage_name"] != "v1" || got[1].Detail["stage_name"] != "v2" || got[0].Resources[0] != string(stages[1]) {
		t.Errorf("filtered: got %d events, want stage 2's two updates", len(got))
	}
	last, _ := db.LastEventSeq(t.Context())
	if cursor, err := db.OpenSink(t.Context(), "hook"); err != nil || cursor != last {
		t.Errorf("cursor: got %d, %v; want %d (past the events passed over)", cursor, err, last)
	}
	if st := relay.Status()[0]; st.Pending != 0 || st.Delivered != 2 {
		t.Errorf("status: %+v", st)
	}
}

// TestRelayRestart checks that a relay started again on the same store
// delivers what the one before left, and what was written in between.
func TestRelayRestart(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	rcv := eventstest.NewReceiver(t, testSecret)
	relay := startRelay(t, db, events.RelayConfig{}, webhookSink(t, "hook", rcv.URL()))
	stages := stageChanges(t, db, 2, 2)
	// The relay takes the events in when the store wakes it; wait until
	// it has queued all six (the receiver is down, so none leaves).
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := db.PendingDeliveries(t.Context(), "hook")
		if err != nil {
			t.Fatal(err)
		}
		if len(q) >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue before close: %d after 30s, want 6", len(q))
		}
		time.Sleep(10 * time.Millisecond)
	}
	relay.Close()
	q, err := db.PendingDeliveries(t.Context(), "hook")
	if err != nil || len(q) != 6 {
		t.Fatalf("queue after close: %d, %v; want 6", len(q), err)
	}
	for _, arn := range stages { // written while no relay runs
		name := "v3"
		if _, err := db.UpdateStage(t.Context(), arn, ivsrt.StageUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	db = openDB(t, dir)
	defer db.Close()
	rcv.Up()
	startRelay(t, db, events.RelayConfig{}, webhookSink(t, "hook", rcv.URL()))
	got := rcv.WaitAccepted(8, 30*time.Second)
	checkOrder(t, got, stages, 4)
}

func TestRelayPrunes(t *testing.T) {
	db := openDB(t, "")
	defer db.Close()
	rcv := eventstest.NewReceiver(t, testSecret)
	rcv.Up()
	var hold sync.Map
	rcv.SetAnswer(func(env *ivsrt.Envelope) int {
		if _, ok := hold.Load(env.Resources[0]); ok {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	held := ivsrt.NewStageARN("eu-west-1", "111122223333", ivsrt.NewStageID())
	hold.Store(string(held), true)
	startRelay(t, db, events.RelayConfig{Retention: time.Millisecond, PruneInterval: 20 * time.Millisecond},
		webhookSink(t, "hook", rcv.URL()))
	stageChanges(t, db, 2, 1)
	if err := db.CreateStage(t.Context(), &ivsrt.Stage{ARN: held, Name: "v0"}, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatal(err)
	}
	rcv.WaitAccepted(4, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := db.ReadEvents(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 && evs[0].StageARN == held {
			break // the delivered are gone; the undelivered one stays
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not pruned: %d events left", len(evs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewRelayRefusesBadSinks(t *testing.T) {
	db := openDB(t, "")
	defer db.Close()
	w, _ := events.NewWebhook("http://127.0.0.1:1/", "s")
	for _, sinks := range [][]events.SinkConfig{
		{{Name: "", Sender: w}},
		{{Name: "a"}},
		{{Name: "a", Sender: w}, {Name: "a", Sender: w}},
	} {
		if _, err := events.NewRelay(db, events.RelayConfig{}, sinks); err == nil {
			t.Errorf("events.NewRelay(%+v): no error", sinks)
		}
	}
	for _, u := range []string{"", "ftp://x/", "/relative", "http://"} {
		if _, err := events.NewWebhook(u, "s"); err == nil {
			t.Errorf("events.NewWebhook(%q): no error", u)
		}
	}
	if _, err := events.NewWebhook("http://127.0.0.1:1/"); err == nil {
		t.Error("events.NewWebhook without a secret: no error")
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_750_000_000, 0)
	old, cur := []byte("old-secret"), []byte("new-secret")
	header := events.Sign([][]byte{cur, old}, now, body)
	if !strings.HasPrefix(header, "t=1750000000,v1=") || strings.Count(header, "v1=") != 2 {
		t.Fatalf("header %q", header)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"current secret", cur, header, body, now, nil},
		{"retiring secret", old, header, body, now, nil},
		{"a little later", cur, header, body, now.Add(4 * time.Minute), nil},
		{"wrong secret", []byte("guess"), header, body, now, events.ErrBadSignature},
		{"tampered body", cur, header, []byte(`{"id":"y"}`), now, events.ErrBadSignature},
		{"replayed later", cur, header, body, now.Add(6 * time.Minute), events.ErrStale},
		{"from the future", cur, header, body, now.Add(-6 * time.Minute), events.ErrStale},
		{"altered timestamp", cur, strings.Replace(header, "t=1750000000", "t=1750000001", 1), body, now, events.ErrBadSignature},
		{"empty", cur, "", body, now, events.ErrNoSignature},
		{"no timestamp", cur, "v1=00", body, now, events.ErrNoSignature},
		{"garbage", cur, "t=x,v1=zz", body, now, events.ErrNoSignature},
	} {
		if err := events.VerifySignature(tc.secret, tc.header, tc.body, tc.at, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestWebhookRedactsCredentials(t *testing.T) {
	if got := events.Redact("https://user:pw@example.com/hook?token=abc"); got != "https://example.com/hook?…" {
		t.Errorf("Redact: %q", got)
	}
	w, err := events.NewWebhook("http://user:pw@127.0.0.1:1/hook?token=abc", "s")
	if err != nil {
		t.Fatal(err)
	}
	env := &ivsrt.Envelope{ID: "x"}
	err = w.Send(t.Context(), &events.Attempt{Envelope: env, Body: []byte("{}"), Number: 1})
	if err == nil || strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "abc") {
		t.Errorf("error of an unreachable webhook: %v", err)
	}
}

// TestWebhookRedirectIsFailure: a receiver cannot bounce events elsewhere:
// a redirect is not followed, it is a failed try.
func TestWebhookRedirectIsFailure(t *testing.T) {
	elsewhere := false
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere = true }))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	w, err := events.NewWebhook(redirector.URL, "s")
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(t.Context(), &events.Attempt{Envelope: &ivsrt.Envelope{ID: "x"}, Body: []byte("{}"), Number: 1})
	if err == nil || !strings.Contains(err.Error(), "HTTP 307") || elsewhere {
		t.Errorf("a redirect: got %v, followed %v; want a failure, not followed", err, elsewhere)
	}
}

// logLines is a slog handler's output, safe for concurrent use.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

type lags struct {
	mu  sync.Mutex
	got map[string][]time.Duration
}

func (l *lags) ObserveDelivery(sink string, lag time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got[sink] = append(l.got[sink], lag)
}

// TestFailuresLoggedOncePerMinute: a receiver that is down shows in the log
// at warning level at once, then not on every retry; deliveries, once it
// is up, are told to the observer with their lag.
func TestFailuresLoggedOncePerMinute(t *testing.T) {
	db := openDB(t, "")
	defer db.Close()
	rcv := eventstest.NewReceiver(t, testSecret)
	var out logLines
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	observed := &lags{got: map[string][]time.Duration{}}
	r, err := events.NewRelay(db, events.RelayConfig{Region: "eu-west-1", AccountID: "111122223333", PollInterval: 50 * time.Millisecond},
		[]events.SinkConfig{webhookSink(t, "hook", rcv.URL())}, events.WithRelayLogger(logger), events.WithDeliveryObserver(observed))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	stageChanges(t, db, 1, 2) // 3 events
	deadline := time.Now().Add(10 * time.Second)
	for r.Status()[0].Failed < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("failed tries: %+v", r.Status()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := out.count("delivery failed"); n != 1 {
		t.Errorf("%d warnings after %d failed tries, want 1:\n%s", n, r.Status()[0].Failed, out.b.String())
	}
	rcv.Up()
	rcv.WaitAccepted(3, 15*time.Second)
	deadline = time.Now().Add(5 * time.Second)
	for {
		observed.mu.Lock()
		got := append([]time.Duration(nil), observed.got["hook"]...)
		observed.mu.Unlock()
		if len(got) == 3 {
			if got[0] <= 0 {
				t.Errorf("lag of the first delivery %v, want the time it waited", got[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries observed: %v, want 3", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
