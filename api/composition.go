package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/composition/layout"
)

// WithCompositor lets StartComposition and StopComposition run
// compositions. Without one, StartComposition is refused (the server runs
// none) and the other composition operations read what is stored.
func WithCompositor(c ivsrt.Compositor) Option { return func(s *Server) { s.compositor = c } }

// Wire shapes of the composition operations (the model's
// DestinationConfiguration, Destination, Composition and their parts).
// Pointers tell a member the request left out from a zero value.

type channelDestinationWire struct {
	ChannelArn              *string `json:"channelArn,omitempty"`
	EncoderConfigurationArn *string `json:"encoderConfigurationArn,omitempty"`
}

type hlsConfigurationWire struct {
	TargetSegmentDurationSeconds *int `json:"targetSegmentDurationSeconds,omitempty"`
}

type compositionRecordingWire struct {
	HlsConfiguration *hlsConfigurationWire `json:"hlsConfiguration,omitempty"`
	Format           *string               `json:"format,omitempty"`
}

type compositionThumbnailWire struct {
	TargetIntervalSeconds *int     `json:"targetIntervalSeconds,omitempty"`
	Storage               []string `json:"storage,omitempty"`
}

type s3DestinationWire struct {
	StorageConfigurationArn  *string                    `json:"storageConfigurationArn,omitempty"`
	EncoderConfigurationArns []string                   `json:"encoderConfigurationArns,omitempty"`
	RecordingConfiguration   *compositionRecordingWire  `json:"recordingConfiguration,omitempty"`
	ThumbnailConfigurations  []compositionThumbnailWire `json:"thumbnailConfigurations,omitempty"`
}

type destinationConfigurationWire struct {
	Name    *string                 `json:"name,omitempty"`
	Channel *channelDestinationWire `json:"channel,omitempty"`
	S3      *s3DestinationWire      `json:"s3,omitempty"`
}

type s3DetailWire struct {
	RecordingPrefix string `json:"recordingPrefix"`
}

type destinationDetailWire struct {
	S3 *s3DetailWire `json:"s3,omitempty"`
}

type destinationWire struct {
	ID            string                       `json:"id"`
	State         string                       `json:"state"`
	StartTime     *timestamp                   `json:"startTime,omitempty"`
	EndTime       *timestamp                   `json:"endTime,omitempty"`
	Configuration destinationConfigurationWire `json:"configuration"`
	Detail        *destinationDetailWire       `json:"detail,omitempty"`
}

type destinationSummaryWire struct {
	ID        string     `json:"id"`
	State     string     `json:"state"`
	StartTime *timestamp `json:"startTime,omitempty"`
	EndTime   *timestamp `json:"endTime,omitempty"`
}

type compositionWire struct {
	Arn          string            `json:"arn"`
	StageArn     string            `json:"stageArn"`
	State        string            `json:"state"`
	Layout       layout.Config     `json:"layout"`
	Destinations []destinationWire `json:"destinations"`
	Tags         map[string]string `json:"tags"`
	StartTime    *timestamp        `json:"startTime,omitempty"`
	EndTime      *timestamp        `json:"endTime,omitempty"`
}

type compositionSummaryWire struct {
	Arn          string                   `json:"arn"`
	StageArn     string                   `json:"stageArn"`
	State        string                   `json:"state"`
	Destinations []destinationSummaryWire `json:"destinations"`
	Tags         map[string]string        `json:"tags"`
	StartTime    *timestamp               `json:"startTime,omitempty"`
	EndTime      *timestamp               `json:"endTime,omitempty"`
}

// optionalTime is ts for a time that may not have happened yet.
func optionalTime(t time.Time) *timestamp {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}

func strPtr(s string) *string { return &s }

