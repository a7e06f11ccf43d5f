package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// replicaJoin records the JOINED of a replica of id from source's session
// in dest, as the media plane does before it starts the replication, and
// returns the destination session.
func (e *env) replicaJoin(t *testing.T, source ivsrt.StageARN, sourceSession ivsrt.SessionID, dest ivsrt.StageARN, id ivsrt.ParticipantID) ivsrt.SessionID {
	t.Helper()
	return e.record(t, &ivsrt.Event{
		StageARN: dest, Name: ivsrt.EventJoined, ParticipantID: id, Time: e.clock.Advance(time.Second),
		UserID: "alice", Attributes: map[string]string{"role": "guest"},
		Replica: true, SourceStageARN: source, SourceSessionID: sourceSession,
	}).SessionID
}

func checkParticipantReplication(t *testing.T, what string, p *ivsrt.Participant, typ ivsrt.ReplicationType, state ivsrt.ReplicationState,
	source ivsrt.StageARN, session ivsrt.SessionID) {
	t.Helper()
	if p.ReplicationType != typ || p.ReplicationState != state || p.SourceStageARN != source || p.SourceSessionID != session {
		t.Errorf("%s: replication got %q %q %q %q, want %q %q %q %q", what, p.ReplicationType, p.ReplicationState,
			p.SourceStageARN, p.SourceSessionID, typ, state, source, session)
	}
}

func (e *env) participantEvents(t *testing.T, arn ivsrt.StageARN, session ivsrt.SessionID, id ivsrt.ParticipantID) []*ivsrt.Event {
	t.Helper()
	evs, _, err := e.s.ListParticipantEvents(e.ctx, arn, session, id, ivsrt.Page{Limit: 100})
	if err != nil {
		t.Fatalf("ListParticipantEvents: %v", err)
	}
	return evs
}

func (e *env) replicas(t *testing.T, source ivsrt.StageARN, id ivsrt.ParticipantID) []*ivsrt.ParticipantReplication {
	t.Helper()
	var all []*ivsrt.ParticipantReplication
	page := ivsrt.Page{Limit: 1}
	for {
		rs, next, err := e.s.ListParticipantReplicas(e.ctx, source, id, page)
		if err != nil {
			t.Fatalf("ListParticipantReplicas: %v", err)
		}
		if len(rs) > page.Limit {
			t.Fatalf("ListParticipantReplicas: %d on a page of %d", len(rs), page.Limit)
		}
		all = append(all, rs...)
		if next == "" {
			return all
		}
		page.After = next
	}
}

