package sfu_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
)

// send writes a message to the events WebSocket.
func (c *wsClient) send(v any) {
	c.t.Helper()
	buf, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, buf); err != nil {
		c.t.Fatalf("write to the events WebSocket: %v", err)
	}
}

// exchange sends a token exchange and returns the answer: a
// "tokenExchanged" or an "exchangeTokenError" message.
func (c *wsClient) exchange(tok string) map[string]any {
	c.t.Helper()
	c.send(map[string]string{"type": "exchangeToken", "token": tok})
	timeout := time.After(testTimeout)
	for {
		select {
		case m := <-c.msgs:
			if m["type"] == "tokenExchanged" || m["type"] == "exchangeTokenError" {
				return m
			}
		case <-c.closed:
			c.t.Fatalf("events WebSocket closed (%v) while waiting for the exchange's answer", c.err)
		case <-timeout:
			c.t.Fatal("timed out waiting for the exchange's answer")
		}
	}
}

// withAttributes sets a self-signed token's attributes.
func withAttributes(attrs map[string]string) func(jwt.MapClaims, map[string]any) {
	return func(c jwt.MapClaims, _ map[string]any) { c["attributes"] = attrs }
}

// TestTokenExchange: a self-signed participant exchanges its token over
// the events WebSocket, without reconnecting. Promoted, it publishes;
// the others see its new user id and attributes; demoted, its
// publication ends at once, and then its subscriptions; a token the
// exchange replaced no longer works; what may not be exchanged is
// refused with the WebSocket left open; and the API lists each exchange
// with both tokens.
func TestTokenExchange(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("exchange")
	key := h.importKey("customer")

	host := h.token(stage, "host")
	hostID := aws.ToString(host.ParticipantId)
	h.mustPublish(aws.ToString(host.Token), vp8, true)
	watcherTok := h.token(stage, "watcher", types.ParticipantTokenCapabilitySubscribe)
	watcher := h.dialEvents(aws.ToString(watcherTok.Token))
	session, _ := watcher.next("joined")["sessionId"].(string)

	// A guest joins, subscribe-only, and watches the host.
	guestTok := key.sign(selfSigned{stage: stage, jti: "guest-1", user: "carol", subscribe: true,
		edit: withAttributes(map[string]string{"role": "guest"})})
	guest := h.dialEvents(guestTok)
	guest.next("joined")
	watching := h.mustSubscribe(guestTok, hostID)
	watching.waitFor(webrtc.RTPCodecTypeVideo, 10)
	if _, err := h.publish(guestTok, vp8, true); err == nil {
		t.Fatal("a subscribe-only guest published")
	}

	// Promoted: a new token, issued later, that may publish.
	h.clock.Advance(2 * time.Second)
	cohost := map[string]string{"role": "cohost", "featured": "true"}
	promoteTok := key.sign(selfSigned{stage: stage, jti: "guest-1", user: "carol-host", publish: true, subscribe: true,
		lifetime: 2 * time.Hour, edit: withAttributes(cohost)})
	m := guest.exchange(promoteTok)
	if m["type"] != "tokenExchanged" || m["userId"] != "carol-host" || !slices.Equal(capsOf(m), []string{"PUBLISH", "SUBSCRIBE"}) {
		t.Fatalf("promotion: got %v, want tokenExchanged as carol-host with PUBLISH and SUBSCRIBE", m)
	}
	watcher.waitState("the guest's new attributes", func(ps []map[string]any) bool {
		p := byID(ps, "guest-1")
		return p != nil && p["userId"] == "carol-host" && maps.Equal(attrsOf(p), cohost)
	})
	stagePub := h.mustPublish(promoteTok, vp8, true)
	watcher.waitState("the promoted guest publishes", func(ps []map[string]any) bool {
		p := byID(ps, "guest-1")
		return p != nil && p["publishing"] == true
	})
	hostView := h.mustSubscribe(aws.ToString(host.Token), "guest-1")
	hostView.waitFor(webrtc.RTPCodecTypeVideo, 10)

	// The token the promotion replaced no longer works, on WHIP nor WHEP.
	for _, path := range []string{"/whip", "/whep/" + hostID} {
		_, _, err := h.post(path, guestTok, "v=0\r\n")
		var e *httpError
		if !errors.As(err, &e) || e.Status != 401 || e.Code != "TOKEN_INVALID" || e.Message != "a token exchange replaced this token" {
			t.Errorf("POST %s with the replaced token: got %v, want 401 TOKEN_INVALID", path, err)
		}
	}

	// Demoted: the publication ends at once; the subscription stays.
	h.clock.Advance(2 * time.Second)
	demoteTok := key.sign(selfSigned{stage: stage, jti: "guest-1", user: "carol", subscribe: true,
		edit: withAttributes(map[string]string{"role": "guest"})})
	if m := guest.exchange(demoteTok); m["type"] != "tokenExchanged" || !slices.Equal(capsOf(m), []string{"SUBSCRIBE"}) {
		t.Fatalf("demotion: got %v", m)
	}
	wait(t, stagePub.gone, "the demoted guest's publication to end")
	wait(t, hostView.gone, "the host's subscription to the demoted guest to end")
	watcher.waitState("the demoted guest no longer publishes", func(ps []map[string]any) bool {
		p := byID(ps, "guest-1")
		return p != nil && p["publishing"] != true && p["userId"] == "carol"
	})
	var e *httpError
	if _, err := h.publish(promoteTok, vp8, true); !errors.As(err, &e) || e.Code != "TOKEN_INVALID" {
		t.Errorf("WHIP with the promotion's token after the demotion: got %v, want 401 TOKEN_INVALID", err)
	}
	select {
	case <-watching.gone:
		t.Error("the guest's subscription ended with its publish capability")
	default:
	}

	// Refused, the WebSocket staying open.
	other := h.createStage("other")
	refusals := []struct {
		name, tok, code string
	}{
		{"a token of CreateParticipantToken", aws.ToString(h.token(stage, "someone").Token), "TOKEN_EXCHANGE_REFUSED"},
		{"another jti", key.sign(selfSigned{stage: stage, jti: "guest-2", subscribe: true}), "TOKEN_EXCHANGE_REFUSED"},
		{"another stage", key.sign(selfSigned{stage: other, jti: "guest-1", subscribe: true}), "TOKEN_EXCHANGE_REFUSED"},
		{"issued earlier", key.sign(selfSigned{stage: stage, jti: "guest-1", subscribe: true,
			edit: func(c jwt.MapClaims, _ map[string]any) { c["iat"] = h.clock.Now().Add(-time.Minute).Unix() }}), "TOKEN_EXCHANGE_REFUSED"},
		{"expired", key.sign(selfSigned{stage: stage, jti: "guest-1", subscribe: true,
			edit: func(c jwt.MapClaims, _ map[string]any) {
				c["iat"], c["exp"] = h.clock.Now().Add(-time.Hour).Unix(), h.clock.Now().Add(-time.Second).Unix()
			}}), "TOKEN_EXPIRED"},
		{"not a token", "not.a.token", "TOKEN_INVALID"},
		{"no token", "", "TOKEN_MISSING"},
	}
	for _, r := range refusals {
		if m := guest.exchange(r.tok); m["type"] != "exchangeTokenError" || m["code"] != r.code {
			t.Errorf("exchange for %s: got %v, want exchangeTokenError %s", r.name, m, r.code)
		}
	}
	// A participant of CreateParticipantToken exchanges nothing, not even
	// for a self-signed token of its own id.
	if m := watcher.exchange(key.sign(selfSigned{stage: stage, jti: aws.ToString(watcherTok.ParticipantId), subscribe: true})); m["code"] != "TOKEN_EXCHANGE_REFUSED" {
		t.Errorf("exchange by a participant of CreateParticipantToken: got %v, want TOKEN_EXCHANGE_REFUSED", m)
	}

	// Down to no capability: the subscription ends too; the guest stays.
	h.clock.Advance(2 * time.Second)
	if m := guest.exchange(key.sign(selfSigned{stage: stage, jti: "guest-1", user: "carol"})); m["type"] != "tokenExchanged" || len(capsOf(m)) != 0 {
		t.Fatalf("exchange for no capability: got %v", m)
	}
	wait(t, watching.gone, "the guest's subscription to end")
	watcher.waitState("the guest still there", func(ps []map[string]any) bool { return byID(ps, "guest-1") != nil })

	h.waitHistory(stage, session, "guest-1", "JOINED", "SUBSCRIBE_STARTED remote="+hostID, "PUBLISH_ERROR error=INSUFFICIENT_CAPABILITIES",
		"TOKEN_EXCHANGED", "PUBLISH_STARTED", "TOKEN_EXCHANGED", "PUBLISH_STOPPED", "TOKEN_EXCHANGED", "SUBSCRIBE_STOPPED remote="+hostID)
	evs, _, err := h.db.ListParticipantEvents(testContext(t), ivsrt.StageARN(stage), ivsrt.SessionID(session), "guest-1", ivsrt.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var exchanges []*ivsrt.Event
	for _, ev := range evs {
		if ev.Name == ivsrt.EventTokenExchanged {
			exchanges = append(exchanges, ev)
		}
	}
	promotion := exchanges[0]
	if p, n := promotion.PreviousToken, promotion.NewToken; p == nil || n == nil || p.UserID != "carol" || n.UserID != "carol-host" ||
		!maps.Equal(n.Attributes, cohost) || !slices.Equal(n.Capabilities, []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe}) ||
		!slices.Equal(p.Capabilities, []ivsrt.Capability{ivsrt.CapabilitySubscribe}) || n.ExpirationTime.Sub(p.ExpirationTime) < time.Hour {
		t.Errorf("the promotion's event: previous %+v, new %+v", promotion.PreviousToken, promotion.NewToken)
	}
	if p := h.participant(stage, session, "guest-1"); aws.ToString(p.UserId) != "carol" || p.Attributes["signedBy"] != "customer" || p.Attributes["role"] != "" {
		t.Errorf("GetParticipant after the exchanges: got %s %v, want carol, the last token's attributes", aws.ToString(p.UserId), p.Attributes)
	}
}

func byID(ps []map[string]any, id string) map[string]any {
	for _, p := range ps {
		if p["participantId"] == id {
			return p
		}
	}
	return nil
}

func capsOf(m map[string]any) []string {
	var caps []string
	for _, c := range m["capabilities"].([]any) {
		caps = append(caps, c.(string))
	}
	slices.Sort(caps)
	return caps
}

func attrsOf(p map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range p["attributes"].(map[string]any) {
		out[k] = v.(string)
	}
	return out
}
