package sfu_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/internal/tcpfreeze"
	"github.com/ivsrt/ivsrt/sfu"
)

var _ ivsrt.MediaPlane = (*sfu.Server)(nil)

// history returns a participant's events in a session as the API lists
// them: "NAME", with " remote=ID" and " error=CODE" when set.
func (h *harness) history(stage, session, participant string) []string {
	h.t.Helper()
	out, err := h.client.ListParticipantEvents(testContext(h.t), &ivsrealtime.ListParticipantEventsInput{
		StageArn: aws.String(stage), SessionId: aws.String(session), ParticipantId: aws.String(participant),
		MaxResults: aws.Int32(100)})
	if err != nil {
		h.t.Fatalf("ListParticipantEvents: %v", err)
	}
	var got []string
	for _, e := range out.Events {
		s := string(e.Name)
		if r := aws.ToString(e.RemoteParticipantId); r != "" {
			s += " remote=" + r
		}
		if e.ErrorCode != "" {
			s += " error=" + string(e.ErrorCode)
		}
		got = append(got, s)
	}
	return got
}

// waitHistory waits until a participant's events are want.
func (h *harness) waitHistory(stage, session, participant string, want ...string) {
	h.t.Helper()
	eventually(h.t, "events of "+participant, func() error {
		if got := h.history(stage, session, participant); !slices.Equal(got, want) {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	})
}

// activeSession returns the stage's active session id, "" if idle.
func (h *harness) activeSession(stage string) string {
	h.t.Helper()
	out, err := h.client.GetStage(testContext(h.t), &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil {
		h.t.Fatalf("GetStage: %v", err)
	}
	return aws.ToString(out.Stage.ActiveSessionId)
}

// waitIdle waits for the stage's session to end.
func (h *harness) waitIdle(stage string) {
	h.t.Helper()
	eventually(h.t, "the session to end", func() error {
		if s := h.activeSession(stage); s != "" {
			return fmt.Errorf("session %s still active", s)
		}
		return nil
	})
}

// participants lists a session's participants by id.
func (h *harness) participants(stage, session string) map[string]types.ParticipantSummary {
	h.t.Helper()
	out, err := h.client.ListParticipants(testContext(h.t), &ivsrealtime.ListParticipantsInput{
		StageArn: aws.String(stage), SessionId: aws.String(session), MaxResults: aws.Int32(100)})
	if err != nil {
		h.t.Fatalf("ListParticipants: %v", err)
	}
	ps := map[string]types.ParticipantSummary{}
	for _, p := range out.Participants {
		ps[aws.ToString(p.ParticipantId)] = p
	}
	return ps
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	for _, codec := range []webrtc.RTPCodecParameters{vp8, h264} {
		t.Run(strings.TrimPrefix(codec.MimeType, "video/"), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			stage := h.createStage("demo")
			alice := h.token(stage, "alice")
			bob := h.token(stage, "bob", types.ParticipantTokenCapabilitySubscribe)
			aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)

			// Alice joins with the events WebSocket and publishes.
			ws := h.dialEvents(aws.ToString(alice.Token))
			joined := ws.next("joined")
			if joined["participantId"] != aliceID || joined["stageArn"] != stage || joined["userId"] != "alice" {
				t.Fatalf("joined message got %v, want alice in %s", joined, stage)
			}
			session := joined["sessionId"].(string)
			if session == "" || h.activeSession(stage) != session {
				t.Fatalf("joined in session %q, stage's active session %q", session, h.activeSession(stage))
			}
			pub := h.mustPublish(aws.ToString(alice.Token), codec, true)
			ws.waitState("alice publishes", func(ps []map[string]any) bool {
				_, publishing := participantIDs(ps)
				return contains(publishing, aliceID)
			})

			// Bob subscribes over WHEP alone: that is his join.
			sub := h.mustSubscribe(aws.ToString(bob.Token), aliceID)
			state := ws.waitState("bob is in the stage", func(ps []map[string]any) bool {
				all, _ := participantIDs(ps)
				return contains(all, bobID)
			})
			for _, p := range state["participants"].([]any) {
				p := p.(map[string]any)
				if p["participantId"] == aliceID {
					if p["userId"] != "alice" || p["attributes"].(map[string]any)["role"] != "alice" || len(p["tracks"].([]any)) != 2 {
						t.Errorf("alice in the stage state got %v, want her user id, attributes and two tracks", p)
					}
				}
			}
			sub.waitFor(webrtc.RTPCodecTypeVideo, 90)
			sub.waitFor(webrtc.RTPCodecTypeAudio, 75)
			for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
				eventually(t, kind.String()+" received", func() error { return sub.check(kind) })
			}

			// Everyone leaves: the session ends.
			if got := h.delete(sub.location); got != 200 {
				t.Errorf("DELETE WHEP session got %d, want 200", got)
			}
			if got := h.delete(pub.location); got != 200 {
				t.Errorf("DELETE WHIP session got %d, want 200", got)
			}
			wait(t, pub.gone, "the publisher's connection to close")
			wait(t, sub.gone, "the subscriber's connection to close")
			ws.conn.Close(1000, "bye")
			h.waitIdle(stage)

			h.waitHistory(stage, session, aliceID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
			h.waitHistory(stage, session, bobID, "JOINED", "SUBSCRIBE_STARTED remote="+aliceID,
				"SUBSCRIBE_STOPPED remote="+aliceID, "LEFT")
			ps := h.participants(stage, session)
			if p := ps[aliceID]; !p.Published || p.State != types.ParticipantStateDisconnected || aws.ToString(p.UserId) != "alice" {
				t.Errorf("alice got %+v, want published and disconnected", p)
			}
			if p := ps[bobID]; p.Published || p.State != types.ParticipantStateDisconnected {
				t.Errorf("bob got %+v, want not published and disconnected", p)
			}
			out, err := h.client.GetStageSession(testContext(t), &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(session)})
			if err != nil || out.StageSession.EndTime == nil {
				t.Errorf("GetStageSession got %+v, %v; want an end time", out, err)
			}
			_ = time.Second
		})
	}
}

func TestLateSubscriberGetsKeyframeAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("late")
	alice, bob := h.token(stage, "alice"), h.token(stage, "bob")
	aliceID := aws.ToString(alice.ParticipantId)

	// Alice sends one keyframe, at the start, and none unless asked.
	pub := h.mustPublish(aws.ToString(alice.Token), h264, false, keyEvery(1<<30))
	eventually(t, "alice sends a second of video", func() error {
		if n := pub.sentVideo.Load(); n < 30 {
			return fmt.Errorf("%d frames sent", n)
		}
		return nil
	})
	sub := h.mustSubscribe(aws.ToString(bob.Token), aliceID)
	connected := time.Now()
	sub.waitFor(webrtc.RTPCodecTypeVideo, 1)
	first := sub.packets(webrtc.RTPCodecTypeVideo)[0]
	// The keyframe request reaches the publisher as soon as the
	// subscriber is connected, and the first frame forwarded is the
	// keyframe it answers with, not the one at the start of the stream.
	if pub.plis.Load() == 0 {
		t.Fatalf("publisher got no keyframe request")
	}
	if d := time.Unix(0, pub.firstPLI.Load()).Sub(connected); d > time.Second {
		t.Errorf("keyframe request reached the publisher %v after the subscriber connected, want at once", d)
	}
	if d := first.at.Sub(connected); d > 2*time.Second {
		t.Errorf("first video packet %v after connecting, want a keyframe at once", d)
	}
	if !first.m.Key || first.m.Frame < 30 {
		t.Errorf("first video packet is of frame %d (key %v), want a keyframe sent on request", first.m.Frame, first.m.Key)
	}
	sub.waitFor(webrtc.RTPCodecTypeVideo, 30)
	eventually(t, "video received", func() error { return sub.check(webrtc.RTPCodecTypeVideo) })
}

func TestPublisherRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("restart")
	alice, bob := h.token(stage, "alice"), h.token(stage, "bob")
	aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)
	ws := h.dialEvents(aws.ToString(bob.Token))
	session := ws.next("joined")["sessionId"].(string)

	p1 := h.mustPublish(aws.ToString(alice.Token), vp8, true, run(1))
	sub := h.mustSubscribe(aws.ToString(bob.Token), aliceID)
	sub.waitFor(webrtc.RTPCodecTypeVideo, 30)
	sub.waitFor(webrtc.RTPCodecTypeAudio, 20)

	// Alice stops and comes back with another codec within the grace
	// period: Bob's subscription carries on.
	if got := h.delete(p1.location); got != 200 {
		t.Fatalf("DELETE got %d, want 200", got)
	}
	p1.halt()
	ws.waitState("alice left", func(ps []map[string]any) bool {
		all, _ := participantIDs(ps)
		return !contains(all, aliceID)
	})
	nv, na := len(sub.packets(webrtc.RTPCodecTypeVideo)), len(sub.packets(webrtc.RTPCodecTypeAudio))
	p2 := h.mustPublish(aws.ToString(alice.Token), h264, true, run(2))
	sub.waitFor(webrtc.RTPCodecTypeVideo, nv+30)
	sub.waitFor(webrtc.RTPCodecTypeAudio, na+20)

	// A new session replaces the running one.
	nv, na = len(sub.packets(webrtc.RTPCodecTypeVideo)), len(sub.packets(webrtc.RTPCodecTypeAudio))
	h.mustPublish(aws.ToString(alice.Token), vp8, true, run(3))
	wait(t, p2.gone, "the replaced session to close")
	sub.waitFor(webrtc.RTPCodecTypeVideo, nv+30)
	sub.waitFor(webrtc.RTPCodecTypeAudio, na+20)

	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		eventually(t, kind.String()+" received", func() error { return sub.check(kind) })
		runs := map[uint8]bool{}
		for _, p := range sub.packets(kind) {
			runs[p.m.Run] = true
		}
		if len(runs) != 3 {
			t.Errorf("%s: got packets of publisher connections %v, want 1, 2 and 3", kind, runs)
		}
	}
	h.waitHistory(stage, session, aliceID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT",
		"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "PUBLISH_STARTED")
	h.waitHistory(stage, session, bobID, "JOINED", "SUBSCRIBE_STARTED remote="+aliceID)
}

