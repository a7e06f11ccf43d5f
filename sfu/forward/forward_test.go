package forward

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestKeyframeStart(t *testing.T) {
	tests := []struct {
		name    string
		mime    string
		payload []byte
		want    bool
	}{
		{"H.264 SPS", webrtc.MimeTypeH264, []byte{0x67, 0x42, 0xe0, 0x1f}, true},
		{"H.264 IDR", webrtc.MimeTypeH264, []byte{0x65, 0x88}, true},
		{"H.264 non-IDR slice", webrtc.MimeTypeH264, []byte{0x41, 0x9a}, false},
		{"H.264 STAP-A with SPS and PPS", webrtc.MimeTypeH264, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, true},
		{"H.264 STAP-A of SEI and slice", webrtc.MimeTypeH264, []byte{0x78, 0, 2, 0x06, 0x05, 0, 2, 0x41, 0x9a}, false},
		{"H.264 STAP-A with a bad size", webrtc.MimeTypeH264, []byte{0x78, 0, 9, 0x67}, false},
		{"H.264 FU-A start of IDR", webrtc.MimeTypeH264, []byte{0x7c, 0x85, 0x88}, true},
		{"H.264 FU-A middle of IDR", webrtc.MimeTypeH264, []byte{0x7c, 0x05, 0x88}, false},
		{"H.264 FU-A start of non-IDR", webrtc.MimeTypeH264, []byte{0x7c, 0x81, 0x9a}, false},
		{"H.264 empty", webrtc.MimeTypeH264, nil, false},
		{"VP8 key frame", webrtc.MimeTypeVP8, []byte{0x10, 0x00, 0x9d}, true},
		{"VP8 inter frame", webrtc.MimeTypeVP8, []byte{0x10, 0x01}, false},
		{"VP8 continuation", webrtc.MimeTypeVP8, []byte{0x00, 0x00}, false},
		{"VP8 second partition", webrtc.MimeTypeVP8, []byte{0x11, 0x00}, false},
		{"VP8 key frame with 15-bit picture id", webrtc.MimeTypeVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"VP8 inter frame with 7-bit picture id", webrtc.MimeTypeVP8, []byte{0x90, 0x80, 0x12, 0x01}, false},
		{"VP8 key frame with every extension", webrtc.MimeTypeVP8, []byte{0x90, 0xf0, 0x12, 0x05, 0x40, 0x00}, true},
		{"VP8 truncated descriptor", webrtc.MimeTypeVP8, []byte{0x90, 0x80}, false},
		{"vp8 lower case", "video/vp8", []byte{0x10, 0x00}, true},
		{"Opus", webrtc.MimeTypeOpus, []byte{0xfc}, true},
		{"VP9 is not forwarded", webrtc.MimeTypeVP9, []byte{0x8c}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KeyframeStart(tt.mime, tt.payload); got != tt.want {
				t.Errorf("KeyframeStart(%s, %x) got %v, want %v", tt.mime, tt.payload, got, tt.want)
			}
		})
	}
}

func FuzzKeyframeStart(f *testing.F) {
	f.Add([]byte{0x78, 0, 2, 0x67, 0x42})
	f.Add([]byte{0x90, 0xf0, 0x12, 0x05, 0x40, 0x00})
	f.Add([]byte{0x7c, 0x85})
	f.Fuzz(func(t *testing.T, p []byte) {
		KeyframeStart(webrtc.MimeTypeH264, p)
		KeyframeStart(webrtc.MimeTypeVP8, p)
	})
}

