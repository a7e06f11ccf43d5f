package sfu_test

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/sfu"
	"github.com/ivsrt/ivsrt/turnrelay"
)

var linkICEServer = regexp.MustCompile(`^<([^>]+)>; rel="ice-server"; username="([^"]*)"; credential="([^"]*)"; credential-type="password"$`)

// iceLinks parses the ice-server Link headers of a WHIP or WHEP response
// (RFC 9725, section 4.6) into one ICE server per URL.
func iceLinks(t *testing.T, h http.Header) []webrtc.ICEServer {
	t.Helper()
	var out []webrtc.ICEServer
	for _, l := range h.Values("Link") {
		m := linkICEServer.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("Link header %q is not an ice-server link with credentials", l)
		}
		out = append(out, webrtc.ICEServer{URLs: []string{m[1]}, Username: m[2], Credential: m[3]})
	}
	return out
}

// TestTURN: a server with an embedded TURN server hands each participant
// its TURN servers (the joined message; Link headers of OPTIONS with a
// token, and of WHIP and WHEP answers), and a publisher allowed nothing
// but relayed candidates over TURN/TCP publishes through it to a
// subscriber.
func TestTURN(t *testing.T) {
	t.Parallel()
	secret := []byte("turn secret of the test, 32 byte")
	relay, err := turnrelay.Start(turnrelay.Config{Secret: secret, Listen: "127.0.0.1:0",
		RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1", Peers: func(ip net.IP) bool { return ip.IsLoopback() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	port := relay.UDPAddr().(*net.UDPAddr).Port
	dir := &turnrelay.Directory{URLs: turnrelay.URLs("127.0.0.1", port, 0), Secret: secret}
	h := newHarness(t, sfu.WithICEServers(dir))
	stage := h.createStage("turn")
	pubTok := h.token(stage, "publisher", types.ParticipantTokenCapabilityPublish)
	pubID := aws.ToString(pubTok.ParticipantId)

	// The joined message.
	ws := h.dialEvents(aws.ToString(pubTok.Token))
	joined := ws.next("joined")
	servers, _ := joined["iceServers"].([]any)
	if len(servers) != 1 {
		t.Fatalf("joined message's iceServers: %v", joined["iceServers"])
	}
	srv := servers[0].(map[string]any)
	user, _ := srv["username"].(string)
	if !strings.HasSuffix(user, ":"+pubID) || len(srv["urls"].([]any)) != 2 || srv["credential"] == "" {
		t.Errorf("joined message's ICE server %v, want two URLs and credentials of %s", srv, pubID)
	}

	// OPTIONS: with the token, the ICE servers; without, none.
	options := func(tok string) http.Header {
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodOptions, h.url+"/whip", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}
	if links := options(""); len(links.Values("Link")) != 0 {
		t.Errorf("OPTIONS without a token has Link headers %v", links.Values("Link"))
	}
	if links := options("not-a-token"); len(links.Values("Link")) != 0 {
		t.Errorf("OPTIONS with a bad token has Link headers %v", links.Values("Link"))
	}
	ices := iceLinks(t, options(aws.ToString(pubTok.Token)))
	if len(ices) != 2 || ices[0].URLs[0] != "turn:127.0.0.1:"+strconv.Itoa(port)+"?transport=udp" || ices[0].Username != user {
		t.Fatalf("OPTIONS ICE servers %+v", ices)
	}

	// A publisher that may use only the relay, over TCP.
	var tcpOnly []webrtc.ICEServer
	for _, s := range ices {
		if strings.HasSuffix(s.URLs[0], "transport=tcp") {
			tcpOnly = append(tcpOnly, s)
		}
	}
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{
		ICEServers: tcpOnly, ICETransportPolicy: webrtc.ICETransportPolicyRelay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(vp8.RTPCodecCapability, "video", "publisher")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	connected, _ := watchState(pc)
	sdp := offer(t, pc)
	if !strings.Contains(sdp, "typ relay") || strings.Contains(sdp, "typ host") {
		t.Fatalf("the offer should have relayed candidates only:\n%s", sdp)
	}
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, h.url+"/whip", strings.NewReader(sdp))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+aws.ToString(pubTok.Token))
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP: %d %s", resp.StatusCode, answer)
	}
	if got := iceLinks(t, resp.Header); len(got) != 2 || got[1].Credential != ices[1].Credential {
		t.Errorf("WHIP answer's ICE servers %+v, want the participant's", got)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	wait(t, connected, "the relayed publisher to connect")
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Fatalf("selected pair %v (%v), want a relayed local candidate", pair, err)
	}
	if st := relay.Stats(); st.Allocations < 1 {
		t.Errorf("TURN server stats %+v, want an allocation", st)
	}

	// Its video reaches a subscriber.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			m := mediaPacket{Codec: vp8.MimeType, Frame: uint32(seq), Count: 1, Key: true, SrcSeq: seq, SrcTS: uint32(seq) * 3000}
			track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true},
				Payload: m.payload()})
		}
	}()
	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	sub := h.mustSubscribe(aws.ToString(viewer.Token), pubID)
	sub.waitFor(webrtc.RTPCodecTypeVideo, 30)
}
