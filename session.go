package ivsrt

import (
	"context"
	"fmt"
	"time"
)

// SessionID identifies a stage session: "st-" and 13 characters.
type SessionID string

// StageSession is one stretch of time during which a stage had participants.
type StageSession struct {
	ID        SessionID
	StageARN  StageARN
	StartTime time.Time
	EndTime   time.Time // zero while the session is active
}

// Active reports whether the session has not ended.
func (s *StageSession) Active() bool { return s.EndTime.IsZero() }

// SessionStore persists what happens in stages: sessions, participants and
// their events. The media plane writes through RecordEvent; the API reads.
type SessionStore interface {
	// RecordEvent stores ev and applies what it means, in one transaction:
	// Each event, and the session it starts or ends, is also appended to the
	// event stream in the same transaction.
	// JOINED starts a session if the stage is idle and marks the participant
	// CONNECTED; PUBLISH_STARTED marks it published; LEFT marks it
	// DISCONNECTED and ends the session when nobody is left. It fills in
	// ev.SessionID, and ev.Time with the store's clock when zero.
	// JOIN_ERROR is filed under the active session without listing the
	// participant, and dropped (nil error) when the stage is idle.
	// Returns ENOTFOUND if the stage does not exist, and ECONFLICT for any
	// other event of a participant who is not CONNECTED in the active
	// session (never joined, or already left): so *_STOPPED events must be
	// recorded before LEFT.
	RecordEvent(ctx context.Context, ev *Event) error

	// GetStageSession returns ENOTFOUND if the stage has no such session.
	GetStageSession(ctx context.Context, stage StageARN, id SessionID) (*StageSession, error)

	// ListStageSessions returns a stage's sessions, newest first.
	ListStageSessions(ctx context.Context, stage StageARN, page Page) (sessions []*StageSession, next string, err error)

	// GetParticipant returns ENOTFOUND if the session has no such participant.
	GetParticipant(ctx context.Context, stage StageARN, session SessionID, id ParticipantID) (*Participant, error)

	// ListParticipants returns a session's participants in order of first
	// join; an unknown session, or one of another stage, lists nobody.
	ListParticipants(ctx context.Context, stage StageARN, session SessionID, filter ParticipantFilter, page Page) (participants []*Participant, next string, err error)

	// ListParticipantEvents returns a participant's events in the order they
	// were recorded; unknown ids list nothing.
	ListParticipantEvents(ctx context.Context, stage StageARN, session SessionID, id ParticipantID, page Page) (events []*Event, next string, err error)

	// SetParticipantRecording stores the bucket, prefix and state of a
	// participant's recording and, when r.StreamEvent is not "", appends
	// NewRecordingStreamEvent(r, at) to the event stream in the same
	// transaction, at being r.Time or, when zero, the store's clock. The
	// session need not be active: a recording ends after its publisher
	// has left. Returns ENOTFOUND if the session of r.StageARN has no such
	// participant, and EINVALID for a state other than STARTING, ACTIVE,
	// STOPPING, STOPPED and FAILED, or a stream event not named by one of
	// the Stream Recording constants.
	SetParticipantRecording(ctx context.Context, r *ParticipantRecording) error
}

// Store is everything the control plane persists.
type Store interface {
	StageStore
	StorageConfigurationStore
	PublicKeyStore
	IngestConfigurationStore
	EncoderConfigurationStore
	CompositionStore
	TokenStore
	SessionStore
	ReplicationStore
	EventStream
	DeliveryStore
	Close() error
}

// MediaPlaneStore is the part of Store the media plane uses: the issued
// tokens, to check presented ones against, and self-signed ones stored
// the first time they are presented; RecordEvent, to write what
// happens in stages; SetParticipantRecording, to write how its recordings
// go; and the stages and participants a crash left connected, to end their
// sessions. Each method is documented where Store declares it.
type MediaPlaneStore interface {
	// GetParticipantToken and CreateParticipantToken are TokenStore's.
	GetParticipantToken(ctx context.Context, id ParticipantID) (*ParticipantToken, error)
	CreateParticipantToken(ctx context.Context, tok *ParticipantToken) error

	// RecordEvent and ListParticipants are SessionStore's.
	RecordEvent(ctx context.Context, ev *Event) error
	ListParticipants(ctx context.Context, stage StageARN, session SessionID, filter ParticipantFilter, page Page) (participants []*Participant, next string, err error)

	// SetParticipantRecording is SessionStore's: each state change of a
	// participant's recording, and the recording state change event that
	// tells of it.
	SetParticipantRecording(ctx context.Context, r *ParticipantRecording) error

	// ListStages and GetStage are StageStore's: GetStage gives a stage's
	// recording configuration.
	ListStages(ctx context.Context, page Page) (stages []*Stage, next string, err error)
	GetStage(ctx context.Context, arn StageARN) (*Stage, error)

	// GetStorageConfiguration is StorageConfigurationStore's: the bucket a
	// recording goes to.
	GetStorageConfiguration(ctx context.Context, arn StorageConfigurationARN) (*StorageConfiguration, error)

	// StartParticipantReplication, StopParticipantReplication and
	// ListActiveReplicas are ReplicationStore's: replications start and
	// stop in the media plane, and those into a stage whose media plane
	// is gone are stopped with its session.
	StartParticipantReplication(ctx context.Context, r *ParticipantReplication, quota ReplicationQuota) error
	StopParticipantReplication(ctx context.Context, source StageARN, id ParticipantID, dest StageARN) (*ParticipantReplication, error)
	ListActiveReplicas(ctx context.Context, dest StageARN) ([]*ParticipantReplication, error)
}

var _ MediaPlaneStore = Store(nil)

// EndSession records the departure of everyone the store has connected in
// the stage's session (the last departure ends it), after stopping the
// replications into the stage, whose replicas are among them, and
// returns how many left. It is for sessions whose media plane is gone: a
// crashed run's, or in a cluster a dead node's.
func EndSession(ctx context.Context, store MediaPlaneStore, stage StageARN, session SessionID) (int, error) {
	if _, err := StopReplicas(ctx, store, stage); err != nil {
		return 0, fmt.Errorf("stop replications: %w", err)
	}
	connected := ParticipantConnected
	n := 0
	page := Page{Limit: 100}
	for {
		ps, next, err := store.ListParticipants(ctx, stage, session, ParticipantFilter{State: &connected}, page)
		if err != nil {
			return n, fmt.Errorf("list participants: %w", err)
		}
		for _, p := range ps {
			if err := store.RecordEvent(ctx, &Event{StageARN: stage, Name: EventLeft, ParticipantID: p.ID}); err != nil {
				return n, fmt.Errorf("record departure: %w", err)
			}
			n++
		}
		if next == "" {
			return n, nil
		}
		page.After = next
	}
}
