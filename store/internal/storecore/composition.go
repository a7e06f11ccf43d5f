package storecore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/composition/layout"
)

// EncodeLayout returns the stored JSON of a composition's layout: the
// API's LayoutConfiguration, whose member names layout.Config's JSON tags
// carry.
func EncodeLayout(c layout.Config) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode layout: %w", err)
	}
	return b, nil
}

// DecodeLayout is the inverse of EncodeLayout.
func DecodeLayout(b []byte) (layout.Config, error) {
	var c layout.Config
	if err := json.Unmarshal(b, &c); err != nil {
		return layout.Config{}, fmt.Errorf("decode layout: %w", err)
	}
	return c, nil
}

// destination is the stored form of a composition's destination: its
// configuration in the API's member names, its state, and its times in
// Unix milliseconds (absent when not yet).
type destination struct {
	ID              string            `json:"id"`
	State           string            `json:"state"`
	StartTime       int64             `json:"startTime,omitempty"`
	EndTime         int64             `json:"endTime,omitempty"`
	Configuration   destinationConfig `json:"configuration"`
	RecordingPrefix string            `json:"recordingPrefix,omitempty"`
}

type destinationConfig struct {
	Name    string              `json:"name,omitempty"`
	Channel *channelDestination `json:"channel,omitempty"`
	S3      *s3Destination      `json:"s3,omitempty"`
}

type channelDestination struct {
	ChannelARN              string `json:"channelArn"`
	EncoderConfigurationARN string `json:"encoderConfigurationArn,omitempty"`
}

type s3Destination struct {
	StorageConfigurationARN      string                 `json:"storageConfigurationArn"`
	EncoderConfigurationARNs     []string               `json:"encoderConfigurationArns,omitempty"`
	TargetSegmentDurationSeconds int                    `json:"targetSegmentDurationSeconds,omitempty"`
	Thumbnails                   []compositionThumbnail `json:"thumbnailConfigurations,omitempty"`
}

type compositionThumbnail struct {
	TargetIntervalSeconds int      `json:"targetIntervalSeconds,omitempty"`
	Storage               []string `json:"storage,omitempty"`
}

// EncodeDestinations returns the stored JSON of a composition's
// destinations: an array, empty for none. Times are kept at millisecond
// precision; an empty list inside a destination is stored as none.
func EncodeDestinations(ds []ivsrt.CompositionDestination) ([]byte, error) {
	docs := make([]destination, len(ds))
	for i, d := range ds {
		doc := destination{
			ID:              d.ID,
			State:           string(d.State),
			StartTime:       unixMilli(d.StartTime),
			EndTime:         unixMilli(d.EndTime),
			RecordingPrefix: d.RecordingPrefix,
			Configuration:   destinationConfig{Name: d.Configuration.Name},
		}
		if ch := d.Configuration.Channel; ch != nil {
			doc.Configuration.Channel = &channelDestination{
				ChannelARN:              ch.ChannelARN,
				EncoderConfigurationARN: string(ch.EncoderConfigurationARN),
			}
		}
		if s3 := d.Configuration.S3; s3 != nil {
			j := &s3Destination{
				StorageConfigurationARN:      string(s3.StorageConfigurationARN),
				TargetSegmentDurationSeconds: s3.TargetSegmentDurationSeconds,
			}
			for _, arn := range s3.EncoderConfigurationARNs {
				j.EncoderConfigurationARNs = append(j.EncoderConfigurationARNs, string(arn))
			}
			for _, th := range s3.Thumbnails {
				j.Thumbnails = append(j.Thumbnails, compositionThumbnail{TargetIntervalSeconds: th.TargetIntervalSeconds, Storage: th.Storage})
			}
			doc.Configuration.S3 = j
		}
		docs[i] = doc
	}
	b, err := json.Marshal(docs)
	if err != nil {
		return nil, fmt.Errorf("encode composition destinations: %w", err)
	}
	return b, nil
}

