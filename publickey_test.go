package ivsrt

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"regexp"
	"strings"
	"testing"
)

// opensslKey is a P-384 public key made with
// `openssl ecparam -name secp384r1 -genkey | openssl ec -pubout`, and
// opensslFingerprint what `openssl pkey -pubin -outform DER | openssl md5 -c`
// says of it.
const (
	opensslKey = `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEdE6P/oALXr3eT+nU2NP/tc5O3l1jD+QF
dVxH37p4wJMXxFhfcbljuIQSmco3JAOXICcW+RtvkSEUgIKozqX0WmztgpnsPMsw
3EBxGkMT6z746Gc7nqIuQByPxWk+SrFL
-----END PUBLIC KEY-----
`
	opensslFingerprint = "92:ee:7b:c3:f5:f8:bd:dd:25:3d:57:30:87:6c:bb:19"
)

func TestPublicKeyARN(t *testing.T) {
	id := NewPublicKeyID()
	if !regexp.MustCompile(`^[a-zA-Z0-9]{12}$`).MatchString(id) {
		t.Errorf("NewPublicKeyID: got %q, want 12 of [a-zA-Z0-9]", id)
	}
	arn := NewPublicKeyARN("eu-west-1", "210987654321", id)
	if want := "arn:aws:ivs:eu-west-1:210987654321:public-key/" + id; string(arn) != want {
		t.Errorf("NewPublicKeyARN: got %q, want %q", arn, want)
	}
	if got := arn.ID(); got != id {
		t.Errorf("ID: got %q, want %q", got, id)
	}
	for _, bad := range []string{
		string(NewStageARN("eu-west-1", "210987654321", id)),
		"arn:aws:ivs:eu-west-1:210987654321:public-key/",
		"arn:aws:ivs:eu-west-1:210987654321:public-key/a/b",
		"x:arn:aws:ivs:eu-west-1:210987654321:public-key/abc",
		"abcdef0123456789",
	} {
		if got := PublicKeyARN(bad).ID(); got != "" {
			t.Errorf("ID of %q: got %q, want \"\"", bad, got)
		}
	}
}

func pemOf(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestParsePublicKeyMaterial(t *testing.T) {
	pub, err := ParsePublicKeyMaterial(opensslKey)
	if err != nil {
		t.Fatalf("ParsePublicKeyMaterial of openssl's key: %v", err)
	}
	fp, err := PublicKeyFingerprint(pub)
	if err != nil || fp != opensslFingerprint {
		t.Errorf("PublicKeyFingerprint: got %q, %v, want %q as openssl md5 -c says", fp, err, opensslFingerprint)
	}

	newEC := func(c elliptic.Curve) *ecdsa.PublicKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384 := pemOf(t, newEC(elliptic.P384()))
	body := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(p384), "-----BEGIN PUBLIC KEY-----\n"), "\n-----END PUBLIC KEY-----")

	const rule = "an EC public key on the P-384 curve (secp384r1), for ES384"
	tests := []struct {
		name     string
		material string
		want     string // in the error; "" when the key is good
	}{
		{"P-384", p384, ""},
		{"CRLF line ends", strings.ReplaceAll(p384, "\n", "\r\n"), ""},
		{"no final line end", strings.TrimSuffix(p384, "\n"), ""},
		{"text around, on the BEGIN and END lines", "key: " + strings.TrimSuffix(p384, "\n") + " (ours)", ""},
		{"P-256", pemOf(t, newEC(elliptic.P256())), rule + ", not on P-256"},
		{"P-521", pemOf(t, newEC(elliptic.P521())), rule + ", not on P-521"},
		{"RSA", pemOf(t, &rsaKey.PublicKey), rule + ", not an RSA key"},
		{"Ed25519", pemOf(t, edPub), rule + ", not an Ed25519 key"},
		{"X25519", pemOf(t, x25519.PublicKey()), rule + ", not an X25519 key"},
		{"not base64", "-----BEGIN PUBLIC KEY-----\nMHYw=EAYH\n-----END PUBLIC KEY-----\n", "its body is not valid base64"},
		{"not a key", "-----BEGIN PUBLIC KEY-----\naGVsbG8gd29ybGQ=\n-----END PUBLIC KEY-----\n", "not a valid SubjectPublicKeyInfo"},
		{"truncated", "-----BEGIN PUBLIC KEY-----\n" + body[:len(body)-8] + "\n-----END PUBLIC KEY-----\n", "not a valid SubjectPublicKeyInfo"},
		{"private key", "-----BEGIN EC PRIVATE KEY-----\n" + body + "\n-----END EC PRIVATE KEY-----\n", "a PEM block of type PUBLIC KEY"},
		{"text on a line before", "key:\n" + p384, "a PEM block of type PUBLIC KEY"},
		{"empty", "", "a PEM block of type PUBLIC KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := ParsePublicKeyMaterial(tt.material)
			if tt.want == "" {
				if err != nil || pub == nil || pub.Curve != elliptic.P384() {
					t.Fatalf("got %v, %v, want a P-384 key", pub, err)
				}
				return
			}
			if pub != nil || ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), tt.want) {
				t.Errorf("got %v, %v, want EINVALID saying %q", pub, err, tt.want)
			}
			var v Validation
			if _, ok := v.PublicKeyMaterial("publicKeyMaterial", tt.material); ok {
				t.Fatalf("Validation.PublicKeyMaterial accepted it")
			}
			if msg := ErrorMessage(v.Err()); !strings.Contains(msg, "at 'publicKeyMaterial' failed to satisfy constraint: Member must") {
				t.Errorf("Validation.PublicKeyMaterial: got %q, want the field and the rule", msg)
			}
		})
	}

	// The same key, written differently, has the same fingerprint; another
	// key has another.
	a, _ := ParsePublicKeyMaterial(p384)
	b, _ := ParsePublicKeyMaterial(strings.ReplaceAll(p384, "\n", "\r\n"))
	fa, _ := PublicKeyFingerprint(a)
	fb, _ := PublicKeyFingerprint(b)
	if fa != fb || fa == opensslFingerprint {
		t.Errorf("fingerprints: %q and %q of one key, %q of another", fa, fb, opensslFingerprint)
	}
	if !regexp.MustCompile(`^([0-9a-f]{2}:){15}[0-9a-f]{2}$`).MatchString(fa) {
		t.Errorf("fingerprint %q: want 16 bytes of lower-case hex separated by colons", fa)
	}
}

