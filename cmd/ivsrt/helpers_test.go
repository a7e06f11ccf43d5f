package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
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
	"github.com/ivsrt/ivsrt/internal/sdkhttp"
)

const (
	testRegion          = "us-east-1"
	testAccountID       = "123456789012"
	testAccessKeyID     = "AKIDIVSRTTEST0000001"
	testSecretAccessKey = "ivsrt/test+secret/0000000000000000000000"

	// testTimeout bounds every test; a hung server fails the test instead
	// of the whole run.
	testTimeout = 2 * time.Minute
)

var stageARNPattern = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:stage/[a-zA-Z0-9]{12}$`)

// testContext returns a context that ends with the test or after testTimeout.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// serverOption changes the configuration of a test server before it runs.
type serverOption func(*Config)

// withDataDir runs the server on dir instead of a fresh temporary folder.
func withDataDir(dir string) serverOption { return func(c *Config) { c.DataDir = dir } }

// withMaxStages limits how many stages may exist at once.
func withMaxStages(n int) serverOption { return func(c *Config) { c.MaxStages = n } }

// withDev accepts any access key and secret.
func withDev() serverOption { return func(c *Config) { c.Dev = true } }

// withoutKeys leaves the access keys unconfigured, so that the server uses
// (or generates) the data folder's credentials.json.
func withoutKeys() serverOption {
	return func(c *Config) { c.AccessKeyID, c.SecretAccessKey = "", "" }
}

// startServer runs a whole server on 127.0.0.1 with a temporary data folder
// and fixed test keys, closes it when the test ends, and returns it with an
// SDK client signing with the test keys.
func startServer(t testing.TB, opts ...serverOption) (*Main, *ivsrealtime.Client) {
	t.Helper()
	m := NewMain()
	m.Config.Listen = "127.0.0.1:0"
	m.Config.DataDir = t.TempDir()
	m.Config.AccessKeyID = testAccessKeyID
	m.Config.SecretAccessKey = testSecretAccessKey
	m.Config.Dev = false
	for _, o := range opts {
		o(&m.Config)
	}
	m.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := m.Run(testContext(t)); err != nil {
		m.Close()
		t.Fatalf("run server: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	c, _ := newClient(t, m, testAccessKeyID, testSecretAccessKey)
	return m, c
}

// restartServer closes m and starts a server with the same configuration
// on the same data folder.
func restartServer(t testing.TB, m *Main) (*Main, *ivsrealtime.Client) {
	t.Helper()
	cfg := m.Config
	if err := m.Close(); err != nil {
		t.Fatalf("close server: %v", err)
	}
	return startServer(t, func(c *Config) {
		*c = cfg
		c.Listen = "127.0.0.1:0"
		c.PublicURL = "" // derived from the new address
	})
}

// logWriter sends the server's log to the test's.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("server: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// newClient returns an SDK client for m signing with the given keys, and
// the log of what it received. Every response it receives is checked
// against the wire rules (see checkWire).
func newClient(t testing.TB, m *Main, accessKeyID, secret string) (*ivsrealtime.Client, *wireLog) {
	return newClientWith(t, m, credentials.NewStaticCredentialsProvider(accessKeyID, secret, ""))
}

func newClientWith(t testing.TB, m *Main, creds aws.CredentialsProvider) (*ivsrealtime.Client, *wireLog) {
	log := &wireLog{t: t, client: localHTTPClient(t)}
	c := ivsrealtime.NewFromConfig(aws.Config{
		Region:           testRegion,
		Credentials:      creds,
		RetryMaxAttempts: 1,
		HTTPClient:       log,
	}, func(o *ivsrealtime.Options) {
		o.BaseEndpoint = aws.String("http://" + m.Addr())
	})
	return c, log
}

// localHTTPClient never goes through a proxy: test servers are on 127.0.0.1.
func localHTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: sdkhttp.Transport(tr), Timeout: testTimeout}
}

// exchange is one request and the response to it, body included.
type exchange struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

// wireLog is the HTTP client of an SDK client: it keeps every exchange and
// checks every response body.
type wireLog struct {
	t      testing.TB
	client *http.Client

	mu        sync.Mutex
	exchanges []exchange
}

func (l *wireLog) Do(r *http.Request) (*http.Response, error) {
	resp, err := l.client.Do(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ex := exchange{Method: r.Method, Path: r.URL.Path, Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body}
	checkWire(l.t, ex)
	l.mu.Lock()
	l.exchanges = append(l.exchanges, ex)
	l.mu.Unlock()
	return resp, nil
}

// last returns the latest exchange on path.
func (l *wireLog) last(path string) exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.exchanges) - 1; i >= 0; i-- {
		if l.exchanges[i].Path == path {
			return l.exchanges[i]
		}
	}
	l.t.Fatalf("no exchange on %s", path)
	return exchange{}
}

// all returns every exchange on path, oldest first.
func (l *wireLog) all(path string) []exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []exchange
	for _, ex := range l.exchanges {
		if ex.Path == path {
			out = append(out, ex)
		}
	}
	return out
}

// checkWire checks what every response must be: a JSON object without a
// null anywhere; for errors, the exception named in x-amzn-ErrorType and
// the same non-empty text in "message" and "exceptionMessage".
func checkWire(t testing.TB, ex exchange) {
	t.Helper()
	what := fmt.Sprintf("%s %s → %d", ex.Method, ex.Path, ex.Status)
	if got := ex.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("%s: Content-Type got %v, want %v", what, got, "application/json")
	}
	var doc map[string]any
	if err := json.Unmarshal(ex.Body, &doc); err != nil {
		t.Errorf("%s: body %q is not a JSON object: %v", what, ex.Body, err)
		return
	}
	if path, ok := findNull(doc, "$"); ok {
		t.Errorf("%s: body %s has null at %s, want empty fields omitted", what, ex.Body, path)
	}
	errType := ex.Header.Get("X-Amzn-Errortype")
	if ex.Status == http.StatusOK {
		if errType != "" {
			t.Errorf("%s: x-amzn-ErrorType got %v, want none", what, errType)
		}
		return
	}
	if errType == "" {
		t.Errorf("%s: x-amzn-ErrorType missing", what)
	}
	msg, _ := doc["message"].(string)
	exMsg, _ := doc["exceptionMessage"].(string)
	if msg == "" || msg != exMsg {
		t.Errorf("%s: body %s: message %q and exceptionMessage %q, want the same non-empty text", what, ex.Body, msg, exMsg)
	}
}

func findNull(v any, path string) (string, bool) {
	switch v := v.(type) {
	case nil:
		return path, true
	case map[string]any:
		for k, e := range v {
			if p, ok := findNull(e, path+"."+k); ok {
				return p, true
			}
		}
	case []any:
		for i, e := range v {
			if p, ok := findNull(e, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	}
	return "", false
}

// signedRequest sends a request signed with the test keys, as a client that
// checks nothing would, and returns the exchange after checking its wire
// form. path is sent as is: escape it as the client would.
func signedRequest(t testing.TB, m *Main, method, path, body string) exchange {
	t.Helper()
	return send(t, newSignedRequest(t, m, method, path, body, testAccessKeyID, testSecretAccessKey))
}

// newSignedRequest builds a request to m signed with SigV4 for service ivs.
func newSignedRequest(t testing.TB, m *Main, method, path, body, accessKeyID, secret string) *http.Request {
	t.Helper()
	r := newRequest(t, m, method, path, body)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, r, hex.EncodeToString(sum[:]), "ivs", testRegion, time.Now()); err != nil {
		t.Fatalf("sign request: %v", err)
	}
	return r
}

// newRequest builds an unsigned request to m.
func newRequest(t testing.TB, m *Main, method, path, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(testContext(t), method, "http://"+m.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// send sends r and returns the exchange after checking its wire form.
func send(t testing.TB, r *http.Request) exchange {
	t.Helper()
	resp, err := localHTTPClient(t).Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.Method, r.URL.Path, err)
	}
	ex := exchange{Method: r.Method, Path: r.URL.Path, Status: resp.StatusCode, Header: resp.Header, Body: body}
	checkWire(t, ex)
	return ex
}

// decode decodes the exchange's JSON body into v.
func (ex exchange) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(ex.Body, v); err != nil {
		t.Fatalf("%s %s: decode %s: %v", ex.Method, ex.Path, ex.Body, err)
	}
}

// checkRawError checks a raw exchange failed with the given exception,
// status and message parts.
func checkRawError(t testing.TB, ex exchange, want wantError) {
	t.Helper()
	if ex.Status != want.status {
		t.Errorf("status got %v, want %v (body %s)", ex.Status, want.status, ex.Body)
	}
	if got := ex.Header.Get("x-amzn-ErrorType"); got != want.code {
		t.Errorf("x-amzn-ErrorType got %v, want %v", got, want.code)
	}
	var body struct{ Message, ExceptionMessage string }
	json.Unmarshal(ex.Body, &body)
	for _, part := range want.msg {
		if !strings.Contains(body.ExceptionMessage, part) {
			t.Errorf("message got %q, want it to contain %q", body.ExceptionMessage, part)
		}
	}
}

// wantError is how a call must fail.
type wantError struct {
	code   string   // exception name, as ErrorCode() and x-amzn-ErrorType give it
	status int      // HTTP status
	msg    []string // parts the message must contain: the field, the rule
}

func validation(msg ...string) wantError {
	return wantError{"ValidationException", http.StatusBadRequest, msg}
}

func notFound(msg ...string) wantError {
	return wantError{"ResourceNotFoundException", http.StatusNotFound, msg}
}

// checkError checks that err is the SDK's typed error for want.code, with
// want's status and message parts.
func checkError(t testing.TB, err error, want wantError) {
	t.Helper()
	if err == nil {
		t.Errorf("got no error, want %v", want.code)
		return
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("got %T (%v), want a smithy.APIError", err, err)
		return
	}
	if got := apiErr.ErrorCode(); got != want.code {
		t.Errorf("ErrorCode() got %v, want %v (%v)", got, want.code, err)
	}
	msg, ok := exceptionMessage(err, want.code)
	if !ok {
		t.Errorf("got %T (%v), want the SDK's type for %v", apiErr, err, want.code)
	}
	for _, part := range want.msg {
		if !strings.Contains(msg, part) {
			t.Errorf("message got %q, want it to contain %q", msg, part)
		}
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Errorf("got %T, want an *awshttp.ResponseError inside", err)
	} else if got := re.HTTPStatusCode(); got != want.status {
		t.Errorf("HTTP status got %v, want %v", got, want.status)
	}
}

// exceptionMessage returns the message of err read through the SDK type
// that code names: the modeled exceptions' ExceptionMessage field, or the
// message of a generic error for exceptions outside the model.
func exceptionMessage(err error, code string) (string, bool) {
	var (
		validationErr *types.ValidationException
		notFoundErr   *types.ResourceNotFoundException
		quotaErr      *types.ServiceQuotaExceededException
		conflictErr   *types.ConflictException
		deniedErr     *types.AccessDeniedException
		internalErr   *types.InternalServerException
		genericErr    *smithy.GenericAPIError
	)
	switch {
	case code == "ValidationException" && errors.As(err, &validationErr):
		return aws.ToString(validationErr.ExceptionMessage), true
	case code == "ResourceNotFoundException" && errors.As(err, &notFoundErr):
		return aws.ToString(notFoundErr.ExceptionMessage), true
	case code == "ServiceQuotaExceededException" && errors.As(err, &quotaErr):
		return aws.ToString(quotaErr.ExceptionMessage), true
	case code == "ConflictException" && errors.As(err, &conflictErr):
		return aws.ToString(conflictErr.ExceptionMessage), true
	case code == "AccessDeniedException" && errors.As(err, &deniedErr):
		return aws.ToString(deniedErr.ExceptionMessage), true
	case code == "InternalServerException" && errors.As(err, &internalErr):
		return aws.ToString(internalErr.ExceptionMessage), true
	case errors.As(err, &genericErr):
		return genericErr.Message, true
	}
	return "", false
}

// state is everything a client can see of a server's stages, and the
// number of participant tokens stored, for checking that a failed write
// changed nothing.
func state(t testing.TB, m *Main, c *ivsrealtime.Client) string {
	t.Helper()
	ctx := testContext(t)
	var out []any
	p := ivsrealtime.NewListStagesPaginator(c, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListStages: %v", err)
		}
		for _, s := range page.Stages {
			st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: s.Arn})
			if err != nil {
				t.Fatalf("GetStage: %v", err)
			}
			tags, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: s.Arn})
			if err != nil {
				t.Fatalf("ListTagsForResource: %v", err)
			}
			out = append(out, s, st.Stage, tags.Tags)
		}
	}
	out = append(out, "participant tokens", countRows(t, m, "participant_tokens"))
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("marshal state: %v", err)
	}
	return string(b)
}

// countRows counts the rows of a table of the server's database, for what
// the API cannot list.
func countRows(t testing.TB, m *Main, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(m.Config.DataDir, "ivsrt.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(testContext(t), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// record stores events as the media plane would, in order.
func record(t testing.TB, m *Main, events ...*ivsrt.Event) {
	t.Helper()
	for _, ev := range events {
		if err := m.DB.RecordEvent(testContext(t), ev); err != nil {
			t.Fatalf("record %s of %s: %v", ev.Name, ev.ParticipantID, err)
		}
	}
}

// createStage creates a stage through the SDK and returns its ARN.
func createStage(t testing.TB, c *ivsrealtime.Client, name string) string {
	t.Helper()
	out, err := c.CreateStage(testContext(t), &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateStage %q: %v", name, err)
	}
	return aws.ToString(out.Stage.Arn)
}

// createToken creates a participant token through the SDK.
func createToken(t testing.TB, c *ivsrealtime.Client, in *ivsrealtime.CreateParticipantTokenInput) *types.ParticipantToken {
	t.Helper()
	out, err := c.CreateParticipantToken(testContext(t), in)
	if err != nil {
		t.Fatalf("CreateParticipantToken: %v", err)
	}
	return out.ParticipantToken
}

// withTestStorage makes the storage configuration storageARN names exist
// on m, for tests of stages that record: a stage may only name one that
// exists.
func withTestStorage(t testing.TB, m *Main) {
	t.Helper()
	sc := &ivsrt.StorageConfiguration{ARN: ivsrt.StorageConfigurationARN(storageARN), Name: "test-recordings", S3BucketName: "test-recordings"}
	if err := m.DB.CreateStorageConfiguration(testContext(t), sc); err != nil {
		t.Fatalf("create the test storage configuration: %v", err)
	}
}
