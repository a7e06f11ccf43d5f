package storecore

import (
	"encoding/json"
	"fmt"
	"time"

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

// exchangedTokenJSON is how an event's ExchangedToken is stored: the
// API's ExchangedParticipantToken, its time in Unix milliseconds.
type exchangedTokenJSON struct {
	Capabilities   []ivsrt.Capability `json:"capabilities"`
	Attributes     map[string]string  `json:"attributes"`
	UserID         string             `json:"userId,omitempty"`
	ExpirationTime int64              `json:"expirationTime,omitempty"`
}

// EncodeExchangedToken returns the stored form of t, "" for nil.
func EncodeExchangedToken(t *ivsrt.ExchangedToken) (string, error) {
	if t == nil {
		return "", nil
	}
	j := exchangedTokenJSON{Capabilities: t.Capabilities, Attributes: t.Attributes, UserID: t.UserID}
	if j.Capabilities == nil {
		j.Capabilities = []ivsrt.Capability{}
	}
	if !t.ExpirationTime.IsZero() {
		j.ExpirationTime = t.ExpirationTime.UnixMilli()
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("encode exchanged token: %w", err)
	}
	return string(b), nil
}

// DecodeExchangedToken is the inverse of EncodeExchangedToken.
func DecodeExchangedToken(s string) (*ivsrt.ExchangedToken, error) {
	if s == "" {
		return nil, nil
	}
	var j exchangedTokenJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return nil, fmt.Errorf("decode exchanged token: %w", err)
	}
	t := &ivsrt.ExchangedToken{Capabilities: j.Capabilities, Attributes: j.Attributes, UserID: j.UserID}
	if j.ExpirationTime != 0 {
		t.ExpirationTime = time.UnixMilli(j.ExpirationTime).UTC()
	}
	return t, nil
}