func TestTwelvePublishers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A gap left unrepaired has failed this test on a starved machine,
	// cause not found yet: the media plane's counters say whether the
	// server dropped, refused to resend or never got the packets.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("media plane: %+v", h.sfu.MediaStats())
		}
	})
	// Without RTX: pion's NACK generator does not see the packets
	// repaired in an RTX stream and asks for them again every 100 ms
	// while they are in its window. On a starved machine, with losses,
	// that spent the subscriber's resend budget (a failed run's counters:
	// 22,089 packets resent, 119,804 refused over budget), and a later
	// loss was never repaired. Browsers do not ask twice.
	h.subscriberCodecs = []webrtc.RTPCodecParameters{opus, vp8, h264}
	stage := h.createStage("full")
	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	ws := h.dialEvents(aws.ToString(viewer.Token))
	session := ws.next("joined")["sessionId"].(string)

	var pubs []*publisher
	var ids []string
	for i := range sfu.DefaultMaxPublishers {
		tok := h.token(stage, fmt.Sprintf("p%d", i), types.ParticipantTokenCapabilityPublish)
		codec := vp8
		if i%2 == 1 {
			codec = h264
		}
		p, err := h.publish(aws.ToString(tok.Token), codec, true)
		if err != nil {
			t.Fatalf("publisher %d: %v", i, err)
		}
		pubs, ids = append(pubs, p), append(ids, aws.ToString(tok.ParticipantId))
	}
	for _, p := range pubs {
		wait(t, p.connected, "the publishers to connect")
	}

	// A 13th is refused.
	extra := h.token(stage, "p12", types.ParticipantTokenCapabilityPublish)
	extraID := aws.ToString(extra.ParticipantId)
	_, err := h.publish(aws.ToString(extra.Token), vp8, true)
	if e, ok := err.(*httpError); !ok || e.Status != 403 || e.Code != "QUOTA_EXCEEDED" {
		t.Fatalf("13th publisher got %v, want 403 QUOTA_EXCEEDED", err)
	}

	ws.waitState("twelve publish", func(ps []map[string]any) bool {
		_, publishing := participantIDs(ps)
		return len(publishing) == 12
	})
	subs := make([]*subscriber, len(ids))
	for i, id := range ids {
		subs[i] = h.mustSubscribe(aws.ToString(viewer.Token), id)
	}
	for i, s := range subs {
		s.waitFor(webrtc.RTPCodecTypeVideo, 45)
		s.waitFor(webrtc.RTPCodecTypeAudio, 30)
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			eventually(t, fmt.Sprintf("publisher %d, %s", i, kind), func() error { return s.check(kind) })
		}
	}

	// Once one stops, the 13th may publish.
	h.delete(pubs[0].location)
	h.mustPublish(aws.ToString(extra.Token), vp8, true)

	h.waitHistory(stage, session, extraID, "JOINED", "PUBLISH_ERROR error=QUOTA_EXCEEDED", "LEFT", "JOINED", "PUBLISH_STARTED")
	want := []string{"JOINED"}
	for _, id := range ids {
		want = append(want, "SUBSCRIBE_STARTED remote="+id)
	}
	want = append(want, "SUBSCRIBE_STOPPED remote="+ids[0])
	// The subscription to the publisher who left ends after the grace period.
	h.waitHistory(stage, session, aws.ToString(viewer.ParticipantId), want...)
	ps := h.participants(stage, session)
	if len(ps) != 14 {
		t.Errorf("ListParticipants got %d participants, want 14", len(ps))
	}
	for _, id := range ids {
		if !ps[id].Published {
			t.Errorf("publisher %s: published false, want true", id)
		}
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("caps")
	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	sender := h.token(stage, "sender", types.ParticipantTokenCapabilityPublish)
	carol := h.token(stage, "carol")
	viewerID, senderID, carolID := aws.ToString(viewer.ParticipantId), aws.ToString(sender.ParticipantId), aws.ToString(carol.ParticipantId)
	ws := h.dialEvents(aws.ToString(viewer.Token))
	session := ws.next("joined")["sessionId"].(string)
	h.mustPublish(aws.ToString(carol.Token), vp8, true)

	tests := []struct {
		name   string
		do     func() error
		status int
		code   string
	}{
		{"publish without PUBLISH", func() error {
			_, err := h.publish(aws.ToString(viewer.Token), vp8, true)
			return err
		}, 403, "INSUFFICIENT_CAPABILITIES"},
		{"subscribe without SUBSCRIBE", func() error {
			_, err := h.subscribe(aws.ToString(sender.Token), carolID)
			return err
		}, 403, "INSUFFICIENT_CAPABILITIES"},
		{"subscribe to a participant who does not publish", func() error {
			_, err := h.subscribe(aws.ToString(viewer.Token), viewerID)
			return err
		}, 404, "PUBLISHER_NOT_FOUND"},
		{"subscribe to nobody", func() error {
			_, err := h.subscribe(aws.ToString(viewer.Token), "AbCdEfGhIjKl")
			return err
		}, 404, "PUBLISHER_NOT_FOUND"},
	}
	for _, tt := range tests {
		err := tt.do()
		if e, ok := err.(*httpError); !ok || e.Status != tt.status || e.Code != tt.code {
			t.Errorf("%s: got %v, want %d %s", tt.name, err, tt.status, tt.code)
		}
	}
	h.waitHistory(stage, session, viewerID, "JOINED", "PUBLISH_ERROR error=INSUFFICIENT_CAPABILITIES",
		"SUBSCRIBE_ERROR remote="+viewerID+" error=PUBLISHER_NOT_FOUND",
		"SUBSCRIBE_ERROR remote=AbCdEfGhIjKl error=PUBLISHER_NOT_FOUND")
	// The sender never joined otherwise: the refused request was its join.
	h.waitHistory(stage, session, senderID, "JOINED", "SUBSCRIBE_ERROR remote="+carolID+" error=INSUFFICIENT_CAPABILITIES", "LEFT")
}

