package ivsrt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// PublicKeyARN names a public key: arn:aws:ivs:{region}:{account}:public-key/{id}.
type PublicKeyARN string

// NewPublicKeyARN builds the ARN of public key id in region and account.
func NewPublicKeyARN(region, account, id string) PublicKeyARN {
	return PublicKeyARN(fmt.Sprintf("arn:aws:ivs:%s:%s:public-key/%s", region, account, id))
}

// NewPublicKeyID returns a fresh 12-character public key id, of the same
// form as a stage's.
func NewPublicKeyID() string { return randomID(12) }

// ID returns the public key id, the part after "public-key/", or "" if the
// ARN is not a well-formed public key ARN.
func (a PublicKeyARN) ID() string {
	if !publicKeyARNPattern.MatchString(string(a)) {
		return ""
	}
	_, id, _ := strings.Cut(string(a), ":public-key/")
	return id
}

// PublicKey is the public half of a key pair a customer signs its own
// participant tokens with (self-signed tokens): an ES384 token whose "kid"
// header is the key's ARN joins stages as a token CreateParticipantToken
// issued would.
type PublicKey struct {
	ARN  PublicKeyARN
	Name string
	// Material is the PEM text as it was imported.
	Material string
	// Fingerprint identifies the key: see PublicKeyFingerprint. No two
	// public keys have the same.
	Fingerprint string
	Tags        map[string]string
	CreatedAt   time.Time
}

// PublicKeyQuota bounds what ImportPublicKey may add.
type PublicKeyQuota struct {
	MaxPublicKeys int // 0 means no limit
}

// PublicKeyStore persists public keys. Their tags are read and changed
// through StageStore's TagResource, UntagResource and ListTags.
type PublicKeyStore interface {
	// ImportPublicKey stores pk with its tags, setting its CreatedAt from
	// the store's clock. Returns ECONFLICT if its ARN exists or a public
	// key with its fingerprint does (the same key imported again), and
	// EQUOTA if the quota would be exceeded.
	ImportPublicKey(ctx context.Context, pk *PublicKey, quota PublicKeyQuota) error

	// GetPublicKey returns ENOTFOUND if it does not exist.
	GetPublicKey(ctx context.Context, arn PublicKeyARN) (*PublicKey, error)

	// ListPublicKeys returns public keys in import order, and the position
	// of the next page ("" when this is the last).
	ListPublicKeys(ctx context.Context, page Page) (keys []*PublicKey, next string, err error)

	// DeletePublicKey removes it with its tags; tokens signed with its
	// private key no longer verify. Returns ENOTFOUND if it does not exist.
	DeletePublicKey(ctx context.Context, arn PublicKeyARN) error
}

// Limits of the public key operations, from the service model.
const (
	MaxPublicKeyNameLength = 128
	MaxPublicKeyARNLength  = 128
)

var (
	publicKeyNamePattern = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	publicKeyARNPattern  = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:public-key/[a-zA-Z0-9-]+$`)
	// The model's PublicKeyMaterial pattern. As in the service, "." does
	// not match a line break: text may come before the BEGIN line and
	// after the END line, but only on those lines.
	publicKeyMaterialPattern = regexp.MustCompile(`^.*-----BEGIN PUBLIC KEY-----\r?\n([a-zA-Z0-9+/=\r\n]+)\r?\n-----END PUBLIC KEY-----(\r?\n)?.*$`)
)

// PublicKeyARN checks a public key ARN.
func (v *Validation) PublicKeyARN(field, arn string) bool {
	return v.Length(field, arn, 1, MaxPublicKeyARNLength) && v.Pattern(field, arn, publicKeyARNPattern)
}

// PublicKeyName checks a public key name.
func (v *Validation) PublicKeyName(field, name string) bool {
	return v.Length(field, name, 0, MaxPublicKeyNameLength) && v.Pattern(field, name, publicKeyNamePattern)
}

// PublicKeyMaterial checks the PEM text of a public key to import: the
// model's pattern, then the key itself, which must be an EC key on P-384,
// the curve of ES384, the one algorithm participant tokens are signed
// with. It returns the key when it is good.
func (v *Validation) PublicKeyMaterial(field, material string) (*ecdsa.PublicKey, bool) {
	if !v.Pattern(field, material, publicKeyMaterialPattern) {
		return nil, false
	}
	pub, err := ParsePublicKeyMaterial(material)
	if err != nil {
		v.Fail("Value at '%s' failed to satisfy constraint: Member must be %s", field, ErrorMessage(err))
		return nil, false
	}
	return pub, true
}

// ParsePublicKeyMaterial reads the key of PEM text that matches the
// model's pattern: a PKIX (SubjectPublicKeyInfo) EC public key on P-384.
// Anything else is an EINVALID error whose message says what the key
// should have been and what it is, to follow "Member must be".
func ParsePublicKeyMaterial(material string) (*ecdsa.PublicKey, error) {
	m := publicKeyMaterialPattern.FindStringSubmatch(material)
	if m == nil {
		return nil, Errorf(EINVALID, "a PEM block of type PUBLIC KEY")
	}
	b64 := strings.NewReplacer("\r", "", "\n", "").Replace(m[1])
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, Errorf(EINVALID, "a PEM block of type PUBLIC KEY: its body is not valid base64")
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		if strings.Contains(err.Error(), "unsupported elliptic curve") {
			return nil, Errorf(EINVALID, "an EC public key on the P-384 curve (secp384r1), for ES384: its curve is not supported")
		}
		return nil, Errorf(EINVALID, "an EC public key on the P-384 curve (secp384r1), for ES384: the PEM block is not a valid SubjectPublicKeyInfo")
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, Errorf(EINVALID, "an EC public key on the P-384 curve (secp384r1), for ES384, not %s", keyKind(key))
	}
	if pub.Curve != elliptic.P384() {
		return nil, Errorf(EINVALID, "an EC public key on the P-384 curve (secp384r1), for ES384, not on %s", pub.Curve.Params().Name)
	}
	return pub, nil
}

// keyKind names the algorithm of a public key that is not ECDSA.
func keyKind(key any) string {
	name := fmt.Sprintf("%T", key) // *rsa.PublicKey, ed25519.PublicKey, *ecdh.PublicKey
	name = strings.TrimPrefix(name, "*")
	pkg, _, _ := strings.Cut(name, ".")
	switch pkg {
	case "rsa":
		return "an RSA key"
	case "ed25519":
		return "an Ed25519 key"
	case "ecdh":
		return "an X25519 key"
	case "dsa":
		return "a DSA key"
	}
	return "a key of type " + name
}

// PublicKeyFingerprint returns the fingerprint of pub as GetPublicKey
// shows it: the MD5 digest of its DER SubjectPublicKeyInfo in lower-case
// hex, bytes separated by colons ("98:0d:1a:..."), the form of AWS's
// examples and of `openssl pkey -pubin -outform DER | openssl md5 -c`.
func PublicKeyFingerprint(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := md5.Sum(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = hex.EncodeToString([]byte{b})
	}
	return strings.Join(parts, ":"), nil
}
