package token

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ivsrt/ivsrt"
)

// FuzzVerifyMutated builds tokens from a fuzzed header and payload, signed
// one of several ways, and checks that Verify accepts only what the
// issuer's key signed, or an imported public key signed with its ARN as
// the kid (a self-signed token): a forged token (no signature, another
// key, a deleted key, a symmetric algorithm keyed with the public key, a
// spliced signature) is denied whatever its header and claims say.
// FuzzVerify feeds Verify raw strings; this target reaches the claims,
// which a random string never does.
//
// The header and payload are JSON, base64url-encoded by the harness.
// Placeholders stand for values of the run: $KID (the issuer's key id),
// $OTHERKID (another key's), $PKARN (the ARN of an imported key), $GONEARN
// (that of a deleted one), $STAGE and $TOPIC (a stage ARN and its id),
// $EXP (an expiry in the future), $PAST (one in the past), $IAT, and
// $LONGEXP (14 days and a second after $IAT).
func FuzzVerifyMutated(f *testing.F) {
	now := testCreated.Add(time.Minute)
	imported, gone := newKey(f, elliptic.P384()), newKey(f, elliptic.P384())
	goneARN := ivsrt.NewPublicKeyARN("us-east-1", "123456789012", "DeletedKey12")
	keys := &fakeKeys{}
	keys.importKey(f, testKeyARN, imported)
	iss := NewIssuer(newKey(f, elliptic.P384()), WithClock(fixedClock(now)), WithPublicKeys(keys))
	other := newKey(f, elliptic.P384())
	otherKID, err := keyID(&other.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	p256 := newKey(f, elliptic.P256())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&iss.key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	valid := issue(f, iss, testToken())
	validParts := strings.Split(valid, ".")

	expand := strings.NewReplacer(
		"$OTHERKID", otherKID,
		"$PKARN", string(testKeyARN),
		"$GONEARN", string(goneARN),
		"$LONGEXP", strconv.FormatInt(testCreated.Add(14*24*time.Hour+time.Second).Unix(), 10),
		"$KID", iss.kid,
		"$STAGE", string(testStage),
		"$TOPIC", testStage.ID(),
		"$EXP", strconv.FormatInt(testExpires.Unix(), 10),
		"$PAST", strconv.FormatInt(testCreated.Add(-time.Hour).Unix(), 10),
		"$IAT", strconv.FormatInt(testCreated.Unix(), 10),
	)

	// The ways of signing, by the mode byte; kid names the key of the
	// genuine ones, those made with the issuer's key or the imported key
	// over the token's own header and payload: they are genuine when the
	// header's kid names that key.
	type signer struct {
		name string
		kid  string
		sign func(input string) string
	}
	with := func(m jwt.SigningMethod, key any) func(string) string {
		return func(input string) string {
			sig, err := m.Sign(input, key)
			if err != nil {
				f.Fatalf("sign with %s: %v", m.Alg(), err)
			}
			return base64.RawURLEncoding.EncodeToString(sig)
		}
	}
	signers := []signer{
		{"ES384, issuer's key", iss.kid, with(jwt.SigningMethodES384, iss.key)},
		{"ES384, another key", "", with(jwt.SigningMethodES384, other)},
		{"no signature", "", func(string) string { return "" }},
		{"HS256 keyed with the public key (DER)", "", with(jwt.SigningMethodHS256, pubDER)},
		{"HS256 keyed with the public key (PEM)", "", with(jwt.SigningMethodHS256, pubPEM)},
		{"RS256", "", with(jwt.SigningMethodRS256, rsaKey)},
		{"ES256", "", with(jwt.SigningMethodES256, p256)},
		{"signature of the valid token", "", func(string) string { return validParts[2] }},
		{"ES384, imported key", string(testKeyARN), with(jwt.SigningMethodES384, imported)},
		{"ES384, deleted key", "", with(jwt.SigningMethodES384, gone)},
		{"HS384 keyed with the imported key (PEM)", "", with(jwt.SigningMethodHS384, []byte(publicPEM(f, imported)))},
		{"ES384, issuer's key, one bit flipped", "", func(input string) string {
			sig, err := jwt.SigningMethodES384.Sign(input, iss.key)
			if err != nil {
				f.Fatalf("sign: %v", err)
			}
			sig[len(sig)/2] ^= 1
			return base64.RawURLEncoding.EncodeToString(sig)
		}},
	}

	for _, s := range fuzzVerifySeeds() {
		for mode := range signers {
			f.Add([]byte(s.header), []byte(s.payload), uint8(mode), s.tail)
		}
	}

	f.Fuzz(func(t *testing.T, header, payload []byte, mode uint8, tail string) {
		header = []byte(expand.Replace(string(header)))
		payload = []byte(expand.Replace(string(payload)))
		sg := signers[int(mode)%len(signers)]
		input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
		// The header's kid as the parser reads it.
		var fields map[string]any
		json.Unmarshal(header, &fields)
		kid, _ := fields["kid"].(string)
		// The valid token's signature is genuine for its own header and
		// payload.
		genuine := sg.kid != "" && sg.kid == kid || input == validParts[0]+"."+validParts[1]
		s := input + "." + sg.sign(input) + tail

		got, err := iss.Verify(context.Background(), s)
		expired := errors.Is(err, ivsrt.ErrTokenExpired)
		switch {
		case err != nil && !expired:
			if got != nil {
				t.Fatalf("%s: got claims %+v with error %v, want none", sg.name, got, err)
			}
			if code := ivsrt.ErrorCode(err); code != ivsrt.EDENIED {
				t.Fatalf("%s: got code %q (%v), want %q", sg.name, code, err, ivsrt.EDENIED)
			}
			if ivsrt.ErrorMessage(err) == "" {
				t.Fatalf("%s: a denial without a message", sg.name)
			}
			return
		case !genuine:
			t.Fatalf("%s: Verify accepted a token the issuer did not sign (expired %v): %+v\ntoken %q", sg.name, expired, got, s)
		case got == nil:
			t.Fatalf("%s: got no claims with error %v", sg.name, err)
		}

		// A genuine token: what Verify returns is what was signed.
		var h struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal(header, &h); err != nil || h.Alg != "ES384" || (h.Kid != iss.kid && h.Kid != string(testKeyARN)) {
			t.Fatalf("accepted a token whose header %q is not ES384 with the issuer's kid or the imported key's (%v)", header, err)
		}
		var c claims
		// The parser reads the first JSON value of the payload, as does
		// this decoder.
		if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&c); err != nil {
			t.Fatalf("accepted a token whose payload %q does not decode: %v", payload, err)
		}
		checkVerified(t, got, &c, now, expired)
		if h.Kid == string(testKeyARN) {
			checkSelfSignedVerified(t, got, &c, now)
		} else if got.PublicKeyARN != "" {
			t.Fatalf("a token of the issuer's key has public key %q", got.PublicKeyARN)
		}
	})
}

