package storecore

import (
	"context"
	"time"

	"github.com/ivsrt/ivsrt"
)

// RecordingTx is a store's write transaction as SetParticipantRecording
// uses it.
type RecordingTx interface {
	// SetRecording stores r's bucket, prefix and state on the participant
	// r names, in r's session of r's stage, and reports whether there is
	// such a participant.
	SetRecording(ctx context.Context, r *ivsrt.ParticipantRecording) (found bool, err error)

	// AppendEvents appends evs to the event stream, in order.
	AppendEvents(ctx context.Context, evs ...*ivsrt.StreamEvent) error
}

// SetParticipantRecording applies r within tx as
// ivsrt.SessionStore.SetParticipantRecording documents: its stream event,
// if any, is appended last, at at.
func SetParticipantRecording(ctx context.Context, tx RecordingTx, r *ivsrt.ParticipantRecording, at time.Time) error {
	if err := CheckRecording(r); err != nil {
		return err
	}
	found, err := tx.SetRecording(ctx, r)
	if err != nil {
		return err
	}
	if !found {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "participant %s not found in stage session %s", r.ParticipantID, r.SessionID)
	}
	if r.StreamEvent == "" {
		return nil
	}
	return tx.AppendEvents(ctx, ivsrt.NewRecordingStreamEvent(r, at))
}

// CheckRecording returns EINVALID if r's state is not one a recording
// has (DISABLED is no recording at all), or its stream event is neither
// "" nor a recording state change event.
func CheckRecording(r *ivsrt.ParticipantRecording) error {
	switch r.State {
	case ivsrt.RecordingStarting, ivsrt.RecordingActive, ivsrt.RecordingStopping, ivsrt.RecordingStopped, ivsrt.RecordingFailed:
	default:
		return ivsrt.Errorf(ivsrt.EINVALID, "unknown participant recording state %q", r.State)
	}
	switch r.StreamEvent {
	case "", ivsrt.StreamRecordingStart, ivsrt.StreamRecordingEnd, ivsrt.StreamRecordingStartFailure, ivsrt.StreamRecordingEndFailure:
	default:
		return ivsrt.Errorf(ivsrt.EINVALID, "unknown recording state change event %q", r.StreamEvent)
	}
	return nil
}
