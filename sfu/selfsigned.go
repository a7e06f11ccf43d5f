package sfu

import (
	"context"
	"net/http"

	"github.com/ivsrt/ivsrt"
)

// Self-signed tokens (docs/self-signed-tokens.md) are signed by the
// customer with the private half of an imported public key; the token
// issuer has checked the signature and the claims. Nothing was stored when
// they were made, so the first time one is presented it is stored as a
// participant token: from then on its participant id (the jti) is known,
// DisconnectParticipant revokes it as it revokes any other, and the
// revocation refuses every later token with that jti.

// errParticipantIDTaken refuses a self-signed token whose jti is the
// participant id of a token this server issued (or, the other way round, a
// token of this server's whose id a self-signed token took first).
var errParticipantIDTaken = &refusal{http.StatusUnauthorized, codeTokenInvalid,
	"the participant id (jti) of this token is another participant's"}

// storeSelfSigned stores presented, a self-signed token that no stored
// token has the participant id of, and returns what is stored: presented,
// or the token stored meanwhile by a request of the same participant, or
// by one of another stage (which admit then refuses). Returns ENOTFOUND if
// the token's stage does not exist.
func (st *stage) storeSelfSigned(ctx context.Context, presented *ivsrt.ParticipantToken) (*ivsrt.ParticipantToken, error) {
	tok := *presented
	tok.Token = ""
	err := st.s.store.CreateParticipantToken(ctx, &tok)
	if ivsrt.ErrorCode(err) == ivsrt.ECONFLICT {
		return st.s.store.GetParticipantToken(ctx, tok.ParticipantID)
	} else if err != nil {
		return nil, err
	}
	return &tok, nil
}

// selfSignedAdmitted is the token a self-signed participant acts with: the
// one it presents, whose signature says what it may do, with the stored
// one's revocation. A customer may sign several tokens with one jti (a
// longer one, one that may publish): they are one participant, and each
// request is allowed what its own token allows.
func selfSignedAdmitted(stored, presented *ivsrt.ParticipantToken) *ivsrt.ParticipantToken {
	tok := *presented
	tok.RevokedAt, tok.RevokeReason, tok.NotBefore = stored.RevokedAt, stored.RevokeReason, stored.NotBefore
	return &tok
}
