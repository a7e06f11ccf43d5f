package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/smithy-go"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/sqlite"
	"github.com/ivsrt/ivsrt/token"
)

// The ingest configuration operations, through the AWS SDK for Go against
// a Server over a real SQLite store, with the media plane's parts as test
// doubles. The SDK of this module predates redundant ingest: requests that
// use it are signed by hand.

const (
	ingestRegion  = "us-east-1"
	ingestAccount = "123456789012"
	ingestRTMP    = "rtmp://ingest.example.test/app/"
	ingestRTMPS   = "rtmps://ingest.example.test:443/app/"
)

var (
	ingestARNPattern = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:ingest-configuration/[a-zA-Z0-9]{12}$`)
	participantIDRE  = regexp.MustCompile(`^[a-zA-Z0-9]{12}$`)
)

// streamKeyPattern is the form of the stream keys of configuration arn.
func streamKeyPattern(arn string) *regexp.Regexp {
	id := arn[strings.LastIndex(arn, "/")+1:]
	return regexp.MustCompile(`^rt_123456789012_us-east-1_` + id + `_[a-zA-Z0-9]{32}$`)
}

// fakeIngestMedia is the media plane: it records what it is asked, and
// DisconnectIngest ends the configuration's publishing in the store as
// the real one does, unless told to fail.
type fakeIngestMedia struct {
	db *sqlite.DB

	mu            sync.Mutex
	disconnected  []ivsrt.IngestConfigurationARN
	participants  []ivsrt.ParticipantID
	closed        []ivsrt.StageARN
	stageAtClose  map[ivsrt.IngestConfigurationARN]ivsrt.StageARN // what the store said when CloseStage ran
	watched       []ivsrt.IngestConfigurationARN
	disconnectErr error
}

func (f *fakeIngestMedia) DisconnectIngest(ctx context.Context, arn ivsrt.IngestConfigurationARN) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disconnectErr != nil {
		return f.disconnectErr
	}
	f.disconnected = append(f.disconnected, arn)
	ic, err := f.db.GetIngestConfiguration(ctx, arn)
	if err != nil {
		return err
	}
	for _, c := range ic.Credentials {
		if err := f.db.SetIngestActive(ctx, arn, c.ParticipantID, false); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeIngestMedia) DisconnectParticipant(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.participants = append(f.participants, id)
	return nil
}

func (f *fakeIngestMedia) CloseStage(ctx context.Context, stage ivsrt.StageARN) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, stage)
	f.stageAtClose = map[ivsrt.IngestConfigurationARN]ivsrt.StageARN{}
	for _, arn := range f.watched {
		ic, err := f.db.GetIngestConfiguration(ctx, arn)
		if err != nil {
			return err
		}
		f.stageAtClose[arn] = ic.StageARN
	}
	return nil
}

type ingestHarness struct {
	srv    *Server
	http   *httptest.Server
	db     *sqlite.DB
	media  *fakeIngestMedia
	client *ivsrealtime.Client
	creds  aws.Credentials
	logs   *fuzzLog
}

// newIngestHarness serves the API with cfg's RTMP endpoints (the harness
// fills in the rest) and the options given, besides the fake media plane.
func newIngestHarness(t *testing.T, rtmp, rtmps string, opts ...func(*ingestHarness) Option) *ingestHarness {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "ivsrt.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := token.LoadOrCreateKey(filepath.Join(dir, "token-signing-key.pem"))
	if err != nil {
		t.Fatalf("load signing key: %v", err)
	}
	h := &ingestHarness{db: db, media: &fakeIngestMedia{db: db}, logs: &fuzzLog{},
		creds: aws.Credentials{AccessKeyID: "AKIDINGESTEXAMPLE", SecretAccessKey: "ingest-secret"}}
	verifier := &SigV4Verifier{
		Credentials: []Credential{{AccessKeyID: h.creds.AccessKeyID, SecretAccessKey: h.creds.SecretAccessKey}},
		Service:     "ivs",
	}
	options := []Option{WithMediaPlane(h.media), WithLogger(slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	for _, o := range opts {
		options = append(options, o(h))
	}
	h.srv, err = NewServer(db, token.NewIssuer(key), verifier, Config{
		Region:        ingestRegion,
		AccountID:     ingestAccount,
		PublicURL:     "http://ivs.ingest.test",
		RTMPURL:       rtmp,
		RTMPSURL:      rtmps,
		PaginationKey: bytes.Repeat([]byte{9}, 32),
	}, options...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	h.http = httptest.NewServer(h.srv)
	t.Cleanup(h.http.Close)
	h.client = ivsrealtime.NewFromConfig(aws.Config{
		Region:      ingestRegion,
		Credentials: credentials.NewStaticCredentialsProvider(h.creds.AccessKeyID, h.creds.SecretAccessKey, ""),
	}, func(o *ivsrealtime.Options) {
		o.BaseEndpoint = aws.String(h.http.URL)
		o.RetryMaxAttempts = 1
	})
	return h
}

// withDisconnector has the server disconnect ingest through the fake
// media plane.
func withDisconnector(h *ingestHarness) Option { return WithIngestDisconnector(h.media) }

// raw sends op with body, signed as an SDK signs it, and returns the
// status and body.
func (h *ingestHarness) raw(t *testing.T, op string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.http.URL+"/"+op, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(t.Context(), h.creds, req, hex.EncodeToString(sum[:]), "ivs", ingestRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// rawIngest sends op and decodes the ingestConfiguration it answers with.
func (h *ingestHarness) rawIngest(t *testing.T, op string, body string) map[string]any {
	t.Helper()
	status, out := h.raw(t, op, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: got status %d: %s", op, body, status, out)
	}
	var v struct {
		IngestConfiguration map[string]any `json:"ingestConfiguration"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.IngestConfiguration == nil {
		t.Fatalf("%s: body %s: %v", op, out, err)
	}
	return v.IngestConfiguration
}