func TestWHIPProtocol(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("whip")
	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	tok := aws.ToString(alice.Token)
	do := func(method, url, contentType, auth, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(testContext(t), method, url, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	resp := do("OPTIONS", h.url+"/whip", "", "", "")
	if resp.StatusCode != 204 || resp.Header.Get("Accept-Post") != "application/sdp" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("OPTIONS /whip got %d %v, want 204 with Accept-Post and CORS headers", resp.StatusCode, resp.Header)
	}
	if resp := do("POST", h.url+"/whip", "text/plain", "Bearer "+tok, "v=0"); resp.StatusCode != 415 {
		t.Errorf("POST text/plain got %d, want 415", resp.StatusCode)
	}
	resp = do("POST", h.url+"/whip", "application/sdp", "", "v=0")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("POST without a token got %d %q, want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	_, _, err := h.post("/whip", "not-a-token", "v=0")
	if e, ok := err.(*httpError); !ok || e.Status != 401 || e.Code != "TOKEN_INVALID" {
		t.Errorf("POST with a bad token got %v, want 401 TOKEN_INVALID", err)
	}

	ws := h.dialEvents(tok)
	session := ws.next("joined")["sessionId"].(string)
	_, _, err = h.post("/whip", tok, "this is not SDP")
	if e, ok := err.(*httpError); !ok || e.Status != 400 || e.Code != "INVALID_INPUT" {
		t.Errorf("POST of a bad offer got %v, want 400 INVALID_INPUT", err)
	}
	_, err = h.publish(tok, vp9, false)
	if e, ok := err.(*httpError); !ok || e.Status != 400 || e.Code != "INVALID_VIDEO_CODEC" {
		t.Errorf("POST of a VP9 offer got %v, want 400 INVALID_VIDEO_CODEC", err)
	}

	pub := h.mustPublish(tok, vp8, false)
	if !strings.HasPrefix(pub.location, h.url+"/whip/") {
		t.Errorf("Location got %q, want under %s/whip/", pub.location, h.url)
	}
	// PATCH: an sdpfrag of no new candidates is a trickle that adds none;
	// another type is refused; an unknown session is not found.
	if resp := do("PATCH", pub.location, "application/trickle-ice-sdpfrag", "", "a=end-of-candidates"); resp.StatusCode != 204 {
		t.Errorf("PATCH of an empty trickle got %d, want 204", resp.StatusCode)
	}
	if resp := do("PATCH", pub.location, "application/sdp", "", "v=0"); resp.StatusCode != 415 || resp.Header.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" {
		t.Errorf("PATCH of application/sdp got %d %v, want 415 with Accept-Patch", resp.StatusCode, resp.Header)
	}
	if resp := do("PATCH", h.url+"/whip/0123456789abcdef", "application/trickle-ice-sdpfrag", "", "a=end-of-candidates"); resp.StatusCode != 404 {
		t.Errorf("PATCH of an unknown session got %d, want 404", resp.StatusCode)
	}
	if resp := do("PATCH", pub.location, "application/trickle-ice-sdpfrag", "", "a=ice-ufrag:new\r\n"); resp.StatusCode != 400 {
		t.Errorf("PATCH of a restart without a password got %d, want 400", resp.StatusCode)
	}
	if resp := do("DELETE", h.url+"/whip/0123456789abcdef", "", "", ""); resp.StatusCode != 404 {
		t.Errorf("DELETE of an unknown session got %d, want 404", resp.StatusCode)
	}
	if resp := do("DELETE", strings.Replace(pub.location, "/whip/", "/whep/"+aliceID+"/", 1), "", "", ""); resp.StatusCode != 404 {
		t.Errorf("DELETE of a WHIP session as WHEP got %d, want 404", resp.StatusCode)
	}
	if got := h.delete(pub.location); got != 200 {
		t.Errorf("DELETE got %d, want 200", got)
	}
	if got := h.delete(pub.location); got != 404 {
		t.Errorf("second DELETE got %d, want 404", got)
	}
	wait(t, pub.gone, "the publisher's connection to close")
	h.waitHistory(stage, session, aliceID, "JOINED", "PUBLISH_ERROR error=INVALID_INPUT",
		"PUBLISH_ERROR error=INVALID_VIDEO_CODEC", "PUBLISH_STARTED", "PUBLISH_STOPPED")
}

func TestTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("tokens")
	shortToken := func(user string) *types.ParticipantToken {
		out, err := h.client.CreateParticipantToken(testContext(t), &ivsrealtime.CreateParticipantTokenInput{
			StageArn: aws.String(stage), UserId: aws.String(user), Duration: aws.Int32(1)})
		if err != nil {
			t.Fatalf("CreateParticipantToken: %v", err)
		}
		return out.ParticipantToken
	}
	anchor := h.token(stage, "anchor")
	late, stayer := shortToken("late"), shortToken("stayer")
	lateID, stayerID := aws.ToString(late.ParticipantId), aws.ToString(stayer.ParticipantId)

	// The anchor keeps a session open, with the token in a header.
	ws := h.dialEventsURL(strings.Replace(h.url, "http", "ws", 1)+"/events",
		http.Header{"Authorization": {"Bearer " + aws.ToString(anchor.Token)}})
	session := ws.next("joined")["sessionId"].(string)
	stayerWS := h.dialEvents(aws.ToString(stayer.Token))
	stayerWS.next("joined")

	refused := func(name, tok string, wantCode string, wantClose websocket.StatusCode) {
		t.Helper()
		c := h.dialEvents(tok)
		m := c.next("error")
		if m["code"] != wantCode {
			t.Errorf("%s: error message got %v, want code %s", name, m, wantCode)
		}
		if code, reason := c.waitClosed(5 * time.Second); code != wantClose || !strings.HasPrefix(reason, wantCode) {
			t.Errorf("%s: closed with %d %q, want %d %s...", name, code, reason, wantClose, wantCode)
		}
	}

	// Both short tokens expire: the one already joined stays, and may
	// even publish; the other cannot join.
	h.clock.Advance(2 * time.Minute)
	refused("expired token", aws.ToString(late.Token), "TOKEN_EXPIRED", 4401)
	_, err := h.publish(aws.ToString(late.Token), vp8, false)
	if e, ok := err.(*httpError); !ok || e.Status != 401 || e.Code != "TOKEN_EXPIRED" {
		t.Errorf("WHIP with an expired token got %v, want 401 TOKEN_EXPIRED", err)
	}
	pub := h.mustPublish(aws.ToString(stayer.Token), vp8, false)
	stayerWS.waitState("the stayer publishes", func(ps []map[string]any) bool {
		_, publishing := participantIDs(ps)
		return contains(publishing, stayerID)
	})

	// Tokens not issued here.
	refused("garbage", "garbage", "TOKEN_INVALID", 4401)
	tok := aws.ToString(anchor.Token)
	refused("tampered", tok[:len(tok)-4]+"AAAA", "TOKEN_INVALID", 4401)
	refused("missing", "", "TOKEN_MISSING", 4401)

	// A disconnected participant's token is revoked for good.
	if _, err := h.client.DisconnectParticipant(testContext(t), &ivsrealtime.DisconnectParticipantInput{
		StageArn: aws.String(stage), ParticipantId: aws.String(stayerID), Reason: aws.String("time is up")}); err != nil {
		t.Fatalf("DisconnectParticipant: %v", err)
	}
	stayerWS.waitClosed(time.Second)
	wait(t, pub.gone, "the publisher's connection to close")
	refused("revoked", aws.ToString(stayer.Token), "TOKEN_REVOKED", 4401)
	if _, err := h.publish(aws.ToString(stayer.Token), vp8, false); err == nil || err.(*httpError).Code != "TOKEN_REVOKED" {
		t.Errorf("WHIP with a revoked token got %v, want TOKEN_REVOKED", err)
	}

	h.waitHistory(stage, session, lateID, "JOIN_ERROR", "JOIN_ERROR")
	h.waitHistory(stage, session, stayerID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT", "JOIN_ERROR", "JOIN_ERROR")
}

func TestDisconnectParticipant(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("disconnect")
	alice, bob := h.token(stage, "alice"), h.token(stage, "bob")
	aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)
	wsA, wsB := h.dialEvents(aws.ToString(alice.Token)), h.dialEvents(aws.ToString(bob.Token))
	session := wsA.next("joined")["sessionId"].(string)
	wsB.next("joined")

	pubA := h.mustPublish(aws.ToString(alice.Token), vp8, true)
	pubB := h.mustPublish(aws.ToString(bob.Token), h264, false)
	subB := h.mustSubscribe(aws.ToString(bob.Token), aliceID)
	subA := h.mustSubscribe(aws.ToString(alice.Token), bobID)
	subB.waitFor(webrtc.RTPCodecTypeVideo, 10)
	subA.waitFor(webrtc.RTPCodecTypeVideo, 10)

	start := time.Now()
	if _, err := h.client.DisconnectParticipant(testContext(t), &ivsrealtime.DisconnectParticipantInput{
		StageArn: aws.String(stage), ParticipantId: aws.String(aliceID), Reason: aws.String("bye alice")}); err != nil {
		t.Fatalf("DisconnectParticipant: %v", err)
	}
	m := wsA.next("disconnected")
	if m["code"] != "DISCONNECTED" || m["message"] != "bye alice" {
		t.Errorf("disconnected message got %v, want the reason", m)
	}
	if code, reason := wsA.waitClosed(time.Second); code != 4403 || reason != "bye alice" {
		t.Errorf("WebSocket closed with %d %q, want 4403 \"bye alice\"", code, reason)
	}
	for _, ch := range []<-chan struct{}{pubA.gone, subA.gone, subB.gone} {
		select {
		case <-ch:
		case <-time.After(time.Second - time.Since(start)):
			t.Fatalf("a peer connection of alice or to alice still open %v after DisconnectParticipant", time.Since(start))
		}
	}
	wsB.waitState("alice is gone", func(ps []map[string]any) bool {
		all, _ := participantIDs(ps)
		return !contains(all, aliceID) && contains(all, bobID)
	})
	select {
	case <-pubB.gone:
		t.Errorf("bob's publication ended too")
	default:
	}

	c := h.dialEvents(aws.ToString(alice.Token))
	if m := c.next("error"); m["code"] != "TOKEN_REVOKED" || !strings.Contains(m["message"].(string), "bye alice") {
		t.Errorf("rejoin got %v, want TOKEN_REVOKED with the reason", m)
	}
	h.waitHistory(stage, session, aliceID, "JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED remote="+bobID,
		"PUBLISH_STOPPED", "SUBSCRIBE_STOPPED remote="+bobID, "LEFT", "JOIN_ERROR")
	h.waitHistory(stage, session, bobID, "JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED remote="+aliceID,
		"SUBSCRIBE_STOPPED remote="+aliceID)
	if got := h.participants(stage, session)[aliceID].State; got != types.ParticipantStateDisconnected {
		t.Errorf("alice's state got %s, want DISCONNECTED", got)
	}
}