func destinationConfigFromDomain(d ivsrt.DestinationConfiguration) destinationConfigurationWire {
	w := destinationConfigurationWire{Name: strPtr(d.Name)}
	if c := d.Channel; c != nil {
		w.Channel = &channelDestinationWire{ChannelArn: strPtr(c.ChannelARN)}
		if c.EncoderConfigurationARN != "" {
			w.Channel.EncoderConfigurationArn = strPtr(string(c.EncoderConfigurationARN))
		}
	}
	if s := d.S3; s != nil {
		segment := s.TargetSegmentDurationSeconds
		if segment == 0 {
			segment = ivsrt.DefaultTargetSegmentSeconds
		}
		w.S3 = &s3DestinationWire{
			StorageConfigurationArn: strPtr(string(s.StorageConfigurationARN)),
			RecordingConfiguration: &compositionRecordingWire{
				HlsConfiguration: &hlsConfigurationWire{TargetSegmentDurationSeconds: &segment},
				Format:           strPtr("HLS"),
			},
		}
		for _, arn := range s.EncoderConfigurationARNs {
			w.S3.EncoderConfigurationArns = append(w.S3.EncoderConfigurationArns, string(arn))
		}
		for _, th := range s.Thumbnails {
			interval, storage := th.TargetIntervalSeconds, th.Storage
			if interval == 0 {
				interval = ivsrt.DefaultThumbnailIntervalSecs
			}
			if len(storage) == 0 {
				storage = []string{"SEQUENTIAL"}
			}
			w.S3.ThumbnailConfigurations = append(w.S3.ThumbnailConfigurations,
				compositionThumbnailWire{TargetIntervalSeconds: &interval, Storage: storage})
		}
	}
	return w
}

func compositionFromDomain(c *ivsrt.Composition) compositionWire {
	w := compositionWire{
		Arn: string(c.ARN), StageArn: string(c.StageARN), State: string(c.State), Layout: c.Layout,
		Tags: c.Tags, StartTime: optionalTime(c.StartTime), EndTime: optionalTime(c.EndTime),
		Destinations: make([]destinationWire, 0, len(c.Destinations)),
	}
	if w.Tags == nil {
		w.Tags = map[string]string{}
	}
	for _, d := range c.Destinations {
		dw := destinationWire{ID: d.ID, State: string(d.State), StartTime: optionalTime(d.StartTime),
			EndTime: optionalTime(d.EndTime), Configuration: destinationConfigFromDomain(d.Configuration)}
		if d.Configuration.S3 != nil {
			dw.Detail = &destinationDetailWire{S3: &s3DetailWire{RecordingPrefix: d.RecordingPrefix}}
		}
		w.Destinations = append(w.Destinations, dw)
	}
	return w
}

func compositionSummaryFromDomain(c *ivsrt.Composition) compositionSummaryWire {
	w := compositionSummaryWire{
		Arn: string(c.ARN), StageArn: string(c.StageARN), State: string(c.State),
		Tags: c.Tags, StartTime: optionalTime(c.StartTime), EndTime: optionalTime(c.EndTime),
		Destinations: make([]destinationSummaryWire, 0, len(c.Destinations)),
	}
	if w.Tags == nil {
		w.Tags = map[string]string{}
	}
	for _, d := range c.Destinations {
		w.Destinations = append(w.Destinations, destinationSummaryWire{ID: d.ID, State: string(d.State),
			StartTime: optionalTime(d.StartTime), EndTime: optionalTime(d.EndTime)})
	}
	return w
}

type startCompositionInput struct {
	StageArn         *string                        `json:"stageArn"`
	IdempotencyToken *string                        `json:"idempotencyToken"`
	Layout           *layout.Config                 `json:"layout"`
	Destinations     []destinationConfigurationWire `json:"destinations"`
	Tags             map[string]string              `json:"tags"`
}

type compositionOutput struct {
	Composition compositionWire `json:"composition"`
}