func (h *ingestHarness) createStage(t *testing.T, name string) string {
	t.Helper()
	out, err := h.client.CreateStage(t.Context(), &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	return aws.ToString(out.Stage.Arn)
}

func (h *ingestHarness) create(t *testing.T, in *ivsrealtime.CreateIngestConfigurationInput) *types.IngestConfiguration {
	t.Helper()
	out, err := h.client.CreateIngestConfiguration(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateIngestConfiguration: %v", err)
	}
	return out.IngestConfiguration
}

func (h *ingestHarness) get(t *testing.T, arn *string) *types.IngestConfiguration {
	t.Helper()
	out, err := h.client.GetIngestConfiguration(t.Context(), &ivsrealtime.GetIngestConfigurationInput{Arn: arn})
	if err != nil {
		t.Fatalf("GetIngestConfiguration: %v", err)
	}
	return out.IngestConfiguration
}

// setActive marks the credential of participant id publishing, as the
// media plane does when an encoder starts.
func (h *ingestHarness) setActive(t *testing.T, arn *string, id *string, active bool) {
	t.Helper()
	if err := h.db.SetIngestActive(t.Context(), ivsrt.IngestConfigurationARN(*arn), ivsrt.ParticipantID(*id), active); err != nil {
		t.Fatalf("SetIngestActive: %v", err)
	}
}

func rtmps() *ivsrealtime.CreateIngestConfigurationInput {
	return &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps}
}

// wantAPIError checks that err is the SDK's error code with status, its
// message containing each of msg.
func wantAPIError(t *testing.T, what string, err error, code string, status int, msg ...string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("%s: got %v, want %s", what, err, code)
		return
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("%s: got %s (%v), want %s", what, apiErr.ErrorCode(), err, code)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != status {
		t.Errorf("%s: got status %d, want %d", what, re.HTTPStatusCode(), status)
	}
	// The typed errors carry the message in ExceptionMessage.
	var message string
	var (
		validation *types.ValidationException
		notFound   *types.ResourceNotFoundException
		conflict   *types.ConflictException
		internal   *types.InternalServerException
	)
	switch {
	case errors.As(err, &validation):
		message = aws.ToString(validation.ExceptionMessage)
	case errors.As(err, &notFound):
		message = aws.ToString(notFound.ExceptionMessage)
	case errors.As(err, &conflict):
		message = aws.ToString(conflict.ExceptionMessage)
	case errors.As(err, &internal):
		message = aws.ToString(internal.ExceptionMessage)
	}
	for _, m := range msg {
		if !strings.Contains(message, m) {
			t.Errorf("%s: message %q does not contain %q", what, message, m)
		}
	}
}

