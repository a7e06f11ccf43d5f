package sfu_test

import (
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// levelPC returns a peer connection on the loopback that negotiates the
// audio level extension (RFC 6464), as browsers do.
func levelPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// speaker publishes Opus audio whose packets carry level (-dBov), which
// the test changes as it goes.
type speaker struct {
	level atomic.Int32
	stop  chan struct{}
}

func (h *harness) speak(t *testing.T, tok string, level int) *speaker {
	t.Helper()
	pc := levelPC(t)
	track, err := webrtc.NewTrackLocalStaticRTP(opus.RTPCodecCapability, "audio", "speaker")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	connected, _ := watchState(pc)
	answer, _, err := h.post("/whip", tok, offer(t, pc))
	if err != nil {
		t.Fatalf("WHIP: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	wait(t, connected, "the speaker to connect")
	var id uint8
	for _, e := range sender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		t.Fatal("the server's answer did not take the audio level extension")
	}
	s := &speaker{stop: make(chan struct{})}
	s.level.Store(int32(level))
	t.Cleanup(func() { close(s.stop) })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960},
				Payload: opusLikePayload(seq)}
			pkt.Header.SetExtension(id, []byte{0x80 | byte(s.level.Load())}) // V, then the level
			track.WriteRTP(pkt)
		}
	}()
	return s
}

// opusLikePayload is an Opus-like payload of packet n.
func opusLikePayload(n uint16) []byte { return []byte{0xfc, byte(n), byte(n >> 8), 1, 2, 3, 4, 5} }

// TestActiveSpeakers: the events WebSocket tells who speaks, loudest
// first, as the publishers' audio levels say; a speaker who falls quiet
// stops being one after a moment; subscribers that negotiate the audio
// level extension receive each packet's level.
func TestActiveSpeakers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("speakers")
	alice, bob := h.token(stage, "alice"), h.token(stage, "bob")
	aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)
	watcher := h.dialEvents(aws.ToString(h.token(stage, "watcher", types.ParticipantTokenCapabilitySubscribe).Token))
	watcher.next("joined")
	next := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			msg := watcher.next("activeSpeakers")
			var got []string
			for _, s := range msg["speakers"].([]any) {
				got = append(got, s.(map[string]any)["participantId"].(string))
			}
			if slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("%s: no activeSpeakers message naming %v", what, want)
	}

	a := h.speak(t, aws.ToString(alice.Token), 20) // speaking up
	b := h.speak(t, aws.ToString(bob.Token), 127)  // silent
	next("alice speaks", aliceID)

	start := time.Now()
	a.level.Store(127)
	b.level.Store(25)
	next("bob speaks, alice falls quiet", bobID)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the change took %v", d)
	}
	a.level.Store(35)
	next("both speak, bob louder", bobID, aliceID)
	a.level.Store(127)
	b.level.Store(127)
	next("nobody speaks")

	// A subscriber that negotiated the extension gets the levels, with its
	// own id.
	b.level.Store(42)
	pc := levelPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	levels := make(chan byte, 100)
	pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		var id uint8
		for _, e := range r.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				id = uint8(e.ID)
			}
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if ext := pkt.GetExtension(id); id != 0 && len(ext) == 1 {
				select {
				case levels <- ext[0]:
				default:
				}
			}
		}
	})
	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	answer, _, err := h.post("/whep/"+bobID, aws.ToString(viewer.Token), offer(t, pc))
	if err != nil {
		t.Fatalf("WHEP: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-levels:
		if l != 0x80|42 {
			t.Errorf("the subscriber got level byte %#x, want %#x", l, 0x80|42)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber got no packet with its audio level")
	}
}
