package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"

	"github.com/ivsrt/ivsrt/web/webtest"
)

// The public key operations, through the AWS SDK against the whole
// server, as in api_test.go and storage_test.go.

var publicKeyARNPattern = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:public-key/[a-zA-Z0-9]{12}$`)

// missingKey is a well-formed public key ARN no test imports.
const missingKey = "arn:aws:ivs:us-east-1:123456789012:public-key/doesNotExist"

// Two fixed P-384 public keys (made with openssl ecparam -name secp384r1),
// for output that must not change from run to run, and the fingerprint of
// the first as `openssl pkey -pubin -outform DER | openssl md5 -c` gives it.
const (
	fixedKeyPEM = `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEdE6P/oALXr3eT+nU2NP/tc5O3l1jD+QF
dVxH37p4wJMXxFhfcbljuIQSmco3JAOXICcW+RtvkSEUgIKozqX0WmztgpnsPMsw
3EBxGkMT6z746Gc7nqIuQByPxWk+SrFL
-----END PUBLIC KEY-----
`
	fixedKeyFingerprint = "92:ee:7b:c3:f5:f8:bd:dd:25:3d:57:30:87:6c:bb:19"
	otherFixedKeyPEM    = `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE5O8vfGOSTE5Xxk/HKLwCWQ5038w2YiBW
