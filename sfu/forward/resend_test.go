package forward

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// gatedRecorder is a subscriber's write stream that records what it is
// given and blocks while its gate is closed.
type gatedRecorder struct {
	gate    *gatedWriter
	rec     recorder
	writing atomic.Int64 // writes begun
}

func (g *gatedRecorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	g.writing.Add(1)
	g.gate.WriteRTP(h, payload)
	return g.rec.WriteRTP(h, payload)
}

func (g *gatedRecorder) Write(b []byte) (int, error) { return len(b), nil }

type gatedRecorderContext struct {
	fakeContext
	w    *gatedRecorder
	feed *rtcpFeed
}

func (c gatedRecorderContext) WriteStream() webrtc.TrackLocalWriter { return c.w }
func (c gatedRecorderContext) RTCPReader() interceptor.RTCPReader   { return c.feed }

// bindGatedRecorder adds a started subscriber of src whose writes are
// recorded and can be held, and whose RTCP the test sends.
func bindGatedRecorder(t *testing.T, src *Source) (*DownTrack, *gatedRecorder, *rtcpFeed) {
	t.Helper()
	w := &gatedRecorder{gate: newGatedWriter()}
	feed := newRTCPFeed()
	t.Cleanup(feed.close)
	d, err := src.NewDownTrack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bind(gatedRecorderContext{fakeContext{codecs: []webrtc.RTPCodecParameters{testVP8}}, w, feed}); err != nil {
		t.Fatal(err)
	}
	d.Start()
	d.barrier()
	return d, w, feed
}

// fillQueue holds the subscriber's writes and sends packets until its
// queue has dropped want of them in a row, then lets the writes go. It
// returns the next sequence number to send.
func fillQueue(t *testing.T, up *Upstream, d *DownTrack, w *gatedRecorder, seq uint16, want uint64) uint16 {
	t.Helper()
	d.barrier()
	w.gate.block()
	defer w.gate.release()
	// The worker takes the first packet and is held writing it: the
	// queue then fills and drops, with nothing taken meanwhile.
	writing := w.writing.Load()
	if err := up.WriteRTP(vp8Packet(7, seq, false)); err != nil {
		t.Fatal(err)
	}
	seq++
	waitFor(t, func() bool { return w.writing.Load() > writing })
	start := d.Dropped()
	for d.Dropped()-start < want {
		if err := up.WriteRTP(vp8Packet(7, seq, false)); err != nil {
			t.Fatal(err)
		}
		seq++
		if seq > 60000 {
			t.Fatal("the queue never filled")
		}
	}
	return seq
}

// TestQueueDropResyncs: a subscriber whose queue dropped packets starts
// again at the next keyframe, following on from the last packet it got.
func TestQueueDropResyncs(t *testing.T) {
	c := NewCounters(nil)
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithCounters(c))
	defer src.Close()
	up := src.Attach(testVP8, func() {})
	d, w, _ := bindGatedRecorder(t, src)
	seq := uint16(1000)
	for ; seq < 1010; seq++ {
		if err := up.WriteRTP(vp8Packet(7, seq, seq == 1000)); err != nil {
			t.Fatal(err)
		}
	}
	seq = fillQueue(t, up, d, w, seq, 40)
	d.barrier()
	for i := range 10 {
		if err := up.WriteRTP(vp8Packet(7, seq, i == 5)); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	d.barrier()
	if s := c.Snapshot(); s.DroppedWaitingKeyframe != 5 {
		t.Errorf("%d packets dropped waiting for a keyframe, want the 5 before it", s.DroppedWaitingKeyframe)
	}
	got := seqsOf(w.rec.headers())
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("sequence numbers %v: want no gap after the restart", got)
		}
	}
}

// bigPacket is vp8Packet with a payload of n bytes.
func bigPacket(seq uint16, n int) *rtp.Packet {
	p := vp8Packet(7, seq, seq == 1)
	p.Payload = append(p.Payload, make([]byte, n-len(p.Payload))...)
	return p
}

// TestResendLimits: a packet asked for again within a round trip of being
// sent again is not sent twice, and a subscriber gets at most as many
// bytes again as it was forwarded.
func TestResendLimits(t *testing.T) {
	c := NewCounters(nil)
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithCounters(c))
	defer src.Close()
	up := src.Attach(testVP8, func() {})
	d, w, feed := bindGatedRecorder(t, src)
	const size = 1000
	for seq := uint16(1); seq <= 100; seq++ {
		if err := up.WriteRTP(bigPacket(seq, size)); err != nil {
			t.Fatal(err)
		}
	}
	d.barrier()
	sent := seqsOf(w.rec.headers())
	if len(sent) != 100 {
		t.Fatalf("forwarded %d packets, want 100", len(sent))
	}
	nack := func(seqs []uint16) int {
		before, nacks := len(w.rec.headers()), c.Snapshot().NACKs
		feed.send(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)})
		waitFor(t, func() bool { return c.Snapshot().NACKs > nacks }) // queued
		d.barrier()
		return len(w.rec.headers()) - before
	}
	// Twice at once: sent again once.
	if n := nack(sent[:10]); n != 10 {
		t.Fatalf("first NACK of 10: %d sent again; %+v", n, c.Snapshot())
	}
	if n := nack(sent[:10]); n != 0 {
		t.Errorf("the same NACK at once: %d sent again, want 0", n)
	}
	if s := c.Snapshot(); s.ResendRepeated != 10 {
		t.Errorf("%d counted as repeated, want 10", s.ResendRepeated)
	}
	// A round trip later (unknown: resendHoldUnknown), sent again.
	time.Sleep(resendHoldUnknown)
	if n := nack(sent[:10]); n != 10 {
		t.Errorf("the same NACK a round trip later: %d sent again, want 10", n)
	}
	// 100 packets were forwarded and 20 sent again: 80 more may be. The
	// first 10 were just sent again.
	if n := nack(sent); n != 80 {
		t.Errorf("a NACK of all: %d sent again, want the 80 the budget has left", n)
	}
	if s := c.Snapshot(); s.ResendOverBudget != 10 || s.ResendRepeated != 20 {
		t.Errorf("%d counted over budget, %d repeated: want 10 and 20", s.ResendOverBudget, s.ResendRepeated)
	}
	// Forwarding earns it again.
	for seq := uint16(101); seq <= 105; seq++ {
		if err := up.WriteRTP(bigPacket(seq, size)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(resendHoldUnknown)
	if n := nack(sent[50:60]); n != 5 {
		t.Errorf("after 5 more forwarded, a NACK of 10: %d sent again, want 5", n)
	}
}

func TestResendHold(t *testing.T) {
	for _, c := range []struct{ rtt, want time.Duration }{
		{0, resendHoldUnknown},
		{time.Millisecond, resendHoldMin},
		{80 * time.Millisecond, 100 * time.Millisecond},
		{2 * time.Second, resendHoldMax},
	} {
		if got := resendHold(c.rtt); got != c.want {
			t.Errorf("hold for a round trip of %v: %v, want %v", c.rtt, got, c.want)
		}
	}
}
