package sfu_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu"
	"github.com/ivsrt/ivsrt/token"
)

// The fuzz targets of the media plane drive a whole server (newHarness)
// over HTTP and a real WebSocket, one input at a time, and check what the
// network may not do to it: a panic, a 5xx, an answer that is not SDP, an
// error that is not JSON, and anything left behind once the client has
// gone (a participant, a session, a goroutine).

// fuzzInputTimeout bounds the handling of one input.
const fuzzInputTimeout = 5 * time.Second

// maxOfferBytes is the largest SDP offer the media plane reads
// (docs/protocol.md: 413 beyond 64 KiB); maxClientMessage the largest
// message it reads from an events WebSocket.
const (
	maxOfferBytes    = 64 << 10
	maxClientMessage = 8 << 10
)

// maxErrorBytes bounds an error answer, whatever the offer: messages
// quote what was wrong only in part.
const maxErrorBytes = 16 << 10

// fuzzing reports whether the test binary runs with -fuzz: the seed run's
// goroutine check is then left out, since the fuzzing engine's own workers
// keep running inputs in the same process.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// checkGoroutinesAfter registers a check, run when the fuzz test ends,
// that the server has no more goroutines than it has now.
func checkGoroutinesAfter(f *testing.F, h *harness) {
	if fuzzing() {
		return
	}
	// The count settles first: the connections set up before (a
	// publisher's) start some of their goroutines once connected.
	before := len(serverGoroutines())
	for stable, deadline := time.Now(), time.Now().Add(5*time.Second); time.Since(stable) < 500*time.Millisecond && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if n := len(serverGoroutines()); n != before {
			before, stable = n, time.Now()
		}
	}
	f.Cleanup(func() {
		h.http.CloseIdleConnections()
		deadline := time.Now().Add(10 * time.Second)
		after := serverGoroutines()
		for len(after) > before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			after = serverGoroutines()
		}
		if len(after) > before {
			shown := after
			if len(shown) > 20 {
				shown = shown[:20]
			}
			f.Errorf("%d server goroutines after the inputs, %d before; the first ones:\n%s",
				len(after), before, strings.Join(shown, "\n\n"))
		}
	})
}

