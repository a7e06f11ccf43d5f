package token

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/ivsrt/ivsrt"
)

// PublicKeys finds the public keys customers imported, by ARN: the store.
type PublicKeys interface {
	// GetPublicKey returns ENOTFOUND if there is no such key.
	GetPublicKey(ctx context.Context, arn ivsrt.PublicKeyARN) (*ivsrt.PublicKey, error)
}

// Reasons for refusing a self-signed token, besides those of any token.
const (
	msgNoIssuedAt     = "token has no issue time (iat)"
	msgLifetime       = "token lifetime (exp - iat) exceeds 14 days"
	msgExpiresFirst   = "token expires before it is issued"
	msgIssuedInFuture = "token is issued in the future (iat)"
	msgParticipantID  = "token participant id (jti) must be 1 to 64 characters of A-Z, a-z, 0-9, - and _"
	msgUserID         = "token user_id is longer than 128 characters"
	msgAttributes     = "token attributes take more than 1 KB"
)

// MaxClockSkew is how far in the future a self-signed token's issue time
// may be: the clocks of the customer's server and this one differ a little.
const MaxClockSkew = 5 * time.Minute

// selfSignedIDPattern is what a self-signed token's jti, its participant
// id, may be (AWS: at most 64 characters of [A-Za-z0-9_-]).
var selfSignedIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// importedKey returns the imported public key kid names. A kid that is
// not the ARN of an imported key is EDENIED, as an unknown key; a failure
// of the store is returned as it is.
func (i *Issuer) importedKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	arn := ivsrt.PublicKeyARN(kid)
	if i.keys == nil || len(kid) > ivsrt.MaxPublicKeyARNLength || arn.ID() == "" {
		return nil, ivsrt.Errorf(ivsrt.EDENIED, msgUnknownKey)
	}
	pk, err := i.keys.GetPublicKey(ctx, arn)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil, ivsrt.Errorf(ivsrt.EDENIED, msgUnknownKey)
	} else if err != nil {
		return nil, fmt.Errorf("token: read public key %s: %w", arn, err)
	}
	pub, err := ivsrt.ParsePublicKeyMaterial(pk.Material)
	if err != nil {
		// ImportPublicKey checked it: the stored key is damaged.
		return nil, fmt.Errorf("token: public key %s: %s", arn, ivsrt.ErrorMessage(err))
	}
	return pub, nil
}

// checkSelfSigned checks what a customer's server puts in a self-signed
// token against the limits CreateParticipantToken keeps for the tokens
// this server issues: an issue time, a lifetime of at most 14 days, the
// participant id's form, the user id's and attributes' sizes. now is the
// verifier's clock.
func checkSelfSigned(c *claims, now time.Time) error {
	const maxLifetime = int64(ivsrt.MaxTokenDurationMinutes) * 60
	denied := func(msg string) error { return ivsrt.Errorf(ivsrt.EDENIED, "%s", msg) }
	switch {
	case c.IssuedAt <= 0: // absent, or before 1970: both positive below, no overflow
		return denied(msgNoIssuedAt)
	case c.ExpiresAt <= c.IssuedAt:
		return denied(msgExpiresFirst)
	case c.ExpiresAt-c.IssuedAt > maxLifetime:
		return denied(msgLifetime)
	case c.IssuedAt > now.Add(MaxClockSkew).Unix():
		return denied(msgIssuedInFuture)
	case !selfSignedIDPattern.MatchString(c.ID):
		return denied(msgParticipantID)
	case utf8.RuneCountInString(c.UserID) > ivsrt.MaxUserIDLength:
		return denied(msgUserID)
	}
	total := 0
	for k, v := range c.Attributes {
		total += len(k) + len(v)
	}
	if total > ivsrt.MaxAttributesBytes {
		return denied(msgAttributes)
	}
	return nil
}
