package storecore

import (
	"context"
	"time"

	"github.com/ivsrt/ivsrt"
)

// SessionTx is a store's write transaction as RecordEvent uses it. Each
// method is one step in the store's SQL; RecordEvent decides which steps an
// event takes, and in what order.
type SessionTx interface {
	// ActiveSession returns the stage's active session, "" when the stage
	// is idle, or ENOTFOUND if there is no such stage. A store whose
	// writers can run at once locks the stage until the transaction ends,
	// so that the events of one stage are applied one at a time.
	ActiveSession(ctx context.Context, stage ivsrt.StageARN) (ivsrt.SessionID, error)

	// StartSession records the session id of the stage, started at at, and
	// makes it the stage's active session.
	StartSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID, at time.Time) error

	// EndSession ends the session id at at and leaves the stage idle.
	EndSession(ctx context.Context, stage ivsrt.StageARN, id ivsrt.SessionID, at time.Time) error

	// Join lists p in its session as CONNECTED or, if it joined the
	// session before, marks it CONNECTED again, and a replica (p's
	// ReplicationType REPLICA) as one of p's source, and an encoder (p's
	// IngestConfigurationARN set) as one of that configuration. It
	// returns the user id of the participant's first join.
	Join(ctx context.Context, p *ivsrt.Participant) (userID string, err error)

	// ParticipantState returns the state and user id of a participant of
	// the session; the state is "" if it never joined the session.
	ParticipantState(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) (state ivsrt.ParticipantState, userID string, err error)

	// AddEvent files ev under its session, ev.SessionID.
	AddEvent(ctx context.Context, ev *ivsrt.Event) error

	// MarkPublished marks a participant of the session as having published.
	MarkPublished(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) error

	// Disconnect marks a participant of the session DISCONNECTED.
	Disconnect(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) error

	// ExchangeToken makes tok what a participant of the session acts
	// with after a token exchange: the participant's user id and
	// attributes, and its stored token's (a self-signed one's) capabilities,
	// expiry and issue time, before which no token of it is accepted.
	ExchangeToken(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID, tok *ivsrt.ExchangedToken) error

	// AnyConnected reports whether anyone in the session is CONNECTED.
	AnyConnected(ctx context.Context, session ivsrt.SessionID) (bool, error)

	// AppendEvents appends evs to the event stream, in order.
	AppendEvents(ctx context.Context, evs ...*ivsrt.StreamEvent) error
}

// UnknownProtocol is the protocol of a participant whose join did not say.
const UnknownProtocol = "UNKNOWN"