// validate checks the request against the model and returns the
// destinations and the layout, with its defaults, it asks for.
func (in *startCompositionInput) validate() ([]ivsrt.DestinationConfiguration, layout.Config, error) {
	var v ivsrt.Validation
	if v.Required("stageArn", in.StageArn != nil) {
		v.StageARN("stageArn", *in.StageArn)
	}
	if in.IdempotencyToken != nil {
		v.CompositionToken("idempotencyToken", *in.IdempotencyToken)
	}
	v.Tags("tags", in.Tags)
	if v.Required("destinations", in.Destinations != nil) {
		if n := len(in.Destinations); n < 1 || n > ivsrt.MaxCompositionDestinations {
			v.Fail("Value at 'destinations' failed to satisfy constraint: Member must have length between 1 and %d", ivsrt.MaxCompositionDestinations)
		}
	}
	var out []ivsrt.DestinationConfiguration
	channels, buckets := 0, 0
	for i, d := range in.Destinations {
		field := fmt.Sprintf("destinations.%d.member", i+1)
		dc := ivsrt.DestinationConfiguration{Name: deref(d.Name)}
		v.DestinationName(field+".name", dc.Name)
		switch {
		case d.Channel == nil && d.S3 == nil:
			v.Fail("Destination %d must have a channel or an s3 configuration.", i+1)
		case d.Channel != nil && d.S3 != nil:
			v.Fail("Destination %d must have a channel or an s3 configuration, not both.", i+1)
		case d.Channel != nil:
			channels++
			ch := &ivsrt.ChannelDestination{}
			if v.Required(field+".channel.channelArn", d.Channel.ChannelArn != nil) && v.ChannelARN(field+".channel.channelArn", *d.Channel.ChannelArn) {
				ch.ChannelARN = *d.Channel.ChannelArn
			}
			if arn := d.Channel.EncoderConfigurationArn; arn != nil && v.EncoderConfigurationARN(field+".channel.encoderConfigurationArn", *arn) {
				ch.EncoderConfigurationARN = ivsrt.EncoderConfigurationARN(*arn)
			}
			dc.Channel = ch
		default:
			buckets++
			dc.S3 = validateS3Destination(&v, field+".s3", d.S3)
		}
		out = append(out, dc)
	}
	if channels > 1 || buckets > 1 {
		v.Fail("A composition has at most one channel destination and one s3 destination.")
	}
	if err := v.Err(); err != nil {
		return nil, layout.Config{}, err
	}
	var lc layout.Config
	if in.Layout != nil {
		lc = *in.Layout
	}
	lc, err := lc.WithDefaults()
	if err != nil {
		var fe *layout.FieldError
		if errors.As(err, &fe) {
			return nil, layout.Config{}, ivsrt.Errorf(ivsrt.EINVALID, "1 validation error detected: Value at 'layout.%s' failed to satisfy constraint: %s", fe.Field, fe.Message)
		}
		return nil, layout.Config{}, ivsrt.Errorf(ivsrt.EINVALID, "%s", err)
	}
	return out, lc, nil
}

func validateS3Destination(v *ivsrt.Validation, field string, w *s3DestinationWire) *ivsrt.S3Destination {
	s3 := &ivsrt.S3Destination{}
	if v.Required(field+".storageConfigurationArn", w.StorageConfigurationArn != nil) &&
		v.StorageConfigurationARN(field+".storageConfigurationArn", *w.StorageConfigurationArn) {
		s3.StorageConfigurationARN = ivsrt.StorageConfigurationARN(*w.StorageConfigurationArn)
	}
	if v.Required(field+".encoderConfigurationArns", w.EncoderConfigurationArns != nil) {
		if len(w.EncoderConfigurationArns) != 1 {
			v.Fail("Value at '%s.encoderConfigurationArns' failed to satisfy constraint: Member must have length less than or equal to 1 and greater than or equal to 1", field)
		}
		for i, arn := range w.EncoderConfigurationArns {
			if v.EncoderConfigurationARN(fmt.Sprintf("%s.encoderConfigurationArns.%d.member", field, i+1), arn) {
				s3.EncoderConfigurationARNs = append(s3.EncoderConfigurationARNs, ivsrt.EncoderConfigurationARN(arn))
			}
		}
	}
	if rc := w.RecordingConfiguration; rc != nil {
		if rc.Format != nil {
			v.Enum(field+".recordingConfiguration.format", *rc.Format, "HLS")
		}
		if h := rc.HlsConfiguration; h != nil && h.TargetSegmentDurationSeconds != nil {
			n := *h.TargetSegmentDurationSeconds
			if v.Range(field+".recordingConfiguration.hlsConfiguration.targetSegmentDurationSeconds", n,
				ivsrt.MinTargetSegmentSeconds, ivsrt.MaxTargetSegmentSeconds) {
				s3.TargetSegmentDurationSeconds = n
			}
		}
	}
	if len(w.ThumbnailConfigurations) > 1 {
		v.Fail("Value at '%s.thumbnailConfigurations' failed to satisfy constraint: Member must have length less than or equal to 1", field)
	}
	for i, th := range w.ThumbnailConfigurations {
		tf := fmt.Sprintf("%s.thumbnailConfigurations.%d.member", field, i+1)
		t := ivsrt.CompositionThumbnail{}
		if th.TargetIntervalSeconds != nil && v.Range(tf+".targetIntervalSeconds", *th.TargetIntervalSeconds,
			ivsrt.MinThumbnailIntervalSeconds, ivsrt.MaxThumbnailIntervalSeconds) {
			t.TargetIntervalSeconds = *th.TargetIntervalSeconds
		}
		if len(th.Storage) > 2 {
			v.Fail("Value at '%s.storage' failed to satisfy constraint: Member must have length less than or equal to 2", tf)
		}
		for j, st := range th.Storage {
			if v.ThumbnailStorageType(fmt.Sprintf("%s.storage.%d.member", tf, j+1), st) {
				t.Storage = append(t.Storage, st)
			}
		}
		s3.Thumbnails = append(s3.Thumbnails, t)
	}
	return s3
}