// waitParticipants waits until n participants are connected to the media
// plane: what an input brought in has left.
func waitParticipants(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(fuzzInputTimeout)
	for {
		got := h.sfu.ParticipantCount()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d participants connected after the input, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// offerResult is the media plane's answer to an offer.
type offerResult struct {
	status   int
	header   http.Header
	body     []byte
	location string
}

// postOffer sends an SDP offer with a bearer token.
func postOffer(t *testing.T, h *harness, path, tok string, offer []byte) offerResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzInputTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+path, bytes.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("POST %s with a %d-byte offer: %v", path, len(offer), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read the answer: %v", path, err)
	}
	return offerResult{status: resp.StatusCode, header: resp.Header, body: body, location: resp.Header.Get("Location")}
}

// checkOffer checks the answer to an offer: 201 with an SDP answer and
// the session's URL, or a 4xx from the documented table with a JSON body.
// A session created is ended, and must then be gone.
func checkOffer(t *testing.T, h *harness, what string, offer []byte, r offerResult, codes map[int][]string) {
	t.Helper()
	if r.status == http.StatusCreated {
		if ct := r.header.Get("Content-Type"); ct != "application/sdp" {
			t.Fatalf("%s: 201 with Content-Type %q, want application/sdp", what, ct)
		}
		var answer sdp.SessionDescription
		if err := answer.UnmarshalString(string(r.body)); err != nil {
			t.Fatalf("%s: the answer is not SDP (%v):\n%s", what, err, r.body)
		}
		if len(answer.MediaDescriptions) == 0 {
			t.Fatalf("%s: an answer without media:\n%s", what, r.body)
		}
		if !strings.HasPrefix(r.location, h.url+"/wh") {
			t.Fatalf("%s: 201 with Location %q", what, r.location)
		}
		if got := deleteSession(t, h, r.location); got != http.StatusOK {
			t.Fatalf("%s: DELETE %s got %d, want 200", what, r.location, got)
		}
		if got := deleteSession(t, h, r.location); got != http.StatusNotFound {
			t.Fatalf("%s: DELETE %s again got %d, want 404", what, r.location, got)
		}
		return
	}
	wantCodes, ok := codes[r.status]
	if !ok {
		t.Fatalf("%s: got status %d for a %d-byte offer: %s", what, r.status, len(offer), r.body)
	}
	if (r.status == http.StatusRequestEntityTooLarge) != (len(offer) > maxOfferBytes) {
		t.Fatalf("%s: got status %d for a %d-byte offer, want 413 exactly when it is over %d bytes", what, r.status, len(offer), maxOfferBytes)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: %d with Content-Type %q, want application/json", what, r.status, ct)
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal(r.body, &e); err != nil || e.Message == "" {
		t.Fatalf("%s: %d with body %q, want {code, message} (%v)", what, r.status, r.body, err)
	}
	found := false
	for _, c := range wantCodes {
		found = found || c == e.Code
	}
	if !found {
		t.Fatalf("%s: %d with code %q (%s), want one of %q", what, r.status, e.Code, e.Message, wantCodes)
	}
	if r.location != "" {
		t.Fatalf("%s: an error with Location %q", what, r.location)
	}
	if len(r.body) > maxErrorBytes {
		t.Fatalf("%s: a %d-byte error for a %d-byte offer, want at most %d", what, len(r.body), len(offer), maxErrorBytes)
	}
}

func deleteSession(t *testing.T, h *harness, location string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzInputTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("DELETE %s: %v", location, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The refusals an offer may get, by status (docs/protocol.md, HTTP errors).
var (
	whipRefusals = map[int][]string{
		http.StatusBadRequest:            {"INVALID_INPUT", "INVALID_AUDIO_CODEC", "INVALID_VIDEO_CODEC"},
		http.StatusRequestEntityTooLarge: {"INVALID_INPUT"},
	}
	whepRefusals = map[int][]string{
		http.StatusBadRequest:            {"INVALID_INPUT"},
		http.StatusRequestEntityTooLarge: {"INVALID_INPUT"},
	}
)

// pionOffer returns the offer of a pion client with the given codecs (all
// of pion's defaults if none) and one transceiver of each kind, in
// direction. The client is closed at once: nothing answers the server's
// connectivity checks.
func pionOffer(t testing.TB, dir webrtc.RTPTransceiverDirection, kinds []webrtc.RTPCodecType, codecs ...webrtc.RTPCodecParameters) string {
	t.Helper()
	pc, _ := newClientPC(t, codecs...)
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatalf("add %s transceiver: %v", k, err)
		}
	}
	o := offer(t, pc)
	pc.Close()
	return o
}

var (
	audioVideo = []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}
	audioOnly  = []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio}
	videoOnly  = []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}
)

