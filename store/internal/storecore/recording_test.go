package storecore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

func (m *memTx) SetRecording(_ context.Context, r *ivsrt.ParticipantRecording) (bool, error) {
	p := m.participants[r.ParticipantID]
	if p == nil {
		return false, nil
	}
	p.RecordingBucket, p.RecordingPrefix, p.RecordingState = r.Bucket, r.Prefix, r.State
	return true, nil
}

func TestSetParticipantRecording(t *testing.T) {
	const known, unknown = ivsrt.ParticipantID("known"), ivsrt.ParticipantID("unknown")
	tests := []struct {
		name       string
		r          ivsrt.ParticipantRecording
		wantCode   string
		wantState  ivsrt.ParticipantRecordingState
		wantStream []string
	}{
		{"start", ivsrt.ParticipantRecording{ParticipantID: known, State: ivsrt.RecordingActive, StreamEvent: ivsrt.StreamRecordingStart},
			"", ivsrt.RecordingActive, []string{ivsrt.StreamRecordingStart}},
		{"no event", ivsrt.ParticipantRecording{ParticipantID: known, State: ivsrt.RecordingStarting},
			"", ivsrt.RecordingStarting, nil},
		{"end failure", ivsrt.ParticipantRecording{ParticipantID: known, State: ivsrt.RecordingFailed, StreamEvent: ivsrt.StreamRecordingEndFailure},
			"", ivsrt.RecordingFailed, []string{ivsrt.StreamRecordingEndFailure}},
		{"unknown participant", ivsrt.ParticipantRecording{ParticipantID: unknown, State: ivsrt.RecordingActive, StreamEvent: ivsrt.StreamRecordingStart},
			ivsrt.ENOTFOUND, "", nil},
		{"no state", ivsrt.ParticipantRecording{ParticipantID: known}, ivsrt.EINVALID, "", nil},
		{"disabled", ivsrt.ParticipantRecording{ParticipantID: known, State: ivsrt.RecordingDisabled}, ivsrt.EINVALID, "", nil},
		{"unknown state", ivsrt.ParticipantRecording{ParticipantID: known, State: "RUNNING"}, ivsrt.EINVALID, "", nil},
		{"unknown event", ivsrt.ParticipantRecording{ParticipantID: known, State: ivsrt.RecordingActive, StreamEvent: "Participant Joined"},
			ivsrt.EINVALID, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &memTx{participants: map[ivsrt.ParticipantID]*ivsrt.Participant{known: {ID: known}}}
			err := SetParticipantRecording(t.Context(), tx, &tt.r, time.Unix(1, 0))
			if ivsrt.ErrorCode(err) != tt.wantCode {
				t.Fatalf("SetParticipantRecording: got %v, want code %q", err, tt.wantCode)
			}
			if got := tx.participants[known].RecordingState; got != tt.wantState {
				t.Errorf("recording state: got %q, want %q", got, tt.wantState)
			}
			if !slices.Equal(tx.stream, tt.wantStream) {
				t.Errorf("stream: got %v, want %v", tx.stream, tt.wantStream)
			}
		})
	}
}
