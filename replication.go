package ivsrt

import (
	"context"
	"maps"
	"time"
)

// Participant replication copies a publishing participant of one stage
// (the source) into another (the destination): the replica is a
// participant of the destination with the source participant's id, whose
// publication is the source participant's media.

// ReplicationType tells whether a participant is replicated to other
// stages (SOURCE), is a replica from another stage (REPLICA), or neither.
type ReplicationType string

const (
	ReplicationNone    ReplicationType = "NONE"
	ReplicationSource  ReplicationType = "SOURCE"
	ReplicationReplica ReplicationType = "REPLICA"
)

// ReplicationState is the state of a replication, and of the participants
// at either end of it.
type ReplicationState string

const (
	ReplicationActive  ReplicationState = "ACTIVE"
	ReplicationStopped ReplicationState = "STOPPED"
)

// Event names of replications, recorded on the source participant in the
// source stage.
const (
	EventReplicationStarted EventName = "REPLICATION_STARTED"
	EventReplicationStopped EventName = "REPLICATION_STOPPED"
)

// Limits of replication: the model's range of reconnectWindowSeconds, and
// the default of how many stages a participant may be replicated to at
// once (ivsrt's own, configurable).
const (
	MaxReconnectWindowSeconds        = 300
	MaxReplicaPageSize               = 50
	DefaultMaxReplicasPerParticipant = 5
)

// ParticipantReplication is one replication of a participant from a
// source stage session into a destination stage session.
type ParticipantReplication struct {
	SourceStageARN       StageARN
	ParticipantID        ParticipantID
	SourceSessionID      SessionID
	DestinationStageARN  StageARN
	DestinationSessionID SessionID
	State                ReplicationState

	ReconnectWindowSeconds int
	StartTime              time.Time
	EndTime                time.Time // zero while ACTIVE
}

// ReplicationQuota bounds the replications of one participant.
type ReplicationQuota struct {
	MaxReplicasPerParticipant int // 0 means no limit
}

// ReplicationRequest is what StartParticipantReplication asks of the media
// plane: the replica joins Destination as ParticipantID, with UserID and
// Attributes (the source token's merged with the request's), and copies
// the participant's publication in Source for as long as the replication
// lasts; a source publisher that goes away is waited for
// ReconnectWindowSeconds.
type ReplicationRequest struct {
	SourceStageARN         StageARN
	DestinationStageARN    StageARN
	ParticipantID          ParticipantID
	UserID                 string
	Attributes             map[string]string
	ReconnectWindowSeconds int
	Quota                  ReplicationQuota
}

// MergeAttributes returns the attributes of a replica: the token's, with
// the request's replacing those of the same keys.
func MergeAttributes(token, request map[string]string) map[string]string {
	out := make(map[string]string, len(token)+len(request))
	maps.Copy(out, token)
	maps.Copy(out, request)
	return out
}

// ReplicationPlane is the part of the media plane that carries
// replications. The API uses it when its MediaPlane implements it.
type ReplicationPlane interface {
	// StartReplication makes the replica of r join r's destination stage
	// and copy the source participant's media, and records the start
	// (see ReplicationStore.StartParticipantReplication). Returns
	// ENOTFOUND if the participant does not publish in the source stage,
	// ECONFLICT if it is a replica itself or is already in the destination
	// stage, and EQUOTA if r's quota, or the destination's publisher
	// limit, would be exceeded.
	StartReplication(ctx context.Context, r *ReplicationRequest) (*ParticipantReplication, error)

	// StopReplication ends the replica of participant id from source in
	// dest and records the stop. Returns ENOTFOUND if no such replica is
	// live in the media plane (the store may still have it ACTIVE: a
	// node that died had it).
	StopReplication(ctx context.Context, source StageARN, id ParticipantID, dest StageARN) error
}

