package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
	"github.com/ivsrt/ivsrt/store/storetest"
)

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testContext is the test's context, ended after d at the latest.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestHeartbeat(t *testing.T) {
	db := openTestDB(t, pgtest.Start(t))
	clock := storetest.NewClock(epoch)
	db.Now = clock.Now
	ctx := testContext(t, 30*time.Second)

	a := &ivsrt.Node{ID: "a", URL: "http://10.0.0.1:8080", Participants: 3, Subscriptions: 40, CPU: 0.25,
		StartedAt: epoch.Add(-time.Hour + 1234567*time.Nanosecond).In(time.FixedZone("X", 3600))}
	if err := db.Heartbeat(ctx, a); err != nil {
		t.Fatalf("Heartbeat a: %v", err)
	}
	if !a.HeartbeatAt.Equal(epoch) {
		t.Errorf("HeartbeatAt of a: got %v, want %v", a.HeartbeatAt, epoch)
	}
	clock.Advance(5*time.Second + 1500*time.Microsecond)
	b := &ivsrt.Node{ID: "b", URL: "http://10.0.0.2:8080", StartedAt: epoch}
	if err := db.Heartbeat(ctx, b); err != nil {
		t.Fatalf("Heartbeat b: %v", err)
	}

	list := func(aliveSince time.Time) []*ivsrt.Node {
		t.Helper()
		nodes, err := db.ListNodes(ctx, aliveSince)
		if err != nil {
			t.Fatalf("ListNodes: %v", err)
		}
		return nodes
	}
	nodes := list(epoch)
	if len(nodes) != 2 || nodes[0].ID != "a" || nodes[1].ID != "b" {
		t.Fatalf("ListNodes since the first heartbeat: got %v, want a and b", nodes)
	}
	want := ivsrt.Node{ID: "a", URL: "http://10.0.0.1:8080", Participants: 3, Subscriptions: 40, CPU: 0.25,
		StartedAt: epoch.Add(-time.Hour + time.Millisecond), HeartbeatAt: epoch}
	if got := *nodes[0]; got != want {
		t.Errorf("node a: got %+v, want %+v", got, want)
	}
	if got, want := nodes[1].HeartbeatAt, epoch.Add(5*time.Second+time.Millisecond); got != want {
		t.Errorf("heartbeat of b: got %v, want %v (milliseconds, UTC)", got, want)
	}
	if nodes := list(epoch.Add(time.Millisecond)); len(nodes) != 1 || nodes[0].ID != "b" {
		t.Errorf("ListNodes after a's heartbeat: got %v, want b", nodes)
	}

	// A new heartbeat replaces what the node reported before.
	clock.Advance(time.Second)
	a.URL, a.Participants, a.Subscriptions, a.CPU, a.Draining = "http://10.0.0.9:8080", 7, 300, 1.5, true
	if err := db.Heartbeat(ctx, a); err != nil {
		t.Fatalf("Heartbeat a again: %v", err)
	}
	nodes = list(clock.Now().Add(-time.Millisecond))
	if len(nodes) != 1 || nodes[0].ID != "a" || nodes[0].URL != a.URL || nodes[0].Participants != 7 || nodes[0].Subscriptions != 300 || nodes[0].CPU != 1.5 ||
		!nodes[0].Draining || nodes[0].HeartbeatAt != ms(clock.Now()) {
		t.Errorf("ListNodes after a's second heartbeat: got %+v", nodes)
	}
	if nodes := list(clock.Now().Add(time.Second)); len(nodes) != 0 {
		t.Errorf("ListNodes in the future: got %v, want none", nodes)
	}
}

