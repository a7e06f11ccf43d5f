package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ivsrt/ivsrt"
)

// Participant replication: StartParticipantReplication,
// StopParticipantReplication and ListParticipantReplicas. The media plane
// (an ivsrt.ReplicationPlane) does the work; the checks made here first
// answer the usual refusals without touching live media, and the store
// checks them again, atomically, when the replication is recorded.

type replicationInput struct {
	SourceStageArn      *string `json:"sourceStageArn"`
	DestinationStageArn *string `json:"destinationStageArn"`
	ParticipantID       *string `json:"participantId"`
}

func (in replicationInput) validate(v *ivsrt.Validation) {
	if v.Required("sourceStageArn", in.SourceStageArn != nil) {
		v.StageARN("sourceStageArn", *in.SourceStageArn)
	}
	if v.Required("destinationStageArn", in.DestinationStageArn != nil) {
		v.StageARN("destinationStageArn", *in.DestinationStageArn)
	}
	if v.Required("participantId", in.ParticipantID != nil) {
		v.ParticipantID("participantId", *in.ParticipantID)
	}
}

type startParticipantReplicationInput struct {
	replicationInput
	ReconnectWindowSeconds *int              `json:"reconnectWindowSeconds"`
	Attributes             map[string]string `json:"attributes"`
}

// securityHeaders is the output of StartParticipantReplication and
// StopParticipantReplication: an empty body, and the response headers
// their output shapes declare (accessControlAllowOrigin, cacheControl,
// ...), which clients read into the output.
type securityHeaders struct{}

func (securityHeaders) setHeaders(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Strict-Transport-Security", "max-age=47304000; includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

func (securityHeaders) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

// headerSetter is an output that also sets response headers.
type headerSetter interface{ setHeaders(http.Header) }

func notPublishing(id string, stage string) error {
	return ivsrt.Errorf(ivsrt.ENOTFOUND, "Participant %s is not publishing in stage %s.", id, stage)
}

func (s *Server) startParticipantReplication(ctx context.Context, body []byte) (any, error) {
	var in startParticipantReplicationInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.replicationInput.validate(&v)
	if in.ReconnectWindowSeconds != nil {
		v.Range("reconnectWindowSeconds", *in.ReconnectWindowSeconds, 0, ivsrt.MaxReconnectWindowSeconds)
	}
	v.Attributes("attributes", in.Attributes)
	if err := v.Err(); err != nil {
		return nil, err
	}
	source, dest := ivsrt.StageARN(*in.SourceStageArn), ivsrt.StageARN(*in.DestinationStageArn)
	id := ivsrt.ParticipantID(*in.ParticipantID)
	if source == dest {
		return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "A participant cannot be replicated into the stage it publishes in: sourceStageArn and destinationStageArn are both %s.", source)
	}
	src, err := s.store.GetStage(ctx, source)
	if err != nil {
		return nil, stageNotFound(err, string(source))
	}
	dst, err := s.store.GetStage(ctx, dest)
	if err != nil {
		return nil, stageNotFound(err, string(dest))
	}
	if src.ActiveSessionID == "" {
		return nil, notPublishing(string(id), string(source))
	}
	p, err := s.store.GetParticipant(ctx, source, src.ActiveSessionID, id)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil, notPublishing(string(id), string(source))
	} else if err != nil {
		return nil, err
	}
	switch {
	case p.State != ivsrt.ParticipantConnected:
		return nil, notPublishing(string(id), string(source))
	case p.ReplicationType == ivsrt.ReplicationReplica:
		return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is a replica in stage %s: a replica cannot be replicated.", id, source)
	}
	if dst.ActiveSessionID != "" {
		if q, err := s.store.GetParticipant(ctx, dest, dst.ActiveSessionID, id); err == nil && q.State == ivsrt.ParticipantConnected {
			if q.ReplicationType == ivsrt.ReplicationReplica && q.SourceStageARN == source {
				return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is already replicated to stage %s.", id, dest)
			}
			return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is already in stage %s.", id, dest)
		} else if err != nil && ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
			return nil, err
		}
	}
	active, err := s.activeReplications(ctx, source, id)
	if err != nil {
		return nil, err
	}
	for _, r := range active {
		if r.DestinationStageARN == dest {
			return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is already replicated to stage %s.", id, dest)
		}
	}
	quota := s.cfg.ReplicationQuota
	if max := quota.MaxReplicasPerParticipant; max > 0 && len(active) >= max {
		return nil, ivsrt.Errorf(ivsrt.EQUOTA, "Replication quota exceeded: participant %s may be replicated to at most %d stages at once.", id, max)
	}
	rp, ok := s.media.(ivsrt.ReplicationPlane)
	if !ok {
		// Without a media plane nobody publishes.
		return nil, notPublishing(string(id), string(source))
	}
	window := 0
	if in.ReconnectWindowSeconds != nil {
		window = *in.ReconnectWindowSeconds
	}
	if _, err := rp.StartReplication(ctx, &ivsrt.ReplicationRequest{
		SourceStageARN:         source,
		DestinationStageARN:    dest,
		ParticipantID:          id,
		UserID:                 p.UserID,
		Attributes:             ivsrt.MergeAttributes(p.Attributes, in.Attributes),
		ReconnectWindowSeconds: window,
		Quota:                  quota,
	}); err != nil {
		return nil, err
	}
	return securityHeaders{}, nil
}