func TestDeleteStage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("doomed")
	alice, bob := h.token(stage, "alice"), h.token(stage, "bob")
	aliceID := aws.ToString(alice.ParticipantId)
	wsA, wsB := h.dialEvents(aws.ToString(alice.Token)), h.dialEvents(aws.ToString(bob.Token))
	wsA.next("joined")
	wsB.next("joined")
	pub := h.mustPublish(aws.ToString(alice.Token), vp8, true)
	sub := h.mustSubscribe(aws.ToString(bob.Token), aliceID)

	if _, err := h.client.DeleteStage(testContext(t), &ivsrealtime.DeleteStageInput{Arn: aws.String(stage)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	for _, ws := range []*wsClient{wsA, wsB} {
		if m := ws.next("disconnected"); m["code"] != "STAGE_NOT_FOUND" {
			t.Errorf("disconnected message got %v, want STAGE_NOT_FOUND", m)
		}
		if code, _ := ws.waitClosed(testTimeout); code != 4404 {
			t.Errorf("WebSocket closed with %d, want 4404", code)
		}
	}
	// The server closes the connections: each client gets a DTLS
	// close_notify and its connection is closed. Had the server merely
	// stopped answering, the client would see it disconnected after 5 s and
	// failed 25 s later, past the wait, and failed, not closed.
	for _, c := range []struct {
		who  string
		gone <-chan struct{}
		pc   *webrtc.PeerConnection
	}{{"publisher", pub.gone, pub.pc}, {"subscriber", sub.gone, sub.pc}} {
		wait(t, c.gone, "the "+c.who+"'s connection to close")
		if s := c.pc.ConnectionState(); s != webrtc.PeerConnectionStateClosed {
			t.Errorf("the %s's connection ended %v, want closed by the server", c.who, s)
		}
	}
	c := h.dialEvents(aws.ToString(alice.Token))
	if m := c.next("error"); m["code"] != "STAGE_NOT_FOUND" {
		t.Errorf("join after DeleteStage got %v, want STAGE_NOT_FOUND", m)
	}
	if code, _ := c.waitClosed(5 * time.Second); code != 4404 {
		t.Errorf("closed with %d, want 4404", code)
	}
}

func TestVanishedParticipants(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sfu.WithICETimeouts(time.Second, time.Second, 200*time.Millisecond),
		sfu.WithPing(300*time.Millisecond, 700*time.Millisecond))
	stage := h.createStage("vanish")
	anchor, alice, bob := h.token(stage, "anchor"), h.token(stage, "alice"), h.token(stage, "bob")
	aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)
	ws := h.dialEvents(aws.ToString(anchor.Token))
	session := ws.next("joined")["sessionId"].(string)

	// Alice's WebSocket goes through a proxy that will stop forwarding;
	// Bob publishes over WHIP alone, from a socket that will go dark.
	proxy := tcpfreeze.Start(t, strings.TrimPrefix(h.url, "http://"))
	wsAlice := h.dialEventsURL("ws://"+proxy.Addr()+"/events?access_token="+aws.ToString(alice.Token), nil)
	wsAlice.next("joined")
	pub := h.mustPublish(aws.ToString(bob.Token), vp8, true)
	ws.waitState("both are in", func(ps []map[string]any) bool {
		_, publishing := participantIDs(ps)
		all, _ := participantIDs(ps)
		return contains(all, aliceID) && contains(publishing, bobID)
	})

	start := time.Now()
	proxy.Freeze()
	pub.conn.cut.Store(true)
	ws.waitState("both are gone", func(ps []map[string]any) bool {
		all, _ := participantIDs(ps)
		return !contains(all, aliceID) && !contains(all, bobID)
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("departures noticed after %v, want within seconds", d)
	}
	h.waitHistory(stage, session, aliceID, "JOINED", "LEFT")
	h.waitHistory(stage, session, bobID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
}

func TestSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("sessions")
	alice, bob := h.token(stage, "alice"), h.token(stage, "bob")
	aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)

	// The first join of an idle stage starts a session; the last leave
	// ends it.
	if s := h.activeSession(stage); s != "" {
		t.Fatalf("new stage has active session %s", s)
	}
	ws := h.dialEvents(aws.ToString(alice.Token))
	first := ws.next("joined")["sessionId"].(string)
	ws.conn.Close(1000, "")
	h.waitIdle(stage)

	ws = h.dialEvents(aws.ToString(alice.Token))
	second := ws.next("joined")["sessionId"].(string)
	if second == first || !strings.HasPrefix(second, "st-") || len(second) != 16 {
		t.Errorf("second session id %q, want a new st- id", second)
	}
	// Bob publishing over WHIP alone joins the same session, as WHIP.
	h.mustPublish(aws.ToString(bob.Token), vp8, false)
	if p := h.participants(stage, second)[bobID]; p.State != types.ParticipantStateConnected {
		t.Errorf("bob got %+v, want CONNECTED", p)
	}
	out, err := h.client.GetParticipant(testContext(t), &ivsrealtime.GetParticipantInput{
		StageArn: aws.String(stage), SessionId: aws.String(second), ParticipantId: aws.String(bobID)})
	if err != nil || out.Participant.Protocol != types.ParticipantProtocolWhip {
		t.Errorf("GetParticipant got %+v, %v; want protocol WHIP", out, err)
	}

	// Shutting down disconnects everyone, and says so.
	if err := h.sfu.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if code, _ := ws.waitClosed(time.Second); code != websocket.StatusGoingAway {
		t.Errorf("WebSocket closed with %d at shutdown, want 1001", code)
	}
	h.waitIdle(stage)
	h.waitHistory(stage, second, aliceID, "JOINED", "LEFT")
	h.waitHistory(stage, second, bobID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
	sessions, err := h.client.ListStageSessions(testContext(t), &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
	if err != nil || len(sessions.StageSessions) != 2 {
		t.Fatalf("ListStageSessions got %+v, %v; want two sessions", sessions, err)
	}
	for _, s := range sessions.StageSessions {
		if s.EndTime == nil {
			t.Errorf("session %s has no end time", aws.ToString(s.SessionId))
		}
	}
}

func TestICEOverTCP(t *testing.T) {
	t.Parallel()
	h := newHarnessConfig(t, sfu.Config{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0"})
	if h.sfu.TCPAddr() == nil {
		t.Fatal("no ICE-TCP listener")
	}
	stage := h.createStage("tcp")
	alice, bob := h.token(stage, "alice"), h.token(stage, "bob")
	aliceID := aws.ToString(alice.ParticipantId)
	h.mustPublish(aws.ToString(alice.Token), vp8, true)

	// Bob's client has no UDP at all.
	pc, _ := newClientPCOn(t, webrtc.NetworkTypeTCP4)
	connected, _ := watchState(pc)
	got := make(chan struct{})
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if _, _, err := tr.ReadRTP(); err == nil {
			once.Do(func() { close(got) })
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	answer, _, err := h.post("/whep/"+aliceID, aws.ToString(bob.Token), offer(t, pc))
	if err != nil {
		t.Fatalf("WHEP: %v", err)
	}
	if !strings.Contains(answer, " tcp ") {
		t.Errorf("answer has no TCP candidate:\n%s", answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	wait(t, connected, "the subscriber to connect over TCP")
	wait(t, got, "video over TCP")
}

func TestEventsSocket(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("socket")
	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)

	ws := h.dialEvents(aws.ToString(alice.Token))
	joined := ws.next("joined")
	if joined["whipUrl"] != h.url+"/whip" || joined["whepUrl"] != h.url+"/whep/" || joined["pingIntervalMs"] != float64(5000) {
		t.Errorf("joined got %v, want the WHIP and WHEP URLs and the ping interval", joined)
	}
	if caps := joined["capabilities"].([]any); len(caps) != 2 {
		t.Errorf("capabilities got %v, want PUBLISH and SUBSCRIBE", caps)
	}
	state := ws.next("state")
	if ps := state["participants"].([]any); len(ps) != 1 || ps[0].(map[string]any)["participantId"] != aliceID {
		t.Errorf("first state got %v, want alice alone", state)
	}

	// Application pings are answered.
	if err := ws.conn.Write(testContext(t), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	ws.next("pong")

	// A second WebSocket of the same participant takes over; the
	// participant stays in the stage.
	again := h.dialEvents(aws.ToString(alice.Token))
	again.next("joined")
	if m := ws.next("disconnected"); m["code"] != "REPLACED" {
		t.Errorf("first WebSocket got %v, want REPLACED", m)
	}
	if code, _ := ws.waitClosed(time.Second); code != 4409 {
		t.Errorf("first WebSocket closed with %d, want 4409", code)
	}
	session := h.activeSession(stage)
	h.waitHistory(stage, session, aliceID, "JOINED")
}

func TestEndStaleSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("crashed")
	// What a server that crashed leaves behind: participants the store
	// still has connected.
	for _, id := range []string{"AAAAAAAAAAAA", "BBBBBBBBBBBB"} {
		if err := h.db.RecordEvent(testContext(t), &ivsrt.Event{StageARN: ivsrt.StageARN(stage), Name: ivsrt.EventJoined,
			ParticipantID: ivsrt.ParticipantID(id)}); err != nil {
			t.Fatal(err)
		}
	}
	session := h.activeSession(stage)
	n, err := h.sfu.EndStaleSessions(testContext(t))
	if err != nil || n != 2 {
		t.Fatalf("EndStaleSessions got %d, %v; want 2", n, err)
	}
	h.waitIdle(stage)
	h.waitHistory(stage, session, "BBBBBBBBBBBB", "JOINED", "LEFT")
}
