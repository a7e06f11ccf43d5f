package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/smithy-go"
)

const (
	sigTestKeyID  = "AKIAIOSFODNN7EXAMPLE"
	sigTestSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sigTestARN    = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl"
	// sigTestARNPath is the tags path of sigTestARN as clients send it.
	sigTestARNPath = "/tags/arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Astage%2FAbCdEfGhIjKl"
)

// sigTestNow is the server clock in the hand-signed tests.
var sigTestNow = time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)

// sigCall is what the test server saw for one request.
type sigCall struct {
	Method, EscapedPath, RawQuery string
	AccessKeyID                   string
	Status                        int
	Exception                     string
}

// sigServer is a loopback server whose handler verifies every request.
type sigServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []sigCall
}

func (s *sigServer) Calls() []sigCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sigCall(nil), s.calls...)
}

func sigNewServer(t *testing.T, v *SigV4Verifier) *sigServer {
	t.Helper()
	s := &sigServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		call := sigCall{Method: r.Method, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery}
		akid, err := v.Verify(r, body)
		if err != nil {
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Errorf("Verify returned %T, want *AuthError", err)
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			call.Status, call.Exception = ae.Status, ae.Exception
			s.record(call)
			sigWriteError(w, ae)
			return
		}
		call.AccessKeyID, call.Status = akid, http.StatusOK
		s.record(call)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/GetStage":
			var in struct {
				Arn string `json:"arn"`
			}
			_ = json.Unmarshal(body, &in)
			_ = json.NewEncoder(w).Encode(map[string]any{"stage": map[string]any{"arn": in.Arn}})
		case strings.HasPrefix(r.URL.Path, "/tags/") && r.Method == http.MethodGet:
			_, _ = io.WriteString(w, `{"tags":{}}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sigServer) record(c sigCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func sigWriteError(w http.ResponseWriter, ae *AuthError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", ae.Exception)
	w.WriteHeader(ae.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": ae.Message, "exceptionMessage": ae.Message})
}

func sigVerifier() *SigV4Verifier {
	return &SigV4Verifier{
		Credentials: []Credential{{AccessKeyID: "AKIDOTHER", SecretAccessKey: "other"}, {AccessKeyID: sigTestKeyID, SecretAccessKey: sigTestSecret}},
		Service:     "ivs",
	}
}

func TestSigV4SDK(t *testing.T) {
	ops := []struct {
		name string
		call func(context.Context, *ivsrealtime.Client) error
		// what the server must have seen
		method, path, query string
	}{
		{"GetStage", func(ctx context.Context, c *ivsrealtime.Client) error {
			out, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(sigTestARN)})
			if err == nil && aws.ToString(out.Stage.Arn) != sigTestARN {
				t.Errorf("GetStage arn: got %v, want %v", aws.ToString(out.Stage.Arn), sigTestARN)
			}
			return err
		}, "POST", "/GetStage", ""},
		{"TagResource", func(ctx context.Context, c *ivsrealtime.Client) error {
			_, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(sigTestARN), Tags: map[string]string{"a": "1", "b c": "2 3"}})
			return err
		}, "POST", sigTestARNPath, ""},
		{"UntagResource", func(ctx context.Context, c *ivsrealtime.Client) error {
			_, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: aws.String(sigTestARN), TagKeys: []string{"a", "b"}})
			return err
		}, "DELETE", sigTestARNPath, "tagKeys=a&tagKeys=b"},
		{"ListTagsForResource", func(ctx context.Context, c *ivsrealtime.Client) error {
			_, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(sigTestARN)})
			return err
		}, "GET", sigTestARNPath, ""},
	}
	creds := []struct {
		name                 string
		keyID, secret, token string
		dev                  bool
		wantCode             string
	}{
		{"valid", sigTestKeyID, sigTestSecret, "", false, ""},
		{"session token", sigTestKeyID, sigTestSecret, "FwoGZXIvYXdzEXAMPLETOKEN//+=", false, ""},
		{"wrong secret", sigTestKeyID, "not-the-secret", "", false, "InvalidSignatureException"},
		{"unknown key", "AKIAUNKNOWNKEY000000", sigTestSecret, "", false, "UnrecognizedClientException"},
		{"dev wrong secret", "AKIAUNKNOWNKEY000000", "anything", "", true, ""},
	}
	for _, cr := range creds {
		for _, op := range ops {
			t.Run(cr.name+"/"+op.name, func(t *testing.T) {
				v := sigVerifier()
				v.Dev = cr.dev
				srv := sigNewServer(t, v)
				client := ivsrealtime.NewFromConfig(aws.Config{
					Region:      "us-east-1",
					Credentials: credentials.NewStaticCredentialsProvider(cr.keyID, cr.secret, cr.token),
				}, func(o *ivsrealtime.Options) {
					o.BaseEndpoint = aws.String(srv.URL)
					o.RetryMaxAttempts = 1
				})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := op.call(ctx, client)

				var gotCode string
				if err != nil {
					var apiErr smithy.APIError
					if !errors.As(err, &apiErr) {
						t.Fatalf("got error %v, want an API error", err)
					}
					gotCode = apiErr.ErrorCode()
				}
				if gotCode != cr.wantCode {
					t.Fatalf("got code %q (%v), want %q", gotCode, err, cr.wantCode)
				}
				calls := srv.Calls()
				if len(calls) != 1 {
					t.Fatalf("got %v requests, want %v", len(calls), 1)
				}
				c := calls[0]
				if c.Method != op.method || c.EscapedPath != op.path || c.RawQuery != op.query {
					t.Errorf("got %v %v?%v, want %v %v?%v", c.Method, c.EscapedPath, c.RawQuery, op.method, op.path, op.query)
				}
				if cr.wantCode == "" && c.AccessKeyID != cr.keyID {
					t.Errorf("got access key %v, want %v", c.AccessKeyID, cr.keyID)
				}
			})
		}
	}
}

// sigRequest describes one hand-signed request.
type sigRequest struct {
	method, path, query string
	body                string
	keyID, secret       string
	token               string
	service, region     string
	at                  time.Time
	// edit changes the request after it was signed.
	edit func(r *http.Request)
}

func sigSend(t *testing.T, srvURL string, sr sigRequest) (status int, exception, message string) {
	t.Helper()
	if sr.method == "" {
		sr.method = http.MethodPost
	}
	if sr.path == "" {
		sr.path = "/GetStage"
	}
	if sr.keyID == "" {
		sr.keyID, sr.secret = sigTestKeyID, sigTestSecret
	}
	if sr.service == "" {
		sr.service = "ivs"
	}
	if sr.region == "" {
		sr.region = "us-east-1"
	}
	if sr.at.IsZero() {
		sr.at = sigTestNow
	}
	u, err := url.Parse(srvURL + sr.path)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = sr.query
	var body io.Reader
	if sr.body != "" {
		body = strings.NewReader(sr.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, sr.method, u.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	if sr.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256([]byte(sr.body))
	creds := aws.Credentials{AccessKeyID: sr.keyID, SecretAccessKey: sr.secret, SessionToken: sr.token}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), sr.service, sr.region, sr.at); err != nil {
		t.Fatal(err)
	}
	if sr.edit != nil {
		sr.edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Message          string `json:"message"`
		ExceptionMessage string `json:"exceptionMessage"`
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("error body: %v", err)
		}
		if out.Message != out.ExceptionMessage {
			t.Errorf("exceptionMessage: got %v, want %v", out.ExceptionMessage, out.Message)
		}
	}
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), out.Message
}

// sigEditAuth rewrites the Authorization header with f.
func sigEditAuth(f func(string) string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", f(r.Header.Get("Authorization"))) }
}

// sigSplitAuth returns the Credential, SignedHeaders and Signature parts of a
// header the SDK produced.
func sigSplitAuth(h string) (cred, signed, sig string) {
	for _, p := range strings.Split(strings.TrimPrefix(h, sigAlgorithm+" "), ", ") {
		switch {
		case strings.HasPrefix(p, "Credential="):
			cred = p
		case strings.HasPrefix(p, "SignedHeaders="):
			signed = p
		case strings.HasPrefix(p, "Signature="):
			sig = p
		}
	}
	return cred, signed, sig
}

func TestSigV4Signed(t *testing.T) {
	const invalid, incomplete = "InvalidSignatureException", "IncompleteSignatureException"
	tests := []struct {
		name        string
		dev         bool
		req         sigRequest
		wantStatus  int
		wantExc     string
		wantMsg     string // exact, when set
		wantMsgPart string // substring, when set
	}{
		{name: "valid", req: sigRequest{body: `{"arn":"` + sigTestARN + `"}`}, wantStatus: 200},
		{name: "valid empty body", req: sigRequest{body: `{}`}, wantStatus: 200},
		{name: "session token", req: sigRequest{body: `{}`, token: "IQoJb3JpZ2luX2VjEXAMPLE+/="}, wantStatus: 200},
		{name: "escaped path and query", req: sigRequest{method: "DELETE", path: sigTestARNPath, query: "tagKeys=a&tagKeys=b%20c"}, wantStatus: 200},
		{name: "other region", req: sigRequest{body: `{}`, region: "eu-west-1"}, wantStatus: 200},
		{name: "within skew", req: sigRequest{body: `{}`, at: sigTestNow.Add(-14 * time.Minute)}, wantStatus: 200},
		{name: "parts reordered without spaces", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			c, s, g := sigSplitAuth(h)
			return sigAlgorithm + " " + g + "," + c + "," + s
		})}, wantStatus: 200},
		{name: "extra spaces", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			c, s, g := sigSplitAuth(h)
			return sigAlgorithm + "   " + s + " ,  " + c + " , " + g
		})}, wantStatus: 200},
		{name: "unsigned extra header", req: sigRequest{body: `{}`, edit: func(r *http.Request) { r.Header.Set("X-Extra", "1") }}, wantStatus: 200},

		{name: "body changed after signing", req: sigRequest{body: `{"arn":"a"}`, edit: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"arn":"b"}`))
		}}, wantStatus: 403, wantExc: invalid, wantMsg: sigMismatchMessage},
		{name: "path changed after signing", req: sigRequest{body: `{}`, edit: func(r *http.Request) { r.URL.Path = "/DeleteStage" }},
			wantStatus: 403, wantExc: invalid, wantMsg: sigMismatchMessage},
		{name: "query changed after signing", req: sigRequest{method: "DELETE", path: sigTestARNPath, query: "tagKeys=a",
			edit: func(r *http.Request) { r.URL.RawQuery = "tagKeys=b" }}, wantStatus: 403, wantExc: invalid, wantMsg: sigMismatchMessage},
		{name: "signed header changed", req: sigRequest{body: `{}`, edit: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }},
			wantStatus: 403, wantExc: invalid, wantMsg: sigMismatchMessage},
		{name: "session token changed", req: sigRequest{body: `{}`, token: "tok1", edit: func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "tok2") }},
			wantStatus: 403, wantExc: invalid, wantMsg: sigMismatchMessage},
		{name: "wrong secret", req: sigRequest{body: `{}`, keyID: sigTestKeyID, secret: "wrong"}, wantStatus: 403, wantExc: invalid, wantMsg: sigMismatchMessage},
		{name: "unknown key", req: sigRequest{body: `{}`, keyID: "AKIANOTCONFIGURED000", secret: sigTestSecret}, wantStatus: 403,
			wantExc: "UnrecognizedClientException", wantMsg: "The security token included in the request is invalid."},
		{name: "header signed but not sent", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, "SignedHeaders=", "SignedHeaders=accept;", 1)
		})}, wantStatus: 403, wantExc: invalid, wantMsgPart: "cannot be verified"},
		{name: "skew past", req: sigRequest{body: `{}`, at: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}, wantStatus: 403, wantExc: invalid,
			wantMsg: "Signature expired: 20261126T100000Z is now earlier than 20261126T101500Z (20261126T103000Z - 15 min.)"},
		{name: "skew future", req: sigRequest{body: `{}`, at: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)}, wantStatus: 403, wantExc: invalid,
			wantMsg: "Signature not yet current: 20261126T110000Z is still later than 20261126T104500Z (20261126T103000Z + 15 min.)"},

		{name: "missing header", req: sigRequest{body: `{}`, edit: func(r *http.Request) { r.Header.Del("Authorization") }}, wantStatus: 403,
			wantExc: "MissingAuthenticationTokenException", wantMsg: "Missing Authentication Token"},
		{name: "missing signature", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			c, s, _ := sigSplitAuth(h)
			return sigAlgorithm + " " + c + ", " + s
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "requires 'Signature' parameter"},
		{name: "missing credential", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			_, s, g := sigSplitAuth(h)
			return sigAlgorithm + " " + s + ", " + g
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "requires 'Credential' parameter"},
		{name: "missing signed headers", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			c, _, g := sigSplitAuth(h)
			return sigAlgorithm + " " + c + ", " + g
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "requires 'SignedHeaders' parameter"},
		{name: "only algorithm", req: sigRequest{edit: sigEditAuth(func(string) string { return sigAlgorithm })}, wantStatus: 403, wantExc: incomplete},
		{name: "duplicate part", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			_, _, g := sigSplitAuth(h)
			return h + ", " + g
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "more than once"},
		{name: "unknown part", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string { return h + ", Foo=bar" })},
			wantStatus: 403, wantExc: incomplete},
		{name: "other algorithm", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, sigAlgorithm, "AWS4-ECDSA-P256-SHA256", 1)
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "Unsupported Authorization Type"},
		{name: "short signature", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string { return h[:len(h)-1] })},
			wantStatus: 403, wantExc: incomplete},
		{name: "short credential", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, "/aws4_request", "", 1)
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "5 slash-delimited"},
		{name: "wrong service", req: sigRequest{body: `{}`, service: "execute-api"}, wantStatus: 403, wantExc: incomplete,
			wantMsg: "Credential should be scoped to correct service: 'ivs'."},
		{name: "wrong terminator", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, "/aws4_request", "/aws5_request", 1)
		})}, wantStatus: 403, wantExc: incomplete, wantMsg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."},
		{name: "scope date mismatch", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, "/20261126/", "/20261125/", 1)
		})}, wantStatus: 403, wantExc: incomplete,
			wantMsg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261125' != '20261126', from '20261126T103000Z'."},
		{name: "missing x-amz-date", req: sigRequest{body: `{}`, edit: func(r *http.Request) { r.Header.Del("X-Amz-Date") }},
			wantStatus: 403, wantExc: incomplete, wantMsgPart: "'X-Amz-Date'"},
		{name: "bad x-amz-date", req: sigRequest{body: `{}`, edit: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-11-26T10:30:00Z") }},
			wantStatus: 403, wantExc: incomplete, wantMsgPart: "ISO-8601"},
		{name: "host not signed", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, "host;", "", 1)
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "'Host'"},
		{name: "x-amz-date not signed", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, ";x-amz-date", "", 1)
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "'X-Amz-Date' must be"},
		{name: "unsorted signed headers", req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			return strings.Replace(h, "content-length;content-type;host", "host;content-length;content-type", 1)
		})}, wantStatus: 403, wantExc: incomplete, wantMsgPart: "sorted"},
		{name: "presigned query", req: sigRequest{query: "X-Amz-Signature=abc", edit: func(r *http.Request) { r.Header.Del("Authorization") }},
			wantStatus: 403, wantExc: incomplete, wantMsgPart: "not supported"},

		{name: "dev wrong secret", dev: true, req: sigRequest{body: `{}`, secret: "wrong", keyID: sigTestKeyID}, wantStatus: 200},
		{name: "dev unknown key", dev: true, req: sigRequest{body: `{}`, keyID: "AKIADEV", secret: "x"}, wantStatus: 200},
		{name: "dev malformed", dev: true, req: sigRequest{body: `{}`, edit: sigEditAuth(func(h string) string {
			c, s, _ := sigSplitAuth(h)
			return sigAlgorithm + " " + c + ", " + s
		})}, wantStatus: 403, wantExc: incomplete},
		{name: "dev wrong service", dev: true, req: sigRequest{body: `{}`, service: "s3"}, wantStatus: 403, wantExc: incomplete},
		{name: "dev missing header", dev: true, req: sigRequest{edit: func(r *http.Request) { r.Header.Del("Authorization") }},
			wantStatus: 403, wantExc: "MissingAuthenticationTokenException"},
		{name: "dev skew", dev: true, req: sigRequest{body: `{}`, secret: "wrong", keyID: sigTestKeyID, at: sigTestNow.Add(time.Hour)},
			wantStatus: 403, wantExc: invalid, wantMsgPart: "Signature not yet current"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sigVerifier()
			v.Dev = tt.dev
			v.Now = func() time.Time { return sigTestNow }
			srv := sigNewServer(t, v)
			status, exc, msg := sigSend(t, srv.URL, tt.req)
			if status != tt.wantStatus {
				t.Errorf("status: got %v, want %v (%v: %v)", status, tt.wantStatus, exc, msg)
			}
			if exc != tt.wantExc {
				t.Errorf("exception: got %v, want %v (%v)", exc, tt.wantExc, msg)
			}
			if tt.wantMsg != "" && msg != tt.wantMsg {
				t.Errorf("message: got %v, want %v", msg, tt.wantMsg)
			}
			if tt.wantMsgPart != "" && !strings.Contains(msg, tt.wantMsgPart) {
				t.Errorf("message: got %v, want it to contain %v", msg, tt.wantMsgPart)
			}
		})
	}
}