// TestClaimStageHostConcurrent has many nodes, on two DBs, claim the same
// stage at once: one wins, and all are told it did.
func TestClaimStageHostConcurrent(t *testing.T) {
	dsn := pgtest.Start(t)
	dbs := []*DB{openTestDB(t, dsn), openTestDB(t, dsn)}
	ctx := testContext(t, 30*time.Second)
	stage := newARN()
	until := time.Now().Add(time.Minute)

	const callers = 20
	hosts := make([]*ivsrt.StageHost, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			hosts[i], errs[i] = dbs[i%2].ClaimStageHost(ctx, stage, fmt.Sprint("node-", i), until)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ClaimStageHost %d: %v", i, err)
		}
	}
	winner := *hosts[0]
	if winner.StageARN != stage || winner.LeaseUntil != ms(until) {
		t.Errorf("host: got %+v, want stage %s until %v", winner, stage, ms(until))
	}
	for i, h := range hosts {
		if *h != winner {
			t.Errorf("caller %d was told %+v, caller 0 %+v", i, *h, winner)
		}
	}
	got, err := dbs[1].GetStageHost(ctx, stage)
	if err != nil || *got != winner {
		t.Errorf("GetStageHost: got %v, %v; want %+v", got, err, winner)
	}
}

func TestClaimStageHostLease(t *testing.T) {
	db := openTestDB(t, pgtest.Start(t))
	clock := storetest.NewClock(epoch)
	db.Now = clock.Now
	ctx := testContext(t, 30*time.Second)
	stage := newARN()

	if _, err := db.GetStageHost(ctx, stage); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
		t.Fatalf("GetStageHost before any claim: got %v, want ENOTFOUND", err)
	}
	claim := func(node string, until time.Time, wantNode string, wantUntil time.Time) {
		t.Helper()
		h, err := db.ClaimStageHost(ctx, stage, node, until)
		if err != nil {
			t.Fatalf("ClaimStageHost by %s: %v", node, err)
		}
		want := ivsrt.StageHost{StageARN: stage, NodeID: wantNode, LeaseUntil: wantUntil}
		if *h != want {
			t.Errorf("ClaimStageHost by %s at %v: got %+v, want %+v", node, clock.Now(), *h, want)
		}
	}
	claim("a", epoch.Add(10*time.Second+time.Microsecond), "a", epoch.Add(10*time.Second))
	claim("b", epoch.Add(30*time.Second), "a", epoch.Add(10*time.Second))
	// The host extends its own lease, even after it has run out.
	clock.Set(epoch.Add(15 * time.Second))
	claim("a", epoch.Add(20*time.Second), "a", epoch.Add(20*time.Second))
	// Up to the last millisecond of the lease nobody else gets the stage.
	clock.Set(epoch.Add(20 * time.Second))
	claim("b", epoch.Add(50*time.Second), "a", epoch.Add(20*time.Second))
	clock.Set(epoch.Add(20*time.Second + time.Millisecond))
	claim("b", epoch.Add(50*time.Second), "b", epoch.Add(50*time.Second))
	claim("a", epoch.Add(60*time.Second), "b", epoch.Add(50*time.Second))

	h, err := db.GetStageHost(ctx, stage)
	if err != nil || h.NodeID != "b" || h.LeaseUntil.Location() != time.UTC {
		t.Errorf("GetStageHost: got %+v, %v; want b, in UTC", h, err)
	}
}

