package web_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/web"
	"github.com/ivsrt/ivsrt/web/webtest"
)

func newHandler(t *testing.T, cfg web.Config) *web.Handler {
	t.Helper()
	h, err := web.NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestRoutes(t *testing.T) {
	h := newHandler(t, web.Config{Region: "eu-west-1", PublicURL: "https://media.example.com"})
	tests := []struct {
		method, path string
		status       int
		contentType  string
		location     string
	}{
		{"GET", "/join", 200, "text/html; charset=utf-8", ""},
		{"GET", "/join?token=abc", 200, "text/html; charset=utf-8", ""},
		{"HEAD", "/join", 200, "text/html; charset=utf-8", ""},
		{"GET", "/console", 200, "text/html; charset=utf-8", ""},
		{"GET", "/client/ivsrt.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/client/ivs-stage.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/ivs-sample", 200, "text/html; charset=utf-8", ""},
		{"GET", "/ivs-sample/app.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/ivs-sample/", 301, "", "/ivs-sample"},
		{"GET", "/join/join.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/console/console.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/console/sigv4.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/console/player.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/console/config.json", 200, "application/json", ""},
		{"GET", "/shared/ivsrt.css", 200, "text/css; charset=utf-8", ""},
		{"GET", "/shared/icon.svg", 200, "image/svg+xml", ""},
		{"GET", "/", 302, "", "/console"},
		{"GET", "/join/?token=abc", 301, "", "/join?token=abc"},
		{"GET", "/console/", 301, "", "/console"},
		{"GET", "/join/index.html", 404, "", ""},
		{"GET", "/client/", 404, "", ""},
		{"GET", "/client/../web.go", 404, "", ""},
		{"GET", "/shared/nothing.css", 404, "", ""},
		{"POST", "/join", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res := get(t, h, tt.method, tt.path, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status got %v, want %v", res.StatusCode, tt.status)
			}
			if tt.contentType != "" {
				if got := res.Header.Get("Content-Type"); got != tt.contentType {
					t.Errorf("Content-Type got %v, want %v", got, tt.contentType)
				}
			}
			if got := res.Header.Get("Location"); got != tt.location {
				t.Errorf("Location got %v, want %v", got, tt.location)
			}
			if tt.method == "POST" {
				return
			}
			for name, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"X-Frame-Options":        "DENY",
			} {
				if got := res.Header.Get(name); got != want {
					t.Errorf("%s got %q, want %q", name, got, want)
				}
			}
			csp := res.Header.Get("Content-Security-Policy")
			for _, part := range []string{
				"default-src 'none'", "script-src 'self'", "style-src 'self'", "media-src 'self' blob: mediastream:",
				"connect-src 'self' ws://example.com wss://example.com https://media.example.com wss://media.example.com",
				"frame-ancestors 'none'", "base-uri 'none'",
			} {
				if !strings.Contains(csp, part) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, part)
				}
			}
			if strings.Contains(csp, "unsafe-") {
				t.Errorf("Content-Security-Policy %q allows something unsafe", csp)
			}
		})
	}
}

func TestPermissionsPolicy(t *testing.T) {
	h := newHandler(t, web.Config{Region: "us-east-1"})
	for path, want := range map[string]string{"/join": "camera=(self), microphone=(self)", "/console": "camera=(), microphone=()"} {
		if got := get(t, h, "GET", path, nil).Header.Get("Permissions-Policy"); !strings.Contains(got, want) {
			t.Errorf("%s: Permissions-Policy got %q, want it to contain %q", path, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  web.Config
		want string
	}{
		{web.Config{Region: "eu-central-1"}, `{"region":"eu-central-1","dev":false}`},
		{web.Config{Region: "us-east-1", Dev: true}, `{"region":"us-east-1","dev":true}`},
	} {
		res := get(t, newHandler(t, tt.cfg), "GET", "/console/config.json", nil)
		body, _ := io.ReadAll(res.Body)
		if string(body) != tt.want {
			t.Errorf("config.json got %s, want %s", body, tt.want)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("config.json Cache-Control got %q, want no-store", got)
		}
	}
}

func TestBadPublicURL(t *testing.T) {
	for _, u := range []string{"media.example.com", "ftp://x", "http://exa mple.com", "http://x/\r\n"} {
		if _, err := web.NewHandler(web.Config{Region: "us-east-1", PublicURL: u}); err == nil {
			t.Errorf("NewHandler with public URL %q: got no error", u)
		}
	}
}

func TestHostNotEchoedUnchecked(t *testing.T) {
	h := newHandler(t, web.Config{Region: "us-east-1"})
	r := httptest.NewRequest("GET", "/join", nil)
	r.Host = "evil.example.com; script-src *"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if csp := w.Result().Header.Get("Content-Security-Policy"); strings.Contains(csp, "evil") {
		t.Errorf("Content-Security-Policy %q names a malformed Host", csp)
	}
}

// TestClientImportableAnywhere: an app served from another origin may
// import the client as a module; pages stay same-origin.
func TestClientImportableAnywhere(t *testing.T) {
	h := newHandler(t, web.Config{Region: "us-east-1"})
	for _, p := range []string{"/client/ivsrt.js", "/client/ivs-stage.js"} {
		if got := get(t, h, "GET", p, nil).Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s: Access-Control-Allow-Origin got %q, want *", p, got)
		}
	}
	if got := get(t, h, "GET", "/join", nil).Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("/join: Access-Control-Allow-Origin got %q, want none", got)
	}
}

func TestRevalidation(t *testing.T) {
	h := newHandler(t, web.Config{Region: "us-east-1"})
	res := get(t, h, "GET", "/client/ivsrt.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("no ETag")
	}
	if got := res.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control got %q, want no-cache", got)
	}
	res = get(t, h, "GET", "/client/ivsrt.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("with If-None-Match: status got %v, want %v", res.StatusCode, http.StatusNotModified)
	}
	if got := get(t, h, "GET", "/join?token=x", nil).Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("join page Cache-Control got %q, want no-store", got)
	}
}

