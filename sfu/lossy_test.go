package sfu_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/sfu/internal/lossy"
)

// Streams over a bad network: a lossy proxy between one client and the
// server drops, delays and jitters datagrams, and the stream must recover
// as a browser's would, with NACKs for lost packets and a keyframe request
// (PLI) when a frame cannot be repaired.
//
// The publisher sends VP8 video at 30 frames a second, 4 packets a frame
// (12 for faster video) and twice as many a keyframe, with a keyframe only
// at the start and when asked. The subscriber checks every payload and
// feeds a model of a decoder (see decoderModel); frames are counted complete
// when all their packets arrived, whenever they did.

// Networks of the scenarios, the same both ways.
var (
	loss5 = lossy.Link{Loss: 0.05, Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond}
	// loss20 also lets datagrams overtake one another.
	loss20 = lossy.Link{Loss: 0.20, Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: true}
	// lossFar is 5% loss on a longer path: 120 ms round trips.
	lossFar = lossy.Link{Loss: 0.05, Delay: 60 * time.Millisecond, Jitter: 10 * time.Millisecond}
)

// Packets in a frame that is not a keyframe.
const (
	slowVideo = 4  // about 120 packets a second
	fastVideo = 12 // about 360 packets a second, 1 Mbit/s
)

const (
	// lossyWindow is how long a scenario's frames are counted.
	lossyWindow = 4 * time.Second
	// repairFrames is how many frames past the window the subscriber
	// must have received before the window's frames are counted: a second
	// of the stream, time for several NACK round trips, counted in the
	// stream's own progress so that a busy machine, which slows the
	// stream and the repairs alike, does not count late packets as lost.
	repairFrames = 30
	// burstLength is how long a blackout cuts everything.
	burstLength = 500 * time.Millisecond
	// maxKeyframeFrames is the most frames the publisher may send after a
	// blackout before the subscriber decodes a keyframe (two seconds of
	// the stream: the keyframe comes when the subscriber asks for it).
	maxKeyframeFrames = 60
	// giveUp only keeps a broken run from hanging.
	giveUp = 60 * time.Second
)

func TestLossyPublisherLink(t *testing.T) { testLossy(t, publisherLeg) }

func TestLossySubscriberLink(t *testing.T) { testLossy(t, subscriberLeg) }