func TestIngestConfigurationLifecycle(t *testing.T) {
	h := newIngestHarness(t, ingestRTMP, ingestRTMPS)
	ctx := t.Context()
	stage := h.createStage(t, "studio")

	ic := h.create(t, &ivsrealtime.CreateIngestConfigurationInput{
		Name:           aws.String("camera_1-a"),
		StageArn:       aws.String(stage),
		UserId:         aws.String("encoder-7"),
		Attributes:     map[string]string{"role": "camera", "empty": ""},
		IngestProtocol: types.IngestProtocolRtmps,
		Tags:           map[string]string{"team": "video"},
	})
	arn := aws.ToString(ic.Arn)
	if !ingestARNPattern.MatchString(arn) {
		t.Errorf("arn: got %q, want %v", arn, ingestARNPattern)
	}
	if key := aws.ToString(ic.StreamKey); !streamKeyPattern(arn).MatchString(key) {
		t.Errorf("streamKey: got %q, want %v", key, streamKeyPattern(arn))
	}
	if !participantIDRE.MatchString(aws.ToString(ic.ParticipantId)) {
		t.Errorf("participantId: got %q, want %v", aws.ToString(ic.ParticipantId), participantIDRE)
	}
	want := &types.IngestConfiguration{
		Arn:            ic.Arn,
		Name:           aws.String("camera_1-a"),
		IngestProtocol: types.IngestProtocolRtmps,
		StreamKey:      ic.StreamKey,
		StageArn:       aws.String(stage),
		ParticipantId:  ic.ParticipantId,
		State:          types.IngestConfigurationStateInactive,
		UserId:         aws.String("encoder-7"),
		Attributes:     map[string]string{"role": "camera", "empty": ""},
		Tags:           map[string]string{"team": "video"},
	}
	checkIngestSDK(t, "CreateIngestConfiguration", ic, want)
	checkIngestSDK(t, "GetIngestConfiguration", h.get(t, ic.Arn), want)

	// The wire shape: stageArn and userId always, redundantIngest false,
	// no redundant credentials.
	got := h.rawIngest(t, "GetIngestConfiguration", `{"arn":"`+arn+`"}`)
	if got["redundantIngest"] != false {
		t.Errorf("redundantIngest: got %v, want false", got["redundantIngest"])
	}
	if _, ok := got["redundantIngestCredentials"]; ok {
		t.Errorf("redundantIngestCredentials present without redundant ingest: %v", got)
	}
	bare := h.rawIngest(t, "CreateIngestConfiguration", `{"ingestProtocol":"RTMPS"}`)
	for field, want := range map[string]any{"name": "", "stageArn": "", "userId": "", "state": "INACTIVE", "ingestProtocol": "RTMPS"} {
		if bare[field] != want {
			t.Errorf("a bare configuration's %s: got %#v, want %#v", field, bare[field], want)
		}
	}
	if tags, ok := bare["tags"].(map[string]any); !ok || len(tags) != 0 {
		t.Errorf("a bare configuration's tags: got %#v, want {}", bare["tags"])
	}
	bareARN := bare["arn"].(string)

	// List shows summaries: no stream key anywhere.
	list, err := h.client.ListIngestConfigurations(ctx, &ivsrealtime.ListIngestConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListIngestConfigurations: %v", err)
	}
	if len(list.IngestConfigurations) != 2 || list.NextToken != nil {
		t.Fatalf("ListIngestConfigurations: got %d, next %v, want 2 and no next", len(list.IngestConfigurations), list.NextToken)
	}
	s := list.IngestConfigurations[0]
	if aws.ToString(s.Arn) != arn || aws.ToString(s.Name) != "camera_1-a" || aws.ToString(s.StageArn) != stage ||
		aws.ToString(s.ParticipantId) != aws.ToString(ic.ParticipantId) || s.State != types.IngestConfigurationStateInactive ||
		s.IngestProtocol != types.IngestProtocolRtmps || aws.ToString(s.UserId) != "encoder-7" {
		t.Errorf("summary: got %+v", s)
	}
	if aws.ToString(list.IngestConfigurations[1].Arn) != bareARN {
		t.Errorf("second summary: got %s, want %s", aws.ToString(list.IngestConfigurations[1].Arn), bareARN)
	}
	_, body := h.raw(t, "ListIngestConfigurations", `{}`)
	for _, leak := range []string{"streamKey", aws.ToString(ic.StreamKey), bare["streamKey"].(string), "attributes", "tags"} {
		if bytes.Contains(body, []byte(leak)) {
			t.Errorf("ListIngestConfigurations shows %q: %s", leak, body)
		}
	}

	// Tags, through the operations every resource has.
	if _, err := h.client.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: ic.Arn, Tags: map[string]string{"added": "1"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := h.client.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: ic.Arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	tags, err := h.client.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: ic.Arn})
	if err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	if want := map[string]string{"added": "1"}; !equalMaps(tags.Tags, want) {
		t.Errorf("ListTagsForResource: got %v, want %v", tags.Tags, want)
	}
	want.Tags = map[string]string{"added": "1"}

	// Update changes the stage, nothing else.
	other := h.createStage(t, "other")
	up, err := h.client.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String(other)})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration: %v", err)
	}
	want.StageArn = aws.String(other)
	checkIngestSDK(t, "UpdateIngestConfiguration", up.IngestConfiguration, want)
	up, err = h.client.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String("")})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration to no stage: %v", err)
	}
	want.StageArn = aws.String("")
	checkIngestSDK(t, "UpdateIngestConfiguration to no stage", up.IngestConfiguration, want)
	checkIngestSDK(t, "GetIngestConfiguration after the updates", h.get(t, ic.Arn), want)

	// Delete.
	if _, err := h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn}); err != nil {
		t.Fatalf("DeleteIngestConfiguration: %v", err)
	}
	_, err = h.client.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	wantAPIError(t, "GetIngestConfiguration after delete", err, "ResourceNotFoundException", http.StatusNotFound, "Ingest configuration not found", arn)
	_, err = h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn})
	wantAPIError(t, "DeleteIngestConfiguration again", err, "ResourceNotFoundException", http.StatusNotFound, arn)
	_, err = h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true})
	wantAPIError(t, "DeleteIngestConfiguration again with force", err, "ResourceNotFoundException", http.StatusNotFound, arn)
	_, err = h.client.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String(stage)})
	wantAPIError(t, "UpdateIngestConfiguration after delete", err, "ResourceNotFoundException", http.StatusNotFound, arn)
	_, err = h.client.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: ic.Arn})
	wantAPIError(t, "ListTagsForResource after delete", err, "ResourceNotFoundException", http.StatusNotFound, arn)

	// Stream keys are secrets: nothing the server logged shows one.
	for _, key := range []string{aws.ToString(ic.StreamKey), bare["streamKey"].(string)} {
		if strings.Contains(h.logs.String(), key) {
			t.Errorf("the server logged a stream key; log:\n%s", h.logs.String())
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func checkIngestSDK(t *testing.T, what string, got, want *types.IngestConfiguration) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func TestIngestConfigurationValidation(t *testing.T) {
	h := newIngestHarness(t, "", "")
	ctx := t.Context()
	const (
		stageRule = "Member must satisfy regular expression pattern: ^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+$"
		arnRule   = "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:ingest-configuration/[a-zA-Z0-9-]+"
		channel   = "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234"
		stageARN  = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
	)
	bigAttributes := map[string]string{"a": strings.Repeat("x", 1024)}
	manyTags := map[string]string{}
	for i := range 51 {
		manyTags[string(rune('a'+i%26))+strings.Repeat("k", i)] = "v"
	}
	creates := []struct {
		name string
		in   *ivsrealtime.CreateIngestConfigurationInput
		msg  []string
	}{
		{"unknown protocol", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: "rtmps"},
			[]string{"Value 'rtmps' at 'ingestProtocol' failed to satisfy constraint: Member must satisfy enum value set: [RTMP, RTMPS]"}},
		{"RTMP, secure", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmp},
			[]string{"Value 'false' at 'insecureIngest' failed to satisfy constraint: Member must be true when ingestProtocol is RTMP"}},
		{"name pattern", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, Name: aws.String("a b")},
			[]string{"Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"name 129", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, Name: aws.String(strings.Repeat("a", 129))},
			[]string{"at 'name' failed to satisfy constraint: Member must have length less than or equal to 128"}},
		{"stage of another kind", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(channel)},
			[]string{"Value '" + channel + "' at 'stageArn' failed to satisfy constraint: " + stageRule}},
		{"stage 129", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(stageARN + strings.Repeat("a", 129-len(stageARN)))},
			[]string{"at 'stageArn' failed to satisfy constraint: Member must have length less than or equal to 128"}},
		{"userId 129", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, UserId: aws.String(strings.Repeat("u", 129))},
			[]string{"at 'userId' failed to satisfy constraint: Member must have length less than or equal to 128"}},
		{"attributes over 1 KB", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, Attributes: bigAttributes},
			[]string{"Value at 'attributes' failed to satisfy constraint: Member must have a total size of keys and values less than or equal to 1024 bytes, got 1025"}},
		{"reserved tag", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, Tags: map[string]string{"aws:x": "y"}},
			[]string{"Value 'aws:x' at 'tags.key' failed to satisfy constraint: Member must not start with the reserved prefix 'aws:'"}},
		{"51 tags", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, Tags: manyTags},
			[]string{"Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"}},
		{"everything wrong", &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmp, Name: aws.String("a.b"), StageArn: aws.String(channel)},
			[]string{"3 validation errors detected", "'name'", "'stageArn'", "'insecureIngest'"}},
	}
	for _, tt := range creates {
		t.Run("Create "+tt.name, func(t *testing.T) {
			_, err := h.client.CreateIngestConfiguration(ctx, tt.in)
			wantAPIError(t, tt.name, err, "ValidationException", http.StatusBadRequest, tt.msg...)
		})
	}
	// The SDK checks required members itself: sent without them, the
	// server refuses.
	for _, tt := range []struct{ op, body, msg string }{
		{"CreateIngestConfiguration", `{}`, "Value null at 'ingestProtocol' failed to satisfy constraint: Member must not be null"},
		{"GetIngestConfiguration", `{}`, "Value null at 'arn' failed to satisfy constraint: Member must not be null"},
		{"UpdateIngestConfiguration", `{"stageArn":""}`, "Value null at 'arn' failed to satisfy constraint: Member must not be null"},
		{"DeleteIngestConfiguration", `{"force":true}`, "Value null at 'arn' failed to satisfy constraint: Member must not be null"},
	} {
		if status, body := h.raw(t, tt.op, tt.body); status != http.StatusBadRequest || !bytes.Contains(body, []byte(tt.msg)) {
			t.Errorf("%s %s: got %d %s, want 400 and %q", tt.op, tt.body, status, body, tt.msg)
		}
	}
	// A false the client sends is false too.
	if status, body := h.raw(t, "CreateIngestConfiguration", `{"ingestProtocol":"RTMP","insecureIngest":false}`); status != http.StatusBadRequest ||
		!bytes.Contains(body, []byte("Member must be true when ingestProtocol is RTMP")) {
		t.Errorf("RTMP with insecureIngest false: got %d %s", status, body)
	}
	list, err := h.client.ListIngestConfigurations(ctx, &ivsrealtime.ListIngestConfigurationsInput{})
	if err != nil || len(list.IngestConfigurations) != 0 {
		t.Fatalf("after refused creates: got %d configurations, %v, want none", len(list.IngestConfigurations), err)
	}

	// What is at the limits passes: RTMP with insecure ingest, 1 KB of
	// attributes, a stage that does not exist (AWS checks its form only).
	ok := h.create(t, &ivsrealtime.CreateIngestConfigurationInput{
		IngestProtocol: types.IngestProtocolRtmp, InsecureIngest: true, Name: aws.String(strings.Repeat("n", 128)),
		StageArn: aws.String(stageARN), UserId: aws.String(strings.Repeat("u", 128)),
		Attributes: map[string]string{"a": strings.Repeat("x", 1023)},
	})
	if ok.IngestProtocol != types.IngestProtocolRtmp || aws.ToString(ok.StageArn) != stageARN {
		t.Errorf("RTMP with insecure ingest: got %s, stage %q", ok.IngestProtocol, aws.ToString(ok.StageArn))
	}
	h.create(t, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, InsecureIngest: true, StageArn: aws.String("")})

	byARN := []struct {
		name string
		arn  *string
		code string
		msg  []string
	}{
		{"empty arn", aws.String(""), "ValidationException", []string{"Member must have length greater than or equal to 1"}},
		{"stage arn", aws.String(stageARN), "ValidationException", []string{"Value '" + stageARN + "' at 'arn' failed to satisfy constraint: " + arnRule}},
		{"unknown", aws.String("arn:aws:ivs:us-east-1:123456789012:ingest-configuration/doesNotExist"), "ResourceNotFoundException",
			[]string{"Ingest configuration not found: arn:aws:ivs:us-east-1:123456789012:ingest-configuration/doesNotExist"}},
	}
	for _, tt := range byARN {
		status := map[string]int{"ValidationException": http.StatusBadRequest, "ResourceNotFoundException": http.StatusNotFound}[tt.code]
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: tt.arn})
			wantAPIError(t, "Get", err, tt.code, status, tt.msg...)
			_, err = h.client.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: tt.arn})
			wantAPIError(t, "Update", err, tt.code, status, tt.msg...)
			_, err = h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: tt.arn})
			wantAPIError(t, "Delete", err, tt.code, status, tt.msg...)
		})
	}
	_, err = h.client.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ok.Arn, StageArn: aws.String(channel)})
	wantAPIError(t, "Update to a stage of another kind", err, "ValidationException", http.StatusBadRequest, "at 'stageArn' failed to satisfy constraint: "+stageRule)
	if got := h.get(t, ok.Arn); aws.ToString(got.StageArn) != stageARN {
		t.Errorf("after a refused update: stage %q, want %q", aws.ToString(got.StageArn), stageARN)
	}
	_, err = h.client.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: ok.Arn, Tags: map[string]string{"aws:x": "y"}})
	wantAPIError(t, "TagResource with a reserved key", err, "ValidationException", http.StatusBadRequest, "reserved prefix")
	_, err = h.client.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String("arn:aws:ivs:us-east-1:123456789012:ingest-configuration/doesNotExist"),
		Tags: map[string]string{"a": "b"}})
	wantAPIError(t, "TagResource of an unknown configuration", err, "ResourceNotFoundException", http.StatusNotFound, "doesNotExist")

	lists := []struct {
		name string
		in   *ivsrealtime.ListIngestConfigurationsInput
		msg  []string
	}{
		{"maxResults 0", &ivsrealtime.ListIngestConfigurationsInput{MaxResults: aws.Int32(0)},
			[]string{"Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"}},
		{"maxResults 101", &ivsrealtime.ListIngestConfigurationsInput{MaxResults: aws.Int32(101)},
			[]string{"Member must have value less than or equal to 100"}},
		{"both filters", &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String(stageARN), FilterByState: types.IngestConfigurationStateActive},
			[]string{"Only one of filterByStageArn or filterByState can be provided per request"}},
		{"unknown state", &ivsrealtime.ListIngestConfigurationsInput{FilterByState: "RUNNING"},
			[]string{"Value 'RUNNING' at 'filterByState' failed to satisfy constraint: Member must satisfy enum value set: [ACTIVE, INACTIVE]"}},
		{"empty stage", &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String("")},
			[]string{"at 'filterByStageArn' failed to satisfy constraint: Member must have length greater than or equal to 1"}},
		{"stage of another kind", &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String(channel)},
			[]string{"at 'filterByStageArn' failed to satisfy constraint: Member must satisfy regular expression pattern"}},
		{"forged nextToken", &ivsrealtime.ListIngestConfigurationsInput{NextToken: aws.String("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")},
			[]string{"The nextToken is not valid"}},
	}
	for _, tt := range lists {
		t.Run("List "+tt.name, func(t *testing.T) {
			_, err := h.client.ListIngestConfigurations(ctx, tt.in)
			wantAPIError(t, tt.name, err, "ValidationException", http.StatusBadRequest, tt.msg...)
		})
	}
}

