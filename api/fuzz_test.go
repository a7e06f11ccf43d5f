package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/sqlite"
	"github.com/ivsrt/ivsrt/token"
)

// The fuzz targets drive a real Server over a real SQLite store and token
// issuer, with requests signed as an SDK signs them, and check what any
// network-facing handler owes its clients: no panic, no 500, a JSON body,
// errors in the AWS shape, and a created stage that can be read back.

// fuzzOps are the POST operations, indexed by FuzzOperation's op byte.
var fuzzOps = []string{
	"CreateStage",
	"GetStage",
	"UpdateStage",
	"DeleteStage",
	"ListStages",
	"CreateParticipantToken",
	"DisconnectParticipant",
	"GetParticipant",
	"ListParticipants",
	"ListParticipantEvents",
	"GetStageSession",
	"ListStageSessions",
	"CreateStorageConfiguration",
	"GetStorageConfiguration",
	"ListStorageConfigurations",
	"DeleteStorageConfiguration",
	"ImportPublicKey",
	"GetPublicKey",
	"ListPublicKeys",
	"DeletePublicKey",
	"StartParticipantReplication",
	"StopParticipantReplication",
	"ListParticipantReplicas",
	"CreateIngestConfiguration",
	"GetIngestConfiguration",
	"UpdateIngestConfiguration",
	"DeleteIngestConfiguration",
	"ListIngestConfigurations",
	"CreateEncoderConfiguration",
	"GetEncoderConfiguration",
	"ListEncoderConfigurations",
	"DeleteEncoderConfiguration",
	"StartComposition",
	"GetComposition",
	"ListCompositions",
	"StopComposition",
}

// A fixture stage with a token, a session and a participant gives the
// seeds something real to name, and so do a fixture storage configuration
// and a fixture public key. Seeds write $ARN, $PID, $SID, $NEXT, $SCARN
// and $PKARN for the stage's ARN, participant id, session id, a valid
// ListStages nextToken, the storage configuration's ARN and the public
// key's, $DARN for a second stage, where the fixture's participant
// may be replicated, $IARN for a fixture ingest configuration of the
// stage, and $ECARN for a fixture encoder configuration; the harness
// substitutes the current values.
const (
	fuzzFixtureARN       = ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/FuzzFixture1")
	fuzzDestinationARN   = ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/FuzzDestina1")
	fuzzFixtureStorage   = ivsrt.StorageConfigurationARN("arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234")
	fuzzFixturePublicKey = ivsrt.PublicKeyARN("arn:aws:ivs:us-east-1:123456789012:public-key/FuzzPubKey12")
	fuzzFixtureIngest    = ivsrt.IngestConfigurationARN("arn:aws:ivs:us-east-1:123456789012:ingest-configuration/FuzzIngest12")
	fuzzFixtureEncoder   = ivsrt.EncoderConfigurationARN("arn:aws:ivs:us-east-1:123456789012:encoder-configuration/FuzzEncode12")
	fuzzFixturePID       = ivsrt.ParticipantID("FuzzPartici1")
	fuzzRegion           = "us-east-1"
	fuzzHost             = "ivs.fuzz.test"
)

