package bwe

import (
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/rtcp"
)

// fakeController stands for GCC: the test says what it sees.
type fakeController struct {
	usage  string
	loss   float64
	target int
}

func (c *fakeController) read() map[string]any {
	return map[string]any{"usage": c.usage, "averageLoss": c.loss,
		"delayTargetBitrate": c.target, "lossTargetBitrate": c.target}
}

// path drives an estimator as the server does, every step, sending what
// it asks for on top of media at mediaRate.
type path struct {
	t        *testing.T
	e        *Estimator
	c        *fakeController
	now      time.Time
	media    float64 // bits per second of media sent
	capacity float64 // bits per second the path delivers
	padded   int
	steps    []int // bytes sent in each of the last steps
}

func newPath(t *testing.T, mediaRate float64) *path {
	e := New(logging.NewDefaultLoggerFactory())
	c := &fakeController{usage: "normal", target: 300_000}
	read := c.read
	e.stats.Store(&read)
	e.feedback.Store(true)
	p := &path{t: t, e: e, c: c, now: time.Unix(1000, 0), media: mediaRate, capacity: 10_000_000}
	e.Update(p.now, 0)
	return p
}

// run advances d in steps of 25 ms and returns the last estimate.
func (p *path) run(d time.Duration, want int64) int64 {
	const step = 25 * time.Millisecond
	var est int64
	for end := p.now.Add(d); p.now.Before(end); {
		p.now = p.now.Add(step)
		media := int(p.media * step.Seconds() / 8)
		p.e.sentBytes.Add(uint64(media))
		// What the subscriber received over the last 500 ms: what was
		// sent, up to what the path carries.
		sum := 0
		for _, b := range p.steps {
			sum += b
		}
		p.e.recv.mu.Lock()
		p.e.recv.rate = min(float64(sum)*8/(float64(len(p.steps))*step.Seconds()+1e-9), p.capacity)
		p.e.recv.mu.Unlock()
		var pad int
		est, pad = p.e.Update(p.now, want)
		p.e.sentBytes.Add(uint64(pad))
		p.padded += pad
		if p.e.Probing() {
			// What was sent in the probe arrives at most at capacity.
			p.e.recv.mu.Lock()
			p.e.recv.inArrived = true
			capBytes := int(p.capacity * step.Seconds() / 8)
			p.e.recv.inBytes += min(media+pad, capBytes)
			p.e.recv.inLast += step.Microseconds()
			// What the path cannot carry waits in its queue: the delay
			// grows by the time it takes to carry the excess.
			p.e.recv.startSeen, p.e.recv.endSeen = true, true
			if excess := media + pad - capBytes; excess > 0 {
				p.e.recv.endDelay += int64(float64(excess) * 8 / p.capacity * 1e6)
			}
			p.e.recv.mu.Unlock()
		}
		p.steps = append(p.steps, media+pad)
		if len(p.steps) > 20 {
			p.steps = p.steps[1:]
		}
	}
	return est
}

func TestProbeRaisesEstimate(t *testing.T) {
	p := newPath(t, 200_000)
	// The subscriber gets 200 kb/s and could use a layer of 1.5 Mb/s,
	// more than the initial estimate: a probe pads up to a little over
	// 1.5 Mb/s for probeLength, and passes.
	est := p.run(3*time.Second, 1_500_000)
	if est < 1_500_000 {
		t.Fatalf("estimate %d after a clean probe, want at least the 1500000 wanted", est)
	}
	wantPad := (probeOver*1_500_000 - 200_000) * probeLength.Seconds() / 8
	if got := float64(p.padded); got < 0.8*wantPad || got > 1.3*wantPad {
		t.Errorf("padded %d bytes, want about %.0f: the probe's rate for its length", p.padded, wantPad)
	}
}

