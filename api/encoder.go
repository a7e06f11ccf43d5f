package api

import (
	"context"

	"github.com/ivsrt/ivsrt"
)

// videoInput is a Video as a request gives it: each member may be left
// out, for its default.
type videoInput struct {
	Width     *int     `json:"width"`
	Height    *int     `json:"height"`
	Framerate *float32 `json:"framerate"`
	Bitrate   *int     `json:"bitrate"`
}

// toDomain fills in the documented defaults for what the caller left out.
func (in *videoInput) toDomain() ivsrt.Video {
	v := ivsrt.DefaultVideo()
	if in == nil {
		return v
	}
	if in.Width != nil {
		v.Width = *in.Width
	}
	if in.Height != nil {
		v.Height = *in.Height
	}
	if in.Framerate != nil {
		v.Framerate = *in.Framerate
	}
	if in.Bitrate != nil {
		v.Bitrate = *in.Bitrate
	}
	return v
}

// videoWire is a Video as a response gives it, every member present. The
// frame rate is a float32, which encoding/json writes as the shortest text
// that reads back as the same float32: 29.97, not 29.969999313354492.
type videoWire struct {
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Framerate float32 `json:"framerate"`
	Bitrate   int     `json:"bitrate"`
}

// encoderConfigurationWire is an EncoderConfiguration.
type encoderConfigurationWire struct {
	Arn   string            `json:"arn"`
	Name  string            `json:"name"`
	Video videoWire         `json:"video"`
	Tags  map[string]string `json:"tags"`
}

// encoderConfigurationSummaryWire is an EncoderConfigurationSummary, as
// ListEncoderConfigurations gives each: no video.
type encoderConfigurationSummaryWire struct {
	Arn  string            `json:"arn"`
	Name string            `json:"name"`
	Tags map[string]string `json:"tags"`
}

func encoderFromDomain(ec *ivsrt.EncoderConfiguration) encoderConfigurationWire {
	v := ec.Video
	return encoderConfigurationWire{
		Arn:   string(ec.ARN),
		Name:  ec.Name,
		Video: videoWire{Width: v.Width, Height: v.Height, Framerate: v.Framerate, Bitrate: v.Bitrate},
		Tags:  nonNilTags(ec.Tags),
	}
}

func encoderSummaryFromDomain(ec *ivsrt.EncoderConfiguration) encoderConfigurationSummaryWire {
	return encoderConfigurationSummaryWire{Arn: string(ec.ARN), Name: ec.Name, Tags: nonNilTags(ec.Tags)}
}

// nonNilTags returns tags, or an empty map for none: the model's tags are
// always sent, as {} when there are none.
func nonNilTags(tags map[string]string) map[string]string {
	if tags == nil {
		return map[string]string{}
	}
	return tags
}

func encoderNotFound(err error, arn string) error {
	return notFound(err, "Encoder configuration not found: %s", arn)
}

type createEncoderConfigurationInput struct {
	Name  *string           `json:"name"`
	Video *videoInput       `json:"video"`
	Tags  map[string]string `json:"tags"`
}

type encoderConfigurationOutput struct {
	EncoderConfiguration encoderConfigurationWire `json:"encoderConfiguration"`
}

func (s *Server) createEncoderConfiguration(ctx context.Context, body []byte) (any, error) {
	var in createEncoderConfigurationInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	video := in.Video.toDomain()
	var v ivsrt.Validation
	if in.Name != nil {
		v.EncoderConfigurationName("name", *in.Name)
	}
	v.Video("video", video)
	v.Tags("tags", in.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	ec := &ivsrt.EncoderConfiguration{
		ARN:   ivsrt.NewEncoderConfigurationARN(s.cfg.Region, s.cfg.AccountID, ivsrt.NewEncoderConfigurationID()),
		Name:  deref(in.Name),
		Video: video,
		Tags:  in.Tags,
	}
	if err := s.store.CreateEncoderConfiguration(ctx, ec); err != nil {
		return nil, err
	}
	return encoderConfigurationOutput{EncoderConfiguration: encoderFromDomain(ec)}, nil
}

type encoderConfigurationARNInput struct {
	Arn *string `json:"arn"`
}

func (in encoderConfigurationARNInput) validate() error {
	var v ivsrt.Validation
	if v.Required("arn", in.Arn != nil) {
		v.EncoderConfigurationARN("arn", *in.Arn)
	}
	return v.Err()
}

func (s *Server) getEncoderConfiguration(ctx context.Context, body []byte) (any, error) {
	var in encoderConfigurationARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	ec, err := s.store.GetEncoderConfiguration(ctx, ivsrt.EncoderConfigurationARN(*in.Arn))
	if err != nil {
		return nil, encoderNotFound(err, *in.Arn)
	}
	return encoderConfigurationOutput{EncoderConfiguration: encoderFromDomain(ec)}, nil
}

// deleteEncoderConfiguration removes it. A ConflictException, while a
// composition uses it, comes from the store (see
// ivsrt.EncoderConfigurationStore).
func (s *Server) deleteEncoderConfiguration(ctx context.Context, body []byte) (any, error) {
	var in encoderConfigurationARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if err := s.store.DeleteEncoderConfiguration(ctx, ivsrt.EncoderConfigurationARN(*in.Arn)); err != nil {
		return nil, encoderNotFound(err, *in.Arn)
	}
	return struct{}{}, nil
}

type listEncoderConfigurationsOutput struct {
	EncoderConfigurations []encoderConfigurationSummaryWire `json:"encoderConfigurations"`
	NextToken             string                            `json:"nextToken,omitempty"`
}

func (s *Server) listEncoderConfigurations(ctx context.Context, body []byte) (any, error) {
	ecs, next, err := listPage(ctx, s, body, "ListEncoderConfigurations", ivsrt.DefaultEncoderConfigurationPageSize,
		s.store.ListEncoderConfigurations, encoderSummaryFromDomain)
	if err != nil {
		return nil, err
	}
	return listEncoderConfigurationsOutput{EncoderConfigurations: ecs, NextToken: next}, nil
}