func testLossy(t *testing.T, leg lossyLeg) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()

	// With 5% loss, NACKs repair nearly every frame; without them about
	// one frame in five (0.95^4 complete) is lost.
	t.Run("loss5", func(t *testing.T) {
		h := newHarness(t)
		repaired := startLossyStream(t, h, leg, nackRepair, slowVideo, 51)
		unrepaired := startLossyStream(t, h, leg, noRepair, slowVideo, 52)
		results := measureLossy(loss5, repaired, unrepaired)
		with, without := results[0], results[1]
		t.Logf("%s link, 5%% loss, with NACK: %v", leg, with)
		t.Logf("%s link, 5%% loss, without NACK: %v", leg, without)
		if f := with.completeFraction(); f < 0.95 {
			t.Errorf("with NACK %.1f%% of the frames complete, want at least 95%%", 100*f)
		}
		if with.repeats == 0 {
			t.Errorf("with NACK no packet was retransmitted")
		}
		if without.completeFraction() >= with.completeFraction() {
			t.Errorf("without NACK %.1f%% of the frames complete, with %.1f%%: want fewer without",
				100*without.completeFraction(), 100*with.completeFraction())
		}
		repaired.checkPayloads()
		unrepaired.checkPayloads()
	})

	// The same, the retransmissions in an RTX stream of their own.
	t.Run("loss5 rtx", func(t *testing.T) {
		h := newHarness(t)
		s := startLossyStream(t, h, leg, rtxRepair, slowVideo, 53)
		r := measureLossy(loss5, s)[0]
		t.Logf("%s link, 5%% loss, with RTX: %v", leg, r)
		if f := r.completeFraction(); f < 0.95 {
			t.Errorf("with RTX %.1f%% of the frames complete, want at least 95%%", 100*f)
		}
		// Repairs come in the RTX stream, whose packets are no repeats of
		// the media stream's: they show as the media's packets coming late.
		if r.late == 0 || r.nacks == 0 {
			t.Errorf("with RTX %d NACKs and %d packets late: want repairs", r.nacks, r.late)
		}
		s.checkPayloads()
	})

	// With 20% loss both ways and reordering, a packet may need several
	// NACKs, each of which may be lost too.
	t.Run("loss20", func(t *testing.T) {
		h := newHarness(t)
		s := startLossyStream(t, h, leg, nackRepair, slowVideo, 201)
		r := measureLossy(loss20, s)[0]
		t.Logf("%s link, 20%% loss and reordering, with NACK: %v", leg, r)
		if f := r.completeFraction(); f < 0.90 {
			t.Errorf("%.1f%% of the frames complete, want at least 90%%", 100*f)
		}
		s.checkPayloads()
	})

	// Faster video over a longer path: a retransmission comes 40 to 80
	// packets after the packet it repairs, which the SRTP replay window of
	// whoever receives it must still let in.
	t.Run("fast", func(t *testing.T) {
		h := newHarness(t)
		s := startLossyStream(t, h, leg, nackRepair, fastVideo, 360)
		r := measureLossy(lossFar, s)[0]
		t.Logf("%s link, 5%% loss, 120 ms round trips, %d packets a frame, with NACK: %v", leg, fastVideo, r)
		if f := r.completeFraction(); f < 0.95 {
			t.Errorf("%.1f%% of the frames complete, want at least 95%%", 100*f)
		}
		s.checkPayloads()
	})

	// A blackout whose packets are never repaired: the subscriber's
	// decoder stalls and asks for a keyframe, which must come.
	t.Run("burst", func(t *testing.T) {
		h := newHarness(t)
		s := startLossyStream(t, h, leg, nackRepair, slowVideo, 500)
		s.proxy.SetLinks(loss5)
		time.Sleep(time.Second)
		r := s.burst(burstLength)
		t.Logf("%s link, 5%% loss, %v blackout lost for good: %v", leg, burstLength, r)
		if !r.recovered {
			t.Fatalf("no keyframe decoded within %v of the blackout's end", giveUp)
		}
		if r.keyframeFrames > maxKeyframeFrames {
			t.Errorf("keyframe decoded %d frames after the blackout, want within %d", r.keyframeFrames, maxKeyframeFrames)
		}
		if r.plis == 0 || r.publisherPLIs == 0 {
			t.Errorf("subscriber sent %d PLIs, publisher received %d: want the request passed on", r.plis, r.publisherPLIs)
		}
		if r.decodedAfter < 10 {
			t.Errorf("%d of the 30 frames after the keyframe decoded, want at least 10: the stream going again", r.decodedAfter)
		}
		s.checkPayloads()
	})
}

// lossyLeg says on which side of the server the bad network is.
type lossyLeg int

const (
	publisherLeg  lossyLeg = iota // between the publisher and the server
	subscriberLeg                 // between the server and the subscriber
)

func (l lossyLeg) String() string {
	if l == publisherLeg {
		return "publisher"
	}
	return "subscriber"
}

// lossyStream is one publisher and one subscriber of its video, one of
// them behind a lossy proxy.
type lossyStream struct {
	t     testing.TB
	leg   lossyLeg
	proxy *lossy.Proxy
	pub   *lossyPublisher
	sub   *lossySubscriber
}