func TestRenewAndReleaseStageHosts(t *testing.T) {
	db := openTestDB(t, pgtest.Start(t))
	clock := storetest.NewClock(epoch)
	db.Now = clock.Now
	ctx := testContext(t, 30*time.Second)
	s1, s2, s3, s4 := newARN(), newARN(), newARN(), newARN()
	for _, c := range []struct {
		stage ivsrt.StageARN
		node  string
	}{{s1, "a"}, {s2, "a"}, {s3, "b"}} {
		if _, err := db.ClaimStageHost(ctx, c.stage, c.node, epoch.Add(10*time.Second)); err != nil {
			t.Fatalf("ClaimStageHost: %v", err)
		}
	}
	host := func(stage ivsrt.StageARN) *ivsrt.StageHost {
		t.Helper()
		h, err := db.GetStageHost(ctx, stage)
		if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
			return nil
		} else if err != nil {
			t.Fatalf("GetStageHost: %v", err)
		}
		return h
	}

	// Renewal works after the lease ran out, while nobody took the stage.
	clock.Set(epoch.Add(time.Minute))
	until := epoch.Add(2 * time.Minute)
	lost, err := db.RenewStageHosts(ctx, "a", []ivsrt.StageARN{s1, s2, s3, s4}, until)
	if err != nil {
		t.Fatalf("RenewStageHosts: %v", err)
	}
	if want := []ivsrt.StageARN{s3, s4}; !slices.Equal(lost, want) {
		t.Errorf("lost: got %v, want %v", lost, want)
	}
	for _, s := range []ivsrt.StageARN{s1, s2} {
		if h := host(s); h == nil || h.NodeID != "a" || h.LeaseUntil != until {
			t.Errorf("host of %s after renewal: got %+v, want a until %v", s, h, until)
		}
	}
	if h := host(s3); h == nil || h.NodeID != "b" || h.LeaseUntil != epoch.Add(10*time.Second) {
		t.Errorf("host of %s, not a's: got %+v, want b's lease unchanged", s3, h)
	}
	if lost, err := db.RenewStageHosts(ctx, "a", nil, until); err != nil || len(lost) != 0 {
		t.Errorf("RenewStageHosts of nothing: got %v, %v", lost, err)
	}

	// Only the host releases a stage.
	if err := db.ReleaseStageHost(ctx, s1, "b"); err != nil {
		t.Fatalf("ReleaseStageHost by b: %v", err)
	}
	if h := host(s1); h == nil || h.NodeID != "a" {
		t.Errorf("host of %s after b released it: got %+v, want a", s1, h)
	}
	if err := db.ReleaseStageHost(ctx, s1, "a"); err != nil {
		t.Fatalf("ReleaseStageHost by a: %v", err)
	}
	if h := host(s1); h != nil {
		t.Errorf("host of %s after a released it: got %+v, want none", s1, h)
	}
	if err := db.ReleaseStageHost(ctx, s1, "a"); err != nil {
		t.Errorf("ReleaseStageHost again: %v", err)
	}
	lost, err = db.RenewStageHosts(ctx, "a", []ivsrt.StageARN{s1, s2}, until)
	if err != nil || !slices.Equal(lost, []ivsrt.StageARN{s1}) {
		t.Errorf("RenewStageHosts after release: got %v, %v; want [%s]", lost, err, s1)
	}
	// A released stage is anyone's.
	if h, err := db.ClaimStageHost(ctx, s1, "b", until); err != nil || h.NodeID != "b" {
		t.Errorf("ClaimStageHost after release: got %+v, %v; want b", h, err)
	}
}

