package ivsrt

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// IngestConfigurationARN names an ingest configuration:
// arn:aws:ivs:{region}:{account}:ingest-configuration/{id}.
type IngestConfigurationARN string

// NewIngestConfigurationARN builds the ARN of ingest configuration id in
// region and account.
func NewIngestConfigurationARN(region, account, id string) IngestConfigurationARN {
	return IngestConfigurationARN(fmt.Sprintf("arn:aws:ivs:%s:%s:ingest-configuration/%s", region, account, id))
}

// NewIngestConfigurationID returns a fresh 12-character ingest
// configuration id, of the same form as a stage's.
func NewIngestConfigurationID() string { return randomID(12) }

// ID returns the ingest configuration id, the part after
// "ingest-configuration/", or "" if the ARN is not a well-formed ingest
// configuration ARN.
func (a IngestConfigurationARN) ID() string {
	if !ingestConfigurationARNPattern.MatchString(string(a)) {
		return ""
	}
	_, id, _ := strings.Cut(string(a), ":ingest-configuration/")
	return id
}

// IngestProtocol is what an encoder publishes with.
type IngestProtocol string

const (
	IngestRTMP  IngestProtocol = "RTMP"
	IngestRTMPS IngestProtocol = "RTMPS"
)

// IngestState tells whether an encoder publishes with an ingest
// configuration now.
type IngestState string

const (
	IngestActive   IngestState = "ACTIVE"
	IngestInactive IngestState = "INACTIVE"
)

// IngestCredential is what one encoder publishes with: a stream key, and
// the id it has as a participant of the stage.
type IngestCredential struct {
	ParticipantID ParticipantID
	// StreamKey is a secret: it is shown by CreateIngestConfiguration and
	// GetIngestConfiguration only, and never logged.
	StreamKey string
	// Redundant marks the second credential of redundant ingest, which a
	// second encoder publishes the same content with.
	Redundant bool
	// Active is set while an encoder publishes with this credential.
	Active bool
}