// checkSelfSignedVerified checks what Verify accepted of a self-signed
// token against the limits such tokens keep.
func checkSelfSignedVerified(t *testing.T, got *ivsrt.ParticipantToken, c *claims, now time.Time) {
	t.Helper()
	attrs := 0
	for k, v := range c.Attributes {
		attrs += len(k) + len(v)
	}
	switch {
	case got.PublicKeyARN != testKeyARN:
		t.Fatalf("self-signed token: public key %q, want %q", got.PublicKeyARN, testKeyARN)
	case c.IssuedAt <= 0 || c.ExpiresAt <= c.IssuedAt || c.ExpiresAt-c.IssuedAt > 14*24*3600:
		t.Fatalf("accepted a self-signed token issued at %d expiring at %d", c.IssuedAt, c.ExpiresAt)
	case c.IssuedAt > now.Add(MaxClockSkew).Unix():
		t.Fatalf("accepted a self-signed token issued at %d, in the future", c.IssuedAt)
	case got.DurationMinutes != int((c.ExpiresAt-c.IssuedAt)/60):
		t.Fatalf("self-signed token: duration %d minutes for a lifetime of %d s", got.DurationMinutes, c.ExpiresAt-c.IssuedAt)
	case !selfSignedIDPattern.MatchString(c.ID):
		t.Fatalf("accepted a self-signed token with participant id %q", c.ID)
	case utf8.RuneCountInString(c.UserID) > ivsrt.MaxUserIDLength || attrs > ivsrt.MaxAttributesBytes:
		t.Fatalf("accepted a self-signed token with a %d-character user id and %d bytes of attributes", utf8.RuneCountInString(c.UserID), attrs)
	}
}

