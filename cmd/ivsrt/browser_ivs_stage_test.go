package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// ivsApp is a page's app written against the documented IVS Stage API
// only, as an IVS app is: window.setup(token) publishes the fake camera
// and microphone and subscribes as app.choices say (by userId), and
// app.log records every event. Remote media plays in an element per
// participant (app.videos), fed by a MediaStream of its streams
// (app.streams).
const ivsApp = `window.setup = async (token, options = {}) => {
	const { Stage, LocalStageStream, SubscribeType, StageEvents, InitialLayerPreference } = await import("/client/ivs-stage.js");
	const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: options.video || { width: 640, height: 360 } });
	const app = window.app = { publish: true, choices: {}, layers: {}, log: [], videos: {}, streams: {}, remote: {},
		initial: options.initial || {}, sei: !!options.sei, firstWidth: {}, requests: [],
		audio: new LocalStageStream(media.getAudioTracks()[0]),
		video: new LocalStageStream(media.getVideoTracks()[0], options.config || { maxBitrate: 1000, maxFramerate: 30 }) };
	const strategy = {
		stageStreamsToPublish: () => [app.audio, app.video],
		shouldPublishParticipant: () => app.publish,
		shouldSubscribeToParticipant: (p) => app.choices[p.userId] || SubscribeType.AUDIO_VIDEO,
		preferredLayerForStream: (p, stream) => app.layers[p.userId] ? stream.getLayers().find((l) => l.label === app.layers[p.userId]) : null,
		subscribeConfiguration: (p) => ({
			simulcast: app.initial[p.userId] ? { initialLayerPreference: InitialLayerPreference[app.initial[p.userId]] } : undefined,
			inBandMessaging: { enabled: app.sei },
		}),
	};
	// The URLs the page posts to (WHIP, WHEP, token exchange).
	const fetch = window.fetch;
	window.fetch = (url, init) => {
		if (init && init.method === "POST") app.requests.push(String(url));
		return fetch(url, init);
	};
	const stage = app.stage = new Stage(token, strategy);
	const note = (name, p, extra) => app.log.push({ name, user: p ? p.userId : "", local: !!(p && p.isLocal), ...extra });
	const types = (streams) => streams.map((s) => s.streamType).sort().join(",");
	stage.on(StageEvents.STAGE_CONNECTION_STATE_CHANGED, (state) => note("connection", null, { state }));
	stage.on(StageEvents.STAGE_PARTICIPANT_JOINED, (p) => note("joined", p));
	stage.on(StageEvents.STAGE_PARTICIPANT_LEFT, (p) => note("left", p));
	stage.on(StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, (p, state) => note("publish", p, { state }));
	stage.on(StageEvents.STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED, (p, state) => note("subscribe", p, { state }));
	stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, (p, streams) => {
		note("added", p, { types: types(streams) });
		if (p.isLocal) return;
		app.remote[p.userId] = streams;
		const ms = app.streams[p.userId] || (app.streams[p.userId] = new MediaStream());
		for (const s of streams) ms.addTrack(s.mediaStreamTrack);
		let v = app.videos[p.userId];
		if (!v) {
			v = app.videos[p.userId] = document.createElement("video");
			v.autoplay = v.playsInline = true;
			// The width of the first picture decoded.
			v.addEventListener("loadedmetadata", () => { app.firstWidth[p.userId] ||= v.videoWidth; });
			document.body.append(v);
		}
		v.srcObject = ms;
		v.play().catch(() => {});
	});
	stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, (p, streams) => {
		note("removed", p, { types: types(streams) });
		const ms = app.streams[p.userId];
		if (ms) for (const s of streams) ms.removeTrack(s.mediaStreamTrack);
	});
	stage.on(StageEvents.STAGE_STREAM_MUTE_CHANGED, (p, s) => note("mute", p,
		{ type: s.streamType, muted: s.isMuted, audioMuted: p.audioMuted, videoStopped: p.videoStopped }));
	stage.on(StageEvents.STAGE_PARTICIPANT_METADATA_CHANGED, (p) => note("metadata", p));
	const size = (l) => l.label + " " + l.width + "x" + l.height;
	stage.on(StageEvents.STAGE_STREAM_LAYERS_CHANGED, (p, s, layers) => note("layers", p, { types: layers.map(size).join(",") }));
	stage.on(StageEvents.STAGE_STREAM_LAYER_SELECTED, (p, s, layer, reason) => note("layerSelected", p,
		{ type: layer ? layer.label : "", reason, state: String(s.isAdapting) }));
	stage.on(StageEvents.STAGE_STREAM_ADAPTION_CHANGED, (p, s, adapting) => note("adaption", p, { state: String(adapting) }));
	stage.on(StageEvents.STAGE_LEFT, (reason) => note("stageLeft", null, { reason }));
	stage.on(StageEvents.ERROR, (e) => note("error", null, { category: e.category, code: e.code, message: e.message }));
	await stage.join();
	return true;
};
// videoState describes the element playing user's media and the video
// received, for a test that waited for it in vain.
window.videoState = async (user) => {
	const v = app.videos[user];
	if (!v) return "no element";
	const track = v.srcObject && v.srcObject.getVideoTracks()[0];
	const stream = (app.remote[user] || []).find((s) => s.streamType === "video");
	let inbound = {};
	const report = stream && await stream.requestRTCStats();
	if (report) report.forEach((s) => {
		if (s.type === "inbound-rtp") inbound = { packetsReceived: s.packetsReceived, packetsLost: s.packetsLost,
			framesReceived: s.framesReceived, framesDecoded: s.framesDecoded, keyFramesDecoded: s.keyFramesDecoded,
			framesDropped: s.framesDropped, pliCount: s.pliCount, nackCount: s.nackCount, decoder: s.decoderImplementation };
	});
	return JSON.stringify({ paused: v.paused, readyState: v.readyState, width: v.videoWidth,
		frames: v.getVideoPlaybackQuality().totalVideoFrames,
		track: track ? { muted: track.muted, readyState: track.readyState, enabled: track.enabled } : null, inbound });
};
// plays reports whether the video of user advances, and the loudest
// sample of its audio over half a second.
window.plays = async (user) => {
	const v = app.videos[user];
	if (!v || !v.srcObject) return { video: false, level: 0, videoTracks: 0, audioTracks: 0 };
	const f0 = v.getVideoPlaybackQuality().totalVideoFrames;
	let level = 0;
	const audio = v.srcObject.getAudioTracks();
	if (audio.length) {
		const ac = new AudioContext();
		await ac.resume();
		const an = ac.createAnalyser();
		an.fftSize = 2048;
		ac.createMediaStreamSource(new MediaStream(audio)).connect(an);
		const buf = new Float32Array(an.fftSize);
		for (let i = 0; i < 25; i++) {
			await new Promise((r) => setTimeout(r, 20));
			an.getFloatTimeDomainData(buf);
			for (const s of buf) level = Math.max(level, Math.abs(s));
		}
		ac.close();
	} else {
		await new Promise((r) => setTimeout(r, 500));
	}
	return { video: v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > f0, level,
		videoTracks: v.srcObject.getVideoTracks().length, audioTracks: audio.length };
};
true`