func TestProbeFailsOnOveruse(t *testing.T) {
	p := newPath(t, 200_000)
	// The estimate starts at initialEstimate: bring it down first.
	p.c.usage = "overuse"
	p.run(200*time.Millisecond, 0)
	p.c.usage = "normal"
	low := p.run(3*time.Second, 0)
	if low >= initialEstimate {
		t.Fatalf("estimate %d after overuse, want it lowered", low)
	}
	// A probe that meets congestion fails, and the estimate does not
	// rise; the next comes only after the backoff.
	p.run(minBackoff, 0)
	p.run(100*time.Millisecond, 900_000)
	if !p.e.Probing() {
		t.Fatal("no probe for a wanted rate above the estimate")
	}
	p.c.usage = "overuse"
	est := p.run(100*time.Millisecond, 900_000)
	p.c.usage = "normal"
	if p.e.Probing() || est > low {
		t.Fatalf("after overuse during a probe: probing %v, estimate %d; want the probe ended and the estimate at most %d", p.e.Probing(), est, low)
	}
	padded := p.padded
	p.run(minBackoff-300*time.Millisecond, 900_000)
	if p.e.Probing() || p.padded != padded {
		t.Errorf("a probe started within the backoff after a failed one")
	}
}

// TestProbeFailsUnderCapacity: a probe the path cannot deliver fails, even
// if the congestion controller has not seen it yet.
func TestProbeFailsUnderCapacity(t *testing.T) {
	p := newPath(t, 200_000)
	p.capacity = 1_200_000
	est := p.run(3*time.Second, 1_500_000)
	if est >= 1_500_000 {
		t.Errorf("estimate %d after probing a path of 1.2 Mb/s for 1.5: want the probe failed", est)
	}
}

func TestLossLowersEstimate(t *testing.T) {
	p := newPath(t, 800_000)
	p.run(3*time.Second, 0)
	p.capacity = 400_000
	p.c.loss = 0.2
	est := p.run(500*time.Millisecond, 0)
	if est < 300_000 || est > 400_000 {
		t.Errorf("estimate %d with 20%% loss on a path delivering 400 kb/s: want a little under 400000", est)
	}
}

func TestNoFeedbackNoLimit(t *testing.T) {
	e := New(logging.NewDefaultLoggerFactory())
	now := time.Unix(1000, 0)
	e.Update(now, 0)
	if est, pad := e.Update(now.Add(time.Second), 5_000_000); est != initialEstimate || pad != 0 || e.HasFeedback() {
		t.Errorf("without feedback: estimate %d, padding %d, feedback %v; want the initial estimate and no probe", est, pad, e.HasFeedback())
	}
}

func TestHasTWCC(t *testing.T) {
	rr, _ := (&rtcp.ReceiverReport{SSRC: 1}).Marshal()
	// RTPFB (205) with FMT 15, 5 words long, the feedback itself zeros.
	tcc := append([]byte{0x8f, 205, 0, 4}, make([]byte, 16)...)
	if hasTWCC(rr) {
		t.Error("a receiver report taken for TWCC feedback")
	}
	if !hasTWCC(append(append([]byte(nil), rr...), tcc...)) {
		t.Error("TWCC feedback after a receiver report not seen")
	}
	if hasTWCC([]byte{0x80, 205, 0xff, 0xff}) {
		t.Error("a truncated packet taken for feedback")
	}
}

// TestDelivered: the rate received is measured from TWCC feedback: the
// sizes of the packets it reports received, over their arrival times.
func TestDelivered(t *testing.T) {
	var d delivered
	// 100 packets of 1000 bytes, one every 10 ms: 800 kb/s, of which the
	// feedback reports every other one lost.
	for seq := range uint16(100) {
		d.sent(seq, 1000, int64(seq)*int64(time.Millisecond))
	}
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: 0, PacketStatusCount: 100, ReferenceTime: 1}
	for i := 0; i < 100; i += 2 {
		fb.PacketChunks = append(fb.PacketChunks,
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit,
				SymbolList: []uint16{rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketNotReceived}})
		fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 20_000})
	}
	d.measureSending(0, int64(50*time.Millisecond))
	d.feedback(fb)
	if got := d.bitrate(); got < 380_000 || got > 420_000 {
		t.Errorf("delivered %.0f b/s, want about 400000 (half of 800 kb/s)", got)
	}
	// Of those sent in the measured window (the first 50), 25 arrived,
	// 20 ms apart.
	if got := d.sendingRate(); got < 380_000 || got > 420_000 {
		t.Errorf("the window's packets arrived at %.0f b/s, want about 400000", got)
	}
	// Sent 1 ms apart, they arrived 20 ms apart: a queue grew.
	if growth, ok := d.delayGrowth(); !ok || growth < 300*time.Millisecond {
		t.Errorf("delay growth %v %v over the window, want about 0.34 s", growth, ok)
	}
}