// Two P-384 public keys: the fixture's, and one ImportPublicKey's seeds
// import; and a P-256 key, which must be refused.
const (
	fuzzFixtureKeyPEM = `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE5O8vfGOSTE5Xxk/HKLwCWQ5038w2YiBW
mYZqzG5uAzCFm3sQdv9dYwJiEsVHYyjDuZjG9G8FTKnfRBUqk/bJv3FTp+94pKsi
6j+Q4Fkwsa4CEkeljluNuSKV0jelcFTO
-----END PUBLIC KEY-----
`
	fuzzImportKeyPEM = `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEpDUDMCnMQOtkqnwGfqKsQraHkyd1tzsp
yuyqVx5rKEYmB1tJgIQZNmom21ORjWjrj8tg00xoDA4d48UUsaNuer+F5+Fog1Yw
Tm0iFYfSDFXrjqotH7E9LHBucO/hq6vV
-----END PUBLIC KEY-----
`
	fuzzP256KeyPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwGwFwjOYK57mTy5G7xLpmMOXRTX2
325NxRzKEZKQIBPDAWQSz3NTtO+J3CfQEGNmH2+gsgcXw9QUyL6sLdlM+w==
-----END PUBLIC KEY-----
`
)

// fuzzMaxErrorBytes bounds an error answer, whatever the request: messages
// quote bad values only in part.
const fuzzMaxErrorBytes = 16 << 10

// fuzzStatuses are the statuses a request may be answered with.
var fuzzStatuses = map[int]bool{
	http.StatusOK:                    true,
	http.StatusBadRequest:            true,
	http.StatusPaymentRequired:       true,
	http.StatusForbidden:             true,
	http.StatusNotFound:              true,
	http.StatusConflict:              true,
	http.StatusRequestEntityTooLarge: true,
}

type fuzzHarness struct {
	srv    *Server
	db     *sqlite.DB
	issuer *token.Issuer
	logs   *fuzzLog
	creds  aws.Credentials
	signer *v4.Signer

	sessionID ivsrt.SessionID // the fixture's session
	nextToken string          // a ListStages nextToken this server issued
}

// fuzzLog collects what the server logs, to show beside a failure.
type fuzzLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *fuzzLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 64<<10 {
		l.buf.Reset()
	}
	return l.buf.Write(p)
}

func (l *fuzzLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newFuzzHarness(tb testing.TB) *fuzzHarness {
	tb.Helper()
	dir := tb.TempDir()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ivsrt.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	key, err := token.LoadOrCreateKey(filepath.Join(dir, "token-signing-key.pem"))
	if err != nil {
		tb.Fatalf("load signing key: %v", err)
	}
	const publicURL = "http://" + fuzzHost
	events, whip := EndpointURLs(publicURL)
	issuer := token.NewIssuer(key, token.WithEventsURL(events), token.WithWHIPURL(whip))
	creds := aws.Credentials{AccessKeyID: "AKIDFUZZEXAMPLE", SecretAccessKey: "fuzz-secret"}
	verifier := &SigV4Verifier{
		Credentials: []Credential{{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}},
		Service:     "ivs",
		Dev:         true,
	}
	logs := &fuzzLog{}
	srv, err := NewServer(db, issuer, verifier, Config{
		Region:           fuzzRegion,
		AccountID:        "123456789012",
		PublicURL:        publicURL,
		PaginationKey:    bytes.Repeat([]byte{7}, 32),
		ReplicationQuota: ivsrt.ReplicationQuota{MaxReplicasPerParticipant: 1},
	}, WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		WithMediaPlane(fuzzReplicas{db}))
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	h := &fuzzHarness{srv: srv, db: db, issuer: issuer, logs: logs, creds: creds, signer: v4.NewSigner()}
	// A position after the first stage ever stored: valid for as long as
	// the pagination key is.
	h.nextToken = srv.pages.encode("ListStages", "1")
	h.ensureFixture(tb)
	return h
}

// ensureFixture (re)creates the fixture stage, which an input may have
// deleted, with its token and a session that has one participant.
func (h *fuzzHarness) ensureFixture(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	if _, err := h.db.GetStorageConfiguration(ctx, fuzzFixtureStorage); ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		sc := &ivsrt.StorageConfiguration{ARN: fuzzFixtureStorage, Name: "fixture", S3BucketName: "fuzz-bucket", Tags: map[string]string{"env": "fuzz"}}
		if err := h.db.CreateStorageConfiguration(ctx, sc); err != nil {
			tb.Fatalf("create fixture storage configuration: %v", err)
		}
	} else if err != nil {
		tb.Fatalf("get fixture storage configuration: %v", err)
	}
	if _, err := h.db.GetPublicKey(ctx, fuzzFixturePublicKey); ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		pub, err := ivsrt.ParsePublicKeyMaterial(fuzzFixtureKeyPEM)
		if err != nil {
			tb.Fatalf("fixture public key: %v", err)
		}
		fp, err := ivsrt.PublicKeyFingerprint(pub)
		if err != nil {
			tb.Fatalf("fixture public key: %v", err)
		}
		pk := &ivsrt.PublicKey{ARN: fuzzFixturePublicKey, Name: "fixture", Material: fuzzFixtureKeyPEM, Fingerprint: fp,
			Tags: map[string]string{"env": "fuzz"}}
		if err := h.db.ImportPublicKey(ctx, pk, ivsrt.PublicKeyQuota{}); err != nil {
			tb.Fatalf("import fixture public key: %v", err)
		}
	} else if err != nil {
		tb.Fatalf("get fixture public key: %v", err)
	}
	if _, err := h.db.GetIngestConfiguration(ctx, fuzzFixtureIngest); ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		ic := &ivsrt.IngestConfiguration{ARN: fuzzFixtureIngest, Name: "fixture", StageARN: fuzzFixtureARN, Protocol: ivsrt.IngestRTMPS,
			Credentials: []ivsrt.IngestCredential{ivsrt.NewIngestCredential(fuzzFixtureIngest, false)}, Tags: map[string]string{"env": "fuzz"}}
		if err := h.db.CreateIngestConfiguration(ctx, ic); err != nil {
			tb.Fatalf("create fixture ingest configuration: %v", err)
		}
	} else if err != nil {
		tb.Fatalf("get fixture ingest configuration: %v", err)
	}
	if _, err := h.db.GetEncoderConfiguration(ctx, fuzzFixtureEncoder); ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		ec := &ivsrt.EncoderConfiguration{ARN: fuzzFixtureEncoder, Name: "fixture", Video: ivsrt.DefaultVideo(), Tags: map[string]string{"env": "fuzz"}}
		if err := h.db.CreateEncoderConfiguration(ctx, ec); err != nil {
			tb.Fatalf("create fixture encoder configuration: %v", err)
		}
	} else if err != nil {
		tb.Fatalf("get fixture encoder configuration: %v", err)
	}
	if _, err := h.db.GetStage(ctx, fuzzDestinationARN); ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		if err := h.db.CreateStage(ctx, &ivsrt.Stage{ARN: fuzzDestinationARN, Name: "destination"}, nil, ivsrt.StageQuota{}); err != nil {
			tb.Fatalf("create destination fixture: %v", err)
		}
	} else if err != nil {
		tb.Fatalf("get destination fixture: %v", err)
	}
	st, err := h.db.GetStage(ctx, fuzzFixtureARN)
	if err == nil && st.ActiveSessionID != "" {
		h.sessionID = st.ActiveSessionID
		return
	}
	if err != nil {
		if ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
			tb.Fatalf("get fixture: %v", err)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		tok := &ivsrt.ParticipantToken{
			ParticipantID:   fuzzFixturePID,
			StageARN:        fuzzFixtureARN,
			UserID:          "fixture-user",
			Attributes:      map[string]string{"role": "host"},
			Capabilities:    []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe},
			DurationMinutes: ivsrt.DefaultTokenDurationMinutes,
			CreatedAt:       now,
			ExpirationTime:  now.Add(ivsrt.DefaultTokenDurationMinutes * time.Minute),
		}
		stage := &ivsrt.Stage{ARN: fuzzFixtureARN, Name: "fixture", Tags: map[string]string{"env": "fuzz"}}
		if err := h.db.CreateStage(ctx, stage, []*ivsrt.ParticipantToken{tok}, ivsrt.StageQuota{}); err != nil {
			tb.Fatalf("create fixture: %v", err)
		}
	}
	for _, name := range []ivsrt.EventName{ivsrt.EventJoined, ivsrt.EventPublishStarted} {
		ev := &ivsrt.Event{StageARN: fuzzFixtureARN, Name: name, ParticipantID: fuzzFixturePID,
			UserID: "fixture-user", Attributes: map[string]string{"role": "host"}, Protocol: "WHIP"}
		if err := h.db.RecordEvent(ctx, ev); err != nil {
			tb.Fatalf("record fixture %s: %v", name, err)
		}
		h.sessionID = ev.SessionID
	}
}

// expand substitutes the fixture's identifiers for the placeholders.
func (h *fuzzHarness) expand(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	return strings.NewReplacer(
		"$ARN", string(fuzzFixtureARN),
		"$PID", string(fuzzFixturePID),
		"$SID", string(h.sessionID),
		"$NEXT", h.nextToken,
		"$SCARN", string(fuzzFixtureStorage),
		"$PKARN", string(fuzzFixturePublicKey),
		"$DARN", string(fuzzDestinationARN),
		"$IARN", string(fuzzFixtureIngest),
		"$ECARN", string(fuzzFixtureEncoder),
	).Replace(s)
}

// fuzzResponse is a recorded answer.
type fuzzResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request, signed with SigV4 as the SDKs sign, through the
// server. target is the request-URI as it would appear on the wire. It
// reports false when a Go HTTP server would have refused the request line
// before any handler ran.
func (h *fuzzHarness) do(tb testing.TB, method, target string, body []byte) (fuzzResponse, bool) {
	tb.Helper()
	if strings.ContainsAny(method+target, " \r\n") {
		return fuzzResponse{}, false
	}
	line := method + " " + target + " HTTP/1.1\r\nHost: " + fuzzHost + "\r\n\r\n"
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(line)))
	if err != nil {
		return fuzzResponse{}, false
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := h.signer.SignHTTP(context.Background(), h.creds, req, hex.EncodeToString(sum[:]), "ivs", fuzzRegion, time.Now()); err != nil {
		return fuzzResponse{}, false
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return fuzzResponse{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}, true
}

// check asserts what every answer owes the client.
func (h *fuzzHarness) check(tb testing.TB, what string, r fuzzResponse) {
	tb.Helper()
	fail := func(format string, args ...any) {
		tb.Helper()
		tb.Fatalf("%s: %s\nstatus %d, body %.2000s\nserver log:\n%s", what, fmt.Sprintf(format, args...), r.status, r.body, h.logs.String())
	}
	if !fuzzStatuses[r.status] {
		fail("got status %d, want 200, 400, 402, 403, 404, 409 or 413", r.status)
	}
	if !json.Valid(r.body) {
		fail("body is not valid JSON")
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		fail("got Content-Type %q, want application/json", got)
	}
	if r.status == http.StatusOK {
		if len(r.body) == 0 || r.body[0] != '{' {
			fail("a success body must be a JSON object")
		}
		return
	}
	if len(r.body) > fuzzMaxErrorBytes {
		fail("got a %d-byte error, want at most %d", len(r.body), fuzzMaxErrorBytes)
	}
	if r.header.Get("x-amzn-ErrorType") == "" {
		fail("error without x-amzn-ErrorType")
	}
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		fail("error body: %v", err)
	}
	if e.Message == "" || e.Message != e.ExceptionMessage {
		fail("got message %q and exceptionMessage %q, want the same non-empty text", e.Message, e.ExceptionMessage)
	}
}

// operation runs one POST operation and checks its answer; a created stage
// must then be readable, and an issued token usable.
func (h *fuzzHarness) operation(tb testing.TB, op string, body []byte) fuzzResponse {
	tb.Helper()
	r, ok := h.do(tb, http.MethodPost, "/"+op, body)
	if !ok {
		tb.Fatalf("%s: request refused by the harness", op)
	}
	h.check(tb, op, r)
	if r.status != http.StatusOK {
		return r
	}
	switch op {
	case "CreateStage":
		h.checkCreated(tb, r.body)
	case "CreateStorageConfiguration":
		h.checkCreatedStorage(tb, r.body)
	case "CreateEncoderConfiguration":
		h.checkCreatedEncoder(tb, body, r.body)
	case "ImportPublicKey":
		h.checkImported(tb, body, r.body)
	case "StartParticipantReplication", "StopParticipantReplication":
		h.checkReplication(tb, op, body, r)
	case "CreateParticipantToken":
		var out struct {
			ParticipantToken fuzzToken `json:"participantToken"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			tb.Fatalf("CreateParticipantToken body: %v", err)
		}
		var in struct {
			StageArn string `json:"stageArn"`
		}
		json.Unmarshal(body, &in)
		h.checkToken(tb, in.StageArn, out.ParticipantToken)
	}
	return r
}

