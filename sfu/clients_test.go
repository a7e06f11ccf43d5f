package sfu_test

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Codecs of the test clients.
var (
	videoFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	opus          = webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}
	vp8 = webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}}
	h264 = webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}
	vp9 = webrtc.RTPCodecParameters{PayloadType: 98, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, RTCPFeedback: videoFeedback}}
)

// publisher is a WHIP client sending synthetic audio (20 ms packets) and
// video (30 frames a second, a keyframe on request or every keyEvery
// frames).
type publisher struct {
	t         testing.TB
	pc        *webrtc.PeerConnection
	conn      *cuttableConn
	location  string
	connected <-chan struct{}
	gone      <-chan struct{}
	video     webrtc.RTPCodecParameters
	run       uint8
	keyEvery  uint32

	plis      atomic.Int32
	firstPLI  atomic.Int64 // unix nanoseconds
	keyNow    atomic.Bool
	sentVideo atomic.Int32
	sentMu    sync.Mutex
	sentAt    map[uint32]time.Time // when each video frame was sent
	stop      chan struct{}
	done      chan struct{}
	stopOnce  sync.Once

	// sender, when set, sends instead of the synthetic frames of send.
	sender func(p *publisher, video, audio *webrtc.TrackLocalStaticRTP)
}

// withSender makes the publisher send with f.
func withSender(f func(p *publisher, video, audio *webrtc.TrackLocalStaticRTP)) func(*publisher) {
	return func(p *publisher) { p.sender = f }
}

// publish starts a WHIP session with the token: video of the given codec
// (none if its MIME type is empty), and Opus audio if withAudio.
func (h *harness) publish(tok string, video webrtc.RTPCodecParameters, withAudio bool, opts ...func(*publisher)) (*publisher, error) {
	h.t.Helper()
	var codecs []webrtc.RTPCodecParameters
	if withAudio {
		codecs = append(codecs, opus)
	}
	if video.MimeType != "" {
		codecs = append(codecs, video)
	}
	pc, conn := newClientPC(h.t, codecs...)
	p := &publisher{t: h.t, pc: pc, conn: conn, video: video, keyEvery: 1 << 30,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	p.connected, p.gone = watchState(pc)

	var videoTrack, audioTrack *webrtc.TrackLocalStaticRTP
	add := func(c webrtc.RTPCodecParameters, id string) *webrtc.TrackLocalStaticRTP {
		track, err := webrtc.NewTrackLocalStaticRTP(c.RTPCodecCapability, id, "publisher")
		if err != nil {
			h.t.Fatal(err)
		}
		tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			h.t.Fatal(err)
		}
		go func() {
			for {
				pkts, _, err := tr.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.plis.Add(1)
						p.firstPLI.CompareAndSwap(0, time.Now().UnixNano())
						p.keyNow.Store(true)
					}
				}
			}
		}()
		return track
	}
	if video.MimeType != "" {
		videoTrack = add(video, "video")
	}
	if withAudio {
		audioTrack = add(opus, "audio")
	}
	answer, loc, err := h.post("/whip", tok, offer(h.t, pc))
	if err != nil {
		close(p.done)
		return nil, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		h.t.Fatalf("set WHIP answer: %v", err)
	}
	p.location = loc
	if p.sender != nil {
		go p.sender(p, videoTrack, audioTrack)
	} else {
		go p.send(videoTrack, audioTrack)
	}
	return p, nil
}

// mustPublish is publish that fails the test on error.
func (h *harness) mustPublish(tok string, video webrtc.RTPCodecParameters, withAudio bool, opts ...func(*publisher)) *publisher {
	h.t.Helper()
	p, err := h.publish(tok, video, withAudio, opts...)
	if err != nil {
		h.t.Fatalf("publish: %v", err)
	}
	wait(h.t, p.connected, "the publisher to connect")
	// The client may see the connection up a moment before the server
	// does: wait for the server to record the publication.
	stage, id := tokenClaims(h.t, tok)
	eventually(h.t, "PUBLISH_STARTED of "+id, func() error {
		session := h.activeSession(stage)
		if session == "" {
			return errors.New("no active session")
		}
		if got := h.history(stage, session, id); len(got) == 0 || got[len(got)-1] != "PUBLISH_STARTED" {
			return fmt.Errorf("events %q", got)
		}
		return nil
	})
	return p
}