func TestTakeOrphanedStages(t *testing.T) {
	db := openTestDB(t, pgtest.Start(t))
	clock := storetest.NewClock(epoch)
	db.Now = clock.Now
	ctx := testContext(t, 30*time.Second)

	for _, id := range []string{"dead", "alive"} {
		if err := db.Heartbeat(ctx, &ivsrt.Node{ID: id, StartedAt: epoch}); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
	}
	claims := []struct {
		node  string
		until time.Duration
	}{
		{"dead", 10 * time.Second},         // orphaned
		{"dead", 100 * time.Second},        // lease still live
		{"alive", 10 * time.Second},        // lease ran out, but its node lives
		{"unknown", 10 * time.Second},      // orphaned: no heartbeat ever
		{"dead", 59999 * time.Millisecond}, // orphaned by a millisecond
		{"dead", time.Minute},              // runs out at now, not before
	}
	stages := make([]ivsrt.StageARN, len(claims))
	for i, c := range claims {
		stages[i] = newARN()
		if _, err := db.ClaimStageHost(ctx, stages[i], c.node, epoch.Add(c.until)); err != nil {
			t.Fatalf("ClaimStageHost: %v", err)
		}
	}
	now := clock.Advance(time.Minute)
	if err := db.Heartbeat(ctx, &ivsrt.Node{ID: "alive", StartedAt: epoch}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}

	taken, err := db.TakeOrphanedStages(ctx, now, now.Add(-30*time.Second))
	if err != nil {
		t.Fatalf("TakeOrphanedStages: %v", err)
	}
	want := []*ivsrt.StageHost{
		{StageARN: stages[0], NodeID: "dead", LeaseUntil: epoch.Add(10 * time.Second)},
		{StageARN: stages[3], NodeID: "unknown", LeaseUntil: epoch.Add(10 * time.Second)},
		{StageARN: stages[4], NodeID: "dead", LeaseUntil: epoch.Add(59999 * time.Millisecond)},
	}
	slices.SortFunc(want, func(a, b *ivsrt.StageHost) int { return strings.Compare(string(a.StageARN), string(b.StageARN)) })
	if !slices.EqualFunc(taken, want, func(a, b *ivsrt.StageHost) bool { return *a == *b }) {
		t.Errorf("taken: got %v, want %v", hostList(taken), hostList(want))
	}
	for _, i := range []int{0, 3, 4} {
		if _, err := db.GetStageHost(ctx, stages[i]); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
			t.Errorf("GetStageHost of a taken stage: got %v, want ENOTFOUND", err)
		}
	}
	if taken, err := db.TakeOrphanedStages(ctx, now, now.Add(-30*time.Second)); err != nil || len(taken) != 0 {
		t.Errorf("TakeOrphanedStages again: got %v, %v; want none", hostList(taken), err)
	}
}

// TestTakeNodeStages: a node takes back every placement it holds, live
// lease or not, heartbeat or not, and only its own.
func TestTakeNodeStages(t *testing.T) {
	db := openTestDB(t, pgtest.Start(t))
	clock := storetest.NewClock(epoch)
	db.Now = clock.Now
	ctx := testContext(t, 30*time.Second)

	if err := db.Heartbeat(ctx, &ivsrt.Node{ID: "a", StartedAt: epoch}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	claims := []struct {
		node  string
		until time.Duration
	}{
		{"a", time.Minute},      // live lease
		{"b", time.Minute},      // another node's
		{"a", -time.Second},     // lease ran out
		{"a-2", time.Minute},    // a node whose id starts with a's
		{"a", 10 * time.Minute}, // live lease
	}
	stages := make([]ivsrt.StageARN, len(claims))
	for i, c := range claims {
		stages[i] = newARN()
		if _, err := db.ClaimStageHost(ctx, stages[i], c.node, epoch.Add(c.until)); err != nil {
			t.Fatalf("ClaimStageHost: %v", err)
		}
	}

	taken, err := db.TakeNodeStages(ctx, "a")
	if err != nil {
		t.Fatalf("TakeNodeStages: %v", err)
	}
	want := []*ivsrt.StageHost{
		{StageARN: stages[0], NodeID: "a", LeaseUntil: epoch.Add(time.Minute)},
		{StageARN: stages[2], NodeID: "a", LeaseUntil: epoch.Add(-time.Second)},
		{StageARN: stages[4], NodeID: "a", LeaseUntil: epoch.Add(10 * time.Minute)},
	}
	slices.SortFunc(want, func(a, b *ivsrt.StageHost) int { return strings.Compare(string(a.StageARN), string(b.StageARN)) })
	if !slices.EqualFunc(taken, want, func(a, b *ivsrt.StageHost) bool { return *a == *b }) {
		t.Errorf("taken: got %v, want %v", hostList(taken), hostList(want))
	}
	for i, c := range claims {
		h, err := db.GetStageHost(ctx, stages[i])
		if c.node == "a" {
			if ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
				t.Errorf("GetStageHost of a taken stage: got %+v, %v; want ENOTFOUND", h, err)
			}
		} else if err != nil || h.NodeID != c.node {
			t.Errorf("GetStageHost of %s's stage: got %+v, %v", c.node, h, err)
		}
	}
	if taken, err := db.TakeNodeStages(ctx, "a"); err != nil || len(taken) != 0 {
		t.Errorf("TakeNodeStages again: got %v, %v; want none", hostList(taken), err)
	}
	// A taken stage is anyone's.
	if h, err := db.ClaimStageHost(ctx, stages[0], "b", epoch.Add(time.Minute)); err != nil || h.NodeID != "b" {
		t.Errorf("ClaimStageHost of a taken stage: got %+v, %v; want b", h, err)
	}
}

