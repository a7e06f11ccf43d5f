// Package ivsrt holds the domain of a self-hosted IVS Real-Time server:
// stages, participant tokens, stage sessions, participants and their events,
// and the interfaces the storage, API and media packages implement.
package ivsrt

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// StageARN names a stage: arn:aws:ivs:{region}:{account}:stage/{id}.
type StageARN string

// NewStageARN builds the ARN of stage id in region and account.
func NewStageARN(region, account, id string) StageARN {
	return StageARN(fmt.Sprintf("arn:aws:ivs:%s:%s:stage/%s", region, account, id))
}

// ID returns the stage id, the part after "stage/", or "" if the ARN is not
// a stage ARN.
func (a StageARN) ID() string {
	_, id, ok := strings.Cut(string(a), ":stage/")
	if !ok {
		return ""
	}
	return id
}

// Stage is a virtual room where participants exchange audio and video.
type Stage struct {
	ARN             StageARN
	Name            string
	ActiveSessionID SessionID // "" while nobody is in the stage
	Tags            map[string]string

	// AutoParticipantRecording says whether and how publishers are
	// recorded (individual participant recording); nil for not at all.
	AutoParticipantRecording *AutoParticipantRecording

	CreatedAt time.Time
	UpdatedAt time.Time
}

// AutoParticipantRecording mirrors the API's autoParticipantRecordingConfiguration.
type AutoParticipantRecording struct {
	StorageConfigurationARN         string
	MediaTypes                      []string
	Thumbnail                       *ThumbnailConfiguration
	RecordingReconnectWindowSeconds int
	HLSTargetSegmentDurationSeconds int // 0 when no HLS configuration was given
	RecordParticipantReplicas       bool
}

// ThumbnailConfiguration mirrors the API's thumbnailConfiguration.
type ThumbnailConfiguration struct {
	TargetIntervalSeconds int
	Storage               []string
	RecordingMode         string
}

// StageUpdate holds the fields of an UpdateStage call; nil means unchanged.
type StageUpdate struct {
	Name                     *string
	AutoParticipantRecording *AutoParticipantRecording
}

// StageQuota bounds what CreateStage may add.
type StageQuota struct {
	MaxStages int // 0 means no limit
}

// Page asks for one page of a list. After is the opaque position a previous
// page returned as its next (empty for the first page); Limit must be at
// least 1 (stores answer EINVALID otherwise).
type Page struct {
	After string
	Limit int
}

// StageStore persists stages, their tags and their participant tokens.
// CreateStage, UpdateStage and DeleteStage each append a stage change to the
// event stream (see EventStream) in the same transaction.
type StageStore interface {
	// CreateStage stores a new stage and the participant tokens created with
	// it, all or nothing, setting the stage's CreatedAt and UpdatedAt from the
	// store's clock (tokens keep the CreatedAt their issuer gave them).
	// Returns EQUOTA if the quota would be exceeded, ECONFLICT if the ARN
	// exists, and EINVALID if its AutoParticipantRecording names a storage
	// configuration that does not exist.
	CreateStage(ctx context.Context, stage *Stage, tokens []*ParticipantToken, quota StageQuota) error

	// GetStage returns ENOTFOUND if the stage does not exist.
	GetStage(ctx context.Context, arn StageARN) (*Stage, error)

	// UpdateStage applies upd and returns the updated stage, or ENOTFOUND.
	// Returns EINVALID if upd.AutoParticipantRecording names a storage
	// configuration that does not exist.
	UpdateStage(ctx context.Context, arn StageARN, upd StageUpdate) (*Stage, error)

	// DeleteStage removes the stage with its tags, tokens, sessions,
	// participants and events. Returns ENOTFOUND if it does not exist.
	DeleteStage(ctx context.Context, arn StageARN) error

	// ListStages returns stages in creation order, and the position of the
	// next page ("" when this is the last).
	ListStages(ctx context.Context, page Page) (stages []*Stage, next string, err error)

	// TagResource merges tags into the tags of a resource, a stage, a
	// storage configuration, a public key, an ingest configuration, an
	// encoder configuration or a composition, named by its ARN. Returns
	// ENOTFOUND if the resource does not exist and EINVALID if it would end
	// with more than MaxTagsPerResource tags.
	TagResource(ctx context.Context, arn string, tags map[string]string) error

	// UntagResource removes the given keys; absent keys are ignored.
	// Returns ENOTFOUND if the resource does not exist.
	UntagResource(ctx context.Context, arn string, keys []string) error

	// ListTags returns the resource's tags, or ENOTFOUND.
	ListTags(ctx context.Context, arn string) (map[string]string, error)
}

// MediaPlane is what the control plane asks of live media: ending
// connections that an API call takes away.
type MediaPlane interface {
	// DisconnectParticipant ends the participant's connections, telling the
	// client reason.
	DisconnectParticipant(ctx context.Context, stage StageARN, id ParticipantID, reason string) error

	// CloseStage disconnects everyone in the stage before it is deleted.
	CloseStage(ctx context.Context, stage StageARN) error
}