// checkVerified checks the claims Verify returned against the payload
// that was signed.
func checkVerified(t *testing.T, got *ivsrt.ParticipantToken, c *claims, now time.Time, expired bool) {
	t.Helper()
	wantAttrs := c.Attributes
	if wantAttrs == nil {
		wantAttrs = map[string]string{}
	}
	var wantCaps []ivsrt.Capability
	if c.Capabilities.AllowPublish {
		wantCaps = append(wantCaps, ivsrt.CapabilityPublish)
	}
	if c.Capabilities.AllowSubscribe {
		wantCaps = append(wantCaps, ivsrt.CapabilitySubscribe)
	}
	exp := time.Unix(c.ExpiresAt, 0).UTC()
	switch {
	case string(got.ParticipantID) != c.ID || c.ID == "":
		t.Fatalf("participant %q, want %q", got.ParticipantID, c.ID)
	case string(got.StageARN) != c.Resource || got.StageARN.ID() == "" || got.StageARN.ID() != c.Topic:
		t.Fatalf("stage %q (topic %q), want %q", got.StageARN, c.Topic, c.Resource)
	case got.UserID != c.UserID:
		t.Fatalf("user %q, want %q", got.UserID, c.UserID)
	case !maps.Equal(got.Attributes, wantAttrs) || got.Attributes == nil:
		t.Fatalf("attributes %v, want %v", got.Attributes, wantAttrs)
	case !slices.Equal(got.Capabilities, wantCaps):
		t.Fatalf("capabilities %v, want %v", got.Capabilities, wantCaps)
	case c.Version != Version:
		t.Fatalf("accepted version %q", c.Version)
	case c.ExpiresAt == 0 || !got.ExpirationTime.Equal(exp):
		t.Fatalf("expiration %v, want %v", got.ExpirationTime, exp)
	case expired != !now.Before(exp):
		t.Fatalf("expired %v at %v for a token expiring at %v", expired, now, exp)
	}
}

// fuzzVerifySeed is a header, a payload and what follows the signature.
type fuzzVerifySeed struct{ header, payload, tail string }

