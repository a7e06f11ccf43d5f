package storecore

import "github.com/ivsrt/ivsrt"

// ResourceKind is the kind of taggable resource an ARN names.
type ResourceKind int

const (
	UnknownResource ResourceKind = iota
	StageResource
	StorageConfigurationResource
	PublicKeyResource
	IngestConfigurationResource
	EncoderConfigurationResource
	CompositionResource
)

// KindOf returns the kind of resource arn names, by its resource type.
func KindOf(arn string) ResourceKind {
	switch {
	case ivsrt.StageARN(arn).ID() != "":
		return StageResource
	case ivsrt.StorageConfigurationARN(arn).ID() != "":
		return StorageConfigurationResource
	case ivsrt.PublicKeyARN(arn).ID() != "":
		return PublicKeyResource
	case ivsrt.IngestConfigurationARN(arn).ID() != "":
		return IngestConfigurationResource
	case ivsrt.EncoderConfigurationARN(arn).ID() != "":
		return EncoderConfigurationResource
	case ivsrt.CompositionARN(arn).ID() != "":
		return CompositionResource
	}
	return UnknownResource
}

// RecordingStorage returns the storage configuration a stage's recording
// names, "" for none (no recording, or recording turned off with "").
func RecordingStorage(r *ivsrt.AutoParticipantRecording) ivsrt.StorageConfigurationARN {
	if r == nil {
		return ""
	}
	return ivsrt.StorageConfigurationARN(r.StorageConfigurationARN)
}

// StorageConfigurationMissing is the error of a stage write whose
// recording names a storage configuration that does not exist. The model
// allows CreateStage no ResourceNotFoundException, and AWS's documentation
// does not say what it answers, so it is a ValidationException naming the
// field and the ARN, the same for UpdateStage.
func StorageConfigurationMissing(arn ivsrt.StorageConfigurationARN) error {
	return ivsrt.Errorf(ivsrt.EINVALID, "1 validation error detected: Value '%s' at "+
		"'autoParticipantRecordingConfiguration.storageConfigurationArn' failed to satisfy constraint: "+
		"Member must name an existing storage configuration", arn)
}

// StorageConfigurationInUse is the error of deleting a storage
// configuration that stage's recording names.
func StorageConfigurationInUse(arn ivsrt.StorageConfigurationARN, stage ivsrt.StageARN) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "Storage configuration %s is in use by stage %s: "+
		"change the stage's autoParticipantRecordingConfiguration before deleting it.", arn, stage)
}
