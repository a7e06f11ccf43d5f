package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/internal/natstest"
	"github.com/ivsrt/ivsrt/store/postgres"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
)

// TestStartEndsPreviousRun starts a node under the id of a node that
// crashed a moment ago (its heartbeat recent, its leases live): the node
// ends the sessions of the stages placed on it before it serves, and
// leaves the other nodes' alone. A second process under the id of the
// running node is refused and takes nothing; once the node closes, its id
// is free again.
func TestStartEndsPreviousRun(t *testing.T) {
	db := openTestDB(t, pgtest.Start(t))
	natsURL := natstest.Start(t)
	ctx := testContext(t)
	now := time.Now()

	stage := func(participants ...ivsrt.ParticipantID) *ivsrt.Stage {
		t.Helper()
		st := &ivsrt.Stage{ARN: ivsrt.NewStageARN("us-east-1", "123456789012", ivsrt.NewStageID())}
		if err := db.CreateStage(ctx, st, nil, ivsrt.StageQuota{}); err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		for _, p := range participants {
			if err := db.RecordEvent(ctx, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: p}); err != nil {
				t.Fatalf("RecordEvent: %v", err)
			}
		}
		st, err := db.GetStage(ctx, st.ARN)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	place := func(st *ivsrt.Stage, node string, until time.Time) {
		t.Helper()
		if h, err := db.ClaimStageHost(ctx, st.ARN, node, until); err != nil || h.NodeID != node {
			t.Fatalf("ClaimStageHost: %+v, %v", h, err)
		}
	}
	p1, p2, p3 := ivsrt.NewParticipantID(), ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	ghost := stage(p1, p2)                       // hosted by x's previous run
	empty := stage()                             // placed on x, nobody in it
	expired := stage(p3)                         // placed on x, lease run out
	elsewhere := stage(ivsrt.NewParticipantID()) // hosted by y
	place(ghost, "x", now.Add(time.Minute))
	place(empty, "x", now.Add(time.Minute))
	place(expired, "x", now.Add(-time.Second))
	place(elsewhere, "y", now.Add(time.Minute))
	for _, id := range []string{"x", "y"} {
		if err := db.Heartbeat(ctx, &ivsrt.Node{ID: id, URL: "http://127.0.0.1:1", StartedAt: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}

	media := &emptyMedia{}
	x := newTestNode(t, "x", db, natsURL)
	if err := x.Start(ctx, media); err != nil {
		t.Fatalf("Start: %v", err)
	}
	for _, st := range []*ivsrt.Stage{ghost, expired} {
		s, err := db.GetStageSession(ctx, st.ARN, st.ActiveSessionID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Active() {
			t.Errorf("session %s of the previous run: still active", s.ID)
		}
		ps, _, err := db.ListParticipants(ctx, st.ARN, st.ActiveSessionID, ivsrt.ParticipantFilter{}, ivsrt.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.State != ivsrt.ParticipantDisconnected {
				t.Errorf("participant %s of the previous run: state %s, want DISCONNECTED", p.ID, p.State)
			}
		}
		if got, err := db.GetStage(ctx, st.ARN); err != nil || got.ActiveSessionID != "" {
			t.Errorf("stage of the previous run: active session %q, %v; want none", got.ActiveSessionID, err)
		}
	}
	if got, want := media.failedSessions(), []ivsrt.SessionID{ghost.ActiveSessionID, expired.ActiveSessionID}; !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("recordings failed in sessions %v, want %v", got, want)
	}
	for _, st := range []*ivsrt.Stage{ghost, empty, expired} {
		if h, err := db.GetStageHost(ctx, st.ARN); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
			t.Errorf("host of a stage of the previous run: got %+v, %v; want none", h, err)
		}
	}
	if h, err := db.GetStageHost(ctx, elsewhere.ARN); err != nil || h.NodeID != "y" {
		t.Errorf("host of y's stage: got %+v, %v; want y", h, err)
	}
	if got, err := db.GetStage(ctx, elsewhere.ARN); err != nil || got.ActiveSessionID != elsewhere.ActiveSessionID {
		t.Errorf("y's stage: active session %q, %v; want %s", got.ActiveSessionID, err, elsewhere.ActiveSessionID)
	}

	// x hosts a stage now; a second process as x is refused, and leaves it.
	place(empty, "x", now.Add(time.Minute))
	impostor := newTestNode(t, "x", db, natsURL)
	err := impostor.Start(ctx, &emptyMedia{})
	if !errors.Is(err, ErrNodeIDInUse) || !strings.Contains(err.Error(), "node id x is in use") {
		t.Errorf("Start under the id of a running node: got %v, want ErrNodeIDInUse", err)
	}
	if h, err := db.GetStageHost(ctx, empty.ARN); err != nil || h.NodeID != "x" {
		t.Errorf("host of x's stage after the refused start: got %+v, %v; want x", h, err)
	}
	if err := x.Healthy(); err != nil {
		t.Errorf("x after the refused start: %v", err)
	}

	// Closed, x lets go of its id: it may start again.
	x.Close()
	again := newTestNode(t, "x", db, natsURL)
	if err := again.Start(ctx, &emptyMedia{}); err != nil {
		t.Errorf("Start after the node closed: %v", err)
	}
}

// TestNodeTakesItsIDBack breaks the connection holding a node's lock on
// its id: while another holds the lock, the node is unhealthy; once it is
// free, the node takes it back.
func TestNodeTakesItsIDBack(t *testing.T) {
	dsn := pgtest.Start(t)
	db := openTestDB(t, dsn)
	ctx := testContext(t)
	x := newTestNode(t, "x", db, natstest.Start(t))
	if err := x.Start(ctx, &emptyMedia{}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	if err := conn.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, "ivsrt-lead-"+idLockName("x")).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate the connection holding x's id: %d, %v", killed, err)
	}
	var release func()
	waitFor(t, "taking x's id from elsewhere", func() error {
		ok, _, r, err := db.TryLead(ctx, idLockName("x"))
		if err != nil || !ok {
			return fmt.Errorf("%v, %v", ok, err)
		}
		release = r
		return nil
	})
	waitFor(t, "x unhealthy", func() error {
		if err := x.Healthy(); !errors.Is(err, ErrNodeIDInUse) {
			return fmt.Errorf("Healthy: %v", err)
		}
		return nil
	})
	release()
	waitFor(t, "x healthy again", x.Healthy)
}