// ivsEvent is an entry of app.log.
type ivsEvent struct {
	Name         string  `json:"name"`
	User         string  `json:"user"`
	Local        bool    `json:"local"`
	State        string  `json:"state"`
	Types        string  `json:"types"`
	Type         string  `json:"type"`
	Muted        bool    `json:"muted"`
	AudioMuted   bool    `json:"audioMuted"`
	VideoStopped bool    `json:"videoStopped"`
	Reason       string  `json:"reason"`
	Category     string  `json:"category"`
	Code         float64 `json:"code"`
	Message      string  `json:"message"`
}

func (e ivsEvent) String() string {
	s := e.Name
	for _, f := range []string{e.User, e.State, e.Types, e.Type, e.Reason, e.Category} {
		if f != "" {
			s += " " + f
		}
	}
	if e.Local {
		s += " (local)"
	}
	if e.Name == "mute" {
		s += " muted=" + strconv.FormatBool(e.Muted)
	}
	if e.Code != 0 {
		s += fmt.Sprintf(" code=%v %s", e.Code, e.Message)
	}
	return s
}

// ivsPage is a tab running ivsApp as one participant.
type ivsPage struct {
	t    *testing.T
	tab  *webtest.Tab
	user string
}

// openIVSPage opens a page running ivsApp joined with token; options is
// setup's JavaScript object: {video: constraints, config: the video's
// LocalStageStream configuration}.
func openIVSPage(t *testing.T, b *webtest.Browser, base, user, token string, options ...string) *ivsPage {
	t.Helper()
	tab := b.NewTab(user)
	// Any page of the server will do: the app is the script.
	tab.Navigate(base + "/join")
	webtest.Eval[bool](tab, ivsApp)
	opts := "{}"
	if len(options) > 0 {
		opts = options[0]
	}
	webtest.Eval[bool](tab, `window.setup(`+strconv.Quote(token)+`, `+opts+`)`)
	return &ivsPage{t: t, tab: tab, user: user}
}