func TestMunger(t *testing.T) {
	at := time.Unix(1000, 0)
	var m munger
	pkt := func(ssrc uint32, seq uint16, ts uint32) *rtp.Header {
		return &rtp.Header{SSRC: ssrc, SequenceNumber: seq, Timestamp: ts}
	}
	type step struct {
		h       *rtp.Header
		gen     uint64
		wantSeq uint16
		wantTS  uint32
		wantOK  bool
	}
	steps := []step{
		// The first stream maps to itself, across the sequence wrap.
		{pkt(1, 65534, 1000), 1, 65534, 1000, true},
		{pkt(1, 65535, 4000), 1, 65535, 4000, true},
		{pkt(1, 1, 10000), 1, 1, 10000, true},
		// Late and retransmitted packets keep their place.
		{pkt(1, 0, 7000), 1, 0, 7000, true},
		{pkt(1, 1, 10000), 1, 1, 10000, true},
		// Older than the start of the mapping: dropped.
		{pkt(1, 65533, 0), 1, 0, 0, false},
		// A new upstream follows on: next sequence number, timestamp
		// advanced by the time elapsed (one second at 90 kHz).
		{pkt(2, 500, 77), 2, 2, 10000 + 90000, true},
		{pkt(2, 501, 3077), 2, 3, 10000 + 90000 + 3000, true},
		{pkt(2, 499, 74), 2, 0, 0, false},
	}
	for i, s := range steps {
		now := at
		if s.gen == 2 {
			now = at.Add(time.Second)
		}
		if !m.follows(s.gen, s.h.SSRC) {
			m.switchTo(s.gen, s.h, now, 90000)
		}
		seq, ts, ok := m.rewrite(s.h, now)
		if ok != s.wantOK || (ok && (seq != s.wantSeq || ts != s.wantTS)) {
			t.Errorf("step %d: got %d %d %v, want %d %d %v", i, seq, ts, ok, s.wantSeq, s.wantTS, s.wantOK)
		}
	}
}

func TestPayloadType(t *testing.T) {
	codecs := []webrtc.RTPCodecParameters{
		{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}},
		{PayloadType: 125, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"}},
		{PayloadType: 127, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"}},
		{PayloadType: 108, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}},
	}
	tests := []struct {
		src    webrtc.RTPCodecCapability
		want   uint8
		wantOK bool
	}{
		{webrtc.RTPCodecCapability{MimeType: "video/vp8"}, 96, true},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, SDPFmtpLine: "packetization-mode=1;profile-level-id=42e01f"}, 108, true},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, SDPFmtpLine: "packetization-mode=1;profile-level-id=42001f"}, 125, true},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, SDPFmtpLine: "profile-level-id=42e01f"}, 127, true},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1}, 0, false},
	}
	for _, tt := range tests {
		got, ok := payloadType(codecs, webrtc.RTPCodecParameters{RTPCodecCapability: tt.src})
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("payloadType(%s %s) got %d %v, want %d %v", tt.src.MimeType, tt.src.SDPFmtpLine, got, ok, tt.want, tt.wantOK)
		}
	}
}

// fakeContext binds a DownTrack as a peer connection would.
type fakeContext struct {
	codecs []webrtc.RTPCodecParameters
	w      *recorder
	rtx    webrtc.SSRC // the retransmission stream's, if negotiated
}

func (c fakeContext) CodecParameters() []webrtc.RTPCodecParameters           { return c.codecs }
func (c fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c fakeContext) SSRC() webrtc.SSRC                                      { return 4242 }
func (c fakeContext) SSRCRetransmission() webrtc.SSRC                        { return c.rtx }
func (c fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c fakeContext) WriteStream() webrtc.TrackLocalWriter                   { return c.w }
func (c fakeContext) ID() string                                             { return "binding" }
func (c fakeContext) RTCPReader() interceptor.RTCPReader                     { return closedReader{} }

type closedReader struct{}

func (closedReader) Read([]byte, interceptor.Attributes) (int, interceptor.Attributes, error) {
	return 0, nil, ErrClosed
}

// recorder is a subscriber's write stream.
type recorder struct {
	mu       sync.Mutex
	got      []rtp.Header
	payloads [][]byte
	down     bool // drops writes, as before SRTP is ready
}

func (r *recorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return 0, nil
	}
	r.got = append(r.got, *h)
	r.payloads = append(r.payloads, slices.Clone(payload))
	return h.MarshalSize() + len(payload), nil
}