func fuzzVerifySeeds() []fuzzVerifySeed {
	const (
		hdr     = `{"alg":"ES384","kid":"$KID","typ":"JWT"}`
		pkHdr   = `{"alg":"ES384","typ":"JWT","kid":"$PKARN"}`
		claimsA = `"exp":$EXP,"iat":$IAT,"jti":"p4rticipant1","resource":"$STAGE","topic":"$TOPIC",` +
			`"events_url":"wss://ivsrt.example/events","whip_url":"https://ivsrt.example/whip","user_id":"alice",` +
			`"attributes":{"role":"host"},"capabilities":{"allow_publish":true,"allow_subscribe":true},"version":"1.0"`
		good = `{` + claimsA + `}`
	)
	with := func(extra string) string { return `{` + claimsA + `,` + extra + `}` }
	deep := strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000)
	otherStage := ivsrt.NewStageARN("us-east-1", "123456789012", "otherSTAGE99")
	return []fuzzVerifySeed{
		{hdr, good, ""},
		// Headers: algorithms, keys and key injection.
		{`{"alg":"none","kid":"$KID"}`, good, ""},
		{`{"alg":"None","kid":"$KID"}`, good, ""},
		{`{"alg":"HS256","kid":"$KID"}`, good, ""},
		{`{"alg":"RS256","kid":"$KID"}`, good, ""},
		{`{"alg":"ES256","kid":"$KID"}`, good, ""},
		{`{"alg":"PS384","kid":"$KID"}`, good, ""},
		{`{"alg":"es384","kid":"$KID"}`, good, ""},
		{`{"alg":"ES384","kid":"$OTHERKID"}`, good, ""},
		{`{"alg":"ES384"}`, good, ""},
		{`{"alg":"ES384","kid":""}`, good, ""},
		{`{"alg":"ES384","kid":7}`, good, ""},
		{`{"alg":"ES384","kid":["$KID"]}`, good, ""},
		{`{"alg":["ES384"],"kid":"$KID"}`, good, ""},
		{`{"alg":null,"kid":"$KID"}`, good, ""},
		{`{"kid":"$KID"}`, good, ""},
		{`{"alg":"ES384","kid":"$KID","alg":"none"}`, good, ""},
		{`{"alg":"none","kid":"$KID","alg":"ES384"}`, good, ""},
		{`{"alg":"ES384","kid":"$KID","crit":["exp"]}`, good, ""},
		{`{"alg":"ES384","kid":"$KID","jku":"https://attacker.example/jwks.json"}`, good, ""},
		{`{"alg":"ES384","kid":"$KID","jwk":{"kty":"EC","crv":"P-384","x":"AAAA","y":"AAAA"}}`, good, ""},
		{`{"alg":"ES384","kid":"$KID","b64":false,"crit":["b64"]}`, good, ""},
		{``, good, ""},
		{`null`, good, ""},
		{`[]`, good, ""},
		{`"ES384"`, good, ""},
		{`{"alg":"ES384","kid":"$KID"`, good, ""},
		{`{"alg":"ES384","kid":"$KID"} `, good, ""},
		{`{"alg":"ES384","kid":"$KID","x":` + deep + `}`, good, ""},
		{"{\"alg\":\"ES384\",\"kid\":\"$KID\",\"x\":\"\xff\"}", good, ""},
		// Payloads: claims of the wrong type, missing or duplicated.
		{hdr, `{` + strings.Replace(claimsA, `"exp":$EXP`, `"exp":"$EXP"`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"exp":$EXP`, `"exp":$EXP.5`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"exp":$EXP`, `"exp":1e999`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"exp":$EXP`, `"exp":-1`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"exp":$EXP`, `"exp":9223372036854775807`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"exp":$EXP`, `"exp":$PAST`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"exp":$EXP,`, ``, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"jti":"p4rticipant1"`, `"jti":12`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"jti":"p4rticipant1"`, `"jti":null`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"attributes":{"role":"host"}`, `"attributes":["host"]`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"attributes":{"role":"host"}`, `"attributes":{"role":1}`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"attributes":{"role":"host"}`, `"attributes":null`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `{"allow_publish":true,"allow_subscribe":true}`, `"PUBLISH"`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `{"allow_publish":true,"allow_subscribe":true}`, `{"allow_publish":"true"}`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"version":"1.0"`, `"version":1.0`, 1) + `}`, ""},
		{hdr, `{` + strings.Replace(claimsA, `"user_id":"alice"`, `"user_id":{"a":"b"}`, 1) + `}`, ""},
		{hdr, with(`"jti":"someoneElse1"`), ""},
		{hdr, with(`"resource":"` + string(otherStage) + `"`), ""},
		{hdr, with(`"resource":"` + string(otherStage) + `","topic":"otherSTAGE99"`), ""},
		{hdr, with(`"capabilities":{"allow_publish":true,"allow_publish":false}`), ""},
		{hdr, with(`"nbf":"soon","aud":5,"iss":[],"sub":{}`), ""},
		{hdr, with(`"attributes":{"k":"` + strings.Repeat("v", 20<<10) + `"}`), ""},
		{hdr, with(`"x":` + deep), ""},
		{hdr, with("\"user_id\":\"\xff\xfe\x00\""), ""},
		{hdr, good + ` {"jti":"second"}`, ""},
		{hdr, good + `garbage`, ""},
		{hdr, ``, ""},
		{hdr, `null`, ""},
		{hdr, `[]`, ""},
		{hdr, `{}`, ""},
		{hdr, `{"exp":$EXP}`, ""},
		// Tails: extra segments, padding, whitespace.
		{hdr, good, "."},
		{hdr, good, ".extra"},
		{hdr, good, "=="},
		{hdr, good, "AAAA"},
		{hdr, good, " "},
		{hdr, good, "\n"},
		{hdr, good, "\x00"},
		// Self-signed: the imported key's ARN, a deleted key's, and
		// claims past the limits of such tokens.
		{pkHdr, good, ""},
		{`{"alg":"ES384","kid":"$GONEARN"}`, good, ""},
		{`{"alg":"ES256","kid":"$PKARN"}`, good, ""},
		{`{"alg":"HS384","kid":"$PKARN"}`, good, ""},
		{`{"alg":"ES384","kid":"$PKARN/"}`, good, ""},
		{`{"alg":"ES384","kid":" $PKARN"}`, good, ""},
		{`{"alg":"ES384","kid":"$PKARN","kid":"$KID"}`, good, ""},
		{`{"alg":"ES384","kid":"$KID","kid":"$PKARN"}`, good, ""},
		{pkHdr, `{` + strings.Replace(claimsA, `"exp":$EXP`, `"exp":$LONGEXP`, 1) + `}`, ""},
		{pkHdr, `{` + strings.Replace(claimsA, `"iat":$IAT,`, ``, 1) + `}`, ""},
		{pkHdr, `{` + strings.Replace(claimsA, `"iat":$IAT`, `"iat":-9223372036854775808`, 1) + `}`, ""},
		{pkHdr, `{` + strings.Replace(claimsA, `"iat":$IAT`, `"iat":$EXP`, 1) + `}`, ""},
		{pkHdr, `{` + strings.Replace(claimsA, `"iat":$IAT`, `"iat":9223372036854775807`, 1) + `}`, ""},
		{pkHdr, with(`"jti":"` + strings.Repeat("j", 65) + `"`), ""},
		{pkHdr, with(`"jti":"with_under-score_` + strings.Repeat("j", 46) + `"`), ""},
		{pkHdr, with(`"jti":"a.b"`), ""},
		{pkHdr, with(`"user_id":"` + strings.Repeat("u", 129) + `"`), ""},
		{pkHdr, with(`"attributes":{"k":"` + strings.Repeat("v", 1024) + `"}`), ""},
		{pkHdr, with(`"capabilities":{}`), ""},
	}
}
