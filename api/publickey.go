package api

import (
	"context"
	"crypto/ecdsa"
	"fmt"

	"github.com/ivsrt/ivsrt"
)

// publicKeyWire is a PublicKey as GetPublicKey and ImportPublicKey return
// it.
type publicKeyWire struct {
	Arn               string            `json:"arn"`
	Name              string            `json:"name"`
	PublicKeyMaterial string            `json:"publicKeyMaterial"`
	Fingerprint       string            `json:"fingerprint"`
	Tags              map[string]string `json:"tags"`
}

// publicKeySummaryWire is a PublicKeySummary, as ListPublicKeys returns
// each key: no material, no fingerprint.
type publicKeySummaryWire struct {
	Arn  string            `json:"arn"`
	Name string            `json:"name"`
	Tags map[string]string `json:"tags"`
}

func publicKeyFromDomain(pk *ivsrt.PublicKey) publicKeyWire {
	tags := pk.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return publicKeyWire{Arn: string(pk.ARN), Name: pk.Name, PublicKeyMaterial: pk.Material, Fingerprint: pk.Fingerprint, Tags: tags}
}

func publicKeySummaryFromDomain(pk *ivsrt.PublicKey) publicKeySummaryWire {
	tags := pk.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return publicKeySummaryWire{Arn: string(pk.ARN), Name: pk.Name, Tags: tags}
}

func publicKeyNotFound(err error, arn string) error {
	return notFound(err, "Public key not found: %s", arn)
}

type importPublicKeyInput struct {
	PublicKeyMaterial *string           `json:"publicKeyMaterial"`
	Name              *string           `json:"name"`
	Tags              map[string]string `json:"tags"`
}

type publicKeyOutput struct {
	PublicKey publicKeyWire `json:"publicKey"`
}

func (s *Server) importPublicKey(ctx context.Context, body []byte) (any, error) {
	var in importPublicKeyInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var v ivsrt.Validation
	var (
		pub *ecdsa.PublicKey
		ok  bool
	)
	if v.Required("publicKeyMaterial", in.PublicKeyMaterial != nil) {
		pub, ok = v.PublicKeyMaterial("publicKeyMaterial", *in.PublicKeyMaterial)
	}
	if in.Name != nil {
		v.PublicKeyName("name", *in.Name)
	}
	v.Tags("tags", in.Tags)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("import public key: a key that failed its checks passed them")
	}
	fingerprint, err := ivsrt.PublicKeyFingerprint(pub)
	if err != nil {
		return nil, err
	}
	pk := &ivsrt.PublicKey{
		ARN:         ivsrt.NewPublicKeyARN(s.cfg.Region, s.cfg.AccountID, ivsrt.NewPublicKeyID()),
		Name:        deref(in.Name),
		Material:    *in.PublicKeyMaterial,
		Fingerprint: fingerprint,
		Tags:        in.Tags,
	}
	if err := s.store.ImportPublicKey(ctx, pk, s.cfg.PublicKeyQuota); err != nil {
		return nil, err
	}
	return publicKeyOutput{PublicKey: publicKeyFromDomain(pk)}, nil
}

type publicKeyARNInput struct {
	Arn *string `json:"arn"`
}

func (in publicKeyARNInput) validate() error {
	var v ivsrt.Validation
	if v.Required("arn", in.Arn != nil) {
		v.PublicKeyARN("arn", *in.Arn)
	}
	return v.Err()
}

func (s *Server) getPublicKey(ctx context.Context, body []byte) (any, error) {
	var in publicKeyARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	pk, err := s.store.GetPublicKey(ctx, ivsrt.PublicKeyARN(*in.Arn))
	if err != nil {
		return nil, publicKeyNotFound(err, *in.Arn)
	}
	return publicKeyOutput{PublicKey: publicKeyFromDomain(pk)}, nil
}

// deletePublicKey removes the key: from then on, tokens signed with its
// private key no longer verify, so nobody joins with them; participants
// already in a stage stay until they leave or DisconnectParticipant ends
// them (see docs/self-signed-tokens.md).
func (s *Server) deletePublicKey(ctx context.Context, body []byte) (any, error) {
	var in publicKeyARNInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if err := s.store.DeletePublicKey(ctx, ivsrt.PublicKeyARN(*in.Arn)); err != nil {
		return nil, publicKeyNotFound(err, *in.Arn)
	}
	return struct{}{}, nil
}

type listPublicKeysOutput struct {
	PublicKeys []publicKeySummaryWire `json:"publicKeys"`
	NextToken  string                 `json:"nextToken,omitempty"`
}

func (s *Server) listPublicKeys(ctx context.Context, body []byte) (any, error) {
	keys, next, err := listPage(ctx, s, body, "ListPublicKeys", ivsrt.DefaultPageSize,
		s.store.ListPublicKeys, publicKeySummaryFromDomain)
	if err != nil {
		return nil, err
	}
	return listPublicKeysOutput{PublicKeys: keys, NextToken: next}, nil
}