// offerMutations returns variants of a valid offer that a careless or
// hostile client could send.
func offerMutations(base string) []string {
	lines := strings.Split(strings.TrimRight(base, "\r\n"), "\r\n")
	join := func(ls []string) string { return strings.Join(ls, "\r\n") + "\r\n" }
	without := func(prefixes ...string) string {
		var out []string
		for _, l := range lines {
			drop := false
			for _, p := range prefixes {
				drop = drop || strings.HasPrefix(l, p)
			}
			if !drop {
				out = append(out, l)
			}
		}
		return join(out)
	}
	session, media, _ := strings.Cut(base, "\r\nm=")
	session += "\r\n"
	media = "m=" + media
	sections := strings.Split(media, "\r\nm=")
	for i := 1; i < len(sections); i++ {
		sections[i] = "m=" + sections[i]
	}
	for i := range sections {
		sections[i] = strings.TrimRight(sections[i], "\r\n") + "\r\n"
	}
	last := sections[len(sections)-1]
	// pad grows an offer with attribute lines to size bytes.
	pad := func(s string, size int) string {
		var b strings.Builder
		b.WriteString(s)
		for b.Len() < size {
			line := "a=x-pad:" + strings.Repeat("p", min(1000, size-b.Len()))
			b.WriteString(line[:min(len(line), size-b.Len())])
			if b.Len()+2 <= size {
				b.WriteString("\r\n")
			} else {
				break
			}
		}
		return b.String()
	}
	manyCandidates := strings.Builder{}
	for i := range 400 {
		fmt.Fprintf(&manyCandidates, "a=candidate:%d 1 udp 2130706431 192.0.2.%d %d typ host\r\n", i, i%250+1, 10000+i)
	}
	var manySections strings.Builder
	manySections.WriteString(session)
	for i := range 64 {
		manySections.WriteString(strings.Replace(last, "a=mid:", fmt.Sprintf("a=mid:x%d", i), 1))
	}

	return []string{
		base,
		strings.ReplaceAll(base, "\r\n", "\n"),
		session,
		without("a=ice-ufrag", "a=ice-pwd"),
		without("a=fingerprint"),
		without("a=setup"),
		without("a=group:BUNDLE"),
		without("a=mid"),
		without("a=rtpmap", "a=fmtp", "a=rtcp-fb"),
		without("a=candidate", "a=end-of-candidates"),
		without("c="),
		without("v=", "o=", "s=", "t="),
		strings.ReplaceAll(strings.ReplaceAll(base, "opus/", "bogus/"), "VP8/", "VP0/"),
		strings.ReplaceAll(base, "H264/90000", "H265/90000"),
		strings.ReplaceAll(base, "profile-level-id=42", "profile-level-id=64"),
		strings.ReplaceAll(base, "a=rtpmap:", "a=rtpmap:2"),
		strings.ReplaceAll(base, "a=sendonly", "a=recvonly"),
		strings.ReplaceAll(base, "a=recvonly", "a=sendonly"),
		strings.ReplaceAll(base, "a=sendonly", "a=inactive"),
		strings.ReplaceAll(base, "a=recvonly", "a=inactive"),
		strings.Replace(base, "UDP/TLS/RTP/SAVPF", "RTP/AVP", -1),
		strings.Replace(base, " 9 UDP", " 0 UDP", 1),
		strings.Replace(base, "m=audio", "m=text", 1),
		strings.Replace(base, "a=setup:actpass", "a=setup:holdconn", -1),
		strings.Replace(base, "a=fingerprint:sha-256", "a=fingerprint:md5", -1),
		strings.Replace(base, "a=ice-ufrag:", "a=ice-ufrag:"+strings.Repeat("u", 600), -1),
		strings.Replace(base, "a=ice-pwd:", "a=ice-pwd:\xff\xfe", -1),
		strings.Replace(base, "s=-", "s=\xff\xfe\xfd\x00", 1),
		strings.Replace(base, "v=0", "v=1", 1),
		base + "a=simulcast:send f;h\r\na=rid:f send\r\na=rid:h send\r\n",
		base + manyCandidates.String(),
		base + "a=candidate:1 1 udp 1 999.999.999.999 99999 typ host\r\na=candidate:x\r\n",
		session + last + last,
		manySections.String(),
		base[:len(base)/2],
		base[:len(base)/3] + "\x00" + base[len(base)/3:],
		pad(base, maxOfferBytes),
		pad(base, maxOfferBytes+1),
		base + strings.Repeat("a=x-long:"+strings.Repeat("l", 8000)+"\r\n", 7),
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
		"v=0\r\n",
		"",
		" \r\n\t",
		"\xff\xfe\xfd",
		`{"type":"offer","sdp":"v=0"}`,
		strings.Repeat("v=0\r\n", 2000),
		strings.Repeat("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", 1500),
	}
}

