package sfu_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
)

// customerKey is a key pair a customer made, whose public half it
// imported: it signs its own participant tokens (self-signed tokens).
type customerKey struct {
	h   *harness
	key *ecdsa.PrivateKey
	arn string
}

// importKey makes a P-384 key pair and imports its public half.
func (h *harness) importKey(name string) *customerKey {
	h.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := h.client.ImportPublicKey(testContext(h.t), &ivsrealtime.ImportPublicKeyInput{
		Name:              aws.String(name),
		PublicKeyMaterial: aws.String(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))),
	})
	if err != nil {
		h.t.Fatalf("ImportPublicKey: %v", err)
	}
	return &customerKey{h: h, key: key, arn: aws.ToString(out.PublicKey.Arn)}
}

// selfSigned is what goes into a self-signed token.
type selfSigned struct {
	stage, jti, user   string
	publish, subscribe bool
	lifetime           time.Duration // an hour when zero
	edit               func(claims jwt.MapClaims, header map[string]any)
}

// sign makes a self-signed token as AWS documents them, signed with the
// customer's key, its ARN as the kid.
func (k *customerKey) sign(s selfSigned) string {
	return k.signWith(jwt.SigningMethodES384, k.key, s)
}

func (k *customerKey) signWith(method jwt.SigningMethod, key any, s selfSigned) string {
	k.h.t.Helper()
	if s.lifetime == 0 {
		s.lifetime = time.Hour
	}
	now := k.h.clock.Now()
	events := strings.Replace(k.h.url, "http", "ws", 1) + "/events"
	claims := jwt.MapClaims{
		"exp":          now.Add(s.lifetime).Unix(),
		"iat":          now.Unix(),
		"jti":          s.jti,
		"resource":     s.stage,
		"topic":        ivsrt.StageARN(s.stage).ID(),
		"events_url":   events,
		"whip_url":     k.h.url + "/whip",
		"user_id":      s.user,
		"attributes":   map[string]string{"signedBy": "customer"},
		"capabilities": map[string]bool{"allow_publish": s.publish, "allow_subscribe": s.subscribe},
		"version":      "1.0",
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = k.arn
	if s.edit != nil {
		s.edit(claims, tok.Header)
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		k.h.t.Fatalf("sign: %v", err)
	}
	return signed
}

// refusedEverywhere checks that the events WebSocket, WHIP and WHEP all
// refuse tok with the same code (and the same message where given).
func (h *harness) refusedEverywhere(name, tok, remote string, status int, code, message string) {
	h.t.Helper()
	c := h.dialEvents(tok)
	m := c.next("error")
	if m["code"] != code || (message != "" && m["message"] != message) {
		h.t.Errorf("%s: events WebSocket: got %v, want %s %q", name, m, code, message)
	}
	c.waitClosed(5 * time.Second)
	for _, path := range []string{"/whip", "/whep/" + remote} {
		_, _, err := h.post(path, tok, "v=0\r\n")
		var e *httpError
		if !errors.As(err, &e) || e.Status != status || e.Code != code || (message != "" && e.Message != message) {
			h.t.Errorf("%s: POST %s: got %v, want %d %s %q", name, path, err, status, code, message)
		}
	}
}

// TestSelfSignedTokens: tokens a customer signs with its own key join,
// publish and subscribe as tokens the API issues do; a disconnected
// self-signed participant cannot come back with any token of its jti;
// once the key is deleted its tokens are refused, while those already in
// the stage stay.
func TestSelfSignedTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("self-signed")
	key := h.importKey("customer")
	hostTok := key.sign(selfSigned{stage: stage, jti: "host-1", user: "alice", publish: true, subscribe: true})
	viewerTok := key.sign(selfSigned{stage: stage, jti: "viewer-1", user: "bob", subscribe: true})

	// The viewer joins over the events WebSocket, as the jti.
	ws := h.dialEvents(viewerTok)
	joined := ws.next("joined")
	session, _ := joined["sessionId"].(string)
	if joined["participantId"] != "viewer-1" || joined["userId"] != "bob" || joined["stageArn"] != stage || session == "" {
		t.Fatalf("joined message: got %v, want viewer_1 (bob) in %s", joined, stage)
	}

	// The host publishes over WHIP, the viewer subscribes over WHEP, and
	// the media flows.
	pub := h.mustPublish(hostTok, vp8, true)
	sub := h.mustSubscribe(viewerTok, "host-1")
	sub.waitFor(webrtc.RTPCodecTypeVideo, 30)
	sub.waitFor(webrtc.RTPCodecTypeAudio, 30)
	ws.waitState("the host publishes", func(ps []map[string]any) bool {
		_, publishing := participantIDs(ps)
		return contains(publishing, "host-1")
	})

	// The API shows them as any participants, by their jti.
	ps := h.participants(stage, session)
	if p, ok := ps["host-1"]; !ok || aws.ToString(p.UserId) != "alice" || !p.Published || p.State != types.ParticipantStateConnected {
		t.Errorf("ListParticipants: host-1 got %+v, want alice, published, connected", p)
	}
	if p, ok := ps["viewer-1"]; !ok || aws.ToString(p.UserId) != "bob" || p.Published {
		t.Errorf("ListParticipants: viewer_1 got %+v, want bob, not published", p)
	}
	got, err := h.client.GetParticipant(testContext(t), &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage),
		SessionId: aws.String(session), ParticipantId: aws.String("host-1")})
	if err != nil {
		t.Fatalf("GetParticipant: %v", err)
	}
	if p := got.Participant; p.Attributes["signedBy"] != "customer" || aws.ToString(p.UserId) != "alice" || p.Protocol != types.ParticipantProtocolWhip {
		t.Errorf("GetParticipant host-1: got %+v, want alice, the token's attributes, WHIP", p)
	}
	h.waitHistory(stage, session, "viewer-1", "JOINED", "SUBSCRIBE_STARTED remote=host-1")

	// A jti may have an underscore, which DisconnectParticipant's
	// participantId allows and GetParticipant's does not (the model's
	// patterns differ): such a participant is listed, and disconnected.
	guest := h.dialEvents(key.sign(selfSigned{stage: stage, jti: "guest_1", user: "dave"}))
	if m := guest.next("joined"); m["participantId"] != "guest_1" {
		t.Fatalf("joined message: got %v, want guest_1", m)
	}
	if p, ok := h.participants(stage, session)["guest_1"]; !ok || aws.ToString(p.UserId) != "dave" || p.State != types.ParticipantStateConnected {
		t.Errorf("ListParticipants: guest_1 got %+v, want dave, connected", p)
	}
	_, err = h.client.GetParticipant(testContext(t), &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage),
		SessionId: aws.String(session), ParticipantId: aws.String("guest_1")})
	var invalid *types.ValidationException
	if !errors.As(err, &invalid) {
		t.Errorf("GetParticipant of guest_1: got %v, want ValidationException", err)
	}
	if _, err := h.client.DisconnectParticipant(testContext(t), &ivsrealtime.DisconnectParticipantInput{
		StageArn: aws.String(stage), ParticipantId: aws.String("guest_1")}); err != nil {
		t.Fatalf("DisconnectParticipant of guest_1: %v", err)
	}
	guest.waitClosed(5 * time.Second)

	// A token is allowed what it says: the viewer's may not publish.
	if _, err := h.publish(viewerTok, vp8, false); err == nil || err.(*httpError).Code != "INSUFFICIENT_CAPABILITIES" {
		t.Errorf("WHIP with a subscribe-only self-signed token: got %v, want 403 INSUFFICIENT_CAPABILITIES", err)
	}

	// DisconnectParticipant ends the viewer and revokes its jti: neither
	// its token nor a new one with the same jti joins again.
	if _, err := h.client.DisconnectParticipant(testContext(t), &ivsrealtime.DisconnectParticipantInput{
		StageArn: aws.String(stage), ParticipantId: aws.String("viewer-1"), Reason: aws.String("banned")}); err != nil {
		t.Fatalf("DisconnectParticipant of a self-signed participant: %v", err)
	}
	if code, reason := ws.waitClosed(5 * time.Second); code != 4403 || reason != "banned" {
		t.Errorf("viewer's WebSocket closed with %d %q, want 4403 \"banned\"", code, reason)
	}
	wait(t, sub.gone, "the viewer's subscription to end")
	h.refusedEverywhere("the disconnected viewer's token", viewerTok, "host-1", 401, "TOKEN_REVOKED", "the participant was disconnected: banned")
	again := key.sign(selfSigned{stage: stage, jti: "viewer-1", user: "bob", publish: true, subscribe: true, lifetime: 2 * time.Hour})
	h.refusedEverywhere("a new token of the disconnected jti", again, "host-1", 401, "TOKEN_REVOKED", "")
	_, err = h.client.DisconnectParticipant(testContext(t), &ivsrealtime.DisconnectParticipantInput{
		StageArn: aws.String(stage), ParticipantId: aws.String("never-joined")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DisconnectParticipant of a jti never presented: got %v, want ResourceNotFoundException", err)
	}

	// The key is deleted: its tokens no longer join, not even the
	// host's, whose publication goes on.
	if _, err := h.client.DeletePublicKey(testContext(t), &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(key.arn)}); err != nil {
		t.Fatalf("DeletePublicKey: %v", err)
	}
	const unknownKey = "token signed by an unknown key"
	h.refusedEverywhere("the host's token after DeletePublicKey", hostTok, "host-1", 401, "TOKEN_INVALID", unknownKey)
	fresh := key.sign(selfSigned{stage: stage, jti: "late-comer", user: "carol", subscribe: true})
	h.refusedEverywhere("a new token of the deleted key", fresh, "host-1", 401, "TOKEN_INVALID", unknownKey)
	watcher := h.token(stage, "watcher")
	late := h.mustSubscribe(aws.ToString(watcher.Token), "host-1")
	late.waitFor(webrtc.RTPCodecTypeVideo, 10)
	select {
	case <-pub.gone:
		t.Errorf("the host's publication ended with its key")
	default:
	}
	h.waitHistory(stage, session, "viewer-1", "JOINED", "SUBSCRIBE_STARTED remote=host-1", "PUBLISH_ERROR error=INSUFFICIENT_CAPABILITIES", "SUBSCRIBE_STOPPED remote=host-1", "LEFT",
		"JOIN_ERROR", "JOIN_ERROR", "JOIN_ERROR", "JOIN_ERROR", "JOIN_ERROR", "JOIN_ERROR")
}

