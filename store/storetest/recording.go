package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// setRecording stores a change of a participant's recording that must
// succeed.
func (e *env) setRecording(t *testing.T, r *ivsrt.ParticipantRecording) {
	t.Helper()
	if err := e.s.SetParticipantRecording(e.ctx, r); err != nil {
		t.Fatalf("SetParticipantRecording %s of %s: %v", r.State, r.ParticipantID, err)
	}
}

// lastSeq returns the seq of the newest stream event.
func (e *env) lastSeq(t *testing.T) int64 {
	t.Helper()
	seq, err := e.s.LastEventSeq(e.ctx)
	if err != nil {
		t.Fatalf("LastEventSeq: %v", err)
	}
	return seq
}

func checkRecordingState(t *testing.T, what string, p *ivsrt.Participant, bucket, prefix string, state ivsrt.ParticipantRecordingState) {
	t.Helper()
	if p.RecordingBucket != bucket || p.RecordingPrefix != prefix || p.RecordingState != state {
		t.Errorf("%s: recording: got %q %q %q, want %q %q %q", what,
			p.RecordingBucket, p.RecordingPrefix, p.RecordingState, bucket, prefix, state)
	}
}

func testParticipantRecording(t *testing.T, open OpenFunc) {
	t.Run("states and their events", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "recorded", nil)
		a, b := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
		sid := e.join(t, st.ARN, a, "alice").SessionID
		e.join(t, st.ARN, b, "bob")
		e.event(t, st.ARN, ivsrt.EventPublishStarted, a)

		// Nobody's recording has started: every state is "".
		checkRecordingState(t, "before", e.getParticipant(t, st.ARN, sid, a), "", "", "")
		const bucket = "recordings"
		prefix := fmt.Sprintf("%s/%s/%s/2025-03-14T14-09-30Z", st.ARN.ID(), sid, a)
		rec := func(state ivsrt.ParticipantRecordingState, event string) *ivsrt.ParticipantRecording {
			return &ivsrt.ParticipantRecording{StageARN: st.ARN, SessionID: sid, ParticipantID: a,
				Bucket: bucket, Prefix: prefix, State: state, StreamEvent: event}
		}
		detail := func(event string) map[string]any {
			return map[string]any{"session_id": string(sid), "participant_id": string(a), "event_name": event,
				"recording_s3_bucket_name": bucket, "recording_s3_key_prefix": prefix}
		}

		// STARTING tells nobody.
		before := e.lastSeq(t)
		e.setRecording(t, rec(ivsrt.RecordingStarting, ""))
		checkRecordingState(t, "STARTING", e.getParticipant(t, st.ARN, sid, a), bucket, prefix, ivsrt.RecordingStarting)
		checkStream(t, ReadAllEvents(t, e.s, before, 10), nil)

		// ACTIVE, with Recording Start at the store's time.
		started := e.clock.Advance(time.Second)
		e.setRecording(t, rec(ivsrt.RecordingActive, ivsrt.StreamRecordingStart))
		checkRecordingState(t, "ACTIVE", e.getParticipant(t, st.ARN, sid, a), bucket, prefix, ivsrt.RecordingActive)
		checkStream(t, ReadAllEvents(t, e.s, before, 10), []wantStream{
			{st.ARN, ivsrt.DetailTypeRecordingStateChange, detail(ivsrt.StreamRecordingStart), started},
		})

		// The publisher goes, and the session ends with it; the recording
		// ends later, at the time given, and says how long it was.
		e.event(t, st.ARN, ivsrt.EventPublishStopped, a)
		e.event(t, st.ARN, ivsrt.EventLeft, a)
		e.event(t, st.ARN, ivsrt.EventLeft, b)
		if s := e.getSession(t, st.ARN, sid); s.Active() {
			t.Fatalf("session %s still active after the last left", sid)
		}
		before = e.lastSeq(t)
		e.setRecording(t, rec(ivsrt.RecordingStopping, ""))
		ended := e.clock.Now().Add(-500 * time.Millisecond)
		end := rec(ivsrt.RecordingStopped, ivsrt.StreamRecordingEnd)
		end.Duration, end.Time = 90500*time.Millisecond+400*time.Microsecond, ended
		e.setRecording(t, end)
		got := e.getParticipant(t, st.ARN, sid, a)
		checkRecordingState(t, "STOPPED", got, bucket, prefix, ivsrt.RecordingStopped)
		if got.State != ivsrt.ParticipantDisconnected || !got.Published {
			t.Errorf("STOPPED: participant %s published %v, want DISCONNECTED and published", got.State, got.Published)
		}
		endDetail := detail(ivsrt.StreamRecordingEnd)
		// The detail is JSON: its numbers come back as float64.
		endDetail["recording_duration_ms"] = float64(90500)
		checkStream(t, ReadAllEvents(t, e.s, before, 10), []wantStream{
			{st.ARN, ivsrt.DetailTypeRecordingStateChange, endDetail, ended},
		})

		// Bob was never recorded.
		checkRecordingState(t, "bob", e.getParticipant(t, st.ARN, sid, b), "", "", "")
	})

	t.Run("failures", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "failing", nil)
		a := ivsrt.NewParticipantID()
		sid := e.join(t, st.ARN, a, "alice").SessionID
		for _, event := range []string{ivsrt.StreamRecordingStartFailure, ivsrt.StreamRecordingEndFailure} {
			before := e.lastSeq(t)
			at := e.clock.Advance(time.Second)
			e.setRecording(t, &ivsrt.ParticipantRecording{StageARN: st.ARN, SessionID: sid, ParticipantID: a,
				Bucket: "b", State: ivsrt.RecordingFailed, StreamEvent: event, Duration: time.Minute})
			checkRecordingState(t, event, e.getParticipant(t, st.ARN, sid, a), "b", "", ivsrt.RecordingFailed)
			// Only Recording End says how long.
			checkStream(t, ReadAllEvents(t, e.s, before, 10), []wantStream{
				{st.ARN, ivsrt.DetailTypeRecordingStateChange, map[string]any{"session_id": string(sid), "participant_id": string(a),
					"event_name": event, "recording_s3_bucket_name": "b", "recording_s3_key_prefix": ""}, at},
			})
		}
	})

	t.Run("errors write nothing", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "one", nil)
		other := e.createStage(t, "two", nil)
		a := ivsrt.NewParticipantID()
		sid := e.join(t, st.ARN, a, "alice").SessionID
		e.setRecording(t, &ivsrt.ParticipantRecording{StageARN: st.ARN, SessionID: sid, ParticipantID: a,
			Bucket: "kept", Prefix: "kept/prefix", State: ivsrt.RecordingActive})
		otherSID := e.join(t, other.ARN, ivsrt.NewParticipantID(), "bob").SessionID
		before := e.lastSeq(t)
		good := ivsrt.ParticipantRecording{StageARN: st.ARN, SessionID: sid, ParticipantID: a,
			Bucket: "changed", Prefix: "changed", State: ivsrt.RecordingStopped, StreamEvent: ivsrt.StreamRecordingEnd}
		tests := []struct {
			name   string
			code   string
			change func(r *ivsrt.ParticipantRecording)
		}{
			{"unknown participant", ivsrt.ENOTFOUND, func(r *ivsrt.ParticipantRecording) { r.ParticipantID = ivsrt.NewParticipantID() }},
			{"unknown session", ivsrt.ENOTFOUND, func(r *ivsrt.ParticipantRecording) { r.SessionID = ivsrt.NewSessionID() }},
			{"session of another stage", ivsrt.ENOTFOUND, func(r *ivsrt.ParticipantRecording) { r.SessionID = otherSID }},
			{"unknown stage", ivsrt.ENOTFOUND, func(r *ivsrt.ParticipantRecording) { r.StageARN = newARN() }},
			{"another stage", ivsrt.ENOTFOUND, func(r *ivsrt.ParticipantRecording) { r.StageARN = other.ARN }},
			{"no state", ivsrt.EINVALID, func(r *ivsrt.ParticipantRecording) { r.State = "" }},
			{"DISABLED", ivsrt.EINVALID, func(r *ivsrt.ParticipantRecording) { r.State = ivsrt.RecordingDisabled }},
			{"unknown state", ivsrt.EINVALID, func(r *ivsrt.ParticipantRecording) { r.State = "RECORDING" }},
			{"unknown event", ivsrt.EINVALID, func(r *ivsrt.ParticipantRecording) { r.StreamEvent = ivsrt.StreamParticipantJoined }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := good
				tt.change(&r)
				wantCode(t, "SetParticipantRecording", e.s.SetParticipantRecording(e.ctx, &r), tt.code)
				checkRecordingState(t, "after", e.getParticipant(t, st.ARN, sid, a), "kept", "kept/prefix", ivsrt.RecordingActive)
				if got := ReadAllEvents(t, e.s, before, 10); len(got) != 0 {
					t.Errorf("events written: got %d (first %s), want none", len(got), got[0].EventName())
				}
			})
		}
	})

	t.Run("wakes listeners", func(t *testing.T) {
		e := newEnv(t, open)
		n, ok := e.s.(ivsrt.EventNotifier)
		if !ok {
			t.Skip("the store does not notify of events")
		}
		ch, stop := n.NotifyEvents()
		defer stop()
		st := e.createStage(t, "woken", nil)
		a := ivsrt.NewParticipantID()
		sid := e.join(t, st.ARN, a, "alice").SessionID
		// Take the wakes of what came before, and any a store gives when it
		// starts listening.
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("no wake after a join")
		}
		for quiet := false; !quiet; {
			select {
			case <-ch:
			case <-time.After(200 * time.Millisecond):
				quiet = true
			}
		}
		e.setRecording(t, &ivsrt.ParticipantRecording{StageARN: st.ARN, SessionID: sid, ParticipantID: a,
			Bucket: "b", Prefix: "p", State: ivsrt.RecordingActive, StreamEvent: ivsrt.StreamRecordingStart})
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("no wake after a recording state change event")
		}
	})
}