// startLossyStream starts a publisher and a subscriber in a new stage,
// the client on the leg behind a proxy that does not yet impair anything,
// and waits for the subscriber to decode video. The client behind the
// proxy repairs as behind says (NACKs: the publisher answers them, the
// subscriber sends them; RTX: in a stream of their own); the other client
// always uses NACKs. The publisher sends
// perFrame packets a frame, twice as many a keyframe.
func startLossyStream(t testing.TB, h *harness, leg lossyLeg, behind repair, perFrame uint16, seed uint64) *lossyStream {
	t.Helper()
	name := fmt.Sprintf("lossy-%d", seed)
	stage := h.createStage(name)
	alice := h.token(stage, "alice-"+name, types.ParticipantTokenCapabilityPublish)
	bob := h.token(stage, "bob-"+name, types.ParticipantTokenCapabilitySubscribe)
	s := &lossyStream{t: t, leg: leg}

	// The publisher.
	pc := newLossyClientPC(t, repairOf(leg == publisherLeg, behind))
	s.pub = newLossyPublisher(t, pc, perFrame, seed)
	if leg == publisherLeg {
		s.proxy, s.pub.location = h.exchangeVia(pc, "/whip", aws.ToString(alice.Token), seed)
	} else {
		s.pub.location = h.exchangeDirect(pc, "/whip", aws.ToString(alice.Token))
	}
	wait(t, s.pub.connected, "the publisher to connect")
	aliceID := aws.ToString(alice.ParticipantId)
	eventually(t, "PUBLISH_STARTED of "+aliceID, func() error {
		if got := h.history(stage, h.activeSession(stage), aliceID); len(got) == 0 || got[len(got)-1] != "PUBLISH_STARTED" {
			return fmt.Errorf("events %q", got)
		}
		return nil
	})

	// The subscriber.
	pc = newLossyClientPC(t, repairOf(leg == subscriberLeg, behind))
	s.sub = newLossySubscriber(t, pc)
	if leg == subscriberLeg {
		s.proxy, s.sub.location = h.exchangeVia(pc, "/whep/"+aliceID, aws.ToString(bob.Token), seed)
	} else {
		s.sub.location = h.exchangeDirect(pc, "/whep/"+aliceID, aws.ToString(bob.Token))
	}
	wait(t, s.sub.connected, "the subscriber to connect")
	eventually(t, "the subscriber to decode video", func() error {
		if n := s.sub.dec.snapshot().decoded; n < 10 {
			return fmt.Errorf("%d frames decoded", n)
		}
		return nil
	})
	return s
}

// checkPayloads fails the test if a payload the subscriber received was
// not one the publisher sent.
func (s *lossyStream) checkPayloads() {
	s.t.Helper()
	if bad := s.sub.dec.snapshot().bad; len(bad) > 0 {
		s.t.Errorf("%d damaged payloads, the first: %v", len(bad), bad[0])
	}
}

// lossyResult is what a subscriber got of the frames a publisher sent in
// a window.
type lossyResult struct {
	frames, complete int // frames sent, frames all of whose packets arrived
	packets, arrived int // packets sent, and arrived

	decoded int // frames the subscriber's decoder decoded
	plis    int // sent by the subscriber's decoder
	late    int // packets that came after a later one: repaired, or overtaken
	repeats int // retransmissions through the proxy
	nacks   int // NACKs through the proxy
	dropped int // datagrams the proxy dropped
}

func (r lossyResult) completeFraction() float64 {
	return float64(r.complete) / float64(max(r.frames, 1))
}

func (r lossyResult) String() string {
	return fmt.Sprintf("%d/%d frames complete (%.1f%%), %d/%d packets (%.1f%%); %d frames decoded, %d PLIs; "+
		"%d packets late, %d retransmitted and %d NACKs through the proxy, which dropped %d datagrams",
		r.complete, r.frames, 100*r.completeFraction(), r.arrived, r.packets, 100*float64(r.arrived)/float64(max(r.packets, 1)),
		r.decoded, r.plis, r.late, r.repeats, r.nacks, r.dropped)
}

