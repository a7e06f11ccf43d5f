// Package token signs and verifies participant tokens: ES384 JWTs carrying
// the same claims as the tokens of Amazon IVS Real-Time, so that code which
// reads those claims keeps working against this server. It also verifies
// self-signed tokens: those a customer signs with the private half of a
// public key imported with ImportPublicKey, named by the token's "kid".
package token

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ivsrt/ivsrt"
)

// MaxLength is the length in bytes beyond which Verify rejects a token
// without parsing it. Typical tokens are under 2 KiB, but the API's limits
// allow more: 1 KB of attributes and a 128-character user id whose
// characters JSON escapes to six bytes each ("\u0001", "\u003c") make a
// token of about 10 KiB, which must still verify.
const MaxLength = 16 << 10

// Version is the value of the "version" claim.
const Version = "1.0"

// Client-safe reasons for rejecting a token.
const (
	msgTooLong      = "token too long"
	msgMalformed    = "malformed token"
	msgAlgorithm    = "unsupported token signing algorithm"
	msgUnknownKey   = "token signed by an unknown key"
	msgSignature    = "invalid token signature"
	msgNoExpiration = "token has no expiration time"
	msgNoID         = "token has no participant id"
	msgNoStage      = "token names no stage"
	msgTopic        = "token topic does not match its stage"
	msgVersion      = "unsupported token version"
	msgInvalid      = "invalid token"
)

// capabilities is the "capabilities" claim.
type capabilities struct {
	AllowPublish   bool `json:"allow_publish"`
	AllowSubscribe bool `json:"allow_subscribe"`
}

// claims is the payload of a participant token. Times are unix seconds.
type claims struct {
	ExpiresAt    int64             `json:"exp"`
	IssuedAt     int64             `json:"iat"`
	ID           string            `json:"jti"`      // participant id
	Resource     string            `json:"resource"` // stage ARN
	Topic        string            `json:"topic"`    // stage id
	EventsURL    string            `json:"events_url"`
	WHIPURL      string            `json:"whip_url"`
	UserID       string            `json:"user_id"`
	Attributes   map[string]string `json:"attributes"`
	Capabilities capabilities      `json:"capabilities"`
	Version      string            `json:"version"`
}

var _ jwt.Claims = (*claims)(nil)

