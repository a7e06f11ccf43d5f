package api

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ivsrt/ivsrt"
)

// defaultCapabilities is what a token grants when the caller names none.
var defaultCapabilities = []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe}

// newToken builds and signs a participant token for stage; it is stored by
// the caller.
func (s *Server) newToken(ctx context.Context, stage ivsrt.StageARN, c tokenConfigWire) (*ivsrt.ParticipantToken, error) {
	now := s.now().UTC().Truncate(1e6) // the store keeps milliseconds
	duration := ivsrt.DefaultTokenDurationMinutes
	if c.Duration != nil {
		duration = *c.Duration
	}
	caps := defaultCapabilities
	if c.Capabilities != nil {
		// Canonical order, duplicates folded.
		caps = nil
		for _, want := range defaultCapabilities {
			for _, got := range c.Capabilities {
				if got == string(want) {
					caps = append(caps, want)
					break
				}
			}
		}
	}
	attrs := c.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	tok := &ivsrt.ParticipantToken{
		ParticipantID:   ivsrt.NewParticipantID(),
		StageARN:        stage,
		UserID:          deref(c.UserID),
		Attributes:      attrs,
		Capabilities:    caps,
		DurationMinutes: duration,
		CreatedAt:       now,
		ExpirationTime:  now.Add(minutes(duration)),
	}
	signed, err := s.tokens.Issue(ctx, tok)
	if err != nil {
		return nil, fmt.Errorf("sign participant token: %w", err)
	}
	tok.Token = signed
	return tok, nil
}

type createParticipantTokenInput struct {
	StageArn *string `json:"stageArn"`
	tokenConfigWire
}

type createParticipantTokenOutput struct {
	ParticipantToken participantTokenWire `json:"participantToken"`
}

func (s *Server) createParticipantToken(ctx context.Context, body []byte) (any, error) {
	var in createParticipantTokenInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	if v.Required("stageArn", in.StageArn != nil) {
		v.StageARN("stageArn", *in.StageArn)
	}
	v.TokenSettings("", in.Duration, deref(in.UserID), in.Attributes, in.Capabilities)
	if err := v.Err(); err != nil {
		return nil, err
	}
	tok, err := s.newToken(ctx, ivsrt.StageARN(*in.StageArn), in.tokenConfigWire)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateParticipantToken(ctx, tok); err != nil {
		return nil, stageNotFound(err, *in.StageArn)
	}
	return createParticipantTokenOutput{ParticipantToken: tokenFromDomain(tok)}, nil
}

type disconnectParticipantInput struct {
	StageArn      *string `json:"stageArn"`
	ParticipantID *string `json:"participantId"`
	Reason        *string `json:"reason"`
}

func (s *Server) disconnectParticipant(ctx context.Context, body []byte) (any, error) {
	var in disconnectParticipantInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	if v.Required("stageArn", in.StageArn != nil) {
		v.StageARN("stageArn", *in.StageArn)
	}
	if v.Required("participantId", in.ParticipantID != nil) {
		v.TokenParticipantID("participantId", *in.ParticipantID)
	}
	v.Length("reason", deref(in.Reason), 0, ivsrt.MaxDisconnectReasonLength)
	if err := v.Err(); err != nil {
		return nil, err
	}
	stage, id := ivsrt.StageARN(*in.StageArn), ivsrt.ParticipantID(*in.ParticipantID)
	// An encoder publishing with an ingest configuration has no token to
	// revoke: its configuration loses the stage instead, as AWS
	// documents, so that its stream key no longer publishes there.
	switch err := s.store.DetachIngestParticipant(ctx, stage, id); ivsrt.ErrorCode(err) {
	case "":
		if err := s.media.DisconnectParticipant(ctx, stage, id, deref(in.Reason)); err != nil {
			return nil, fmt.Errorf("disconnect ingest participant: %w", err)
		}
		return struct{}{}, nil
	case ivsrt.ENOTFOUND:
	default:
		return nil, err
	}
	if err := s.store.RevokeParticipantToken(ctx, stage, id, deref(in.Reason)); err != nil {
		if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
			// A replica has no token of the stage: disconnecting it stops
			// its replication.
			if found, err := s.disconnectReplica(ctx, stage, id); found || err != nil {
				return struct{}{}, err
			}
		}
		return nil, notFound(err, "Participant %s not found in stage %s", id, stage)
	}
	if err := s.media.DisconnectParticipant(ctx, stage, id, deref(in.Reason)); err != nil {
		return nil, fmt.Errorf("disconnect participant: %w", err)
	}
	return struct{}{}, nil
}

// disconnectReplica stops the replication whose replica in stage is the
// participant id, and reports whether there was one.
func (s *Server) disconnectReplica(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID) (bool, error) {
	active, err := s.store.ListActiveReplicas(ctx, stage)
	if err != nil {
		return false, err
	}
	for _, r := range active {
		if r.ParticipantID == id {
			err := s.stopReplication(ctx, r.SourceStageARN, id, stage)
			if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
				err = nil // it stopped meanwhile
			}
			return true, err
		}
	}
	return false, nil
}

