package bwe

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// delivered measures the rate at which the subscriber receives, from its
// TWCC feedback: the size of each packet sent, by transport-wide
// sequence number, summed over the packets the feedback reports
// received, against their arrival times (the subscriber's clock). It is
// what a path carries: what is sent beyond it waits in a queue or is
// lost, so a probe passes only if this reaches the probe's rate.
//
// Its mutex is a leaf, held for a few array accesses: no I/O.
type delivered struct {
	mu     sync.Mutex
	sizes  [sentWindow]uint16 // bytes of the packet with that sequence number modulo sentWindow
	seqs   [sentWindow]uint16 // its sequence number, to tell it from one a lap before
	sentAt [sentWindow]int64  // when it was sent, unix nanoseconds

	// A window of sending measured on its own, a probe: the packets
	// sent in it that arrived, and the span of their arrivals (µs).
	from, to        int64
	inBytes         int
	inFirst, inLast int64
	inArrived       bool
	// The least one-way delay (arrival less sending, in µs, with the two
	// clocks' offset) of the packets sent at the window's start and at
	// its end: a path that cannot carry what is sent queues it, and the
	// delay grows from one to the other.
	startDelay, endDelay int64
	startSeen, endSeen   bool

	// Arrivals reported, oldest first: the subscriber's time in
	// microseconds and the bytes received with it.
	arrivals []arrival
	rate     float64 // bits per second over rateSpan of arrivals; 0: not known

	// The feedback last taken: each sender's RTCP reader may be handed
	// the same compound packet.
	lastCount uint8
	lastBase  uint16
	any       bool
}

type arrival struct {
	at    int64 // µs
	bytes int
}

// sentWindow is how many sent packets are remembered: feedback comes
// within a few hundred milliseconds, some thousand packets at most.
const sentWindow = 8192

// rateSpan is the span of arrival time the rate is measured over.
const rateSpan = 500_000 // µs

// sent records a packet of size bytes with transport sequence number seq,
// sent at (unix nanoseconds).
func (d *delivered) sent(seq uint16, size int, at int64) {
	i := seq % sentWindow
	d.mu.Lock()
	d.sizes[i], d.seqs[i], d.sentAt[i] = uint16(min(size, 65535)), seq, at
	d.mu.Unlock()
}

// measureSending starts measuring on its own what is sent from now until
// to (unix nanoseconds).
func (d *delivered) measureSending(from, to int64) {
	d.mu.Lock()
	d.from, d.to = from, to
	d.inBytes, d.inFirst, d.inLast, d.inArrived = 0, 0, 0, false
	d.startSeen, d.endSeen = false, false
	d.mu.Unlock()
}

// sendingRate returns the rate at which what was sent in the window set
// by measureSending arrived: its bytes over the span of their arrivals.
func (d *delivered) sendingRate() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	span := d.inLast - d.inFirst
	if !d.inArrived || span <= 0 {
		return 0
	}
	return float64(d.inBytes) * 8 / (float64(span) / 1e6)
}

// feedback takes one TWCC feedback message.
func (d *delivered) feedback(fb *rtcp.TransportLayerCC) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.any && fb.FbPktCount == d.lastCount && fb.BaseSequenceNumber == d.lastBase {
		return
	}
	d.any, d.lastCount, d.lastBase = true, fb.FbPktCount, fb.BaseSequenceNumber
	at := int64(fb.ReferenceTime) * 64_000
	seq := fb.BaseSequenceNumber
	deltas := fb.RecvDeltas
	received := func(symbol uint16) {
		if symbol == rtcp.TypeTCCPacketReceivedSmallDelta || symbol == rtcp.TypeTCCPacketReceivedLargeDelta {
			if len(deltas) == 0 {
				return
			}
			at += deltas[0].Delta
			deltas = deltas[1:]
			if i := seq % sentWindow; d.seqs[i] == seq && d.sizes[i] > 0 {
				d.arrivals = append(d.arrivals, arrival{at: at, bytes: int(d.sizes[i])})
				if t := d.sentAt[i]; t >= d.from && t < d.to {
					d.window(at, int(d.sizes[i]), t)
				}
			}
		}
		seq++
	}
	left := int(fb.PacketStatusCount)
	for _, chunk := range fb.PacketChunks {
		switch c := chunk.(type) {
		case *rtcp.RunLengthChunk:
			for n := 0; n < int(c.RunLength) && left > 0; n++ {
				received(c.PacketStatusSymbol)
				left--
			}
		case *rtcp.StatusVectorChunk:
			for _, symbol := range c.SymbolList {
				if left == 0 {
					break
				}
				received(symbol)
				left--
			}
		}
	}
	d.measure()
}

// measure updates the rate from the arrivals of the last rateSpan and
// forgets older ones. The caller holds mu.
func (d *delivered) measure() {
	n := len(d.arrivals)
	if n < 2 {
		return
	}
	newest := d.arrivals[n-1].at
	first := 0
	for first < n-1 && d.arrivals[first].at < newest-rateSpan {
		first++
	}
	d.arrivals = append(d.arrivals[:0], d.arrivals[first:]...)
	span := newest - d.arrivals[0].at
	if span < rateSpan/2 {
		return // too little time to tell yet
	}
	bytes := 0
	for _, a := range d.arrivals[1:] {
		bytes += a.bytes
	}
	d.rate = float64(bytes) * 8 / (float64(span) / 1e6)
}

// bitrate returns the rate last measured, 0 if none.
func (d *delivered) bitrate() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rate
}

// window counts an arrival of a packet sent in the measured window at
// sentAt (unix nanoseconds): the first arrival only starts the span, its
// bytes are not counted.
func (d *delivered) window(at int64, bytes int, sentAt int64) {
	delay := at - sentAt/1000
	if edge := (d.to - d.from) / 4; sentAt < d.from+edge {
		if !d.startSeen || delay < d.startDelay {
			d.startDelay, d.startSeen = delay, true
		}
	} else if sentAt >= d.to-edge {
		if !d.endSeen || delay < d.endDelay {
			d.endDelay, d.endSeen = delay, true
		}
	}
	if !d.inArrived {
		d.inArrived, d.inFirst, d.inLast = true, at, at
		return
	}
	d.inBytes += bytes
	d.inFirst, d.inLast = min(d.inFirst, at), max(d.inLast, at)
}

// delayGrowth returns how much longer the packets sent at the end of the
// measured window took to arrive than those sent at its start, and
// whether both were seen.
func (d *delivered) delayGrowth() (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Duration(d.endDelay-d.startDelay) * time.Microsecond, d.startSeen && d.endSeen
}
