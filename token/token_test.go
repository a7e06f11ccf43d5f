package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ivsrt/ivsrt"
)

var (
	testStage   = ivsrt.NewStageARN("us-east-1", "123456789012", "abcdEFGH1234")
	testCreated = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testExpires = testCreated.Add(720 * time.Minute)
)

func newKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// fixedClock returns a clock that always reads at.
func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

func newTestIssuer(t testing.TB, opts ...Option) *Issuer {
	t.Helper()
	opts = append([]Option{
		WithEventsURL("wss://ivsrt.example/events"),
		WithWHIPURL("https://ivsrt.example/whip"),
		WithClock(fixedClock(testCreated.Add(time.Minute))),
	}, opts...)
	return NewIssuer(newKey(t, elliptic.P384()), opts...)
}

func testToken() *ivsrt.ParticipantToken {
	return &ivsrt.ParticipantToken{
		ParticipantID:  "p4rticipant1",
		StageARN:       testStage,
		UserID:         "alice",
		Attributes:     map[string]string{"role": "host", "seat": "1"},
		Capabilities:   []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe},
		CreatedAt:      testCreated,
		ExpirationTime: testExpires,
	}
}

func issue(t testing.TB, iss *Issuer, tok *ivsrt.ParticipantToken) string {
	t.Helper()
	s, err := iss.Issue(context.Background(), tok)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return s
}