func TestIngestConfigurationRedundant(t *testing.T) {
	h := newIngestHarness(t, ingestRTMP, ingestRTMPS)
	stage := h.createStage(t, "redundant")
	ic := h.rawIngest(t, "CreateIngestConfiguration", `{"ingestProtocol":"RTMPS","redundantIngest":true,"stageArn":"`+stage+`"}`)
	arn := ic["arn"].(string)
	keyRE := streamKeyPattern(arn)
	creds, _ := ic["redundantIngestCredentials"].([]any)
	if ic["redundantIngest"] != true || len(creds) != 1 {
		t.Fatalf("CreateIngestConfiguration with redundant ingest: got %v", ic)
	}
	second := creds[0].(map[string]any)
	pid, key := second["participantId"].(string), second["streamKey"].(string)
	if !participantIDRE.MatchString(pid) || pid == ic["participantId"] || !keyRE.MatchString(key) || key == ic["streamKey"] {
		t.Errorf("redundant credential %v: want a participant and key of its own, beside %s %s", second, ic["participantId"], ic["streamKey"])
	}
	got := h.rawIngest(t, "GetIngestConfiguration", `{"arn":"`+arn+`"}`)
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(ic)
	if !bytes.Equal(g, w) {
		t.Errorf("GetIngestConfiguration:\n got %s\nwant %s", g, w)
	}
	_, body := h.raw(t, "ListIngestConfigurations", `{}`)
	if !bytes.Contains(body, []byte(`"redundantIngest":true`)) || bytes.Contains(body, []byte(key)) || bytes.Contains(body, []byte("redundantIngestCredentials")) {
		t.Errorf("ListIngestConfigurations: got %s, want redundantIngest true and no credentials", body)
	}

	// Either key makes the configuration ACTIVE.
	h.setActive(t, aws.String(arn), aws.String(pid), true)
	if s := h.get(t, aws.String(arn)).State; s != types.IngestConfigurationStateActive {
		t.Errorf("with the redundant encoder publishing: got %s, want ACTIVE", s)
	}
	h.setActive(t, aws.String(arn), aws.String(pid), false)

	off := h.rawIngest(t, "UpdateIngestConfiguration", `{"arn":"`+arn+`","redundantIngest":false}`)
	if _, ok := off["redundantIngestCredentials"]; ok || off["redundantIngest"] != false || off["streamKey"] != ic["streamKey"] ||
		off["stageArn"] != stage {
		t.Errorf("UpdateIngestConfiguration redundant off: got %v", off)
	}
	// Without redundantIngest, an update leaves it as it is.
	same := h.rawIngest(t, "UpdateIngestConfiguration", `{"arn":"`+arn+`"}`)
	if same["redundantIngest"] != false {
		t.Errorf("UpdateIngestConfiguration without redundantIngest: got %v", same)
	}
	on := h.rawIngest(t, "UpdateIngestConfiguration", `{"arn":"`+arn+`","redundantIngest":true}`)
	creds, _ = on["redundantIngestCredentials"].([]any)
	if on["redundantIngest"] != true || len(creds) != 1 {
		t.Fatalf("UpdateIngestConfiguration redundant on: got %v", on)
	}
	again := creds[0].(map[string]any)
	if again["streamKey"] == key || again["participantId"] == pid || !keyRE.MatchString(again["streamKey"].(string)) {
		t.Errorf("redundant credential made again: got %v, want a new one (the old was %s %s)", again, pid, key)
	}
	status, body := h.raw(t, "UpdateIngestConfiguration", `{"arn":"`+arn+`","redundantIngest":"yes"}`)
	if status != http.StatusBadRequest || !bytes.Contains(body, []byte("Value at 'redundantIngest' failed to satisfy constraint: Member must be of type boolean")) {
		t.Errorf("redundantIngest of the wrong type: got %d %s", status, body)
	}
}