// activeReplications returns the participant's ACTIVE replications.
func (s *Server) activeReplications(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID) ([]*ivsrt.ParticipantReplication, error) {
	var active []*ivsrt.ParticipantReplication
	page := ivsrt.Page{Limit: ivsrt.MaxReplicaPageSize}
	for {
		rs, next, err := s.store.ListParticipantReplicas(ctx, source, id, page)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.State == ivsrt.ReplicationActive {
				active = append(active, r)
			}
		}
		if next == "" {
			return active, nil
		}
		page.After = next
	}
}

func (s *Server) stopParticipantReplication(ctx context.Context, body []byte) (any, error) {
	var in replicationInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	source, dest := ivsrt.StageARN(*in.SourceStageArn), ivsrt.StageARN(*in.DestinationStageArn)
	id := ivsrt.ParticipantID(*in.ParticipantID)
	for _, arn := range []ivsrt.StageARN{source, dest} {
		if _, err := s.store.GetStage(ctx, arn); err != nil {
			return nil, stageNotFound(err, string(arn))
		}
	}
	if err := s.stopReplication(ctx, source, id, dest); err != nil {
		return nil, err
	}
	return securityHeaders{}, nil
}

// stopReplication ends a replication: its replica through the media
// plane, or, when the media plane has none live (its node died), in the
// store alone.
func (s *Server) stopReplication(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN) error {
	if rp, ok := s.media.(ivsrt.ReplicationPlane); ok {
		err := rp.StopReplication(ctx, source, id, dest)
		if err == nil {
			return nil
		}
		if ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
			return fmt.Errorf("stop replication: %w", err)
		}
	}
	if _, err := s.store.StopParticipantReplication(ctx, source, id, dest); err != nil {
		return err
	}
	return nil
}

type listParticipantReplicasInput struct {
	SourceStageArn *string `json:"sourceStageArn"`
	ParticipantID  *string `json:"participantId"`
	NextToken      *string `json:"nextToken"`
	MaxResults     *int    `json:"maxResults"`
}

type participantReplicaWire struct {
	SourceStageArn       string `json:"sourceStageArn"`
	ParticipantID        string `json:"participantId"`
	SourceSessionID      string `json:"sourceSessionId"`
	DestinationStageArn  string `json:"destinationStageArn"`
	DestinationSessionID string `json:"destinationSessionId"`
	ReplicationState     string `json:"replicationState"`
}

type listParticipantReplicasOutput struct {
	Replicas  []participantReplicaWire `json:"replicas"`
	NextToken string                   `json:"nextToken,omitempty"`
}

func (s *Server) listParticipantReplicas(ctx context.Context, body []byte) (any, error) {
	var in listParticipantReplicasInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	if v.Required("sourceStageArn", in.SourceStageArn != nil) {
		v.StageARN("sourceStageArn", *in.SourceStageArn)
	}
	if v.Required("participantId", in.ParticipantID != nil) {
		v.ParticipantID("participantId", *in.ParticipantID)
	}
	if in.MaxResults != nil {
		v.Range("maxResults", *in.MaxResults, 1, ivsrt.MaxReplicaPageSize)
	}
	if in.NextToken != nil {
		v.NextToken("nextToken", *in.NextToken)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	scope := scopeOf("ListParticipantReplicas", *in.SourceStageArn, *in.ParticipantID)
	after, err := s.pages.decode(scope, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	limit := ivsrt.MaxReplicaPageSize
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	rs, next, err := s.store.ListParticipantReplicas(ctx, ivsrt.StageARN(*in.SourceStageArn), ivsrt.ParticipantID(*in.ParticipantID),
		ivsrt.Page{After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := listParticipantReplicasOutput{Replicas: []participantReplicaWire{}, NextToken: s.pages.encode(scope, next)}
	for _, r := range rs {
		out.Replicas = append(out.Replicas, participantReplicaWire{
			SourceStageArn:       string(r.SourceStageARN),
			ParticipantID:        string(r.ParticipantID),
			SourceSessionID:      string(r.SourceSessionID),
			DestinationStageArn:  string(r.DestinationStageARN),
			DestinationSessionID: string(r.DestinationSessionID),
			ReplicationState:     string(r.State),
		})
	}
	return out, nil
}