// segment decodes the n-th dot-separated segment of a JWT.
func segment(t testing.TB, s string, n int) []byte {
	t.Helper()
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("got %d segments, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[n])
	if err != nil {
		t.Fatalf("decode segment %d: %v", n, err)
	}
	return b
}

// sign signs arbitrary claims with method and key, setting kid unless empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// validClaims returns the claims Issue would produce for testToken.
func validClaims() *claims {
	return &claims{
		ExpiresAt:    testExpires.Unix(),
		IssuedAt:     testCreated.Unix(),
		ID:           "p4rticipant1",
		Resource:     string(testStage),
		Topic:        testStage.ID(),
		Attributes:   map[string]string{},
		Capabilities: capabilities{AllowPublish: true, AllowSubscribe: true},
		Version:      Version,
	}
}

// denied checks that err is EDENIED with message want.
func denied(t *testing.T, err error, want string) {
	t.Helper()
	if got := ivsrt.ErrorCode(err); got != ivsrt.EDENIED {
		t.Fatalf("got code %q (%v), want %q", got, err, ivsrt.EDENIED)
	}
	if got := ivsrt.ErrorMessage(err); got != want {
		t.Fatalf("got message %q, want %q", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	iss := newTestIssuer(t)
	tests := []struct {
		name string
		edit func(*ivsrt.ParticipantToken)
		want func(*ivsrt.ParticipantToken) // adjustments Verify makes
	}{
		{name: "full"},
		{
			name: "publish only",
			edit: func(tok *ivsrt.ParticipantToken) { tok.Capabilities = []ivsrt.Capability{ivsrt.CapabilityPublish} },
		},
		{
			name: "subscribe only",
			edit: func(tok *ivsrt.ParticipantToken) { tok.Capabilities = []ivsrt.Capability{ivsrt.CapabilitySubscribe} },
		},
		{
			name: "capabilities reordered",
			edit: func(tok *ivsrt.ParticipantToken) {
				tok.Capabilities = []ivsrt.Capability{ivsrt.CapabilitySubscribe, ivsrt.CapabilityPublish}
			},
			want: func(tok *ivsrt.ParticipantToken) {
				tok.Capabilities = []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe}
			},
		},
		{
			name: "no capabilities",
			edit: func(tok *ivsrt.ParticipantToken) { tok.Capabilities = nil },
			want: func(tok *ivsrt.ParticipantToken) { tok.Capabilities = []ivsrt.Capability{} },
		},
		{
			name: "nil attributes, no user",
			edit: func(tok *ivsrt.ParticipantToken) { tok.Attributes = nil; tok.UserID = "" },
			want: func(tok *ivsrt.ParticipantToken) { tok.Attributes = map[string]string{} },
		},
		{
			name: "sub-second times and other zone",
			edit: func(tok *ivsrt.ParticipantToken) {
				zone := time.FixedZone("X", 3600)
				tok.CreatedAt = testCreated.Add(400 * time.Millisecond).In(zone)
				tok.ExpirationTime = testExpires.Add(900 * time.Millisecond).In(zone)
			},
		},
		{
			name: "unicode attributes",
			edit: func(tok *ivsrt.ParticipantToken) {
				tok.Attributes = map[string]string{"名前": "José <&>", "": ""}
				tok.UserID = "ünïcode \"quoted\""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testToken()
			if tt.edit != nil {
				tt.edit(in)
			}
			want := *in
			want.CreatedAt = in.CreatedAt.Truncate(time.Second).UTC()
			want.ExpirationTime = in.ExpirationTime.Truncate(time.Second).UTC()
			if tt.want != nil {
				tt.want(&want)
			}

			got, err := iss.Verify(context.Background(), issue(t, iss, in))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("got %+v, want %+v", got, &want)
			}
		})
	}
}

func TestIssueClaims(t *testing.T) {
	iss := newTestIssuer(t)
	tests := []struct {
		name string
		edit func(*ivsrt.ParticipantToken)
		want map[string]string // raw JSON of each claim
	}{
		{
			name: "full",
			want: map[string]string{
				"exp":          "1740873600",
				"iat":          "1740830400",
				"jti":          `"p4rticipant1"`,
				"resource":     `"arn:aws:ivs:us-east-1:123456789012:stage/abcdEFGH1234"`,
				"topic":        `"abcdEFGH1234"`,
				"events_url":   `"wss://ivsrt.example/events"`,
				"whip_url":     `"https://ivsrt.example/whip"`,
				"user_id":      `"alice"`,
				"attributes":   `{"role":"host","seat":"1"}`,
				"capabilities": `{"allow_publish":true,"allow_subscribe":true}`,
				"version":      `"1.0"`,
			},
		},
		{
			name: "empty",
			edit: func(tok *ivsrt.ParticipantToken) {
				tok.Attributes = nil
				tok.UserID = ""
				tok.Capabilities = []ivsrt.Capability{ivsrt.CapabilitySubscribe}
			},
			want: map[string]string{
				"exp":          "1740873600",
				"iat":          "1740830400",
				"jti":          `"p4rticipant1"`,
				"resource":     `"arn:aws:ivs:us-east-1:123456789012:stage/abcdEFGH1234"`,
				"topic":        `"abcdEFGH1234"`,
				"events_url":   `"wss://ivsrt.example/events"`,
				"whip_url":     `"https://ivsrt.example/whip"`,
				"user_id":      `""`,
				"attributes":   `{}`,
				"capabilities": `{"allow_publish":false,"allow_subscribe":true}`,
				"version":      `"1.0"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := testToken()
			if tt.edit != nil {
				tt.edit(tok)
			}
			var payload map[string]json.RawMessage
			if err := json.Unmarshal(segment(t, issue(t, iss, tok), 1), &payload); err != nil {
				t.Fatal(err)
			}
			got := make(map[string]string, len(payload))
			for k, v := range payload {
				got[k] = string(v)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIssueHeader(t *testing.T) {
	iss := newTestIssuer(t)
	var header map[string]any
	if err := json.Unmarshal(segment(t, issue(t, iss, testToken()), 0), &header); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"alg": "ES384", "typ": "JWT", "kid": iss.KeyID()}
	if !reflect.DeepEqual(header, want) {
		t.Errorf("got %v, want %v", header, want)
	}
	if got := iss.KeyID(); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got) {
		t.Errorf("got kid %q, want 16 hex digits", got)
	}
}

func TestIssueRejects(t *testing.T) {
	iss := newTestIssuer(t)
	tests := []struct {
		name string
		edit func(*ivsrt.ParticipantToken)
	}{
		{"no participant id", func(tok *ivsrt.ParticipantToken) { tok.ParticipantID = "" }},
		{"not a stage ARN", func(tok *ivsrt.ParticipantToken) { tok.StageARN = "arn:aws:ivs:us-east-1:1:channel/x" }},
		{"no creation time", func(tok *ivsrt.ParticipantToken) { tok.CreatedAt = time.Time{} }},
		{"no expiration time", func(tok *ivsrt.ParticipantToken) { tok.ExpirationTime = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := testToken()
			tt.edit(tok)
			s, err := iss.Issue(context.Background(), tok)
			if got, want := ivsrt.ErrorCode(err), ivsrt.EINTERNAL; got != want {
				t.Errorf("got %v (%q), want %v", got, s, want)
			}
		})
	}
	if _, err := iss.Issue(context.Background(), nil); err == nil {
		t.Errorf("got %v, want an error for a nil token", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	iss := newTestIssuer(t)
	good := issue(t, iss, testToken())
	parts := strings.Split(good, ".")
	other := newKey(t, elliptic.P384())
	otherKID, err := keyID(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&iss.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	// tampered grants publish to a token that lacked it, keeping the signature.
	subOnly := testToken()
	subOnly.Capabilities = []ivsrt.Capability{ivsrt.CapabilitySubscribe}
	subParts := strings.Split(issue(t, iss, subOnly), ".")
	payload, err := base64.RawURLEncoding.DecodeString(subParts[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(payload), `"allow_publish":false`, `"allow_publish":true`, 1)
	if forged == string(payload) {
		t.Fatal("payload has no allow_publish:false to tamper with")
	}
	tampered := subParts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + subParts[2]

	withClaims := func(edit func(*claims)) string {
		c := validClaims()
		edit(c)
		return sign(t, jwt.SigningMethodES384, iss.key, iss.kid, c)
	}

	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"empty", "", msgMalformed},
		{"garbage", "not a token", msgMalformed},
		{"two segments", parts[0] + "." + parts[1], msgMalformed},
		{"bad base64 payload", parts[0] + ".!!!." + parts[2], msgMalformed},
		{"padded payload", parts[0] + "." + parts[1] + "=." + parts[2], msgMalformed},
		{"payload not JSON", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[2], msgMalformed},
		{"tampered payload", tampered, msgSignature},
		{"signature cut", parts[0] + "." + parts[1] + "." + parts[2][:20], msgSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + subParts[2], msgSignature},
		{"another key, our kid", sign(t, jwt.SigningMethodES384, other, iss.kid, validClaims()), msgSignature},
		{"another key, its kid", sign(t, jwt.SigningMethodES384, other, otherKID, validClaims()), msgUnknownKey},
		{"no kid", sign(t, jwt.SigningMethodES384, iss.key, "", validClaims()), msgUnknownKey},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, iss.kid, validClaims()), msgAlgorithm},
		{"HS256 with public key DER", sign(t, jwt.SigningMethodHS256, pubDER, iss.kid, validClaims()), msgAlgorithm},
		{"HS256 with public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, iss.kid, validClaims()), msgAlgorithm},
		{"ES256", sign(t, jwt.SigningMethodES256, newKey(t, elliptic.P256()), iss.kid, validClaims()), msgAlgorithm},
		{"ES512", sign(t, jwt.SigningMethodES512, newKey(t, elliptic.P521()), iss.kid, validClaims()), msgAlgorithm},
		{"no exp", withClaims(func(c *claims) { c.ExpiresAt = 0 }), msgNoExpiration},
		{"no jti", withClaims(func(c *claims) { c.ID = "" }), msgNoID},
		{"no resource", withClaims(func(c *claims) { c.Resource = "" }), msgNoStage},
		{"resource not a stage", withClaims(func(c *claims) { c.Resource = "arn:aws:ivs:us-east-1:1:channel/x" }), msgNoStage},
		{"no topic", withClaims(func(c *claims) { c.Topic = "" }), msgTopic},
		{"topic of another stage", withClaims(func(c *claims) { c.Topic = "otherStage99" }), msgTopic},
		{"no version", withClaims(func(c *claims) { c.Version = "" }), msgVersion},
		{"other version", withClaims(func(c *claims) { c.Version = "2.0" }), msgVersion},
		{"oversize", strings.Repeat("a", MaxLength+1), msgTooLong},
		{"oversize valid prefix", good + strings.Repeat("A", MaxLength), msgTooLong},
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
}

func TestVerifyExpiry(t *testing.T) {
	tok := testToken()
	tests := []struct {
		name   string
		now    time.Time
		leeway time.Duration
		ok     bool
	}{
		{"just issued", testCreated, 0, true},
		{"a second before expiry", testExpires.Add(-time.Second), 0, true},
		{"at expiry", testExpires, 0, false},
		{"after expiry", testExpires.Add(time.Second), 0, false},
		{"a year later", testExpires.AddDate(1, 0, 0), 0, false},
		{"within leeway", testExpires.Add(4 * time.Second), 5 * time.Second, true},
		{"at end of leeway", testExpires.Add(5 * time.Second), 5 * time.Second, false},
		{"past leeway", testExpires.Add(time.Minute), 5 * time.Second, false},
	}
	key := newKey(t, elliptic.P384())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := NewIssuer(key, WithClock(fixedClock(tt.now)), WithLeeway(tt.leeway))
			got, err := iss.Verify(context.Background(), issue(t, iss, tok))
			if ok := err == nil; ok != tt.ok {
				t.Fatalf("got ok %v (%v), want %v", ok, err, tt.ok)
			}
			if expired := errors.Is(err, ivsrt.ErrTokenExpired); expired != !tt.ok {
				t.Errorf("got expired %v (%v), want %v", expired, err, !tt.ok)
			}
			if !tt.ok {
				denied(t, err, "token expired")
			}
			// Expired or not, the claims are those issued.
			if got == nil || got.ParticipantID != tok.ParticipantID || got.StageARN != tok.StageARN {
				t.Errorf("got claims %+v, want those of %s", got, tok.ParticipantID)
			}
		})
	}
}

func TestNewIssuerOptions(t *testing.T) {
	key := newKey(t, elliptic.P384())
	iss := NewIssuer(key)
	if iss.now == nil {
		t.Fatal("got nil clock, want time.Now")
	}
	if got, want := iss.leeway, time.Duration(0); got != want {
		t.Errorf("got leeway %v, want %v", got, want)
	}
	// A token issued now verifies with the default clock.
	tok := testToken()
	tok.CreatedAt = time.Now()
	tok.ExpirationTime = tok.CreatedAt.Add(time.Hour)
	if _, err := iss.Verify(context.Background(), issue(t, iss, tok)); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

func TestNewIssuerPanics(t *testing.T) {
	tests := []struct {
		name string
		key  *ecdsa.PrivateKey
	}{
		{"nil", nil},
		{"P-256", newKey(t, elliptic.P256())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("got no panic, want one")
				}
			}()
			NewIssuer(tt.key)
		})
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.pem")

	first, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got, want := first.Curve, elliptic.P384(); got != want {
		t.Errorf("got curve %v, want %v", got.Params().Name, want.Params().Name)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("got mode %v, want %v", got, want)
	}
	created, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	second, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !first.Equal(second) {
		t.Errorf("got a different key on reload, want the same")
	}
	reloaded, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(created, reloaded) {
		t.Errorf("got key file rewritten on reload, want it untouched")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), 1; got != want {
		t.Errorf("got %d files in dir (temp file left?), want %d", got, want)
	}

	// The kid is stable, and a token issued before a restart verifies after.
	a, b := NewIssuer(first, WithClock(fixedClock(testCreated))), NewIssuer(second, WithClock(fixedClock(testCreated)))
	if got, want := b.KeyID(), a.KeyID(); got != want {
		t.Errorf("got kid %v, want %v", got, want)
	}
	if _, err := b.Verify(context.Background(), issue(t, a, testToken())); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

func TestLoadOrCreateKeyRejects(t *testing.T) {
	ecPEM := func(curve elliptic.Curve) []byte {
		der, err := x509.MarshalECPrivateKey(newKey(t, curve))
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(newKey(t, elliptic.P384()))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		data []byte
		want string // part of the error
	}{
		{"P-256", ecPEM(elliptic.P256()), "want P-384"},
		{"P-521", ecPEM(elliptic.P521()), "want P-384"},
		{"empty", nil, "no PEM block"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), `want "EC PRIVATE KEY"`},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "parse EC private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token.pem")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if key != nil {
				t.Errorf("got key %v, want nil", key)
			}
			// The bad file is reported, never replaced.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(data, tt.data) {
				t.Errorf("got key file changed, want it untouched")
			}
		})
	}
}

func TestLoadOrCreateKeyMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "token.pem")
	if _, err := LoadOrCreateKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want a wrapped fs.ErrNotExist", err)
	}
}

func FuzzVerify(f *testing.F) {
	key := newKey(f, elliptic.P384())
	iss := NewIssuer(key, WithClock(fixedClock(testCreated)))
	valid := issue(f, iss, testToken())
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, iss.kid, validClaims()))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFUzM4NCJ9.e30.")
	f.Add("\x00\xff garbage")

	f.Fuzz(func(t *testing.T, s string) {
		got, err := iss.Verify(context.Background(), s)
		if err != nil {
			if got != nil {
				t.Fatalf("got %+v with error %v, want nil", got, err)
			}
			if code := ivsrt.ErrorCode(err); code != ivsrt.EDENIED {
				t.Fatalf("got code %q, want %q", code, ivsrt.EDENIED)
			}
			return
		}
		// What verifies must issue back to a token carrying the same claims.
		again, err := iss.Verify(context.Background(), issue(t, iss, got))
		if err != nil {
			t.Fatalf("re-verify: %v", err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("got %+v, want %+v", again, got)
		}
	})
}

func TestVerifyWithoutIssuedAt(t *testing.T) {
	iss := newTestIssuer(t)
	c := validClaims()
	c.IssuedAt = 0
	got, err := iss.Verify(context.Background(), sign(t, jwt.SigningMethodES384, iss.key, iss.kid, c))
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if !got.CreatedAt.IsZero() {
		t.Errorf("got CreatedAt %v, want zero", got.CreatedAt)
	}
}