// TestPagesLoadWhatExists checks that every script, style sheet and image
// a page names is served.
func TestPagesLoadWhatExists(t *testing.T) {
	h := newHandler(t, web.Config{Region: "us-east-1"})
	ref := regexp.MustCompile(`(?:src|href)="(/[^"#?]*)"|from "(/[^"]*)"`)
	for _, page := range []string{"/join", "/console", "/ivs-sample", "/join/join.js", "/console/console.js", "/ivs-sample/app.js", "/client/ivs-stage.js"} {
		body, _ := io.ReadAll(get(t, h, "GET", page, nil).Body)
		for _, m := range ref.FindAllStringSubmatch(string(body), -1) {
			path := m[1] + m[2]
			if path == "/join" || path == "/console" {
				continue
			}
			if res := get(t, h, "GET", path, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s names %s: status got %v, want 200", page, path, res.StatusCode)
			}
		}
	}
}

// TestConsoleNamesWhatExists checks that every element the console's
// script finds by id is in its page, and that each tab has its view.
func TestConsoleNamesWhatExists(t *testing.T) {
	h := newHandler(t, web.Config{Region: "us-east-1"})
	page, _ := io.ReadAll(get(t, h, "GET", "/console", nil).Body)
	script, _ := io.ReadAll(get(t, h, "GET", "/console/console.js", nil).Body)
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		if ids[m[1]] {
			t.Errorf("the console page has two elements with id %q", m[1])
		}
		ids[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\$\("([^"]+)"\)`).FindAllStringSubmatch(string(script), -1) {
		if !ids[m[1]] {
			t.Errorf("console.js uses #%s, which the page lacks", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`data-tab="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		view := m[1] + "-view"
		if m[1] == "" {
			view = "stages-view"
		}
		if !ids[view] {
			t.Errorf("tab %q has no #%s", m[1], view)
		}
		if m[1] != "" && !strings.Contains(string(script), jsString(m[1])) {
			t.Errorf("console.js does not know tab %q", m[1])
		}
	}
}

func TestIsWebRequest(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/", true},
		{"HEAD", "/join", true},
		{"GET", "/console", true},
		{"GET", "/console/config.json", true},
		{"GET", "/client/ivsrt.js", true},
		{"GET", "/client/ivs-stage.js", true},
		{"GET", "/ivs-sample", true},
		{"GET", "/ivs-sample/app.js", true},
		{"GET", "/shared/ivsrt.css", true},
		{"POST", "/", false},
		{"POST", "/console", false},
		{"POST", "/CreateStage", false},
		{"GET", "/CreateStage", false},
		{"GET", "/tags/arn", false},
		{"GET", "/events", false},
		{"GET", "/joined", false},
	} {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if got := web.IsWebRequest(r); got != tt.want {
			t.Errorf("IsWebRequest(%s %s) got %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

// signCase is a request the console's signer and the Go SDK's sign alike.
type signCase struct {
	Name         string            `json:"name"`
	Method       string            `json:"method"`
	Path         string            `json:"path"` // escaped, with the query
	Headers      map[string]string `json:"headers"`
	Body         string            `json:"body"`
	SessionToken string            `json:"sessionToken,omitempty"`
}

// TestSigV4MatchesGo signs fixed requests with the console's JavaScript
// signer in Chromium, with WebCrypto and with its own SHA-256, and checks
// that the signature is the one aws-sdk-go-v2 computes and that the
// server's verifier accepts it; and the signer's SHA-256 against Go's.
func TestSigV4MatchesGo(t *testing.T) {
	b := webtest.NewBrowser(t)
	srv := httptest.NewServer(newHandler(t, web.Config{Region: "us-east-1"}))
	t.Cleanup(srv.Close)

	const (
		region = "eu-west-1"
		keyID  = "AKIDEXAMPLE0000TEST1"
		secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	)
	signingTime := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	arn := "arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Astage%2FabcdEFGH1234"
	cases := []signCase{
		{Name: "empty list", Method: "POST", Path: "/ListStages", Body: "{}"},
		{Name: "body with unicode", Method: "POST", Path: "/CreateParticipantToken",
			Headers: map[string]string{"Content-Type": "application/json"},
			Body:    `{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/abcdEFGH1234","userId":"zoë ✓","attributes":{"a":"b c"}}`},
		{Name: "escaped path", Method: "GET", Path: "/tags/" + arn},
		{Name: "repeated query keys", Method: "DELETE", Path: "/tags/" + arn + "?tagKeys=b&tagKeys=a%20b&tagKeys=c%2Bd&tagKeys=%E2%9C%93&tagKeys=a"},
		{Name: "a page of dead letters", Method: "GET", Path: "/v1/events/dead-letters?sink=webhook-2&maxResults=50&nextToken=1234%2Fwebhook-2"},
		{Name: "spaces in a header and a session token", Method: "POST", Path: "/GetStage",
			Headers: map[string]string{"X-Custom-Header": "  one   two  "}, Body: `{"arn":"x"}`, SessionToken: "session/token+1="},
	}

	tab := b.NewTab("signer")
	tab.Navigate(srv.URL + "/console")
	host := strings.TrimPrefix(srv.URL, "http://")
	verifier := &api.SigV4Verifier{
		Credentials: []api.Credential{{AccessKeyID: keyID, SecretAccessKey: secret}},
		Service:     "ivs",
		Now:         func() time.Time { return signingTime.Add(time.Minute) },
	}

	for _, tc := range cases {
		for _, webCrypto := range []bool{true, false} {
			name := tc.Name + " (WebCrypto)"
			if !webCrypto {
				name = tc.Name + " (own SHA-256)"
			}
			t.Run(name, func(t *testing.T) {
				input, _ := json.Marshal(tc)
				got := webtest.Eval[map[string]string](tab, `(async () => {
					const tc = `+string(input)+`;
					const { signRequest } = await import("/console/sigv4.js");
					const signed = await signRequest({
						method: tc.method, url: location.origin + tc.path, headers: tc.headers || {}, body: tc.body,
						region: `+jsString(region)+`, service: "ivs", accessKeyId: `+jsString(keyID)+`,
						secretAccessKey: `+jsString(secret)+`, sessionToken: tc.sessionToken,
						date: new Date("2026-11-24T10:00:00Z"), webCrypto: `+jsBool(webCrypto)+`,
					});
					return signed.headers;
				})()`)

				// What the Go SDK signs for the same request.
				want := goSign(t, "http://"+host+tc.Path, tc, keyID, secret, region, signingTime)
				if got["Authorization"] != want {
					t.Errorf("Authorization\n got %s\nwant %s", got["Authorization"], want)
				}
				if got["X-Amz-Date"] != "20261124T100000Z" {
					t.Errorf("X-Amz-Date got %q, want 20261124T100000Z", got["X-Amz-Date"])
				}

				// And the server's verifier accepts it, and only it.
				r := httptest.NewRequest(tc.Method, "http://"+host+tc.Path, strings.NewReader(tc.Body))
				for k, v := range got {
					r.Header.Set(k, v)
				}
				if _, err := verifier.Verify(r, []byte(tc.Body)); err != nil {
					t.Errorf("the server's verifier refused the signature: %v", err)
				}
				if _, err := verifier.Verify(r, []byte(tc.Body+" ")); err == nil {
					t.Errorf("the server's verifier accepted the signature for another body")
				}
			})
		}
	}
	t.Run("own SHA-256", func(t *testing.T) { checkSHA256(t, tab) })
	if v := tab.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// checkSHA256 checks the signer's own SHA-256 and HMAC-SHA256 against
// Go's on inputs around the block boundaries, and keys shorter and longer
// than a block.
func checkSHA256(t *testing.T, tab *webtest.Tab) {
	lengths := []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 1000}
	type result struct {
		Sum  []string `json:"sum"`
		HMAC []string `json:"hmac"`
	}
	got := webtest.Eval[result](tab, `(async () => {
		const { sha256, hmacSHA256 } = await import("/console/sigv4.js");
		const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
		const bytes = (n) => new Uint8Array(n).map((_, i) => (i * 7 + 3) & 255);
		const lengths = `+jsonString(lengths)+`;
		return {
			sum: lengths.map((n) => hex(sha256(bytes(n)))),
			hmac: lengths.map((n) => hex(hmacSHA256(bytes(n), new TextEncoder().encode("message")))),
		};
	})()`)
	for i, n := range lengths {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(j*7 + 3)
		}
		sum := sha256.Sum256(data)
		if want := hex.EncodeToString(sum[:]); got.Sum[i] != want {
			t.Errorf("sha256 of %d bytes got %s, want %s", n, got.Sum[i], want)
		}
		mac := hmac.New(sha256.New, data)
		mac.Write([]byte("message"))
		if want := hex.EncodeToString(mac.Sum(nil)); got.HMAC[i] != want {
			t.Errorf("HMAC-SHA256 with a %d-byte key got %s, want %s", n, got.HMAC[i], want)
		}
	}
}

func goSign(t *testing.T, url string, tc signCase, keyID, secret, region string, at time.Time) string {
	t.Helper()
	r, err := http.NewRequestWithContext(context.Background(), tc.Method, url, http.NoBody)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range tc.Headers {
		r.Header.Set(k, v)
	}
	sum := sha256.Sum256([]byte(tc.Body))
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: tc.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "ivs", region, at); err != nil {
		t.Fatalf("sign: %v", err)
	}
	return r.Header.Get("Authorization")
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func jsBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TestBrowserConsoleDeliveryHelpers checks the console's helpers for its event
// delivery tab: the query that lists dead letters, and what a sink's last
// error and delivery say of its health.
func TestBrowserConsoleDeliveryHelpers(t *testing.T) {
	b := webtest.NewBrowser(t)
	srv := httptest.NewServer(newHandler(t, web.Config{Region: "us-east-1"}))
	t.Cleanup(srv.Close)
	tab := b.NewTab("console")
	tab.Navigate(srv.URL + "/console")

	for _, tt := range []struct {
		sink, nextToken string
		max             int
		want            string
	}{
		{"", "", 50, "/v1/events/dead-letters?maxResults=50"},
		{"webhook", "", 10, "/v1/events/dead-letters?sink=webhook&maxResults=10"},
		{"a b&c", "12/a b&c", 50, "/v1/events/dead-letters?sink=a%20b%26c&maxResults=50&nextToken=12%2Fa%20b%26c"},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const { deadLettersPath } = await import("/console/console.js");
			return deadLettersPath(`+jsString(tt.sink)+`, `+strconv.Itoa(tt.max)+`, `+jsString(tt.nextToken)+`);
		})()`)
		if got != tt.want {
			t.Errorf("deadLettersPath(%q, %d, %q) got %q, want %q", tt.sink, tt.max, tt.nextToken, got, tt.want)
		}
	}

	for _, tt := range []struct {
		name   string
		status map[string]string
		want   string
	}{
		{"nothing yet", map[string]string{}, ""},
		{"delivered", map[string]string{"lastDeliveredAt": "2026-11-26T10:00:00Z"}, "delivering"},
		{"failed", map[string]string{"lastError": "HTTP 500", "lastErrorAt": "2026-11-26T10:00:00Z"}, "failing"},
		{"failed, then delivered", map[string]string{"lastError": "HTTP 500", "lastErrorAt": "2026-11-26T10:00:00Z",
			"lastDeliveredAt": "2026-11-26T10:00:01.5Z"}, "delivering"},
		{"delivered, then failed", map[string]string{"lastError": "HTTP 500", "lastErrorAt": "2026-11-26T10:00:02Z",
			"lastDeliveredAt": "2026-11-26T10:00:01.5Z"}, "failing"},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const { sinkHealth } = await import("/console/console.js");
			return sinkHealth(`+jsonString(tt.status)+`)?.text || "";
		})()`)
		if got != tt.want {
			t.Errorf("sinkHealth, %s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if v := tab.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// TestBrowserConsoleIngestHelpers checks the console's helpers for its
// ingest tab: the attributes of a form, and the endpoint of a protocol.
func TestBrowserConsoleIngestHelpers(t *testing.T) {
	b := webtest.NewBrowser(t)
	srv := httptest.NewServer(newHandler(t, web.Config{Region: "us-east-1"}))
	t.Cleanup(srv.Close)
	tab := b.NewTab("console")
	tab.Navigate(srv.URL + "/console")

	for _, tt := range []struct {
		text string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"role=camera", map[string]string{"role": "camera"}},
		{"role=camera, room = studio", map[string]string{"role": "camera", "room": "studio"}},
		{"role=camera\nroom=studio\n\n", map[string]string{"role": "camera", "room": "studio"}},
		{"url=a=b, flag, =x", map[string]string{"url": "a=b", "flag": ""}},
	} {
		got := webtest.Eval[map[string]string](tab, `(async () => {
			const { parseAttributes } = await import("/console/console.js");
			return parseAttributes(`+jsString(tt.text)+`);
		})()`)
		if jsonString(got) != jsonString(tt.want) {
			t.Errorf("parseAttributes(%q) got %v, want %v", tt.text, got, tt.want)
		}
	}

	endpoints := map[string]string{"rtmp": "rtmp://media.example.com:1935/app/", "rtmps": "rtmps://media.example.com:443/app/"}
	for _, tt := range []struct {
		endpoints any
		protocol  string
		want      string
	}{
		{endpoints, "RTMPS", "rtmps://media.example.com:443/app/"},
		{endpoints, "RTMP", "rtmp://media.example.com:1935/app/"},
		{map[string]string{"rtmp": "rtmp://media.example.com:1935/app/"}, "RTMPS", ""},
		{nil, "RTMP", ""},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const { ingestEndpoint } = await import("/console/console.js");
			return ingestEndpoint(`+jsonString(tt.endpoints)+`, `+jsString(tt.protocol)+`);
		})()`)
		if got != tt.want {
			t.Errorf("ingestEndpoint(%v, %s) got %q, want %q", tt.endpoints, tt.protocol, got, tt.want)
		}
	}
	if v := tab.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// TestBrowserConsoleEncoderHelpers checks the console's helpers for its
// encoders tab: the video of the create form, and how a video shows.
func TestBrowserConsoleEncoderHelpers(t *testing.T) {
	b := webtest.NewBrowser(t)
	srv := httptest.NewServer(newHandler(t, web.Config{Region: "us-east-1"}))
	t.Cleanup(srv.Close)
	tab := b.NewTab("console")
	tab.Navigate(srv.URL + "/console")

	for _, tt := range []struct {
		fields map[string]string
		want   string // the video as JSON
	}{
		{map[string]string{"width": "", "height": "", "framerate": "", "bitrate": ""}, `null`},
		{map[string]string{"width": " ", "height": "", "framerate": "", "bitrate": ""}, `null`},
		{map[string]string{"width": "1920", "height": "1080", "framerate": "29.97", "bitrate": "6000"},
			`{"width":1920,"height":1080,"framerate":29.97,"bitrate":6000000}`},
		{map[string]string{"width": "", "height": "", "framerate": "60", "bitrate": "0.001"}, `{"framerate":60,"bitrate":1}`},
		{map[string]string{"width": "640", "height": "", "framerate": "", "bitrate": "2500.5"}, `{"width":640,"bitrate":2500500}`},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const { encoderVideo } = await import("/console/console.js");
			return JSON.stringify(encoderVideo(`+jsonString(tt.fields)+`));
		})()`)
		if got != tt.want {
			t.Errorf("encoderVideo(%v) got %s, want %s", tt.fields, got, tt.want)
		}
	}

	for _, tt := range []struct {
		video any
		want  string
	}{
		{map[string]any{"width": 1280, "height": 720, "framerate": 30, "bitrate": 2500000}, "1280×720, 30 fps, 2.5 Mbps"},
		{map[string]any{"width": 1080, "height": 1920, "framerate": 29.97, "bitrate": 8500000}, "1080×1920, 29.97 fps, 8.5 Mbps"},
		{map[string]any{"width": 2, "height": 2, "framerate": 1, "bitrate": 800000}, "2×2, 1 fps, 800 kbps"},
		{map[string]any{"width": 640, "height": 360, "framerate": 60, "bitrate": 999}, "640×360, 60 fps, 999 bps"},
		{nil, ""},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const { formatVideo } = await import("/console/console.js");
			return formatVideo(`+jsonString(tt.video)+`);
		})()`)
		if got != tt.want {
			t.Errorf("formatVideo(%v) got %q, want %q", tt.video, got, tt.want)
		}
	}
	if v := tab.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// TestBrowserConsoleCompositionHelpers checks the console's helpers for
// its compositions tab: the StartComposition input of the start form, and
// how a layout shows.
func TestBrowserConsoleCompositionHelpers(t *testing.T) {
	b := webtest.NewBrowser(t)
	srv := httptest.NewServer(newHandler(t, web.Config{Region: "us-east-1"}))
	t.Cleanup(srv.Close)
	tab := b.NewTab("console")
	tab.Navigate(srv.URL + "/console")

	const (
		stage   = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
		storage = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234"
		encoder = "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234"
		channel = "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234"
	)
	for _, tt := range []struct {
		fields map[string]any
		want   string // the input as JSON
	}{
		{map[string]any{"stageArn": stage, "layout": "grid", "featured": " ", "pipAttribute": "guest", "pipPosition": "TOP_LEFT"},
			`{"stageArn":"` + stage + `","layout":{"grid":{}},"destinations":[]}`},
		{map[string]any{"stageArn": stage, "layout": "grid", "featured": " featured ", "omitStopped": true, "s3": true, "storageArn": storage, "s3Encoder": encoder},
			`{"stageArn":"` + stage + `","layout":{"grid":{"featuredParticipantAttribute":"featured","omitStoppedVideo":true}},` +
				`"destinations":[{"s3":{"storageConfigurationArn":"` + storage + `","encoderConfigurationArns":["` + encoder + `"]}}]}`},
		{map[string]any{"stageArn": stage, "layout": "pip", "featured": "", "pipAttribute": "guest", "pipPosition": "BOTTOM_LEFT",
			"channel": true, "channelArn": " " + channel + " ", "channelEncoder": ""},
			`{"stageArn":"` + stage + `","layout":{"pip":{"pipParticipantAttribute":"guest","pipPosition":"BOTTOM_LEFT"}},` +
				`"destinations":[{"channel":{"channelArn":"` + channel + `"}}]}`},
		{map[string]any{"stageArn": stage, "layout": "pip", "featured": "host", "pipPosition": "TOP_RIGHT",
			"s3": true, "storageArn": storage, "s3Encoder": encoder, "channel": true, "channelArn": channel, "channelEncoder": encoder},
			`{"stageArn":"` + stage + `","layout":{"pip":{"featuredParticipantAttribute":"host","pipPosition":"TOP_RIGHT"}},` +
				`"destinations":[{"s3":{"storageConfigurationArn":"` + storage + `","encoderConfigurationArns":["` + encoder + `"]}},` +
				`{"channel":{"channelArn":"` + channel + `","encoderConfigurationArn":"` + encoder + `"}}]}`},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const { compositionInput } = await import("/console/console.js");
			return JSON.stringify(compositionInput(`+jsonString(tt.fields)+`));
		})()`)
		if got != tt.want {
			t.Errorf("compositionInput(%v)\ngot  %s\nwant %s", tt.fields, got, tt.want)
		}
	}

	for _, tt := range []struct {
		layout any
		want   string
	}{
		{nil, "Grid"},
		{map[string]any{"grid": map[string]any{"gridGap": 2, "videoAspectRatio": "VIDEO"}}, "Grid"},
		{map[string]any{"grid": map[string]any{"featuredParticipantAttribute": "featured", "omitStoppedVideo": true}},
			"Grid, featured participant attribute featured, stopped video left out"},
		{map[string]any{"pip": map[string]any{"pipPosition": "TOP_LEFT", "pipParticipantAttribute": "guest"}},
			"Picture-in-picture at the top left, PiP participant attribute guest"},
		{map[string]any{"pip": map[string]any{"featuredParticipantAttribute": "host"}},
			"Picture-in-picture at the bottom right, featured participant attribute host"},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const { describeLayout } = await import("/console/console.js");
			return describeLayout(`+jsonString(tt.layout)+`);
		})()`)
		if got != tt.want {
			t.Errorf("describeLayout(%v) got %q, want %q", tt.layout, got, tt.want)
		}
	}
	for state, want := range map[string]bool{"STARTING": false, "ACTIVE": false, "STOPPING": false, "RECONNECTING": false, "STOPPED": true, "FAILED": true} {
		if got := webtest.Eval[bool](tab, `(async () => {
			const { compositionEnded } = await import("/console/console.js");
			return compositionEnded(`+jsonString(state)+`);
		})()`); got != want {
			t.Errorf("compositionEnded(%s) got %v, want %v", state, got, want)
		}
	}
	if v := tab.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// fakeStage is the media plane's side of the join page, as much as the
// page needs to show a participant and the end of it: the events
// WebSocket and a WHIP endpoint that refuses.
type fakeStage struct {
	t    *testing.T
	kick chan struct{} // ends the participant "alice" as DisconnectParticipant does
}

func (f *fakeStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/whip" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"code": "INSUFFICIENT_CAPABILITIES", "message": "not in this test"}`)
		return
	}
	claims, err := tokenClaims(r.URL.Query().Get("access_token"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.t.Errorf("accept the events WebSocket: %v", err)
		return
	}
	ctx := r.Context()
	go func() { // pings are read and dropped
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	send := func(v any) {
		b, _ := json.Marshal(v)
		c.Write(ctx, websocket.MessageText, b)
	}
	id, _ := claims["jti"].(string)
	if claims["user_id"] != "alice" {
		send(map[string]string{"type": "error", "code": "TOKEN_EXPIRED", "message": "token expired"})
		c.Close(4401, "token expired")
		return
	}
	base := "http://" + r.Host
	send(map[string]any{"type": "joined", "participantId": id, "stageArn": claims["resource"], "sessionId": "st-AbCdEfGhIjKlM",
		"userId": "alice", "whipUrl": base + "/whip", "whepUrl": base + "/whep/", "pingIntervalMs": 5000})
	send(map[string]any{"type": "state", "version": 1, "sessionId": "st-AbCdEfGhIjKlM", "participants": []map[string]any{
		{"participantId": id, "userId": "alice", "protocol": "UNKNOWN", "joinedAt": "2026-12-07T10:00:00Z", "publishing": false}}})
	select {
	case <-f.kick:
		send(map[string]string{"type": "disconnected", "code": "DISCONNECTED", "message": "the meeting is over"})
		c.Close(4403, "the meeting is over")
	case <-ctx.Done():
	}
}

// TestBrowserJoinPage shows a camera on the join page: in a tile shaped
// like its video, uncropped, with the name below the picture. Then the
// participant is disconnected, and the page offers to join with a new
// token; that one has expired, and the page offers it again.
func TestBrowserJoinPage(t *testing.T) {
	b := webtest.NewBrowser(t)
	stage := &fakeStage{t: t, kick: make(chan struct{})}
	pages := newHandler(t, web.Config{Region: "us-east-1"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" || r.URL.Path == "/whip" {
			stage.ServeHTTP(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	token := func(id, user string) string {
		host := strings.TrimPrefix(srv.URL, "http://")
		return unsignedToken(map[string]any{"jti": id, "user_id": user, "topic": "abcdABCD1234",
			"resource":   "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234",
			"events_url": "ws://" + host + "/events", "whip_url": "http://" + host + "/whip",
			"capabilities": map[string]bool{"allow_publish": true, "allow_subscribe": true},
			"exp":          time.Now().Add(time.Hour).Unix()})
	}

	tab := b.NewTab("join")
	tab.Navigate(srv.URL + "/join?token=" + url.QueryEscape(token("Ab3dE5gH7jK9", "alice")))
	tile := `document.querySelector(".tile[data-local]")`
	tab.WaitFor("the camera in alice's tile", `(() => { const v = `+tile+`?.querySelector("video");
		return !!v && v.videoWidth > 0 && `+tile+`.classList.contains("has-video"); })()`, 15*time.Second)
	type layout struct {
		VideoWidth  float64 `json:"videoWidth"`
		VideoHeight float64 `json:"videoHeight"`
		ObjectFit   string  `json:"objectFit"`
		Frame       rect    `json:"frame"`
		Video       rect    `json:"video"`
		Name        rect    `json:"name"`
		NameText    string  `json:"nameText"`
	}
	l := webtest.Eval[layout](tab, `(async () => {
		await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
		const tile = `+tile+`, video = tile.querySelector("video");
		const box = (e) => { const r = e.getBoundingClientRect(); return { top: r.top, bottom: r.bottom, width: r.width, height: r.height }; };
		return { videoWidth: video.videoWidth, videoHeight: video.videoHeight, objectFit: getComputedStyle(video).objectFit,
			frame: box(tile.querySelector(".frame")), video: box(video), name: box(tile.querySelector(".name")),
			nameText: tile.querySelector(".name").textContent };
	})()`)
	t.Logf("camera %vx%v, frame %.0fx%.0f", l.VideoWidth, l.VideoHeight, l.Frame.Width, l.Frame.Height)
	if l.ObjectFit != "contain" {
		t.Errorf("video object-fit got %q, want contain: the whole picture", l.ObjectFit)
	}
	if want, got := l.VideoWidth/l.VideoHeight, l.Frame.Width/l.Frame.Height; math.Abs(got-want) > 0.01*want {
		t.Errorf("frame is %.0fx%.0f (%.3f), want the video's shape, %vx%v (%.3f)", l.Frame.Width, l.Frame.Height, got,
			l.VideoWidth, l.VideoHeight, want)
	}
	if l.Frame.Height > webtest.ViewportHeight*0.7+1 {
		t.Errorf("frame is %.0f px high, want at most 70%% of the window's %d", l.Frame.Height, webtest.ViewportHeight)
	}
	if l.Name.Top < l.Video.Bottom-0.5 {
		t.Errorf("name at %.1f px, want it below the picture, which ends at %.1f", l.Name.Top, l.Video.Bottom)
	}
	if l.NameText != "alice (you)" {
		t.Errorf("name got %q, want %q", l.NameText, "alice (you)")
	}
	tab.Screenshot("join-page-tile")

	// Disconnected: the page says why and offers a new token.
	close(stage.kick)
	tab.WaitFor("the end, and the form for a new token", `!document.getElementById("notice").hidden &&
		document.getElementById("notice").textContent.includes("the meeting is over") &&
		!document.getElementById("token-form-card").hidden`, 10*time.Second)
	if got := webtest.Eval[string](tab, `document.getElementById("token-form-title").textContent`); got != "Join again" {
		t.Errorf("form title got %q, want %q", got, "Join again")
	}
	if webtest.Eval[bool](tab, `!document.getElementById("rejoin").hidden`) {
		t.Errorf("Rejoin offered after a disconnection, whose token is revoked")
	}
	tab.Screenshot("join-page-join-again")

	// The new token has expired: the same again.
	expired := token("Zy9xW8vU7tS6", "bob")
	tab.Do("join with a new token",
		chromedp.SetValue(chromedp.ID("token-input"), expired),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
	)
	waitAcrossNavigation(t, tab, "the expired token's end", `location.search === `+jsString("?token="+url.QueryEscape(expired))+` &&
		document.getElementById("notice").textContent.includes("TOKEN_EXPIRED") &&
		!document.getElementById("token-form-card").hidden && document.getElementById("token-input").value === ""`, 10*time.Second)
	if v := tab.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// rect is a DOMRect's part the tests use.
type rect struct {
	Top    float64 `json:"top"`
	Bottom float64 `json:"bottom"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

// unsignedToken is a participant token with claims and no valid signature:
// the page reads the claims, and only the server checks the signature.
func unsignedToken(claims map[string]any) string {
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	return enc(map[string]string{"alg": "ES384", "typ": "JWT"}) + "." + enc(claims) + ".c2ln"
}

// tokenClaims reads the claims of unsignedToken's tokens.
func tokenClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(b, &claims)
}

// waitAcrossNavigation is Tab.WaitFor for a page that is being replaced:
// evaluating fails while the next page loads, and is tried again.
func waitAcrossNavigation(t *testing.T, tab *webtest.Tab, what, expression string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(tab.Context(), chromedp.Evaluate[bool](expression))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waiting for %s: last got %v, %v", tab.Name, what, ok, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowserPlayerPlaylists checks what the console's player reads of a
// recording: the codecs and the rendition of the multivariant playlist,
// the segments of the media playlist with their init segments and
// discontinuities, the keys they
// name, refused outside the recording, and where the media starts.
func TestBrowserPlayerPlaylists(t *testing.T) {
	b := webtest.NewBrowser(t)
	srv := httptest.NewServer(newHandler(t, web.Config{Region: "us-east-1"}))
	t.Cleanup(srv.Close)
	tab := b.NewTab("console")
	tab.Navigate(srv.URL + "/console")
	call := func(expr string) string {
		t.Helper()
		return webtest.Eval[string](tab, `(async () => {
			const player = await import("/console/player.js");
			try {
				return JSON.stringify(`+expr+`);
			} catch (err) {
				return "error: " + err.message;
			}
		})()`)
	}

	const multivariant = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=1234567,AVERAGE-BANDWIDTH=1000000,CODECS=\"avc1.42c01f,opus\",RESOLUTION=640x360,FRAME-RATE=30.000\nhigh/playlist.m3u8\n"
	const media = "#EXTM3U\r\n#EXT-X-VERSION:7\r\n#EXT-X-INDEPENDENT-SEGMENTS\r\n#EXT-X-TARGETDURATION:7\r\n#EXT-X-MEDIA-SEQUENCE:0\r\n" +
		"#EXT-X-PLAYLIST-TYPE:VOD\r\n#EXT-X-MAP:URI=\"init.mp4\"\r\n#EXTINF:6.00000,\r\n1.mp4\r\n#EXTINF:3.50000,\r\n2.mp4\r\n#EXT-X-ENDLIST\r\n"
	const event = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6,\n1.mp4\n"
	// New parameter sets (a new init segment), then a break.
	const changes = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6,\n1.mp4\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n" +
		"#EXTINF:2.5,\n2.mp4\n#EXT-X-DISCONTINUITY\n#EXTINF:4,\n3.mp4\n#EXTINF:1,\n4.mp4\n#EXT-X-ENDLIST\n"
	for _, tt := range []struct{ expr, want string }{
		{`player.parseMultivariant(` + jsString(multivariant) + `)`, `{"uri":"high/playlist.m3u8","codecs":["avc1.42c01f","opus"],"width":640,"height":360}`},
		{`player.parseMultivariant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"opus\"\na.m3u8")`, `{"uri":"a.m3u8","codecs":["opus"],"width":0,"height":0}`},
		{`player.parseMultivariant("#EXTM3U\n")`, `error: the multivariant playlist has no variant`},
		{`player.parseMultivariant("<html>")`, `error: not an HLS playlist (no #EXTM3U)`},
		{`player.parseMediaPlaylist(` + jsString(media) + `)`,
			`{"segments":[{"uri":"1.mp4","duration":6,"start":0,"map":"init.mp4","discontinuity":false},` +
				`{"uri":"2.mp4","duration":3.5,"start":6,"map":"init.mp4","discontinuity":false}],"ended":true,"duration":9.5}`},
		{`player.parseMediaPlaylist(` + jsString(event) + `)`,
			`{"segments":[{"uri":"1.mp4","duration":6,"start":0,"map":"init.mp4","discontinuity":false}],"ended":false,"duration":6}`},
		{`player.parseMediaPlaylist(` + jsString(changes) + `)`,
			`{"segments":[{"uri":"1.mp4","duration":6,"start":0,"map":"init.mp4","discontinuity":false},` +
				`{"uri":"2.mp4","duration":2.5,"start":6,"map":"init-2.mp4","discontinuity":true},` +
				`{"uri":"3.mp4","duration":4,"start":8.5,"map":"init-2.mp4","discontinuity":true},` +
				`{"uri":"4.mp4","duration":1,"start":12.5,"map":"init-2.mp4","discontinuity":false}],"ended":true,"duration":13.5}`},
		{`player.parseMediaPlaylist("#EXTM3U\n#EXTINF:6,\n1.mp4\n")`, `error: segment 1.mp4 has no init segment (#EXT-X-MAP)`},
		{`player.parseMediaPlaylist("#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n")`, `error: an #EXT-X-MAP has no URI: #EXT-X-MAP:BYTERANGE="1@0"`},
		{`player.parseMediaPlaylist("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n1.mp4\n")`, `error: segment 1.mp4 has no #EXTINF`},
		{`player.parseAttributes('URI="a,b.mp4",BYTERANGE=10@0,X=')`, `{"URI":"a,b.mp4","BYTERANGE":"10@0","X":""}`},
		{`player.resolveKey("media/hls/multivariant.m3u8", "high/playlist.m3u8")`, `"media/hls/high/playlist.m3u8"`},
		{`player.resolveKey("media/hls/high/playlist.m3u8", "12.mp4")`, `"media/hls/high/12.mp4"`},
		{`player.resolveKey("media/hls/high/playlist.m3u8", "../../../other/1.mp4")`, `error: the playlist names "../../../other/1.mp4", outside the recording`},
		{`player.resolveKey("media/hls/high/playlist.m3u8", "/etc/1.mp4")`, `error: the playlist names "/etc/1.mp4", outside the recording`},
		{`player.resolveKey("media/hls/high/playlist.m3u8", "https://elsewhere.example/1.mp4")`, `error: the playlist names "https://elsewhere.example/1.mp4", outside the recording`},
		{`player.resolveKey("media/hls/high/playlist.m3u8", "a/./1.mp4")`, `error: the playlist names "a/./1.mp4", outside the recording`},
		{`player.resolveKey("media/hls/high/playlist.m3u8", "1.mp4?x=1")`, `error: the playlist names "1.mp4?x=1", outside the recording`},
		{`player.mimeType(["avc1.42c01f", "opus"])`, `"video/mp4; codecs=\"avc1.42c01f,opus\""`},
		{`player.mimeType(["opus"])`, `"audio/mp4; codecs=\"opus\""`},
		{`player.mimeType([])`, `error: the multivariant playlist does not say the recording's codecs (CODECS)`},
		{`player.gapAhead([[0, 0.98], [1, 6.98], [7, 9.08]], 0.898)`, `1`}, // stalled at the end of a range
		{`player.gapAhead([[0, 0.98], [1, 6.98], [7, 9.08]], 0.99)`, `1`},  // in the hole
		{`player.gapAhead([[0, 0.98], [1, 6.98], [7, 9.08]], 6.9)`, `7`},   // the next one
		{`player.gapAhead([[0, 0.98], [1, 6.98], [7, 9.08]], 0.5)`, `-1`},  // playing
		{`player.gapAhead([[0, 0.98], [1, 6.98], [7, 9.08]], 9.0)`, `-1`},  // the end
		{`player.gapAhead([[0.02, 5]], 0)`, `0.02`},                        // before the first
		{`player.gapAhead([[0, 0.9], [2, 3]], 0.8)`, `-1`},                 // a hole too long to be a glitch
		{`player.gapAhead([], 0)`, `-1`},
		{`player.formatDuration(9.4)`, `"0:09"`},
		{`player.formatDuration(3725)`, `"1:02:05"`},
	} {
		if got := call(tt.expr); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.expr, got, tt.want)
		}
	}

	// How many segments a recording that failed kept: none without its
	// playlists; a failure other than a missing object is the caller's.
	segments := func(objects map[string]string, failure string) string {
		t.Helper()
		return webtest.Eval[string](tab, `(async () => {
			const player = await import("/console/player.js");
			const objects = `+jsonString(objects)+`;
			const load = async (key) => {
				if (`+jsString(failure)+`) throw Object.assign(new Error(`+jsString(failure)+`), { status: 500 });
				if (!(key in objects)) throw Object.assign(new Error("no " + key), { status: 404 });
				return new TextEncoder().encode(objects[key]).buffer;
			};
			try {
				return String(await player.recordedSegments(load, (err) => err.status === 404));
			} catch (err) {
				return "error: " + err.message;
			}
		})()`)
	}
	both := map[string]string{"media/hls/multivariant.m3u8": multivariant, "media/hls/high/playlist.m3u8": media}
	for _, tt := range []struct {
		name    string
		objects map[string]string
		failure string
		want    string
	}{
		{"both playlists", both, "", "2"},
		{"no playlists", map[string]string{}, "", "0"},
		{"no media playlist", map[string]string{"media/hls/multivariant.m3u8": multivariant}, "", "0"},
		{"the bucket fails", both, "Internal server error.", "error: Internal server error."},
	} {
		if got := segments(tt.objects, tt.failure); got != tt.want {
			t.Errorf("recordedSegments, %s: got %s, want %s", tt.name, got, tt.want)
		}
	}

	// Where the media starts: the earliest track fragment, each in its
	// track's timescale; tkhd, mdhd and tfdt of versions 0 and 1.
	box := func(typ string, parts ...[]byte) []byte {
		var body []byte
		for _, p := range parts {
			body = append(body, p...)
		}
		out := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		return append(append(out, typ...), body...)
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	full := func(version byte) []byte { return []byte{version, 0, 0, 0} }
	init := box("ftyp", []byte("iso6"), u32(1)) // other boxes come first
	init = append(init, box("moov",
		box("mvhd", full(0), make([]byte, 96)),
		box("trak",
			box("tkhd", full(0), u32(0), u32(0), u32(1), make([]byte, 68)),
			box("mdia", box("mdhd", full(0), u32(0), u32(0), u32(90000), u32(0), make([]byte, 4)))),
		box("trak",
			box("tkhd", full(1), u64(0), u64(0), u32(2), make([]byte, 72)),
			box("mdia", box("hdlr", full(0), make([]byte, 20)), box("mdhd", full(1), u64(0), u64(0), u32(48000), u64(0), make([]byte, 4)))))...)
	segment := box("moof",
		box("mfhd", full(0), u32(1)),
		box("traf", box("tfhd", full(0), u32(1)), box("tfdt", full(1), u64(2*90000))),
		box("traf", box("tfhd", full(0), u32(2)), box("tfdt", full(0), u32(91200))))
	segment = append(segment, box("mdat", make([]byte, 16))...)
	bytes := func(b []byte) string {
		return `Uint8Array.from(atob("` + base64.StdEncoding.EncodeToString(b) + `"), (c) => c.charCodeAt(0)).buffer`
	}
	if got := call(`player.mediaStart(` + bytes(init) + `, ` + bytes(segment) + `)`); got != "1.9" {
		t.Errorf("mediaStart got %s, want 1.9 (the audio's 91200/48000; the video's is 2)", got)
	}
	if got := call(`player.mediaStart(` + bytes(init) + `, ` + bytes(box("moof", box("mfhd", full(0), u32(1)))) + `)`); got != "0" {
		t.Errorf("mediaStart of a segment without tfdt got %s, want 0", got)
	}
	if got := call(`player.mediaStart(new ArrayBuffer(3), ` + bytes(segment[:20]) + `)`); got != "0" {
		t.Errorf("mediaStart of truncated boxes got %s, want 0", got)
	}

	// The console's side: the path of an object, and which recordings
	// play.
	for _, tt := range []struct{ expr, want string }{
		{`console.recordingPath("recs", "AbC/st-X/pId/17/media/hls/multivariant.m3u8")`, `"/v1/recordings/recs/AbC/st-X/pId/17/media/hls/multivariant.m3u8"`},
		{`console.playable({state: "STOPPED", bucket: "recs", prefix: "a/"})`, `true`},
		{`console.playable({state: "FAILED", bucket: "recs", prefix: "a/", segments: 2})`, `true`},
		{`console.playable({state: "FAILED", bucket: "recs", prefix: "a/", segments: 0})`, `false`},
		{`console.playable({state: "ACTIVE", bucket: "recs", prefix: "a/"})`, `false`},
		{`console.playable({state: "STOPPED", bucket: "", prefix: ""})`, `false`},
		{`console.playable(undefined)`, `false`},
	} {
		got := webtest.Eval[string](tab, `(async () => {
			const console = await import("/console/console.js");
			return JSON.stringify(`+tt.expr+`);
		})()`)
		if got != tt.want {
			t.Errorf("%s got %s, want %s", tt.expr, got, tt.want)
		}
	}
	if v := tab.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}
