package ivsrt

import "time"

// ICEServer is a STUN or TURN server a participant's client may gather
// candidates through, as WebRTC configures one (RTCIceServer): URLs
// (turn:, turns:, stun:) and, for TURN, the credentials.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEServerSource hands out the ICE servers of a participant, with
// credentials that last no longer than needed: until its token expires,
// or for a while once it has (a joined participant may stay past its
// token's expiry).
type ICEServerSource interface {
	ICEServers(participant ParticipantID, tokenExpiry time.Time) []ICEServer
}