// tokenClaims reads the stage and participant of a participant token.
func tokenClaims(t testing.TB, tok string) (stage, participant string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var c struct {
		JTI      string `json:"jti"`
		Resource string `json:"resource"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("token claims: %v", err)
	}
	return c.Resource, c.JTI
}

func (p *publisher) send(video, audio *webrtc.TrackLocalStaticRTP) {
	defer close(p.done)
	select {
	case <-p.connected:
	case <-p.stop:
		return
	case <-time.After(testTimeout):
		return
	}
	vseq, vts := uint16(rand.Uint32()), rand.Uint32()
	aseq, ats := uint16(rand.Uint32()), rand.Uint32()
	vtick := time.NewTicker(33 * time.Millisecond)
	defer vtick.Stop()
	atick := time.NewTicker(20 * time.Millisecond)
	defer atick.Stop()
	var frame, afr uint32
	for {
		select {
		case <-p.stop:
			return
		case <-atick.C:
			if audio == nil {
				continue
			}
			m := mediaPacket{Codec: webrtc.MimeTypeOpus, Run: p.run, Frame: afr, Count: 1, Key: true, SrcSeq: aseq, SrcTS: ats}
			audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: ats, Marker: afr == 0},
				Payload: m.payload()})
			aseq++
			ats += 960
			afr++
		case <-vtick.C:
			if video == nil {
				continue
			}
			key := frame == 0 || frame%p.keyEvery == 0 || p.keyNow.Swap(false)
			count := uint16(2)
			if key {
				count = 3
			}
			for i := range count {
				m := mediaPacket{Codec: p.video.MimeType, Run: p.run, Frame: frame, Index: i, Count: count, Key: key,
					SrcSeq: vseq, SrcTS: vts}
				video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq, Timestamp: vts, Marker: i == count-1},
					Payload: m.payload()})
				vseq++
			}
			p.sentVideo.Add(1)
			p.sentMu.Lock()
			if p.sentAt == nil {
				p.sentAt = map[uint32]time.Time{}
			}
			p.sentAt[frame] = time.Now()
			p.sentMu.Unlock()
			vts += 3000
			frame++
		}
	}
}

// frameSent returns when the publisher sent a video frame.
func (p *publisher) frameSent(frame uint32) (time.Time, bool) {
	p.sentMu.Lock()
	defer p.sentMu.Unlock()
	at, ok := p.sentAt[frame]
	return at, ok
}

// run marks what a publisher sends as sent by its n-th connection.
func run(n uint8) func(*publisher) { return func(p *publisher) { p.run = n } }

// keyEvery sets how often a publisher sends a keyframe unasked.
func keyEvery(frames uint32) func(*publisher) { return func(p *publisher) { p.keyEvery = frames } }

// halt stops sending and closes the connection, without DELETE.
func (p *publisher) halt() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
	p.pc.Close()
}

// subscriber is a WHEP client that checks every packet it receives.
type subscriber struct {
	t         testing.TB
	pc        *webrtc.PeerConnection
	conn      *cuttableConn
	location  string
	connected <-chan struct{}
	gone      <-chan struct{}

	mu  sync.Mutex
	got map[webrtc.RTPCodecType][]received
	bad []error
}

type received struct {
	seq    uint16
	ts     uint32
	ssrc   uint32
	marker bool
	at     time.Time
	m      mediaPacket
}

// subscribe starts a WHEP session with the token to remote's tracks.
func (h *harness) subscribe(tok, remote string) (*subscriber, error) {
	h.t.Helper()
	pc, conn := newClientPC(h.t, h.subscriberCodecs...)
	s := &subscriber{t: h.t, pc: pc, conn: conn, got: map[webrtc.RTPCodecType][]received{}}
	s.connected, s.gone = watchState(pc)
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			h.t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			m, err := parsePayload(tr.Codec().MimeType, pkt.Payload)
			s.mu.Lock()
			if err != nil {
				s.bad = append(s.bad, err)
			} else {
				s.got[tr.Kind()] = append(s.got[tr.Kind()], received{seq: pkt.SequenceNumber, ts: pkt.Timestamp,
					ssrc: pkt.SSRC, marker: pkt.Marker, at: time.Now(), m: m})
			}
			s.mu.Unlock()
		}
	})
	answer, loc, err := h.post("/whep/"+remote, tok, offer(h.t, pc))
	if err != nil {
		return nil, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		h.t.Fatalf("set WHEP answer: %v", err)
	}
	s.location = loc
	return s, nil
}

func (h *harness) mustSubscribe(tok, remote string) *subscriber {
	h.t.Helper()
	s, err := h.subscribe(tok, remote)
	if err != nil {
		h.t.Fatalf("subscribe to %s: %v", remote, err)
	}
	wait(h.t, s.connected, "the subscriber to connect")
	stage, id := tokenClaims(h.t, tok)
	eventually(h.t, "SUBSCRIBE_STARTED of "+id, func() error {
		session := h.activeSession(stage)
		if session == "" {
			return errors.New("no active session")
		}
		if got := h.history(stage, session, id); !slices.Contains(got, "SUBSCRIBE_STARTED remote="+remote) {
			return fmt.Errorf("events %q", got)
		}
		return nil
	})
	return s
}

// packets returns what was received of kind so far.
func (s *subscriber) packets(kind webrtc.RTPCodecType) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got[kind]...)
}

// waitFor waits until n packets of kind have arrived.
func (s *subscriber) waitFor(kind webrtc.RTPCodecType, n int) {
	s.t.Helper()
	eventually(s.t, fmt.Sprintf("receive %d %s packets", n, kind), func() error {
		if got := len(s.packets(kind)); got < n {
			return fmt.Errorf("got %d", got)
		}
		return nil
	})
}

// checkTail is how many of the newest packets a check may find still
// missing: a loss the subscriber has asked to be repaired may be that
// recent on a busy machine.
const checkTail = 30

// check verifies what the subscriber received of kind, as a decoder would
// see it once reordered by sequence number: undamaged payloads, one SSRC,
// video that starts at a keyframe, and a mapping of the publisher's
// sequence numbers and timestamps that is a constant offset within each
// of the publisher's connections. Across a reconnection, and where the
// server dropped packets for a subscriber that fell behind, the stream
// follows on without a gap and video restarts at a keyframe. Every video
// sequence number from the first to the last checkTail must have arrived
// (retransmissions included): call it until it holds. Audio is not
// retransmitted, so a packet lost on the way (a client too busy to read
// its socket loses some on a loaded machine) may stay lost; the packets
// on either side of the gap must still map with the same offset.
func (s *subscriber) check(kind webrtc.RTPCodecType) error {
	s.mu.Lock()
	bad := s.bad
	s.mu.Unlock()
	if len(bad) > 0 {
		return fmt.Errorf("%d damaged payloads, the first: %w", len(bad), bad[0])
	}
	arrived := s.packets(kind)
	if len(arrived) == 0 {
		return errors.New("nothing received")
	}
	// Extend the sequence numbers in arrival order, then sort.
	type pkt struct {
		ext int64
		received
	}
	var pkts []pkt
	seen := map[int64]bool{}
	high := int64(arrived[0].seq)
	for _, r := range arrived {
		ext := high + int64(int16(r.seq-uint16(high)))
		high = max(high, ext)
		if !seen[ext] {
			seen[ext] = true
			pkts = append(pkts, pkt{ext, r})
		}
	}
	slices.SortFunc(pkts, func(a, b pkt) int { return cmp.Compare(a.ext, b.ext) })
	video := kind == webrtc.RTPCodecTypeVideo
	if p := pkts[0]; video && !(p.m.Key && p.m.Index == 0) {
		return fmt.Errorf("first video packet is frame %d packet %d, not the start of a keyframe", p.m.Frame, p.m.Index)
	}
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1], pkts[i]
		step := b.ext - a.ext
		switch {
		case b.ssrc != a.ssrc:
			return fmt.Errorf("packet %d: SSRC changed from %d to %d", b.seq, a.ssrc, b.ssrc)
		case step > 1 && b.ext <= high-checkTail && video:
			return fmt.Errorf("sequence numbers %d to %d never arrived", a.seq+1, b.seq-1)
		case b.m.Run == a.m.Run && int64(b.m.SrcSeq-a.m.SrcSeq) == step:
			// The same stream, the same offset.
			if b.ts-a.ts != b.m.SrcTS-a.m.SrcTS {
				return fmt.Errorf("packet %d: timestamp step %d, publisher's %d", b.seq, b.ts-a.ts, b.m.SrcTS-a.m.SrcTS)
			}
		case step > 1:
			// A gap still being repaired, across which the mapping is
			// checked later.
		case video && !(b.m.Key && b.m.Index == 0):
			return fmt.Errorf("packet %d: the stream goes on at frame %d packet %d (publisher's %d after %d), not at a keyframe",
				b.seq, b.m.Frame, b.m.Index, b.m.SrcSeq, a.m.SrcSeq)
		case int32(b.ts-a.ts) <= 0:
			return fmt.Errorf("packet %d: timestamp went from %d to %d where the stream restarts", b.seq, a.ts, b.ts)
		}
	}
	return nil
}
