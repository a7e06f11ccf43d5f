package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/coder/websocket"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/token"
)

// The hostile tests send the whole server what a careless or malicious
// client could, and check that each is refused the way the server
// documents (the AWS error shape for the API, the media plane's refusals
// for WHIP, WHEP and the events WebSocket) and that nothing stored
// changed.
//
// Already covered elsewhere, and left out here: bodies just over and at
// 256 KiB (TestValidationWire), a body altered after signing, unsigned
// requests and unknown keys (TestAuth), SigV4 skew and scope rules against
// the verifier alone (api.TestSigV4Signed), expired, garbage, tampered and
// revoked participant tokens on the events WebSocket and WHIP
// (sfu.TestTokens).

const invalidJSON = "The request body is not valid JSON for this operation."

// notUTF8 is the message of a body that is not UTF-8, which JSON must be.
const notUTF8 = "The request body is not valid UTF-8."

func TestHostileJSON(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	arn := createStage(t, c, "kept")
	unknown := ivsrt.NewStageARN(testRegion, testAccountID, "noSuchStage1")

	// Deep nesting just under the size limit: the decoder must give up
	// on it, not the stack.
	const depth = 100000
	deepArrays := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	deepObjects := strings.Repeat(`{"":`, depth/2) + `1` + strings.Repeat("}", depth/2)
	ofType := func(field, typ string) wantError {
		return validation("at '"+field+"'", "Member must be of type "+typ)
	}

	tests := []struct {
		name, path, body string
		want             wantError
	}{
		{"100000 nested arrays in participantTokenConfigurations", "/CreateStage",
			`{"name":"deep","participantTokenConfigurations":` + deepArrays + `}`, validation(invalidJSON)},
		{"50000 nested objects in tags", "/CreateStage", `{"name":"deep","tags":` + deepObjects + `}`, validation(invalidJSON)},
		{"50000 nested objects in attributes", "/CreateParticipantToken",
			`{"stageArn":"` + arn + `","attributes":{"k":` + deepObjects + `}}`, validation(invalidJSON)},
		{"duplicate key, the last one invalid", "/CreateStage", `{"name":"fine","name":"not fine!"}`,
			validation("Value 'not fine!' at 'name'")},
		{"duplicate arn, the last one unknown", "/DeleteStage", `{"arn":"` + arn + `","arn":"` + string(unknown) + `"}`,
			notFound(string(unknown))},
		{"duplicate stageArn, the last one null", "/CreateParticipantToken", `{"stageArn":"` + arn + `","stageArn":null}`,
			validation("Value null at 'stageArn'")},
		{"raw NUL byte in a string", "/CreateStage", "{\"name\":\"a\x00b\"}", validation(invalidJSON)},
		{"NUL byte between fields", "/CreateStage", "{\"name\":\"a\"\x00}", validation(invalidJSON)},
		{"escaped NUL in the name", "/CreateStage", `{"name":"a\u0000b"}`, validation("at 'name'", "regular expression pattern")},
		{"invalid UTF-8 in the name", "/CreateStage", "{\"name\":\"\xff\xfe\"}", validation(notUTF8)},
		{"invalid UTF-8 in a tag value", "/CreateStage", "{\"name\":\"n\",\"tags\":{\"k\":\"\xff\"}}", validation(notUTF8)},
		{"invalid UTF-8 in a key", "/CreateStage", "{\"\xff\":\"x\"}", validation(notUTF8)},
		{"invalid UTF-8 after the body", "/CreateStage", "{\"name\":\"x\"}\xff", validation(notUTF8)},
		{"lone surrogate in the ARN", "/DeleteStage", `{"arn":"` + arn + `\ud800"}`, validation("at 'arn'")},
		{"1e999 as a duration", "/CreateParticipantToken", `{"stageArn":"` + arn + `","duration":1e999}`, ofType("duration", "integer")},
		{"1e999 as a token duration in CreateStage", "/CreateStage",
			`{"name":"n","participantTokenConfigurations":[{"duration":1e999}]}`, ofType("participantTokenConfigurations.duration", "integer")},
		{"-1e999 as maxResults", "/ListStages", `{"maxResults":-1e999}`, ofType("maxResults", "integer")},
		{"1e999 as a name", "/CreateStage", `{"name":1e999}`, ofType("name", "string")},
		{"a bare 1e999", "/CreateStage", `1e999`, validation(invalidJSON)},
	}
	before := state(t, m, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := signedRequest(t, m, "POST", tt.path, tt.body)
			checkRawError(t, ex, tt.want)
			if after := state(t, m, c); after != before {
				t.Errorf("state after a refused call got %v, want %v", after, before)
			}
		})
	}

	// With duplicate keys the last one counts, for validation as for
	// what is stored: what was checked is what is kept.
	t.Run("duplicate key, the first one invalid", func(t *testing.T) {
		ex := signedRequest(t, m, "POST", "/CreateStage", `{"name":"not fine!","name":"dup-last"}`)
		if ex.Status != http.StatusOK {
			checkRawError(t, ex, validation("at 'name'"))
			return
		}
		var out struct{ Stage struct{ Arn, Name string } }
		ex.decode(t, &out)
		got, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(out.Stage.Arn)})
		if err != nil {
			t.Fatalf("GetStage: %v", err)
		}
		if out.Stage.Name != "dup-last" || aws.ToString(got.Stage.Name) != "dup-last" {
			t.Errorf("acknowledged name %q and stored name %q, want dup-last", out.Stage.Name, aws.ToString(got.Stage.Name))
		}
	})
}

