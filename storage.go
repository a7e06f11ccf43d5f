package ivsrt

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// StorageConfigurationARN names a storage configuration:
// arn:aws:ivs:{region}:{account}:storage-configuration/{id}.
type StorageConfigurationARN string

// NewStorageConfigurationARN builds the ARN of storage configuration id in
// region and account.
func NewStorageConfigurationARN(region, account, id string) StorageConfigurationARN {
	return StorageConfigurationARN(fmt.Sprintf("arn:aws:ivs:%s:%s:storage-configuration/%s", region, account, id))
}

// NewStorageConfigurationID returns a fresh 12-character storage
// configuration id, of the same form as a stage's.
func NewStorageConfigurationID() string { return randomID(12) }

// ID returns the storage configuration id, the part after
// "storage-configuration/", or "" if the ARN is not a storage configuration
// ARN.
func (a StorageConfigurationARN) ID() string {
	_, id, ok := strings.Cut(string(a), ":storage-configuration/")
	if !ok {
		return ""
	}
	return id
}

// StorageConfiguration names where recordings are written: an S3 bucket
// (or the folder standing in for one). Stages name it in their
// AutoParticipantRecording.
type StorageConfiguration struct {
	ARN          StorageConfigurationARN
	Name         string
	S3BucketName string
	Tags         map[string]string
	CreatedAt    time.Time
}

// StorageConfigurationStore persists storage configurations. Their tags
// are read and changed through StageStore's TagResource, UntagResource and
// ListTags, which take the ARN of either kind of resource.
type StorageConfigurationStore interface {
	// CreateStorageConfiguration stores sc with its tags, setting its
	// CreatedAt from the store's clock. Returns ECONFLICT if the ARN exists.
	CreateStorageConfiguration(ctx context.Context, sc *StorageConfiguration) error

	// GetStorageConfiguration returns ENOTFOUND if it does not exist.
	GetStorageConfiguration(ctx context.Context, arn StorageConfigurationARN) (*StorageConfiguration, error)

	// ListStorageConfigurations returns storage configurations in creation
	// order, and the position of the next page ("" when this is the last).
	ListStorageConfigurations(ctx context.Context, page Page) (scs []*StorageConfiguration, next string, err error)

	// DeleteStorageConfiguration removes it with its tags. Returns
	// ENOTFOUND if it does not exist, and ECONFLICT while the
	// AutoParticipantRecording of a stage names it, or while the S3
	// destination of a composition that has not ended (see
	// CompositionState.Ended) names it.
	DeleteStorageConfiguration(ctx context.Context, arn StorageConfigurationARN) error
}

// Limits of the storage configuration operations, from the service model.
const (
	MaxStorageConfigurationNameLength = 128
	MaxStorageConfigurationARNLength  = 128
	MinS3BucketNameLength             = 3
	MaxS3BucketNameLength             = 63
	// DefaultStorageConfigurationPageSize is ListStorageConfigurations'
	// default maxResults: "your service quota or 100, whichever is
	// smaller", and there is no quota here.
	DefaultStorageConfigurationPageSize = 100
)

var (
	storageConfigurationNamePattern = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	storageConfigurationARNPattern  = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+$`)
	s3BucketNamePattern             = regexp.MustCompile(`^[a-z0-9-.]+$`)
)

// StorageConfigurationARN checks a storage configuration ARN.
func (v *Validation) StorageConfigurationARN(field, arn string) bool {
	return v.Length(field, arn, 1, MaxStorageConfigurationARNLength) && v.Pattern(field, arn, storageConfigurationARNPattern)
}

// StorageConfigurationName checks a storage configuration name.
func (v *Validation) StorageConfigurationName(field, name string) bool {
	return v.Length(field, name, 0, MaxStorageConfigurationNameLength) && v.Pattern(field, name, storageConfigurationNamePattern)
}

// S3BucketName checks the name of a storage configuration's bucket.
func (v *Validation) S3BucketName(field, name string) bool {
	return v.Length(field, name, MinS3BucketNameLength, MaxS3BucketNameLength) && v.Pattern(field, name, s3BucketNamePattern)
}

// ResourceARN checks the ARN of a taggable resource: a stage, a storage
// configuration, a public key, an ingest configuration, an encoder
// configuration or a composition. The model's ResourceArn pattern allows
// one character before the slash and so matches none; the message names
// the patterns of the six kinds instead.
func (v *Validation) ResourceARN(field, arn string) bool {
	if !v.Length(field, arn, 1, MaxStageARNLength) {
		return false
	}
	kinds := []*regexp.Regexp{stageARNPattern, storageConfigurationARNPattern, publicKeyARNPattern,
		ingestConfigurationARNPattern, encoderConfigurationARNPattern, compositionARNPattern}
	shown := make([]string, len(kinds))
	for i, re := range kinds {
		if re.MatchString(arn) {
			return true
		}
		shown[i] = strings.TrimSuffix(strings.TrimPrefix(re.String(), "^"), "$")
	}
	v.violate(field, quote(arn), "satisfy regular expression pattern: "+strings.Join(shown, " or "))
	return false
}
