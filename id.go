package ivsrt

import (
	"crypto/rand"
	"strings"
)

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomID returns n characters of [a-zA-Z0-9] drawn from crypto/rand without
// modulo bias, the alphabet AWS uses for stage and participant ids.
func randomID(n int) string {
	var sb strings.Builder
	sb.Grow(n)
	buf := make([]byte, n+n/2)
	for sb.Len() < n {
		if _, err := rand.Read(buf); err != nil {
			panic("ivsrt: crypto/rand failed: " + err.Error()) // never on supported systems
		}
		for _, b := range buf {
			// 62*4 = 248: values at or above it would favour the first letters.
			if b < 248 && sb.Len() < n {
				sb.WriteByte(idAlphabet[b%62])
			}
		}
	}
	return sb.String()
}

// NewStageID returns a fresh 12-character stage id.
func NewStageID() string { return randomID(12) }

// NewParticipantID returns a fresh 12-character participant id.
func NewParticipantID() ParticipantID { return ParticipantID(randomID(12)) }

// NewSessionID returns a fresh stage session id: "st-" and 13 characters.
func NewSessionID() SessionID { return SessionID("st-" + randomID(13)) }