// ReplicationStore persists replications. Starting and stopping one each
// record the source participant's event (REPLICATION_STARTED,
// REPLICATION_STOPPED) and append its stream event, in one transaction.
type ReplicationStore interface {
	// StartParticipantReplication records r as ACTIVE once its replica has
	// joined r's destination (r.DestinationSessionID set): the source
	// participant becomes a SOURCE, ACTIVE, and the replica in the
	// destination session a REPLICA of r's source. It fills in
	// r.SourceSessionID (the source stage's active session), r.State and
	// r.StartTime (the store's clock). Returns ENOTFOUND if the source
	// stage does not exist or the participant is not CONNECTED in its
	// active session; ECONFLICT if the participant is a replica there, or
	// is ACTIVE in a replication to the same destination; EQUOTA if it
	// already has quota's number of ACTIVE replications.
	StartParticipantReplication(ctx context.Context, r *ParticipantReplication, quota ReplicationQuota) error

	// StopParticipantReplication stops the ACTIVE replication of id from
	// source to dest, whether or not the participant is still in the
	// source stage, and returns it. The source participant's replication
	// state becomes STOPPED when it has no other ACTIVE replication in
	// its session; the replica's, STOPPED. Returns ENOTFOUND if there is
	// no such ACTIVE replication.
	StopParticipantReplication(ctx context.Context, source StageARN, id ParticipantID, dest StageARN) (*ParticipantReplication, error)

	// ListParticipantReplicas returns the replications of a participant of
	// a source stage, ACTIVE and STOPPED, in the order they started.
	ListParticipantReplicas(ctx context.Context, source StageARN, id ParticipantID, page Page) (replicas []*ParticipantReplication, next string, err error)

	// ListActiveReplicas returns the ACTIVE replications into a
	// destination stage, in the order they started.
	ListActiveReplicas(ctx context.Context, dest StageARN) ([]*ParticipantReplication, error)
}

// DetailTypeStageUpdate events of replications (the detail's event_name).
const (
	StreamReplicationStarted = "Participant Replication Started"
	StreamReplicationStopped = "Participant Replication Stopped"
)

// NewReplicationStreamEvent returns the stream event of a replication
// starting or stopping (name), filed under the source stage: detail
// session_id (the source session), event_name, participant_id, user_id,
// source_stage_arn, source_session_id, destination_stage_arn and
// destination_session_id.
func NewReplicationStreamEvent(r *ParticipantReplication, userID, name string, at time.Time) *StreamEvent {
	return newStreamEvent(r.SourceStageARN, at, DetailTypeStageUpdate, map[string]any{
		"session_id":             string(r.SourceSessionID),
		"event_name":             name,
		"participant_id":         string(r.ParticipantID),
		"user_id":                userID,
		"source_stage_arn":       string(r.SourceStageARN),
		"source_session_id":      string(r.SourceSessionID),
		"destination_stage_arn":  string(r.DestinationStageARN),
		"destination_session_id": string(r.DestinationSessionID),
	})
}

// replicaStopper is the part of ReplicationStore that StopReplicas uses.
type replicaStopper interface {
	ListActiveReplicas(ctx context.Context, dest StageARN) ([]*ParticipantReplication, error)
	StopParticipantReplication(ctx context.Context, source StageARN, id ParticipantID, dest StageARN) (*ParticipantReplication, error)
}

// StopReplicas stops, in the store, the ACTIVE replications into a
// destination stage whose media plane is gone (a crashed run's, a dead
// node's): their replicas went with it. It returns how many it stopped.
func StopReplicas(ctx context.Context, store replicaStopper, dest StageARN) (int, error) {
	rs, err := store.ListActiveReplicas(ctx, dest)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rs {
		_, err := store.StopParticipantReplication(ctx, r.SourceStageARN, r.ParticipantID, r.DestinationStageARN)
		if err != nil && ErrorCode(err) != ENOTFOUND {
			return n, err
		}
		if err == nil {
			n++
		}
	}
	return n, nil
}

// Feeds carry a source participant's media to its replicas (see the sfu
// package). In a cluster the node hosting a replica asks the node hosting
// its source for a feed; these are the terms of that exchange.

// FeedEvent is what a feed tells the replica it feeds: the source
// stopped publishing (FeedPaused), publishes again (FeedResumed), or the
// feed ended: FeedEnded, or FeedEndedFinal when the source participant
// was disconnected or its stage deleted, which ends the replication at
// once, whatever its reconnect window.
type FeedEvent string

const (
	FeedPaused     FeedEvent = "paused"
	FeedResumed    FeedEvent = "resumed"
	FeedEnded      FeedEvent = "ended"
	FeedEndedFinal FeedEvent = "final"
)

// FeedInfo is what a replica learns of the publication a feed opens on.
type FeedInfo struct {
	SessionID SessionID `json:"sessionId"` // the source stage's session
	Kinds     []string  `json:"kinds"`     // "audio", "video": what the source publishes
	Live      bool      `json:"live"`      // publishing now
	// Layers are the rids of a simulcast video, sent as one video track
	// each, in this order; none for a video of one layer.
	Layers []string `json:"layers,omitempty"`
}