// measureLossy puts every stream's proxy on link and counts what the
// subscribers get of the frames sent in the next lossyWindow, once every
// frame is complete or the subscriber has had repairFrames more frames.
func measureLossy(link lossy.Link, streams ...*lossyStream) []lossyResult {
	type mark struct {
		frame           uint32
		dec             modelState
		media, feedback lossy.Stats
	}
	starts := make([]mark, len(streams))
	for i, s := range streams {
		s.proxy.SetLinks(link)
		media, feedback := s.directions()
		starts[i] = mark{frame: s.pub.frames.Load(), dec: s.sub.dec.snapshot(),
			media: s.proxy.Stats(media), feedback: s.proxy.Stats(feedback)}
	}
	time.Sleep(lossyWindow)
	ends := make([]uint32, len(streams))
	for i, s := range streams {
		ends[i] = s.pub.frames.Load()
	}
	deadline := time.Now().Add(giveUp)
	for i, s := range streams {
		for time.Now().Before(deadline) && !s.windowComplete(starts[i].frame, ends[i]) &&
			s.sub.dec.arrived(ends[i]+repairFrames) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	results := make([]lossyResult, len(streams))
	for i, s := range streams {
		media, feedback := s.directions()
		dec := s.sub.dec.snapshot()
		m, f, start := s.proxy.Stats(media), s.proxy.Stats(feedback), starts[i]
		r := lossyResult{
			plis:    dec.plis - start.dec.plis,
			late:    dec.late - start.dec.late,
			repeats: m.Repeats - start.media.Repeats,
			nacks:   f.NACKs - start.feedback.NACKs,
			dropped: m.Dropped - start.media.Dropped + f.Dropped - start.feedback.Dropped,
		}
		counts := s.pub.frameCounts()
		for f := starts[i].frame; f < ends[i]; f++ {
			r.frames++
			r.packets += int(counts[f])
			got := s.sub.dec.arrived(f)
			r.arrived += got
			if got == int(counts[f]) {
				r.complete++
			}
		}
		for _, dc := range dec.decodes {
			if dc.frame >= start.frame && dc.frame < ends[i] {
				r.decoded++
			}
		}
		results[i] = r
	}
	return results
}

// windowComplete reports whether every packet of the frames in [first,
// end) reached the subscriber.
func (s *lossyStream) windowComplete(first, end uint32) bool {
	counts := s.pub.frameCounts()
	for f := first; f < end; f++ {
		if int(f) >= len(counts) || s.sub.dec.arrived(f) != int(counts[f]) {
			return false
		}
	}
	return true
}

// directions returns the direction the media goes through the stream's
// proxy, and the direction of the feedback.
func (s *lossyStream) directions() (media, feedback lossy.Direction) {
	if s.leg == publisherLeg {
		return lossy.Up, lossy.Down
	}
	return lossy.Down, lossy.Up
}

// burstResult is how a stream came back after a blackout.
type burstResult struct {
	recovered      bool
	keyframeAfter  time.Duration // from the blackout's end to the keyframe's decoding
	keyframeFrames int           // frames the publisher sent after the blackout before that keyframe
	plis           int           // sent by the subscriber's decoder
	publisherPLIs  int32         // received by the publisher
	firstPLI       time.Duration // from the blackout's end to the decoder's first PLI
	decodedAfter   int           // frames decoded of the 30 after the keyframe
}

func (r burstResult) String() string {
	if !r.recovered {
		return fmt.Sprintf("not recovered; %d PLIs sent, %d received by the publisher", r.plis, r.publisherPLIs)
	}
	return fmt.Sprintf("keyframe decoded %v (%d frames) after the blackout; first PLI %v after it, %d sent, %d received by the publisher; "+
		"%d of the next 30 frames decoded", r.keyframeAfter.Round(time.Millisecond), r.keyframeFrames, r.firstPLI.Round(time.Millisecond),
		r.plis, r.publisherPLIs, r.decodedAfter)
}

// burst cuts the stream's proxy for d, its RTP packets lost for good, and
// waits for the subscriber to decode a keyframe sent after it started.
func (s *lossyStream) burst(d time.Duration) burstResult {
	before := s.sub.dec.snapshot()
	plisBefore := s.pub.plis.Load()
	frame := s.pub.frames.Load()
	s.proxy.Blackout(d, true)
	end := time.Now().Add(d)
	time.Sleep(d)
	endFrame := s.pub.frames.Load()
	var r burstResult
	deadline := end.Add(giveUp)
	var key time.Time
	var keyFrame uint32
	for time.Now().Before(deadline) {
		if at, f, ok := s.sub.dec.keyframeDecoded(frame); ok {
			key, keyFrame, r.recovered = at, f, true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := s.sub.dec.snapshot()
	r.plis = after.plis - before.plis
	r.publisherPLIs = s.pub.plis.Load() - plisBefore
	if !after.firstPLIAfter(end).IsZero() {
		r.firstPLI = after.firstPLIAfter(end).Sub(end)
	}
	if !r.recovered {
		return r
	}
	r.keyframeAfter = key.Sub(end)
	r.keyframeFrames = int(keyFrame) - int(endFrame)
	for time.Now().Before(deadline) {
		// Of the second of the stream after the keyframe (30 frames), at
		// least a third decoded: the stream is going again.
		if r.decodedAfter = s.sub.dec.snapshot().decodedBetween(keyFrame+1, keyFrame+31); r.decodedAfter >= 10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// repair is how a lossy client repairs what it loses.
type repair int

const (
	noRepair   repair = iota
	nackRepair        // NACKs, answered with the packets again
	rtxRepair         // NACKs, answered in a retransmission stream (RFC 4588)
)

// repairOf is the repair of a client: behind's if it is behind the
// proxy, else NACKs.
func repairOf(isBehind bool, behind repair) repair {
	if isBehind {
		return behind
	}
	return nackRepair
}

// newLossyClientPC returns a client peer connection for VP8 video on
// 127.0.0.1, with pion's NACK generator and responder unless r is
// noRepair, and RTX negotiated for rtxRepair.
func newLossyClientPC(t testing.TB, r repair) *webrtc.PeerConnection {
	t.Helper()
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(vp8, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	if r == rtxRepair {
		rtx := webrtc.RTPCodecParameters{PayloadType: vp8.PayloadType + 1, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", vp8.PayloadType)}}
		if err := me.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	var ir interceptor.Registry
	if r != noRepair {
		if err := webrtc.RegisterDefaultInterceptors(&me, &ir); err != nil {
			t.Fatal(err)
		}
	} else if err := webrtc.ConfigureRTCPReports(&ir); err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	mux := webrtc.NewICEUDPMux(logs.NewLogger("ice"), udp)
	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A retransmission comes after the packets sent since the loss; pion's
	// default SRTP replay window, 64 packets, would take those that come
	// later than that for replays. Browsers keep a wide window.
	se.SetSRTPReplayProtectionWindow(1024)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pc.Close()
		mux.Close()
	})
	return pc
}

// exchangeDirect posts pc's offer to path and applies the answer.
func (h *harness) exchangeDirect(pc *webrtc.PeerConnection, path, tok string) (location string) {
	h.t.Helper()
	answer, loc, err := h.post(path, tok, offer(h.t, pc))
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		h.t.Fatalf("set answer of %s: %v", path, err)
	}
	return loc
}

// exchangeVia is exchangeDirect through a lossy proxy: the offer goes
// without pc's candidates, so that the server learns pc's address only
// from the checks that reach it through the proxy, and the server's UDP
// candidate in the answer is replaced by the proxy's address.
func (h *harness) exchangeVia(pc *webrtc.PeerConnection, path, tok string, seed uint64) (*lossy.Proxy, string) {
	h.t.Helper()
	answer, loc, err := h.post(path, tok, withoutCandidates(offer(h.t, pc)))
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	var proxy *lossy.Proxy
	var target string
	answer, err = rewriteCandidates(answer, func(server string) (string, error) {
		switch {
		case proxy == nil:
			proxy, err = lossy.New(server, seed)
			if err != nil {
				return "", err
			}
			target = server
		case server != target:
			return "", fmt.Errorf("UDP candidates %s and %s: want one address", target, server)
		}
		return proxy.Addr().String(), nil
	})
	if err != nil {
		h.t.Fatalf("answer of %s: %v", path, err)
	}
	if proxy == nil {
		h.t.Fatalf("answer of %s has no UDP candidate:\n%s", path, answer)
	}
	h.t.Cleanup(func() { proxy.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		h.t.Fatalf("set answer of %s: %v", path, err)
	}
	return proxy, loc
}

// withoutCandidates removes the candidates from an SDP description.
func withoutCandidates(desc string) string {
	var b strings.Builder
	for line := range strings.Lines(desc) {
		if !strings.HasPrefix(line, "a=candidate:") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// rewriteCandidates replaces the address of each UDP host candidate of an
// SDP description with the one to returns for it, and drops the other
// candidates.
func rewriteCandidates(desc string, to func(addr string) (string, error)) (string, error) {
	var b strings.Builder
	for line := range strings.Lines(desc) {
		attr, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=candidate:")
		if !ok {
			b.WriteString(line)
			continue
		}
		c, err := ice.UnmarshalCandidate("candidate:" + attr)
		if err != nil {
			return "", fmt.Errorf("candidate %q: %w", attr, err)
		}
		if c.Type() != ice.CandidateTypeHost || !c.NetworkType().IsUDP() {
			continue
		}
		addr, err := to(net.JoinHostPort(c.Address(), strconv.Itoa(c.Port())))
		if err != nil {
			return "", err
		}
		host, portText, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portText)
		moved, err := ice.NewCandidateHost(&ice.CandidateHostConfig{
			Network:    "udp",
			Address:    host,
			Port:       port,
			Component:  c.Component(),
			Priority:   c.Priority(),
			Foundation: c.Foundation(),
		})
		if err != nil {
			return "", err
		}
		b.WriteString("a=candidate:" + moved.Marshal() + "\r\n")
	}
	return b.String(), nil
}

// lossyPublisher is a WHIP client sending synthetic VP8 video: 30 frames
// a second of perFrame packets, keyframes of twice as many at the start
// and when the server asks (PLI, FIR).
type lossyPublisher struct {
	pc        *webrtc.PeerConnection
	location  string
	connected <-chan struct{}
	perFrame  uint16

	frames atomic.Uint32 // frames sent
	plis   atomic.Int32  // keyframe requests received
	keyNow atomic.Bool

	mu     sync.Mutex
	counts []uint16 // packets of each frame sent

	stop chan struct{}
	done chan struct{}
}

func newLossyPublisher(t testing.TB, pc *webrtc.PeerConnection, perFrame uint16, seed uint64) *lossyPublisher {
	t.Helper()
	p := &lossyPublisher{pc: pc, perFrame: perFrame, stop: make(chan struct{}), done: make(chan struct{})}
	p.connected, _ = watchState(pc)
	track, err := webrtc.NewTrackLocalStaticRTP(vp8.RTPCodecCapability, "video", "publisher")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	rtcpDone := make(chan struct{})
	go func() {
		defer close(rtcpDone)
		for {
			pkts, _, err := tr.Sender().ReadRTCP()
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
	go p.send(track, rand.New(rand.NewPCG(seed, 1)))
	t.Cleanup(func() {
		close(p.stop)
		<-p.done
		pc.Close()
		<-rtcpDone
	})
	return p
}

// frameCounts returns how many packets each frame sent had.
func (p *lossyPublisher) frameCounts() []uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint16(nil), p.counts...)
}

func (p *lossyPublisher) send(track *webrtc.TrackLocalStaticRTP, rng *rand.Rand) {
	defer close(p.done)
	select {
	case <-p.connected:
	case <-p.stop:
		return
	}
	seq, ts := uint16(rng.Uint32()), rng.Uint32()
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	for frame := uint32(0); ; frame++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		key := frame == 0 || p.keyNow.Swap(false)
		count := p.perFrame
		if key {
			count *= 2
		}
		for i := range count {
			m := mediaPacket{Codec: webrtc.MimeTypeVP8, Frame: frame, Index: i, Count: count, Key: key, SrcSeq: seq, SrcTS: ts}
			track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: i == count-1},
				Payload: m.payload()})
			seq++
		}
		ts += 3000
		p.mu.Lock()
		p.counts = append(p.counts, count)
		p.mu.Unlock()
		p.frames.Store(frame + 1)
	}
}

// lossySubscriber is a WHEP client receiving video into a decoder model
// and sending the decoder's keyframe requests.
type lossySubscriber struct {
	pc        *webrtc.PeerConnection
	location  string
	connected <-chan struct{}
	dec       *decoderModel
}

func newLossySubscriber(t testing.TB, pc *webrtc.PeerConnection) *lossySubscriber {
	t.Helper()
	s := &lossySubscriber{pc: pc, dec: newDecoderModel()}
	s.connected, _ = watchState(pc)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	var ssrc atomic.Uint32
	var reading sync.WaitGroup
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		reading.Add(1)
		defer reading.Done()
		ssrc.Store(uint32(tr.SSRC()))
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			m, err := parsePayload(tr.Codec().MimeType, pkt.Payload)
			s.dec.add(pkt.SequenceNumber, m, err, time.Now())
		}
	})
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				if s.dec.step(now) && ssrc.Load() != 0 {
					pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc.Load()}})
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		pc.Close()
		reading.Wait()
	})
	return s
}