func TestIngestConfigurationActive(t *testing.T) {
	h := newIngestHarness(t, ingestRTMP, ingestRTMPS, withDisconnector)
	ctx := t.Context()
	stage := h.createStage(t, "live")
	ic := h.create(t, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(stage)})
	idle := h.create(t, rtmps())
	h.setActive(t, ic.Arn, ic.ParticipantId, true)

	if got := h.get(t, ic.Arn).State; got != types.IngestConfigurationStateActive {
		t.Fatalf("state while publishing: got %s, want ACTIVE", got)
	}
	for state, want := range map[types.IngestConfigurationState][]*string{
		types.IngestConfigurationStateActive:   {ic.Arn},
		types.IngestConfigurationStateInactive: {idle.Arn},
	} {
		out, err := h.client.ListIngestConfigurations(ctx, &ivsrealtime.ListIngestConfigurationsInput{FilterByState: state})
		if err != nil {
			t.Fatalf("ListIngestConfigurations %s: %v", state, err)
		}
		if len(out.IngestConfigurations) != len(want) || aws.ToString(out.IngestConfigurations[0].Arn) != aws.ToString(want[0]) ||
			out.IngestConfigurations[0].State != state {
			t.Errorf("ListIngestConfigurations %s: got %+v, want %s", state, out.IngestConfigurations, aws.ToString(want[0]))
		}
	}

	arn := aws.ToString(ic.Arn)
	_, err := h.client.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String("")})
	wantAPIError(t, "UpdateIngestConfiguration while active", err, "ConflictException", http.StatusConflict, arn, "is active")
	_, err = h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn})
	wantAPIError(t, "DeleteIngestConfiguration while active", err, "ConflictException", http.StatusConflict, arn, "force")
	_, err = h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: false})
	wantAPIError(t, "DeleteIngestConfiguration while active, force false", err, "ConflictException", http.StatusConflict)
	if got := h.get(t, ic.Arn); aws.ToString(got.StageArn) != stage {
		t.Errorf("after the refused changes: stage %q, want %q", aws.ToString(got.StageArn), stage)
	}
	if len(h.media.disconnected) != 0 {
		t.Errorf("refused deletes disconnected %v", h.media.disconnected)
	}

	// A failed disconnect keeps the configuration, and tells nothing of
	// why.
	h.media.disconnectErr = errors.New("rtmp node 10.9.8.7 unreachable")
	_, err = h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true})
	wantAPIError(t, "DeleteIngestConfiguration with force, disconnect failing", err, "InternalServerException", http.StatusInternalServerError)
	if msg := err.Error(); strings.Contains(msg, "10.9.8.7") {
		t.Errorf("the client was told the internal error: %v", err)
	}
	h.get(t, ic.Arn)
	h.media.disconnectErr = nil

	if _, err := h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true}); err != nil {
		t.Fatalf("DeleteIngestConfiguration with force: %v", err)
	}
	if want := []ivsrt.IngestConfigurationARN{ivsrt.IngestConfigurationARN(arn)}; !slices.Equal(h.media.disconnected, want) {
		t.Errorf("disconnected: got %v, want %v", h.media.disconnected, want)
	}
	_, err = h.client.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	wantAPIError(t, "GetIngestConfiguration after a forced delete", err, "ResourceNotFoundException", http.StatusNotFound)

	// Once nobody publishes, updates and deletes go through.
	h.setActive(t, idle.Arn, idle.ParticipantId, true)
	h.setActive(t, idle.Arn, idle.ParticipantId, false)
	if _, err := h.client.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: idle.Arn, StageArn: aws.String(stage)}); err != nil {
		t.Errorf("UpdateIngestConfiguration once inactive: %v", err)
	}
	if _, err := h.client.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: idle.Arn}); err != nil {
		t.Errorf("DeleteIngestConfiguration once inactive: %v", err)
	}
}

