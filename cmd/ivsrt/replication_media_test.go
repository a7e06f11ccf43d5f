package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// A synthetic publisher and subscriber for checking that media arrives
// as it was sent: every packet's payload is made from its number, so a
// subscriber can tell each one it receives is byte for byte what the
// publisher sent, wherever it went on the way.

// synthMagic starts every synthetic payload after the codec's header.
var synthMagic = []byte("IVSRTSYN")

// synthPayload is the payload of packet n of a kind: for video, a VP8
// payload descriptor whose frame is a key frame when key is set, one
// packet per frame.
func synthPayload(video, key bool, n uint32) []byte {
	var b bytes.Buffer
	if video {
		b.WriteByte(0x10) // S=1, PID 0
		if key {
			b.WriteByte(0x00) // P=0: key frame
		} else {
			b.WriteByte(0x01)
		}
	}
	b.Write(synthMagic)
	binary.Write(&b, binary.BigEndian, n)
	if key {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
	for i := range 100 + int(n*37)%400 {
		b.WriteByte(byte(int(n)*31 + i))
	}
	return b.Bytes()
}

// checkSynth reports whether a received payload is one synthPayload made.
func checkSynth(video bool, payload []byte) (uint32, error) {
	off := 0
	if video {
		off = 2
	}
	if len(payload) < off+len(synthMagic)+5 || !bytes.Equal(payload[off:off+len(synthMagic)], synthMagic) {
		return 0, fmt.Errorf("not a synthetic payload: % x", payload[:min(len(payload), 16)])
	}
	n := binary.BigEndian.Uint32(payload[off+len(synthMagic):])
	key := payload[off+len(synthMagic)+4] == 1
	if want := synthPayload(video, key, n); !bytes.Equal(payload, want) {
		return n, fmt.Errorf("payload of packet %d differs from what was sent", n)
	}
	return n, nil
}

// newSynthPC returns a peer connection on the loopback interface.
// synthOption changes how a synthetic client's peer connection is made.
type synthOption func(se *webrtc.SettingEngine, cfg *webrtc.Configuration)

// viaTURN makes a synthetic client gather relayed candidates alone, from
// servers, on whatever interface it has (not only the loopback).
func viaTURN(servers []webrtc.ICEServer) synthOption {
	return func(se *webrtc.SettingEngine, cfg *webrtc.Configuration) {
		se.SetIPFilter(nil)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
		cfg.ICEServers, cfg.ICETransportPolicy = servers, webrtc.ICETransportPolicyRelay
	}
}

func newSynthPC(t testing.TB, opts ...synthOption) *webrtc.PeerConnection {
	t.Helper()
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var ir interceptor.Registry
	if err := webrtc.RegisterDefaultInterceptors(&me, &ir); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	var cfg webrtc.Configuration
	for _, o := range opts {
		o(&se, &cfg)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// exchangeSDP posts pc's offer to url with a bearer token, applies the
// answer and returns the session's URL.
func exchangeSDP(t testing.TB, pc *webrtc.PeerConnection, url, token string) (string, error) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := localHTTPClient(t).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("Location"), nil
}

// synthPublisher publishes synthetic VP8 video (a frame every 33 ms, a
// key frame every 30 and whenever one is asked for) and Opus audio.
type synthPublisher struct {
	pc       *webrtc.PeerConnection
	location string
	keyNow   atomic.Bool
	plis     atomic.Int64
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// synthPublish publishes over WHIP at base (http://host:port).
func synthPublish(t testing.TB, base, token string, opts ...synthOption) *synthPublisher {
	t.Helper()
	pc := newSynthPC(t, opts...)
	p := &synthPublisher{pc: pc, stop: make(chan struct{}), done: make(chan struct{})}
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "synth")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "synth")
	if err != nil {
		t.Fatal(err)
	}
	for _, track := range []*webrtc.TrackLocalStaticRTP{video, audio} {
		sender, err := pc.AddTrack(track)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				pkts, _, err := sender.ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.plis.Add(1)
						p.keyNow.Store(true)
					}
				}
			}
		}()
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	loc, err := exchangeSDP(t, pc, base+"/whip", token)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	p.location = loc
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("the publisher did not connect")
	}
	go p.send(video, audio)
	t.Cleanup(p.halt)
	return p
}

func (p *synthPublisher) send(video, audio *webrtc.TrackLocalStaticRTP) {
	defer close(p.done)
	vt, at := time.NewTicker(33*time.Millisecond), time.NewTicker(20*time.Millisecond)
	defer vt.Stop()
	defer at.Stop()
	var frame, apkt uint32
	for {
		select {
		case <-p.stop:
			return
		case <-vt.C:
			key := frame%30 == 0 || p.keyNow.Swap(false)
			video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(frame), Timestamp: frame * 3000, Marker: true},
				Payload: synthPayload(true, key, frame)})
			frame++
		case <-at.C:
			audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(apkt), Timestamp: apkt * 960},
				Payload: synthPayload(false, false, apkt)})
			apkt++
		}
	}
}

// halt stops sending and closes the connection.
func (p *synthPublisher) halt() {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.pc.Close()
	})
}

// synthSubscriber subscribes over WHEP and checks every packet.
type synthSubscriber struct {
	pc   *webrtc.PeerConnection
	gone chan struct{}

	mu       sync.Mutex
	received map[webrtc.RTPCodecType]map[uint32]bool
	bad      []error
}

// synthSubscribe subscribes over WHEP at base to participant remote.
func synthSubscribe(t testing.TB, base, token, remote string, opts ...synthOption) (*synthSubscriber, error) {
	t.Helper()
	pc := newSynthPC(t, opts...)
	s := &synthSubscriber{pc: pc, gone: make(chan struct{}), received: map[webrtc.RTPCodecType]map[uint32]bool{
		webrtc.RTPCodecTypeVideo: {}, webrtc.RTPCodecTypeAudio: {}}}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			once.Do(func() { close(s.gone) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			n, err := checkSynth(video, pkt.Payload)
			s.mu.Lock()
			if err != nil {
				s.bad = append(s.bad, err)
			} else {
				s.received[tr.Kind()][n] = true
			}
			s.mu.Unlock()
		}
	})
	if _, err := exchangeSDP(t, pc, base+"/whep/"+remote, token); err != nil {
		return nil, err
	}
	return s, nil
}

// waitMedia waits until the subscriber got n distinct packets of each
// kind, every one of them as the publisher sent it.
func (s *synthSubscriber) waitMedia(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s.mu.Lock()
		v, a, bad := len(s.received[webrtc.RTPCodecTypeVideo]), len(s.received[webrtc.RTPCodecTypeAudio]), s.bad
		s.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("%d packets not as they were sent, the first: %v", len(bad), bad[0])
		}
		if v >= n && a >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d video and %d audio packets in %v, want %d of each", v, a, within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitGone waits until the subscriber's connection is dropped.
func (s *synthSubscriber) waitGone(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case <-s.gone:
	case <-time.After(within):
		t.Fatalf("the subscriber's connection was not dropped within %v", within)
	}
}

// counts returns how many distinct packets of each kind arrived.
func (s *synthSubscriber) counts() (video, audio int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received[webrtc.RTPCodecTypeVideo]), len(s.received[webrtc.RTPCodecTypeAudio])
}