// Timers of the decoder model.
const (
	// stallTimeout is how long a lost frame may hold decoding up, later
	// frames having arrived, before the decoder asks for a keyframe.
	stallTimeout = 300 * time.Millisecond
	// pliInterval is the least time between two of its keyframe requests.
	pliInterval = 500 * time.Millisecond
)

// decoderModel is a video decoder behind a jitter buffer, as in a
// browser. It decodes frames in order, each once all its packets are in;
// it starts at a keyframe and jumps to a newer complete keyframe rather
// than wait for a missing frame; and when a missing frame holds it up for
// stallTimeout while later frames arrive, it asks for a keyframe, again
// every pliInterval until it decodes again. It is safe for concurrent use.
type decoderModel struct {
	mu     sync.Mutex
	frames map[uint32]*frameArrivals
	st     modelState

	started    bool
	next       uint32 // the frame to decode next
	newest     uint32 // the newest frame a packet of which arrived
	stallSince time.Time
	lastPLI    time.Time

	high int64 // highest extended sequence number received
	seen map[int64]bool
}

// modelState is what a decoder counted.
type modelState struct {
	decoded, skipped, plis int
	late, dups             int
	bad                    []error
	decodes                []decodedFrame
	pliTimes               []time.Time
}

// decodedFrame is a frame decoded.
type decodedFrame struct {
	frame uint32
	key   bool
	at    time.Time
}