// RecordEvent applies ev within tx as ivsrt.SessionStore.RecordEvent
// documents: a JOINED in an idle stage starts a session, the last LEFT
// ends it, and every event of a participant not CONNECTED is refused,
// except JOIN_ERROR. It fills in ev.SessionID; ev.Time must be set. The
// event, and the session it starts or ends, are appended to the event
// stream last.
func RecordEvent(ctx context.Context, tx SessionTx, ev *ivsrt.Event) error {
	session, err := tx.ActiveSession(ctx, ev.StageARN)
	if err != nil {
		return err
	}
	var stream []*ivsrt.StreamEvent
	userID := ev.UserID
	switch ev.Name {
	case ivsrt.EventJoined:
		if session == "" {
			session = ivsrt.NewSessionID()
			if err := tx.StartSession(ctx, ev.StageARN, session, ev.Time); err != nil {
				return err
			}
			stream = append(stream, ivsrt.NewSessionStreamEvent(ev.StageARN, session, ivsrt.StreamSessionStarted, ev.Time))
		}
		protocol := ev.Protocol
		if protocol == "" {
			protocol = UnknownProtocol
		}
		// A participant who joins again keeps the user id of the first join.
		p := &ivsrt.Participant{
			ID:            ev.ParticipantID,
			StageARN:      ev.StageARN,
			SessionID:     session,
			UserID:        ev.UserID,
			Attributes:    ev.Attributes,
			State:         ivsrt.ParticipantConnected,
			FirstJoinTime: ev.Time,
			Protocol:      protocol,
			Client:        ev.Client,

			IngestConfigurationARN: ev.IngestConfigurationARN,
			RedundantIngest:        ev.RedundantIngest,
		}
		if ev.Replica {
			// A replica is one from the moment it joins; its replication
			// state is set when the replication is recorded.
			p.ReplicationType, p.SourceStageARN, p.SourceSessionID = ivsrt.ReplicationReplica, ev.SourceStageARN, ev.SourceSessionID
		}
		userID, err = tx.Join(ctx, p)
		if err != nil {
			return err
		}
	case ivsrt.EventJoinError:
		if session == "" {
			// Nobody is in the stage, so there is no session to file a
			// failed join under.
			return nil
		}
		// The participant is not listed, but may have been before.
		state, known, err := tx.ParticipantState(ctx, session, ev.ParticipantID)
		if err != nil {
			return err
		}
		if state != "" {
			userID = known
		}
	default:
		if session == "" {
			return notInStage(ev.ParticipantID)
		}
		state, known, err := tx.ParticipantState(ctx, session, ev.ParticipantID)
		if err != nil {
			return err
		}
		if state != ivsrt.ParticipantConnected {
			// Never joined this session, or left it.
			return notInStage(ev.ParticipantID)
		}
		userID = known
	}
	ev.SessionID = session
	if ev.Name == ivsrt.EventTokenExchanged {
		if ev.NewToken == nil {
			return ivsrt.Errorf(ivsrt.EINVALID, "a token exchange without its new token")
		}
	} else {
		// Amazon IVS's event stream tells of no token exchange.
		stream = append(stream, ivsrt.NewParticipantStreamEvent(ev, userID))
	}

	if err := tx.AddEvent(ctx, ev); err != nil {
		return err
	}
	switch ev.Name {
	case ivsrt.EventPublishStarted:
		if err := tx.MarkPublished(ctx, session, ev.ParticipantID); err != nil {
			return err
		}
	case ivsrt.EventTokenExchanged:
		if err := tx.ExchangeToken(ctx, session, ev.ParticipantID, ev.NewToken); err != nil {
			return err
		}
	case ivsrt.EventLeft:
		ended, err := leave(ctx, tx, ev, session)
		if err != nil {
			return err
		}
		if ended {
			stream = append(stream, ivsrt.NewSessionStreamEvent(ev.StageARN, session, ivsrt.StreamSessionEnded, ev.Time))
		}
	}
	return tx.AppendEvents(ctx, stream...)
}

// leave marks the participant gone and ends the session when it was the
// last, reporting whether it did.
func leave(ctx context.Context, tx SessionTx, ev *ivsrt.Event, session ivsrt.SessionID) (ended bool, err error) {
	if err := tx.Disconnect(ctx, session, ev.ParticipantID); err != nil {
		return false, err
	}
	if connected, err := tx.AnyConnected(ctx, session); err != nil || connected {
		return false, err
	}
	if err := tx.EndSession(ctx, ev.StageARN, session, ev.Time); err != nil {
		return false, err
	}
	return true, nil
}

func notInStage(id ivsrt.ParticipantID) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "participant %s is not in the stage", id)
}

// StageDeleted returns what the event stream tells of the deletion of the
// stage named name: a session still active ends with the stage.
func StageDeleted(stage ivsrt.StageARN, name string, active ivsrt.SessionID, at time.Time) []*ivsrt.StreamEvent {
	var stream []*ivsrt.StreamEvent
	if active != "" {
		stream = append(stream, ivsrt.NewSessionStreamEvent(stage, active, ivsrt.StreamSessionEnded, at))
	}
	return append(stream, ivsrt.NewStageStreamEvent(stage, name, ivsrt.StreamStageDeleted, at))
}
