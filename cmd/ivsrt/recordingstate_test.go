package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
)

// TestParticipantRecordingState sets participants' recording states in
// the store, as the media plane does, and reads them back through the
// SDK: GetParticipant's bucket, prefix and state, ListParticipants'
// states and its filterByRecordingState, and the recording state change
// events of the event stream.
func TestParticipantRecordingState(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	stream := mustStream(t, newSignedRequest(t, m, http.MethodGet, "/v1/events/stream?after=0", "", testAccessKeyID, testSecretAccessKey))

	arn := createStage(t, c, "recorded")
	stage := ivsrt.StageARN(arn)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	alice, bob, carol := ivsrt.NewParticipantID(), ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	ev := func(s int, name ivsrt.EventName, id ivsrt.ParticipantID) *ivsrt.Event {
		return &ivsrt.Event{StageARN: stage, Name: name, ParticipantID: id, UserID: "user-" + string(id), Time: t0.Add(time.Duration(s) * time.Second)}
	}
	first := ev(0, ivsrt.EventJoined, alice)
	record(t, m, first,
		ev(1, ivsrt.EventJoined, bob),
		ev(2, ivsrt.EventJoined, carol),
		ev(3, ivsrt.EventPublishStarted, alice),
		ev(4, ivsrt.EventPublishStarted, carol),
	)
	session := first.SessionID

	const bucket = "recordings"
	prefix := func(id ivsrt.ParticipantID) string {
		return fmt.Sprintf("%s/%s/%s/2026-01-02T03-04-08Z", stage.ID(), session, id)
	}
	set := func(s int, id ivsrt.ParticipantID, state ivsrt.ParticipantRecordingState, event string, d time.Duration) {
		t.Helper()
		err := m.DB.SetParticipantRecording(ctx, &ivsrt.ParticipantRecording{StageARN: stage, SessionID: session, ParticipantID: id,
			Bucket: bucket, Prefix: prefix(id), State: state, StreamEvent: event, Duration: d,
			Time: t0.Add(time.Duration(s) * time.Second)})
		if err != nil {
			t.Fatalf("SetParticipantRecording %s of %s: %v", state, id, err)
		}
	}
	// Alice is recorded, Carol's recording could not start, Bob does not
	// publish.
	set(5, alice, ivsrt.RecordingStarting, "", 0)
	set(6, alice, ivsrt.RecordingActive, ivsrt.StreamRecordingStart, 0)
	set(7, carol, ivsrt.RecordingStarting, "", 0)
	set(8, carol, ivsrt.RecordingFailed, ivsrt.StreamRecordingStartFailure, 0)

	type want struct {
		id             ivsrt.ParticipantID
		bucket, prefix string
		state          types.ParticipantRecordingState
	}
	getParticipants := func(t *testing.T, wants ...want) {
		t.Helper()
		for _, w := range wants {
			out, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn),
				SessionId: aws.String(string(session)), ParticipantId: aws.String(string(w.id))})
			if err != nil {
				t.Fatalf("GetParticipant %s: %v", w.id, err)
			}
			p := out.Participant
			// Not recorded is "", not absent.
			if p.RecordingS3BucketName == nil || p.RecordingS3Prefix == nil {
				t.Errorf("GetParticipant %s: recordingS3BucketName %v, recordingS3Prefix %v, want both present",
					w.id, p.RecordingS3BucketName, p.RecordingS3Prefix)
			}
			got := want{w.id, aws.ToString(p.RecordingS3BucketName), aws.ToString(p.RecordingS3Prefix), p.RecordingState}
			if got != w {
				t.Errorf("GetParticipant %s: got %+v, want %+v", w.id, got, w)
			}
		}
	}
	listParticipants := func(t *testing.T, filter *string) map[ivsrt.ParticipantID]types.ParticipantRecordingState {
		t.Helper()
		states := map[ivsrt.ParticipantID]types.ParticipantRecordingState{}
		p := ivsrealtime.NewListParticipantsPaginator(c, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arn),
			SessionId: aws.String(string(session)), FilterByRecordingState: types.ParticipantRecordingFilterByRecordingState(aws.ToString(filter)),
			MaxResults: aws.Int32(1)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListParticipants filterByRecordingState %q: %v", aws.ToString(filter), err)
			}
			for _, s := range out.Participants {
				states[ivsrt.ParticipantID(aws.ToString(s.ParticipantId))] = s.RecordingState
			}
		}
		return states
	}
	type filterCase struct {
		filter string
		want   map[ivsrt.ParticipantID]types.ParticipantRecordingState
	}
	checkFilters := func(t *testing.T, tests []filterCase) {
		t.Helper()
		for _, tt := range tests {
			var filter *string
			if tt.filter != "" {
				filter = aws.String(tt.filter)
			}
			if got := listParticipants(t, filter); !maps.Equal(got, tt.want) {
				t.Errorf("ListParticipants filterByRecordingState %q: got %v, want %v", tt.filter, got, tt.want)
			}
		}
	}

	t.Run("while recording", func(t *testing.T) {
		getParticipants(t,
			want{alice, bucket, prefix(alice), types.ParticipantRecordingStateActive},
			want{bob, "", "", types.ParticipantRecordingStateDisabled},
			want{carol, bucket, prefix(carol), types.ParticipantRecordingStateFailed})
		checkFilters(t, []filterCase{
			{"", map[ivsrt.ParticipantID]types.ParticipantRecordingState{
				alice: types.ParticipantRecordingStateActive, bob: types.ParticipantRecordingStateDisabled, carol: types.ParticipantRecordingStateFailed}},
			{"ACTIVE", map[ivsrt.ParticipantID]types.ParticipantRecordingState{alice: types.ParticipantRecordingStateActive}},
			{"FAILED", map[ivsrt.ParticipantID]types.ParticipantRecordingState{carol: types.ParticipantRecordingStateFailed}},
			{"STARTING", map[ivsrt.ParticipantID]types.ParticipantRecordingState{}},
			{"STOPPED", map[ivsrt.ParticipantID]types.ParticipantRecordingState{}},
		})
	})

	// Everyone leaves and the session ends; Alice's recording ends after.
	record(t, m,
		ev(10, ivsrt.EventPublishStopped, alice),
		ev(11, ivsrt.EventLeft, alice),
		ev(12, ivsrt.EventPublishStopped, carol),
		ev(13, ivsrt.EventLeft, carol),
		ev(14, ivsrt.EventLeft, bob),
	)
	set(15, alice, ivsrt.RecordingStopping, "", 0)
	set(16, alice, ivsrt.RecordingStopped, ivsrt.StreamRecordingEnd, 5*time.Second+250*time.Millisecond)

	t.Run("after the session", func(t *testing.T) {
		getParticipants(t, want{alice, bucket, prefix(alice), types.ParticipantRecordingStateStopped})
		checkFilters(t, []filterCase{
			{"STOPPED", map[ivsrt.ParticipantID]types.ParticipantRecordingState{alice: types.ParticipantRecordingStateStopped}},
			{"ACTIVE", map[ivsrt.ParticipantID]types.ParticipantRecordingState{}},
		})
	})

	t.Run("events", func(t *testing.T) {
		// The stream holds the stage's other events too; take the first
		// three recording state changes.
		var got []sseEvent
		deadline := time.After(10 * time.Second)
		for len(got) < 3 {
			select {
			case e, ok := <-stream:
				if !ok {
					t.Fatalf("stream ended after %d recording events, want 3", len(got))
				}
				if e.Envelope.DetailType == ivsrt.DetailTypeRecordingStateChange {
					got = append(got, e)
				}
			case <-deadline:
				t.Fatalf("got %d recording events in 10s, want 3", len(got))
			}
		}
		detail := func(id ivsrt.ParticipantID, name string) map[string]any {
			return map[string]any{"session_id": string(session), "participant_id": string(id), "event_name": name,
				"recording_s3_bucket_name": bucket, "recording_s3_key_prefix": prefix(id)}
		}
		end := detail(alice, ivsrt.StreamRecordingEnd)
		end["recording_duration_ms"] = float64(5250)
		wants := []struct {
			detail map[string]any
			time   string
		}{
			{detail(alice, ivsrt.StreamRecordingStart), "2026-01-02T03:04:11Z"},
			{detail(carol, ivsrt.StreamRecordingStartFailure), "2026-01-02T03:04:13Z"},
			{end, "2026-01-02T03:04:21Z"},
		}
		for i, e := range got {
			env := e.Envelope
			if e.Event != ivsrt.DetailTypeRecordingStateChange || env.Source != "aws.ivs" || !slices.Equal(env.Resources, []string{arn}) {
				t.Errorf("event %d: got %s %+v", i, e.Event, env)
			}
			if !maps.Equal(env.Detail, wants[i].detail) {
				t.Errorf("event %d: detail: got %v, want %v", i, env.Detail, wants[i].detail)
			}
			if env.Time != wants[i].time {
				t.Errorf("event %d: time: got %s, want %s", i, env.Time, wants[i].time)
			}
		}
	})
}