func (p *ivsPage) log() []ivsEvent {
	return webtest.Eval[[]ivsEvent](p.tab, `window.app.log`)
}

// waitEvent waits for an event of the log, after the first skip ones,
// that match reports true for; it returns its index.
func (p *ivsPage) waitEvent(what string, skip int, match func(ivsEvent) bool) int {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		log := p.log()
		for i := skip; i < len(log); i++ {
			if match(log[i]) {
				return i
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no event %s in %v", p.user, what, log[min(skip, len(log)):])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type ivsPlayback struct {
	Video       bool    `json:"video"`
	Level       float64 `json:"level"`
	VideoTracks int     `json:"videoTracks"`
	AudioTracks int     `json:"audioTracks"`
}

// waitPlays waits until the page plays user's video (if video) and hears
// its audio.
func (p *ivsPage) waitPlays(user string, video bool) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := webtest.Eval[ivsPlayback](p.tab, `window.plays(`+strconv.Quote(user)+`)`)
		if got.Level >= 0.05 && got.Video == video && (got.VideoTracks > 0) == video {
			p.t.Logf("%s plays %s: %+v", p.user, user, got)
			return
		}
		if time.Now().After(deadline) {
			state := webtest.Eval[string](p.tab, `window.videoState(`+strconv.Quote(user)+`)`)
			p.t.Fatalf("%s: %s's media got %+v, want audio (peak ≥ 0.05) and video %v; the video: %s", p.user, user, got, video, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startIVSTest starts a server and a browser for a test of the IVS Stage
// API that lasts at most within, and creates its stage.
func startIVSTest(t *testing.T, stageName string, within time.Duration) (c *ivsrealtime.Client, b *webtest.Browser, base, arn string) {
	t.Helper()
	m, c := startServer(t)
	b = webtest.NewBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	b.Deadline = ctx
	return c, b, "http://" + m.Addr(), createStage(t, c, stageName)
}

// TestBrowserIVSStage: pages written against the IVS Stage API only join
// a stage, publish and play each other; a mute is seen on the other
// side; refreshStrategy switches a subscription to audio only and back,
// and ends one; the strategy stops a publication; leaving and
// DisconnectParticipant end with the documented events and errors.
func TestBrowserIVSStage(t *testing.T) {
	c, b, base, arn := startIVSTest(t, "ivs-stage-api", 4*time.Minute)
	token := func(user string, caps ...types.ParticipantTokenCapability) *types.ParticipantToken {
		in := &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(user),
			Attributes: map[string]string{"role": user}}
		if len(caps) > 0 {
			in.Capabilities = caps
		}
		return createToken(t, c, in)
	}
	aliceTok, bobTok := token("alice"), token("bob")
	carolTok := token("carol", types.ParticipantTokenCapabilitySubscribe)

	// A malformed token is refused by the constructor, as documented.
	tab := b.NewTab("constructor")
	tab.Navigate(base + "/join")
	if got := webtest.Eval[string](tab, `(async () => {
		const { Stage, StageErrorCode, SubscribeType } = await import("/client/ivs-stage.js");
		const strategy = { stageStreamsToPublish: () => [], shouldPublishParticipant: () => false,
			shouldSubscribeToParticipant: () => SubscribeType.NONE };
		try { new Stage("not-a-token", strategy); } catch (e) { return e.category + " " + (e.code === StageErrorCode.TOKEN_MALFORMED); }
		return "no error";
	})()`); got != "JOIN_ERROR true" {
		t.Errorf("a malformed token: got %q, want a JOIN_ERROR of TOKEN_MALFORMED", got)
	}

	alice := openIVSPage(t, b, base, "alice", aws.ToString(aliceTok.Token))
	bob := openIVSPage(t, b, base, "bob", aws.ToString(bobTok.Token))
	carol := openIVSPage(t, b, base, "carol", aws.ToString(carolTok.Token))

	alice.waitPlays("bob", true)
	bob.waitPlays("alice", true)
	carol.waitPlays("alice", true)
	carol.waitPlays("bob", true)
	for _, p := range []*ivsPage{alice, bob} {
		p.waitEvent("published", 0, func(e ivsEvent) bool { return e.Name == "publish" && e.Local && e.State == "published" })
	}
	log := alice.log()
	var states []string
	for _, e := range log {
		if e.Name == "connection" {
			states = append(states, e.State)
		}
	}
	if strings.Join(states, ",") != "connecting,connected" {
		t.Errorf("alice's connection states got %v, want connecting, connected", states)
	}
	for _, want := range []struct {
		what  string
		match func(ivsEvent) bool
	}{
		{"bob joined", func(e ivsEvent) bool { return e.Name == "joined" && e.User == "bob" && !e.Local }},
		{"carol joined", func(e ivsEvent) bool { return e.Name == "joined" && e.User == "carol" }},
		{"her own streams", func(e ivsEvent) bool { return e.Name == "added" && e.Local && e.Types == "audio,video" }},
		{"bob's streams", func(e ivsEvent) bool { return e.Name == "added" && e.User == "bob" && e.Types == "audio,video" }},
		{"subscribed to bob", func(e ivsEvent) bool { return e.Name == "subscribe" && e.User == "bob" && e.State == "subscribed" }},
		{"bob published", func(e ivsEvent) bool { return e.Name == "publish" && e.User == "bob" && e.State == "published" }},
	} {
		if !slices.ContainsFunc(log, want.match) {
			t.Errorf("alice's events lack %s: %v", want.what, log)
		}
	}
	if slices.ContainsFunc(log, func(e ivsEvent) bool { return e.Name == "error" }) {
		t.Errorf("alice's events have errors: %v", log)
	}

	// Alice stops her camera: bob sees her video stream muted, then back.
	skip := len(bob.log())
	webtest.Eval[bool](alice.tab, `app.video.setMuted(true), true`)
	i := bob.waitEvent("alice's video muted", skip, func(e ivsEvent) bool { return e.Name == "mute" && e.User == "alice" })
	if e := bob.log()[i]; e.Type != "video" || !e.Muted || !e.VideoStopped || e.AudioMuted {
		t.Errorf("bob: alice's mute got %v, want her video muted (videoStopped)", e)
	}
	// A muted video sends nothing: bob's picture of alice stands still.
	eventually(t, 5*time.Second, "alice's video to stop", func() error {
		if got := webtest.Eval[ivsPlayback](bob.tab, `window.plays("alice")`); got.Video {
			return fmt.Errorf("bob still decodes alice's frames: %+v", got)
		}
		return nil
	})
	webtest.Eval[bool](alice.tab, `app.video.setMuted(false), true`)
	i = bob.waitEvent("alice's video back", i+1, func(e ivsEvent) bool { return e.Name == "mute" && e.User == "alice" })
	if e := bob.log()[i]; e.Muted || e.VideoStopped {
		t.Errorf("bob: alice's unmute got %v", e)
	}
	bob.waitPlays("alice", true)

	// Bob listens to alice only: her video goes, her audio stays.
	skip = len(bob.log())
	webtest.Eval[bool](bob.tab, `app.choices.alice = "audio_only", app.stage.refreshStrategy(), true`)
	bob.waitEvent("alice's streams removed", skip, func(e ivsEvent) bool {
		return e.Name == "removed" && e.User == "alice" && strings.Contains(e.Types, "video")
	})
	bob.waitEvent("alice's audio alone", skip, func(e ivsEvent) bool { return e.Name == "added" && e.User == "alice" && e.Types == "audio" })
	bob.waitPlays("alice", false)
	webtest.Eval[bool](bob.tab, `app.choices.alice = "audio_video", app.stage.refreshStrategy(), true`)
	bob.waitEvent("alice's video back", skip, func(e ivsEvent) bool {
		return e.Name == "added" && e.User == "alice" && e.Types == "audio,video"
	})
	bob.waitPlays("alice", true)

	// Carol stops watching bob.
	skip = len(carol.log())
	webtest.Eval[bool](carol.tab, `app.choices.bob = "none", app.stage.refreshStrategy(), true`)
	carol.waitEvent("bob's streams removed", skip, func(e ivsEvent) bool { return e.Name == "removed" && e.User == "bob" })
	carol.waitEvent("bob not subscribed", skip, func(e ivsEvent) bool {
		return e.Name == "subscribe" && e.User == "bob" && e.State == "not_subscribed"
	})

	// Bob stops publishing through his strategy: alice loses his streams,
	// the API lists his publication's end.
	skipAlice := len(alice.log())
	skipBob := len(bob.log())
	webtest.Eval[bool](bob.tab, `app.publish = false, app.stage.refreshStrategy(), true`)
	bob.waitEvent("his own streams removed", skipBob, func(e ivsEvent) bool { return e.Name == "removed" && e.Local })
	bob.waitEvent("not published", skipBob, func(e ivsEvent) bool { return e.Name == "publish" && e.Local && e.State == "not_published" })
	alice.waitEvent("bob's streams removed", skipAlice, func(e ivsEvent) bool { return e.Name == "removed" && e.User == "bob" })
	alice.waitEvent("bob not published", skipAlice, func(e ivsEvent) bool {
		return e.Name == "publish" && e.User == "bob" && e.State == "not_published"
	})
	session := waitPublishing(t, c, arn, aws.ToString(aliceTok.ParticipantId))
	eventually(t, 10*time.Second, "bob's PUBLISH_STOPPED", func() error {
		if names := participantEventNames(t, c, arn, session, aws.ToString(bobTok.ParticipantId)); !slices.Contains(names, "PUBLISH_STOPPED") {
			return fmt.Errorf("bob's events %v", names)
		}
		return nil
	})

	// Bob leaves: his stage tells it; alice sees him go.
	skipAlice = len(alice.log())
	webtest.Eval[bool](bob.tab, `app.stage.leave(), true`)
	bob.waitEvent("left", skipBob, func(e ivsEvent) bool { return e.Name == "stageLeft" && e.Reason == "user-initiated" })
	bob.waitEvent("disconnected", skipBob, func(e ivsEvent) bool { return e.Name == "connection" && e.State == "disconnected" })
	alice.waitEvent("bob left", skipAlice, func(e ivsEvent) bool { return e.Name == "left" && e.User == "bob" })
	if slices.ContainsFunc(bob.log(), func(e ivsEvent) bool { return e.Name == "error" }) {
		t.Errorf("bob's events have errors: %v", bob.log())
	}

	// Alice is disconnected through the API: the documented error and reason.
	skipAlice = len(alice.log())
	skipCarol := len(carol.log())
	if _, err := c.DisconnectParticipant(testContext(t), &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(arn),
		ParticipantId: aliceTok.ParticipantId, Reason: aws.String("moderated")}); err != nil {
		t.Fatalf("DisconnectParticipant: %v", err)
	}
	i = alice.waitEvent("the error", skipAlice, func(e ivsEvent) bool { return e.Name == "error" })
	if e := alice.log()[i]; e.Category != "JOIN_ERROR" || e.Code != 10 {
		t.Errorf("alice's error got %v, want a JOIN_ERROR of PARTICIPANT_DISCONNECTED (10)", e)
	}
	alice.waitEvent("left", skipAlice, func(e ivsEvent) bool { return e.Name == "stageLeft" && e.Reason == "participant-disconnected" })
	alice.waitEvent("disconnected", skipAlice, func(e ivsEvent) bool { return e.Name == "connection" && e.State == "disconnected" })
	carol.waitEvent("alice left", skipCarol, func(e ivsEvent) bool { return e.Name == "left" && e.User == "alice" })

	// Her token may not join again.
	code := webtest.Eval[string](alice.tab, `app.stage.join().then(() => "joined", (e) => e.category + " " + e.code)`)
	if code != "JOIN_ERROR 10" {
		t.Errorf("joining again with a disconnected token got %q, want JOIN_ERROR 10", code)
	}
	t.Logf("alice's events: %v", alice.log())

	// The stage is deleted: carol's ends with the documented error.
	skipCarol = len(carol.log())
	if _, err := c.DeleteStage(testContext(t), &ivsrealtime.DeleteStageInput{Arn: aws.String(arn)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	i = carol.waitEvent("the error", skipCarol, func(e ivsEvent) bool { return e.Name == "error" })
	if e := carol.log()[i]; e.Category != "JOIN_ERROR" || e.Code != 9 {
		t.Errorf("carol's error got %v, want a JOIN_ERROR of STAGE_DELETED (9)", e)
	}
	carol.waitEvent("left", skipCarol, func(e ivsEvent) bool { return e.Name == "stageLeft" && e.Reason == "stage-deleted" })
}

// TestBrowserIVSStageTokenExchange: a page of the IVS Stage API joins
// with a self-signed subscribe-only token; exchangeToken promotes it and
// its strategy's streams are published; a token of another participant
// is refused and changes nothing; one the server refuses ends the stage
// with FAILED_EXCHANGE, as documented.
func TestBrowserIVSStageTokenExchange(t *testing.T) {
	c, b, base, arn := startIVSTest(t, "ivs-stage-exchange", time.Minute)
	key, material := newKeyPair(t)
	keyARN := importKey(t, c, "customer", material, nil)
	issued := time.Now().Add(-time.Minute)
	sign := func(at time.Duration, id, user string, publish bool) string {
		return selfSignEdited(t, c, key, keyARN, arn, id, user, publish, true, func(claims jwt.MapClaims) {
			claims["iat"] = issued.Add(at).Unix()
			claims["attributes"] = map[string]string{"role": user}
		})
	}
	guest := openIVSPage(t, b, base, "guest", sign(0, "guest-1", "guest", false))
	log := guest.log()
	if slices.ContainsFunc(log, func(e ivsEvent) bool { return e.Name == "publish" && e.Local }) {
		t.Errorf("a subscribe-only participant tried to publish: %v", log)
	}

	// Promoted: the strategy's streams are published.
	skip := len(log)
	if got := webtest.Eval[string](guest.tab, `app.stage.exchangeToken(`+strconv.Quote(sign(2*time.Second, "guest-1", "host", true))+
		`).then(() => "exchanged", (e) => e.category + " " + e.code)`); got != "exchanged" {
		t.Fatalf("promotion: got %q", got)
	}
	guest.waitEvent("its metadata", skip, func(e ivsEvent) bool { return e.Name == "metadata" && e.Local && e.User == "host" })
	guest.waitEvent("published", skip, func(e ivsEvent) bool { return e.Name == "publish" && e.Local && e.State == "published" })
	waitPublishing(t, c, arn, "guest-1")

	// Another participant's token: refused by the module, nothing changes.
	if got := webtest.Eval[string](guest.tab, `app.stage.exchangeToken(`+strconv.Quote(sign(3*time.Second, "guest-2", "other", true))+
		`).then(() => "exchanged", (e) => e.category + " " + e.code)`); got != "JOIN_ERROR 11" {
		t.Errorf("another participant's token: got %q, want JOIN_ERROR 11 (TOKEN_EXCHANGE_REQUEST_INVALID)", got)
	}
	if slices.ContainsFunc(guest.log(), func(e ivsEvent) bool { return e.Name == "stageLeft" }) {
		t.Fatalf("a refused request ended the stage: %v", guest.log())
	}

	// Issued before the current token: the server refuses; the stage ends.
	skip = len(guest.log())
	if got := webtest.Eval[string](guest.tab, `app.stage.exchangeToken(`+strconv.Quote(sign(time.Second, "guest-1", "guest", true))+
		`).then(() => "exchanged", (e) => e.category + " " + e.code)`); got != "JOIN_ERROR 12" {
		t.Errorf("an older token: got %q, want JOIN_ERROR 12 (TOKEN_EXCHANGE_FAILED)", got)
	}
	guest.waitEvent("left", skip, func(e ivsEvent) bool { return e.Name == "stageLeft" && e.Reason == "failed-exchange" })
	guest.waitEvent("disconnected", skip, func(e ivsEvent) bool { return e.Name == "connection" && e.State == "disconnected" })
}

// TestBrowserIVSStageInterop: the sample app of the IVS Stage API
// (/ivs-sample), a page of ivsrt's own client (/join) and a WHIP encoder
// share a stage: each page plays the others' video. The sample's
// controls act through the API: a subscription ended, the camera
// stopped (the other page's picture stands still), leaving.
func TestBrowserIVSStageInterop(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	c, b, base, arn := startIVSTest(t, "ivs-stage-interop", 3*time.Minute)
	ctx := b.Deadline
	token := func(user string) *types.ParticipantToken {
		return createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(user)})
	}
	samTok, joTok, encTok := token("sam"), token("jo"), token("encoder")
	samID, joID, encID := aws.ToString(samTok.ParticipantId), aws.ToString(joTok.ParticipantId), aws.ToString(encTok.ParticipantId)

	whipH264(ctx, t, aws.ToString(encTok.Token), testmedia.Encode(t, 4))
	sample := b.NewTab("sample")
	sample.Navigate(base + "/ivs-sample?token=" + url.QueryEscape(aws.ToString(samTok.Token)))
	jo := b.NewTab("jo")
	jo.Navigate(base + "/join?token=" + url.QueryEscape(aws.ToString(joTok.Token)))

	sample.WaitFor("connected", `document.getElementById("state").dataset.state === "connected"`, 20*time.Second)
	browserCheckVideo(t, sample, joID)
	browserCheckVideo(t, sample, encID)
	browserCheckVideo(t, jo, samID)
	browserCheckVideo(t, jo, encID)
	if got := webtest.Eval[string](sample, browserTile(encID)+`.dataset.subscribeState`); got != "subscribed" {
		t.Errorf("sample: the encoder's subscribe state got %q", got)
	}

	// The sample stops watching jo.
	webtest.Eval[bool](sample, `(() => {
		const sel = `+browserTile(joID)+`.querySelector("select.subscribe-type");
		sel.value = "none";
		sel.dispatchEvent(new Event("change", { bubbles: true }));
		return true;
	})()`)
	sample.WaitFor("jo not subscribed", browserTile(joID)+`.dataset.subscribeState === "not_subscribed"`, 10*time.Second)

	// The sample stops its camera: jo's picture of it stands still.
	frames := func() int {
		return webtest.Eval[int](jo, browserTile(samID)+`.querySelector("video").getVideoPlaybackQuality().totalVideoFrames`)
	}
	sample.Do("stop the camera", chromedp.Click(chromedp.ID("cam")))
	sample.WaitFor("camera stopped", `document.getElementById("cam").getAttribute("aria-pressed") === "true"`, 5*time.Second)
	eventually(t, 5*time.Second, "jo's picture of sam to stand still", func() error {
		before := frames()
		time.Sleep(500 * time.Millisecond)
		if after := frames(); after != before {
			return fmt.Errorf("frames %d → %d", before, after)
		}
		return nil
	})
	sample.Do("start the camera", chromedp.Click(chromedp.ID("cam")))
	browserCheckVideo(t, jo, samID)

	sample.Screenshot("ivs-sample")

	// The sample leaves; jo sees it go.
	sample.Do("leave", chromedp.Click(chromedp.ID("leave")))
	sample.WaitFor("disconnected", `document.getElementById("state").dataset.state === "disconnected"`, 10*time.Second)
	jo.WaitFor("sam's tile gone", `!`+browserTile(samID), 15*time.Second)
}

// TestBrowserIVSStageLayers: a publisher of the IVS Stage API sends its
// camera in simulcast; a subscriber sees its layers, chooses the lowest
// through preferredLayerForStream (and receives it), and gives the
// choice back to the server.
func TestBrowserIVSStageLayers(t *testing.T) {
	c, b, base, arn := startIVSTest(t, "ivs-stage-layers", 2*time.Minute)
	token := func(user string) string {
		return aws.ToString(createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(user)}).Token)
	}
	alice := openIVSPage(t, b, base, "alice", token("alice"),
		`{video: {width: 1280, height: 720}, config: {maxBitrate: 2500, simulcast: {enabled: true}}}`)
	bob := openIVSPage(t, b, base, "bob", token("bob"))
	bob.waitPlays("alice", true)
	// The SDK's default initial layer, the lowest: bob's first picture of
	// alice is 320 wide, asked for by his WHEP request.
	bob.tab.WaitFor("bob's first picture of alice", `app.firstWidth.alice > 0`, 15*time.Second)
	if w := webtest.Eval[int](bob.tab, `app.firstWidth.alice`); w != 320 {
		t.Errorf("bob's first picture of alice is %d wide, want 320 (LOWEST_QUALITY, the default)", w)
	}
	wantRequest := func(p *ivsPage, suffix string) {
		t.Helper()
		reqs := webtest.Eval[[]string](p.tab, `app.requests`)
		if !slices.ContainsFunc(reqs, func(u string) bool { return strings.HasSuffix(u, suffix) }) {
			t.Errorf("%s's requests %v: none ends with %s", p.user, reqs, suffix)
		}
	}
	wantRequest(bob, "?initialLayer=lowest")
	// Carol's strategy asks for the highest first, and for SEI messages,
	// which ivsrt does not carry: an error says so, and she gets alice's
	// media all the same.
	carol := openIVSPage(t, b, base, "carol", token("carol"), `{initial: {alice: "HIGHEST_QUALITY"}, sei: true}`)
	carol.waitPlays("alice", true)
	wantRequest(carol, "?initialLayer=highest")
	carol.waitEvent("the SEI error", 0, func(e ivsEvent) bool {
		return e.Name == "error" && e.Category == "SUBSCRIBE_ERROR" && strings.Contains(e.Message, "SEI")
	})
	t.Logf("carol's first picture of alice is %d wide", webtest.Eval[int](carol.tab, `app.firstWidth.alice || 0`))

	// The statistics of both ends: a layer per rid sent; packets received.
	type sent struct {
		RID       string `json:"rid"`
		BytesSent int64  `json:"bytesSent"`
	}
	alice.tab.WaitFor("three layers sent", `app.video.requestQualityStats().then((s) => !!s && s.length === 3 && s.every((l) => l.bytesSent > 0))`, 15*time.Second)
	stats := webtest.Eval[[]sent](alice.tab, `app.video.requestQualityStats()`)
	var rids []string
	for _, l := range stats {
		rids = append(rids, l.RID)
	}
	if slices.Sort(rids); strings.Join(rids, ",") != "f,h,q" {
		t.Errorf("alice's video statistics %+v: want the layers q, h, f", stats)
	}
	if n := webtest.Eval[int](bob.tab, `app.remote.alice.find((s) => s.streamType === "video").requestQualityStats().then((s) => s.packetsReceived)`); n <= 0 {
		t.Errorf("bob's statistics of alice's video: %d packets received", n)
	}

	i := bob.waitEvent("alice's layers", 0, func(e ivsEvent) bool {
		return e.Name == "layers" && e.User == "alice" && strings.Count(e.Types, ",") == 2
	})
	if got := bob.log()[i].Types; got != "low 320x180,mid 640x360,high 1280x720" {
		t.Errorf("alice's layers got %q", got)
	}
	bob.waitEvent("a layer selected by the server", 0, func(e ivsEvent) bool {
		return e.Name == "layerSelected" && e.User == "alice" && e.Reason == "selected" && e.State == "true"
	})

	skip := len(bob.log())
	webtest.Eval[bool](bob.tab, `app.layers.alice = "low", app.stage.refreshStrategy(), true`)
	bob.waitEvent("not adapting", skip, func(e ivsEvent) bool { return e.Name == "adaption" && e.State == "false" })
	bob.waitEvent("the low layer selected", skip, func(e ivsEvent) bool {
		return e.Name == "layerSelected" && e.Type == "low" && e.Reason == "selected" && e.State == "false"
	})
	bob.tab.WaitFor("alice's video at 320×180", `app.videos.alice.videoWidth === 320`, 15*time.Second)

	skip = len(bob.log())
	webtest.Eval[bool](bob.tab, `delete app.layers.alice, app.stage.refreshStrategy(), true`)
	bob.waitEvent("adapting again", skip, func(e ivsEvent) bool { return e.Name == "adaption" && e.State == "true" })
	// Which layer the server then gives is its bandwidth estimate's
	// choice (slow to grow under the race detector): tested in sfu.
	t.Logf("bob's events: %v", bob.log())
}