// fuzzToken is a participant token as a client reads it.
type fuzzToken struct {
	ParticipantID string            `json:"participantId"`
	Token         string            `json:"token"`
	UserID        string            `json:"userId"`
	Attributes    map[string]string `json:"attributes"`
}

// checkToken asserts that a token the API handed out is stored and that the
// server accepts it back: a participant must be able to join with it.
func (h *fuzzHarness) checkToken(tb testing.TB, stageARN string, pt fuzzToken) {
	tb.Helper()
	ctx := context.Background()
	stored, err := h.db.GetParticipantToken(ctx, ivsrt.ParticipantID(pt.ParticipantID))
	if err != nil {
		tb.Fatalf("participant token %s was returned but not stored: %v", pt.ParticipantID, err)
	}
	if string(stored.StageARN) != stageARN || stored.UserID != pt.UserID || !maps.Equal(stored.Attributes, fuzzNonNil(pt.Attributes)) {
		tb.Fatalf("stored token %+v does not match the one returned, %+v", stored, pt)
	}
	got, err := h.issuer.Verify(ctx, pt.Token)
	if err != nil {
		tb.Fatalf("the server refuses the %d-byte participant token it issued: %v", len(pt.Token), err)
	}
	if got.ParticipantID != stored.ParticipantID || got.StageARN != stored.StageARN || got.UserID != stored.UserID || !maps.Equal(got.Attributes, stored.Attributes) {
		tb.Fatalf("token claims %+v do not match the stored token %+v", got, stored)
	}
}

// checkCreated reads back a stage CreateStage acknowledged: GetStage returns
// it as created, and each of its participant tokens is stored.
func (h *fuzzHarness) checkCreated(tb testing.TB, created []byte) {
	tb.Helper()
	var out struct {
		Stage             stageWire   `json:"stage"`
		ParticipantTokens []fuzzToken `json:"participantTokens"`
	}
	if err := json.Unmarshal(created, &out); err != nil || out.Stage.Arn == "" {
		tb.Fatalf("CreateStage answered 200 with %.500s (%v)", created, err)
	}
	arnBody, _ := json.Marshal(map[string]string{"arn": out.Stage.Arn})
	r, _ := h.do(tb, http.MethodPost, "/GetStage", arnBody)
	h.check(tb, "GetStage after CreateStage", r)
	if r.status != http.StatusOK {
		tb.Fatalf("GetStage of created stage %s: got status %d, want 200: %s", out.Stage.Arn, r.status, r.body)
	}
	var got stageOutput
	if err := json.Unmarshal(r.body, &got); err != nil {
		tb.Fatalf("GetStage body: %v", err)
	}
	if got.Stage.Arn != out.Stage.Arn || got.Stage.Name != out.Stage.Name || !maps.Equal(got.Stage.Tags, out.Stage.Tags) {
		tb.Fatalf("GetStage after CreateStage:\ngot  %+v\nwant %+v", *got.Stage, out.Stage)
	}
	for _, pt := range out.ParticipantTokens {
		h.checkToken(tb, out.Stage.Arn, pt)
	}
}

