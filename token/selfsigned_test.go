package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ivsrt/ivsrt"
)

// fakeKeys is a PublicKeys over a map; err, when set, is every answer.
type fakeKeys struct {
	mu   sync.Mutex
	keys map[ivsrt.PublicKeyARN]*ivsrt.PublicKey
	err  error
	gets int
}

func (f *fakeKeys) GetPublicKey(ctx context.Context, arn ivsrt.PublicKeyARN) (*ivsrt.PublicKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.err != nil {
		return nil, f.err
	}
	pk, ok := f.keys[arn]
	if !ok {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "public key not found")
	}
	return pk, nil
}

func (f *fakeKeys) remove(arn ivsrt.PublicKeyARN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, arn)
}

// publicPEM is the PEM text ImportPublicKey takes for key's public half.
func publicPEM(t testing.TB, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// importKey adds key's public half to keys under arn.
func (f *fakeKeys) importKey(t testing.TB, arn ivsrt.PublicKeyARN, key *ecdsa.PrivateKey) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[ivsrt.PublicKeyARN]*ivsrt.PublicKey{}
	}
	f.keys[arn] = &ivsrt.PublicKey{ARN: arn, Material: publicPEM(t, key)}
}

var testKeyARN = ivsrt.NewPublicKeyARN("us-east-1", "123456789012", "CustomerKey1")

// selfSignedClaims are what a customer's server signs: as AWS documents
// them, with a participant id of its choosing.
func selfSignedClaims() *claims {
	return &claims{
		ExpiresAt:    testCreated.Add(time.Hour).Unix(),
		IssuedAt:     testCreated.Unix(),
		ID:           "customer-participant_1",
		Resource:     string(testStage),
		Topic:        testStage.ID(),
		EventsURL:    "wss://ivsrt.example/events",
		WHIPURL:      "https://ivsrt.example/whip",
		UserID:       "carol",
		Attributes:   map[string]string{"role": "guest"},
		Capabilities: capabilities{AllowPublish: false, AllowSubscribe: true},
		Version:      Version,
	}
}

func TestSelfSigned(t *testing.T) {
	customer := newKey(t, elliptic.P384())
	keys := &fakeKeys{}
	keys.importKey(t, testKeyARN, customer)
	iss := newTestIssuer(t, WithPublicKeys(keys))
	signed := func(c *claims) string { return sign(t, jwt.SigningMethodES384, customer, string(testKeyARN), c) }

	got, err := iss.Verify(context.Background(), signed(selfSignedClaims()))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &ivsrt.ParticipantToken{
		ParticipantID:   "customer-participant_1",
		StageARN:        testStage,
		UserID:          "carol",
		Attributes:      map[string]string{"role": "guest"},
		Capabilities:    []ivsrt.Capability{ivsrt.CapabilitySubscribe},
		DurationMinutes: 60,
		CreatedAt:       testCreated,
		ExpirationTime:  testCreated.Add(time.Hour),
		PublicKeyARN:    testKeyARN,
	}
	if got.ParticipantID != want.ParticipantID || got.StageARN != want.StageARN || got.UserID != want.UserID ||
		got.Attributes["role"] != "guest" || len(got.Attributes) != 1 || len(got.Capabilities) != 1 || got.Capabilities[0] != ivsrt.CapabilitySubscribe ||
		got.DurationMinutes != want.DurationMinutes || !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpirationTime.Equal(want.ExpirationTime) ||
		got.PublicKeyARN != want.PublicKeyARN {
		t.Errorf("Verify:\ngot  %+v\nwant %+v", got, want)
	}

	// Tokens the server issues verify as before, with no public key.
	own, err := iss.Verify(context.Background(), issue(t, iss, testToken()))
	if err != nil || own.PublicKeyARN != "" || own.DurationMinutes != 0 {
		t.Errorf("Verify of an issued token: got %+v, %v, want no public key", own, err)
	}

	// At the limits.
	edges := []struct {
		name string
		edit func(*claims)
	}{
		{"14 days", func(c *claims) { c.ExpiresAt = c.IssuedAt + 14*24*3600 }},
		{"a 64-character jti", func(c *claims) { c.ID = strings.Repeat("_-aZ", 16) }},
		{"a 128-character user id", func(c *claims) { c.UserID = strings.Repeat("é", 128) }},
		{"1 KB of attributes", func(c *claims) { c.Attributes = map[string]string{"k": strings.Repeat("v", 1023)} }},
		{"no attributes, no capabilities, no URLs", func(c *claims) {
			c.Attributes, c.Capabilities, c.EventsURL, c.WHIPURL = nil, capabilities{}, "", ""
		}},
		{"issued a little in the future", func(c *claims) {
			c.IssuedAt = testCreated.Add(time.Minute + MaxClockSkew).Unix()
			c.ExpiresAt = c.IssuedAt + 60
		}},
	}
	for _, tt := range edges {
		t.Run(tt.name, func(t *testing.T) {
			c := selfSignedClaims()
			tt.edit(c)
			if got, err := iss.Verify(context.Background(), signed(c)); err != nil || got.PublicKeyARN != testKeyARN {
				t.Errorf("got %+v, %v, want it accepted", got, err)
			}
		})
	}
}

