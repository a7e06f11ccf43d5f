package forward

import "time"

// A subscriber's NACKs must not make it cost the server more than a few
// of its peers: a subscriber that reads too slowly, or whose link drops
// most packets, asks again and again for hundreds of packets that it then
// loses again, and answering each ask in full multiplied its stream tenfold
// and more while everyone else waited for the worker. Two limits, as
// browsers' own senders apply to themselves:
//   - a packet is sent again at most once per round trip: a NACK repeated
//     before the answer to the last one can have arrived is not answered
//     twice;
//   - what is sent again is paid from a budget earned by what is
//     forwarded: over time at most as many bytes again as the stream
//     itself, with a burst of resendBurst for the repair of one outage.
const (
	resendBurst = 512 << 10 // bytes: 1.6 s of a 2.5 Mbps stream

	// Bounds of the wait before the same packet is sent again: the
	// subscriber's round trip when its reports tell it, else
	// resendHoldUnknown.
	resendHoldMin     = 20 * time.Millisecond
	resendHoldMax     = 500 * time.Millisecond
	resendHoldUnknown = 100 * time.Millisecond
)

// resendLimiter applies those limits to one subscriber's stream. It is
// owned by the worker handling the track.
type resendLimiter struct {
	tokens int64 // bytes that may be sent again now
	// When each of the latest packets was last sent again, by sequence
	// number in the subscriber's stream; allocated at the first NACK.
	seqs []uint16
	at   []int64 // unix nanoseconds; 0: never
}

// rtpHeaderSize is the size of an RTP header without CSRCs or extensions:
// what a retransmission costs besides its payload.
const rtpHeaderSize = 12

// Why a packet a subscriber asked for again was not sent.
type resendRefusal uint8

const (
	resendAllowed    resendRefusal = iota
	resendRepeated                 // it was sent again less than a round trip ago
	resendOverBudget               // the subscriber's budget is spent
)

// earn credits n bytes forwarded.
func (r *resendLimiter) earn(n int) {
	r.tokens = min(r.tokens+int64(n), resendBurst)
}

// allow says whether the packet of subscriber sequence number seq and
// size n may be sent again at now, with hold the least time between two
// sends of it, and if so counts it as sent.
func (r *resendLimiter) allow(seq uint16, n int, now time.Time, hold time.Duration) resendRefusal {
	if r.at == nil {
		r.seqs, r.at = make([]uint16, cacheSize), make([]int64, cacheSize)
	}
	i := seq % cacheSize
	if r.seqs[i] == seq && r.at[i] != 0 && now.UnixNano()-r.at[i] < int64(hold) {
		return resendRepeated
	}
	if r.tokens < int64(n) {
		return resendOverBudget
	}
	r.tokens -= int64(n)
	r.seqs[i], r.at[i] = seq, now.UnixNano()
	return resendAllowed
}

// resendHold is how long to wait before sending the same packet again to
// a subscriber whose latest round trip is rtt (0: unknown).
func resendHold(rtt time.Duration) time.Duration {
	if rtt <= 0 {
		return resendHoldUnknown
	}
	return min(max(rtt+rtt/4, resendHoldMin), resendHoldMax)
}