// checkCreatedStorage reads back a storage configuration that
// CreateStorageConfiguration acknowledged.
func (h *fuzzHarness) checkCreatedStorage(tb testing.TB, created []byte) {
	tb.Helper()
	var out storageConfigurationOutput
	if err := json.Unmarshal(created, &out); err != nil || out.StorageConfiguration.Arn == "" {
		tb.Fatalf("CreateStorageConfiguration answered 200 with %.500s (%v)", created, err)
	}
	arnBody, _ := json.Marshal(map[string]string{"arn": out.StorageConfiguration.Arn})
	r, _ := h.do(tb, http.MethodPost, "/GetStorageConfiguration", arnBody)
	h.check(tb, "GetStorageConfiguration after CreateStorageConfiguration", r)
	if r.status != http.StatusOK {
		tb.Fatalf("GetStorageConfiguration of %s: got status %d, want 200: %s", out.StorageConfiguration.Arn, r.status, r.body)
	}
	var got storageConfigurationOutput
	if err := json.Unmarshal(r.body, &got); err != nil {
		tb.Fatalf("GetStorageConfiguration body: %v", err)
	}
	if g, w := got.StorageConfiguration, out.StorageConfiguration; g.Arn != w.Arn || g.Name != w.Name ||
		g.S3 == nil || w.S3 == nil || *g.S3 != *w.S3 || !maps.Equal(g.Tags, w.Tags) {
		tb.Fatalf("GetStorageConfiguration after CreateStorageConfiguration:\ngot  %+v\nwant %+v", g, w)
	}
}

// checkCreatedEncoder reads back an encoder configuration that
// CreateEncoderConfiguration acknowledged: GetEncoderConfiguration returns
// it as created, its video is what was asked with the defaults for what
// was not, and that video passes the checks a request's must.
func (h *fuzzHarness) checkCreatedEncoder(tb testing.TB, request, created []byte) {
	tb.Helper()
	var out encoderConfigurationOutput
	if err := json.Unmarshal(created, &out); err != nil || out.EncoderConfiguration.Arn == "" {
		tb.Fatalf("CreateEncoderConfiguration answered 200 with %.500s (%v)", created, err)
	}
	var in createEncoderConfigurationInput
	if err := decode(request, &in); err != nil {
		tb.Fatalf("CreateEncoderConfiguration answered 200 to %.500q (%v)", request, err)
	}
	want := in.Video.toDomain()
	got := out.EncoderConfiguration.Video
	if got != (videoWire{Width: want.Width, Height: want.Height, Framerate: want.Framerate, Bitrate: want.Bitrate}) {
		tb.Fatalf("CreateEncoderConfiguration answered video %+v to a request for %+v", got, want)
	}
	var v ivsrt.Validation
	if !v.Video("video", want) {
		tb.Fatalf("CreateEncoderConfiguration took video %+v: %v", want, v.Err())
	}
	arnBody, _ := json.Marshal(map[string]string{"arn": out.EncoderConfiguration.Arn})
	r, _ := h.do(tb, http.MethodPost, "/GetEncoderConfiguration", arnBody)
	h.check(tb, "GetEncoderConfiguration after CreateEncoderConfiguration", r)
	if r.status != http.StatusOK {
		tb.Fatalf("GetEncoderConfiguration of %s: got status %d, want 200: %s", out.EncoderConfiguration.Arn, r.status, r.body)
	}
	var back encoderConfigurationOutput
	if err := json.Unmarshal(r.body, &back); err != nil {
		tb.Fatalf("GetEncoderConfiguration body: %v", err)
	}
	if g, w := back.EncoderConfiguration, out.EncoderConfiguration; g.Arn != w.Arn || g.Name != w.Name || g.Video != w.Video || !maps.Equal(g.Tags, w.Tags) {
		tb.Fatalf("GetEncoderConfiguration after CreateEncoderConfiguration:\ngot  %+v\nwant %+v", g, w)
	}
}

// checkImported reads back a public key that ImportPublicKey
// acknowledged: GetPublicKey returns it as imported, and it is the P-384
// key of the material sent, with that key's fingerprint.
func (h *fuzzHarness) checkImported(tb testing.TB, request, imported []byte) {
	tb.Helper()
	var out publicKeyOutput
	if err := json.Unmarshal(imported, &out); err != nil || out.PublicKey.Arn == "" {
		tb.Fatalf("ImportPublicKey answered 200 with %.500s (%v)", imported, err)
	}
	var in importPublicKeyInput
	if err := json.Unmarshal(request, &in); err != nil || in.PublicKeyMaterial == nil {
		tb.Fatalf("ImportPublicKey answered 200 to %.500q (%v)", request, err)
	}
	pub, err := ivsrt.ParsePublicKeyMaterial(*in.PublicKeyMaterial)
	if err != nil {
		tb.Fatalf("ImportPublicKey took material it cannot read back: %v", err)
	}
	fp, _ := ivsrt.PublicKeyFingerprint(pub)
	if out.PublicKey.PublicKeyMaterial != *in.PublicKeyMaterial || out.PublicKey.Fingerprint != fp {
		tb.Fatalf("ImportPublicKey answered material %q fingerprint %s, want what was sent and %s", out.PublicKey.PublicKeyMaterial, out.PublicKey.Fingerprint, fp)
	}
	arnBody, _ := json.Marshal(map[string]string{"arn": out.PublicKey.Arn})
	r, _ := h.do(tb, http.MethodPost, "/GetPublicKey", arnBody)
	h.check(tb, "GetPublicKey after ImportPublicKey", r)
	if r.status != http.StatusOK {
		tb.Fatalf("GetPublicKey of %s: got status %d, want 200: %s", out.PublicKey.Arn, r.status, r.body)
	}
	var got publicKeyOutput
	if err := json.Unmarshal(r.body, &got); err != nil {
		tb.Fatalf("GetPublicKey body: %v", err)
	}
	if g, w := got.PublicKey, out.PublicKey; g.Arn != w.Arn || g.Name != w.Name || g.PublicKeyMaterial != w.PublicKeyMaterial ||
		g.Fingerprint != w.Fingerprint || !maps.Equal(g.Tags, w.Tags) {
		tb.Fatalf("GetPublicKey after ImportPublicKey:\ngot  %+v\nwant %+v", g, w)
	}
	// Free the key for the next input that imports it.
	if err := h.db.DeletePublicKey(context.Background(), ivsrt.PublicKeyARN(out.PublicKey.Arn)); err != nil {
		tb.Fatalf("DeletePublicKey: %v", err)
	}
}

func fuzzNonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// tags runs one tags request and checks its answer; acknowledged changes
// must show in ListTagsForResource.
func (h *fuzzHarness) tags(tb testing.TB, method, escapedARN, query string, body []byte) {
	tb.Helper()
	target := "/tags/" + escapedARN
	if query != "" {
		target += "?" + query
	}
	r, ok := h.do(tb, method, target, body)
	if !ok {
		return
	}
	what := method + " " + target
	h.check(tb, what, r)
	if r.status != http.StatusOK || (method != http.MethodPost && method != http.MethodDelete) {
		return
	}
	// Read back over the same path: the ARN as the server understood it.
	after, _ := h.do(tb, http.MethodGet, "/tags/"+escapedARN, nil)
	h.check(tb, "GET after "+what, after)
	if after.status != http.StatusOK {
		tb.Fatalf("GET after %s: got status %d, want 200: %s", what, after.status, after.body)
	}
	var now listTagsOutput
	if err := json.Unmarshal(after.body, &now); err != nil {
		tb.Fatalf("ListTagsForResource body: %v", err)
	}
	if method == http.MethodPost {
		var in tagResourceInput
		if err := json.Unmarshal(body, &in); err != nil {
			tb.Fatalf("%s was acknowledged but its body does not decode: %v", what, err)
		}
		for k, v := range in.Tags {
			if got, ok := now.Tags[k]; !ok || got != v {
				tb.Fatalf("%s acknowledged tag %q=%q, but the resource has %q (present %v)", what, k, v, got, ok)
			}
		}
		return
	}
	req, _ := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
	for _, k := range req.URL.Query()["tagKeys"] {
		if _, ok := now.Tags[k]; ok {
			tb.Fatalf("%s acknowledged removing %q, but the resource still has it", what, k)
		}
	}
}

// fuzzValid holds a valid request for each operation.
var fuzzValid = map[string]string{
	"CreateStage": `{"name":"fuzz-stage_1","tags":{"team":"a","empty":""},` +
		`"participantTokenConfigurations":[{"userId":"u1","duration":60,"capabilities":["PUBLISH"],"attributes":{"k":"v"}},{}],` +
		`"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234",` +
		`"mediaTypes":["AUDIO_ONLY"],"thumbnailConfiguration":{"targetIntervalSeconds":30,"storage":["LATEST","SEQUENTIAL"],"recordingMode":"INTERVAL"},` +
		`"recordingReconnectWindowSeconds":10,"hlsConfiguration":{"targetSegmentDurationSeconds":4},"recordParticipantReplicas":true}}`,
	"GetStage":               `{"arn":"$ARN"}`,
	"UpdateStage":            `{"arn":"$ARN","name":"renamed","autoParticipantRecordingConfiguration":{"storageConfigurationArn":""}}`,
	"DeleteStage":            `{"arn":"$ARN"}`,
	"ListStages":             `{"maxResults":1,"nextToken":"$NEXT"}`,
	"CreateParticipantToken": `{"stageArn":"$ARN","userId":"üser","duration":20160,"capabilities":["SUBSCRIBE","PUBLISH"],"attributes":{"a":"b"}}`,
	"DisconnectParticipant":  `{"stageArn":"$ARN","participantId":"$PID","reason":"bye"}`,
	"GetParticipant":         `{"stageArn":"$ARN","sessionId":"$SID","participantId":"$PID"}`,
	"ListParticipants":       `{"stageArn":"$ARN","sessionId":"$SID","filterByPublished":true,"maxResults":100}`,
	"ListParticipantEvents":  `{"stageArn":"$ARN","sessionId":"$SID","participantId":"$PID","maxResults":1}`,
	"GetStageSession":        `{"stageArn":"$ARN","sessionId":"$SID"}`,
	"ListStageSessions":      `{"stageArn":"$ARN","maxResults":1}`,

	"CreateStorageConfiguration": `{"name":"fuzz-sc_1","s3":{"bucketName":"fuzz-bucket.1"},"tags":{"team":"a","empty":""}}`,
	"GetStorageConfiguration":    `{"arn":"$SCARN"}`,
	"ListStorageConfigurations":  `{"maxResults":1}`,
	"DeleteStorageConfiguration": `{"arn":"$SCARN"}`,

	"ImportPublicKey": `{"publicKeyMaterial":` + fuzzJSONString(fuzzImportKeyPEM) + `,"name":"fuzz-key_1","tags":{"team":"a","empty":""}}`,
	"GetPublicKey":    `{"arn":"$PKARN"}`,
	"ListPublicKeys":  `{"maxResults":1}`,
	"DeletePublicKey": `{"arn":"$PKARN"}`,

	"StartParticipantReplication": `{"sourceStageArn":"$ARN","destinationStageArn":"$DARN","participantId":"$PID",` +
		`"reconnectWindowSeconds":300,"attributes":{"k":"v"}}`,
	"StopParticipantReplication": `{"sourceStageArn":"$ARN","destinationStageArn":"$DARN","participantId":"$PID"}`,
	"ListParticipantReplicas":    `{"sourceStageArn":"$ARN","participantId":"$PID","maxResults":50,"nextToken":""}`,

	"CreateIngestConfiguration": `{"name":"fuzz-ingest_1","stageArn":"$ARN","userId":"u1","attributes":{"k":"v"},` +
		`"ingestProtocol":"RTMP","insecureIngest":true,"redundantIngest":true,"tags":{"team":"a","empty":""}}`,
	"GetIngestConfiguration":    `{"arn":"$IARN"}`,
	"UpdateIngestConfiguration": `{"arn":"$IARN","stageArn":"$DARN","redundantIngest":true}`,
	"DeleteIngestConfiguration": `{"arn":"$IARN","force":true}`,
	"ListIngestConfigurations":  `{"filterByStageArn":"$ARN","maxResults":1}`,

	"CreateEncoderConfiguration": `{"name":"fuzz-ec_1","video":{"width":1080,"height":1920,"framerate":29.97,"bitrate":8500000},` +
		`"tags":{"team":"a","empty":""}}`,
	"GetEncoderConfiguration":    `{"arn":"$ECARN"}`,
	"ListEncoderConfigurations":  `{"maxResults":1}`,
	"DeleteEncoderConfiguration": `{"arn":"$ECARN"}`,

	// The fuzz server runs no compositions: a valid start is refused
	// (ServiceQuotaExceeded) after every check.
	"StartComposition": `{"stageArn":"$ARN","idempotencyToken":"tok-1","layout":{"pip":{"pipPosition":"TOP_LEFT","pipWidth":320,"gridGap":4}},` +
		`"destinations":[{"name":"d1","s3":{"storageConfigurationArn":"$SCARN","encoderConfigurationArns":["$ECARN"],` +
		`"recordingConfiguration":{"hlsConfiguration":{"targetSegmentDurationSeconds":4},"format":"HLS"},` +
		`"thumbnailConfigurations":[{"targetIntervalSeconds":30,"storage":["LATEST"]}]}},` +
		`{"channel":{"channelArn":"arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234","encoderConfigurationArn":"$ECARN"}}],"tags":{"a":"b"}}`,
	"GetComposition":   `{"arn":"arn:aws:ivs:us-east-1:123456789012:composition/abcdABCD1234"}`,
	"ListCompositions": `{"filterByStageArn":"$ARN","maxResults":1}`,
	"StopComposition":  `{"arn":"arn:aws:ivs:us-east-1:123456789012:composition/abcdABCD1234"}`,
}