// DecodeDestinations is the inverse of EncodeDestinations. Every list it
// returns, the destinations themselves included, is nil when empty.
func DecodeDestinations(b []byte) ([]ivsrt.CompositionDestination, error) {
	var docs []destination
	if err := json.Unmarshal(b, &docs); err != nil {
		return nil, fmt.Errorf("decode composition destinations: %w", err)
	}
	var ds []ivsrt.CompositionDestination
	for _, doc := range docs {
		d := ivsrt.CompositionDestination{
			ID:              doc.ID,
			State:           ivsrt.DestinationState(doc.State),
			StartTime:       fromUnixMilli(doc.StartTime),
			EndTime:         fromUnixMilli(doc.EndTime),
			RecordingPrefix: doc.RecordingPrefix,
			Configuration:   ivsrt.DestinationConfiguration{Name: doc.Configuration.Name},
		}
		if ch := doc.Configuration.Channel; ch != nil {
			d.Configuration.Channel = &ivsrt.ChannelDestination{
				ChannelARN:              ch.ChannelARN,
				EncoderConfigurationARN: ivsrt.EncoderConfigurationARN(ch.EncoderConfigurationARN),
			}
		}
		if j := doc.Configuration.S3; j != nil {
			s3 := &ivsrt.S3Destination{
				StorageConfigurationARN:      ivsrt.StorageConfigurationARN(j.StorageConfigurationARN),
				TargetSegmentDurationSeconds: j.TargetSegmentDurationSeconds,
			}
			for _, arn := range j.EncoderConfigurationARNs {
				s3.EncoderConfigurationARNs = append(s3.EncoderConfigurationARNs, ivsrt.EncoderConfigurationARN(arn))
			}
			for _, th := range j.Thumbnails {
				s3.Thumbnails = append(s3.Thumbnails, ivsrt.CompositionThumbnail{TargetIntervalSeconds: th.TargetIntervalSeconds, Storage: th.Storage})
			}
			d.Configuration.S3 = s3
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// unixMilli is t in Unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromUnixMilli is the inverse of unixMilli, in UTC.
func fromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// CompositionConfigurations returns the encoder and storage
// configurations c's destinations name, each once, in the order they
// first appear: those a composition uses, which cannot be deleted while it
// runs. A channel destination with the default encoding names none.
func CompositionConfigurations(c *ivsrt.Composition) (encoders []ivsrt.EncoderConfigurationARN, storages []ivsrt.StorageConfigurationARN) {
	seen := map[string]bool{}
	addEncoder := func(arn ivsrt.EncoderConfigurationARN) {
		if arn != "" && !seen[string(arn)] {
			seen[string(arn)] = true
			encoders = append(encoders, arn)
		}
	}
	for _, d := range c.Destinations {
		if ch := d.Configuration.Channel; ch != nil {
			addEncoder(ch.EncoderConfigurationARN)
		}
		if s3 := d.Configuration.S3; s3 != nil {
			for _, arn := range s3.EncoderConfigurationARNs {
				addEncoder(arn)
			}
			if arn := s3.StorageConfigurationARN; arn != "" && !seen[string(arn)] {
				seen[string(arn)] = true
				storages = append(storages, arn)
			}
		}
	}
	return encoders, storages
}

// CheckCompositionFilter returns EINVALID for a filter of
// ListCompositions the API would not pass on: both fields set, or an
// encoder configuration ARN that is not one.
func CheckCompositionFilter(f ivsrt.CompositionFilter) error {
	if f.StageARN != "" && f.EncoderConfigurationARN != "" {
		return ivsrt.Errorf(ivsrt.EINVALID, "at most one composition filter may be set")
	}
	if f.EncoderConfigurationARN != "" && f.EncoderConfigurationARN.ID() == "" {
		return ivsrt.Errorf(ivsrt.EINVALID, "%q is not an encoder configuration ARN", f.EncoderConfigurationARN)
	}
	return nil
}

// CompositionEncoderMissing and CompositionStorageMissing are the errors
// of a composition that names a configuration that does not exist, worded
// as the API words them when it finds one missing first.
func CompositionEncoderMissing(arn ivsrt.EncoderConfigurationARN) error {
	return ivsrt.Errorf(ivsrt.ENOTFOUND, "Encoder configuration not found: %s", arn)
}

func CompositionStorageMissing(arn ivsrt.StorageConfigurationARN) error {
	return ivsrt.Errorf(ivsrt.ENOTFOUND, "Storage configuration not found: %s", arn)
}

// EncoderConfigurationInUse is the error of deleting an encoder
// configuration that a composition which has not ended uses.
func EncoderConfigurationInUse(arn ivsrt.EncoderConfigurationARN, c ivsrt.CompositionARN) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "Encoder configuration %s is in use by composition %s: "+
		"stop the composition before deleting it.", arn, c)
}

// StorageConfigurationComposed is the error of deleting a storage
// configuration that the S3 destination of a composition which has not
// ended names.
func StorageConfigurationComposed(arn ivsrt.StorageConfigurationARN, c ivsrt.CompositionARN) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "Storage configuration %s is in use by composition %s: "+
		"stop the composition before deleting it.", arn, c)
}
