package api

import (
	"context"
	"fmt"

	"github.com/ivsrt/ivsrt"
)

// WithIngestDisconnector lets DeleteIngestConfiguration with force end the
// publishing of the configuration's encoders. Without one there is
// nothing to end: no RTMP(S) server runs.
func WithIngestDisconnector(d ivsrt.IngestDisconnector) Option {
	return func(s *Server) { s.ingest = d }
}

// ingestConfigurationWire is an IngestConfiguration as Create, Get and
// Update return it, stream keys included. stageArn and userId are always
// there, "" for none, as AWS shows them.
type ingestConfigurationWire struct {
	Name                       string                          `json:"name"`
	Arn                        string                          `json:"arn"`
	IngestProtocol             string                          `json:"ingestProtocol"`
	StreamKey                  string                          `json:"streamKey"`
	StageArn                   string                          `json:"stageArn"`
	ParticipantID              string                          `json:"participantId"`
	State                      string                          `json:"state"`
	UserID                     string                          `json:"userId"`
	RedundantIngest            bool                            `json:"redundantIngest"`
	RedundantIngestCredentials []redundantIngestCredentialWire `json:"redundantIngestCredentials,omitempty"`
	Attributes                 map[string]string               `json:"attributes,omitempty"`
	Tags                       map[string]string               `json:"tags"`
}

type redundantIngestCredentialWire struct {
	ParticipantID string `json:"participantId"`
	StreamKey     string `json:"streamKey"`
}

// ingestConfigurationSummaryWire is an IngestConfigurationSummary, as
// ListIngestConfigurations returns each: no stream key, attributes or
// tags.
type ingestConfigurationSummaryWire struct {
	Name            string `json:"name"`
	Arn             string `json:"arn"`
	IngestProtocol  string `json:"ingestProtocol"`
	StageArn        string `json:"stageArn"`
	ParticipantID   string `json:"participantId"`
	State           string `json:"state"`
	UserID          string `json:"userId"`
	RedundantIngest bool   `json:"redundantIngest"`
}

func ingestFromDomain(ic *ivsrt.IngestConfiguration) ingestConfigurationWire {
	tags := ic.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	primary := ic.Primary()
	w := ingestConfigurationWire{
		Name:            ic.Name,
		Arn:             string(ic.ARN),
		IngestProtocol:  string(ic.Protocol),
		StreamKey:       primary.StreamKey,
		StageArn:        string(ic.StageARN),
		ParticipantID:   string(primary.ParticipantID),
		State:           string(ic.State()),
		UserID:          ic.UserID,
		RedundantIngest: ic.RedundantIngest(),
		Attributes:      ic.Attributes,
		Tags:            tags,
	}
	for _, c := range ic.Credentials {
		if c.Redundant {
			w.RedundantIngestCredentials = append(w.RedundantIngestCredentials,
				redundantIngestCredentialWire{ParticipantID: string(c.ParticipantID), StreamKey: c.StreamKey})
		}
	}
	return w
}

func ingestSummaryFromDomain(ic *ivsrt.IngestConfiguration) ingestConfigurationSummaryWire {
	return ingestConfigurationSummaryWire{
		Name:            ic.Name,
		Arn:             string(ic.ARN),
		IngestProtocol:  string(ic.Protocol),
		StageArn:        string(ic.StageARN),
		ParticipantID:   string(ic.Primary().ParticipantID),
		State:           string(ic.State()),
		UserID:          ic.UserID,
		RedundantIngest: ic.RedundantIngest(),
	}
}

func ingestNotFound(err error, arn string) error {
	return notFound(err, "Ingest configuration not found: %s", arn)
}

type createIngestConfigurationInput struct {
	Name            *string           `json:"name"`
	StageArn        *string           `json:"stageArn"`
	UserID          *string           `json:"userId"`
	Attributes      map[string]string `json:"attributes"`
	IngestProtocol  *string           `json:"ingestProtocol"`
	InsecureIngest  *bool             `json:"insecureIngest"`
	RedundantIngest *bool             `json:"redundantIngest"`
	Tags            map[string]string `json:"tags"`
}

type ingestConfigurationOutput struct {
	IngestConfiguration ingestConfigurationWire `json:"ingestConfiguration"`
}

