package forward

import (
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Counters totals what the sources sharing it received, forwarded and
// dropped, since they were created: what a server's metrics report. The
// writers add to it once per turn with a subscriber, not once per packet,
// so that counting costs the forwarding path next to nothing. It is safe
// for concurrent use; read it with Snapshot.
type Counters struct {
	packetsIn, bytesIn   atomic.Uint64 // from publishers
	packetsOut, bytesOut atomic.Uint64 // to subscribers, retransmissions included
	retransmitted        atomic.Uint64 // packets sent again for a subscriber's NACK
	resendRepeated       atomic.Uint64 // asked for again within a round trip of the last resend: not sent
	resendOverBudget     atomic.Uint64 // asked for again past the subscriber's budget: not sent
	nacks                atomic.Uint64 // NACK messages from subscribers
	keyframeRequestsIn   atomic.Uint64 // PLI and FIR from subscribers
	keyframeRequestsOut  atomic.Uint64 // PLIs sent to publishers
	droppedQueueFull     atomic.Uint64 // subscriber fell behind: its queue was full
	droppedNoKeyframe    atomic.Uint64 // waiting for a keyframe to start from
	padding              atomic.Uint64 // packets sent to probe a subscriber's bandwidth
	layerSwitches        atomic.Uint64 // subscribers moved to another simulcast layer

	reception ReceptionObserver
}

// ReceptionObserver is told what a subscriber's receiver reports say of
// one of its tracks (RFC 3550, section 6.4.2): for the metrics'
// distributions of loss, jitter and round-trip time. It must not block.
type ReceptionObserver interface {
	ObserveReception(kind webrtc.RTPCodecType, r Reception)
}

// Reception is one report block of a subscriber's receiver report.
type Reception struct {
	FractionLost float64       // of the packets expected since the last report, 0 to 1
	Jitter       time.Duration // interarrival jitter
	RTT          time.Duration // round-trip time; 0 when the report cannot tell
}

// NewCounters returns counters that tell o (which may be nil) of the
// receiver reports subscribers send.
func NewCounters(o ReceptionObserver) *Counters { return &Counters{reception: o} }

// CounterSnapshot is the value of Counters at one moment.
type CounterSnapshot struct {
	PacketsIn, BytesIn     uint64
	PacketsOut, BytesOut   uint64
	Retransmitted          uint64
	ResendRepeated         uint64
	ResendOverBudget       uint64
	NACKs                  uint64
	KeyframeRequestsIn     uint64
	KeyframeRequestsOut    uint64
	DroppedQueueFull       uint64
	DroppedWaitingKeyframe uint64
	Padding                uint64
	LayerSwitches          uint64
}

// Snapshot returns the counters' current values.
func (c *Counters) Snapshot() CounterSnapshot {
	return CounterSnapshot{
		PacketsIn:              c.packetsIn.Load(),
		BytesIn:                c.bytesIn.Load(),
		PacketsOut:             c.packetsOut.Load(),
		BytesOut:               c.bytesOut.Load(),
		Retransmitted:          c.retransmitted.Load(),
		ResendRepeated:         c.resendRepeated.Load(),
		ResendOverBudget:       c.resendOverBudget.Load(),
		NACKs:                  c.nacks.Load(),
		KeyframeRequestsIn:     c.keyframeRequestsIn.Load(),
		KeyframeRequestsOut:    c.keyframeRequestsOut.Load(),
		DroppedQueueFull:       c.droppedQueueFull.Load(),
		DroppedWaitingKeyframe: c.droppedNoKeyframe.Load(),
		Padding:                c.padding.Load(),
		LayerSwitches:          c.layerSwitches.Load(),
	}
}

// WithCounters makes the source count into c, which sources may share.
func WithCounters(c *Counters) Option {
	return func(s *Source) { s.counters = c }
}

// turnCounts is what a worker counted during one turn with a subscriber,
// added to the Counters at its end.
type turnCounts struct {
	packets, bytes, retransmitted, noKeyframe, padding, switches uint64
	resendRepeated, resendOverBudget                             uint64
}

func (c *Counters) add(t *turnCounts) {
	if t.packets > 0 {
		c.packetsOut.Add(t.packets)
		c.bytesOut.Add(t.bytes)
	}
	if t.retransmitted > 0 {
		c.retransmitted.Add(t.retransmitted)
	}
	if t.resendRepeated > 0 {
		c.resendRepeated.Add(t.resendRepeated)
	}
	if t.resendOverBudget > 0 {
		c.resendOverBudget.Add(t.resendOverBudget)
	}
	if t.noKeyframe > 0 {
		c.droppedNoKeyframe.Add(t.noKeyframe)
	}
	if t.padding > 0 {
		c.padding.Add(t.padding)
	}
	if t.switches > 0 {
		c.layerSwitches.Add(t.switches)
	}
	*t = turnCounts{}
}

// ntpMiddle returns the middle 32 bits of the NTP time of t (RFC 3550,
// section 4): the unit of a receiver report's LSR and DLSR, 1/65536 s.
func ntpMiddle(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return uint32(secs<<16) | uint32(frac>>16)
}

// roundTrip computes the round-trip time a report block tells (RFC 3550,
// section 6.4.1) at its arrival: 0 when it has no sender report to refer
// to or the result makes no sense (clocks are not compared, but a block
// delayed oddly can still give a negative value).
func roundTrip(arrival time.Time, lsr, dlsr uint32) time.Duration {
	if lsr == 0 {
		return 0
	}
	rtt := ntpMiddle(arrival) - lsr - dlsr
	if int32(rtt) <= 0 || rtt > 60<<16 {
		return 0
	}
	return time.Duration(uint64(rtt) * uint64(time.Second) >> 16)
}
