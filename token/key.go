package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ivsrt/ivsrt/internal/atomicfile"
)

// pemType is the PEM block type of a SEC 1 EC private key, the form written
// by x509.MarshalECPrivateKey.
const pemType = "EC PRIVATE KEY"

// LoadOrCreateKey returns the P-384 signing key stored in path as a PEM
// "EC PRIVATE KEY" block. If path does not exist, a new key is generated and
// written there with mode 0600, atomically: a reader never sees a partial
// file, and after a crash the file either holds the whole key or is absent.
//
// Only one process should create the key of a given path at a time: two
// processes racing on a missing file would each keep the key they generated
// while the file ends up holding one of them.
func LoadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := parseKey(data)
		if err != nil {
			return nil, fmt.Errorf("token: key file %s: %w", path, err)
		}
		return key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("token: read key: %w", err)
	}

	data, err = GenerateKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, data); err != nil {
		return nil, fmt.Errorf("token: write key: %w", err)
	}
	return parseKey(data)
}

// GenerateKeyPEM returns a new P-384 signing key as a PEM "EC PRIVATE KEY"
// block, for keys kept elsewhere than in a file (a cluster's shared store).
func GenerateKeyPEM() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token: generate key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("token: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// ParseKeyPEM reads a key GenerateKeyPEM made.
func ParseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return key, nil
}

// parseKey decodes a PEM "EC PRIVATE KEY" block and accepts only P-384 keys.
func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemType)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse EC private key: %w", err)
	}
	if err := checkCurve(key); err != nil {
		return nil, err
	}
	return key, nil
}

// checkCurve reports an error unless key is on P-384, the curve of ES384.
func checkCurve(key *ecdsa.PrivateKey) error {
	if key.Curve != elliptic.P384() {
		return fmt.Errorf("key uses curve %s, want P-384", key.Curve.Params().Name)
	}
	return nil
}

// keyID names a public key by the first 16 hex digits of the SHA-256 of its
// PKIX DER encoding, so the same key gets the same id after a restart.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8]), nil
}