// IngestConfiguration lets an RTMP(S) encoder publish to a stage as a
// participant: the encoder presents a stream key of the configuration,
// and joins the configuration's stage with the credential's participant
// id and the configuration's user id and attributes.
type IngestConfiguration struct {
	ARN  IngestConfigurationARN
	Name string
	// StageARN is the stage the encoder publishes to, "" for none (its
	// stream keys are then of no use).
	StageARN   StageARN
	UserID     string
	Attributes map[string]string
	Protocol   IngestProtocol
	// InsecureIngest allows RTMP, without TLS; the API requires it for
	// Protocol RTMP.
	InsecureIngest bool
	// Credentials are the primary credential and, with redundant ingest,
	// the redundant one after it.
	Credentials []IngestCredential
	Tags        map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// State is ACTIVE while an encoder publishes with any of the
// configuration's credentials.
func (ic *IngestConfiguration) State() IngestState {
	for _, c := range ic.Credentials {
		if c.Active {
			return IngestActive
		}
	}
	return IngestInactive
}

// RedundantIngest reports whether the configuration has a redundant
// credential.
func (ic *IngestConfiguration) RedundantIngest() bool {
	for _, c := range ic.Credentials {
		if c.Redundant {
			return true
		}
	}
	return false
}

// Primary returns the primary credential.
func (ic *IngestConfiguration) Primary() IngestCredential {
	for _, c := range ic.Credentials {
		if !c.Redundant {
			return c
		}
	}
	return IngestCredential{}
}

// Credential returns the credential of participant id.
func (ic *IngestConfiguration) Credential(id ParticipantID) (IngestCredential, bool) {
	for _, c := range ic.Credentials {
		if c.ParticipantID == id {
			return c, true
		}
	}
	return IngestCredential{}, false
}

// StreamKeySecretLength is how many characters of [a-zA-Z0-9], drawn from
// crypto/rand, end a stream key: about 190 bits.
const StreamKeySecretLength = 32

// NewIngestCredential returns a fresh credential of the ingest
// configuration arn: a new participant id, and a stream key of the form
// AWS gives them, rt_{account}_{region}_{id}_{secret}. It panics if arn is
// not a well-formed ingest configuration ARN: callers make the ARN.
func NewIngestCredential(arn IngestConfigurationARN, redundant bool) IngestCredential {
	id := arn.ID()
	if id == "" {
		panic("ivsrt: NewIngestCredential of a malformed ARN " + string(arn))
	}
	// arn:aws:ivs:{region}:{account}:ingest-configuration/{id}
	parts := strings.Split(string(arn), ":")
	region, account := parts[3], parts[4]
	return IngestCredential{
		ParticipantID: NewParticipantID(),
		StreamKey:     "rt_" + account + "_" + region + "_" + id + "_" + randomID(StreamKeySecretLength),
		Redundant:     redundant,
	}
}

// IngestFilter narrows ListIngestConfigurations; at most one field is set.
type IngestFilter struct {
	StageARN *StageARN
	State    *IngestState
}

// IngestConfigurationUpdate holds the fields of an UpdateIngestConfiguration
// call; nil means unchanged.
type IngestConfigurationUpdate struct {
	StageARN        *StageARN
	RedundantIngest *bool
}

// IngestConfigurationStore persists ingest configurations. Their tags are
// read and changed through StageStore's TagResource, UntagResource and
// ListTags.
type IngestConfigurationStore interface {
	// CreateIngestConfiguration stores ic with its credentials and tags,
	// setting its CreatedAt and UpdatedAt from the store's clock. Returns
	// ECONFLICT if its ARN exists, or a participant id or stream key of
	// its credentials is another's.
	CreateIngestConfiguration(ctx context.Context, ic *IngestConfiguration) error

	// GetIngestConfiguration returns ENOTFOUND if it does not exist.
	GetIngestConfiguration(ctx context.Context, arn IngestConfigurationARN) (*IngestConfiguration, error)

	// ListIngestConfigurations returns the ingest configurations that pass
	// filter, in creation order, and the position of the next page (""
	// when this is the last).
	ListIngestConfigurations(ctx context.Context, filter IngestFilter, page Page) (ics []*IngestConfiguration, next string, err error)

	// UpdateIngestConfiguration applies upd and returns the updated
	// configuration. Turning redundant ingest on adds a credential made
	// by NewIngestCredential; turning it off removes the redundant one.
	// Returns ENOTFOUND if it does not exist, and ECONFLICT while it is
	// ACTIVE.
	UpdateIngestConfiguration(ctx context.Context, arn IngestConfigurationARN, upd IngestConfigurationUpdate) (*IngestConfiguration, error)

	// DeleteIngestConfiguration removes it with its credentials and tags.
	// Returns ENOTFOUND if it does not exist, and ECONFLICT while it is
	// ACTIVE unless force is set.
	DeleteIngestConfiguration(ctx context.Context, arn IngestConfigurationARN, force bool) error

	// DetachIngestParticipant sets to "" the stage of the ingest
	// configuration whose stage is stage and one of whose credentials is
	// participant id's, so that the participant, disconnected, cannot
	// publish to the stage again with the same stream key. Returns
	// ENOTFOUND if there is no such configuration.
	DetachIngestParticipant(ctx context.Context, stage StageARN, id ParticipantID) error

	// DetachActiveIngest sets to "" the stage of the ACTIVE ingest
	// configurations whose stage is stage, and returns how many it
	// changed: DeleteStage does, before it disconnects their encoders.
	DetachActiveIngest(ctx context.Context, stage StageARN) (int, error)

	IngestKeys
}

// IngestKeys is what the media plane's RTMP(S) server needs of the store:
// the configuration a presented stream key belongs to, and a place to say
// when an encoder starts and stops publishing with it.
type IngestKeys interface {
	// IngestByStreamKey returns the ingest configuration one of whose
	// credentials has streamKey, and that credential. Returns ENOTFOUND if
	// no credential has it.
	IngestByStreamKey(ctx context.Context, streamKey string) (*IngestConfiguration, IngestCredential, error)

	// SetIngestActive marks the credential of participant id of ingest
	// configuration arn as publishing (active) or not. The configuration
	// is ACTIVE while any of its credentials is. Returns ENOTFOUND if the
	// configuration does not exist (it may have been deleted while the
	// encoder published: DeleteIngestConfiguration with force) or has no
	// credential of that participant.
	SetIngestActive(ctx context.Context, arn IngestConfigurationARN, id ParticipantID, active bool) error
}

// IngestDisconnector ends the publishing of RTMP(S) encoders: the media
// plane implements it for DeleteIngestConfiguration with force.
type IngestDisconnector interface {
	// DisconnectIngest ends the connections of the encoders publishing
	// with the ingest configuration's credentials, if any. Its encoders
	// no longer publishing is not an error.
	DisconnectIngest(ctx context.Context, arn IngestConfigurationARN) error
}

// Limits of the ingest configuration operations, from the service model.
const (
	MaxIngestConfigurationNameLength = 128
	MaxIngestConfigurationARNLength  = 128
)

var (
	ingestConfigurationNamePattern = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	ingestConfigurationARNPattern  = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:ingest-configuration/[a-zA-Z0-9-]+$`)
)

// IngestConfigurationARN checks an ingest configuration ARN.
func (v *Validation) IngestConfigurationARN(field, arn string) bool {
	return v.Length(field, arn, 1, MaxIngestConfigurationARNLength) && v.Pattern(field, arn, ingestConfigurationARNPattern)
}

// IngestConfigurationName checks an ingest configuration name.
func (v *Validation) IngestConfigurationName(field, name string) bool {
	return v.Length(field, name, 0, MaxIngestConfigurationNameLength) && v.Pattern(field, name, ingestConfigurationNamePattern)
}

// IngestStageARN checks the stage ARN of an ingest configuration, which
// may be "" for none. The message shows the model's pattern as it is
// written, "^$|^arn:...$", which Pattern would show cut.
func (v *Validation) IngestStageARN(field, arn string) bool {
	if !v.Length(field, arn, 0, MaxStageARNLength) {
		return false
	}
	if arn == "" || stageARNPattern.MatchString(arn) {
		return true
	}
	v.violate(field, quote(arn), "satisfy regular expression pattern: ^$|"+stageARNPattern.String())
	return false
}

// IngestProtocol checks an ingest protocol and that insecure ingest is
// allowed for RTMP, which the service requires.
func (v *Validation) IngestProtocol(field, protocol, insecureField string, insecure bool) bool {
	if !v.Enum(field, protocol, string(IngestRTMP), string(IngestRTMPS)) {
		return false
	}
	if IngestProtocol(protocol) == IngestRTMP && !insecure {
		v.violate(insecureField, quote(fmt.Sprint(insecure)), "be true when "+field+" is RTMP")
		return false
	}
	return true
}