// fuzzJSONString returns s as a JSON string.
func fuzzJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fuzzBadValues replace, one at a time, each field of the valid requests.
var fuzzBadValues = []string{
	`null`, `1e400`, `-1`, `0`, `2147483648`, `9223372036854775808`, `1.5`, `true`, `[]`, `{}`,
	`""`, `"\u0000"`, `"ünï©ødé-😀"`, `"aws:x"`, `"` + strings.Repeat("a", 1100) + `"`,
	`{"aws:x":"y"}`, `[null]`, `["PUBLISH","PUBLISH","SUBSCRIBE"]`, `{"storageConfigurationArn":null}`,
}

// fuzzHostileBodies are sent to every operation as they are.
func fuzzHostileBodies() []string {
	return []string{
		``, ` `, `{}`, `null`, `[]`, `"x"`, `1e400`, `-1`, `{`, `}`, `{"arn":`, `{}{}`, `{}x`, `{"a":1}`,
		"\ufeff{}", "\xff\xfe", `{"arn":"\ud800"}`, "{\"arn\":\"\xff\"}",
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000),
		`{"tags":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		`{"tags":{"aws:x":"y"}}`, `{"tags":{"AWS:x":"y"}}`, `{"tags":{"":"y"}}`,
		`{"arn":"x","arn":"$ARN"}`, `{"arn":"$ARN","ARN":"nope"}`, `{"stageArn":"$ARN","stageArn":null}`,
		`{"maxResults":1e400}`, `{"maxResults":-1}`, `{"maxResults":2147483648}`, `{"maxResults":"1"}`,
		`{"nextToken":"AQ"}`, `{"nextToken":"$NEXT$NEXT"}`, `{"nextToken":"` + strings.Repeat("A", 1025) + `"}`,
		`{"stageArn":"$ARN","duration":0}`, `{"stageArn":"$ARN","duration":20161}`, `{"stageArn":"$ARN","duration":1e400}`,
		`{"stageArn":"$ARN","attributes":{"k":"` + strings.Repeat("v", 1024) + `"}}`,
		`{"stageArn":"$ARN","capabilities":["PUBLISH","SUBSCRIBE","PUBLISH"]}`,
		// The largest token the limits allow: every character one that
		// JSON escapes to six bytes.
		`{"stageArn":"$ARN","userId":"` + strings.Repeat(`\u2028`, ivsrt.MaxUserIDLength) +
			`","attributes":{"k":"` + strings.Repeat(`\u0001`, ivsrt.MaxAttributesBytes-1) + `"}}`,
		`{"participantTokenConfigurations":[{"userId":"` + strings.Repeat(`<`, ivsrt.MaxUserIDLength) +
			`","attributes":{"` + strings.Repeat(`&`, ivsrt.MaxAttributesBytes/2) + `":"` + strings.Repeat(`>`, ivsrt.MaxAttributesBytes/2) + `"}}]}`,
		`{"stageArn":"$ARN","sessionId":"$SID","filterByUserId":"u","filterByState":"CONNECTED"}`,
		`{"stageArn":"$ARN","sessionId":"$SID","filterByPublished":false}`,
		`{"stageArn":"$ARN","sessionId":"$SID","filterByRecordingState":"ACTIVE"}`,
		`{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/nosuchstage1","sessionId":"st-aaaaaaaaaaaaa","participantId":"x"}`,
		`{"participantTokenConfigurations":[` + strings.Repeat(`{},`, 12) + `{}]}`,
		`{"participantTokenConfigurations":[null]}`,
		`{"autoParticipantRecordingConfiguration":{}}`,
		`{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"","thumbnailConfiguration":{"targetIntervalSeconds":0}}}`,
		`{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"","hlsConfiguration":{"targetSegmentDurationSeconds":0}}}`,
		`{"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"","mediaTypes":[]}}`,
		`{"name":"` + strings.Repeat("n", 129) + `"}`, `{"name":"spa ce"}`, `{"name":null,"tags":null}`,
		`{"publicKeyMaterial":` + fuzzJSONString(fuzzFixtureKeyPEM) + `}`,
		`{"publicKeyMaterial":` + fuzzJSONString(fuzzP256KeyPEM) + `}`,
		`{"publicKeyMaterial":` + fuzzJSONString(strings.ReplaceAll(fuzzImportKeyPEM, "\n", "\r\n")) + `}`,
		`{"publicKeyMaterial":` + fuzzJSONString("x"+strings.TrimSuffix(fuzzImportKeyPEM, "\n")+"y") + `}`,
		`{"publicKeyMaterial":` + fuzzJSONString(strings.Replace(fuzzImportKeyPEM, "MHYw", "MHYx", 1)) + `}`,
		`{"publicKeyMaterial":` + fuzzJSONString(strings.Replace(fuzzImportKeyPEM, "MHYw", "MH=w", 1)) + `}`,
		`{"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\n` + strings.Repeat("A", 100<<10) + `\n-----END PUBLIC KEY-----"}`,
		`{"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\n\n-----END PUBLIC KEY-----"}`,
		`{"arn":"arn:aws:ivs:us-east-1:123456789012:public-key/noSuchKey123"}`,
		`{"sourceStageArn":"$ARN","destinationStageArn":"$ARN","participantId":"$PID"}`,
		`{"sourceStageArn":"$DARN","destinationStageArn":"$ARN","participantId":"$PID"}`,
		`{"sourceStageArn":"$ARN","destinationStageArn":"$DARN","participantId":"$PID","reconnectWindowSeconds":301}`,
		`{"sourceStageArn":"$ARN","destinationStageArn":"$DARN","participantId":"$PID","reconnectWindowSeconds":-1}`,
		`{"sourceStageArn":"$ARN","destinationStageArn":"$DARN","participantId":"$PID","attributes":{"k":"` + strings.Repeat("v", 1024) + `"}}`,
		`{"sourceStageArn":"$ARN","destinationStageArn":"arn:aws:ivs:us-east-1:123456789012:stage/nosuchstage1","participantId":"$PID"}`,
		`{"sourceStageArn":"$ARN","participantId":"$PID","maxResults":51}`,
		`{"sourceStageArn":"$ARN","participantId":"under_score"}`,
		`{"tags":{"` + strings.Repeat("k", 100<<10) + `":1}}`,
		`{"video":{"width":1920,"height":1920}}`, `{"video":{"height":1920}}`, `{"video":{"width":1281}}`,
		`{"video":{"width":1e400}}`, `{"video":{"framerate":1e39}}`, `{"video":{"framerate":-0}}`, `{"video":{"framerate":1e-46}}`,
		`{"video":{"framerate":60.000001}}`, `{"video":{"framerate":"30"}}`, `{"video":{"bitrate":8500001}}`, `{"video":[]}`,
		`{"video":{"width":2,"height":2,"framerate":1,"bitrate":1}}`, `{"video":{"width":-9223372036854775808}}`,
		`{"attributes":{"` + strings.Repeat("k", 100<<10) + `":[]},"participantTokenConfigurations":[{"attributes":{"` + strings.Repeat("k", 100<<10) + `":{}}}]}`,
	}
}