func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }

func (r *recorder) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// TestStartFromCachedKeyframe: a subscriber starting after a keyframe gets
// it, and what followed, at once, without asking the publisher for another;
// with no keyframe close enough, it asks.
func TestStartFromCachedKeyframe(t *testing.T) {
	vp8 := webrtc.RTPCodecParameters{PayloadType: 100, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond))
	var requests atomic.Int32
	up := src.Attach(vp8, func() { requests.Add(1) })
	write := func(seq uint16, key bool) {
		payload := []byte{0x10, 0x01}
		if key {
			payload[1] = 0x00
		}
		h := rtp.Header{SSRC: 7, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}
		if err := up.WriteRTP(&rtp.Packet{Header: h, Payload: payload}); err != nil {
			t.Fatalf("WriteRTP: %v", err)
		}
	}
	var downs []*DownTrack
	subscribe := func() *recorder {
		d, err := src.NewDownTrack()
		if err != nil {
			t.Fatal(err)
		}
		w := &recorder{}
		if _, err := d.Bind(fakeContext{codecs: []webrtc.RTPCodecParameters{vp8}, w: w}); err != nil {
			t.Fatal(err)
		}
		d.Start()
		d.barrier()
		downs = append(downs, d)
		return w
	}
	settle := func() {
		for _, d := range downs {
			d.barrier()
		}
	}

	write(10, false)
	write(11, true) // the newest keyframe
	write(13, false)
	write(12, false) // reordered
	write(9, true)   // an older keyframe, retransmitted: not the start
	first := subscribe()
	if got := seqsOf(first.got); !slices.Equal(got, []uint16{11, 12, 13}) {
		t.Errorf("first subscriber got %v at once, want the keyframe 11 and what follows", got)
	}
	write(14, false)
	second := subscribe()
	write(15, false)
	settle()
	if got := seqsOf(second.got); !slices.Equal(got, []uint16{11, 12, 13, 14, 15}) {
		t.Errorf("second subscriber got %v, want 11-15", got)
	}
	if got := seqsOf(first.got); !slices.Equal(got, []uint16{11, 12, 13, 14, 15}) {
		t.Errorf("first subscriber got %v, want 11-15", got)
	}
	time.Sleep(10 * time.Millisecond)
	if n := requests.Load(); n != 0 {
		t.Errorf("%d keyframe requests, want none", n)
	}

	// A hole in the group: start from the next keyframe, asked for.
	write(17, false)
	third := subscribe()
	if len(third.got) != 0 {
		t.Errorf("third subscriber got %v across a hole, want nothing yet", seqsOf(third.got))
	}
	waitFor(t, func() bool { return requests.Load() > 0 })
	write(18, true)
	settle()
	if got := seqsOf(third.got); !slices.Equal(got, []uint16{18}) {
		t.Errorf("third subscriber got %v, want the next keyframe", got)
	}

	// A group longer than maxReplay is not sent.
	for seq := uint16(19); seq < 19+maxReplay; seq++ {
		write(seq, false)
	}
	if fourth := subscribe(); len(fourth.got) != 0 {
		t.Errorf("fourth subscriber got %d packets of a long group, want none", len(fourth.got))
	}
}