// TestTakeOrphanedStagesConcurrent has survivors on two DBs take the
// stages of a dead node at once: each stage goes to one of them.
func TestTakeOrphanedStagesConcurrent(t *testing.T) {
	dsn := pgtest.Start(t)
	dbs := []*DB{openTestDB(t, dsn), openTestDB(t, dsn)}
	ctx := testContext(t, 30*time.Second)
	now := time.Now()
	const orphans = 200
	for range orphans {
		if _, err := dbs[0].ClaimStageHost(ctx, newARN(), "dead", now.Add(-time.Minute)); err != nil {
			t.Fatalf("ClaimStageHost: %v", err)
		}
	}

	const callers = 6
	taken := make([][]*ivsrt.StageHost, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			taken[i], errs[i] = dbs[i%2].TakeOrphanedStages(ctx, now, now.Add(-time.Minute))
		})
	}
	close(start)
	wg.Wait()
	seen := map[ivsrt.StageARN]int{}
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("TakeOrphanedStages %d: %v", i, errs[i])
		}
		for _, h := range taken[i] {
			if j, ok := seen[h.StageARN]; ok {
				t.Errorf("stage %s taken by callers %d and %d", h.StageARN, j, i)
			}
			seen[h.StageARN] = i
		}
	}
	if len(seen) != orphans {
		t.Errorf("taken: got %d stages, want %d", len(seen), orphans)
	}
}

func TestSharedSecret(t *testing.T) {
	dsn := pgtest.Start(t)
	dbs := []*DB{openTestDB(t, dsn), openTestDB(t, dsn)}
	ctx := testContext(t, 30*time.Second)
	var created atomic.Int32
	create := func() ([]byte, error) {
		created.Add(1)
		b := make([]byte, 32)
		rand.Read(b)
		return b, nil
	}

	first, err := dbs[0].SharedSecret(ctx, "token-key", create)
	if err != nil || len(first) != 32 {
		t.Fatalf("SharedSecret: got %x, %v", first, err)
	}
	for i, db := range dbs {
		got, err := db.SharedSecret(ctx, "token-key", create)
		if err != nil || string(got) != string(first) {
			t.Errorf("SharedSecret on DB %d: got %x, %v; want %x", i, got, err, first)
		}
	}
	if n := created.Load(); n != 1 {
		t.Errorf("create called %d times, want 1", n)
	}

	// Nodes starting at once may all create one; they end up with the same.
	const callers = 10
	got := make([][]byte, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			got[i], errs[i] = dbs[i%2].SharedSecret(ctx, "race", create)
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || string(got[i]) != string(got[0]) || len(got[0]) != 32 {
			t.Errorf("SharedSecret %d: got %x, %v; caller 0 got %x", i, got[i], errs[i], got[0])
		}
	}
	if string(got[0]) == string(first) {
		t.Error("two secrets of different names are the same")
	}

	// A failed create stores nothing.
	boom := errors.New("no entropy")
	if _, err := dbs[0].SharedSecret(ctx, "failing", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("SharedSecret with a failing create: got %v, want %v", err, boom)
	}
	if got, err := dbs[1].SharedSecret(ctx, "failing", func() ([]byte, error) { return []byte("x"), nil }); err != nil || string(got) != "x" {
		t.Errorf("SharedSecret after a failed create: got %q, %v; want x", got, err)
	}
}