type frameArrivals struct {
	key   bool
	count uint16
	got   []bool
	n     int
}

func newDecoderModel() *decoderModel {
	return &decoderModel{frames: map[uint32]*frameArrivals{}, seen: map[int64]bool{}}
}

// add takes a packet the subscriber received: its sequence number, and
// what its payload is or why it is not one the publisher sent.
func (d *decoderModel) add(seq uint16, m mediaPacket, bad error, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if bad != nil {
		d.st.bad = append(d.st.bad, bad)
		return
	}
	ext := int64(1)<<16 | int64(seq)
	if d.high != 0 {
		ext = d.high + int64(int16(seq-uint16(d.high)))
	}
	switch {
	case d.seen[ext]:
		d.st.dups++
		return
	case ext < d.high:
		d.st.late++
	default:
		d.high = ext
	}
	d.seen[ext] = true
	f := d.frames[m.Frame]
	if f == nil {
		f = &frameArrivals{key: m.Key, count: m.Count, got: make([]bool, m.Count)}
		d.frames[m.Frame] = f
	}
	if m.Count != f.count || m.Index >= f.count || m.Key != f.key {
		d.st.bad = append(d.st.bad, fmt.Errorf("frame %d packet %d of %d does not match the frame's other packets", m.Frame, m.Index, m.Count))
		return
	}
	if !f.got[m.Index] {
		f.got[m.Index] = true
		f.n++
	}
	d.newest = max(d.newest, m.Frame)
}