// waitFor retries check until it returns nil, for 10 s at most.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openTestDB(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(testContext(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newTestNode(t *testing.T, id string, store Store, natsURL string) *Node {
	t.Helper()
	n, err := New(Config{NodeID: id, URL: "http://127.0.0.1:1", NATSURL: natsURL,
		LeaseTTL: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond, DeadAfter: time.Second}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sorted[S ~[]E, E ~string](s S) S {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// emptyMedia is a media plane with nobody connected, which notes the
// sessions whose recordings it was told to fail.
type emptyMedia struct {
	mu     sync.Mutex
	failed []ivsrt.SessionID
}

func (m *emptyMedia) DisconnectParticipant(context.Context, ivsrt.StageARN, ivsrt.ParticipantID, string) error {
	return nil
}
func (m *emptyMedia) CloseStage(context.Context, ivsrt.StageARN) error   { return nil }
func (m *emptyMedia) HostedStages() []ivsrt.StageARN                     { return nil }
func (m *emptyMedia) ParticipantCount() int                              { return 0 }
func (m *emptyMedia) EvictStage(context.Context, ivsrt.StageARN, string) {}
func (m *emptyMedia) FailInterruptedRecordings(_ context.Context, _ ivsrt.StageARN, s ivsrt.SessionID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed = append(m.failed, s)
	return nil
}

func (m *emptyMedia) failedSessions() []ivsrt.SessionID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.failed)
}