mYZqzG5uAzCFm3sQdv9dYwJiEsVHYyjDuZjG9G8FTKnfRBUqk/bJv3FTp+94pKsi
6j+Q4Fkwsa4CEkeljluNuSKV0jelcFTO
-----END PUBLIC KEY-----
`
)

func withMaxPublicKeys(n int) serverOption { return func(c *Config) { c.MaxPublicKeys = n } }

func quotaExceeded(msg ...string) wantError {
	return wantError{"ServiceQuotaExceededException", http.StatusPaymentRequired, msg}
}

// publicPEM is the PEM "PUBLIC KEY" block of pub, as openssl ec -pubout
// writes it.
func publicPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// newKeyPair makes a P-384 key pair and returns it with its public PEM.
func newKeyPair(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key, publicPEM(t, &key.PublicKey)
}

// fingerprintOf computes, apart from the server's code, the fingerprint a
// public key PEM must get: the MD5 of its DER, colon-separated hex.
func fingerprintOf(t testing.TB, material string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(material))
	if block == nil {
		t.Fatalf("no PEM block in %q", material)
	}
	sum := md5.Sum(block.Bytes)
	parts := make([]string, len(sum))
	for i := range sum {
		parts[i] = hex.EncodeToString(sum[i : i+1])
	}
	return strings.Join(parts, ":")
}

// importKey imports a public key through the SDK and returns its ARN.
func importKey(t testing.TB, c *ivsrealtime.Client, name, material string, tags map[string]string) string {
	t.Helper()
	out, err := c.ImportPublicKey(testContext(t), &ivsrealtime.ImportPublicKeyInput{
		Name: aws.String(name), PublicKeyMaterial: aws.String(material), Tags: tags,
	})
	if err != nil {
		t.Fatalf("ImportPublicKey %q: %v", name, err)
	}
	return aws.ToString(out.PublicKey.Arn)
}

func TestPublicKeyLifecycle(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	c, log := newClient(t, m, testAccessKeyID, testSecretAccessKey)
	ctx := testContext(t)

	_, material := newKeyPair(t)
	imported, err := c.ImportPublicKey(ctx, &ivsrealtime.ImportPublicKeyInput{
		Name:              aws.String("signer_1-a"),
		PublicKeyMaterial: aws.String(material),
		Tags:              map[string]string{"team": "video", "empty": ""},
	})
	if err != nil {
		t.Fatalf("ImportPublicKey: %v", err)
	}
	pk := imported.PublicKey
	arn := aws.ToString(pk.Arn)
	if !publicKeyARNPattern.MatchString(arn) {
		t.Errorf("ARN: got %q, want %v", arn, publicKeyARNPattern)
	}
	want := &types.PublicKey{
		Arn:               pk.Arn,
		Name:              aws.String("signer_1-a"),
		PublicKeyMaterial: aws.String(material),
		Fingerprint:       aws.String(fingerprintOf(t, material)),
		Tags:              map[string]string{"team": "video", "empty": ""},
	}
	checkJSON(t, "ImportPublicKey", pk, want)

	got, err := c.GetPublicKey(ctx, &ivsrealtime.GetPublicKeyInput{Arn: pk.Arn})
	if err != nil {
		t.Fatalf("GetPublicKey: %v", err)
	}
	checkJSON(t, "GetPublicKey", got.PublicKey, want)

	// Only the material is required: no name is an empty one, no tags an
	// empty map. The material comes back as it was sent.
	_, second := newKeyPair(t)
	second = "our key: " + strings.ReplaceAll(strings.TrimSuffix(second, "\n"), "\n", "\r\n") + " (P-384)"
	bare, err := c.ImportPublicKey(ctx, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(second)})
	if err != nil {
		t.Fatalf("ImportPublicKey with only the material: %v", err)
	}
	wantBare := &types.PublicKey{Arn: bare.PublicKey.Arn, Name: aws.String(""), PublicKeyMaterial: aws.String(second),
		Fingerprint: bare.PublicKey.Fingerprint, Tags: map[string]string{}}
	checkJSON(t, "ImportPublicKey with only the material", bare.PublicKey, wantBare)
	if aws.ToString(bare.PublicKey.Arn) == arn || aws.ToString(bare.PublicKey.Fingerprint) == aws.ToString(want.Fingerprint) {
		t.Errorf("two keys got the same ARN or fingerprint: %s", jsonOf(bare.PublicKey))
	}

	// The list gives summaries: no material, no fingerprint.
	list, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{})
	if err != nil {
		t.Fatalf("ListPublicKeys: %v", err)
	}
	checkJSON(t, "ListPublicKeys", list.PublicKeys, []types.PublicKeySummary{
		{Arn: want.Arn, Name: want.Name, Tags: want.Tags},
		{Arn: wantBare.Arn, Name: wantBare.Name, Tags: wantBare.Tags},
	})
	if list.NextToken != nil {
		t.Errorf("ListPublicKeys: nextToken %q, want none", *list.NextToken)
	}
	var wire struct{ PublicKeys []map[string]any }
	log.last("/ListPublicKeys").decode(t, &wire)
	for _, s := range wire.PublicKeys {
		if _, has := s["publicKeyMaterial"]; has {
			t.Errorf("ListPublicKeys sends publicKeyMaterial: %v", s)
		}
		if _, has := s["fingerprint"]; has {
			t.Errorf("ListPublicKeys sends fingerprint: %v", s)
		}
	}

	if _, err := c.DeletePublicKey(ctx, &ivsrealtime.DeletePublicKeyInput{Arn: pk.Arn}); err != nil {
		t.Fatalf("DeletePublicKey: %v", err)
	}
	_, err = c.GetPublicKey(ctx, &ivsrealtime.GetPublicKeyInput{Arn: pk.Arn})
	checkError(t, err, notFound("Public key not found", arn))
	_, err = c.DeletePublicKey(ctx, &ivsrealtime.DeletePublicKeyInput{Arn: pk.Arn})
	checkError(t, err, notFound("Public key not found", arn))
	_, err = c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: pk.Arn})
	checkError(t, err, notFound(arn))
	list, err = c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{})
	if err != nil {
		t.Fatalf("ListPublicKeys: %v", err)
	}
	if len(list.PublicKeys) != 1 || aws.ToString(list.PublicKeys[0].Arn) != aws.ToString(wantBare.Arn) {
		t.Errorf("ListPublicKeys after a delete: got %v, want only %s", jsonOf(list.PublicKeys), *wantBare.Arn)
	}

	// Once deleted, the key may be imported again, under a new ARN.
	again := importKey(t, c, "again", material, nil)
	if again == arn {
		t.Errorf("the key imported again got its old ARN %s", arn)
	}
}

// TestPublicKeyFingerprintOpenSSL checks the fingerprint against openssl's
// MD5 of the key's DER, for a key openssl made.
func TestPublicKeyFingerprintOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	t.Parallel()
	_, c := startServer(t)
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "priv.pem"), filepath.Join(dir, "public.pem")
	if out, err := exec.Command(openssl, "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", priv).CombinedOutput(); err != nil {
		t.Fatalf("openssl ecparam: %v\n%s", err, out)
	}
	material, err := exec.Command(openssl, "ec", "-in", priv, "-pubout", "-out", pub).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ec: %v\n%s", err, material)
	}
	der, err := exec.Command(openssl, "pkey", "-pubin", "-in", pub, "-outform", "DER").Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	md5Cmd := exec.Command(openssl, "md5", "-c")
	md5Cmd.Stdin = bytes.NewReader(der)
	sum, err := md5Cmd.Output()
	if err != nil {
		t.Fatalf("openssl md5: %v", err)
	}
	_, want, _ := strings.Cut(strings.TrimSpace(string(sum)), "= ")
	text, err := exec.Command("cat", pub).Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ImportPublicKey(testContext(t), &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(string(text))})
	if err != nil {
		t.Fatalf("ImportPublicKey of openssl's key: %v", err)
	}
	if got := aws.ToString(out.PublicKey.Fingerprint); got != want || want == "" {
		t.Errorf("fingerprint: got %q, want %q as openssl md5 -c says", got, want)
	}
}

func TestPublicKeyValidation(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	_, keptPEM := newKeyPair(t)
	kept := importKey(t, c, "kept", keptPEM, nil)
	_, good := newKeyPair(t)

	const (
		le128       = "Member must have length less than or equal to 128"
		arnRule     = "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:public-key/[a-zA-Z0-9-]+"
		pemRule     = `Member must satisfy regular expression pattern: .*-----BEGIN PUBLIC KEY-----\r?\n([a-zA-Z0-9+/=\r\n]+)\r?\n-----END PUBLIC KEY-----(\r?\n)?.*`
		p384        = "Member must be an EC public key on the P-384 curve (secp384r1), for ES384"
		stageARN    = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
		wrongRegion = "arn:aws:ivs:US-EAST-1:123456789012:public-key/abcdABCD1234"
	)
	long := func(n int) string { return strings.Repeat("a", n) }
	tags := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%02d", i)] = "v"
		}
		return m
	}
	key := func(make func() (any, error)) string {
		k, err := make()
		if err != nil {
			t.Fatal(err)
		}
		return publicPEM(t, k)
	}
	p256 := key(func() (any, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return &k.PublicKey, err
	})
	p521 := key(func() (any, error) {
		k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		return &k.PublicKey, err
	})
	rsaPEM := key(func() (any, error) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		return &k.PublicKey, err
	})
	edPEM := key(func() (any, error) {
		k, _, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	})
	body := strings.Join(strings.Split(strings.TrimSpace(good), "\n")[1:4], "\n")

	imp := func(name *string, material string, tags map[string]string) func() error {
		return func() error {
			_, err := c.ImportPublicKey(ctx, &ivsrealtime.ImportPublicKeyInput{Name: name, PublicKeyMaterial: aws.String(material), Tags: tags})
			return err
		}
	}
	get := func(arn string) func() error {
		return func() error {
			_, err := c.GetPublicKey(ctx, &ivsrealtime.GetPublicKeyInput{Arn: aws.String(arn)})
			return err
		}
	}
	del := func(arn string) func() error {
		return func() error {
			_, err := c.DeletePublicKey(ctx, &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(arn)})
			return err
		}
	}
	list := func(maxResults *int32, nextToken *string) func() error {
		return func() error {
			_, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{MaxResults: maxResults, NextToken: nextToken})
			return err
		}
	}
	if _, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	if _, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	stagesPage, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(1)})
	if err != nil || stagesPage.NextToken == nil {
		t.Fatalf("ListStages: got %v, %v, want a nextToken", stagesPage, err)
	}

	tests := []validationCase{
		{"name 129", imp(aws.String(long(129)), good, nil), []string{"at 'name'", le128}},
		{"name pattern", imp(aws.String("bad name!"), good, nil),
			[]string{"Value 'bad name!' at 'name'", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"name with a dot", imp(aws.String("a.b"), good, nil), []string{"at 'name'", "[a-zA-Z0-9-_]*"}},
		{"material empty", imp(nil, "", nil), []string{"Value '' at 'publicKeyMaterial'", pemRule}},
		{"material not PEM", imp(nil, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", nil), []string{"at 'publicKeyMaterial'", pemRule}},
		{"material a private key", imp(nil, "-----BEGIN EC PRIVATE KEY-----\n"+body+"\n-----END EC PRIVATE KEY-----\n", nil),
			[]string{"at 'publicKeyMaterial'", pemRule}},
		{"material with a line before the PEM", imp(nil, "key:\n"+good, nil), []string{"at 'publicKeyMaterial'", pemRule}},
		{"material P-256", imp(nil, p256, nil), []string{"Value at 'publicKeyMaterial' failed to satisfy constraint", p384 + ", not on P-256"}},
		{"material P-521", imp(nil, p521, nil), []string{"at 'publicKeyMaterial'", p384 + ", not on P-521"}},
		{"material RSA", imp(nil, rsaPEM, nil), []string{"at 'publicKeyMaterial'", p384 + ", not an RSA key"}},
		{"material Ed25519", imp(nil, edPEM, nil), []string{"at 'publicKeyMaterial'", p384 + ", not an Ed25519 key"}},
		{"material not base64", imp(nil, "-----BEGIN PUBLIC KEY-----\nMHYw=EAYH\n-----END PUBLIC KEY-----\n", nil),
			[]string{"at 'publicKeyMaterial'", "its body is not valid base64"}},
		{"material not a key", imp(nil, "-----BEGIN PUBLIC KEY-----\naGVsbG8gd29ybGQ=\n-----END PUBLIC KEY-----\n", nil),
			[]string{"at 'publicKeyMaterial'", p384, "not a valid SubjectPublicKeyInfo"}},
		{"51 tags", imp(nil, good, tags(51)), []string{"at 'tags'", "Member must have length less than or equal to 50"}},
		{"tag key 129", imp(nil, good, map[string]string{long(129): "v"}), []string{"at 'tags.key'", le128}},
		{"tag value 257", imp(nil, good, map[string]string{"k": long(257)}),
			[]string{"at 'tags.value'", "Member must have length less than or equal to 256"}},
		{"tag key aws:", imp(nil, good, map[string]string{"aws:owner": "me"}), []string{"at 'tags.key'", "aws:"}},
		{"two problems", imp(aws.String("bad name"), p256, nil), []string{"2 validation errors detected", "at 'name'", "at 'publicKeyMaterial'"}},

		{"get stage ARN", get(stageARN), []string{"at 'arn'", arnRule}},
		{"get upper-case region", get(wrongRegion), []string{"at 'arn'", arnRule}},
		{"get no id", get("arn:aws:ivs:us-east-1:123456789012:public-key/"), []string{"at 'arn'", arnRule}},
		{"get 129", get(missingKey + long(129-len(missingKey))), []string{"at 'arn'", le128}},
		{"get empty", get(""), []string{"at 'arn'", "Member must have length greater than or equal to 1"}},
		{"delete stage ARN", del(stageARN), []string{"at 'arn'", arnRule}},
		{"delete 129", del(missingKey + long(129-len(missingKey))), []string{"at 'arn'", le128}},
		{"delete empty", del(""), []string{"at 'arn'", "Member must have length greater than or equal to 1"}},

		{"list maxResults 0", list(aws.Int32(0), nil), []string{"Value '0' at 'maxResults'", "Member must have value greater than or equal to 1"}},
		{"list maxResults 101", list(aws.Int32(101), nil), []string{"Value '101' at 'maxResults'", "Member must have value less than or equal to 100"}},
		{"list nextToken pattern", list(nil, aws.String("not a token!")),
			[]string{"Value 'not a token!' at 'nextToken'", "regular expression pattern: [a-zA-Z0-9+/=_-]*"}},
		{"list nextToken 1025", list(nil, aws.String(long(1025))), []string{"at 'nextToken'", "Member must have length less than or equal to 1024"}},
		{"list forged nextToken", list(nil, aws.String("AQAAAAAAAAAAAAAAAAAAAAAAAA")), []string{"The nextToken is not valid"}},
		{"list nextToken of ListStages", list(nil, stagesPage.NextToken), []string{"The nextToken is not valid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, tt.call(), validation(tt.want...))
		})
	}

	// Nothing was imported by the refused calls.
	out, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{})
	if err != nil {
		t.Fatalf("ListPublicKeys: %v", err)
	}
	if len(out.PublicKeys) != 1 || aws.ToString(out.PublicKeys[0].Arn) != kept {
		t.Errorf("public keys after refused calls: got %s, want only %s", jsonOf(out.PublicKeys), kept)
	}
}

// TestPublicKeyValidationWire sends what the SDK refuses to: missing
// required members, wrong types.
func TestPublicKeyValidationWire(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	null := func(field string) []string {
		return []string{"Value null at '" + field + "' failed to satisfy constraint: Member must not be null"}
	}
	ofType := func(field, typ string) []string {
		return []string{"Value at '" + field + "' failed to satisfy constraint: Member must be of type " + typ}
	}
	material, _ := json.Marshal(fixedKeyPEM)
	tests := []struct {
		name, path, body string
		want             []string
	}{
		{"import no body", "/ImportPublicKey", ``, null("publicKeyMaterial")},
		{"import no material", "/ImportPublicKey", `{"name":"n"}`, null("publicKeyMaterial")},
		{"import null material", "/ImportPublicKey", `{"publicKeyMaterial":null}`, null("publicKeyMaterial")},
		{"import material number", "/ImportPublicKey", `{"publicKeyMaterial":5}`, ofType("publicKeyMaterial", "string")},
		{"import material list", "/ImportPublicKey", `{"publicKeyMaterial":["a"]}`, ofType("publicKeyMaterial", "string")},
		{"import name number", "/ImportPublicKey", `{"name":1,"publicKeyMaterial":` + string(material) + `}`, ofType("name", "string")},
		{"import tags list", "/ImportPublicKey", `{"publicKeyMaterial":` + string(material) + `,"tags":["a"]}`, ofType("tags", "map")},
		{"import tag value number", "/ImportPublicKey", `{"publicKeyMaterial":` + string(material) + `,"tags":{"a":1}}`, ofType("tags", "string")},
		{"import broken JSON", "/ImportPublicKey", `{"publicKeyMaterial":`, []string{"not valid JSON"}},
		{"get no arn", "/GetPublicKey", `{}`, null("arn")},
		{"get arn number", "/GetPublicKey", `{"arn":1}`, ofType("arn", "string")},
		{"delete no arn", "/DeletePublicKey", `{}`, null("arn")},
		{"delete null arn", "/DeletePublicKey", `{"arn":null}`, null("arn")},
		{"list maxResults string", "/ListPublicKeys", `{"maxResults":"1"}`, ofType("maxResults", "integer")},
		{"list nextToken number", "/ListPublicKeys", `{"nextToken":1}`, ofType("nextToken", "string")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRawError(t, signedRequest(t, m, "POST", tt.path, tt.body), validation(tt.want...))
		})
	}
	if n := countRows(t, m, "public_keys"); n != 0 {
		t.Errorf("public keys after refused calls: %d, want none", n)
	}
}

// TestPublicKeyConflict: one key is imported once, however it is written.
func TestPublicKeyConflict(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	_, material := newKeyPair(t)
	first := importKey(t, c, "first", material, map[string]string{"n": "1"})
	fp := fingerprintOf(t, material)
	for _, same := range []string{
		material,
		strings.ReplaceAll(material, "\n", "\r\n"),
		"text before " + strings.TrimSuffix(material, "\n") + " and after",
	} {
		_, err := c.ImportPublicKey(ctx, &ivsrealtime.ImportPublicKeyInput{Name: aws.String("second"), PublicKeyMaterial: aws.String(same),
			Tags: map[string]string{"n": "2"}})
		checkError(t, err, conflict("already imported as "+first, fp))
	}
	list, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{})
	if err != nil {
		t.Fatalf("ListPublicKeys: %v", err)
	}
	checkJSON(t, "ListPublicKeys after the conflicts", list.PublicKeys, []types.PublicKeySummary{
		{Arn: aws.String(first), Name: aws.String("first"), Tags: map[string]string{"n": "1"}},
	})
}

func TestPublicKeyQuota(t *testing.T) {
	t.Parallel()
	_, c := startServer(t, withMaxPublicKeys(2))
	ctx := testContext(t)
	var arns []string
	for i := range 2 {
		_, material := newKeyPair(t)
		arns = append(arns, importKey(t, c, fmt.Sprintf("k%d", i), material, nil))
	}
	_, third := newKeyPair(t)
	_, err := c.ImportPublicKey(ctx, &ivsrealtime.ImportPublicKeyInput{PublicKeyMaterial: aws.String(third)})
	checkError(t, err, quotaExceeded("Public key quota exceeded", "at most 2 public keys"))
	// Stages do not count; a delete makes room.
	createStage(t, c, "not-a-key")
	if _, err := c.DeletePublicKey(ctx, &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(arns[0])}); err != nil {
		t.Fatalf("DeletePublicKey: %v", err)
	}
	importKey(t, c, "third", third, nil)
}

func TestPublicKeyPagination(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	c, log := newClient(t, m, testAccessKeyID, testSecretAccessKey)
	checkPagination(t, log, pagedResource{
		op: "ListPublicKeys", defaultPage: 50,
		create: func(i int) string {
			_, material := newKeyPair(t)
			return importKey(t, c, fmt.Sprintf("key-%02d", i), material, nil)
		},
		list: func(ctx context.Context, max *int32, next *string) ([]string, *string, error) {
			out, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{MaxResults: max, NextToken: next})
			if err != nil {
				return nil, nil, err
			}
			var arns []string
			for _, pk := range out.PublicKeys {
				arns = append(arns, aws.ToString(pk.Arn))
			}
			return arns, out.NextToken, nil
		},
		del: func(ctx context.Context, arn string) error {
			_, err := c.DeletePublicKey(ctx, &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(arn)})
			return err
		},
		otherList: func(ctx context.Context, next *string) error {
			_, err := c.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{NextToken: next})
			return err
		},
	})
}

func TestPublicKeyTags(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	_, m1 := newKeyPair(t)
	_, m2 := newKeyPair(t)
	arn := aws.String(importKey(t, c, "tagged", m1, map[string]string{"env": "test"}))
	other := aws.String(importKey(t, c, "other", m2, map[string]string{"env": "other"}))
	id := strings.TrimPrefix(*arn, "arn:aws:ivs:us-east-1:123456789012:public-key/")
	stage := "arn:aws:ivs:us-east-1:123456789012:stage/" + id
	storage := "arn:aws:ivs:us-east-1:123456789012:storage-configuration/" + id

	checkTagging(t, c, arn, other, func(t *testing.T) (got, listed map[string]string) {
		out, err := c.GetPublicKey(ctx, &ivsrealtime.GetPublicKeyInput{Arn: arn})
		if err != nil {
			t.Fatalf("GetPublicKey: %v", err)
		}
		list, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{MaxResults: aws.Int32(1)})
		if err != nil {
			t.Fatalf("ListPublicKeys: %v", err)
		}
		return out.PublicKey.Tags, list.PublicKeys[0].Tags
	}, []badTagTarget{
		{"missing public key", missingKey, notFound("Resource not found", missingKey)},
		{"stage with the key's id", stage, notFound("Resource not found", stage)},
		{"storage configuration with the key's id", storage, notFound("Resource not found", storage)},
		{"channel", "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234", validation("at 'resourceArn'",
			"or arn:aws:ivs:[a-z0-9-]+:[0-9]+:public-key/[a-zA-Z0-9-]+")},
	})
}

// TestPublicKeyWireGolden pins the JSON of the public key operations,
// field names and order included, against testdata/publickey.golden. Run
// with -update to rewrite it after a deliberate change.
func TestPublicKeyWireGolden(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	tr := &transcript{m: m, names: map[string]string{}, count: map[string]int{}}
	s := fmt.Sprintf
	material := func(pemText string) string {
		b, _ := json.Marshal(pemText)
		return string(b)
	}

	var imported struct{ PublicKey struct{ Arn string } }
	tr.do(t, "POST", "/ImportPublicKey", `{"name":"golden","publicKeyMaterial":`+material(fixedKeyPEM)+`,"tags":{"env":"test"}}`).decode(t, &imported)
	arn := imported.PublicKey.Arn
	tr.do(t, "POST", "/ImportPublicKey", `{"publicKeyMaterial":`+material(otherFixedKeyPEM)+`}`)
	tr.do(t, "POST", "/ImportPublicKey", `{"name":"again","publicKeyMaterial":`+material(fixedKeyPEM)+`}`)
	tr.do(t, "POST", "/GetPublicKey", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/ListPublicKeys", `{"maxResults":1}`)
	tr.do(t, "POST", "/ListPublicKeys", `{}`)
	tr.do(t, "POST", tagsPath(arn), `{"tags":{"team":"video"}}`)
	tr.do(t, "DELETE", tagsPath(arn)+"?tagKeys=env", ``)
	tr.do(t, "GET", tagsPath(arn), ``)
	tr.do(t, "POST", "/DeletePublicKey", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/DeletePublicKey", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/GetPublicKey", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/ImportPublicKey", `{"name":"bad name","publicKeyMaterial":"not a key"}`)
	tr.do(t, "POST", "/ImportPublicKey", `{}`)

	got := publicKeyIDPattern.ReplaceAllStringFunc(tr.normalize(tr.buf.String()), func(id string) string {
		return "public-key/" + tr.placeholder("key", id)
	})
	checkGolden(t, filepath.Join("testdata", "publickey.golden"), got)
}

var publicKeyIDPattern = regexp.MustCompile(`public-key/[a-zA-Z0-9]{12}\b`)

// TestPublicKeyCLI runs the public key commands through ivsrt and, when
// it is installed, the aws CLI, and compares what they print.
func TestPublicKeyCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs both CLIs some forty times")
	}
	t.Parallel()
	m, c := startServer(t)
	volatile := regexp.MustCompile(`public-key/[a-zA-Z0-9]{12}`)
	normalize := func(s string) string { return volatile.ReplaceAllString(s, "<volatile>") }

	// The documented way: the material from a file, as "$(cat public.pem)".
	out := cliMust(t, m, "import-public-key", "--public-key-material", fixedKeyPEM, "--name", "cli")
	var created struct {
		PublicKey struct{ Arn, Name, PublicKeyMaterial, Fingerprint string }
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("import-public-key output %s: %v", out, err)
	}
	if pk := created.PublicKey; !publicKeyARNPattern.MatchString(pk.Arn) || pk.Name != "cli" || pk.PublicKeyMaterial != fixedKeyPEM ||
		pk.Fingerprint != fixedKeyFingerprint {
		t.Errorf("import-public-key: got %+v", pk)
	}
	arn := created.PublicKey.Arn
	// Both CLIs import the same key in turn, deleted in between, and print
	// the same but for its ARN.
	deleteByName := func(name string) {
		t.Helper()
		list, err := c.ListPublicKeys(testContext(t), &ivsrealtime.ListPublicKeysInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, pk := range list.PublicKeys {
			if aws.ToString(pk.Name) == name {
				if _, err := c.DeletePublicKey(testContext(t), &ivsrealtime.DeletePublicKeyInput{Arn: pk.Arn}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, output := range []string{"json", "text", "table"} {
		args := []string{"import-public-key", "--name", "cli-compare", "--public-key-material", otherFixedKeyPEM,
			"--tags", "env=test,team=video", "--output", output}
		got := cliRun(t, m, args...)
		deleteByName("cli-compare")
		if got.code != 0 || !strings.Contains(got.stdout, "public-key/") {
			t.Errorf("ivsrt import-public-key --output %s: exit %d\n%s%s", output, got.code, got.stdout, got.stderr)
		}
		if cliAWSPath() == "" {
			continue
		}
		want := cliAWS(t, m, args...)
		deleteByName("cli-compare")
		if g, w := normalize(got.stdout), normalize(want.stdout); g != w || got.stderr != want.stderr {
			t.Errorf("import-public-key --output %s differs from the aws CLI's\n--- ivsrt\n%s%s\n--- aws\n%s%s", output, g, got.stderr, w, want.stderr)
		}
	}
	cliCompare(t, m, 0, nil, "get-public-key", "--arn", arn)
	cliCompare(t, m, 0, nil, "get-public-key", "--cli-input-json", `{"arn": "`+arn+`"}`)
	cliCompare(t, m, 0, nil, "tag-resource", "--resource-arn", arn, "--tags", "extra=1,owner=ops")
	cliCompare(t, m, 0, nil, "list-tags-for-resource", "--resource-arn", arn)
	cliCompare(t, m, 0, nil, "untag-resource", "--resource-arn", arn, "--tag-keys", "extra")
	cliCompare(t, m, 0, normalize, "list-public-keys")
	cliCompare(t, m, 0, normalize, "list-public-keys", "--max-items", "1")
	cliCompare(t, m, 0, normalize, "list-public-keys", "--page-size", "1")
	cliCompare(t, m, 0, normalize, "list-public-keys", "--max-results", "1")

	// Errors: the server's, and the CLI's own checks before sending.
	cliCompare(t, m, 254, normalize, "import-public-key", "--public-key-material", fixedKeyPEM)
	cliCompare(t, m, 254, nil, "get-public-key", "--arn", missingKey)
	cliCompare(t, m, 254, nil, "delete-public-key", "--arn", missingKey)
	cliCompare(t, m, 254, nil, "import-public-key", "--public-key-material", "not a key")
	cliCompare(t, m, 254, nil, "import-public-key", "--public-key-material", publicPEM(t, mustP256(t)))
	cliCompare(t, m, 254, nil, "import-public-key", "--public-key-material", fixedKeyPEM, "--name", strings.Repeat("x", 129))
	cliCompare(t, m, 254, nil, "list-public-keys", "--max-results", "101")
	cliCompare(t, m, 252, nil, "get-public-key", "--arn", "")
	cliCompare(t, m, 252, nil, "list-public-keys", "--max-results", "0")
	if r := cliRun(t, m, "import-public-key", "--name", "n"); r.code != 252 ||
		!strings.Contains(r.stderr, "error: the following arguments are required: --public-key-material") {
		t.Errorf("import-public-key without --public-key-material: exit %d, stderr %q, want 252 and the argument named", r.code, r.stderr)
	}

	// A delete prints nothing.
	cliDeletes(t, m, "delete-public-key", arn, "GetPublicKey", func(ctx context.Context) error {
		_, err := c.GetPublicKey(ctx, &ivsrealtime.GetPublicKeyInput{Arn: aws.String(arn)})
		return err
	})
}

func mustP256(t testing.TB) *ecdsa.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

// TestBrowserConsolePublicKeys checks the console's public keys tab: it
// lists keys with their fingerprints, imports one pasted into its form,
// shows why a key of another curve is refused, and deletes one after a
// confirmation.
func TestBrowserConsolePublicKeys(t *testing.T) {
	m, c := startServer(t, withDev())
	ctx := testContext(t)
	existing := importKey(t, c, "existing", fixedKeyPEM, map[string]string{"env": "test"})

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console#tab=keys")
	console.WaitFor("the public keys tab", `document.getElementById("live").dataset.state === "ok" &&
		!document.getElementById("keys-view").hidden && document.getElementById("stages-view").hidden &&
		document.getElementById("storage-view").hidden && document.getElementById("delivery-view").hidden &&
		document.querySelector("#tabs [aria-current]")?.dataset.tab === "keys"`, 10*time.Second)
	row := func(arn string) string { return fmt.Sprintf(`#keys tr[data-key-arn=%q]`, arn) }
	console.WaitFor("the existing key, with its fingerprint", `(() => {
		const row = document.querySelector('`+row(existing)+`');
		return !!row && row.cells[0].textContent === "existing" && row.cells[2].textContent === "`+fixedKeyFingerprint+`" &&
			row.cells[3].textContent === "env=test";
	})()`, 10*time.Second)

	// A key of another curve is refused, and the console says why.
	console.Do("import a P-256 key",
		chromedp.SetValue(chromedp.ID("new-key-material"), publicPEM(t, mustP256(t))),
		chromedp.Click(chromedp.CSS(`#import-key button[type=submit]`)),
	)
	console.WaitFor("the refusal", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("P-384")`, 10*time.Second)

	_, material := newKeyPair(t)
	console.Do("import one",
		chromedp.SetValue(chromedp.ID("new-key-name"), "from-console"),
		chromedp.SetValue(chromedp.ID("new-key-material"), material),
		chromedp.Click(chromedp.CSS(`#import-key button[type=submit]`)),
	)
	fp := fingerprintOf(t, material)
	console.WaitFor("the new one", `document.querySelectorAll("#keys tbody tr").length === 2 && document.getElementById("error").hidden &&
		[...document.querySelectorAll("#keys tbody tr")].some((r) => r.cells[0].textContent === "from-console" && r.cells[2].textContent === "`+fp+`")`, 10*time.Second)
	list, err := c.ListPublicKeys(ctx, &ivsrealtime.ListPublicKeysInput{})
	if err != nil {
		t.Fatalf("ListPublicKeys: %v", err)
	}
	if n := len(list.PublicKeys); n != 2 || aws.ToString(list.PublicKeys[1].Name) != "from-console" {
		t.Fatalf("public keys after the console imported one: %s", jsonOf(list.PublicKeys))
	}
	created := aws.ToString(list.PublicKeys[1].Arn)
	console.FullScreenshot("console-public-keys")

	deleteRow := func(arn string) {
		t.Helper()
		console.Do("delete", chromedp.Click(chromedp.CSS(row(arn)+` [data-action=delete-key]`)))
		console.WaitFor("the confirmation", `document.getElementById("confirm").open`, 5*time.Second)
		console.Do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	}
	deleteRow(existing)
	console.WaitFor("one left", `!document.querySelector('`+row(existing)+`') && !!document.querySelector('`+row(created)+`')`, 10*time.Second)
	deleteRow(created)
	console.WaitFor("the empty state", `!document.getElementById("no-keys").hidden && !document.querySelector("#keys tbody tr")`, 10*time.Second)
	if _, err := c.GetPublicKey(ctx, &ivsrealtime.GetPublicKeyInput{Arn: aws.String(existing)}); err == nil {
		t.Errorf("GetPublicKey after the console deleted it: got it, want ResourceNotFoundException")
	}

	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}