// fuzzFieldVariants returns valid with each top-level field replaced, in
// turn, by each of fuzzBadValues, and with each field left out.
func fuzzFieldVariants(tb testing.TB, valid string) []string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(valid), &fields); err != nil {
		tb.Fatalf("seed %s: %v", valid, err)
	}
	var out []string
	for name := range fields {
		m := maps.Clone(fields)
		delete(m, name)
		b, _ := json.Marshal(m)
		out = append(out, string(b))
		for _, bad := range fuzzBadValues {
			m[name] = json.RawMessage(bad)
			b, err := json.Marshal(m)
			if err != nil {
				tb.Fatalf("seed %s=%s: %v", name, bad, err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

func FuzzOperation(f *testing.F) {
	for i, op := range fuzzOps {
		f.Add(uint8(i), []byte(fuzzValid[op]))
		for _, body := range fuzzFieldVariants(f, fuzzValid[op]) {
			f.Add(uint8(i), []byte(body))
		}
		for _, body := range fuzzHostileBodies() {
			f.Add(uint8(i), []byte(body))
		}
	}
	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		h.ensureFixture(t)
		h.operation(t, fuzzOps[int(op)%len(fuzzOps)], []byte(h.expand(string(body))))
	})
}

func FuzzTags(f *testing.F) {
	escaped := url.PathEscape(string(fuzzFixtureARN))
	if escaped == string(fuzzFixtureARN) {
		f.Fatal("the fixture ARN should need escaping")
	}
	escapedStorage := url.PathEscape(string(fuzzFixtureStorage))
	escapedKey := url.PathEscape(string(fuzzFixturePublicKey))
	escapedEncoder := url.PathEscape(string(fuzzFixtureEncoder))
	seeds := []struct{ method, arn, query, body string }{
		{"GET", "$ARN", "", ""},
		{"POST", "$ARN", "", `{"tags":{"a":"b","c":""}}`},
		{"GET", "$SCARN", "", ""},
		{"POST", "$SCARN", "", `{"tags":{"a":"b"}}`},
		{"DELETE", "$SCARN", "tagKeys=a&tagKeys=env", ""},
		{"GET", "arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Astorage-configuration%2FnoSuchStore1", "", ""},
		{"GET", "$PKARN", "", ""},
		{"POST", "$PKARN", "", `{"tags":{"a":"b"}}`},
		{"DELETE", "$PKARN", "tagKeys=a&tagKeys=env", ""},
		{"GET", "arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Apublic-key%2FnoSuchKey123", "", ""},
		{"GET", "$ECARN", "", ""},
		{"POST", "$ECARN", "", `{"tags":{"a":"b"}}`},
		{"DELETE", "$ECARN", "tagKeys=a&tagKeys=env", ""},
		{"GET", "arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Aencoder-configuration%2FnoSuchCodec1", "", ""},
		{"DELETE", "$ARN", "tagKeys=a&tagKeys=b", ""},
		{"DELETE", "$ARN", "tagKeys=env", ""},
		{"GET", strings.ReplaceAll(escaped, ":", "%3A"), "", ""},
		{"GET", string(fuzzFixtureARN), "", ""},
		{"POST", string(fuzzFixtureARN), "", `{"tags":{"raw":"slash"}}`},
		{"GET", "arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Astage%2FnoSuchStage1", "", ""},
		{"GET", "", "", ""},
		{"GET", "%zz", "", ""},
		{"GET", "%00", "", ""},
		{"GET", "$ARN%2F..%2F..", "", ""},
		{"GET", "$ARN/extra", "", ""},
		{"GET", "$ARN", "X-Amz-Signature=00", ""},
		{"POST", "$ARN", "", `{"tags":{"aws:x":"y"}}`},
		{"POST", "$ARN", "", `{"tags":{"":"y"}}`},
		{"POST", "$ARN", "", `{"tags":null}`},
		{"POST", "$ARN", "", `{"tags":[]}`},
		{"POST", "$ARN", "", `{"tags":{"a":1}}`},
		{"POST", "$ARN", "", `{"tags":{"a":"1","a":"2"}}`},
		{"POST", "$ARN", "", `{"tags":{"k\u0000":"v\u0000"}}`},
		{"POST", "$ARN", "", `{"tags":{"ünï":"😀"}}`},
		{"POST", "$ARN", "", `{}`},
		{"POST", "$ARN", "", ``},
		{"POST", "$ARN", "", `{"tags":{"` + strings.Repeat("k", 129) + `":"v"}}`},
		{"POST", "$ARN", "", `{"tags":{"k":"` + strings.Repeat("v", 257) + `"}}`},
		{"POST", "$ARN", "", `{"tags":` + fuzzTagMap(51) + `}`},
		{"POST", "$ARN", "", strings.Repeat("[", 10001)},
		{"DELETE", "$ARN", "", ""},
		{"DELETE", "$ARN", "tagKeys=", ""},
		{"DELETE", "$ARN", "tagKeys=aws:x", ""},
		{"DELETE", "$ARN", "tagKeys=%zz", ""},
		{"DELETE", "$ARN", "tagKeys=a;b", ""},
		{"DELETE", "$ARN", strings.Repeat("tagKeys=k&", 51) + "tagKeys=k", ""},
		{"PUT", "$ARN", "", `{"tags":{"a":"b"}}`},
		{"PATCH", "$ARN", "", ""},
		{"HEAD", "$ARN", "", ""},
		{"OPTIONS", "$ARN", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.arn, s.query, []byte(s.body))
	}
	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, method, escapedARN, query string, body []byte) {
		h.ensureFixture(t)
		escapedARN = strings.ReplaceAll(escapedARN, "$SCARN", escapedStorage)
		escapedARN = strings.ReplaceAll(escapedARN, "$PKARN", escapedKey)
		escapedARN = strings.ReplaceAll(escapedARN, "$ECARN", escapedEncoder)
		escapedARN = strings.ReplaceAll(escapedARN, "$ARN", escaped)
		h.tags(t, method, escapedARN, h.expand(query), []byte(h.expand(string(body))))
	})
}