// fuzzLog keeps the end of what the media plane logs, to show beside a
// failed input: the test's own log cannot be written from inside a fuzz
// target.
type fuzzLog struct {
	mu  sync.Mutex
	buf []byte
}

func (l *fuzzLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) > 64<<10 {
		l.buf = append([]byte(nil), l.buf[len(l.buf)-32<<10:]...)
	}
	return len(p), nil
}

func (l *fuzzLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// newFuzzHarness starts a server for a fuzz target. Calling it returns
// a function that, registered at the start of each input, shows the
// server's log if the input fails.
func newFuzzHarness(f *testing.F) (*harness, func(t *testing.T)) {
	logs := &fuzzLog{}
	h := newHarness(f, sfu.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	return h, func(t *testing.T) {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server log:\n%s", logs.String())
			}
		})
	}
}

func FuzzWHIPOffer(f *testing.F) {
	bases := []string{
		pionOffer(f, webrtc.RTPTransceiverDirectionSendonly, audioVideo, opus, vp8),
		pionOffer(f, webrtc.RTPTransceiverDirectionSendonly, audioVideo, opus, h264),
		pionOffer(f, webrtc.RTPTransceiverDirectionSendonly, videoOnly, vp8),
		pionOffer(f, webrtc.RTPTransceiverDirectionSendonly, audioOnly, opus),
		pionOffer(f, webrtc.RTPTransceiverDirectionSendonly, videoOnly, vp9),
		pionOffer(f, webrtc.RTPTransceiverDirectionSendonly, audioVideo),
		pionOffer(f, webrtc.RTPTransceiverDirectionSendrecv, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeVideo}, vp8),
	}
	for _, b := range bases {
		f.Add([]byte(b))
	}
	for _, m := range offerMutations(bases[0]) {
		f.Add([]byte(m))
	}
	for _, m := range offerMutations(bases[1])[:20] {
		f.Add([]byte(m))
	}

	h, showLog := newFuzzHarness(f)
	stage := h.createStage("fuzz-whip")
	tok := aws.ToString(h.token(stage, "publisher", types.ParticipantTokenCapabilityPublish).Token)
	checkGoroutinesAfter(f, h)
	f.Fuzz(func(t *testing.T, offer []byte) {
		showLog(t)
		r := postOffer(t, h, "/whip", tok, offer)
		checkOffer(t, h, "WHIP", offer, r, whipRefusals)
		waitParticipants(t, h, 0)
	})
}

func FuzzWHEPOffer(f *testing.F) {
	bases := []string{
		pionOffer(f, webrtc.RTPTransceiverDirectionRecvonly, audioVideo),
		pionOffer(f, webrtc.RTPTransceiverDirectionRecvonly, videoOnly, vp8),
		pionOffer(f, webrtc.RTPTransceiverDirectionRecvonly, audioOnly, opus),
		pionOffer(f, webrtc.RTPTransceiverDirectionRecvonly, videoOnly, vp9),
		pionOffer(f, webrtc.RTPTransceiverDirectionRecvonly, audioVideo, opus, h264),
		pionOffer(f, webrtc.RTPTransceiverDirectionSendrecv, audioVideo, opus, vp8),
	}
	for _, b := range bases {
		f.Add([]byte(b))
	}
	for _, m := range offerMutations(bases[0]) {
		f.Add([]byte(m))
	}

	h, showLog := newFuzzHarness(f)
	stage := h.createStage("fuzz-whep")
	pubTok := h.token(stage, "publisher", types.ParticipantTokenCapabilityPublish)
	pub := h.mustPublish(aws.ToString(pubTok.Token), vp8, true)
	f.Cleanup(pub.halt)
	path := "/whep/" + aws.ToString(pubTok.ParticipantId)
	tok := aws.ToString(h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe).Token)
	checkGoroutinesAfter(f, h)
	f.Fuzz(func(t *testing.T, offer []byte) {
		showLog(t)
		r := postOffer(t, h, path, tok, offer)
		checkOffer(t, h, "WHEP", offer, r, whepRefusals)
		waitParticipants(t, h, 1) // the publisher
	})
}