// Without an RTMP server there is nobody to disconnect: force deletes an
// ACTIVE configuration all the same.
func TestIngestForceDeleteWithoutDisconnector(t *testing.T) {
	h := newIngestHarness(t, "", "")
	ic := h.create(t, rtmps())
	h.setActive(t, ic.Arn, ic.ParticipantId, true)
	if _, err := h.client.DeleteIngestConfiguration(t.Context(), &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true}); err != nil {
		t.Fatalf("DeleteIngestConfiguration with force: %v", err)
	}
	if len(h.media.disconnected) != 0 {
		t.Errorf("disconnected %v without a disconnector", h.media.disconnected)
	}
}

func TestListIngestConfigurationsPages(t *testing.T) {
	h := newIngestHarness(t, "", "")
	ctx := t.Context()
	a, b := h.createStage(t, "a"), h.createStage(t, "b")
	var all, ofA []string
	for i := range 7 {
		in := rtmps()
		if i%2 == 0 {
			in.StageArn = aws.String(a)
		} else {
			in.StageArn = aws.String(b)
		}
		arn := aws.ToString(h.create(t, in).Arn)
		all = append(all, arn)
		if i%2 == 0 {
			ofA = append(ofA, arn)
		}
	}
	collect := func(in *ivsrealtime.ListIngestConfigurationsInput) (arns []string, sizes []int) {
		t.Helper()
		p := ivsrealtime.NewListIngestConfigurationsPaginator(h.client, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListIngestConfigurations: %v", err)
			}
			sizes = append(sizes, len(page.IngestConfigurations))
			for _, s := range page.IngestConfigurations {
				arns = append(arns, aws.ToString(s.Arn))
			}
		}
		return arns, sizes
	}
	tests := []struct {
		name      string
		in        *ivsrealtime.ListIngestConfigurationsInput
		want      []string
		wantSizes []int
	}{
		{"default", &ivsrealtime.ListIngestConfigurationsInput{}, all, []int{7}},
		{"3 a page", &ivsrealtime.ListIngestConfigurationsInput{MaxResults: aws.Int32(3)}, all, []int{3, 3, 1}},
		{"7 a page", &ivsrealtime.ListIngestConfigurationsInput{MaxResults: aws.Int32(7)}, all, []int{7}},
		{"stage a, 2 a page", &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String(a), MaxResults: aws.Int32(2)}, ofA, []int{2, 2}},
		{"inactive, 4 a page", &ivsrealtime.ListIngestConfigurationsInput{FilterByState: types.IngestConfigurationStateInactive, MaxResults: aws.Int32(4)}, all, []int{4, 3}},
		{"active", &ivsrealtime.ListIngestConfigurationsInput{FilterByState: types.IngestConfigurationStateActive}, nil, []int{0}},
		{"unknown stage", &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/none")}, nil, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arns, sizes := collect(tt.in)
			if !slices.Equal(arns, tt.want) || !slices.Equal(sizes, tt.wantSizes) {
				t.Errorf("got %v in pages of %v, want %v in pages of %v", arns, sizes, tt.want, tt.wantSizes)
			}
		})
	}

	// A nextToken belongs to the list it came from.
	first, err := h.client.ListIngestConfigurations(ctx, &ivsrealtime.ListIngestConfigurationsInput{FilterByStageArn: aws.String(a), MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, next %v", err, first.NextToken)
	}
	for _, in := range []*ivsrealtime.ListIngestConfigurationsInput{
		{NextToken: first.NextToken},
		{NextToken: first.NextToken, FilterByStageArn: aws.String(b)},
		{NextToken: first.NextToken, FilterByState: types.IngestConfigurationStateInactive},
	} {
		_, err := h.client.ListIngestConfigurations(ctx, in)
		wantAPIError(t, "nextToken of another list", err, "ValidationException", http.StatusBadRequest, "nextToken is not valid")
	}
	_, err = h.client.ListStages(ctx, &ivsrealtime.ListStagesInput{NextToken: first.NextToken})
	wantAPIError(t, "nextToken of another operation", err, "ValidationException", http.StatusBadRequest, "nextToken is not valid")
}