func seqsOf(hs []rtp.Header) []uint16 {
	var out []uint16
	for _, h := range hs {
		out = append(out, h.SequenceNumber)
	}
	return out
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSourceForwardsFromKeyframe(t *testing.T) {
	vp8 := webrtc.RTPCodecParameters{PayloadType: 100, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond))
	var requests sync.WaitGroup
	requests.Add(1)
	var once sync.Once
	up := src.Attach(vp8, func() { once.Do(requests.Done) })

	d, err := src.NewDownTrack()
	if err != nil {
		t.Fatal(err)
	}
	w := &recorder{}
	codec, err := d.Bind(fakeContext{codecs: []webrtc.RTPCodecParameters{
		{PayloadType: 120, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}}, w: w})
	if err != nil || codec.PayloadType != 120 {
		t.Fatalf("Bind got %v, %v; want the subscriber's VP8", codec, err)
	}
	write := func(seq uint16, key bool) {
		payload := []byte{0x10, 0x01}
		if key {
			payload[1] = 0x00
		}
		h := rtp.Header{SSRC: 7, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}
		if err := h.SetExtension(3, []byte{1}); err != nil {
			t.Fatal(err)
		}
		if err := up.WriteRTP(&rtp.Packet{Header: h, Payload: payload}); err != nil {
			t.Fatalf("WriteRTP: %v", err)
		}
		d.barrier()
	}

	write(1, false) // before Start: not forwarded, and no keyframe to start from
	d.Start()
	requests.Wait() // Start asks for a keyframe
	write(2, false) // waits for a keyframe
	w.setDown(true)
	write(3, true) // lost: SRTP not ready
	w.setDown(false)
	write(4, false)
	write(5, true)
	write(6, false)

	got := w.headers()
	if len(got) != 2 {
		t.Fatalf("forwarded %d packets, want 2: %+v", len(got), got)
	}
	for i, h := range got {
		if h.SSRC != 4242 || h.PayloadType != 120 || h.SequenceNumber != uint16(5+i) || h.Extension || len(h.Extensions) != 0 {
			t.Errorf("packet %d got %+v, want SSRC 4242, PT 120, sequence %d, no extensions", i, h, 5+i)
		}
	}

	up2 := src.Attach(vp8, nil)
	if err := up.WriteRTP(&rtp.Packet{}); err != ErrDetached {
		t.Errorf("old upstream WriteRTP got %v, want ErrDetached", err)
	}
	up2.Detach()
	d.Close()
	if src.Subscribers() != 0 {
		t.Errorf("Subscribers got %d after Close, want 0", src.Subscribers())
	}
	src.Close()
	if _, err := src.NewDownTrack(); err != ErrClosed {
		t.Errorf("NewDownTrack on a closed source got %v, want ErrClosed", err)
	}
}

// TestCacheGroupOfPictures: the group starts at the first packet of the
// newest keyframe (several packets of one frame may each start it, as an
// H.264 SPS and its IDR do), and only while that keyframe is recent.
func TestCacheGroupOfPictures(t *testing.T) {
	var c packetCache
	now := time.Now()
	put := func(seq uint16, ts uint32, key bool) {
		c.put(1, &rtp.Packet{Header: rtp.Header{SSRC: 7, SequenceNumber: seq, Timestamp: ts}}, key, now)
	}
	put(65533, 100, false)
	put(65535, 200, true) // the IDR of frame 200
	put(65534, 200, true) // its SPS, come late: the frame starts here
	put(0, 200, false)
	put(1, 300, false) // across the wrap of sequence numbers
	got := c.gop(1, 100, now, time.Second)
	var seqs []uint16
	for _, p := range got {
		seqs = append(seqs, p.SequenceNumber)
	}
	if !slices.Equal(seqs, []uint16{65534, 65535, 0, 1}) {
		t.Errorf("group %v, want 65534 65535 0 1", seqs)
	}
	if g := c.gop(2, 100, now, time.Second); g != nil {
		t.Errorf("group of another upstream generation: %d packets", len(g))
	}
	if g := c.gop(1, 3, now, time.Second); g != nil {
		t.Errorf("group over the limit: %d packets", len(g))
	}
	if g := c.gop(1, 100, now.Add(2*time.Second), time.Second); g != nil {
		t.Errorf("group of an old keyframe: %d packets", len(g))
	}
	c.put(1, &rtp.Packet{Header: rtp.Header{SSRC: 8, SequenceNumber: 2, Timestamp: 400}}, false, now)
	if g := c.gop(1, 100, now, time.Second); g != nil {
		t.Errorf("group after the SSRC changed: %d packets", len(g))
	}
}
