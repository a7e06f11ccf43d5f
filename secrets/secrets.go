// Package secrets bootstraps the keys a server signs and checks with: the
// API credentials clients sign requests with, the key nextTokens are
// signed with, the key participant tokens are signed with, and the
// secret TURN credentials are derived from.
//
// A single server keeps them in its data folder; the nodes of a cluster
// must hold the same ones, so they keep them in the shared store. When no
// credentials are configured, they are generated, so that a fresh install
// is never open to anyone; generated credentials are shown to the
// operator (and, for a single server, saved) only once the server really
// serves, so that a start that fails after generating them does not show
// credentials the next start would not use.
package secrets

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/internal/atomicfile"
	"github.com/ivsrt/ivsrt/token"
)

// File names in the data folder.
const (
	CredentialsFile   = "credentials.json"
	PaginationKeyFile = "pagination.key"
	SigningKeyFile    = "token-signing-key.pem"
	TURNSecretFile    = "turn-secret.key"
)

// Stored is the form of credentials.json, and of the cluster's shared
// credentials.
type Stored struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// Set is a server's keys.
type Set struct {
	Credentials   []api.Credential
	PaginationKey []byte
	SigningKey    *ecdsa.PrivateKey
	TURNSecret    []byte // TURN credentials are derived from it (turnrelay)

	generated *Stored // made by this start, not shown yet
	where     string  // where they are kept, for the operator
	save      func() error
}

// Local returns the keys kept in the data folder dir, creating what is
// missing. given, if not nil, are the configured credentials, used instead
// of the folder's.
func Local(dir string, given *api.Credential) (*Set, error) {
	s := &Set{}
	var err error
	if s.PaginationKey, err = loadOrCreate(filepath.Join(dir, PaginationKeyFile), 32); err != nil {
		return nil, err
	}
	if s.SigningKey, err = token.LoadOrCreateKey(filepath.Join(dir, SigningKeyFile)); err != nil {
		return nil, err
	}
	if s.TURNSecret, err = loadOrCreate(filepath.Join(dir, TURNSecretFile), 32); err != nil {
		return nil, err
	}
	if given != nil {
		s.Credentials = []api.Credential{*given}
		return s, nil
	}
	path := filepath.Join(dir, CredentialsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		sc := generate()
		s.Credentials = []api.Credential{{AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey}}
		s.generated, s.where = &sc, path
		s.save = func() error {
			data, _ := json.MarshalIndent(sc, "", "  ")
			if err := atomicfile.Write(path, append(data, '\n')); err != nil {
				return fmt.Errorf("save generated credentials: %w", err)
			}
			return nil
		}
		return s, nil
	} else if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var sc Stored
	if err := json.Unmarshal(data, &sc); err != nil || sc.AccessKeyID == "" || sc.SecretAccessKey == "" {
		return nil, fmt.Errorf("%s is damaged: want {\"accessKeyId\": ..., \"secretAccessKey\": ...}", path)
	}
	s.Credentials = []api.Credential{{AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey}}
	return s, nil
}

// SharedStore keeps a cluster's secrets: SharedSecret returns the one
// named, made with create and stored if it does not exist yet, the same to
// every node however many ask at once.
type SharedStore interface {
	SharedSecret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
}

// Shared returns the keys a cluster's nodes share, creating what is
// missing. given, if not nil, are the configured credentials.
func Shared(ctx context.Context, store SharedStore, given *api.Credential) (*Set, error) {
	s := &Set{}
	var err error
	if s.PaginationKey, err = store.SharedSecret(ctx, "pagination-key", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}); err != nil {
		return nil, fmt.Errorf("shared pagination key: %w", err)
	}
	pem, err := store.SharedSecret(ctx, "token-signing-key", token.GenerateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("shared token signing key: %w", err)
	}
	if s.SigningKey, err = token.ParseKeyPEM(pem); err != nil {
		return nil, err
	}
	// Any node's TURN server takes the credentials any node hands out.
	if s.TURNSecret, err = store.SharedSecret(ctx, "turn-secret", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}); err != nil {
		return nil, fmt.Errorf("shared TURN secret: %w", err)
	}
	if given != nil {
		s.Credentials = []api.Credential{*given}
		return s, nil
	}
	// The other nodes need the credentials at once: they are stored now,
	// and shown once this node serves.
	var made *Stored
	data, err := store.SharedSecret(ctx, "credentials", func() ([]byte, error) {
		sc := generate()
		made = &sc
		return json.Marshal(sc)
	})
	if err != nil {
		return nil, fmt.Errorf("shared credentials: %w", err)
	}
	var sc Stored
	if err := json.Unmarshal(data, &sc); err != nil || sc.AccessKeyID == "" {
		return nil, errors.New("the cluster's stored credentials are damaged")
	}
	if made != nil {
		s.generated, s.where = made, "the cluster's store"
	}
	s.Credentials = []api.Credential{{AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey}}
	return s, nil
}

// Commit saves credentials generated by this start, if any are not saved
// yet, and shows them on w: call it once the server serves.
func (s *Set) Commit(w io.Writer) error {
	if s.generated == nil {
		return nil
	}
	if s.save != nil {
		if err := s.save(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "ivsrt: generated API credentials (kept in %s):\n"+
		"  export AWS_ACCESS_KEY_ID=%s\n  export AWS_SECRET_ACCESS_KEY=%s\n",
		s.where, s.generated.AccessKeyID, s.generated.SecretAccessKey)
	s.generated, s.save = nil, nil
	return nil
}

// generate returns a new random access key.
func generate() Stored {
	return Stored{
		AccessKeyID:     "AKIV" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
	}
}

// loadOrCreate returns the n random bytes kept at path, creating them the
// first time.
func loadOrCreate(path string, n int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if len(data) != n {
			return nil, fmt.Errorf("%s is damaged: want %d bytes, got %d", path, n, len(data))
		}
		return data, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	data = make([]byte, n)
	rand.Read(data)
	if err := atomicfile.Write(path, data); err != nil {
		return nil, fmt.Errorf("save %s: %w", path, err)
	}
	return data, nil
}

// randomString returns n characters of alphabet, each drawn uniformly:
// bytes that would favour the start of the alphabet are drawn again.
func randomString(n int, alphabet string) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	b := make([]byte, 1)
	for len(out) < n {
		rand.Read(b)
		if int(b[0]) < limit {
			out = append(out, alphabet[int(b[0])%len(alphabet)])
		}
	}
	return string(out)
}