func (s *Server) startComposition(ctx context.Context, body []byte) (any, error) {
	var in startCompositionInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	dests, lc, err := in.validate()
	if err != nil {
		return nil, err
	}
	stageARN := ivsrt.StageARN(*in.StageArn)
	token := deref(in.IdempotencyToken)
	if token != "" {
		// The same token again: the composition it started, as long as it
		// is still visible; a token reused for another stage conflicts.
		c, err := s.store.CompositionByIdempotencyToken(ctx, token)
		switch {
		case err == nil && c.StageARN != stageARN:
			return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "The idempotencyToken was used for a composition of another stage.")
		case err == nil && s.compositionVisible(c):
			return compositionOutput{Composition: compositionFromDomain(c)}, nil
		case err == nil:
			return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "The idempotencyToken was used for a composition that has ended.")
		case ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND:
			return nil, err
		}
	}
	if _, err := s.store.GetStage(ctx, stageARN); err != nil {
		return nil, notFound(err, "Stage not found: %s", stageARN)
	}
	for _, d := range dests {
		if err := s.checkDestination(ctx, d); err != nil {
			return nil, err
		}
	}
	if s.compositor == nil {
		return nil, ivsrt.Errorf(ivsrt.EQUOTA, "This server runs no compositions (it needs ffmpeg, and runs them on single servers only).")
	}
	id := ivsrt.NewCompositionID()
	c := &ivsrt.Composition{
		ARN:              ivsrt.NewCompositionARN(s.cfg.Region, s.cfg.AccountID, id),
		StageARN:         stageARN,
		State:            ivsrt.CompositionStarting,
		Layout:           lc,
		Tags:             in.Tags,
		IdempotencyToken: token,
	}
	for _, d := range dests {
		dest := ivsrt.CompositionDestination{ID: ivsrt.NewCompositionID(), State: ivsrt.DestinationStarting, Configuration: d}
		if d.S3 != nil {
			dest.RecordingPrefix = compositionRecordingPrefix(stageARN, id)
		}
		c.Destinations = append(c.Destinations, dest)
	}
	if err := s.compositor.StartComposition(ctx, c); err != nil {
		if ivsrt.ErrorCode(err) == ivsrt.ECONFLICT && token != "" {
			// Another request with the token won the race: its composition.
			if other, gerr := s.store.CompositionByIdempotencyToken(ctx, token); gerr == nil && other.StageARN == stageARN {
				return compositionOutput{Composition: compositionFromDomain(other)}, nil
			}
		}
		return nil, err
	}
	return compositionOutput{Composition: compositionFromDomain(c)}, nil
}

// compositionRecordingPrefix is where in the bucket a composition of
// stage records: <stage id>/<composition id>/composite. IVS does not
// document its form; this one is unique per composition and groups a
// stage's recordings.
func compositionRecordingPrefix(stage ivsrt.StageARN, compositionID string) string {
	return stage.ID() + "/" + compositionID + "/composite"
}

// checkDestination checks that what a destination names exists.
func (s *Server) checkDestination(ctx context.Context, d ivsrt.DestinationConfiguration) error {
	var encoders []ivsrt.EncoderConfigurationARN
	if d.Channel != nil && d.Channel.EncoderConfigurationARN != "" {
		encoders = append(encoders, d.Channel.EncoderConfigurationARN)
	}
	if d.S3 != nil {
		if _, err := s.store.GetStorageConfiguration(ctx, d.S3.StorageConfigurationARN); err != nil {
			return storageNotFound(err, string(d.S3.StorageConfigurationARN))
		}
		encoders = append(encoders, d.S3.EncoderConfigurationARNs...)
	}
	for _, arn := range encoders {
		if _, err := s.store.GetEncoderConfiguration(ctx, arn); err != nil {
			return notFound(err, "Encoder configuration not found: %s", arn)
		}
	}
	return nil
}

