package storecore

import "github.com/ivsrt/ivsrt"

// ApplyUpdate sets the fields of s that upd changes.
func ApplyUpdate(s *ivsrt.Stage, upd ivsrt.StageUpdate) {
	if upd.Name != nil {
		s.Name = *upd.Name
	}
	if upd.AutoParticipantRecording != nil {
		s.AutoParticipantRecording = upd.AutoParticipantRecording
	}
}

// CheckStageQuota returns EQUOTA if a stage may not be added to the stages
// there are.
func CheckStageQuota(quota ivsrt.StageQuota, stages int) error {
	if quota.MaxStages > 0 && stages >= quota.MaxStages {
		return ivsrt.Errorf(ivsrt.EQUOTA, "Stage quota exceeded: this account may have at most %d stages.", quota.MaxStages)
	}
	return nil
}

// CheckTagCount returns EINVALID if a resource would end with more tags
// than it may have.
func CheckTagCount(tags int) error {
	if tags > ivsrt.MaxTagsPerResource {
		return ivsrt.Errorf(ivsrt.EINVALID, "A resource may have at most %d tags; this request would leave it with %d.", ivsrt.MaxTagsPerResource, tags)
	}
	return nil
}
