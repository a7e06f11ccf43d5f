package api

import (
	"context"
	"fmt"

	"github.com/ivsrt/ivsrt"
)

func (s *Server) stageFromDomain(st *ivsrt.Stage) *stageWire {
	tags := st.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return &stageWire{
		Arn:                                   string(st.ARN),
		Name:                                  st.Name,
		ActiveSessionID:                       string(st.ActiveSessionID),
		Tags:                                  tags,
		AutoParticipantRecordingConfiguration: recordingFromDomain(st.AutoParticipantRecording),
		Endpoints: &stageEndpoints{Events: s.eventsURL, Whip: s.whipURL,
			RTMP: s.cfg.RTMPURL, RTMPS: s.cfg.RTMPSURL},
	}
}

func stageNotFound(err error, arn string) error {
	return notFound(err, "Stage not found: %s", arn)
}

type createStageInput struct {
	Name                                  *string           `json:"name"`
	ParticipantTokenConfigurations        []tokenConfigWire `json:"participantTokenConfigurations"`
	Tags                                  map[string]string `json:"tags"`
	AutoParticipantRecordingConfiguration *recordingWire    `json:"autoParticipantRecordingConfiguration"`
}

type createStageOutput struct {
	Stage             *stageWire             `json:"stage"`
	ParticipantTokens []participantTokenWire `json:"participantTokens"`
}

func validateRecording(v *ivsrt.Validation, r *recordingWire) {
	if r != nil && v.Required("autoParticipantRecordingConfiguration.storageConfigurationArn", r.StorageConfigurationArn != nil) {
		v.AutoParticipantRecording("autoParticipantRecordingConfiguration", r.toDomain())
	}
}

func (s *Server) createStage(ctx context.Context, body []byte) (any, error) {
	var in createStageInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	v.StageName("name", deref(in.Name))
	v.Tags("tags", in.Tags)
	if len(in.ParticipantTokenConfigurations) > ivsrt.MaxTokenConfigurations {
		v.Fail("Value at 'participantTokenConfigurations' failed to satisfy constraint: Member must have length less than or equal to %d", ivsrt.MaxTokenConfigurations)
	}
	for i, c := range in.ParticipantTokenConfigurations {
		v.TokenSettings(fmt.Sprintf("participantTokenConfigurations.%d.member.", i+1), c.Duration, deref(c.UserID), c.Attributes, c.Capabilities)
	}
	validateRecording(&v, in.AutoParticipantRecordingConfiguration)
	if err := v.Err(); err != nil {
		return nil, err
	}

	stage := &ivsrt.Stage{
		ARN:                      ivsrt.NewStageARN(s.cfg.Region, s.cfg.AccountID, ivsrt.NewStageID()),
		Name:                     deref(in.Name),
		Tags:                     in.Tags,
		AutoParticipantRecording: in.AutoParticipantRecordingConfiguration.toDomain(),
	}
	tokens := make([]*ivsrt.ParticipantToken, len(in.ParticipantTokenConfigurations))
	for i, c := range in.ParticipantTokenConfigurations {
		tok, err := s.newToken(ctx, stage.ARN, c)
		if err != nil {
			return nil, err
		}
		tokens[i] = tok
	}
	if err := s.store.CreateStage(ctx, stage, tokens, s.cfg.Quota); err != nil {
		return nil, err
	}
	out := createStageOutput{Stage: s.stageFromDomain(stage), ParticipantTokens: []participantTokenWire{}}
	for _, t := range tokens {
		out.ParticipantTokens = append(out.ParticipantTokens, tokenFromDomain(t))
	}
	return out, nil
}

type stageARNInput struct {
	Arn *string `json:"arn"`
}

type stageOutput struct {
	Stage *stageWire `json:"stage"`
}

func (s *Server) getStage(ctx context.Context, body []byte) (any, error) {
	var in stageARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validateARNInput(in.Arn); err != nil {
		return nil, err
	}
	st, err := s.store.GetStage(ctx, ivsrt.StageARN(*in.Arn))
	if err != nil {
		return nil, stageNotFound(err, *in.Arn)
	}
	return stageOutput{Stage: s.stageFromDomain(st)}, nil
}

