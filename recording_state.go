package ivsrt

import "time"

// ParticipantRecordingState is a participant's recording state, as the
// API reports it.
type ParticipantRecordingState string

// Recording states. DISABLED is a participant whose stage does not
// record (the store keeps "" for it).
const (
	RecordingStarting ParticipantRecordingState = "STARTING"
	RecordingActive   ParticipantRecordingState = "ACTIVE"
	RecordingStopping ParticipantRecordingState = "STOPPING"
	RecordingStopped  ParticipantRecordingState = "STOPPED"
	RecordingFailed   ParticipantRecordingState = "FAILED"
	RecordingDisabled ParticipantRecordingState = "DISABLED"
)

// DetailTypeRecordingStateChange is the detail type of the events IVS
// sends when an individual participant recording starts or ends.
const DetailTypeRecordingStateChange = "IVS Participant Recording State Change"

// Event names of recording state changes (the detail's "event_name").
const (
	StreamRecordingStart        = "Recording Start"
	StreamRecordingEnd          = "Recording End"
	StreamRecordingStartFailure = "Recording Start Failure"
	StreamRecordingEndFailure   = "Recording End Failure"
)

// ParticipantRecording is a change of a participant's recording, to store
// with SessionStore.SetParticipantRecording.
type ParticipantRecording struct {
	StageARN      StageARN
	SessionID     SessionID
	ParticipantID ParticipantID
	Bucket        string // recordingS3BucketName
	Prefix        string // recordingS3Prefix
	State         ParticipantRecordingState
	// StreamEvent, when not "", is the recording state change event to
	// append to the stream with it: one of the Stream* names above.
	StreamEvent string
	Duration    time.Duration // with Recording End
	Time        time.Time     // when; the store's clock when zero
}

// NewRecordingStreamEvent returns the stream event of a recording state
// change: detail session_id, participant_id, event_name,
// recording_s3_bucket_name, recording_s3_key_prefix, and
// recording_duration_ms with Recording End.
func NewRecordingStreamEvent(r *ParticipantRecording, at time.Time) *StreamEvent {
	detail := map[string]any{
		"session_id":               string(r.SessionID),
		"participant_id":           string(r.ParticipantID),
		"event_name":               r.StreamEvent,
		"recording_s3_bucket_name": r.Bucket,
		"recording_s3_key_prefix":  r.Prefix,
	}
	if r.StreamEvent == StreamRecordingEnd {
		detail["recording_duration_ms"] = r.Duration.Milliseconds()
	}
	return newStreamEvent(r.StageARN, at, DetailTypeRecordingStateChange, detail)
}