func testReplication(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	src, dst := e.createStage(t, "source", nil), e.createStage(t, "destination", nil)
	a, viewer := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	sa := e.join(t, src.ARN, a, "alice").SessionID
	e.event(t, src.ARN, ivsrt.EventPublishStarted, a)
	e.join(t, dst.ARN, viewer, "viewer")

	// The replica joins the destination's session, a replica from the
	// moment it joins, with no replication state until the start.
	sb := e.replicaJoin(t, src.ARN, sa, dst.ARN, a)
	checkParticipantReplication(t, "replica joined", e.getParticipant(t, dst.ARN, sb, a), ivsrt.ReplicationReplica, "", src.ARN, sa)
	checkParticipantReplication(t, "source before", e.getParticipant(t, src.ARN, sa, a), "", "", "", "")

	before := e.lastSeq(t)
	started := e.clock.Advance(time.Second)
	r := &ivsrt.ParticipantReplication{SourceStageARN: src.ARN, ParticipantID: a, DestinationStageARN: dst.ARN,
		DestinationSessionID: sb, ReconnectWindowSeconds: 30}
	if err := e.s.StartParticipantReplication(e.ctx, r, ivsrt.ReplicationQuota{MaxReplicasPerParticipant: 2}); err != nil {
		t.Fatalf("StartParticipantReplication: %v", err)
	}
	if r.SourceSessionID != sa || r.State != ivsrt.ReplicationActive || !r.EndTime.IsZero() {
		t.Errorf("started: got session %s state %s end %v, want %s ACTIVE and no end", r.SourceSessionID, r.State, r.EndTime, sa)
	}
	checkTime(t, "StartTime", r.StartTime, started)
	checkParticipantReplication(t, "source", e.getParticipant(t, src.ARN, sa, a), ivsrt.ReplicationSource, ivsrt.ReplicationActive, "", "")
	checkParticipantReplication(t, "replica", e.getParticipant(t, dst.ARN, sb, a), ivsrt.ReplicationReplica, ivsrt.ReplicationActive, src.ARN, sa)
	checkParticipantReplication(t, "viewer", e.getParticipant(t, dst.ARN, sb, viewer), "", "", "", "")
	listed, _, err := e.s.ListParticipants(e.ctx, dst.ARN, sb, ivsrt.ParticipantFilter{}, ivsrt.Page{Limit: 10})
	if err != nil || len(listed) != 2 {
		t.Fatalf("ListParticipants of the destination: %d, %v, want 2", len(listed), err)
	}
	checkParticipantReplication(t, "listed replica", listed[1], ivsrt.ReplicationReplica, ivsrt.ReplicationActive, src.ARN, sa)

	detail := func(name string) map[string]any {
		return map[string]any{"session_id": string(sa), "event_name": name, "participant_id": string(a), "user_id": "alice",
			"source_stage_arn": string(src.ARN), "source_session_id": string(sa),
			"destination_stage_arn": string(dst.ARN), "destination_session_id": string(sb)}
	}
	checkStream(t, ReadAllEvents(t, e.s, before, 10), []wantStream{
		{src.ARN, ivsrt.DetailTypeStageUpdate, detail(ivsrt.StreamReplicationStarted), started},
	})

	// A second start into the same destination conflicts.
	again := &ivsrt.ParticipantReplication{SourceStageARN: src.ARN, ParticipantID: a, DestinationStageARN: dst.ARN, DestinationSessionID: sb}
	wantCode(t, "start again", e.s.StartParticipantReplication(e.ctx, again, ivsrt.ReplicationQuota{}), ivsrt.ECONFLICT)

	rs := e.replicas(t, src.ARN, a)
	if len(rs) != 1 || *rs[0] != *r {
		t.Fatalf("ListParticipantReplicas: got %v, want %v", rs, r)
	}
	if got, err := e.s.ListActiveReplicas(e.ctx, dst.ARN); err != nil || len(got) != 1 || *got[0] != *r {
		t.Errorf("ListActiveReplicas: got %v, %v, want %v", got, err, r)
	}
	if got, err := e.s.ListActiveReplicas(e.ctx, src.ARN); err != nil || len(got) != 0 {
		t.Errorf("ListActiveReplicas of the source: got %v, %v, want none", got, err)
	}

	// The source leaves, and its session ends: the replication stops
	// after, filed under the source's session all the same.
	e.event(t, src.ARN, ivsrt.EventPublishStopped, a)
	e.event(t, src.ARN, ivsrt.EventLeft, a)
	if s := e.getSession(t, src.ARN, sa); s.Active() {
		t.Fatalf("source session still active")
	}
	e.record(t, &ivsrt.Event{StageARN: dst.ARN, Name: ivsrt.EventLeft, ParticipantID: a, Time: e.clock.Advance(time.Second), Replica: true})
	before = e.lastSeq(t)
	stopped := e.clock.Advance(time.Second)
	got, err := e.s.StopParticipantReplication(e.ctx, src.ARN, a, dst.ARN)
	if err != nil {
		t.Fatalf("StopParticipantReplication: %v", err)
	}
	want := *r
	want.State, want.EndTime = ivsrt.ReplicationStopped, ms(stopped)
	if *got != want {
		t.Errorf("stopped: got %+v, want %+v", got, want)
	}
	checkStream(t, ReadAllEvents(t, e.s, before, 10), []wantStream{
		{src.ARN, ivsrt.DetailTypeStageUpdate, detail(ivsrt.StreamReplicationStopped), stopped},
	})
	checkParticipantReplication(t, "source stopped", e.getParticipant(t, src.ARN, sa, a), ivsrt.ReplicationSource, ivsrt.ReplicationStopped, "", "")
	checkParticipantReplication(t, "replica stopped", e.getParticipant(t, dst.ARN, sb, a), ivsrt.ReplicationReplica, ivsrt.ReplicationStopped, src.ARN, sa)
	_, err = e.s.StopParticipantReplication(e.ctx, src.ARN, a, dst.ARN)
	wantCode(t, "stop again", err, ivsrt.ENOTFOUND)
	if rs := e.replicas(t, src.ARN, a); len(rs) != 1 || *rs[0] != want {
		t.Errorf("ListParticipantReplicas after the stop: got %v, want %v", rs, want)
	}
	if got, err := e.s.ListActiveReplicas(e.ctx, dst.ARN); err != nil || len(got) != 0 {
		t.Errorf("ListActiveReplicas after the stop: got %v, %v, want none", got, err)
	}

	// The events: the source's tell of the replication, with its
	// destination; the replica's are flagged.
	var names []string
	for _, ev := range e.participantEvents(t, src.ARN, sa, a) {
		names = append(names, string(ev.Name))
		if ev.Name == ivsrt.EventReplicationStarted || ev.Name == ivsrt.EventReplicationStopped {
			if ev.DestinationStageARN != dst.ARN || ev.DestinationSessionID != sb || ev.Replica {
				t.Errorf("%s: got destination %s %s replica %v, want %s %s false", ev.Name, ev.DestinationStageARN,
					ev.DestinationSessionID, ev.Replica, dst.ARN, sb)
			}
		} else if ev.DestinationStageARN != "" || ev.DestinationSessionID != "" {
			t.Errorf("%s: got destination %s %s, want none", ev.Name, ev.DestinationStageARN, ev.DestinationSessionID)
		}
	}
	wantNames := []string{"JOINED", "PUBLISH_STARTED", "REPLICATION_STARTED", "PUBLISH_STOPPED", "LEFT", "REPLICATION_STOPPED"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("source events: got %v, want %v", names, wantNames)
	}
	for _, ev := range e.participantEvents(t, dst.ARN, sb, a) {
		if !ev.Replica {
			t.Errorf("replica's %s: replica false, want true", ev.Name)
		}
	}
	for _, ev := range e.participantEvents(t, dst.ARN, sb, viewer) {
		if ev.Replica {
			t.Errorf("viewer's %s: replica true, want false", ev.Name)
		}
	}
}