// fuzzTagMap returns a JSON object of n distinct tags.
func fuzzTagMap(n int) string {
	tags := make(map[string]string, n)
	for i := range n {
		tags[fmt.Sprintf("k%05d", i)] = "v"
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

func TestOversizeAndHostileBodies(t *testing.T) {
	h := newFuzzHarness(t)
	ctx := context.Background()
	countStages := func() int {
		t.Helper()
		stages, _, err := h.db.ListStages(ctx, ivsrt.Page{Limit: 1000})
		if err != nil {
			t.Fatalf("list stages: %v", err)
		}
		return len(stages)
	}

	t.Run("300KiB body", func(t *testing.T) {
		before := countStages()
		body := `{"name":"big","tags":{"k":"` + strings.Repeat("a", 300<<10) + `"}}`
		r := h.operation(t, "CreateStage", []byte(body))
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("got status %d, want 413", r.status)
		}
		if got := r.header.Get("x-amzn-ErrorType"); got != "ValidationException" {
			t.Errorf("got x-amzn-ErrorType %q, want ValidationException", got)
		}
		if after := countStages(); after != before {
			t.Errorf("got %d stages after a refused body, want %d", after, before)
		}
	})

	t.Run("100000-deep arrays", func(t *testing.T) {
		const depth = 100000
		deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		for _, body := range []string{deep, `{"tags":` + deep + `}`, `{"name":` + deep + `}`} {
			for _, op := range []string{"CreateStage", "ListStages", "CreateParticipantToken"} {
				r := h.operation(t, op, []byte(body))
				if r.status != http.StatusBadRequest {
					t.Errorf("%s with %d bytes of nesting: got status %d, want 400", op, len(body), r.status)
				}
			}
		}
		r, _ := h.do(t, http.MethodPost, "/tags/"+url.PathEscape(string(fuzzFixtureARN)), []byte(deep))
		h.check(t, "TagResource", r)
		if r.status != http.StatusBadRequest {
			t.Errorf("TagResource with deep nesting: got status %d, want 400", r.status)
		}
	})

	t.Run("10000 tags", func(t *testing.T) {
		before := countStages()
		for _, prefix := range []string{"k", "aws:k"} {
			tags := make(map[string]string, 10000)
			for i := range 10000 {
				tags[fmt.Sprintf("%s%05d", prefix, i)] = "v"
			}
			body, _ := json.Marshal(map[string]any{"name": "many-tags", "tags": tags})
			start := time.Now()
			r := h.operation(t, "CreateStage", body)
			elapsed := time.Since(start)
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s…: got status %d, want 400", prefix, r.status)
			}
			if elapsed > 2*time.Second {
				t.Errorf("%s…: took %v, want well under 2s", prefix, elapsed)
			}
			if len(r.body) > 16<<10 {
				t.Errorf("%s…: got a %d-byte error for a %d-byte request, want a short one", prefix, len(r.body), len(body))
			}
		}
		if after := countStages(); after != before {
			t.Errorf("got %d stages after refused requests, want %d", after, before)
		}
	})
}

// fuzzReplicas is the media plane of the fuzz harness: it carries no
// media, but starts and stops replications in the store as the real one
// does, its replica joining and leaving the destination.
type fuzzReplicas struct{ db *sqlite.DB }

func (fuzzReplicas) DisconnectParticipant(context.Context, ivsrt.StageARN, ivsrt.ParticipantID, string) error {
	return nil
}
func (fuzzReplicas) CloseStage(context.Context, ivsrt.StageARN) error { return nil }

func (f fuzzReplicas) StartReplication(ctx context.Context, req *ivsrt.ReplicationRequest) (*ivsrt.ParticipantReplication, error) {
	joined := &ivsrt.Event{StageARN: req.DestinationStageARN, Name: ivsrt.EventJoined, ParticipantID: req.ParticipantID,
		UserID: req.UserID, Attributes: req.Attributes, Replica: true, SourceStageARN: req.SourceStageARN}
	if err := f.db.RecordEvent(ctx, joined); err != nil {
		return nil, err
	}
	r := &ivsrt.ParticipantReplication{SourceStageARN: req.SourceStageARN, ParticipantID: req.ParticipantID,
		DestinationStageARN: req.DestinationStageARN, DestinationSessionID: joined.SessionID, ReconnectWindowSeconds: req.ReconnectWindowSeconds}
	err := f.db.StartParticipantReplication(ctx, r, req.Quota)
	if err != nil {
		f.db.RecordEvent(ctx, &ivsrt.Event{StageARN: req.DestinationStageARN, Name: ivsrt.EventLeft, ParticipantID: req.ParticipantID, Replica: true})
		return nil, err
	}
	return r, nil
}

func (f fuzzReplicas) StopReplication(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN) error {
	if _, err := f.db.StopParticipantReplication(ctx, source, id, dest); err != nil {
		return err
	}
	return f.db.RecordEvent(ctx, &ivsrt.Event{StageARN: dest, Name: ivsrt.EventLeft, ParticipantID: id, Replica: true})
}

// checkReplication checks a replication that was started or stopped: the
// headers the output shape declares, and the replication listed in its
// state. A started one is stopped again, for the next input to start.
func (h *fuzzHarness) checkReplication(tb testing.TB, op string, request []byte, r fuzzResponse) {
	tb.Helper()
	if string(r.body) != "{}" || r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Frame-Options") != "DENY" {
		tb.Fatalf("%s answered %s with headers %v, want {} and the declared headers", op, r.body, r.header)
	}
	var in replicationInput
	if err := json.Unmarshal(request, &in); err != nil || in.SourceStageArn == nil || in.DestinationStageArn == nil || in.ParticipantID == nil {
		tb.Fatalf("%s answered 200 to %.500q (%v)", op, request, err)
	}
	source, dest, id := ivsrt.StageARN(*in.SourceStageArn), ivsrt.StageARN(*in.DestinationStageArn), ivsrt.ParticipantID(*in.ParticipantID)
	ctx := context.Background()
	rs, _, err := h.db.ListParticipantReplicas(ctx, source, id, ivsrt.Page{Limit: 1000})
	if err != nil || len(rs) == 0 {
		tb.Fatalf("%s acknowledged, but no replication is listed (%v)", op, err)
	}
	last := rs[len(rs)-1]
	want := ivsrt.ReplicationStopped
	if op == "StartParticipantReplication" {
		want = ivsrt.ReplicationActive
	}
	if last.DestinationStageARN != dest || last.State != want {
		tb.Fatalf("%s acknowledged, but the replication is listed as %+v, want state %s", op, last, want)
	}
	if want == ivsrt.ReplicationActive {
		if err := (fuzzReplicas{h.db}).StopReplication(ctx, source, id, dest); err != nil {
			tb.Fatalf("stop the replication %s started: %v", op, err)
		}
	}
}