// FuzzEventsMessage opens the events WebSocket with a fuzzed
// Authorization header and query string, then sends one fuzzed message.
// A joined client must get answers to its pings after any message the
// server reads (it ignores what it does not know), and a close with 1009
// for a message over the limit; a refused one an error message and a
// close with 4401. Either way the participant is gone once the client is.
//
// An exchangeToken message must be answered, with a refusal: the
// participant's token is not self-signed.
//
// In the header, query and message, $TOKEN stands for the participant's token,
// $NONE for it re-signed with "alg":"none" and $OTHERKEY for the same
// claims signed by another server's key. Only the first may join.
func FuzzEventsMessage(f *testing.F) {
	seeds := []struct {
		header, query string
		kind          uint8 // bit 0: binary; bit 1: in two frames
		msg           string
	}{
		{"Bearer $TOKEN", "", 0, `{"type":"ping"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"ping"}`},
		{"", "access_token=$TOKEN", 1, `{"type":"ping"}`},
		{"", "access_token=$TOKEN", 2, `{"type":"ping"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"PING"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"ping","type":"other"}`},
		{"", "access_token=$TOKEN", 0, `{"type":1}`},
		{"", "access_token=$TOKEN", 0, `{"type":null}`},
		{"", "access_token=$TOKEN", 0, `{"type":"joined","participantId":"someoneElse1"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"state","participants":[]}`},
		{"", "access_token=$TOKEN", 0, `{"type":"disconnected"}`},
		{"", "access_token=$TOKEN", 0, `null`},
		{"", "access_token=$TOKEN", 0, `[]`},
		{"", "access_token=$TOKEN", 0, ``},
		{"", "access_token=$TOKEN", 0, "\xff\xfe\xfd"},
		{"", "access_token=$TOKEN", 0, "{\"type\":\"ping\u0000\"}"},
		{"", "access_token=$TOKEN", 0, "{\"type\":\"\xff\"}"},
		{"", "access_token=$TOKEN", 0, `{"type":"ping"}{"type":"ping"}`},
		{"", "access_token=$TOKEN", 0, `1e999`},
		{"", "access_token=$TOKEN", 0, strings.Repeat("[", 2048) + strings.Repeat("]", 2048)},
		{"", "access_token=$TOKEN", 0, strings.Repeat("[", 8193)},
		{"", "access_token=$TOKEN", 0, `{"type":"ping","pad":"` + strings.Repeat("x", maxClientMessage-28) + `"}`},
		{"", "access_token=$TOKEN", 2, strings.Repeat("x", maxClientMessage+1)},
		{"", "access_token=$TOKEN", 1, strings.Repeat("\x00", 64<<10)},
		{"Bearer  $TOKEN ", "", 0, `{"type":"ping"}`},
		{"bearer $TOKEN", "", 0, `{"type":"ping"}`},
		{"BEARER $TOKEN", "", 0, `{"type":"ping"}`},
		{"Bearer garbage", "access_token=$TOKEN", 0, `{"type":"ping"}`},
		{"Basic $TOKEN", "", 0, `{"type":"ping"}`},
		{"Basic $TOKEN", "access_token=$TOKEN", 0, `{"type":"ping"}`},
		{"Bearer", "access_token=$TOKEN", 0, `{"type":"ping"}`},
		{"Bearer ", "", 0, `{"type":"ping"}`},
		{"$TOKEN", "", 0, `{"type":"ping"}`},
		{"Bearer $TOKEN$TOKEN", "", 0, `{"type":"ping"}`},
		{"Bearer $TOKEN.", "", 0, `{"type":"ping"}`},
		{"Bearer $NONE", "", 0, `{"type":"ping"}`},
		{"Bearer $OTHERKEY", "", 0, `{"type":"ping"}`},
		{"", "access_token=$NONE", 0, `{"type":"ping"}`},
		{"", "access_token=$OTHERKEY", 0, `{"type":"ping"}`},
		{"", "access_token=", 0, `{"type":"ping"}`},
		{"", "", 0, `{"type":"ping"}`},
		{"", "access_token=%zz$TOKEN", 0, `{"type":"ping"}`},
		{"", "access_token=$TOKEN%0A", 0, `{"type":"ping"}`},
		{"", "access_token=%20$TOKEN", 0, `{"type":"ping"}`},
		{"", "access_token=$TOKEN&access_token=garbage", 0, `{"type":"ping"}`},
		{"", "access_token=garbage&access_token=$TOKEN", 0, `{"type":"ping"}`},
		{"", "ACCESS_TOKEN=$TOKEN", 0, `{"type":"ping"}`},
		{"", "access_token=" + strings.Repeat("A", 20<<10), 0, `{"type":"ping"}`},
		{"Bearer " + strings.Repeat("A", 20<<10), "", 0, `{"type":"ping"}`},
		{"", "access_token=e30.e30.e30", 0, `{"type":"ping"}`},
		{"", "access_token=eyJhbGciOiJub25lIn0.e30.", 0, `{"type":"ping"}`},
		// Token exchanges, which a participant of CreateParticipantToken
		// may not make: each is refused, the WebSocket staying open.
		{"", "access_token=$TOKEN", 0, `{"type":"exchangeToken","token":"$TOKEN"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"exchangeToken","token":"$OTHERKEY"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"exchangeToken","token":"$NONE"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"exchangeToken"}`},
		{"", "access_token=$TOKEN", 0, `{"type":"exchangeToken","token":null}`},
		{"", "access_token=$TOKEN", 0, `{"type":"exchangeToken","token":["$TOKEN"]}`},
		{"", "access_token=$TOKEN", 2, `{"type":"exchangeToken","token":"` + strings.Repeat("A", 6<<10) + `"}`},
	}
	for _, s := range seeds {
		f.Add(s.header, s.query, s.kind, []byte(s.msg))
	}

	h, showLog := newFuzzHarness(f)
	stage := h.createStage("fuzz-events")
	pt := h.token(stage, "watcher")
	tok, pid := aws.ToString(pt.Token), aws.ToString(pt.ParticipantId)
	forged := forgedTokens(f, tok, pt)
	expand := strings.NewReplacer("$TOKEN", tok, "$NONE", forged.none, "$OTHERKEY", forged.otherKey)
	wsURL := strings.Replace(h.url, "http", "ws", 1) + "/events"
	checkGoroutinesAfter(f, h)

	f.Fuzz(func(t *testing.T, header, query string, kind uint8, msg []byte) {
		showLog(t)
		header, query, msg = expand.Replace(header), expand.Replace(query), []byte(expand.Replace(string(msg)))
		if !validHeaderValue(header) || !validQuery(query) {
			return // no HTTP client sends these
		}
		target := wsURL
		if query != "" {
			target += "?" + query
		}
		if _, err := url.Parse(target); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzInputTimeout)
		defer cancel()
		opts := &websocket.DialOptions{HTTPClient: h.http}
		if header != "" {
			opts.HTTPHeader = http.Header{"Authorization": {header}}
		}
		conn, resp, err := websocket.Dial(ctx, target, opts)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("dial: status %d: %v", status, err)
		}
		defer conn.CloseNow()
		conn.SetReadLimit(1 << 20)

		first := readMessage(t, ctx, conn)
		switch first["type"] {
		case "joined":
			if !strings.Contains(header+query, tok) {
				t.Fatalf("joined with header %q and query %q, which do not carry the token", header, query)
			}
			if first["participantId"] != pid || first["stageArn"] != stage {
				t.Fatalf("joined as %v, want %s in %s", first, pid, stage)
			}
			exchangeMessage(t, ctx, conn, kind, msg)
		case "error":
			if code := first["code"]; code != "TOKEN_MISSING" && code != "TOKEN_INVALID" {
				t.Fatalf("refused with %v, want TOKEN_MISSING or TOKEN_INVALID", first)
			}
			if header == "" && !strings.Contains(query, "access_token=") && first["code"] != "TOKEN_MISSING" {
				t.Fatalf("no token presented, refused with %v", first)
			}
			_, _, err := conn.Read(ctx)
			if code := websocket.CloseStatus(err); code != 4401 {
				t.Fatalf("after a refusal, read %v (close status %d), want a close with 4401", err, code)
			}
		default:
			t.Fatalf("first message %v, want joined or error", first)
		}
		conn.Close(websocket.StatusNormalClosure, "")
		waitParticipants(t, h, 0)
	})
}

