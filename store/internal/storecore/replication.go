package storecore

import (
	"context"
	"slices"
	"time"

	"github.com/ivsrt/ivsrt"
)

// ReplicationTx is a store's write transaction as StartReplication and
// StopReplication use it.
type ReplicationTx interface {
	// ActiveSession is SessionTx's: it locks the source stage, so that
	// the replications of its participants change one at a time.
	ActiveSession(ctx context.Context, stage ivsrt.StageARN) (ivsrt.SessionID, error)

	// ParticipantReplication returns the state, user id and replication
	// type of a participant of the session; the state is "" if it never
	// joined it.
	ParticipantReplication(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID) (ivsrt.ParticipantState, string, ivsrt.ReplicationType, error)

	// ActiveReplications returns the ACTIVE replications of a participant
	// of a source stage.
	ActiveReplications(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID) ([]*ivsrt.ParticipantReplication, error)

	// InsertReplication stores a new replication.
	InsertReplication(ctx context.Context, r *ivsrt.ParticipantReplication) error

	// EndReplication stores the state and end time of an ACTIVE
	// replication of r's source, participant and destination.
	EndReplication(ctx context.Context, r *ivsrt.ParticipantReplication) error

	// SetReplication sets the replication type, state and source of a
	// participant of the session; an empty typ leaves the type and source
	// as they are.
	SetReplication(ctx context.Context, session ivsrt.SessionID, id ivsrt.ParticipantID, typ ivsrt.ReplicationType,
		state ivsrt.ReplicationState, sourceStage ivsrt.StageARN, sourceSession ivsrt.SessionID) error

	// AddEvent files ev under its session, ev.SessionID.
	AddEvent(ctx context.Context, ev *ivsrt.Event) error

	// AppendEvents appends evs to the event stream, in order.
	AppendEvents(ctx context.Context, evs ...*ivsrt.StreamEvent) error
}

// StartReplication applies ivsrt.ReplicationStore's
// StartParticipantReplication within tx, at now.
func StartReplication(ctx context.Context, tx ReplicationTx, r *ivsrt.ParticipantReplication, quota ivsrt.ReplicationQuota, now time.Time) error {
	session, err := tx.ActiveSession(ctx, r.SourceStageARN)
	if err != nil {
		return err
	}
	if session == "" {
		return notPublishing(r.ParticipantID, r.SourceStageARN)
	}
	state, userID, typ, err := tx.ParticipantReplication(ctx, session, r.ParticipantID)
	if err != nil {
		return err
	}
	switch {
	case state != ivsrt.ParticipantConnected:
		return notPublishing(r.ParticipantID, r.SourceStageARN)
	case typ == ivsrt.ReplicationReplica:
		return ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is a replica in stage %s: a replica cannot be replicated.", r.ParticipantID, r.SourceStageARN)
	}
	active, err := tx.ActiveReplications(ctx, r.SourceStageARN, r.ParticipantID)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(active, func(a *ivsrt.ParticipantReplication) bool { return a.DestinationStageARN == r.DestinationStageARN }) {
		return ReplicationExists(r.ParticipantID, r.DestinationStageARN)
	}
	if quota.MaxReplicasPerParticipant > 0 && len(active) >= quota.MaxReplicasPerParticipant {
		return ivsrt.Errorf(ivsrt.EQUOTA, "Replication quota exceeded: participant %s may be replicated to at most %d stages at once.",
			r.ParticipantID, quota.MaxReplicasPerParticipant)
	}
	r.SourceSessionID, r.State, r.StartTime, r.EndTime = session, ivsrt.ReplicationActive, now, time.Time{}
	if err := tx.InsertReplication(ctx, r); err != nil {
		return err
	}
	if err := tx.SetReplication(ctx, session, r.ParticipantID, ivsrt.ReplicationSource, ivsrt.ReplicationActive, "", ""); err != nil {
		return err
	}
	if err := tx.SetReplication(ctx, r.DestinationSessionID, r.ParticipantID, ivsrt.ReplicationReplica, ivsrt.ReplicationActive,
		r.SourceStageARN, session); err != nil {
		return err
	}
	if err := tx.AddEvent(ctx, replicationEvent(r, ivsrt.EventReplicationStarted, now)); err != nil {
		return err
	}
	return tx.AppendEvents(ctx, ivsrt.NewReplicationStreamEvent(r, userID, ivsrt.StreamReplicationStarted, now))
}

// StopReplication applies ivsrt.ReplicationStore's
// StopParticipantReplication within tx, at now.
func StopReplication(ctx context.Context, tx ReplicationTx, source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN, now time.Time) (*ivsrt.ParticipantReplication, error) {
	if _, err := tx.ActiveSession(ctx, source); ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil, noReplication(id, source, dest)
	} else if err != nil {
		return nil, err
	}
	active, err := tx.ActiveReplications(ctx, source, id)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(active, func(a *ivsrt.ParticipantReplication) bool { return a.DestinationStageARN == dest })
	if i < 0 {
		return nil, noReplication(id, source, dest)
	}
	r := active[i]
	r.State, r.EndTime = ivsrt.ReplicationStopped, now
	if err := tx.EndReplication(ctx, r); err != nil {
		return nil, err
	}
	others := slices.ContainsFunc(active, func(a *ivsrt.ParticipantReplication) bool {
		return a != r && a.SourceSessionID == r.SourceSessionID
	})
	if !others {
		if err := tx.SetReplication(ctx, r.SourceSessionID, id, "", ivsrt.ReplicationStopped, "", ""); err != nil {
			return nil, err
		}
	}
	if err := tx.SetReplication(ctx, r.DestinationSessionID, id, "", ivsrt.ReplicationStopped, "", ""); err != nil {
		return nil, err
	}
	_, userID, _, err := tx.ParticipantReplication(ctx, r.SourceSessionID, id)
	if err != nil {
		return nil, err
	}
	if err := tx.AddEvent(ctx, replicationEvent(r, ivsrt.EventReplicationStopped, now)); err != nil {
		return nil, err
	}
	if err := tx.AppendEvents(ctx, ivsrt.NewReplicationStreamEvent(r, userID, ivsrt.StreamReplicationStopped, now)); err != nil {
		return nil, err
	}
	return r, nil
}

// replicationEvent is the source participant's event of r starting or
// stopping.
func replicationEvent(r *ivsrt.ParticipantReplication, name ivsrt.EventName, at time.Time) *ivsrt.Event {
	return &ivsrt.Event{
		StageARN:             r.SourceStageARN,
		SessionID:            r.SourceSessionID,
		Name:                 name,
		ParticipantID:        r.ParticipantID,
		Time:                 at,
		DestinationStageARN:  r.DestinationStageARN,
		DestinationSessionID: r.DestinationSessionID,
	}
}

func notPublishing(id ivsrt.ParticipantID, stage ivsrt.StageARN) error {
	return ivsrt.Errorf(ivsrt.ENOTFOUND, "Participant %s is not publishing in stage %s.", id, stage)
}

func noReplication(id ivsrt.ParticipantID, source, dest ivsrt.StageARN) error {
	return ivsrt.Errorf(ivsrt.ENOTFOUND, "No active replication of participant %s from stage %s to stage %s.", id, source, dest)
}

// ReplicationExists is the error of starting a replication that is ACTIVE
// already.
func ReplicationExists(id ivsrt.ParticipantID, dest ivsrt.StageARN) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is already replicated to stage %s.", id, dest)
}