func TestDeleteStageDetachesIngest(t *testing.T) {
	h := newIngestHarness(t, ingestRTMP, ingestRTMPS)
	ctx := t.Context()
	stage, other := h.createStage(t, "doomed"), h.createStage(t, "other")
	publishing := h.create(t, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(stage)})
	idle := h.create(t, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(stage)})
	elsewhere := h.create(t, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(other)})
	h.setActive(t, publishing.Arn, publishing.ParticipantId, true)
	h.setActive(t, elsewhere.Arn, elsewhere.ParticipantId, true)
	h.media.watched = []ivsrt.IngestConfigurationARN{ivsrt.IngestConfigurationARN(*publishing.Arn)}

	if _, err := h.client.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(stage)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	if got := aws.ToString(h.get(t, publishing.Arn).StageArn); got != "" {
		t.Errorf("the configuration publishing to the deleted stage: got stage %q, want \"\"", got)
	}
	if got := h.media.stageAtClose[ivsrt.IngestConfigurationARN(*publishing.Arn)]; got != "" {
		t.Errorf("when the stage's media closed, its publishing configuration still had stage %q", got)
	}
	// AWS takes the stage only from configurations publishing to it.
	if got := aws.ToString(h.get(t, idle.Arn).StageArn); got != stage {
		t.Errorf("an idle configuration of the deleted stage: got stage %q, want %q", got, stage)
	}
	if got := aws.ToString(h.get(t, elsewhere.Arn).StageArn); got != other {
		t.Errorf("a configuration of another stage: got stage %q, want %q", got, other)
	}
	if !slices.Equal(h.media.closed, []ivsrt.StageARN{ivsrt.StageARN(stage)}) {
		t.Errorf("stages closed: got %v, want %v", h.media.closed, []string{stage})
	}
}

func TestDisconnectIngestParticipant(t *testing.T) {
	h := newIngestHarness(t, ingestRTMP, ingestRTMPS)
	ctx := t.Context()
	stage, other := h.createStage(t, "show"), h.createStage(t, "other")
	ic := h.rawIngest(t, "CreateIngestConfiguration", `{"ingestProtocol":"RTMPS","redundantIngest":true,"stageArn":"`+stage+`"}`)
	arn, pid := ic["arn"].(string), ic["participantId"].(string)
	redundantPID := ic["redundantIngestCredentials"].([]any)[0].(map[string]any)["participantId"].(string)
	h.setActive(t, aws.String(arn), aws.String(redundantPID), true)

	// Another stage's participant it is not.
	_, err := h.client.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(other), ParticipantId: aws.String(redundantPID)})
	wantAPIError(t, "DisconnectParticipant in another stage", err, "ResourceNotFoundException", http.StatusNotFound, redundantPID)

	if _, err := h.client.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage),
		ParticipantId: aws.String(redundantPID), Reason: aws.String("off air")}); err != nil {
		t.Fatalf("DisconnectParticipant of the redundant encoder: %v", err)
	}
	if !slices.Equal(h.media.participants, []ivsrt.ParticipantID{ivsrt.ParticipantID(redundantPID)}) {
		t.Errorf("participants disconnected: got %v, want %s", h.media.participants, redundantPID)
	}
	got := h.get(t, aws.String(arn))
	if aws.ToString(got.StageArn) != "" {
		t.Errorf("after DisconnectParticipant: stage %q, want \"\"", aws.ToString(got.StageArn))
	}
	// The configuration keeps its keys, for the next stage it is given.
	if aws.ToString(got.StreamKey) != ic["streamKey"] || aws.ToString(got.ParticipantId) != pid {
		t.Errorf("after DisconnectParticipant: got key %s participant %s, want them unchanged", aws.ToString(got.StreamKey), aws.ToString(got.ParticipantId))
	}
	// Now it is in no stage: disconnecting it again finds nobody.
	_, err = h.client.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage), ParticipantId: aws.String(pid)})
	wantAPIError(t, "DisconnectParticipant again", err, "ResourceNotFoundException", http.StatusNotFound, pid)

	// A token participant is disconnected as before.
	tok, err := h.client.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage)})
	if err != nil {
		t.Fatalf("CreateParticipantToken: %v", err)
	}
	if _, err := h.client.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage),
		ParticipantId: tok.ParticipantToken.ParticipantId}); err != nil {
		t.Fatalf("DisconnectParticipant of a token's participant: %v", err)
	}
	revoked, err := h.db.GetParticipantToken(ctx, ivsrt.ParticipantID(*tok.ParticipantToken.ParticipantId))
	if err != nil || !revoked.Revoked() {
		t.Errorf("the token's participant: got %+v, %v, want its token revoked", revoked, err)
	}
}