// TestSigV4Region: a verifier bound to a region refuses requests signed
// for another, as AWS does, in dev mode too: their answers would carry the
// wrong region's ARNs.
func TestSigV4Region(t *testing.T) {
	for _, dev := range []bool{false, true} {
		v := sigVerifier()
		v.Dev, v.Region = dev, "us-east-1"
		v.Now = func() time.Time { return sigTestNow }
		srv := sigNewServer(t, v)
		if status, exc, msg := sigSend(t, srv.URL, sigRequest{body: `{}`, region: "us-east-1"}); status != 200 {
			t.Errorf("dev %v, signed for the server's region: %d %s %s", dev, status, exc, msg)
		}
		status, exc, msg := sigSend(t, srv.URL, sigRequest{body: `{}`, region: "eu-west-1"})
		if status != 403 || exc != "InvalidSignatureException" || !strings.Contains(msg, "'eu-west-1'") || !strings.Contains(msg, "us-east-1") {
			t.Errorf("dev %v, signed for eu-west-1: %d %s %q; want 403 InvalidSignatureException naming both regions", dev, status, exc, msg)
		}
	}
}

func TestSigV4Skew(t *testing.T) {
	tests := []struct {
		name    string
		maxSkew time.Duration
		offset  time.Duration
		want    string
	}{
		{"at the limit", 0, -15 * time.Minute, ""},
		{"at the future limit", 0, 15 * time.Minute, ""},
		{"one second past", 0, -15*time.Minute - time.Second,
			"Signature expired: 20261126T101459Z is now earlier than 20261126T101500Z (20261126T103000Z - 15 min.)"},
		{"custom skew", 5 * time.Minute, 6 * time.Minute,
			"Signature not yet current: 20261126T103600Z is still later than 20261126T103500Z (20261126T103000Z + 5 min.)"},
		{"custom skew in seconds", 90 * time.Second, -2 * time.Minute,
			"Signature expired: 20261126T102800Z is now earlier than 20261126T102830Z (20261126T103000Z - 1m30s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := sigVerifier()
			v.MaxSkew = tt.maxSkew
			v.Now = func() time.Time { return sigTestNow.Add(400 * time.Millisecond) }
			srv := sigNewServer(t, v)
			_, _, msg := sigSend(t, srv.URL, sigRequest{body: `{}`, at: sigTestNow.Add(tt.offset)})
			if msg != tt.want {
				t.Errorf("got %v, want %v", msg, tt.want)
			}
		})
	}
}

