package ivsrt

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/composition/layout"
)

// CompositionARN names a composition:
// arn:aws:ivs:{region}:{account}:composition/{id}.
type CompositionARN string

// NewCompositionARN builds the ARN of composition id in region and account.
func NewCompositionARN(region, account, id string) CompositionARN {
	return CompositionARN(fmt.Sprintf("arn:aws:ivs:%s:%s:composition/%s", region, account, id))
}

// NewCompositionID returns a fresh 12-character composition id, of the
// same form as a stage's.
func NewCompositionID() string { return randomID(12) }

// ID returns the composition id, the part after "composition/", or "" if
// the ARN is not a well-formed composition ARN.
func (a CompositionARN) ID() string {
	if !compositionARNPattern.MatchString(string(a)) {
		return ""
	}
	_, id, _ := strings.Cut(string(a), ":composition/")
	return id
}

// CompositionState is the state of a composition (the model's
// CompositionState).
type CompositionState string

// Composition states.
const (
	CompositionStarting CompositionState = "STARTING"
	CompositionActive   CompositionState = "ACTIVE"
	CompositionStopping CompositionState = "STOPPING"
	CompositionFailed   CompositionState = "FAILED"
	CompositionStopped  CompositionState = "STOPPED"
)

// Ended reports whether a composition in state s is over: STOPPED or
// FAILED.
func (s CompositionState) Ended() bool { return s == CompositionStopped || s == CompositionFailed }

// DestinationState is the state of one destination of a composition (the
// model's DestinationState).
type DestinationState string

// Destination states.
const (
	DestinationStarting     DestinationState = "STARTING"
	DestinationActive       DestinationState = "ACTIVE"
	DestinationStopping     DestinationState = "STOPPING"
	DestinationReconnecting DestinationState = "RECONNECTING"
	DestinationFailed       DestinationState = "FAILED"
	DestinationStopped      DestinationState = "STOPPED"
)

// Ended reports whether a destination in state s is over.
func (s DestinationState) Ended() bool { return s == DestinationStopped || s == DestinationFailed }

// ChannelDestination sends the composition to an IVS channel (the
// model's ChannelDestinationConfiguration). ivsrt has no channels: the
// server maps channel ARNs to RTMP(S) targets of its own configuration.
type ChannelDestination struct {
	ChannelARN string
	// EncoderConfigurationARN is "" for the default encoding (1280x720,
	// 30 fps, 2.5 Mbps).
	EncoderConfigurationARN EncoderConfigurationARN
}

// S3Destination records the composition to a storage configuration's
// bucket as HLS (the model's S3DestinationConfiguration).
type S3Destination struct {
	StorageConfigurationARN  StorageConfigurationARN
	EncoderConfigurationARNs []EncoderConfigurationARN // exactly one
	// TargetSegmentDurationSeconds is recordingConfiguration.
	// hlsConfiguration.targetSegmentDurationSeconds: 2 to 10, 0 when not
	// given (the default, 6).
	TargetSegmentDurationSeconds int
	// Thumbnails is thumbnailConfigurations: at most one.
	Thumbnails []CompositionThumbnail
}

// CompositionThumbnail is a composition's thumbnail configuration (the
// model's CompositionThumbnailConfiguration).
type CompositionThumbnail struct {
	TargetIntervalSeconds int      // 1 to 86400; 0 when not given (the default, 60)
	Storage               []string // SEQUENTIAL and/or LATEST; empty when not given (SEQUENTIAL)
}

// DestinationConfiguration is where a composition goes: a channel or a
// bucket (the model's DestinationConfiguration).
type DestinationConfiguration struct {
	Name    string
	Channel *ChannelDestination
	S3      *S3Destination
}

// CompositionDestination is one destination of a composition, with its
// state (the model's Destination).
type CompositionDestination struct {
	ID                 string
	State              DestinationState
	StartTime, EndTime time.Time // zero when not yet
	Configuration      DestinationConfiguration
	// RecordingPrefix is detail.s3.recordingPrefix: where in the bucket an
	// S3 destination writes.
	RecordingPrefix string
}

// Composition is a stage composed into one stream (the model's
// Composition).
type Composition struct {
	ARN          CompositionARN
	StageARN     StageARN
	State        CompositionState
	Layout       layout.Config // with its defaults
	Destinations []CompositionDestination
	Tags         map[string]string
	// StartTime and EndTime are zero when not yet.
	StartTime, EndTime time.Time
	// IdempotencyToken is the request's; "" when none was given.
	IdempotencyToken string
	CreatedAt        time.Time
}

// CompositionFilter is ListCompositions' filter: at most one field set.
type CompositionFilter struct {
	StageARN                StageARN
	EncoderConfigurationARN EncoderConfigurationARN
}

// CompositionStore persists compositions. Their tags are read and changed
// through StageStore's TagResource, UntagResource and ListTags.
type CompositionStore interface {
	// CreateComposition stores c with its tags, setting its CreatedAt from
	// the store's clock. Returns ECONFLICT if the ARN exists, or if
	// another composition has its IdempotencyToken (which
	// CompositionByIdempotencyToken then returns), and ENOTFOUND if an
	// encoder or storage configuration its destinations name does not
	// exist: the check and the write are one step with
	// DeleteEncoderConfiguration's and DeleteStorageConfiguration's, so
	// that none is deleted while a composition that has not ended uses it.
	CreateComposition(ctx context.Context, c *Composition) error

	// GetComposition returns ENOTFOUND if it does not exist.
	GetComposition(ctx context.Context, arn CompositionARN) (*Composition, error)

	// CompositionByIdempotencyToken returns the composition started with
	// token, ENOTFOUND if none was.
	CompositionByIdempotencyToken(ctx context.Context, token string) (*Composition, error)

	// ListCompositions returns compositions in creation order that match
	// f, and the position of the next page ("" when this is the last).
	ListCompositions(ctx context.Context, f CompositionFilter, page Page) (cs []*Composition, next string, err error)

	// UpdateComposition stores c's state, times and destinations (their
	// states, times and recording prefixes), and appends events to the
	// event stream in the same transaction. The configurations of the
	// destinations are those it was created with: the encoder and storage
	// configurations it uses do not change. Returns ENOTFOUND if it does
	// not exist.
	UpdateComposition(ctx context.Context, c *Composition, events ...*StreamEvent) error
}

