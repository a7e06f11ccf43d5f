package forward

import (
	"sync"

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
}

// put keeps p, a packet of upstream generation gen, in place of the packet
// with the same sequence number modulo the cache size.
func (c *packetCache) put(gen uint64, p *rtp.Packet) {
	i := p.SequenceNumber % cacheSize
	c.mu.Lock()
	c.pkts[i], c.gens[i] = p, gen
	c.mu.Unlock()
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
	c.mu.Unlock()
}