func TestTryLead(t *testing.T) {
	dsn := pgtest.Start(t)
	one, two := openTestDB(t, dsn), openTestDB(t, dsn)
	ctx := testContext(t, 60*time.Second)
	tryLead := func(db *DB, name string) (bool, <-chan struct{}, func()) {
		t.Helper()
		ok, lost, release, err := db.TryLead(ctx, name)
		if err != nil {
			t.Fatalf("TryLead %s: %v", name, err)
		}
		if ok {
			t.Cleanup(release)
		}
		return ok, lost, release
	}

	ok, lost1, release1 := tryLead(one, "relay")
	if !ok {
		t.Fatal("first TryLead: not leading")
	}
	if ok, _, _ := tryLead(two, "relay"); ok {
		t.Fatal("TryLead while another holds the lead: leading")
	}
	// Another name is another lock, and the holder cannot take it twice
	// either.
	if ok, _, release := tryLead(two, "pruner"); !ok {
		t.Error("TryLead of another name: not leading")
	} else {
		release()
	}
	if ok, _, _ := tryLead(one, "relay"); ok {
		t.Error("TryLead of a lead the same DB holds: leading")
	}

	release1()
	release1()
	select {
	case <-lost1:
		t.Error("lost closed by release")
	default:
	}
	ok, lost2, release2 := tryLead(two, "relay")
	if !ok {
		t.Fatal("TryLead after release: not leading")
	}

	// When its connection breaks, the holder learns it lost the lead, and
	// the server lets another take it.
	var killed int
	err := one.pool.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'ivsrt-lead-relay'`).Scan(&killed)
	// (A connection given up a moment ago may still be listed, closing.)
	if err != nil || killed < 1 {
		t.Fatalf("terminate the holder's connection: killed %d, %v", killed, err)
	}
	select {
	case <-lost2:
	case <-time.After(3 * leadCheckEvery):
		t.Fatal("lost not closed after the holder's connection was terminated")
	}
	release2() // after the loss: returns, does nothing
	if ok, _, _ := tryLead(one, "relay"); !ok {
		t.Error("TryLead after the holder's connection broke: not leading")
	}
}

// TestTryLeadConcurrent has many callers on two DBs try for the same lead
// at once: one gets it.
func TestTryLeadConcurrent(t *testing.T) {
	dsn := pgtest.Start(t)
	dbs := []*DB{openTestDB(t, dsn), openTestDB(t, dsn)}
	ctx := testContext(t, 30*time.Second)
	const callers = 10
	var (
		wg      sync.WaitGroup
		leaders atomic.Int32
		start   = make(chan struct{})
	)
	for i := range callers {
		wg.Go(func() {
			<-start
			ok, _, release, err := dbs[i%2].TryLead(ctx, "relay")
			if err != nil {
				t.Errorf("TryLead: %v", err)
			} else if ok {
				leaders.Add(1)
				t.Cleanup(release)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := leaders.Load(); n != 1 {
		t.Errorf("leaders: got %d, want 1", n)
	}
}

// TestCloseEndsLeads checks that closing a DB gives up its leads, as lost.
func TestCloseEndsLeads(t *testing.T) {
	dsn := pgtest.Start(t)
	db, other := openTestDB(t, dsn), openTestDB(t, dsn)
	ctx := testContext(t, 30*time.Second)
	ok, lost, release, err := db.TryLead(ctx, "relay")
	if err != nil || !ok {
		t.Fatalf("TryLead: %v, %v", ok, err)
	}
	db.Close()
	select {
	case <-lost:
	default:
		t.Error("lost not closed by Close")
	}
	release()
	if ok, _, release, err := other.TryLead(ctx, "relay"); err != nil || !ok {
		t.Errorf("TryLead after the holder closed: got %v, %v; want leading", ok, err)
	} else {
		release()
	}
	if ok, _, _, err := db.TryLead(ctx, "pruner"); err == nil || ok {
		t.Errorf("TryLead on a closed DB: got %v, %v; want an error", ok, err)
	}
}

func hostList(hosts []*ivsrt.StageHost) []ivsrt.StageHost {
	list := make([]ivsrt.StageHost, len(hosts))
	for i, h := range hosts {
		list[i] = *h
	}
	return list
}