// signAt signs a request to m as the SDK would, for the given region,
// service and signing time.
func signAt(t *testing.T, m *Main, path, body, region, service string, at time.Time) *http.Request {
	t.Helper()
	r := newRequest(t, m, "POST", path, body)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretAccessKey}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatalf("sign request: %v", err)
	}
	return r
}

func TestHostileSigV4(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	createStage(t, c, "kept")
	const body = `{"name":"intruder"}`
	// rescope rewrites the credential scope of a signed request: the
	// signature covers it.
	rescope := func(r *http.Request, from, to string) *http.Request {
		auth := r.Header.Get("Authorization")
		if !strings.Contains(auth, from) {
			t.Fatalf("Authorization %q has no %q", auth, from)
		}
		r.Header.Set("Authorization", strings.Replace(auth, from, to, 1))
		return r
	}
	now := time.Now()
	tests := []struct {
		name string
		req  func() *http.Request
		want wantError
	}{
		{"replayed 20 minutes later", func() *http.Request {
			return signAt(t, m, "/CreateStage", body, testRegion, "ivs", now.Add(-20*time.Minute))
		}, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"Signature expired", "15 min."}}},
		{"signed 20 minutes ahead", func() *http.Request {
			return signAt(t, m, "/CreateStage", body, testRegion, "ivs", now.Add(20*time.Minute))
		}, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"Signature not yet current"}}},
		{"signed for another service", func() *http.Request {
			return signAt(t, m, "/CreateStage", body, testRegion, "execute-api", now)
		}, wantError{"IncompleteSignatureException", http.StatusForbidden, []string{"Credential should be scoped to correct service: 'ivs'."}}},
		{"signed for another service, scope rewritten", func() *http.Request {
			return rescope(signAt(t, m, "/CreateStage", body, testRegion, "s3", now), "/s3/", "/ivs/")
		}, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"does not match"}}},
		{"signed for another region, scope rewritten", func() *http.Request {
			return rescope(signAt(t, m, "/CreateStage", body, "eu-west-1", "ivs", now), "/eu-west-1/", "/"+testRegion+"/")
		}, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"does not match"}}},
		{"replayed with its date moved into the window", func() *http.Request {
			r := signAt(t, m, "/CreateStage", body, testRegion, "ivs", now.Add(-20*time.Minute))
			old := r.Header.Get("X-Amz-Date")
			fresh := now.UTC().Format("20060102T150405Z")
			r.Header.Set("X-Amz-Date", fresh)
			return rescope(r, "/"+old[:8]+"/", "/"+fresh[:8]+"/")
		}, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"does not match"}}},
		{"replayed on another operation", func() *http.Request {
			r := signAt(t, m, "/ListStages", body, testRegion, "ivs", now)
			r.URL.Path = "/CreateStage"
			return r
		}, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"does not match"}}},
		{"body altered, its length kept", func() *http.Request {
			r := signAt(t, m, "/CreateStage", `{"name":"harmless"}`, testRegion, "ivs", now)
			r.Body = io.NopCloser(strings.NewReader(`{"name":"intruder"}`))
			return r
		}, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"does not match"}}},
	}
	before := state(t, m, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRawError(t, send(t, tt.req()), tt.want)
			if after := state(t, m, c); after != before {
				t.Errorf("state after a refused call got %v, want %v", after, before)
			}
		})
	}
}