// Limits of the composition operations, from the service model and its
// documentation.
const (
	MaxCompositionARNLength      = 128
	MaxCompositionTokenLength    = 64
	MaxDestinationNameLength     = 128
	MaxCompositionDestinations   = 2
	MaxChannelARNLength          = 128
	MinTargetSegmentSeconds      = 2
	MaxTargetSegmentSeconds      = 10
	DefaultTargetSegmentSeconds  = 6
	MinThumbnailIntervalSeconds  = 1
	MaxThumbnailIntervalSeconds  = 86400
	DefaultThumbnailIntervalSecs = 60
	// DefaultCompositionPageSize is ListCompositions' default maxResults.
	DefaultCompositionPageSize = 100

	// CompositionIdleTimeout: a composition stops this long after nobody
	// publishes on its stage (or after it starts with nobody publishing).
	CompositionIdleTimeout = time.Minute
	// CompositionRetention: a stopped or failed composition is gone from
	// GetComposition and ListCompositions this long after it ended.
	CompositionRetention = 5 * time.Minute
)

var (
	compositionARNPattern     = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:composition/[a-zA-Z0-9-]+$`)
	compositionTokenPattern   = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	destinationNamePattern    = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	channelARNPattern         = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:channel/[a-zA-Z0-9-]+$`)
	thumbnailStorageTypeNames = []string{"SEQUENTIAL", "LATEST"}
)

// CompositionARN checks a composition ARN.
func (v *Validation) CompositionARN(field, arn string) bool {
	return v.Length(field, arn, 1, MaxCompositionARNLength) && v.Pattern(field, arn, compositionARNPattern)
}

// CompositionToken checks an idempotency token.
func (v *Validation) CompositionToken(field, token string) bool {
	return v.Length(field, token, 1, MaxCompositionTokenLength) && v.Pattern(field, token, compositionTokenPattern)
}

// DestinationName checks a destination's name.
func (v *Validation) DestinationName(field, name string) bool {
	return v.Length(field, name, 0, MaxDestinationNameLength) && v.Pattern(field, name, destinationNamePattern)
}

// ChannelARN checks a channel ARN.
func (v *Validation) ChannelARN(field, arn string) bool {
	return v.Length(field, arn, 1, MaxChannelARNLength) && v.Pattern(field, arn, channelARNPattern)
}

// ThumbnailStorageType checks one of a composition thumbnail
// configuration's storage types.
func (v *Validation) ThumbnailStorageType(field, s string) bool {
	for _, name := range thumbnailStorageTypeNames {
		if s == name {
			return true
		}
	}
	v.violate(field, quote(s), "satisfy enum value set: ["+strings.Join(thumbnailStorageTypeNames, ", ")+"]")
	return false
}

// DetailTypeCompositionStateChange is the detail type of the events of a
// composition's state changes.
const DetailTypeCompositionStateChange = "IVS Composition State Change"

// Event names of composition state changes (the detail's "event_name").
const (
	StreamCompositionSessionStart            = "Session Start"
	StreamCompositionSessionEnd              = "Session End"
	StreamCompositionSessionFailure          = "Session Failure"
	StreamCompositionDestinationStart        = "Destination Start"
	StreamCompositionDestinationEnd          = "Destination End"
	StreamCompositionDestinationFailure      = "Destination Failure"
	StreamCompositionDestinationReconnecting = "Destination Reconnecting"
)

// NewCompositionStreamEvent returns the stream event of a composition's
// state change: detail event_name, stage_arn and composition_arn, with
// destination_id for a destination's, and reason for a failure. Its
// envelope's resources are the composition's ARN (see
// StreamEvent.Envelope).
func NewCompositionStreamEvent(c *Composition, name, destinationID, reason string, at time.Time) *StreamEvent {
	detail := map[string]any{
		"event_name":      name,
		"stage_arn":       string(c.StageARN),
		"composition_arn": string(c.ARN),
	}
	if destinationID != "" {
		detail["destination_id"] = destinationID
	}
	if reason != "" {
		detail["reason"] = reason
	}
	return newStreamEvent(c.StageARN, at, DetailTypeCompositionStateChange, detail)
}

// Compositor runs compositions: the media plane of the node that hosts
// the stage.
type Compositor interface {
	// StartComposition stores c (STARTING, its destinations STARTING)
	// and starts composing its stage. Returns EQUOTA when the server
	// already runs as many compositions as it may (none, without
	// ffmpeg), and the store's errors.
	StartComposition(ctx context.Context, c *Composition) error

	// StopComposition stops a composition: STOPPING, then STOPPED once
	// its outputs are closed. Stopping one that has ended does nothing.
	// Returns ENOTFOUND if it does not exist.
	StopComposition(ctx context.Context, arn CompositionARN) error
}