// GetExpirationTime returns nil when exp is absent (or zero), so that the
// parser's WithExpirationRequired rejects the token.
func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) {
	if c.ExpiresAt == 0 {
		return nil, nil
	}
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

func (c *claims) GetIssuedAt() (*jwt.NumericDate, error) {
	if c.IssuedAt == 0 {
		return nil, nil
	}
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

func (c *claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *claims) GetIssuer() (string, error)              { return "", nil }
func (c *claims) GetSubject() (string, error)             { return "", nil }
func (c *claims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// Issuer signs participant tokens with one P-384 key and verifies tokens
// signed with it. It is safe for concurrent use.
type Issuer struct {
	key       *ecdsa.PrivateKey
	kid       string
	eventsURL string
	whipURL   string
	now       func() time.Time
	leeway    time.Duration
	parser    *jwt.Parser
	keys      PublicKeys // nil: self-signed tokens are refused
}

var _ ivsrt.TokenIssuer = (*Issuer)(nil)

// Option configures an Issuer.
type Option func(*Issuer)

// WithEventsURL sets the "events_url" claim of issued tokens.
func WithEventsURL(u string) Option { return func(i *Issuer) { i.eventsURL = u } }

// WithWHIPURL sets the "whip_url" claim of issued tokens.
func WithWHIPURL(u string) Option { return func(i *Issuer) { i.whipURL = u } }

// WithClock sets the clock Verify checks expiration against; time.Now by
// default.
func WithClock(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// WithLeeway lets Verify accept a token up to d after its expiration time;
// 0 by default.
func WithLeeway(d time.Duration) Option { return func(i *Issuer) { i.leeway = d } }

// WithPublicKeys has Verify accept self-signed tokens: those signed with
// the private half of a public key keys has, named by the token's "kid".
// Each token's key is read from keys as it is verified, so that a deleted
// key's tokens are refused at once.
func WithPublicKeys(keys PublicKeys) Option { return func(i *Issuer) { i.keys = keys } }

// NewIssuer returns an Issuer signing with key, which must be a P-384 key
// such as LoadOrCreateKey returns. It panics on any other key.
func NewIssuer(key *ecdsa.PrivateKey, opts ...Option) *Issuer {
	if key == nil {
		panic("token: NewIssuer: nil key")
	}
	if err := checkCurve(key); err != nil {
		panic("token: NewIssuer: " + err.Error())
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		panic("token: NewIssuer: " + err.Error())
	}

	i := &Issuer{key: key, kid: kid}
	for _, opt := range opts {
		opt(i)
	}
	if i.now == nil {
		i.now = time.Now
	}
	i.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES384.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(i.now),
		jwt.WithLeeway(i.leeway),
		jwt.WithStrictDecoding(),
	)
	return i
}

// KeyID returns the "kid" header of the tokens i signs.
func (i *Issuer) KeyID() string { return i.kid }

// Issue returns tok signed as an ES384 JWT. tok must have a participant id,
// a stage ARN, a creation time and an expiration time; anything else is a
// fault of the caller and yields an internal error.
func (i *Issuer) Issue(ctx context.Context, tok *ivsrt.ParticipantToken) (string, error) {
	switch {
	case tok == nil:
		return "", errors.New("token: issue: nil token")
	case tok.ParticipantID == "":
		return "", errors.New("token: issue: no participant id")
	case tok.StageARN.ID() == "":
		return "", fmt.Errorf("token: issue: %q is not a stage ARN", tok.StageARN)
	case tok.CreatedAt.IsZero():
		return "", errors.New("token: issue: no creation time")
	case tok.ExpirationTime.IsZero():
		return "", errors.New("token: issue: no expiration time")
	}

	attrs := tok.Attributes
	if attrs == nil {
		attrs = map[string]string{} // the claim is always an object
	}
	c := &claims{
		ExpiresAt:  tok.ExpirationTime.Unix(),
		IssuedAt:   tok.CreatedAt.Unix(),
		ID:         string(tok.ParticipantID),
		Resource:   string(tok.StageARN),
		Topic:      tok.StageARN.ID(),
		EventsURL:  i.eventsURL,
		WHIPURL:    i.whipURL,
		UserID:     tok.UserID,
		Attributes: attrs,
		Capabilities: capabilities{
			AllowPublish:   tok.Can(ivsrt.CapabilityPublish),
			AllowSubscribe: tok.Can(ivsrt.CapabilitySubscribe),
		},
		Version: Version,
	}

	t := jwt.NewWithClaims(jwt.SigningMethodES384, c)
	t.Header["kid"] = i.kid
	s, err := t.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}

// Verify checks that s is an ES384 JWT signed with i's key, or with an
// imported public key (a self-signed token, see WithPublicKeys), unexpired
// by i's clock, naming a participant and a stage, and returns its claims.
// Attributes of the result is never nil; the revocation fields and Token
// are left zero, and so is DurationMinutes for a token i issued. A
// self-signed token has PublicKeyARN set and must also keep the limits of
// CreateParticipantToken (see checkSelfSigned).
//
// Every failure of the token is an EDENIED error whose message is safe to
// show to the client; a failure to read a public key is returned as it is.
// A genuine token past its expiry is returned with its claims and
// ivsrt.ErrTokenExpired.
func (i *Issuer) Verify(ctx context.Context, s string) (*ivsrt.ParticipantToken, error) {
	if len(s) > MaxLength {
		return nil, ivsrt.Errorf(ivsrt.EDENIED, msgTooLong)
	}

	var (
		c        claims
		imported ivsrt.PublicKeyARN // the key of a self-signed token
		fault    error              // the store's, not the token's
	)
	// The parser has checked the signing method when it asks for the key.
	keyFunc := func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == i.kid {
			return &i.key.PublicKey, nil
		}
		pub, err := i.importedKey(ctx, kid)
		if err != nil {
			if ivsrt.ErrorCode(err) != ivsrt.EDENIED {
				fault = err
			}
			return nil, err
		}
		imported = ivsrt.PublicKeyARN(kid)
		return pub, nil
	}
	expired := false
	_, err := i.parser.ParseWithClaims(s, &c, keyFunc)
	switch {
	case fault != nil:
		return nil, fault
	case errors.Is(err, jwt.ErrTokenExpired):
		// The parser checks the signature before the claims, so these
		// claims are genuine.
		expired = true
	case err != nil:
		return nil, denial(err)
	}

	id := c.ID
	stage := ivsrt.StageARN(c.Resource)
	switch {
	case id == "":
		return nil, ivsrt.Errorf(ivsrt.EDENIED, msgNoID)
	case stage.ID() == "":
		return nil, ivsrt.Errorf(ivsrt.EDENIED, msgNoStage)
	case c.Topic != stage.ID():
		return nil, ivsrt.Errorf(ivsrt.EDENIED, msgTopic)
	case c.Version != Version:
		return nil, ivsrt.Errorf(ivsrt.EDENIED, msgVersion)
	}
	if imported != "" {
		if err := checkSelfSigned(&c, i.now()); err != nil {
			return nil, err
		}
	}

	caps := make([]ivsrt.Capability, 0, 2)
	if c.Capabilities.AllowPublish {
		caps = append(caps, ivsrt.CapabilityPublish)
	}
	if c.Capabilities.AllowSubscribe {
		caps = append(caps, ivsrt.CapabilitySubscribe)
	}
	attrs := c.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	var created time.Time
	if c.IssuedAt != 0 {
		created = time.Unix(c.IssuedAt, 0).UTC()
	}

	tok := &ivsrt.ParticipantToken{
		ParticipantID:  ivsrt.ParticipantID(id),
		StageARN:       stage,
		UserID:         c.UserID,
		Attributes:     attrs,
		Capabilities:   caps,
		CreatedAt:      created,
		ExpirationTime: time.Unix(c.ExpiresAt, 0).UTC(),
		PublicKeyARN:   imported,
	}
	if imported != "" {
		tok.DurationMinutes = int((c.ExpiresAt - c.IssuedAt) / 60)
	}
	if expired {
		return tok, ivsrt.ErrTokenExpired
	}
	return tok, nil
}

// denial turns an error of the JWT parser into an EDENIED error with a
// client-safe message.
func denial(err error) error {
	var e *ivsrt.Error
	switch {
	case errors.As(err, &e): // from keyFunc
		return e
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ivsrt.Errorf(ivsrt.EDENIED, msgMalformed)
	case errors.Is(err, jwt.ErrECDSAVerification):
		return ivsrt.Errorf(ivsrt.EDENIED, msgSignature)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		// A method outside WithValidMethods, or an unknown or missing alg.
		return ivsrt.Errorf(ivsrt.EDENIED, msgAlgorithm)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ivsrt.Errorf(ivsrt.EDENIED, msgNoExpiration)
	default:
		return ivsrt.Errorf(ivsrt.EDENIED, msgInvalid)
	}
}
