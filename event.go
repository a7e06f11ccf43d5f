package ivsrt

import "time"

// EventName is what happened to a participant.
type EventName string

const (
	EventJoined           EventName = "JOINED"
	EventLeft             EventName = "LEFT"
	EventPublishStarted   EventName = "PUBLISH_STARTED"
	EventPublishStopped   EventName = "PUBLISH_STOPPED"
	EventSubscribeStarted EventName = "SUBSCRIBE_STARTED"
	EventSubscribeStopped EventName = "SUBSCRIBE_STOPPED"
	EventPublishError     EventName = "PUBLISH_ERROR"
	EventSubscribeError   EventName = "SUBSCRIBE_ERROR"
	EventJoinError        EventName = "JOIN_ERROR"
	EventTokenExchanged   EventName = "TOKEN_EXCHANGED"
)

// Error codes carried by *_ERROR events.
const (
	ErrInsufficientCapabilities = "INSUFFICIENT_CAPABILITIES"
	ErrQuotaExceeded            = "QUOTA_EXCEEDED"
	ErrPublisherNotFound        = "PUBLISHER_NOT_FOUND"
	ErrInternalServer           = "INTERNAL_SERVER_EXCEPTION"

	// Refusals of RTMP(S) encoders (ingest configurations).
	ErrInvalidStreamKey   = "INVALID_STREAM_KEY"
	ErrReuseOfStreamKey   = "REUSE_OF_STREAM_KEY"
	ErrInvalidProtocol    = "INVALID_PROTOCOL"
	ErrBFramePresent      = "B_FRAME_PRESENT"
	ErrInvalidVideoCodec  = "INVALID_VIDEO_CODEC"
	ErrInvalidAudioCodec  = "INVALID_AUDIO_CODEC"
	ErrResolutionExceeded = "RESOLUTION_EXCEEDED"
	ErrBitrateExceeded    = "BITRATE_EXCEEDED"
	ErrInvalidInput       = "INVALID_INPUT"
)

// Event is one thing that happened to one participant in a stage session.
type Event struct {
	StageARN            StageARN
	SessionID           SessionID // filled in by the store
	Name                EventName
	ParticipantID       ParticipantID
	RemoteParticipantID ParticipantID // the publisher, for subscribe events
	ErrorCode           string
	Time                time.Time

	// Set on JOINED, from the participant's token.
	UserID     string
	Attributes map[string]string
	Protocol   string
	// Set on JOINED: what the joining client says of itself.
	Client ClientDetails
	// Set on JOINED of an RTMP(S) encoder: the ingest configuration it
	// publishes with, and whether that configuration has redundant
	// ingest (see Participant.RedundantIngest).
	IngestConfigurationARN IngestConfigurationARN
	RedundantIngest        bool

	// Replica is set on the events of a replica (see replication.go), and
	// on subscribe events whose remote participant is one. A replica's
	// JOINED also names the stage and session it is a replica from.
	Replica         bool
	SourceStageARN  StageARN
	SourceSessionID SessionID

	// Set on REPLICATION_STARTED and REPLICATION_STOPPED, which the store
	// records on the source participant.
	DestinationStageARN  StageARN
	DestinationSessionID SessionID

	// Set on TOKEN_EXCHANGED: what the participant's token said before
	// the exchange, and what the new one says.
	PreviousToken, NewToken *ExchangedToken
}

// ExchangedToken is what a token exchange tells of each of the two
// tokens (the API's ExchangedParticipantToken).
type ExchangedToken struct {
	Capabilities   []Capability
	Attributes     map[string]string
	UserID         string
	ExpirationTime time.Time
	// IssuedAt is the token's iat: a token issued before the one a
	// participant exchanged for is no longer accepted. Not in the API.
	IssuedAt time.Time
}

// Exchanged returns what a token exchange tells of tok.
func (tok *ParticipantToken) Exchanged() *ExchangedToken {
	return &ExchangedToken{Capabilities: tok.Capabilities, Attributes: tok.Attributes, UserID: tok.UserID,
		ExpirationTime: tok.ExpirationTime, IssuedAt: tok.CreatedAt}
}
