package forward

import (
	"sync"
	"time"

	"github.com/pion/rtp"
)

// cacheSize is how many of a source's latest packets are kept for
// retransmission: about 3.5 s of a 2.5 Mbps video stream. A power of two.
const cacheSize = 1024

// packetCache holds the latest packets of a source's upstream so that
// subscribers' NACKs are answered from one buffer for all of them, instead
// of a copy of every packet kept for each subscriber.
type packetCache struct {
	mu   sync.Mutex
	pkts [cacheSize]*rtp.Packet
	gens [cacheSize]uint64

	// The newest packet, and the start of the newest keyframe, of the
	// stream being cached: together the group of pictures a new
	// subscriber can start from at once.
	head     bool
	headGen  uint64
	headSSRC uint32
	headSeq  uint16
	key      bool // keySeq starts a keyframe of the head's stream
	keySeq   uint16
	keyTS    uint32    // its RTP timestamp: the keyframe's other packets share it
	keyAt    time.Time // when it arrived
}

// put keeps p, a packet of upstream generation gen that arrived at now,
// in place of the packet with the same sequence number modulo the cache
// size; keyframe tells whether it starts a keyframe.
func (c *packetCache) put(gen uint64, p *rtp.Packet, keyframe bool, now time.Time) {
	i := p.SequenceNumber % cacheSize
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts[i], c.gens[i] = p, gen
	if !c.head || c.headGen != gen || c.headSSRC != p.SSRC {
		// A new stream: nothing before it counts.
		c.head, c.headGen, c.headSSRC, c.headSeq, c.key = true, gen, p.SSRC, p.SequenceNumber, false
	} else if int16(p.SequenceNumber-c.headSeq) > 0 {
		c.headSeq = p.SequenceNumber
	}
	switch {
	case !keyframe:
	case c.key && p.Timestamp == c.keyTS:
		// Another start of the same keyframe (an H.264 SPS, then its
		// IDR): the frame starts at the first of them.
		if int16(p.SequenceNumber-c.keySeq) < 0 {
			c.keySeq = p.SequenceNumber
		}
	case !c.key || int16(p.SequenceNumber-c.keySeq) > 0:
		// Retransmissions and reordering bring older packets: a keyframe
		// only counts if it is newer than the one known.
		c.key, c.keySeq, c.keyTS, c.keyAt = true, p.SequenceNumber, p.Timestamp, now
	}
}

// gop returns the packets of upstream generation gen from the start of the
// newest keyframe to the newest packet, in order, if every one of them is
// kept, there are at most limit and the keyframe arrived within maxAge of
// now; else nil.
func (c *packetCache) gop(gen uint64, limit int, now time.Time, maxAge time.Duration) []*rtp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.head || !c.key || c.headGen != gen || now.Sub(c.keyAt) > maxAge {
		return nil
	}
	n := int(c.headSeq-c.keySeq) + 1
	if n > limit || n > cacheSize {
		return nil
	}
	out := make([]*rtp.Packet, 0, n)
	for k := range n {
		seq := c.keySeq + uint16(k)
		i := seq % cacheSize
		p := c.pkts[i]
		if p == nil || c.gens[i] != gen || p.SSRC != c.headSSRC || p.SequenceNumber != seq {
			return nil // a hole: the subscriber could not decode past it
		}
		out = append(out, p)
	}
	return out
}

// get returns the packet of upstream generation gen with the given SSRC
// and sequence number, or nil if it is no longer kept.
func (c *packetCache) get(gen uint64, ssrc uint32, seq uint16) *rtp.Packet {
	i := seq % cacheSize
	c.mu.Lock()
	p, g := c.pkts[i], c.gens[i]
	c.mu.Unlock()
	if p == nil || g != gen || p.SSRC != ssrc || p.SequenceNumber != seq {
		return nil
	}
	return p
}

func (c *packetCache) clear() {
	c.mu.Lock()
	clear(c.pkts[:])
	c.head, c.key = false, false
	c.mu.Unlock()
}