// step decodes what can be, and reports whether to send a keyframe
// request now.
func (d *decoderModel) step(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started {
		k, ok := d.completeKeyframe(0)
		if !ok {
			return false
		}
		d.started, d.next = true, k
	}
	for {
		if f := d.frames[d.next]; f != nil && f.n == int(f.count) {
			d.st.decoded++
			d.st.decodes = append(d.st.decodes, decodedFrame{frame: d.next, key: f.key, at: now})
			d.stallSince = time.Time{}
			d.next++
			continue
		}
		if k, ok := d.completeKeyframe(d.next + 1); ok {
			d.st.skipped += int(k - d.next)
			d.next = k
			continue
		}
		break
	}
	if d.newest <= d.next {
		return false // nothing later waits behind the next frame
	}
	if d.stallSince.IsZero() {
		d.stallSince = now
	}
	if now.Sub(d.stallSince) < stallTimeout || now.Sub(d.lastPLI) < pliInterval {
		return false
	}
	d.lastPLI = now
	d.st.plis++
	d.st.pliTimes = append(d.st.pliTimes, now)
	return true
}

// completeKeyframe returns the oldest complete keyframe from frame from.
func (d *decoderModel) completeKeyframe(from uint32) (uint32, bool) {
	best, ok := uint32(0), false
	for n, f := range d.frames {
		if n >= from && f.key && f.n == int(f.count) && (!ok || n < best) {
			best, ok = n, true
		}
	}
	return best, ok
}