// createIngestConfiguration makes a configuration with fresh credentials.
// A stageArn is checked against the model's pattern only: as in AWS, whose
// CreateIngestConfiguration has no ResourceNotFoundException, it may name
// a stage that does not exist, and its stream keys then publish nowhere.
func (s *Server) createIngestConfiguration(ctx context.Context, body []byte) (any, error) {
	var in createIngestConfigurationInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	if in.Name != nil {
		v.IngestConfigurationName("name", *in.Name)
	}
	if in.StageArn != nil {
		v.IngestStageARN("stageArn", *in.StageArn)
	}
	v.Length("userId", deref(in.UserID), 0, ivsrt.MaxUserIDLength)
	v.Attributes("attributes", in.Attributes)
	if v.Required("ingestProtocol", in.IngestProtocol != nil) {
		v.IngestProtocol("ingestProtocol", *in.IngestProtocol, "insecureIngest", deref(in.InsecureIngest))
	}
	v.Tags("tags", in.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	arn := ivsrt.NewIngestConfigurationARN(s.cfg.Region, s.cfg.AccountID, ivsrt.NewIngestConfigurationID())
	ic := &ivsrt.IngestConfiguration{
		ARN:            arn,
		Name:           deref(in.Name),
		StageARN:       ivsrt.StageARN(deref(in.StageArn)),
		UserID:         deref(in.UserID),
		Attributes:     in.Attributes,
		Protocol:       ivsrt.IngestProtocol(*in.IngestProtocol),
		InsecureIngest: deref(in.InsecureIngest),
		Credentials:    []ivsrt.IngestCredential{ivsrt.NewIngestCredential(arn, false)},
		Tags:           in.Tags,
	}
	if deref(in.RedundantIngest) {
		ic.Credentials = append(ic.Credentials, ivsrt.NewIngestCredential(arn, true))
	}
	if ic.Attributes == nil {
		ic.Attributes = map[string]string{}
	}
	if err := s.store.CreateIngestConfiguration(ctx, ic); err != nil {
		return nil, err
	}
	return ingestConfigurationOutput{IngestConfiguration: ingestFromDomain(ic)}, nil
}

type ingestConfigurationARNInput struct {
	Arn *string `json:"arn"`
}

func (in ingestConfigurationARNInput) validate(v *ivsrt.Validation) {
	if v.Required("arn", in.Arn != nil) {
		v.IngestConfigurationARN("arn", *in.Arn)
	}
}

func (s *Server) getIngestConfiguration(ctx context.Context, body []byte) (any, error) {
	var in ingestConfigurationARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	ic, err := s.store.GetIngestConfiguration(ctx, ivsrt.IngestConfigurationARN(*in.Arn))
	if err != nil {
		return nil, ingestNotFound(err, *in.Arn)
	}
	return ingestConfigurationOutput{IngestConfiguration: ingestFromDomain(ic)}, nil
}

type updateIngestConfigurationInput struct {
	ingestConfigurationARNInput
	StageArn        *string `json:"stageArn"`
	RedundantIngest *bool   `json:"redundantIngest"`
}

// updateIngestConfiguration changes the stage, and turns redundant ingest
// on or off; the model documents a default of false for redundantIngest,
// but an absent one leaves it as it is, since clients leave out a false
// they were not told of. The store refuses the change while an encoder
// publishes.
func (s *Server) updateIngestConfiguration(ctx context.Context, body []byte) (any, error) {
	var in updateIngestConfigurationInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.validate(&v)
	if in.StageArn != nil {
		v.IngestStageARN("stageArn", *in.StageArn)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	upd := ivsrt.IngestConfigurationUpdate{RedundantIngest: in.RedundantIngest}
	if in.StageArn != nil {
		stage := ivsrt.StageARN(*in.StageArn)
		upd.StageARN = &stage
	}
	ic, err := s.store.UpdateIngestConfiguration(ctx, ivsrt.IngestConfigurationARN(*in.Arn), upd)
	if err != nil {
		return nil, ingestNotFound(err, *in.Arn)
	}
	return ingestConfigurationOutput{IngestConfiguration: ingestFromDomain(ic)}, nil
}

type deleteIngestConfigurationInput struct {
	ingestConfigurationARNInput
	Force *bool `json:"force"`
}

// deleteIngestConfiguration removes a configuration. With force its
// encoders are disconnected first, whatever the state the store shows: an
// encoder that has just connected may not be marked ACTIVE yet, and
// disconnecting nobody costs nothing.
func (s *Server) deleteIngestConfiguration(ctx context.Context, body []byte) (any, error) {
	var in deleteIngestConfigurationInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	arn := ivsrt.IngestConfigurationARN(*in.Arn)
	force := deref(in.Force)
	if force {
		if _, err := s.store.GetIngestConfiguration(ctx, arn); err != nil {
			return nil, ingestNotFound(err, *in.Arn)
		}
		if s.ingest != nil {
			if err := s.ingest.DisconnectIngest(ctx, arn); err != nil {
				return nil, fmt.Errorf("disconnect ingest: %w", err)
			}
		}
	}
	if err := s.store.DeleteIngestConfiguration(ctx, arn, force); err != nil {
		return nil, ingestNotFound(err, *in.Arn)
	}
	return struct{}{}, nil
}

type listIngestConfigurationsInput struct {
	listInput
	FilterByStageArn *string `json:"filterByStageArn"`
	FilterByState    *string `json:"filterByState"`
}

type listIngestConfigurationsOutput struct {
	IngestConfigurations []ingestConfigurationSummaryWire `json:"ingestConfigurations"`
	NextToken            string                           `json:"nextToken,omitempty"`
}

func (s *Server) listIngestConfigurations(ctx context.Context, body []byte) (any, error) {
	var in listIngestConfigurationsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	in.listInput.validate(&v)
	var f ivsrt.IngestFilter
	if in.FilterByStageArn != nil {
		v.StageARN("filterByStageArn", *in.FilterByStageArn)
		stage := ivsrt.StageARN(*in.FilterByStageArn)
		f.StageARN = &stage
	}
	if in.FilterByState != nil {
		v.Enum("filterByState", *in.FilterByState, string(ivsrt.IngestActive), string(ivsrt.IngestInactive))
		state := ivsrt.IngestState(*in.FilterByState)
		f.State = &state
	}
	if in.FilterByStageArn != nil && in.FilterByState != nil {
		v.Fail("Only one of filterByStageArn or filterByState can be provided per request")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	scope := scopeOf("ListIngestConfigurations", deref(in.FilterByStageArn), deref(in.FilterByState))
	after, err := s.pages.decode(scope, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	ics, next, err := s.store.ListIngestConfigurations(ctx, f, ivsrt.Page{After: after, Limit: pageSize(in.MaxResults)})
	if err != nil {
		return nil, err
	}
	out := listIngestConfigurationsOutput{IngestConfigurations: []ingestConfigurationSummaryWire{}, NextToken: s.pages.encode(scope, next)}
	for _, ic := range ics {
		out.IngestConfigurations = append(out.IngestConfigurations, ingestSummaryFromDomain(ic))
	}
	return out, nil
}