func TestPublicKeyValidation(t *testing.T) {
	tests := []struct {
		name  string
		check func(v *Validation) bool
		want  string // "" when valid
	}{
		{"name", func(v *Validation) bool { return v.PublicKeyName("name", "signer_1-a") }, ""},
		{"empty name", func(v *Validation) bool { return v.PublicKeyName("name", "") }, ""},
		{"name pattern", func(v *Validation) bool { return v.PublicKeyName("name", "a.b") },
			"Value 'a.b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"},
		{"name 129", func(v *Validation) bool { return v.PublicKeyName("name", strings.Repeat("a", 129)) },
			"Member must have length less than or equal to 128"},
		{"arn", func(v *Validation) bool {
			return v.PublicKeyARN("arn", "arn:aws:ivs:us-east-1:123456789012:public-key/abc-DEF")
		}, ""},
		{"arn of a stage", func(v *Validation) bool {
			return v.PublicKeyARN("arn", "arn:aws:ivs:us-east-1:123456789012:stage/abc")
		}, "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:public-key/[a-zA-Z0-9-]+"},
		{"arn empty", func(v *Validation) bool { return v.PublicKeyARN("arn", "") },
			"Member must have length greater than or equal to 1"},
		{"arn 129", func(v *Validation) bool {
			return v.PublicKeyARN("arn", "arn:aws:ivs:us-east-1:123456789012:public-key/"+strings.Repeat("a", 129-46))
		}, "Member must have length less than or equal to 128"},
		{"material pattern", func(v *Validation) bool {
			_, ok := v.PublicKeyMaterial("publicKeyMaterial", "not a key")
			return ok
		}, `Value 'not a key' at 'publicKeyMaterial' failed to satisfy constraint: Member must satisfy regular expression pattern: ` +
			`.*-----BEGIN PUBLIC KEY-----\r?\n([a-zA-Z0-9+/=\r\n]+)\r?\n-----END PUBLIC KEY-----(\r?\n)?.*`},
		{"resource public key", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:public-key/abc")
		}, ""},
		{"resource channel", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:channel/abc")
		}, " or arn:aws:ivs:[a-z0-9-]+:[0-9]+:public-key/[a-zA-Z0-9-]+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Validation
			ok := tt.check(&v)
			err := v.Err()
			if ok != (tt.want == "") || (err == nil) != ok {
				t.Fatalf("got ok %v, error %v, want ok %v", ok, err, tt.want == "")
			}
			if err != nil && !strings.Contains(ErrorMessage(err), tt.want) {
				t.Errorf("message: got %q, want it to contain %q", ErrorMessage(err), tt.want)
			}
		})
	}
}