// TestHostileMediaTokens presents the media plane with participant tokens
// it must not honour, or honour only for their own stage: a token of
// another stage, one signed by another server, one with "alg":"none", an
// expired one, and a genuine signature over a stage its participant is
// not in.
func TestHostileMediaTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a publisher")
	}
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	stageA := createStage(t, c, "watched")
	stageB := createStage(t, c, "elsewhere")
	pubTok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stageA), UserId: aws.String("publisher")})
	pub, _, _ := runBot(t, bot.Config{Token: aws.ToString(pubTok.Token), Video: true})
	pubID := pub.ParticipantID()
	session := waitPublishing(t, c, stageA, pubID)

	viewerA := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stageA), UserId: aws.String("viewer")})
	viewerB := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stageB), UserId: aws.String("viewer")})
	key, err := token.LoadOrCreateKey(filepath.Join(m.Config.DataDir, "token-signing-key.pem"))
	if err != nil {
		t.Fatalf("load the server's key: %v", err)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claimsOf := func(tok string) *ivsrt.ParticipantToken {
		got, err := token.NewIssuer(key).Verify(ctx, tok)
		if err != nil {
			t.Fatalf("verify a token the server issued: %v", err)
		}
		return got
	}
	reissue := func(key *ecdsa.PrivateKey, pt *ivsrt.ParticipantToken) string {
		s, err := token.NewIssuer(key).Issue(ctx, pt)
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		return s
	}
	expired := claimsOf(aws.ToString(viewerA.Token))
	expired.CreatedAt = time.Now().Add(-2 * time.Hour)
	expired.ExpirationTime = time.Now().Add(-time.Hour)
	misplaced := claimsOf(aws.ToString(viewerB.Token))
	misplaced.StageARN = ivsrt.StageARN(stageA)

	type refusal struct {
		status int
		code   string
	}
	invalid := refusal{http.StatusUnauthorized, "TOKEN_INVALID"}
	tests := []struct {
		name  string
		token string
		whip  refusal // zero: not tried
		whep  refusal
		ws    string // the error code the events WebSocket gives; "" joins stage B
	}{
		{"token of another stage", aws.ToString(viewerB.Token),
			refusal{}, refusal{http.StatusNotFound, "PUBLISHER_NOT_FOUND"}, ""},
		{"signed by another server", reissue(otherKey, claimsOf(aws.ToString(viewerA.Token))), invalid, invalid, "TOKEN_INVALID"},
		{"alg none", algNone(t, aws.ToString(viewerA.Token)), invalid, invalid, "TOKEN_INVALID"},
		{"alg none for another stage", algNone(t, aws.ToString(viewerB.Token)), invalid, invalid, "TOKEN_INVALID"},
		{"genuine signature, participant of another stage", reissue(key, misplaced), invalid, invalid, "TOKEN_INVALID"},
		// Expired tokens on WHIP and the WebSocket are sfu.TestTokens'.
		{"expired", reissue(key, expired), refusal{}, refusal{http.StatusUnauthorized, "TOKEN_EXPIRED"}, "-"},
	}
	before := state(t, m, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.whip.status != 0 {
				checkMediaRefusal(t, mediaPost(t, m, "/whip", tt.token), tt.whip.status, tt.whip.code)
			}
			checkMediaRefusal(t, mediaPost(t, m, "/whep/"+pubID, tt.token), tt.whep.status, tt.whep.code)
			switch tt.ws {
			case "-":
			case "":
				// The token joins its own stage, never the one watched.
				first, conn := dialEvents(t, m, tt.token)
				if first["type"] != "joined" || first["stageArn"] != stageB {
					t.Errorf("events WebSocket: first message %v, want joined in %s", first, stageB)
				}
				conn.Close(websocket.StatusNormalClosure, "")
			default:
				first, conn := dialEvents(t, m, tt.token)
				if first["type"] != "error" || first["code"] != tt.ws {
					t.Errorf("events WebSocket: first message %v, want an error %s", first, tt.ws)
				}
				_, _, err := conn.Read(ctx)
				if got := websocket.CloseStatus(err); got != 4401 {
					t.Errorf("events WebSocket: closed with %d (%v), want 4401", got, err)
				}
				conn.CloseNow()
			}
			eventually(t, 10*time.Second, "only the publisher connected", func() error {
				if n := m.SFU.ParticipantCount(); n != 1 {
					return fmt.Errorf("%d participants connected", n)
				}
				return nil
			})
			if after := state(t, m, c); after != before {
				t.Errorf("state after refused tokens got %v, want %v", after, before)
			}
			checkOnlyPublisher(t, c, stageA, session, pubID)
		})
	}
}

