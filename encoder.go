package ivsrt

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// EncoderConfigurationARN names an encoder configuration:
// arn:aws:ivs:{region}:{account}:encoder-configuration/{id}.
type EncoderConfigurationARN string

// NewEncoderConfigurationARN builds the ARN of encoder configuration id in
// region and account.
func NewEncoderConfigurationARN(region, account, id string) EncoderConfigurationARN {
	return EncoderConfigurationARN(fmt.Sprintf("arn:aws:ivs:%s:%s:encoder-configuration/%s", region, account, id))
}

// NewEncoderConfigurationID returns a fresh 12-character encoder
// configuration id, of the same form as a stage's.
func NewEncoderConfigurationID() string { return randomID(12) }

// ID returns the encoder configuration id, the part after
// "encoder-configuration/", or "" if the ARN is not a well-formed encoder
// configuration ARN.
func (a EncoderConfigurationARN) ID() string {
	if !encoderConfigurationARNPattern.MatchString(string(a)) {
		return ""
	}
	_, id, _ := strings.Cut(string(a), ":encoder-configuration/")
	return id
}

// Video is the picture an encoder configuration asks a composition to
// encode, the model's Video: its size in pixels, its frame rate and its
// bitrate in bits per second.
type Video struct {
	Width  int
	Height int
	// Framerate is frames per second. It is a float32 because the model's
	// Framerate is a "float": a value keeps the precision, and prints as
	// the shortest text, that AWS gives it.
	Framerate float32
	Bitrate   int
}

// The video of an encoder configuration made without one, or the part of
// one the request leaves out, as the model documents it.
const (
	DefaultVideoWidth     = 1280
	DefaultVideoHeight    = 720
	DefaultVideoFramerate = 30
	DefaultVideoBitrate   = 2500000
)

// DefaultVideo returns the model's default video: 1280x720, 30 fps,
// 2.5 Mbps.
func DefaultVideo() Video {
	return Video{Width: DefaultVideoWidth, Height: DefaultVideoHeight, Framerate: DefaultVideoFramerate, Bitrate: DefaultVideoBitrate}
}

// EncoderConfiguration holds the settings a composition encodes its output
// with. Compositions name it; it is never changed after it is made.
type EncoderConfiguration struct {
	ARN       EncoderConfigurationARN
	Name      string
	Video     Video
	Tags      map[string]string
	CreatedAt time.Time
}

// EncoderConfigurationStore persists encoder configurations. Their tags
// are read and changed through StageStore's TagResource, UntagResource and
// ListTags.
type EncoderConfigurationStore interface {
	// CreateEncoderConfiguration stores ec with its tags, setting its
	// CreatedAt from the store's clock. Returns ECONFLICT if the ARN
	// exists.
	CreateEncoderConfiguration(ctx context.Context, ec *EncoderConfiguration) error

	// GetEncoderConfiguration returns ENOTFOUND if it does not exist.
	GetEncoderConfiguration(ctx context.Context, arn EncoderConfigurationARN) (*EncoderConfiguration, error)

	// ListEncoderConfigurations returns encoder configurations in creation
	// order, and the position of the next page ("" when this is the last).
	ListEncoderConfigurations(ctx context.Context, page Page) (ecs []*EncoderConfiguration, next string, err error)

	// DeleteEncoderConfiguration removes it with its tags. Returns
	// ENOTFOUND if it does not exist, and ECONFLICT (AWS's
	// ConflictException) while a composition that has not ended (see
	// CompositionState.Ended) uses it, in a channel or an S3 destination.
	DeleteEncoderConfiguration(ctx context.Context, arn EncoderConfigurationARN) error
}

// Limits of the encoder configuration operations, from the service model
// and its documentation.
const (
	MaxEncoderConfigurationNameLength = 128
	MaxEncoderConfigurationARNLength  = 128

	// Width and height are even numbers of pixels in this range, and
	// together at most MaxVideoPixels: 1920x1080 or 1080x1920.
	MinVideoDimension = 2
	MaxVideoDimension = 1920
	MaxVideoPixels    = 2073600

	MinVideoFramerate = 1
	MaxVideoFramerate = 60

	MinVideoBitrate = 1
	MaxVideoBitrate = 8500000

	// DefaultEncoderConfigurationPageSize is ListEncoderConfigurations'
	// default maxResults.
	DefaultEncoderConfigurationPageSize = 100
)

var (
	encoderConfigurationNamePattern = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	encoderConfigurationARNPattern  = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:encoder-configuration/[a-zA-Z0-9-]+$`)
)

// EncoderConfigurationARN checks an encoder configuration ARN.
func (v *Validation) EncoderConfigurationARN(field, arn string) bool {
	return v.Length(field, arn, 1, MaxEncoderConfigurationARNLength) && v.Pattern(field, arn, encoderConfigurationARNPattern)
}

// EncoderConfigurationName checks an encoder configuration name.
func (v *Validation) EncoderConfigurationName(field, name string) bool {
	return v.Length(field, name, 0, MaxEncoderConfigurationNameLength) && v.Pattern(field, name, encoderConfigurationNamePattern)
}

// Video checks the video of an encoder configuration, with the defaults
// already in place of what the request left out: each member's range, even
// dimensions, and the pixels of the two together. The last is checked only
// when both dimensions pass, and names both, since either may be the
// default: {"height":1920} asks for 1280x1920, which is too many.
func (v *Validation) Video(field string, video Video) bool {
	ok := v.videoDimension(field+".width", video.Width)
	ok = v.videoDimension(field+".height", video.Height) && ok
	if ok && video.Width*video.Height > MaxVideoPixels {
		v.Fail("Value '%dx%d' at '%s' failed to satisfy constraint: Member must have width times height less than or equal to %d "+
			"(1920x1080 or 1080x1920)", video.Width, video.Height, field, MaxVideoPixels)
		ok = false
	}
	ok = v.RangeFloat(field+".framerate", video.Framerate, MinVideoFramerate, MaxVideoFramerate) && ok
	ok = v.Range(field+".bitrate", video.Bitrate, MinVideoBitrate, MaxVideoBitrate) && ok
	return ok
}

// videoDimension checks a width or height: in range, and even, which the
// model's documentation requires and its range cannot say.
func (v *Validation) videoDimension(field string, n int) bool {
	if !v.Range(field, n, MinVideoDimension, MaxVideoDimension) {
		return false
	}
	if n%2 != 0 {
		v.violate(field, quote(strconv.Itoa(n)), "be an even number")
		return false
	}
	return true
}
