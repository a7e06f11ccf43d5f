package api

import (
	"time"

	"github.com/ivsrt/ivsrt"
)

// The JSON shapes of the ivs-realtime API (service model 2020-07-14).
// Optional inputs are pointers so that "absent" and "zero" differ; optional
// outputs are omitted when empty.

// timestamp is an ISO-8601 UTC time with milliseconds, as AWS sends them.
type timestamp time.Time

func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z") + `"`), nil
}

func ts(t time.Time) *timestamp {
	if t.IsZero() {
		return nil
	}
	v := timestamp(t)
	return &v
}

type recordingWire struct {
	StorageConfigurationArn         *string        `json:"storageConfigurationArn"`
	MediaTypes                      []string       `json:"mediaTypes,omitempty"`
	ThumbnailConfiguration          *thumbnailWire `json:"thumbnailConfiguration,omitempty"`
	RecordingReconnectWindowSeconds *int           `json:"recordingReconnectWindowSeconds,omitempty"`
	HlsConfiguration                *hlsWire       `json:"hlsConfiguration,omitempty"`
	RecordParticipantReplicas       *bool          `json:"recordParticipantReplicas,omitempty"`
}

type thumbnailWire struct {
	TargetIntervalSeconds *int     `json:"targetIntervalSeconds,omitempty"`
	Storage               []string `json:"storage,omitempty"`
	RecordingMode         *string  `json:"recordingMode,omitempty"`
}

type hlsWire struct {
	TargetSegmentDurationSeconds *int `json:"targetSegmentDurationSeconds,omitempty"`
}

// Defaults the service documents for a recording configuration.
const (
	defaultMediaType                = "AUDIO_VIDEO"
	defaultThumbnailIntervalSeconds = 60
	defaultThumbnailStorage         = "SEQUENTIAL"
	defaultThumbnailRecordingMode   = "INTERVAL"
	defaultHLSSegmentSeconds        = 6
)

// toDomain fills in the documented defaults for what the caller left out.
func (r *recordingWire) toDomain() *ivsrt.AutoParticipantRecording {
	if r == nil {
		return nil
	}
	d := &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN:         deref(r.StorageConfigurationArn),
		MediaTypes:                      r.MediaTypes,
		RecordingReconnectWindowSeconds: deref(r.RecordingReconnectWindowSeconds),
		HLSTargetSegmentDurationSeconds: defaultHLSSegmentSeconds,
		RecordParticipantReplicas:       r.RecordParticipantReplicas == nil || *r.RecordParticipantReplicas, // the model's default
		Thumbnail: &ivsrt.ThumbnailConfiguration{
			TargetIntervalSeconds: defaultThumbnailIntervalSeconds,
			Storage:               []string{defaultThumbnailStorage},
			RecordingMode:         defaultThumbnailRecordingMode,
		},
	}
	if len(d.MediaTypes) == 0 {
		d.MediaTypes = []string{defaultMediaType}
	}
	if h := r.HlsConfiguration; h != nil && h.TargetSegmentDurationSeconds != nil {
		d.HLSTargetSegmentDurationSeconds = *h.TargetSegmentDurationSeconds
	}
	if t := r.ThumbnailConfiguration; t != nil {
		if t.TargetIntervalSeconds != nil {
			d.Thumbnail.TargetIntervalSeconds = *t.TargetIntervalSeconds
		}
		if t.Storage != nil {
			d.Thumbnail.Storage = t.Storage
		}
		if t.RecordingMode != nil {
			d.Thumbnail.RecordingMode = *t.RecordingMode
		}
	}
	return d
}

func recordingFromDomain(d *ivsrt.AutoParticipantRecording) *recordingWire {
	if d == nil {
		return nil
	}
	r := &recordingWire{
		StorageConfigurationArn:         &d.StorageConfigurationARN,
		MediaTypes:                      d.MediaTypes,
		RecordingReconnectWindowSeconds: &d.RecordingReconnectWindowSeconds,
		RecordParticipantReplicas:       &d.RecordParticipantReplicas,
	}
	if d.HLSTargetSegmentDurationSeconds != 0 {
		r.HlsConfiguration = &hlsWire{TargetSegmentDurationSeconds: &d.HLSTargetSegmentDurationSeconds}
	}
	if t := d.Thumbnail; t != nil {
		r.ThumbnailConfiguration = &thumbnailWire{
			TargetIntervalSeconds: &t.TargetIntervalSeconds,
			Storage:               t.Storage,
			RecordingMode:         &t.RecordingMode,
		}
	}
	return r
}

type stageEndpoints struct {
	Events string `json:"events,omitempty"`
	Whip   string `json:"whip,omitempty"`
	RTMP   string `json:"rtmp,omitempty"`
	RTMPS  string `json:"rtmps,omitempty"`
}

type stageWire struct {
	Arn                                   string            `json:"arn"`
	Name                                  string            `json:"name"`
	ActiveSessionID                       string            `json:"activeSessionId,omitempty"`
	Tags                                  map[string]string `json:"tags"`
	AutoParticipantRecordingConfiguration *recordingWire    `json:"autoParticipantRecordingConfiguration,omitempty"`
	Endpoints                             *stageEndpoints   `json:"endpoints,omitempty"`
}

type stageSummaryWire struct {
	Arn             string            `json:"arn"`
	Name            string            `json:"name"`
	ActiveSessionID string            `json:"activeSessionId,omitempty"`
	Tags            map[string]string `json:"tags"`
}

// s3StorageInput is an S3StorageConfiguration as a request gives it.
type s3StorageInput struct {
	BucketName *string `json:"bucketName"`
}

type s3StorageWire struct {
	BucketName string `json:"bucketName"`
}

// storageConfigurationWire is a StorageConfiguration, and also a
// StorageConfigurationSummary: the model gives both the same members.
type storageConfigurationWire struct {
	Arn  string            `json:"arn"`
	Name string            `json:"name"`
	S3   *s3StorageWire    `json:"s3,omitempty"`
	Tags map[string]string `json:"tags"`
}

type tokenConfigWire struct {
	Duration     *int              `json:"duration"`
	UserID       *string           `json:"userId"`
	Attributes   map[string]string `json:"attributes"`
	Capabilities []string          `json:"capabilities"`
}

type participantTokenWire struct {
	ParticipantID  string            `json:"participantId"`
	Token          string            `json:"token"`
	UserID         string            `json:"userId,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Duration       int               `json:"duration"`
	Capabilities   []string          `json:"capabilities"`
	ExpirationTime *timestamp        `json:"expirationTime,omitempty"`
}