// TestSelfSignedRefusals: self-signed tokens that must not join are
// refused as bad tokens the API issued are, with the same codes, on the
// events WebSocket, WHIP and WHEP.
func TestSelfSignedRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("refusals")
	other := h.createStage("other")
	key := h.importKey("customer")
	issued := h.token(stage, "issued")
	// A jti first used with the other stage is that stage's participant.
	elsewhere := h.dialEvents(key.sign(selfSigned{stage: other, jti: "taken-elsewhere", subscribe: true}))
	elsewhere.next("joined")

	stranger, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	never := ivsrt.NewPublicKeyARN("us-east-1", "123456789012", "NeverImport1")
	missingStage := string(ivsrt.NewStageARN("us-east-1", "123456789012", "NoSuchStage1"))
	// Each token has a participant id of its own.
	ok := func(jti string) selfSigned { return selfSigned{stage: stage, jti: jti, subscribe: true} }
	with := func(jti string, edit func(s *selfSigned)) selfSigned { s := ok(jti); edit(&s); return s }
	edited := func(jti string, edit func(c jwt.MapClaims, h map[string]any)) selfSigned {
		return with(jti, func(s *selfSigned) { s.edit = edit })
	}
	tests := []struct {
		name    string
		token   string
		status  int
		code    string
		message string
	}{
		{"forged: another key", key.signWith(jwt.SigningMethodES384, stranger, ok("forged")), 401, "TOKEN_INVALID", "invalid token signature"},
		{"tampered claims", tamper(t, key.sign(ok("tampered"))), 401, "TOKEN_INVALID", "invalid token signature"},
		{"unknown kid", key.sign(edited("unknown-kid", func(c jwt.MapClaims, h map[string]any) { h["kid"] = string(never) })),
			401, "TOKEN_INVALID", "token signed by an unknown key"},
		{"bad alg: ES256", key.signWith(jwt.SigningMethodES256, p256, ok("es256")), 401, "TOKEN_INVALID", "unsupported token signing algorithm"},
		{"expired", key.sign(edited("expired", func(c jwt.MapClaims, h map[string]any) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		})), 401, "TOKEN_EXPIRED", "token expired"},
		{"wrong stage: the topic of another", key.sign(edited("wrong-topic", func(c jwt.MapClaims, h map[string]any) {
			c["topic"] = ivsrt.StageARN(other).ID()
		})), 401, "TOKEN_INVALID", "token topic does not match its stage"},
		{"a stage that does not exist", key.sign(with("no-stage", func(s *selfSigned) { s.stage = missingStage })),
			404, "STAGE_NOT_FOUND", ""},
		{"lifetime over 14 days", key.sign(with("long", func(s *selfSigned) { s.lifetime = 14*24*time.Hour + time.Second })),
			401, "TOKEN_INVALID", "token lifetime (exp - iat) exceeds 14 days"},
		{"jti of 65 characters", key.sign(ok(strings.Repeat("j", 65))), 401, "TOKEN_INVALID", ""},
		{"jti of a token the API issued", key.sign(ok(aws.ToString(issued.ParticipantId))),
			401, "TOKEN_INVALID", "the participant id (jti) of this token is another participant's"},
		{"jti of another stage's participant", key.sign(ok("taken-elsewhere")), 401, "TOKEN_INVALID", "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.refusedEverywhere(tt.name, tt.token, "nobody", tt.status, tt.code, tt.message)
		})
	}
	// Nothing joined the stage.
	if s := h.activeSession(stage); s != "" {
		t.Errorf("the stage has session %s after refused tokens, want none", s)
	}
}

// tamper grants publish to a signed token, keeping its signature.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	claims, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(claims), `"allow_publish":false`, `"allow_publish":true`, 1)
	if forged == string(claims) {
		t.Fatalf("no allow_publish:false in %s", claims)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
}
