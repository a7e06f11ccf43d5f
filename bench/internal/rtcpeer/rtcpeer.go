// Package rtcpeer is the WebRTC side of the media benchmarks: a pion peer
// connection on a loopback UDP socket of its own, as a browser tab has,
// the codecs a browser offers, and the WHIP and WHEP exchanges with
// ivsrt (RFC 9725: an SDP offer POSTed with the participant token as a
// bearer token, the answer and the session's Location in return). It
// serves bench/sfubench, bench/ingestbench and bench/compositionbench.
package rtcpeer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// BrowserFeedback is the video feedback a browser offers.
var BrowserFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}

// The codecs of the benchmarks' peers, as a browser offers them.
var (
	VP8 = webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: BrowserFeedback}}
	// H264 is constrained baseline, packetization mode 1.
	H264 = webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: BrowserFeedback}}
	Opus = webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}
)

// QuietLogs is a pion logger factory that logs nothing.
var QuietLogs = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}

// Options are what a peer negotiates.
type Options struct {
	Video webrtc.RTPCodecParameters
	Audio *webrtc.RTPCodecParameters // none if nil
	// RTCPFeedback: the peer's interceptors send receiver reports and
	// NACKs and answer NACKs, as a browser's do; without, it sends no
	// RTCP of its own but keyframe requests.
	RTCPFeedback bool
	// Simulcast: the header extensions a simulcast sender tags each
	// layer's packets with (the MID and the rid, RFC 8852).
	Simulcast bool
	// TWCC: transport-wide congestion control feedback (sent with
	// RTCPFeedback) and retransmissions in a stream of their own (RFC
	// 4588), as a browser's receiver negotiates them: the server
	// estimates the subscriber's bandwidth from the feedback, and probes
	// it with padding in the retransmission stream.
	TWCC bool
	// SocketBuffer is the send and receive buffer asked for on the
	// peer's socket, in bytes; 0 keeps the system's default.
	SocketBuffer int
}

// Peer is one pion peer connection on a UDP socket of its own on
// 127.0.0.1.
type Peer struct {
	PC *webrtc.PeerConnection
	// Connected is closed once the connection is established.
	Connected <-chan struct{}

	mux  ice.UDPMux
	conn *countingConn
}

// New returns a peer that sends or receives o's codecs.
func New(o Options) (*Peer, error) {
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(o.Video, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if o.Audio != nil {
		if err := me.RegisterCodec(*o.Audio, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	var ir interceptor.Registry
	if o.TWCC {
		// The server numbers its retransmission payload type one above
		// the codec's; offering the same keeps the answer simple.
		rtx := webrtc.RTPCodecParameters{PayloadType: o.Video.PayloadType + 1, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeRTX, ClockRate: o.Video.ClockRate, SDPFmtpLine: fmt.Sprintf("apt=%d", o.Video.PayloadType)}}
		if err := me.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	if o.Simulcast {
		if err := webrtc.ConfigureSimulcastExtensionHeaders(&me); err != nil {
			return nil, err
		}
	}
	if o.RTCPFeedback {
		if err := webrtc.ConfigureNack(&me, &ir); err != nil {
			return nil, err
		}
		if err := webrtc.ConfigureRTCPReports(&ir); err != nil {
			return nil, err
		}
		if o.TWCC {
			if err := webrtc.ConfigureTWCCSender(&me, &ir); err != nil {
				return nil, err
			}
		}
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	if o.SocketBuffer > 0 {
		udp.SetReadBuffer(o.SocketBuffer)
		udp.SetWriteBuffer(o.SocketBuffer)
	}
	conn := &countingConn{UDPConn: udp}
	mux := webrtc.NewICEUDPMux(QuietLogs.NewLogger("ice"), conn)
	var se webrtc.SettingEngine
	se.LoggerFactory = QuietLogs
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		mux.Close()
		return nil, err
	}
	connected := make(chan struct{})
	p := &Peer{PC: pc, Connected: connected, mux: mux, conn: conn}
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	return p, nil
}

// WireBytes is what the peer's socket has received: UDP payloads (SRTP,
// SRTCP, STUN, DTLS).
func (p *Peer) WireBytes() uint64 { return p.conn.bytes.Load() }

// Close closes the peer connection and its socket.
func (p *Peer) Close() {
	p.PC.Close()
	p.mux.Close()
}

// Offer returns the peer's offer with all its candidates.
func (p *Peer) Offer(ctx context.Context) (string, error) {
	o, err := p.PC.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(p.PC)
	if err := p.PC.SetLocalDescription(o); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return p.PC.LocalDescription().SDP, nil
}

// Exchange posts the offer to a WHIP or WHEP endpoint, applies the
// answer, and returns it with the session's URL.
func (p *Peer) Exchange(ctx context.Context, client *http.Client, url, token, offer string) (answer, location string, err error) {
	answer, location, err = PostOffer(ctx, client, url, token, offer)
	if err != nil {
		return "", "", err
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return "", "", fmt.Errorf("apply answer: %w", err)
	}
	return answer, location, nil
}

// PostOffer sends a WHIP or WHEP offer and returns the answer and the
// session's URL (its Location). An error answer is a *Refused.
func PostOffer(ctx context.Context, client *http.Client, url, token, offer string) (answer, location string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(offer))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusCreated {
		var e struct{ Code, Message string }
		json.Unmarshal(body, &e)
		return "", "", &Refused{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	return string(body), resp.Header.Get("Location"), nil
}

// Refused is an error answer of WHIP or WHEP.
type Refused struct {
	Status        int
	Code, Message string
}

func (e *Refused) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// countingConn is a peer's UDP socket that counts the bytes it receives.
type countingConn struct {
	*net.UDPConn
	bytes atomic.Uint64
}

// ReadFromAddrPort and WriteToAddrPort let pion's UDP mux use the socket
// without allocating per packet, as it does a bare *net.UDPConn.
func (c *countingConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, addr, err := c.UDPConn.ReadFromUDPAddrPort(b)
	c.bytes.Add(uint64(n))
	return n, addr, err
}

func (c *countingConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.UDPConn.ReadFrom(b)
	c.bytes.Add(uint64(n))
	return n, addr, err
}