// exchangeMessage sends msg on a joined WebSocket, then a ping: the ping
// must be answered, unless msg was over the limit, which must close the
// WebSocket with 1009.
func exchangeMessage(t *testing.T, ctx context.Context, conn *websocket.Conn, kind uint8, msg []byte) {
	t.Helper()
	typ := websocket.MessageText
	if kind&1 != 0 {
		typ = websocket.MessageBinary
	}
	if kind&2 != 0 && len(msg) > 1 {
		w, err := conn.Writer(ctx, typ)
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		w.Write(msg[:len(msg)/2])
		w.Write(msg[len(msg)/2:])
		if err := w.Close(); err != nil && len(msg) <= maxClientMessage {
			t.Fatalf("write: %v", err)
		}
	} else if err := conn.Write(ctx, typ, msg); err != nil && len(msg) <= maxClientMessage {
		t.Fatalf("write: %v", err)
	}
	tooBig := len(msg) > maxClientMessage
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil && !tooBig {
		t.Fatalf("write ping: %v", err)
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); tooBig && code == websocket.StatusMessageTooBig {
				return
			}
			t.Fatalf("after a %d-byte message, read: %v (close status %d)", len(msg), err, websocket.CloseStatus(err))
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("server message %q: %v", data, err)
		}
		switch m["type"] {
		case "state":
		case "exchangeTokenError":
			if tooBig {
				t.Fatalf("a %d-byte message was read: got %v, want a close with 1009", len(msg), m)
			}
		case "tokenExchanged":
			t.Fatalf("a participant of CreateParticipantToken exchanged its token: %v, after %q", m, msg)
		case "pong":
			if tooBig {
				t.Fatalf("a %d-byte message was read: got %v, want a close with 1009", len(msg), m)
			}
			return
		default:
			t.Fatalf("after a %d-byte message, got %v, want pong", len(msg), m)
		}
	}
}

func readMessage(t *testing.T, ctx context.Context, conn *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read the first message: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("server message %q: %v", data, err)
	}
	return m
}

// validHeaderValue reports whether an HTTP client would send v as a
// header value (RFC 9110, section 5.5: no control characters but tab).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validQuery reports whether q can go on a request line as it is.
func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// forged are tokens for the same participant that this server did not
// sign.
type forged struct{ none, otherKey string }

func forgedTokens(t testing.TB, tok string, pt *types.ParticipantToken) forged {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok)
	}
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
	none := base64.RawURLEncoding.EncodeToString(raw) + "." + parts[1] + "."

	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stage, _ := tokenClaims(t, tok)
	now := time.Now().UTC()
	other, err := token.NewIssuer(key).Issue(context.Background(), &ivsrt.ParticipantToken{
		ParticipantID:  ivsrt.ParticipantID(aws.ToString(pt.ParticipantId)),
		StageARN:       ivsrt.StageARN(stage),
		UserID:         aws.ToString(pt.UserId),
		Capabilities:   []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe},
		CreatedAt:      now,
		ExpirationTime: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return forged{none: none, otherKey: other}
}
