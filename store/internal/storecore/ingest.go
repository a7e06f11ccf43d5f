package storecore

import (
	"slices"

	"github.com/ivsrt/ivsrt"
)

// CheckIngestFilter returns EINVALID for a filter of ListIngestConfigurations
// the API would not pass on: both fields set, or an unknown state.
func CheckIngestFilter(f ivsrt.IngestFilter) error {
	if f.StageARN != nil && f.State != nil {
		return ivsrt.Errorf(ivsrt.EINVALID, "at most one ingest configuration filter may be set")
	}
	if f.State != nil && *f.State != ivsrt.IngestActive && *f.State != ivsrt.IngestInactive {
		return ivsrt.Errorf(ivsrt.EINVALID, "unknown ingest configuration state %q", *f.State)
	}
	return nil
}

// IngestActiveConflict is the error of changing an ingest configuration
// an encoder publishes with.
func IngestActiveConflict(arn ivsrt.IngestConfigurationARN) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "Ingest configuration %s is active: it cannot be updated while a publisher streams with it.", arn)
}

// IngestDeleteConflict is the error of deleting, without force, an ingest
// configuration an encoder publishes with.
func IngestDeleteConflict(arn ivsrt.IngestConfigurationARN) error {
	return ivsrt.Errorf(ivsrt.ECONFLICT, "Ingest configuration %s is active: a publisher streams with it. "+
		"Set force to disconnect the publisher and delete it.", arn)
}

// IngestChange is what an update does to an ingest configuration's
// credentials besides changing ic.
type IngestChange struct {
	Add             *ivsrt.IngestCredential // a redundant credential to store
	RemoveRedundant bool                    // remove the redundant credential
}

// ApplyIngestUpdate applies upd to ic, read in the transaction that
// writes it back, and returns what to do to the stored credentials.
// Returns ECONFLICT while ic is ACTIVE.
func ApplyIngestUpdate(ic *ivsrt.IngestConfiguration, upd ivsrt.IngestConfigurationUpdate) (IngestChange, error) {
	if ic.State() == ivsrt.IngestActive {
		return IngestChange{}, IngestActiveConflict(ic.ARN)
	}
	if upd.StageARN != nil {
		ic.StageARN = *upd.StageARN
	}
	var change IngestChange
	if upd.RedundantIngest != nil {
		switch want, have := *upd.RedundantIngest, ic.RedundantIngest(); {
		case want && !have:
			c := ivsrt.NewIngestCredential(ic.ARN, true)
			change.Add = &c
			ic.Credentials = append(ic.Credentials, c)
		case !want && have:
			change.RemoveRedundant = true
			ic.Credentials = slices.DeleteFunc(ic.Credentials, func(c ivsrt.IngestCredential) bool { return c.Redundant })
		}
	}
	return change, nil
}

// SortCredentials puts the primary credential first.
func SortCredentials(cs []ivsrt.IngestCredential) {
	slices.SortStableFunc(cs, func(a, b ivsrt.IngestCredential) int {
		switch {
		case a.Redundant == b.Redundant:
			return 0
		case b.Redundant:
			return -1
		}
		return 1
	})
}

// MatchStreamKey returns the ingest configuration of ics, read by the
// stream key presented, and the credential that has it. Returns
// ENOTFOUND if none has it.
func MatchStreamKey(ics []*ivsrt.IngestConfiguration, streamKey string) (*ivsrt.IngestConfiguration, ivsrt.IngestCredential, error) {
	for _, ic := range ics {
		for _, c := range ic.Credentials {
			if c.StreamKey == streamKey {
				return ic, c, nil
			}
		}
	}
	return nil, ivsrt.IngestCredential{}, ivsrt.Errorf(ivsrt.ENOTFOUND, "stream key not found")
}