func tokenFromDomain(t *ivsrt.ParticipantToken) participantTokenWire {
	caps := make([]string, len(t.Capabilities))
	for i, c := range t.Capabilities {
		caps[i] = string(c)
	}
	return participantTokenWire{
		ParticipantID:  string(t.ParticipantID),
		Token:          t.Token,
		UserID:         t.UserID,
		Attributes:     t.Attributes,
		Duration:       t.DurationMinutes,
		Capabilities:   caps,
		ExpirationTime: ts(t.ExpirationTime),
	}
}

type sessionWire struct {
	SessionID string     `json:"sessionId"`
	StartTime *timestamp `json:"startTime,omitempty"`
	EndTime   *timestamp `json:"endTime,omitempty"`
}

func sessionFromDomain(s *ivsrt.StageSession) sessionWire {
	return sessionWire{SessionID: string(s.ID), StartTime: ts(s.StartTime), EndTime: ts(s.EndTime)}
}

type participantWire struct {
	ParticipantID  string            `json:"participantId"`
	UserID         string            `json:"userId,omitempty"`
	State          string            `json:"state"`
	FirstJoinTime  *timestamp        `json:"firstJoinTime,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Published      bool              `json:"published"`
	RecordingState string            `json:"recordingState"`
	Protocol       string            `json:"protocol,omitempty"`
	participantReplicationWire
	participantIngestWire
}

// participantIngestWire is the ingest configuration of an RTMP(S)
// encoder, as Participant and ParticipantSummary have it: the ARN is left
// out for any other participant, whose redundantIngest is false.
type participantIngestWire struct {
	IngestConfigurationArn string `json:"ingestConfigurationArn,omitempty"`
	RedundantIngest        bool   `json:"redundantIngest"`
}

func participantIngest(p *ivsrt.Participant) participantIngestWire {
	return participantIngestWire{IngestConfigurationArn: string(p.IngestConfigurationARN), RedundantIngest: p.RedundantIngest}
}

// participantReplicationWire is a participant's replication, as
// Participant and ParticipantSummary have it: the state only with a
// replication, the source only of a replica.
type participantReplicationWire struct {
	ReplicationType  string `json:"replicationType"`
	ReplicationState string `json:"replicationState,omitempty"`
	SourceStageArn   string `json:"sourceStageArn,omitempty"`
	SourceSessionID  string `json:"sourceSessionId,omitempty"`
}

func replicationFromDomain(p *ivsrt.Participant) participantReplicationWire {
	if p.ReplicationType == "" {
		return participantReplicationWire{ReplicationType: string(ivsrt.ReplicationNone)}
	}
	return participantReplicationWire{
		ReplicationType:  string(p.ReplicationType),
		ReplicationState: string(p.ReplicationState),
		SourceStageArn:   string(p.SourceStageARN),
		SourceSessionID:  string(p.SourceSessionID),
	}
}

type participantSummaryWire struct {
	ParticipantID  string     `json:"participantId"`
	UserID         string     `json:"userId,omitempty"`
	State          string     `json:"state"`
	FirstJoinTime  *timestamp `json:"firstJoinTime,omitempty"`
	Published      bool       `json:"published"`
	RecordingState string     `json:"recordingState"`
	participantReplicationWire
	participantIngestWire
}

type eventWire struct {
	Name                string     `json:"name"`
	ParticipantID       string     `json:"participantId"`
	EventTime           *timestamp `json:"eventTime,omitempty"`
	RemoteParticipantID string     `json:"remoteParticipantId,omitempty"`
	ErrorCode           string     `json:"errorCode,omitempty"`
	// Of REPLICATION_STARTED and REPLICATION_STOPPED.
	DestinationStageArn  string `json:"destinationStageArn,omitempty"`
	DestinationSessionID string `json:"destinationSessionId,omitempty"`
	// Of a replica's events, and of subscribe events to one.
	Replica bool `json:"replica,omitempty"`
	// Of TOKEN_EXCHANGED.
	PreviousToken *exchangedTokenWire `json:"previousToken,omitempty"`
	NewToken      *exchangedTokenWire `json:"newToken,omitempty"`
}

// exchangedTokenWire is the model's ExchangedParticipantToken.
type exchangedTokenWire struct {
	Capabilities   []string          `json:"capabilities"`
	Attributes     map[string]string `json:"attributes"`
	UserID         string            `json:"userId,omitempty"`
	ExpirationTime *timestamp        `json:"expirationTime,omitempty"`
}

func exchangedTokenOut(t *ivsrt.ExchangedToken) *exchangedTokenWire {
	if t == nil {
		return nil
	}
	w := &exchangedTokenWire{Capabilities: []string{}, Attributes: t.Attributes, UserID: t.UserID, ExpirationTime: ts(t.ExpirationTime)}
	for _, c := range t.Capabilities {
		w.Capabilities = append(w.Capabilities, string(c))
	}
	if w.Attributes == nil {
		w.Attributes = map[string]string{}
	}
	return w
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func minutes(n int) time.Duration { return time.Duration(n) * time.Minute }
