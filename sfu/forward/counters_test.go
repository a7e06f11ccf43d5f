package forward

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

type receptions struct {
	mu  sync.Mutex
	got []Reception
}

func (r *receptions) ObserveReception(kind webrtc.RTPCodecType, rec Reception) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
}

func (r *receptions) all() []Reception {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Reception(nil), r.got...)
}

// TestCounters: what the source receives, forwards, retransmits and drops,
// and the keyframe requests and reports of subscribers, are counted.
func TestCounters(t *testing.T) {
	seen := &receptions{}
	c := NewCounters(seen)
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithCounters(c), WithKeyframeInterval(time.Millisecond))
	up := src.Attach(testVP8, func() {})
	feed := newRTCPFeed()
	defer feed.close()
	_, w := bindDown(t, src, feed)

	// Two packets before a keyframe are not forwarded: the subscriber
	// waits for one.
	var inBytes uint64
	for seq := uint16(1); seq <= 12; seq++ {
		p := vp8Packet(7, seq, seq == 3)
		inBytes += uint64(p.MarshalSize())
		if err := up.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(w.headers()) >= 10 })
	feed.send(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{w.headers()[2].SequenceNumber})})
	feed.send(t, &rtcp.PictureLossIndication{MediaSSRC: 4242})
	// A report about this track, 40 ms after a sender report it refers to
	// and that waited 10 ms at the subscriber: a round trip of 30 ms.
	lsr := ntpMiddle(time.Now().Add(-40 * time.Millisecond))
	feed.send(t, &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{
		{SSRC: 4242, FractionLost: 64, Jitter: 900, LastSenderReport: lsr, Delay: 655}, // 655/65536 s: 10 ms
		{SSRC: 99, FractionLost: 255}, // another track's
	}})
	waitFor(t, func() bool { return c.Snapshot().Retransmitted == 1 && len(seen.all()) == 1 })

	got := c.Snapshot()
	want := CounterSnapshot{
		PacketsIn: 12, BytesIn: inBytes,
		PacketsOut: 11, Retransmitted: 1, NACKs: 1, KeyframeRequestsIn: 1,
		DroppedWaitingKeyframe: 2,
	}
	got.BytesOut, got.KeyframeRequestsOut = 0, 0
	if got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if out := c.Snapshot(); out.BytesOut == 0 || out.KeyframeRequestsOut == 0 {
		t.Errorf("bytes out %d, keyframe requests sent %d: want both counted", out.BytesOut, out.KeyframeRequestsOut)
	}
	rec := seen.all()[0]
	if rec.FractionLost != 0.25 || rec.Jitter != 10*time.Millisecond {
		t.Errorf("reception %+v: want a quarter lost and 10 ms of jitter (900 at 90 kHz)", rec)
	}
	if rec.RTT < 25*time.Millisecond || rec.RTT > 2*time.Second {
		t.Errorf("round trip %v: want about 30 ms", rec.RTT)
	}
}

// TestCountersQueueFull: a subscriber that does not keep up has what does
// not fit in its queue counted as dropped.
func TestCountersQueueFull(t *testing.T) {
	c := NewCounters(nil)
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithCounters(c))
	defer src.Close()
	up := src.Attach(testVP8, func() {})
	d, stuck := bindGated(t, src)
	d.Start()
	d.barrier()
	stuck.block()
	defer stuck.release()
	for seq := uint16(1); seq <= uint16(3*DefaultVideoQueue); seq++ {
		if err := up.WriteRTP(vp8Packet(7, seq, seq == 1)); err != nil {
			t.Fatal(err)
		}
	}
	// The worker took what was queued when it started and is stuck
	// writing it; the queue then filled up.
	n := c.Snapshot().DroppedQueueFull
	if n == 0 || n != d.Dropped() {
		t.Errorf("dropped %d for a full queue, the subscriber's count %d: want the same, more than 0", n, d.Dropped())
	}
}

func TestRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 250_000_000)
	lsr := ntpMiddle(now.Add(-100 * time.Millisecond))
	if rtt := roundTrip(now, lsr, 65536/20); rtt < 49*time.Millisecond || rtt > 51*time.Millisecond {
		t.Errorf("round trip %v, want 50 ms", rtt)
	}
	for _, c := range []struct{ lsr, dlsr uint32 }{{0, 0}, {lsr, 65536}, {ntpMiddle(now.Add(-time.Hour)), 0}} {
		if rtt := roundTrip(now, c.lsr, c.dlsr); rtt != 0 {
			t.Errorf("roundTrip(lsr %d, dlsr %d) = %v, want 0 (unknown)", c.lsr, c.dlsr, rtt)
		}
	}
}