func testReplicationRefusals(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	src, dst, other := e.createStage(t, "source", nil), e.createStage(t, "destination", nil), e.createStage(t, "other", nil)
	a, b := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	sa := e.join(t, src.ARN, a, "alice").SessionID
	sb := e.replicaJoin(t, src.ARN, sa, dst.ARN, a)
	start := func(source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN, session ivsrt.SessionID, quota int) error {
		before := e.lastSeq(t)
		r := &ivsrt.ParticipantReplication{SourceStageARN: source, ParticipantID: id, DestinationStageARN: dest, DestinationSessionID: session}
		err := e.s.StartParticipantReplication(e.ctx, r, ivsrt.ReplicationQuota{MaxReplicasPerParticipant: quota})
		if err != nil {
			// A refusal writes nothing.
			checkStream(t, ReadAllEvents(t, e.s, before, 10), nil)
		}
		return err
	}

	missing := newARN()
	wantCode(t, "unknown source stage", start(missing, a, dst.ARN, sb, 0), ivsrt.ENOTFOUND)
	wantCode(t, "participant not in the source", start(src.ARN, b, dst.ARN, sb, 0), ivsrt.ENOTFOUND)
	wantCode(t, "idle source stage", start(other.ARN, a, dst.ARN, sb, 0), ivsrt.ENOTFOUND)
	// The replica in the destination cannot be replicated on.
	wantCode(t, "a replica", start(dst.ARN, a, other.ARN, "", 0), ivsrt.ECONFLICT)
	if rs := e.replicas(t, dst.ARN, a); len(rs) != 0 {
		t.Errorf("replicas of a refused replica: %v", rs)
	}

	// The quota counts ACTIVE replications only.
	if err := start(src.ARN, a, dst.ARN, sb, 1); err != nil {
		t.Fatalf("first start: %v", err)
	}
	so := e.replicaJoin(t, src.ARN, sa, other.ARN, a)
	wantCode(t, "over the quota", start(src.ARN, a, other.ARN, so, 1), ivsrt.EQUOTA)
	if _, err := e.s.StopParticipantReplication(e.ctx, src.ARN, a, dst.ARN); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := start(src.ARN, a, other.ARN, so, 1); err != nil {
		t.Fatalf("start within the quota after a stop: %v", err)
	}
	// A stopped replication may start again.
	if err := start(src.ARN, a, dst.ARN, sb, 2); err != nil {
		t.Fatalf("start again after a stop: %v", err)
	}
	rs := e.replicas(t, src.ARN, a)
	var states []string
	for _, r := range rs {
		states = append(states, string(r.DestinationStageARN.ID())+" "+string(r.State))
	}
	wantStates := []string{dst.ARN.ID() + " STOPPED", other.ARN.ID() + " ACTIVE", dst.ARN.ID() + " ACTIVE"}
	if !slices.Equal(states, wantStates) {
		t.Errorf("replicas: got %v, want %v", states, wantStates)
	}

	_, err := e.s.StopParticipantReplication(e.ctx, missing, a, dst.ARN)
	wantCode(t, "stop of an unknown stage", err, ivsrt.ENOTFOUND)
	_, err = e.s.StopParticipantReplication(e.ctx, src.ARN, b, dst.ARN)
	wantCode(t, "stop of a participant never replicated", err, ivsrt.ENOTFOUND)

	// StopReplicas ends what went into a stage.
	if n, err := ivsrt.StopReplicas(e.ctx, e.s, other.ARN); err != nil || n != 1 {
		t.Errorf("StopReplicas: got %d, %v, want 1", n, err)
	}
	// A deleted destination keeps its replications' history; a deleted
	// source takes them with it.
	if err := e.s.DeleteStage(e.ctx, other.ARN); err != nil {
		t.Fatal(err)
	}
	if rs := e.replicas(t, src.ARN, a); len(rs) != 3 {
		t.Errorf("replicas after the destination's deletion: got %d, want 3", len(rs))
	}
	if err := e.s.DeleteStage(e.ctx, src.ARN); err != nil {
		t.Fatal(err)
	}
	if rs := e.replicas(t, src.ARN, a); len(rs) != 0 {
		t.Errorf("replicas after the source's deletion: got %v, want none", rs)
	}
	_, _, err = e.s.ListParticipantReplicas(e.ctx, src.ARN, a, ivsrt.Page{})
	wantCode(t, "page of 0", err, ivsrt.EINVALID)
}

// testReplicationQuotaRace starts replications of one participant into
// many stages at once: the quota holds.
func testReplicationQuotaRace(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	src := e.createStage(t, "source", nil)
	a := ivsrt.NewParticipantID()
	sa := e.join(t, src.ARN, a, "alice").SessionID
	const stages, quota = 8, 3
	rs := make([]*ivsrt.ParticipantReplication, stages)
	for i := range rs {
		dst := e.createStage(t, "destination", nil)
		rs[i] = &ivsrt.ParticipantReplication{SourceStageARN: src.ARN, ParticipantID: a, DestinationStageARN: dst.ARN,
			DestinationSessionID: e.replicaJoin(t, src.ARN, sa, dst.ARN, a)}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[string]int{}
	)
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.s.StartParticipantReplication(e.ctx, r, ivsrt.ReplicationQuota{MaxReplicasPerParticipant: quota})
			mu.Lock()
			codes[ivsrt.ErrorCode(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[""] != quota || codes[ivsrt.EQUOTA] != stages-quota {
		t.Errorf("outcomes: got %v, want %d started and %d over the quota", codes, quota, stages-quota)
	}
}