// compositionVisible reports whether c is still shown: a composition is
// deleted CompositionRetention after it ends, as IVS deletes it "a few
// minutes" after.
func (s *Server) compositionVisible(c *ivsrt.Composition) bool {
	return !c.State.Ended() || c.EndTime.IsZero() || s.now().Sub(c.EndTime) < ivsrt.CompositionRetention
}

type compositionARNInput struct {
	Arn *string `json:"arn"`
}

func (in compositionARNInput) validate() error {
	var v ivsrt.Validation
	if v.Required("arn", in.Arn != nil) {
		v.CompositionARN("arn", *in.Arn)
	}
	return v.Err()
}

func compositionNotFound(err error, arn string) error {
	return notFound(err, "Composition not found: %s", arn)
}

func (s *Server) getComposition(ctx context.Context, body []byte) (any, error) {
	var in compositionARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	c, err := s.store.GetComposition(ctx, ivsrt.CompositionARN(*in.Arn))
	if err != nil {
		return nil, compositionNotFound(err, *in.Arn)
	}
	if !s.compositionVisible(c) {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "Composition not found: %s", *in.Arn)
	}
	return compositionOutput{Composition: compositionFromDomain(c)}, nil
}

func (s *Server) stopComposition(ctx context.Context, body []byte) (any, error) {
	var in compositionARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	arn := ivsrt.CompositionARN(*in.Arn)
	c, err := s.store.GetComposition(ctx, arn)
	if err != nil {
		return nil, compositionNotFound(err, *in.Arn)
	}
	if !s.compositionVisible(c) {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "Composition not found: %s", *in.Arn)
	}
	if c.State.Ended() || s.compositor == nil {
		return struct{}{}, nil
	}
	if err := s.compositor.StopComposition(ctx, arn); err != nil {
		return nil, compositionNotFound(err, *in.Arn)
	}
	return struct{}{}, nil
}

type listCompositionsInput struct {
	FilterByStageArn                *string `json:"filterByStageArn"`
	FilterByEncoderConfigurationArn *string `json:"filterByEncoderConfigurationArn"`
	NextToken                       *string `json:"nextToken"`
	MaxResults                      *int    `json:"maxResults"`
}

type listCompositionsOutput struct {
	Compositions []compositionSummaryWire `json:"compositions"`
	NextToken    string                   `json:"nextToken,omitempty"`
}

func (s *Server) listCompositions(ctx context.Context, body []byte) (any, error) {
	var in listCompositionsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	var f ivsrt.CompositionFilter
	if in.FilterByStageArn != nil && v.StageARN("filterByStageArn", *in.FilterByStageArn) {
		f.StageARN = ivsrt.StageARN(*in.FilterByStageArn)
	}
	if in.FilterByEncoderConfigurationArn != nil && v.EncoderConfigurationARN("filterByEncoderConfigurationArn", *in.FilterByEncoderConfigurationArn) {
		f.EncoderConfigurationARN = ivsrt.EncoderConfigurationARN(*in.FilterByEncoderConfigurationArn)
	}
	if in.FilterByStageArn != nil && in.FilterByEncoderConfigurationArn != nil {
		v.Fail("Only one of filterByStageArn and filterByEncoderConfigurationArn may be given.")
	}
	if in.NextToken != nil {
		v.NextToken("nextToken", *in.NextToken)
	}
	v.MaxResults("maxResults", in.MaxResults)
	if err := v.Err(); err != nil {
		return nil, err
	}
	scope := "ListCompositions\x00" + string(f.StageARN) + "\x00" + string(f.EncoderConfigurationARN)
	after, err := s.pages.decode(scope, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	limit := ivsrt.DefaultCompositionPageSize
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	// Compositions deleted CompositionRetention after they ended are
	// skipped: a page may be shorter than asked for, and still have a
	// next one.
	cs, next, err := s.store.ListCompositions(ctx, f, ivsrt.Page{After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := listCompositionsOutput{Compositions: []compositionSummaryWire{}, NextToken: s.pages.encode(scope, next)}
	for _, c := range cs {
		if s.compositionVisible(c) {
			out.Compositions = append(out.Compositions, compositionSummaryFromDomain(c))
		}
	}
	return out, nil
}