func TestSelfSignedRejects(t *testing.T) {
	customer := newKey(t, elliptic.P384())
	other := newKey(t, elliptic.P384())
	keys := &fakeKeys{}
	keys.importKey(t, testKeyARN, customer)
	otherARN := ivsrt.NewPublicKeyARN("us-east-1", "123456789012", "OtherKey1234")
	keys.importKey(t, otherARN, other)
	iss := newTestIssuer(t, WithPublicKeys(keys))
	signedBy := func(key any, method jwt.SigningMethod, kid string, edit func(*claims)) string {
		c := selfSignedClaims()
		if edit != nil {
			edit(c)
		}
		return sign(t, method, key, kid, c)
	}
	signed := func(edit func(*claims)) string {
		return signedBy(customer, jwt.SigningMethodES384, string(testKeyARN), edit)
	}

	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"forged: another key, the customer's kid", signedBy(other, jwt.SigningMethodES384, string(testKeyARN), nil), msgSignature},
		{"forged: the server's key, the customer's kid", signedBy(iss.key, jwt.SigningMethodES384, string(testKeyARN), nil), msgSignature},
		{"forged: the customer's key, the server's kid", signedBy(customer, jwt.SigningMethodES384, iss.kid, nil), msgSignature},
		{"unknown kid: an ARN never imported", signedBy(customer, jwt.SigningMethodES384,
			string(ivsrt.NewPublicKeyARN("us-east-1", "123456789012", "NeverImport1")), nil), msgUnknownKey},
		{"unknown kid: another region", signedBy(customer, jwt.SigningMethodES384,
			string(ivsrt.NewPublicKeyARN("eu-west-1", "123456789012", "CustomerKey1")), nil), msgUnknownKey},
		{"unknown kid: not an ARN", signedBy(customer, jwt.SigningMethodES384, "CustomerKey1", nil), msgUnknownKey},
		{"unknown kid: a stage ARN", signedBy(customer, jwt.SigningMethodES384, string(testStage), nil), msgUnknownKey},
		{"bad alg: ES256", signedBy(newKey(t, elliptic.P256()), jwt.SigningMethodES256, string(testKeyARN), nil), msgAlgorithm},
		{"bad alg: ES512", signedBy(newKey(t, elliptic.P521()), jwt.SigningMethodES512, string(testKeyARN), nil), msgAlgorithm},
		{"bad alg: HS384 keyed with the public key", signedBy([]byte(publicPEM(t, customer)), jwt.SigningMethodHS384, string(testKeyARN), nil), msgAlgorithm},
		{"bad alg: none", signedBy(jwt.UnsafeAllowNoneSignatureType, jwt.SigningMethodNone, string(testKeyARN), nil), msgAlgorithm},
		{"lifetime 14 days and a second", signed(func(c *claims) { c.ExpiresAt = c.IssuedAt + 14*24*3600 + 1 }), msgLifetime},
		{"no iat", signed(func(c *claims) { c.IssuedAt = 0 }), msgNoIssuedAt},
		{"iat before 1970", signed(func(c *claims) { c.IssuedAt = -1 << 62 }), msgNoIssuedAt},
		{"exp at iat", signed(func(c *claims) { c.ExpiresAt = c.IssuedAt }), msgExpiresFirst},
		{"issued in the future", signed(func(c *claims) {
			c.IssuedAt = testCreated.Add(time.Minute + MaxClockSkew + time.Second).Unix()
			c.ExpiresAt = c.IssuedAt + 60
		}), msgIssuedInFuture},
		{"no exp", signed(func(c *claims) { c.ExpiresAt = 0 }), msgNoExpiration},
		{"no jti", signed(func(c *claims) { c.ID = "" }), msgNoID},
		{"jti of 65", signed(func(c *claims) { c.ID = strings.Repeat("a", 65) }), msgParticipantID},
		{"jti with a dot", signed(func(c *claims) { c.ID = "a.b" }), msgParticipantID},
		{"jti with a space", signed(func(c *claims) { c.ID = "a b" }), msgParticipantID},
		{"user id of 129", signed(func(c *claims) { c.UserID = strings.Repeat("u", 129) }), msgUserID},
		{"attributes over 1 KB", signed(func(c *claims) { c.Attributes = map[string]string{"k": strings.Repeat("v", 1024)} }), msgAttributes},
		{"wrong stage: topic of another", signed(func(c *claims) { c.Topic = "otherStage99" }), msgTopic},
		{"wrong stage: no resource", signed(func(c *claims) { c.Resource = "" }), msgNoStage},
		{"wrong stage: a channel", signed(func(c *claims) { c.Resource = "arn:aws:ivs:us-east-1:123456789012:channel/abc" }), msgNoStage},
		{"no version", signed(func(c *claims) { c.Version = "" }), msgVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iss.Verify(context.Background(), tt.token)
			if got != nil {
				t.Errorf("got %+v, want nil", got)
			}
			denied(t, err, tt.want)
		})
	}

	t.Run("without WithPublicKeys", func(t *testing.T) {
		plain := newTestIssuer(t)
		_, err := plain.Verify(context.Background(), signed(nil))
		denied(t, err, msgUnknownKey)
	})

	t.Run("deleted key", func(t *testing.T) {
		tok := signedBy(other, jwt.SigningMethodES384, string(otherARN), nil)
		if _, err := iss.Verify(context.Background(), tok); err != nil {
			t.Fatalf("before the delete: %v", err)
		}
		keys.remove(otherARN)
		_, err := iss.Verify(context.Background(), tok)
		denied(t, err, msgUnknownKey)
	})

	t.Run("expired", func(t *testing.T) {
		tok := signed(func(c *claims) { c.ExpiresAt = testCreated.Add(30 * time.Second).Unix() })
		got, err := iss.Verify(context.Background(), tok)
		if !errors.Is(err, ivsrt.ErrTokenExpired) || got == nil || got.PublicKeyARN != testKeyARN {
			t.Errorf("got %+v, %v, want the claims with ErrTokenExpired", got, err)
		}
	})

	t.Run("a bad algorithm reads no key", func(t *testing.T) {
		before := keys.gets
		iss.Verify(context.Background(), signedBy(newKey(t, elliptic.P256()), jwt.SigningMethodES256, string(testKeyARN), nil))
		if keys.gets != before {
			t.Errorf("the store was asked for a key %d times, want none", keys.gets-before)
		}
	})
}

// TestSelfSignedStoreFaults: a store that fails is the server's fault,
// not the token's, and is not worded as a refusal.
func TestSelfSignedStoreFaults(t *testing.T) {
	customer := newKey(t, elliptic.P384())
	tok := sign(t, jwt.SigningMethodES384, customer, string(testKeyARN), selfSignedClaims())

	down := &fakeKeys{err: errors.New("database is locked")}
	_, err := newTestIssuer(t, WithPublicKeys(down)).Verify(context.Background(), tok)
	if code := ivsrt.ErrorCode(err); code != ivsrt.EINTERNAL {
		t.Errorf("store down: got %v (%q), want an internal error", err, code)
	}

	damaged := &fakeKeys{keys: map[ivsrt.PublicKeyARN]*ivsrt.PublicKey{testKeyARN: {ARN: testKeyARN, Material: "garbage"}}}
	_, err = newTestIssuer(t, WithPublicKeys(damaged)).Verify(context.Background(), tok)
	if code := ivsrt.ErrorCode(err); code != ivsrt.EINTERNAL {
		t.Errorf("damaged key: got %v (%q), want an internal error", err, code)
	}
}