// waitPublishing waits until the participant publishes in the stage and
// returns the stage's session.
func waitPublishing(t *testing.T, c *ivsrealtime.Client, stage, participant string) string {
	t.Helper()
	var session string
	eventually(t, 20*time.Second, participant+" publishing", func() error {
		st, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
		if err != nil {
			return err
		}
		session = aws.ToString(st.Stage.ActiveSessionId)
		if session == "" {
			return errors.New("no session")
		}
		out, err := c.GetParticipant(testContext(t), &ivsrealtime.GetParticipantInput{
			StageArn: aws.String(stage), SessionId: aws.String(session), ParticipantId: aws.String(participant)})
		if err != nil {
			return err
		}
		if !out.Participant.Published {
			return errors.New("not published yet")
		}
		return nil
	})
	return session
}

// checkOnlyPublisher checks that the watched stage's session has no
// participant but its publisher.
func checkOnlyPublisher(t *testing.T, c *ivsrealtime.Client, stage, session, publisher string) {
	t.Helper()
	out, err := c.ListParticipants(testContext(t), &ivsrealtime.ListParticipantsInput{
		StageArn: aws.String(stage), SessionId: aws.String(session), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatalf("ListParticipants: %v", err)
	}
	for _, p := range out.Participants {
		if id := aws.ToString(p.ParticipantId); id != publisher && p.State == "CONNECTED" {
			t.Errorf("participant %s is connected to the watched stage", id)
		}
	}
}

// algNone returns tok with its header's algorithm set to "none" and its
// signature removed.
func algNone(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var header map[string]any
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	header["alg"] = "none"
	raw, _ = json.Marshal(header)
	return base64.RawURLEncoding.EncodeToString(raw) + "." + parts[1] + "."
}

// hostileOffer is a well-formed WHEP offer; the tokens are refused before
// it is read.
const hostileOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n" +
	"a=ice-ufrag:hostileufrag\r\na=ice-pwd:hostilepasswordhostilepass\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=rtpmap:96 VP8/90000\r\n"

type mediaAnswer struct {
	status int
	header http.Header
	body   []byte
}

func mediaPost(t *testing.T, m *Main, path, tok string) mediaAnswer {
	t.Helper()
	r, err := http.NewRequestWithContext(testContext(t), http.MethodPost, "http://"+m.Addr()+path, strings.NewReader(hostileOffer))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/sdp")
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err := localHTTPClient(t).Do(r)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return mediaAnswer{resp.StatusCode, resp.Header, body}
}

// checkMediaRefusal checks a refusal of the media plane: the status, a
// JSON body with the code, and for a refused token the RFC 6750
// challenge.
func checkMediaRefusal(t *testing.T, a mediaAnswer, status int, code string) {
	t.Helper()
	var e struct{ Code, Message string }
	if err := json.Unmarshal(a.body, &e); err != nil || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q (%s), want a JSON error", a.status, a.body, a.header.Get("Content-Type"))
		return
	}
	if a.status != status || e.Code != code || e.Message == "" {
		t.Errorf("got %d %s (%q), want %d %s", a.status, e.Code, e.Message, status, code)
	}
	if status == http.StatusUnauthorized && !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate got %q, want an invalid_token challenge", a.header.Get("WWW-Authenticate"))
	}
}

// dialEvents opens the events WebSocket with the token in the query and
// returns its first message.
func dialEvents(t *testing.T, m *Main, tok string) (map[string]any, *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testContext(t), 10*time.Second)
	defer cancel()
	u := "ws://" + m.Addr() + "/events?access_token=" + url.QueryEscape(tok)
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: localHTTPClient(t)})
	if err != nil {
		t.Fatalf("dial events: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("events WebSocket: read: %v", err)
	}
	var msg map[string]any
	if err := json.Unmarshal(data, &msg); err != nil {
		t.Fatalf("events WebSocket: message %q: %v", data, err)
	}
	return msg, conn
}