// arrived returns how many packets of a frame arrived.
func (d *decoderModel) arrived(frame uint32) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f := d.frames[frame]; f != nil {
		return f.n
	}
	return 0
}

// keyframeDecoded returns when the first keyframe from frame on was
// decoded, and which frame it was.
func (d *decoderModel) keyframeDecoded(frame uint32) (time.Time, uint32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dc := range d.st.decodes {
		if dc.key && dc.frame >= frame {
			return dc.at, dc.frame, true
		}
	}
	return time.Time{}, 0, false
}

// snapshot returns a copy of what the decoder counted.
func (d *decoderModel) snapshot() modelState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	st.bad = append([]error(nil), st.bad...)
	st.decodes = append([]decodedFrame(nil), st.decodes...)
	st.pliTimes = append([]time.Time(nil), st.pliTimes...)
	return st
}

// decodedBetween returns how many of the frames in [first, end) were
// decoded.
func (st modelState) decodedBetween(first, end uint32) int {
	n := 0
	for _, dc := range st.decodes {
		if dc.frame >= first && dc.frame < end {
			n++
		}
	}
	return n
}

// firstPLIAfter returns when the first keyframe request after t was sent.
func (st modelState) firstPLIAfter(t time.Time) time.Time {
	for _, at := range st.pliTimes {
		if at.After(t) {
			return at
		}
	}
	return time.Time{}
}
