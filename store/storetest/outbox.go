package storetest

import (
	"fmt"
	"maps"
	"regexp"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// ReadAllEvents reads the whole event stream of s after afterSeq, limit
// events at a time.
func ReadAllEvents(t *testing.T, s ivsrt.EventStream, afterSeq int64, limit int) []*ivsrt.StreamEvent {
	t.Helper()
	var all []*ivsrt.StreamEvent
	for {
		evs, err := s.ReadEvents(t.Context(), afterSeq, limit)
		if err != nil {
			t.Fatalf("ReadEvents(%d, %d): %v", afterSeq, limit, err)
		}
		if len(evs) > limit {
			t.Fatalf("ReadEvents(%d, %d): got %d events", afterSeq, limit, len(evs))
		}
		all = append(all, evs...)
		if len(evs) < limit {
			return all
		}
		afterSeq = evs[len(evs)-1].Seq
	}
}

// wantStream is what a test expects of one stream event.
type wantStream struct {
	stage      ivsrt.StageARN
	detailType string
	detail     map[string]any
	time       time.Time
}

func (w wantStream) String() string {
	return fmt.Sprintf("%s %v", w.detailType, w.detail)
}

func checkStream(t *testing.T, got []*ivsrt.StreamEvent, want []wantStream) {
	t.Helper()
	if len(got) != len(want) {
		var names []string
		for _, ev := range got {
			names = append(names, ev.EventName())
		}
		t.Fatalf("events: got %d %v, want %d %v", len(got), names, len(want), want)
	}
	ids := map[string]bool{}
	var last int64
	for i, ev := range got {
		w := want[i]
		what := fmt.Sprintf("event %d (%s)", i, w.detail["event_name"])
		if ev.Seq <= last {
			t.Errorf("%s: Seq %d after %d, want increasing", what, ev.Seq, last)
		}
		last = ev.Seq
		if !uuidPattern.MatchString(ev.ID) {
			t.Errorf("%s: ID %q, want a UUID v4", what, ev.ID)
		}
		if ids[ev.ID] {
			t.Errorf("%s: ID %q repeated", what, ev.ID)
		}
		ids[ev.ID] = true
		if ev.StageARN != w.stage || ev.DetailType != w.detailType {
			t.Errorf("%s: got %s %q, want %s %q", what, ev.StageARN, ev.DetailType, w.stage, w.detailType)
		}
		if !maps.Equal(ev.Detail, w.detail) {
			t.Errorf("%s: detail: got %v, want %v", what, ev.Detail, w.detail)
		}
		checkTime(t, what+": Time", ev.Time, w.time)
	}
}

func testOutbox(t *testing.T, open OpenFunc) {
	t.Run("every fact has its event", func(t *testing.T) {
		e := newEnv(t, open)
		if seq, err := e.s.LastEventSeq(e.ctx); err != nil || seq != 0 {
			t.Fatalf("LastEventSeq of an empty store: got %d, %v, want 0, nil", seq, err)
		}
		created := e.clock.Now()
		st := e.createStage(t, "show", nil)
		updated := e.clock.Advance(time.Second)
		if _, err := e.s.UpdateStage(e.ctx, st.ARN, ivsrt.StageUpdate{Name: ptr("renamed")}); err != nil {
			t.Fatalf("UpdateStage: %v", err)
		}
		a, b := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
		joinA := e.join(t, st.ARN, a, "alice")
		sid := joinA.SessionID
		joinB := e.join(t, st.ARN, b, "bob")
		pub := e.event(t, st.ARN, ivsrt.EventPublishStarted, a)
		pubErr := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishError, ParticipantID: b,
			ErrorCode: ivsrt.ErrInsufficientCapabilities, Time: e.clock.Advance(time.Second)})
		sub := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeStarted, ParticipantID: b,
			RemoteParticipantID: a, Time: e.clock.Advance(time.Second)})
		refused := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoinError, ParticipantID: ivsrt.NewParticipantID(),
			UserID: "carol", ErrorCode: ivsrt.ErrQuotaExceeded, Time: e.clock.Advance(time.Second)})
		unsub := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeStopped, ParticipantID: b,
			RemoteParticipantID: a, Time: e.clock.Advance(time.Second)})
		unpub := e.event(t, st.ARN, ivsrt.EventPublishStopped, a)
		leftA := e.event(t, st.ARN, ivsrt.EventLeft, a)
		leftB := e.event(t, st.ARN, ivsrt.EventLeft, b)
		// A second session, still active when the stage goes.
		joinAgain := e.join(t, st.ARN, a, "alice")
		deleted := e.clock.Advance(time.Second)
		if err := e.s.DeleteStage(e.ctx, st.ARN); err != nil {
			t.Fatalf("DeleteStage: %v", err)
		}

		part := func(ev *ivsrt.Event, name, user string, extra ...string) wantStream {
			d := map[string]any{"session_id": string(ev.SessionID), "event_name": name, "user_id": user, "participant_id": string(ev.ParticipantID)}
			for i := 0; i+1 < len(extra); i += 2 {
				d[extra[i]] = extra[i+1]
			}
			return wantStream{st.ARN, ivsrt.DetailTypeStageUpdate, d, ev.Time}
		}
		session := func(id ivsrt.SessionID, name string, at time.Time) wantStream {
			return wantStream{st.ARN, ivsrt.DetailTypeStageUpdate, map[string]any{"session_id": string(id), "event_name": name}, at}
		}
		stage := func(name, stageName string, at time.Time) wantStream {
			return wantStream{st.ARN, ivsrt.DetailTypeStageChange, map[string]any{"event_name": name, "stage_name": stageName}, at}
		}
		want := []wantStream{
			stage(ivsrt.StreamStageCreated, "show", created),
			stage(ivsrt.StreamStageUpdated, "renamed", updated),
			session(sid, ivsrt.StreamSessionStarted, joinA.Time),
			part(joinA, ivsrt.StreamParticipantJoined, "alice"),
			part(joinB, ivsrt.StreamParticipantJoined, "bob"),
			part(pub, ivsrt.StreamParticipantPublished, "alice"),
			part(pubErr, ivsrt.StreamParticipantPublishError, "bob", "error_code", ivsrt.ErrInsufficientCapabilities),
			part(sub, ivsrt.StreamParticipantSubscribed, "bob", "remote_participant_id", string(a)),
			part(refused, ivsrt.StreamParticipantJoinError, "carol", "error_code", ivsrt.ErrQuotaExceeded),
			part(unsub, ivsrt.StreamParticipantUnsubscribed, "bob", "remote_participant_id", string(a)),
			part(unpub, ivsrt.StreamParticipantUnpublished, "alice"),
			part(leftA, ivsrt.StreamParticipantLeft, "alice"),
			part(leftB, ivsrt.StreamParticipantLeft, "bob"),
			session(sid, ivsrt.StreamSessionEnded, leftB.Time),
			session(joinAgain.SessionID, ivsrt.StreamSessionStarted, joinAgain.Time),
			part(joinAgain, ivsrt.StreamParticipantJoined, "alice"),
			session(joinAgain.SessionID, ivsrt.StreamSessionEnded, deleted),
			stage(ivsrt.StreamStageDeleted, "renamed", deleted),
		}
		for _, limit := range []int{1, 3, 100} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				got := ReadAllEvents(t, e.s, 0, limit)
				checkStream(t, got, want)
				if seq, err := e.s.LastEventSeq(e.ctx); err != nil || len(got) == 0 || seq != got[len(got)-1].Seq {
					t.Errorf("LastEventSeq: got %d, %v, want the last event's", seq, err)
				}
				if len(got) > 5 {
					tail := ReadAllEvents(t, e.s, got[4].Seq, limit)
					checkStream(t, tail, want[5:])
				}
			})
		}
	})

	t.Run("user id from the participant", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "s", nil)
		id := ivsrt.NewParticipantID()
		e.join(t, st.ARN, id, "dana")
		// The media plane does not repeat the user id after JOINED, and a
		// second JOINED of the same participant keeps the first.
		e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: id, UserID: "", Time: e.clock.Advance(time.Second)})
		e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishStarted, ParticipantID: id, UserID: "someone-else", Time: e.clock.Advance(time.Second)})
		got := ReadAllEvents(t, e.s, 0, 100)
		if n := len(got); n != 5 {
			t.Fatalf("events: got %d, want 5", n)
		}
		for _, ev := range got[2:] {
			if u := ev.Detail["user_id"]; u != "dana" {
				t.Errorf("user_id of %s: got %v, want dana", ev.EventName(), u)
			}
		}
	})

	t.Run("failed facts write nothing", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "one", nil)
		busy := e.createStage(t, "two", nil)
		e.join(t, busy.ARN, ivsrt.NewParticipantID(), "u")
		before, err := e.s.LastEventSeq(e.ctx)
		if err != nil {
			t.Fatalf("LastEventSeq: %v", err)
		}
		dupToken := e.createToken(t, st.ARN)
		tests := []struct {
			name string
			code string
			fn   func() error
		}{
			{"CreateStage existing ARN", ivsrt.ECONFLICT, func() error {
				return e.s.CreateStage(e.ctx, &ivsrt.Stage{ARN: st.ARN}, nil, ivsrt.StageQuota{})
			}},
			{"CreateStage over quota", ivsrt.EQUOTA, func() error {
				return e.s.CreateStage(e.ctx, &ivsrt.Stage{ARN: newARN()}, nil, ivsrt.StageQuota{MaxStages: 2})
			}},
			{"CreateStage duplicate token", ivsrt.ECONFLICT, func() error {
				tok := newToken(st.ARN, e.clock.Now())
				tok.ParticipantID = dupToken.ParticipantID
				arn := newARN()
				tok.StageARN = arn
				return e.s.CreateStage(e.ctx, &ivsrt.Stage{ARN: arn}, []*ivsrt.ParticipantToken{tok}, ivsrt.StageQuota{})
			}},
			{"UpdateStage unknown", ivsrt.ENOTFOUND, func() error {
				_, err := e.s.UpdateStage(e.ctx, newARN(), ivsrt.StageUpdate{Name: ptr("x")})
				return err
			}},
			{"DeleteStage unknown", ivsrt.ENOTFOUND, func() error { return e.s.DeleteStage(e.ctx, newARN()) }},
			{"RecordEvent unknown stage", ivsrt.ENOTFOUND, func() error {
				return e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: newARN(), Name: ivsrt.EventJoined, ParticipantID: ivsrt.NewParticipantID()})
			}},
			{"RecordEvent of a stranger", ivsrt.ECONFLICT, func() error {
				return e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: busy.ARN, Name: ivsrt.EventPublishStarted, ParticipantID: ivsrt.NewParticipantID()})
			}},
			{"RecordEvent in an idle stage", ivsrt.ECONFLICT, func() error {
				return e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventLeft, ParticipantID: ivsrt.NewParticipantID()})
			}},
			{"JOIN_ERROR in an idle stage", "", func() error {
				return e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoinError, ParticipantID: ivsrt.NewParticipantID(), ErrorCode: ivsrt.ErrQuotaExceeded})
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantCode(t, tt.name, tt.fn(), tt.code)
				if got := ReadAllEvents(t, e.s, before, 10); len(got) != 0 {
					t.Errorf("events written: got %d (first %s), want none", len(got), got[0].EventName())
				}
			})
		}
	})

	t.Run("invalid limit", func(t *testing.T) {
		e := newEnv(t, open)
		for _, limit := range []int{0, -1} {
			_, err := e.s.ReadEvents(e.ctx, 0, limit)
			wantCode(t, fmt.Sprintf("ReadEvents limit %d", limit), err, ivsrt.EINVALID)
		}
	})

	t.Run("stages are isolated but share one order", func(t *testing.T) {
		e := newEnv(t, open)
		s1 := e.createStage(t, "a", nil)
		s2 := e.createStage(t, "b", nil)
		p1, p2 := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
		e.join(t, s1.ARN, p1, "u1")
		e.join(t, s2.ARN, p2, "u2")
		e.event(t, s1.ARN, ivsrt.EventLeft, p1)
		var got []string
		for _, ev := range ReadAllEvents(t, e.s, 0, 100) {
			got = append(got, fmt.Sprintf("%s:%s", ev.StageARN.ID(), ev.EventName()))
		}
		a, b := s1.ARN.ID(), s2.ARN.ID()
		want := []string{a + ":Stage Created", b + ":Stage Created", a + ":Session Started", a + ":Participant Joined",
			b + ":Session Started", b + ":Participant Joined", a + ":Participant Left", a + ":Session Ended"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("events: got %v, want %v", got, want)
		}
	})
}