type sessionInput struct {
	StageArn  *string `json:"stageArn"`
	SessionID *string `json:"sessionId"`
}

func (in sessionInput) validate(v *ivsrt.Validation) {
	if v.Required("stageArn", in.StageArn != nil) {
		v.StageARN("stageArn", *in.StageArn)
	}
	if v.Required("sessionId", in.SessionID != nil) {
		v.SessionID("sessionId", *in.SessionID)
	}
}

type getStageSessionOutput struct {
	StageSession sessionWire `json:"stageSession"`
}

func (s *Server) getStageSession(ctx context.Context, body []byte) (any, error) {
	var in sessionInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	sess, err := s.store.GetStageSession(ctx, ivsrt.StageARN(*in.StageArn), ivsrt.SessionID(*in.SessionID))
	if err != nil {
		return nil, notFound(err, "Stage session %s not found in stage %s", *in.SessionID, *in.StageArn)
	}
	return getStageSessionOutput{StageSession: sessionFromDomain(sess)}, nil
}

type listStageSessionsInput struct {
	StageArn *string `json:"stageArn"`
	listInput
}

type listStageSessionsOutput struct {
	StageSessions []sessionWire `json:"stageSessions"`
	NextToken     string        `json:"nextToken,omitempty"`
}

func (s *Server) listStageSessions(ctx context.Context, body []byte) (any, error) {
	var in listStageSessionsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	if v.Required("stageArn", in.StageArn != nil) {
		v.StageARN("stageArn", *in.StageArn)
	}
	in.listInput.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	scope := scopeOf("ListStageSessions", *in.StageArn)
	after, err := s.pages.decode(scope, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	sessions, next, err := s.store.ListStageSessions(ctx, ivsrt.StageARN(*in.StageArn), ivsrt.Page{After: after, Limit: pageSize(in.MaxResults)})
	if err != nil {
		return nil, err
	}
	out := listStageSessionsOutput{StageSessions: []sessionWire{}, NextToken: s.pages.encode(scope, next)}
	for _, sess := range sessions {
		out.StageSessions = append(out.StageSessions, sessionFromDomain(sess))
	}
	return out, nil
}

type participantInput struct {
	sessionInput
	ParticipantID *string `json:"participantId"`
}

func (in participantInput) validate(v *ivsrt.Validation) {
	in.sessionInput.validate(v)
	if v.Required("participantId", in.ParticipantID != nil) {
		v.ParticipantID("participantId", *in.ParticipantID)
	}
}

type getParticipantOutput struct {
	Participant participantRecordingWire `json:"participant"`
}

// participantRecordingWire is a Participant as GetParticipant gives it:
// with where it is recorded ("" for both while it is not) and what its
// client said of itself (left out where it said nothing).
type participantRecordingWire struct {
	participantWire
	RecordingS3BucketName string `json:"recordingS3BucketName"`
	RecordingS3Prefix     string `json:"recordingS3Prefix"`
	ISPName               string `json:"ispName,omitempty"`
	OSName                string `json:"osName,omitempty"`
	OSVersion             string `json:"osVersion,omitempty"`
	BrowserName           string `json:"browserName,omitempty"`
	BrowserVersion        string `json:"browserVersion,omitempty"`
	SDKVersion            string `json:"sdkVersion,omitempty"`
}

// recordingState is a participant's recordingState: DISABLED while it is
// not recorded.
func recordingState(p *ivsrt.Participant) string {
	if p.RecordingState == "" {
		return string(ivsrt.RecordingDisabled)
	}
	return string(p.RecordingState)
}

func (s *Server) getParticipant(ctx context.Context, body []byte) (any, error) {
	var in participantInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.store.GetParticipant(ctx, ivsrt.StageARN(*in.StageArn), ivsrt.SessionID(*in.SessionID), ivsrt.ParticipantID(*in.ParticipantID))
	if err != nil {
		return nil, notFound(err, "Participant %s not found in stage session %s", *in.ParticipantID, *in.SessionID)
	}
	return getParticipantOutput{Participant: participantRecordingWire{
		participantWire: participantWire{
			ParticipantID:              string(p.ID),
			UserID:                     p.UserID,
			State:                      string(p.State),
			FirstJoinTime:              ts(p.FirstJoinTime),
			Attributes:                 p.Attributes,
			Published:                  p.Published,
			RecordingState:             recordingState(p),
			Protocol:                   p.Protocol,
			participantReplicationWire: replicationFromDomain(p),
			participantIngestWire:      participantIngest(p),
		},
		RecordingS3BucketName: p.RecordingBucket,
		RecordingS3Prefix:     p.RecordingPrefix,
		ISPName:               p.Client.ISPName,
		OSName:                p.Client.OSName,
		OSVersion:             p.Client.OSVersion,
		BrowserName:           p.Client.BrowserName,
		BrowserVersion:        p.Client.BrowserVersion,
		SDKVersion:            p.Client.SDKVersion,
	}}, nil
}

type listParticipantsInput struct {
	sessionInput
	listInput
	FilterByUserID         *string `json:"filterByUserId"`
	FilterByPublished      *bool   `json:"filterByPublished"`
	FilterByState          *string `json:"filterByState"`
	FilterByRecordingState *string `json:"filterByRecordingState"`
}

type listParticipantsOutput struct {
	Participants []participantSummaryWire `json:"participants"`
	NextToken    string                   `json:"nextToken,omitempty"`
}

func (s *Server) listParticipants(ctx context.Context, body []byte) (any, error) {
	var in listParticipantsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.sessionInput.validate(&v)
	in.listInput.validate(&v)
	filters := 0
	var f ivsrt.ParticipantFilter
	if in.FilterByUserID != nil {
		filters++
		v.Length("filterByUserId", *in.FilterByUserID, 0, ivsrt.MaxUserIDLength)
		f.UserID = in.FilterByUserID
	}
	if in.FilterByPublished != nil {
		filters++
		f.Published = in.FilterByPublished
	}
	if in.FilterByState != nil {
		filters++
		v.Enum("filterByState", *in.FilterByState, string(ivsrt.ParticipantConnected), string(ivsrt.ParticipantDisconnected))
		state := ivsrt.ParticipantState(*in.FilterByState)
		f.State = &state
	}
	if in.FilterByRecordingState != nil {
		filters++
		v.Enum("filterByRecordingState", *in.FilterByRecordingState, "STARTING", "ACTIVE", "STOPPING", "STOPPED", "FAILED")
		f.RecordingState = in.FilterByRecordingState
	}
	if filters > 1 {
		v.Fail("Only one of filterByUserId, filterByPublished, filterByState or filterByRecordingState can be provided per request")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	scope := scopeOf("ListParticipants", *in.StageArn, *in.SessionID, deref(in.FilterByUserID),
		boolScope(in.FilterByPublished), deref(in.FilterByState), deref(in.FilterByRecordingState))
	after, err := s.pages.decode(scope, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	ps, next, err := s.store.ListParticipants(ctx, ivsrt.StageARN(*in.StageArn), ivsrt.SessionID(*in.SessionID), f,
		ivsrt.Page{After: after, Limit: pageSize(in.MaxResults)})
	if err != nil {
		return nil, err
	}
	out := listParticipantsOutput{Participants: []participantSummaryWire{}, NextToken: s.pages.encode(scope, next)}
	for _, p := range ps {
		out.Participants = append(out.Participants, participantSummaryWire{
			ParticipantID:              string(p.ID),
			UserID:                     p.UserID,
			State:                      string(p.State),
			FirstJoinTime:              ts(p.FirstJoinTime),
			Published:                  p.Published,
			RecordingState:             recordingState(p),
			participantReplicationWire: replicationFromDomain(p),
			participantIngestWire:      participantIngest(p),
		})
	}
	return out, nil
}

type listParticipantEventsInput struct {
	participantInput
	listInput
}

type listParticipantEventsOutput struct {
	Events    []eventWire `json:"events"`
	NextToken string      `json:"nextToken,omitempty"`
}

func (s *Server) listParticipantEvents(ctx context.Context, body []byte) (any, error) {
	var in listParticipantEventsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.participantInput.validate(&v)
	in.listInput.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	scope := scopeOf("ListParticipantEvents", *in.StageArn, *in.SessionID, *in.ParticipantID)
	after, err := s.pages.decode(scope, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	events, next, err := s.store.ListParticipantEvents(ctx, ivsrt.StageARN(*in.StageArn), ivsrt.SessionID(*in.SessionID),
		ivsrt.ParticipantID(*in.ParticipantID), ivsrt.Page{After: after, Limit: pageSize(in.MaxResults)})
	if err != nil {
		return nil, err
	}
	out := listParticipantEventsOutput{Events: []eventWire{}, NextToken: s.pages.encode(scope, next)}
	for _, e := range events {
		out.Events = append(out.Events, eventWire{
			Name:                 string(e.Name),
			ParticipantID:        string(e.ParticipantID),
			EventTime:            ts(e.Time),
			RemoteParticipantID:  string(e.RemoteParticipantID),
			ErrorCode:            e.ErrorCode,
			DestinationStageArn:  string(e.DestinationStageARN),
			DestinationSessionID: string(e.DestinationSessionID),
			Replica:              e.Replica,
			PreviousToken:        exchangedTokenOut(e.PreviousToken),
			NewToken:             exchangedTokenOut(e.NewToken),
		})
	}
	return out, nil
}

// scopeOf names one list, parameters included, for binding nextTokens to it.
func scopeOf(parts ...string) string { return strings.Join(parts, "\x00") }

func boolScope(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}
