package storecore

import (
	"encoding/json"
	"fmt"

	"github.com/ivsrt/ivsrt"
)

// recording is the stored form of a recording configuration.
type recording struct {
	StorageConfigurationARN         string   `json:"storageConfigurationArn"`
	MediaTypes                      []string `json:"mediaTypes,omitempty"`
	ThumbnailIntervalSeconds        int      `json:"thumbnailIntervalSeconds,omitempty"`
	ThumbnailStorage                []string `json:"thumbnailStorage,omitempty"`
	ThumbnailRecordingMode          string   `json:"thumbnailRecordingMode,omitempty"`
	HasThumbnail                    bool     `json:"hasThumbnail,omitempty"`
	RecordingReconnectWindowSeconds int      `json:"recordingReconnectWindowSeconds,omitempty"`
	HLSTargetSegmentDurationSeconds int      `json:"hlsTargetSegmentDurationSeconds,omitempty"`
	RecordParticipantReplicas       bool     `json:"recordParticipantReplicas,omitempty"`
}

// EncodeRecording returns the stored JSON of a stage's recording
// configuration, or nil (NULL) for none.
func EncodeRecording(r *ivsrt.AutoParticipantRecording) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	j := recording{
		StorageConfigurationARN:         r.StorageConfigurationARN,
		MediaTypes:                      r.MediaTypes,
		RecordingReconnectWindowSeconds: r.RecordingReconnectWindowSeconds,
		HLSTargetSegmentDurationSeconds: r.HLSTargetSegmentDurationSeconds,
		RecordParticipantReplicas:       r.RecordParticipantReplicas,
	}
	if t := r.Thumbnail; t != nil {
		j.HasThumbnail = true
		j.ThumbnailIntervalSeconds = t.TargetIntervalSeconds
		j.ThumbnailStorage = t.Storage
		j.ThumbnailRecordingMode = t.RecordingMode
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode recording configuration: %w", err)
	}
	return b, nil
}

// DecodeRecording is the inverse of EncodeRecording: nil gives nil.
func DecodeRecording(b []byte) (*ivsrt.AutoParticipantRecording, error) {
	if b == nil {
		return nil, nil
	}
	var j recording
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("decode recording configuration: %w", err)
	}
	r := &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN:         j.StorageConfigurationARN,
		MediaTypes:                      j.MediaTypes,
		RecordingReconnectWindowSeconds: j.RecordingReconnectWindowSeconds,
		HLSTargetSegmentDurationSeconds: j.HLSTargetSegmentDurationSeconds,
		RecordParticipantReplicas:       j.RecordParticipantReplicas,
	}
	if j.HasThumbnail {
		r.Thumbnail = &ivsrt.ThumbnailConfiguration{
			TargetIntervalSeconds: j.ThumbnailIntervalSeconds,
			Storage:               j.ThumbnailStorage,
			RecordingMode:         j.ThumbnailRecordingMode,
		}
	}
	return r, nil
}

// EncodeAttributes returns the stored JSON of a participant's attributes:
// an object, empty for none.
func EncodeAttributes(m map[string]string) ([]byte, error) {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode attributes: %w", err)
	}
	return b, nil
}

// DecodeAttributes is the inverse of EncodeAttributes.
func DecodeAttributes(b []byte) (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode attributes: %w", err)
	}
	return m, nil
}

// EncodeDetail returns the stored JSON of a stream event's detail.
func EncodeDetail(ev *ivsrt.StreamEvent) ([]byte, error) {
	b, err := json.Marshal(ev.Detail)
	if err != nil {
		return nil, fmt.Errorf("encode event detail: %w", err)
	}
	return b, nil
}

// DecodeDetail sets ev.Detail from its stored JSON.
func DecodeDetail(ev *ivsrt.StreamEvent, b []byte) error {
	if err := json.Unmarshal(b, &ev.Detail); err != nil {
		return fmt.Errorf("decode event %d: %w", ev.Seq, err)
	}
	return nil
}