func validateARNInput(arn *string) error {
	var v ivsrt.Validation
	if v.Required("arn", arn != nil) {
		v.StageARN("arn", *arn)
	}
	return v.Err()
}

type updateStageInput struct {
	Arn                                   *string        `json:"arn"`
	Name                                  *string        `json:"name"`
	AutoParticipantRecordingConfiguration *recordingWire `json:"autoParticipantRecordingConfiguration"`
}

func (s *Server) updateStage(ctx context.Context, body []byte) (any, error) {
	var in updateStageInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	if v.Required("arn", in.Arn != nil) {
		v.StageARN("arn", *in.Arn)
	}
	if in.Name != nil {
		v.StageName("name", *in.Name)
	}
	validateRecording(&v, in.AutoParticipantRecordingConfiguration)
	if err := v.Err(); err != nil {
		return nil, err
	}
	st, err := s.store.UpdateStage(ctx, ivsrt.StageARN(*in.Arn), ivsrt.StageUpdate{
		Name:                     in.Name,
		AutoParticipantRecording: in.AutoParticipantRecordingConfiguration.toDomain(),
	})
	if err != nil {
		return nil, stageNotFound(err, *in.Arn)
	}
	return stageOutput{Stage: s.stageFromDomain(st)}, nil
}

func (s *Server) deleteStage(ctx context.Context, body []byte) (any, error) {
	var in stageARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validateARNInput(in.Arn); err != nil {
		return nil, err
	}
	arn := ivsrt.StageARN(*in.Arn)
	if _, err := s.store.GetStage(ctx, arn); err != nil {
		return nil, stageNotFound(err, *in.Arn)
	}
	// The ingest configurations whose encoders publish to the stage lose
	// it, as AWS documents: while they are still marked ACTIVE, before
	// their encoders are disconnected with everyone, and so that an
	// encoder that reconnects at once finds no stage to publish to.
	if _, err := s.store.DetachActiveIngest(ctx, arn); err != nil {
		return nil, fmt.Errorf("detach ingest configurations: %w", err)
	}
	// Everyone leaves before the stage goes, so that their LEFT events and
	// the session's end are recorded against a stage that still exists.
	if err := s.media.CloseStage(ctx, arn); err != nil {
		return nil, fmt.Errorf("close stage media: %w", err)
	}
	// The replicas in the stage left with everyone; any replication into
	// it the media plane did not end (its node died) stops now.
	if _, err := ivsrt.StopReplicas(ctx, s.store, arn); err != nil {
		return nil, fmt.Errorf("stop replications: %w", err)
	}
	if err := s.store.DeleteStage(ctx, arn); err != nil {
		return nil, stageNotFound(err, *in.Arn)
	}
	return struct{}{}, nil
}

type listInput struct {
	NextToken  *string `json:"nextToken"`
	MaxResults *int    `json:"maxResults"`
}

func (in listInput) validate(v *ivsrt.Validation) {
	v.MaxResults("maxResults", in.MaxResults)
	if in.NextToken != nil {
		v.NextToken("nextToken", *in.NextToken)
	}
}

type listStagesOutput struct {
	Stages    []stageSummaryWire `json:"stages"`
	NextToken string             `json:"nextToken,omitempty"`
}

func (s *Server) listStages(ctx context.Context, body []byte) (any, error) {
	stages, next, err := listPage(ctx, s, body, "ListStages", ivsrt.DefaultPageSize, s.store.ListStages, func(st *ivsrt.Stage) stageSummaryWire {
		w := s.stageFromDomain(st)
		return stageSummaryWire{Arn: w.Arn, Name: w.Name, ActiveSessionID: w.ActiveSessionID, Tags: w.Tags}
	})
	if err != nil {
		return nil, err
	}
	return listStagesOutput{Stages: stages, NextToken: next}, nil
}