func TestSigV4AWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the aws CLI")
	}
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not on PATH")
	}
	// The CLI's own environment, without any AWS settings of the machine.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")

	tests := []struct {
		name     string
		secret   string
		args     []string
		method   string
		query    string
		wantOut  string
		wantCode string
	}{
		{"get-stage", sigTestSecret, []string{"get-stage", "--arn", sigTestARN}, "POST", "", sigTestARN, ""},
		{"untag-resource", sigTestSecret, []string{"untag-resource", "--resource-arn", sigTestARN, "--tag-keys", "a", "b"}, "DELETE", "tagKeys=a&tagKeys=b", "", ""},
		{"list-tags-for-resource", sigTestSecret, []string{"list-tags-for-resource", "--resource-arn", sigTestARN}, "GET", "", `"tags"`, ""},
		{"wrong secret", "wrong", []string{"get-stage", "--arn", sigTestARN}, "POST", "", "", "InvalidSignatureException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sigNewServer(t, sigVerifier())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := append([]string{"ivs-realtime"}, tt.args...)
			args = append(args, "--endpoint-url", srv.URL, "--region", "us-east-1", "--output", "json")
			cmd := exec.CommandContext(ctx, awsPath, args...)
			cmd.Env = append(env, "AWS_ACCESS_KEY_ID="+sigTestKeyID, "AWS_SECRET_ACCESS_KEY="+tt.secret)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("aws CLI timed out: %v", stderr.String())
			}

			calls := srv.Calls()
			if len(calls) != 1 {
				t.Fatalf("got %v requests, want %v (stderr: %v)", len(calls), 1, stderr.String())
			}
			c := calls[0]
			if c.Method != tt.method || c.RawQuery != tt.query {
				t.Errorf("got %v ?%v, want %v ?%v", c.Method, c.RawQuery, tt.method, tt.query)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("aws CLI: %v: %v", err, stderr.String())
				}
				if c.Status != http.StatusOK || c.AccessKeyID != sigTestKeyID {
					t.Errorf("got %v %v, want %v %v", c.Status, c.AccessKeyID, http.StatusOK, sigTestKeyID)
				}
				if !strings.Contains(stdout.String(), tt.wantOut) {
					t.Errorf("output: got %v, want it to contain %v", stdout.String(), tt.wantOut)
				}
				return
			}
			if err == nil {
				t.Fatalf("aws CLI succeeded, want %v", tt.wantCode)
			}
			if c.Exception != tt.wantCode || !strings.Contains(stderr.String(), tt.wantCode) {
				t.Errorf("got %v (stderr %v), want %v", c.Exception, stderr.String(), tt.wantCode)
			}
		})
	}
}