func TestStageRTMPEndpoints(t *testing.T) {
	for _, tt := range []struct {
		name        string
		rtmp, rtmps string
	}{
		{"both", ingestRTMP, ingestRTMPS},
		{"RTMPS only", "", ingestRTMPS},
		{"none", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newIngestHarness(t, tt.rtmp, tt.rtmps)
			arn := h.createStage(t, "endpoints")
			out, err := h.client.GetStage(t.Context(), &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
			if err != nil {
				t.Fatalf("GetStage: %v", err)
			}
			e := out.Stage.Endpoints
			if aws.ToString(e.Rtmp) != tt.rtmp || aws.ToString(e.Rtmps) != tt.rtmps {
				t.Errorf("endpoints: got rtmp %q rtmps %q, want %q %q", aws.ToString(e.Rtmp), aws.ToString(e.Rtmps), tt.rtmp, tt.rtmps)
			}
			if (e.Rtmp == nil) != (tt.rtmp == "") || (e.Rtmps == nil) != (tt.rtmps == "") {
				t.Errorf("endpoints: an empty endpoint must be left out: got rtmp %v rtmps %v", e.Rtmp, e.Rtmps)
			}
			if aws.ToString(e.Whip) == "" || aws.ToString(e.Events) == "" {
				t.Errorf("endpoints: got %+v, want events and whip as before", e)
			}
		})
	}

	for _, tt := range []struct{ rtmp, rtmps string }{
		{"http://ingest.example.test/app/", ""},
		{"", "rtmp://ingest.example.test/app/"},
		{"rtmp:///app/", ""},
		{"", "rtmps://ingest.example.test:443/app/?key=1"},
	} {
		_, err := NewServer(nil, nil, &SigV4Verifier{}, Config{PublicURL: "http://ivs.ingest.test", PaginationKey: bytes.Repeat([]byte{1}, 16),
			RTMPURL: tt.rtmp, RTMPSURL: tt.rtmps})
		if err == nil {
			t.Errorf("NewServer with RTMP %q, RTMPS %q: got no error", tt.rtmp, tt.rtmps)
		}
	}
}

// TestParticipantIngestConfiguration: GetParticipant and ListParticipants
// show an encoder's ingest configuration and whether it has redundant
// ingest; of any other participant, no configuration and false. The
// SDK of this module predates these fields: they are read from signed
// requests' bodies.
func TestParticipantIngestConfiguration(t *testing.T) {
	h := newIngestHarness(t, ingestRTMP, ingestRTMPS)
	ctx := t.Context()
	stage := h.createStage(t, "show")
	redundant := h.rawIngest(t, "CreateIngestConfiguration", `{"ingestProtocol":"RTMPS","redundantIngest":true,"stageArn":"`+stage+`"}`)
	single := h.create(t, &ivsrealtime.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String(stage)})
	redundantARN := redundant["arn"].(string)
	primaryPID := redundant["participantId"].(string)
	secondPID := redundant["redundantIngestCredentials"].([]any)[0].(map[string]any)["participantId"].(string)
	singlePID := aws.ToString(single.ParticipantId)
	const browser = "browserparticipant"

	// The media plane's JOINED of each encoder, and of a browser.
	var session ivsrt.SessionID
	for _, j := range []struct {
		id        string
		arn       string
		redundant bool
	}{{primaryPID, redundantARN, true}, {secondPID, redundantARN, true}, {singlePID, aws.ToString(single.Arn), false}, {browser, "", false}} {
		ev := &ivsrt.Event{StageARN: ivsrt.StageARN(stage), Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(j.id),
			Time: time.Now(), Protocol: "RTMPS", IngestConfigurationARN: ivsrt.IngestConfigurationARN(j.arn), RedundantIngest: j.redundant}
		if j.id == browser {
			ev.Protocol = "WHIP"
		}
		if err := h.db.RecordEvent(ctx, ev); err != nil {
			t.Fatalf("RecordEvent JOINED of %s: %v", j.id, err)
		}
		session = ev.SessionID
	}

	want := map[string]map[string]any{
		primaryPID: {"ingestConfigurationArn": redundantARN, "redundantIngest": true},
		secondPID:  {"ingestConfigurationArn": redundantARN, "redundantIngest": true},
		singlePID:  {"ingestConfigurationArn": aws.ToString(single.Arn), "redundantIngest": false},
		browser:    {"redundantIngest": false},
	}
	check := func(what string, p map[string]any) {
		t.Helper()
		id, _ := p["participantId"].(string)
		w, ok := want[id]
		if !ok {
			t.Errorf("%s: unexpected participant %v", what, p)
			return
		}
		got := map[string]any{}
		for _, k := range []string{"ingestConfigurationArn", "redundantIngest"} {
			if v, ok := p[k]; ok {
				got[k] = v
			}
		}
		g, _ := json.Marshal(got)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(g, wj) {
			t.Errorf("%s of %s: got %s, want %s", what, id, g, wj)
		}
	}
	for id := range want {
		status, body := h.raw(t, "GetParticipant", `{"stageArn":"`+stage+`","sessionId":"`+string(session)+`","participantId":"`+id+`"}`)
		var out struct {
			Participant map[string]any `json:"participant"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &out) != nil {
			t.Fatalf("GetParticipant %s: got %d %s", id, status, body)
		}
		check("GetParticipant", out.Participant)
	}
	status, body := h.raw(t, "ListParticipants", `{"stageArn":"`+stage+`","sessionId":"`+string(session)+`"}`)
	var list struct {
		Participants []map[string]any `json:"participants"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Participants) != len(want) {
		t.Fatalf("ListParticipants: got %d %s, want %d participants", status, body, len(want))
	}
	for _, p := range list.Participants {
		check("ListParticipants", p)
	}

	// The SDK reads the encoder's participant as before.
	got, err := h.client.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage),
		SessionId: aws.String(string(session)), ParticipantId: aws.String(primaryPID)})
	if err != nil || aws.ToString(got.Participant.ParticipantId) != primaryPID || got.Participant.Protocol != types.ParticipantProtocolRtmps {
		t.Errorf("GetParticipant through the SDK: got %+v, %v", got, err)
	}
}
