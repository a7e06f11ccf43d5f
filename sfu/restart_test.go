package sfu_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// sdpLines returns the lines of sdp that start with prefix.
func sdpLines(sdp, prefix string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestICERestart: a subscriber whose address changes restarts ICE with a
// PATCH of its WHEP session (RFC 9725, section 4.3.2): it gets the
// server's new credentials and candidates, its stream goes on from its
// new address, and the session stays the same one.
func TestICERestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("restart")
	pubTok := h.token(stage, "publisher", types.ParticipantTokenCapabilityPublish)
	pubID := aws.ToString(pubTok.ParticipantId)
	h.mustPublish(aws.ToString(pubTok.Token), vp8, true)
	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)

	// A subscriber whose candidates are sockets of their own: a restart
	// gathers new ones, on other ports, as a new network would.
	var se webrtc.SettingEngine
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	var packets atomic.Int64
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			packets.Add(1)
		}
	})
	connected, gone := watchState(pc)
	answer, location, err := h.post("/whep/"+pubID, aws.ToString(viewer.Token), offer(t, pc))
	if err != nil {
		t.Fatalf("WHEP: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	wait(t, connected, "the subscriber to connect")
	receiving := func(what string) {
		t.Helper()
		from := packets.Load()
		eventually(t, what, func() error {
			if packets.Load() < from+30 {
				return fmt.Errorf("%d packets since", packets.Load()-from)
			}
			return nil
		})
	}
	receiving("video before the restart")
	// localPort is the port of the subscriber's selected candidate, 0
	// while none is selected (during a restart).
	localPort := func() int {
		pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			return 0
		}
		return int(pair.Local.Port)
	}
	before := localPort()
	if before == 0 {
		t.Fatal("no selected candidate pair once connected")
	}

	// The restart: a new offer's credentials and candidates in a PATCH.
	restart, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(restart); err != nil {
		t.Fatal(err)
	}
	<-gathered
	local := pc.LocalDescription().SDP
	frag := strings.Join(append(append(sdpLines(local, "a=ice-ufrag:")[:1], sdpLines(local, "a=ice-pwd:")[:1]...),
		append([]string{"m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0"}, sdpLines(local, "a=candidate:")...)...), "\r\n") + "\r\n"
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPatch, location, strings.NewReader(frag))
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	req.Header.Set("If-Match", "*")
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/trickle-ice-sdpfrag" || resp.Header.Get("ETag") == "" {
		t.Fatalf("PATCH for a restart: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	oldUfrag := sdpLines(answer, "a=ice-ufrag:")[0]
	newUfrag := sdpLines(string(body), "a=ice-ufrag:")
	if len(newUfrag) != 1 || newUfrag[0] == oldUfrag || len(sdpLines(string(body), "a=ice-pwd:")) != 1 || len(sdpLines(string(body), "a=candidate:")) == 0 {
		t.Fatalf("the restart's answer has no new credentials or candidates:\n%s", body)
	}
	// The server's new answer: the first one's, but for its ICE.
	var next strings.Builder
	for _, l := range strings.Split(strings.ReplaceAll(answer, "\r\n", "\n"), "\n") {
		switch {
		case l == "", strings.HasPrefix(l, "a=candidate:"), l == "a=end-of-candidates":
			continue
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			l = newUfrag[0]
		case strings.HasPrefix(l, "a=ice-pwd:"):
			l = sdpLines(string(body), "a=ice-pwd:")[0]
		}
		next.WriteString(l + "\r\n")
		if strings.HasPrefix(l, "a=mid:") {
			for _, c := range sdpLines(string(body), "a=candidate:") {
				next.WriteString(c + "\r\n")
			}
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: next.String()}); err != nil {
		t.Fatalf("set the restart's answer: %v", err)
	}
	eventually(t, "a new address", func() error {
		if p := localPort(); p == before || p == 0 {
			return fmt.Errorf("on port %d, before the restart %d", p, before)
		}
		return nil
	})
	receiving("video after the restart, from the new address")
	select {
	case <-gone:
		t.Fatal("the subscriber's connection ended")
	default:
	}
	session := h.activeSession(stage)
	h.waitHistory(stage, session, aws.ToString(viewer.ParticipantId), "JOINED", "SUBSCRIBE_STARTED remote="+pubID)
}