func TestSigV4ParseRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		want sigAuth
	}{
		{
			"AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("ab", 32),
			sigAuth{"AKID", "20261126", "us-east-1", "ivs", "aws4_request", []string{"host", "x-amz-date"}, strings.Repeat("ab", 32)},
		},
		{
			" AWS4-HMAC-SHA256 Signature=" + strings.Repeat("0", 64) + ",SignedHeaders=host,Credential=K/20260101/eu-west-1/ivs/aws4_request ",
			sigAuth{"K", "20260101", "eu-west-1", "ivs", "aws4_request", []string{"host"}, strings.Repeat("0", 64)},
		},
	}
	for _, tt := range tests {
		got, err := sigParseAuthorization(tt.in)
		if err != nil {
			t.Fatalf("got %v, want %v", err, nil)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("got %v, want %v", got, tt.want)
		}
		again, err := sigParseAuthorization(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip: got %v (%v), want %v", again, err, got)
		}
	}
}

func FuzzSigV4Header(f *testing.F) {
	sig := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{
		"",
		sigAlgorithm,
		sigAlgorithm + " ",
		sigAlgorithm + " Credential=AKID/20261126/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig,
		sigAlgorithm + " Signature=" + sig + ",Credential=" + sigTestKeyID + "/20261126/us-east-1/ivs/aws4_request,SignedHeaders=content-length;host;x-amz-date",
		sigAlgorithm + " Credential=a/b/c/d/e, SignedHeaders=;, Signature==",
		sigAlgorithm + " Credential=,,,=,SignedHeaders",
		"AWS AKID:signature",
		"Bearer token",
	} {
		f.Add(s)
	}
	dev := &SigV4Verifier{Dev: true, Now: func() time.Time { return sigTestNow }}
	strict := sigVerifier()
	strict.Now = dev.Now
	f.Fuzz(func(t *testing.T, h string) {
		for _, v := range []*SigV4Verifier{dev, strict} {
			r := httptest.NewRequest(http.MethodPost, "/GetStage", strings.NewReader("{}"))
			r.Header.Set("X-Amz-Date", "20261126T103000Z")
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", h)
			if _, err := v.Verify(r, []byte("{}")); err != nil {
				var ae *AuthError
				if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Exception == "" || ae.Message == "" {
					t.Fatalf("got %#v, want a 403 *AuthError", err)
				}
			}
		}
		a, err := sigParseAuthorization(h)
		if err != nil {
			return
		}
		again, err := sigParseAuthorization(a.String())
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("round trip of %q: got %v (%v), want %v", h, again, err, a)
		}
	})
}
