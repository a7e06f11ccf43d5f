package ivsrt

import (
	"context"
	"strings"
	"time"
)

// ParticipantID identifies one participant: one token, one person, one stage.
type ParticipantID string

// Capability is something a participant token allows.
type Capability string

const (
	CapabilityPublish   Capability = "PUBLISH"
	CapabilitySubscribe Capability = "SUBSCRIBE"
)

// ParticipantToken is what CreateParticipantToken issues: the right of one
// participant to join one stage until ExpirationTime.
type ParticipantToken struct {
	ParticipantID   ParticipantID
	StageARN        StageARN
	UserID          string
	Attributes      map[string]string
	Capabilities    []Capability
	DurationMinutes int
	CreatedAt       time.Time
	ExpirationTime  time.Time

	// PublicKeyARN names the imported public key a self-signed token was
	// signed with (its "kid"); "" for a token this server issued. A
	// self-signed token is stored the first time it is presented, so that
	// DisconnectParticipant can revoke it like any other.
	PublicKeyARN PublicKeyARN

	// NotBefore is set by a token exchange (self-signed tokens only): the
	// issue time of the token exchanged for, before which no token of
	// the participant is accepted any more, so that a token a
	// downgrade replaced cannot be presented again.
	NotBefore time.Time

	// RevokedAt is set, for good, when the participant is disconnected.
	RevokedAt    time.Time
	RevokeReason string

	// Token is the signed JWT. It is returned once, when the token is
	// created, and never stored.
	Token string
}

// Can reports whether the token grants c.
func (t *ParticipantToken) Can(c Capability) bool {
	for _, have := range t.Capabilities {
		if have == c {
			return true
		}
	}
	return false
}

// Revoked reports whether the token was revoked.
func (t *ParticipantToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// TokenStore persists participant tokens so that the media plane can check a
// presented token against what the control plane issued.
type TokenStore interface {
	// CreateParticipantToken stores tok. Returns ENOTFOUND if its stage does
	// not exist, and ECONFLICT if a token has its participant id.
	CreateParticipantToken(ctx context.Context, tok *ParticipantToken) error

	// GetParticipantToken returns ENOTFOUND if no token has that participant id.
	GetParticipantToken(ctx context.Context, id ParticipantID) (*ParticipantToken, error)

	// RevokeParticipantToken marks the token revoked for good, keeping the
	// first revocation's time and reason. Returns ENOTFOUND if the stage has
	// no such participant.
	RevokeParticipantToken(ctx context.Context, stage StageARN, id ParticipantID, reason string) error
}

// ErrTokenExpired is what TokenIssuer.Verify returns for a genuine token
// whose expiration time has passed, together with the token's claims: an
// expired token cannot join, but a participant already in the stage may go
// on with it, which only the media plane knows.
var ErrTokenExpired = &Error{Code: EDENIED, Message: "token expired"}

// TokenIssuer signs participant tokens and checks presented ones.
type TokenIssuer interface {
	// Issue returns the signed form of tok.
	Issue(ctx context.Context, tok *ParticipantToken) (string, error)

	// Verify checks the signature and expiry of a presented token and returns
	// its claims. Returns EDENIED for anything not issued by this server, and
	// the claims with ErrTokenExpired for a genuine token past its expiry.
	Verify(ctx context.Context, token string) (*ParticipantToken, error)
}

// BearerToken returns the token of an Authorization header value of the
// Bearer scheme (RFC 6750, section 2.1), or "": the way a participant
// presents its token to WHIP, WHEP and the events WebSocket.
func BearerToken(authorization string) string {
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// The paths of the media protocol (docs/protocol.md): the events
// WebSocket, WHIP (POST /whip, then the session's /whip/{id}) and WHEP
// (POST /whep/{participantId}, then /whep/{participantId}/{id}).
const (
	EventsPath = "/events"
	WHIPPath   = "/whip"
	WHEPPrefix = "/whep/"
)

// ForwardedPublicURLHeader carries, on a media request one node of a
// cluster routes to another, the public URL of the node the client used:
// the URLs the answer gives the client (the events WebSocket's WHIP and
// WHEP URLs, a session's Location) name that node, which routes them in
// turn, rather than one the client did not choose and its page may not
// be allowed to reach. Whoever sets it affects only the answer to its own
// request.
const ForwardedPublicURLHeader = "Ivsrt-Public-Url"

// IsMediaPath reports whether an HTTP request for path belongs to the
// media plane rather than the API.
func IsMediaPath(path string) bool {
	return path == EventsPath || path == WHIPPath ||
		strings.HasPrefix(path, WHIPPath+"/") || strings.HasPrefix(path, WHEPPrefix)
}

// PresentedToken returns the participant token a media request presents:
// its Authorization header's bearer token or, on the events WebSocket,
// whose headers a browser cannot set, its access_token query parameter.
func PresentedToken(path, authorization, accessToken string) string {
	if tok := BearerToken(authorization); tok != "" {
		return tok
	}
	if path == EventsPath {
		return accessToken
	}
	return ""
}

// ParticipantState tells whether a participant is in the stage now.
type ParticipantState string

const (
	ParticipantConnected    ParticipantState = "CONNECTED"
	ParticipantDisconnected ParticipantState = "DISCONNECTED"
)

// Participant is one participant's presence in one stage session.
type Participant struct {
	ID            ParticipantID
	StageARN      StageARN
	SessionID     SessionID
	UserID        string
	Attributes    map[string]string
	State         ParticipantState
	FirstJoinTime time.Time
	Published     bool   // ever published in this session
	Protocol      string // UNKNOWN, WHIP, ...
	Client        ClientDetails

	// The participant's individual recording: "" while its stage does not
	// record it (the API says DISABLED).
	RecordingBucket string
	RecordingPrefix string
	RecordingState  ParticipantRecordingState

	// The participant's replication (see replication.go): "" for the
	// type while it has none (the API says NONE); the source stage and
	// session of a REPLICA.
	ReplicationType  ReplicationType
	ReplicationState ReplicationState
	SourceStageARN   StageARN
	SourceSessionID  SessionID

	// The ingest configuration an RTMP(S) encoder publishes with, ""
	// for a participant that joined otherwise. RedundantIngest is what
	// the API documents as "whether redundant ingest is enabled for the
	// participant": the configuration's redundantIngest, true for the
	// encoders of both of its credentials, not whether this one is the
	// redundant credential.
	IngestConfigurationARN IngestConfigurationARN
	RedundantIngest        bool
}

// ClientVersion is the version of ivsrt's client libraries, the browser
// client (web/client/ivsrt.js says the same) and the bot: what they
// report, and GetParticipant shows, as sdkVersion.
const ClientVersion = "1.0.0"

// ClientDetails is what a participant's client says of itself when it
// joins: its browser (or encoder) and operating system from its
// User-Agent, and the version of the ivsrt client library it runs. A
// field the client does not tell stays "": nothing is guessed.
type ClientDetails struct {
	ISPName        string
	OSName         string
	OSVersion      string
	BrowserName    string
	BrowserVersion string
	SDKVersion     string
}

// ParticipantFilter narrows ListParticipants; at most one field is set.
type ParticipantFilter struct {
	UserID         *string
	Published      *bool
	State          *ParticipantState
	RecordingState *string
}
