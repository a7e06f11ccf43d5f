package sfu

import (
	"context"
	"net/http"
	"time"

	"github.com/ivsrt/ivsrt"
)

// Token exchange (docs/protocol.md): a participant that joined with a
// self-signed token sends {"type":"exchangeToken","token":"<JWT>"} on its
// events WebSocket to act from then on with another token of the same
// participant (jti) and stage, without reconnecting: other capabilities,
// attributes, user id or expiry. As in IVS, only self-signed tokens are
// exchanged. The server answers "tokenExchanged" or "exchangeTokenError"
// and the WebSocket stays open either way.

// codeExchangeRefused refuses an exchange whose tokens may not be
// exchanged (not self-signed, another participant or stage, older).
const codeExchangeRefused = "TOKEN_EXCHANGE_REFUSED"

// tokenExchangedMessage answers an exchange that took effect with what the
// participant now acts as.
type tokenExchangedMessage struct {
	Type           string             `json:"type"` // "tokenExchanged"
	UserID         string             `json:"userId,omitempty"`
	Attributes     map[string]string  `json:"attributes"`
	Capabilities   []ivsrt.Capability `json:"capabilities"`
	ExpirationTime time.Time          `json:"expirationTime"`
}

// errTokenSuperseded refuses a self-signed token issued before the one
// its participant exchanged for.
var errTokenSuperseded = &refusal{http.StatusUnauthorized, codeTokenInvalid, "a token exchange replaced this token"}

func exchangeError(code, message string) errorMessage {
	return errorMessage{Type: "exchangeTokenError", Code: code, Message: message}
}

// exchangeToken exchanges the token of participant id, whose events
// WebSocket is ec, for raw, and returns the answer to send.
func (s *Server) exchangeToken(ctx context.Context, st *stage, id ivsrt.ParticipantID, ec *eventsConn, raw string) any {
	// The signature is checked before the stage is locked: it may read
	// the store's public keys.
	c, ref := s.verify(ctx, raw)
	if ref != nil {
		return exchangeError(ref.code, ref.message)
	}
	if c.expired {
		return exchangeError(codeTokenExpired, "the new token has expired")
	}
	st.lock()
	defer st.unlock()
	p := st.parts[id]
	if p == nil || p.events != ec || st.dead {
		return exchangeError(codeSessionEnded, "this WebSocket no longer speaks for the participant")
	}
	old, next := p.tok, c.tok
	switch {
	case old.PublicKeyARN == "":
		return exchangeError(codeExchangeRefused, "only self-signed tokens are exchanged: this participant joined with a token of CreateParticipantToken")
	case next.PublicKeyARN == "":
		return exchangeError(codeExchangeRefused, "only self-signed tokens are exchanged: the new token is not one")
	case next.StageARN != st.arn:
		return exchangeError(codeExchangeRefused, "the new token is for another stage (its resource and topic may not change)")
	case next.ParticipantID != id:
		return exchangeError(codeExchangeRefused, "the new token is another participant's (its jti may not change)")
	case next.CreatedAt.Before(old.CreatedAt):
		return exchangeError(codeExchangeRefused, "the new token was issued before the current one (iat)")
	}

	err := st.record(ctx, &ivsrt.Event{Name: ivsrt.EventTokenExchanged, ParticipantID: id,
		PreviousToken: old.Exchanged(), NewToken: next.Exchanged()})
	if err != nil {
		s.logger.Error("record token exchange failed", "stage", st.arn, "participant", id, "error", err)
		return exchangeError(errInternal.code, errInternal.message)
	}
	tok := selfSignedAdmitted(old, next)
	tok.NotBefore = next.CreatedAt
	p.tok = tok
	st.changed = true // the others see the new user id and attributes

	// Capabilities lost take effect at once; those gained are used by the
	// client's next WHIP or WHEP request, made with the new token.
	if !tok.Can(ivsrt.CapabilityPublish) {
		if pub := st.pubs[id]; pub != nil && pub.replica == nil {
			st.endPublication(ctx, pub)
		}
		if p.pub != nil {
			st.endPublish(ctx, p.pub)
		}
	}
	if !tok.Can(ivsrt.CapabilitySubscribe) {
		for _, ss := range p.subs {
			st.endSubscribe(ctx, ss)
		}
	}

	msg := tokenExchangedMessage{Type: "tokenExchanged", UserID: tok.UserID, Attributes: tok.Attributes,
		Capabilities: tok.Capabilities, ExpirationTime: tok.ExpirationTime}
	if msg.Attributes == nil {
		msg.Attributes = map[string]string{}
	}
	if msg.Capabilities == nil {
		msg.Capabilities = []ivsrt.Capability{}
	}
	return msg
}

// superseded reports whether presented, a self-signed token, was issued
// before the token its participant exchanged for last: the stored one's
// NotBefore, or the one the participant acts with here if its exchange
// is not stored yet.
func (st *stage) superseded(stored, presented *ivsrt.ParticipantToken) bool {
	notBefore := stored.NotBefore
	if p := st.parts[presented.ParticipantID]; p != nil && p.tok.NotBefore.After(notBefore) {
		notBefore = p.tok.NotBefore
	}
	return presented.CreatedAt.Before(notBefore)
}
