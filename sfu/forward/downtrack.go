package forward

import (
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// DownTrack is one subscriber's copy of a Source: the webrtc.TrackLocal
// added to the subscriber's peer connection. It rewrites every packet into
// the subscriber's stream and passes the subscriber's keyframe requests
// (PLI, FIR) up to the publisher. Everything it writes to the subscriber
// is queued, and written by one worker at a time (see the package
// comment).
type DownTrack struct {
	src     *Source
	q       *queue
	bound   atomic.Pointer[binding]
	started atomic.Bool
	closed  atomic.Bool

	// Layer selection: the slot of the layer the subscriber gets (written
	// by the worker), the one it should get (by the selector), and what
	// the selector chooses from: the size the subscriber shows the video
	// at and the bitrate its connection can take.
	cur    atomic.Int32
	want   atomic.Int32
	maxW   atomic.Uint32
	maxH   atomic.Uint32
	budget atomic.Int64           // bits per second; 0: not limited
	ideal  atomic.Int32           // the slot it would get with bandwidth to spare
	prefer atomic.Pointer[string] // the rid asked for; nil or "": none
	// initial is the InitialLayer the first picture comes from.
	initial atomic.Int32

	keyframeAt atomic.Int64 // unix nanoseconds the last keyframe was sent to it
	rtt        atomic.Int64 // the subscriber's latest round trip, nanoseconds; 0: unknown

	// Owned by the worker handling the track.
	curL      *Layer // the layer being forwarded
	spare     []item
	ptBinding *binding // the binding pt was chosen for
	live      bool     // Start was handled
	ptGen     uint64   // the upstream generation pt was chosen for
	pt        uint8
	ptOK      bool
	m         munger
	vp8       vp8Munger
	replayEnd int64  // the last packet of the replayed group, 0 if none
	newestGen uint64 // the newest upstream generation forwarded
	hdr       rtp.Header
	counted   turnCounts
	rtxSeq    uint16 // the next sequence number of the retransmission stream
	resend    resendLimiter
}

// binding is what the subscriber's peer connection negotiated for the
// track: set by Bind, read by the writer.
type binding struct {
	id      string
	codecs  []webrtc.RTPCodecParameters // media codecs of the track's kind
	ssrc    uint32
	writer  webrtc.TrackLocalWriter
	levelID uint8 // the subscriber's id of the audio level extension; 0: not negotiated

	// Retransmissions (RFC 4588), where the subscriber negotiated them:
	// their SSRC, and the payload type of each media payload type's.
	rtxSSRC uint32
	rtxPT   map[uint8]uint8
}

var _ webrtc.TrackLocal = (*DownTrack)(nil)

func newDownTrack(s *Source) *DownTrack {
	d := &DownTrack{src: s, q: newQueue(s.queueLen, &s.counters.droppedQueueFull)}
	d.cur.Store(-1)
	return d
}

// ID implements webrtc.TrackLocal: the track id the subscriber sees.
func (d *DownTrack) ID() string { return d.src.trackID }

// RID implements webrtc.TrackLocal: a subscriber gets one stream, whatever
// layer it comes from.
func (d *DownTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the stream id the subscriber sees.
func (d *DownTrack) StreamID() string { return d.src.streamID }

// Kind implements webrtc.TrackLocal.
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.src.kind }

// Bind implements webrtc.TrackLocal. It keeps every media codec negotiated
// with the subscriber, so that a publisher that comes back with another
// codec of those can still be forwarded, and starts reading the
// subscriber's RTCP for this track.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var codecs []webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if forwardable(c.MimeType) && strings.HasPrefix(strings.ToLower(c.MimeType), d.src.kind.String()+"/") {
			codecs = append(codecs, c)
		}
	}
	if len(codecs) == 0 {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	chosen := codecs[0]
	if cur, ok := d.src.Codec(); ok {
		if pt, ok := payloadType(codecs, cur); ok {
			for _, c := range codecs {
				if uint8(c.PayloadType) == pt {
					chosen = c
				}
			}
		}
	}
	b := &binding{id: ctx.ID(), codecs: codecs, ssrc: uint32(ctx.SSRC()), writer: ctx.WriteStream()}
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == sdp.AudioLevelURI {
			b.levelID = uint8(e.ID)
		}
	}
	if rtx := uint32(ctx.SSRCRetransmission()); rtx != 0 {
		for _, c := range ctx.CodecParameters() {
			apt, ok := strings.CutPrefix(c.SDPFmtpLine, "apt=")
			if !strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) || !ok {
				continue
			}
			if pt, err := strconv.ParseUint(apt, 10, 8); err == nil {
				if b.rtxPT == nil {
					b.rtxPT = map[uint8]uint8{}
				}
				b.rtxPT[uint8(pt)] = uint8(c.PayloadType)
				b.rtxSSRC = rtx
			}
		}
	}
	d.bound.Store(b)
	go d.readRTCP(ctx.RTCPReader(), b.ssrc)
	return chosen, nil
}

// Unbind implements webrtc.TrackLocal.
func (d *DownTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	if b := d.bound.Load(); b != nil && b.id == ctx.ID() {
		d.bound.CompareAndSwap(b, nil)
	}
	return nil
}

// keyframeRequestHold is how long after a keyframe was sent to a
// subscriber its keyframe requests are not passed on.
const keyframeRequestHold = 500 * time.Millisecond

// maxReplay and maxReplayAge bound the group of pictures Start sends a
// new subscriber at once: about a second of a 2.5 Mbps stream, from a
// keyframe at most half a second old. A longer or older one is not worth
// the burst; the subscriber waits for a fresh keyframe instead.
const (
	maxReplay    = 300
	maxReplayAge = 500 * time.Millisecond
)

// Start begins forwarding. For video it starts from the newest keyframe
// the source still has, sent at once with the packets since, when there
// is one close enough (subscribers joining together after a keyframe then
// need not wait for the next); else from the next keyframe, which it asks
// the publisher for. Call it once the subscriber's connection is up:
// packets written before are lost.
func (d *DownTrack) Start() {
	// Packets queued from now on come before the start, and are in the
	// source's cache already: the worker skips them until it handles the
	// start, whose replay includes them.
	if sel := d.src.selectorOf(); sel != nil {
		sel.pick(d, time.Now())
	}
	d.started.Store(true)
	d.push(item{kind: itemStart})
}

// push queues it and schedules the track if it was idle.
func (d *DownTrack) push(it item) bool {
	taken, schedule := d.q.push(it)
	if schedule {
		writers.schedule(d)
	}
	return taken
}

// Close detaches d from its source; what is still queued for it is
// dropped.
func (d *DownTrack) Close() {
	d.src.remove(d)
	d.close()
}

// close stops d's queue; a worker writing to it stops at the next item.
func (d *DownTrack) close() {
	d.closed.Store(true)
	d.q.close()
}

// Dropped returns how many packets and retransmission requests of the
// subscriber were dropped because it was too far behind.
func (d *DownTrack) Dropped() uint64 { return d.q.dropCount() }

// barrier waits until the writer has handled everything queued before it,
// or the track is closed.
func (d *DownTrack) barrier() {
	done := make(chan struct{})
	if d.push(item{kind: itemBarrier, done: done}) {
		<-done
	}
}

// readRTCP reads the subscriber's RTCP about this track until the sender
// stops: keyframe requests go to the publisher, NACKs are queued for the
// writer, which answers them from the source's packet cache. Reading is
// also what lets the interceptors (RTCP reports) see it.
func (d *DownTrack) readRTCP(r interceptor.RTCPReader, ssrc uint32) {
	buf := make([]byte, 1500)
	for {
		n, _, err := r.Read(buf, nil)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.src.counters.keyframeRequestsIn.Add(1)
				// A keyframe sent moments ago is on its way, or being
				// repaired by NACKs: another would only add a burst to
				// a path that may be losing packets for want of room.
				if at := d.keyframeAt.Load(); at == 0 || time.Since(time.Unix(0, at)) >= keyframeRequestHold {
					d.requestKeyframe()
				}
			case *rtcp.TransportLayerNack:
				if p.MediaSSRC == ssrc && d.started.Load() {
					d.src.counters.nacks.Add(1)
					d.push(item{kind: itemNACK, nack: p})
				}
			case *rtcp.ReceiverReport:
				d.observeReports(p.Reports, ssrc)
			case *rtcp.SenderReport:
				d.observeReports(p.Reports, ssrc)
			}
		}
	}
}

// drain handles what is queued, in order, and reports whether more came
// meanwhile: the worker's turn with the track.
func (d *DownTrack) drain() bool {
	items, ok := d.q.take(d.spare)
	if !ok {
		return false
	}
	for i := range items {
		it := &items[i]
		if it.kind != itemBarrier && d.closed.Load() {
			continue // closed meanwhile: what was taken is dropped too
		}
		switch it.kind {
		case itemPacket:
			if it.resync {
				// Packets were dropped: start again at a keyframe,
				// following on from the last packet sent.
				d.m.synced, d.replayEnd = false, 0
			}
			if d.live {
				d.forward(it.p, it.l, it.at)
			}
		case itemPad:
			d.pad(it.pad)
		case itemStart:
			d.start()
		case itemNACK:
			d.retransmit(it.nack)
		case itemBarrier:
			d.src.counters.add(&d.counted) // what was done before it is counted too
			close(it.done)
		}
	}
	clear(items)
	d.spare = items
	d.src.counters.add(&d.counted)
	return d.q.finish()
}

// start handles Start: it sends the source's current group of pictures if
// there is one to start from, else asks for a keyframe.
func (d *DownTrack) start() {
	d.live = true
	d.m.synced, d.replayEnd = false, 0
	if d.src.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	if !d.replay() {
		d.requestKeyframe()
	}
}

// requestKeyframe asks the publisher for a keyframe of the layer the
// subscriber gets, or is to get.
func (d *DownTrack) requestKeyframe() {
	u := d.src.up.Load()
	if u == nil {
		return
	}
	if l := u.layer(d.want.Load()); l != nil {
		d.src.requestKeyframe(l)
	} else if l := u.layer(d.cur.Load()); l != nil {
		d.src.requestKeyframe(l)
	}
}

// replay sends the source's current group of pictures and reports whether
// the subscriber's stream has started.
func (d *DownTrack) replay() bool {
	s := d.src
	u := s.up.Load()
	if u == nil || d.bound.Load() == nil {
		return false
	}
	l := u.layer(d.want.Load())
	if l == nil {
		return false
	}
	now := time.Now()
	gop := l.cache.gop(u.gen, maxReplay, now, maxReplayAge)
	if len(gop) == 0 {
		return false
	}
	for _, p := range gop {
		d.forward(p, l, now)
	}
	if !d.m.follows(u.gen, gop[0].SSRC) {
		return false
	}
	d.replayEnd = d.m.highIn
	return true
}

// forward writes one packet of layer l to the subscriber, rewritten into
// its stream.
func (d *DownTrack) forward(p *rtp.Packet, l *Layer, now time.Time) {
	u := l.u
	b := d.bound.Load()
	if b == nil || u.gen < d.newestGen {
		// Packets of an upstream older than one forwarded already were
		// queued before the replay of a newer one's keyframe.
		return
	}
	if l != d.curL {
		// Another layer, or the first: the subscriber switches to it at
		// a keyframe if it is the one it is to get, and the packets of
		// the layer it left, still queued, are dropped.
		if int32(l.id) != d.want.Load() {
			return
		}
		if d.src.kind == videoKind && !KeyframeStart(u.codec.MimeType, p.Payload) {
			d.counted.noKeyframe++
			d.src.requestKeyframe(l)
			return
		}
		if d.curL != nil && d.curL.u == u {
			d.counted.switches++
		}
		d.curL = l
		d.cur.Store(int32(l.id))
		d.m.synced = false
	}
	d.newestGen = u.gen
	if b != d.ptBinding || d.ptGen != u.gen {
		d.pt, d.ptOK = payloadType(b.codecs, u.codec)
		d.ptBinding, d.ptGen = b, u.gen
	}
	if !d.ptOK {
		return // the subscriber did not negotiate this codec
	}
	fresh := false
	if !d.m.follows(u.gen, p.SSRC) {
		if d.src.kind == webrtc.RTPCodecTypeVideo && !KeyframeStart(u.codec.MimeType, p.Payload) {
			d.counted.noKeyframe++
			d.src.requestKeyframe(l)
			return
		}
		d.m.switchTo(u.gen, &p.Header, now, u.codec.ClockRate)
		d.replayEnd = 0
		fresh = true
	} else if d.replayEnd != 0 {
		// Packets queued while the start was pending were replayed
		// with the group of pictures already.
		if ext := d.m.extend(p.SequenceNumber); ext <= d.replayEnd && ext >= d.m.baseIn {
			return
		}
	}
	seq, ts, ok := d.m.rewrite(&p.Header, now)
	if !ok {
		return
	}
	payload := p.Payload
	key := d.src.kind == videoKind && KeyframeStart(u.codec.MimeType, p.Payload)
	if d.isVP8(u) {
		payload = d.vp8.rewrite(payload, key, fresh)
	}
	n, err := d.send(b, p, payload, seq, ts, u.audioLevel(p))
	d.resend.earn(n)
	if n > 0 && key {
		d.keyframeAt.Store(now.UnixNano())
	}
	if n == 0 && err == nil {
		// The connection's SRTP is not ready yet (it starts just after
		// the connected state is reported): nothing reached the
		// subscriber, so start over from the next keyframe.
		d.m = munger{}
		d.replayEnd = 0
		d.src.requestKeyframe(l)
	}
}

// send writes p to the subscriber with its sequence number and timestamp
// in the subscriber's stream, and its audio level, if it has one and the
// subscriber negotiated the extension.
func (d *DownTrack) send(b *binding, p *rtp.Packet, payload []byte, seq uint16, ts uint32, level []byte) (int, error) {
	h := &d.hdr
	*h = p.Header
	h.SSRC = b.ssrc
	h.PayloadType = d.pt
	h.SequenceNumber = seq
	h.Timestamp = ts
	// Header extension ids are negotiated per connection: the publisher's
	// mean nothing to the subscriber.
	h.Extension, h.ExtensionProfile, h.Extensions = false, 0, nil
	if len(level) > 0 && b.levelID != 0 {
		h.SetExtension(b.levelID, level)
	}
	if len(h.CSRC) > 0 {
		h.CSRC = slices.Clone(h.CSRC)
	}
	n, err := b.writer.WriteRTP(h, payload)
	*h = rtp.Header{}
	if n > 0 {
		d.counted.packets++
		d.counted.bytes += uint64(n)
	}
	return n, err
}

// sendRTX sends p again in the retransmission stream (RFC 4588, section
// 4): the stream's own SSRC, payload type and sequence numbers, and the
// packet's sequence number in the subscriber's stream (OSN) before its
// payload.
func (d *DownTrack) sendRTX(b *binding, p *rtp.Packet, media []byte, seq uint16, ts uint32, pt uint8) (int, error) {
	h := rtp.Header{Version: 2, Marker: p.Marker, PayloadType: pt, SequenceNumber: d.rtxSeq, Timestamp: ts, SSRC: b.rtxSSRC}
	d.rtxSeq++
	payload := make([]byte, 2+len(media))
	payload[0], payload[1] = byte(seq>>8), byte(seq)
	copy(payload[2:], media)
	n, err := b.writer.WriteRTP(&h, payload)
	if n > 0 {
		d.counted.packets++
		d.counted.bytes += uint64(n)
	}
	return n, err
}

// retransmit answers a NACK of the subscriber (RFC 4585, section 6.2.1):
// each packet it lost that the source still keeps is sent again, with the
// same sequence number and timestamp as the first time, within the limits
// of resendLimiter.
func (d *DownTrack) retransmit(nack *rtcp.TransportLayerNack) {
	b := d.bound.Load()
	if b == nil || b != d.ptBinding || nack.MediaSSRC != b.ssrc || !d.live || !d.m.synced ||
		!d.ptOK || d.ptGen != d.m.gen || d.curL == nil {
		return
	}
	cache := &d.curL.cache
	now := time.Now()
	hold := resendHold(time.Duration(d.rtt.Load()))
	for _, pair := range nack.Nacks {
		pair.Range(func(seq uint16) bool {
			ext, ok := d.m.sourceSeq(seq)
			if !ok {
				return true
			}
			if p := cache.get(d.m.gen, d.m.ssrc, uint16(ext)); p != nil {
				switch d.resend.allow(seq, rtpHeaderSize+len(p.Payload), now, hold) {
				case resendRepeated:
					d.counted.resendRepeated++
					return true
				case resendOverBudget:
					d.counted.resendOverBudget++
					return true
				}
				var n int
				if rtxPT, ok := b.rtxPT[d.pt]; ok {
					n, _ = d.sendRTX(b, p, d.sentPayload(p), seq, p.Timestamp+d.m.tsOff, rtxPT)
				} else {
					n, _ = d.send(b, p, d.sentPayload(p), seq, p.Timestamp+d.m.tsOff, nil)
				}
				if n > 0 {
					d.counted.retransmitted++
				}
			}
			return true
		})
	}
}

// isVP8 reports whether u's packets are VP8 video, whose picture IDs
// the subscriber's stream rewrites.
func (d *DownTrack) isVP8(u *Upstream) bool {
	return d.src.kind == videoKind && strings.EqualFold(u.codec.MimeType, webrtc.MimeTypeVP8)
}

// sentPayload returns the payload p was sent with, for sending it again.
func (d *DownTrack) sentPayload(p *rtp.Packet) []byte {
	if d.curL != nil && d.isVP8(d.curL.u) {
		return d.vp8.translate(p.Payload)
	}
	return p.Payload
}

// munger maps the sequence numbers and timestamps of the upstream packets
// to the subscriber's stream. Within one upstream stream the mapping is a
// constant offset, so reordered and retransmitted packets keep their
// place; when the upstream changes (the publisher reconnected, or its SSRC
// changed), the new stream is made to follow on from the last packet sent:
// the next sequence number, and a timestamp advanced by the time that
// passed.
type munger struct {
	synced  bool // a mapping for the current upstream exists
	started bool // a packet was ever forwarded
	gen     uint64
	ssrc    uint32

	baseIn  int64 // extended sequence number of the first packet mapped
	highIn  int64 // highest extended sequence number seen since
	outBase uint16
	tsOff   uint32
	highTS  uint32 // output timestamp of highIn
	highAt  time.Time
}

// follows reports whether packets of the upstream stream (gen, ssrc) are
// already being mapped.
func (m *munger) follows(gen uint64, ssrc uint32) bool {
	return m.synced && m.gen == gen && m.ssrc == ssrc
}

// switchTo starts mapping a new upstream stream whose first packet to
// forward is h.
func (m *munger) switchTo(gen uint64, h *rtp.Header, now time.Time, clockRate uint32) {
	ext := int64(1)<<32 | int64(h.SequenceNumber)
	if m.started {
		m.outBase = m.outSeq(m.highIn) + 1
		step := uint32(1)
		if elapsed := now.Sub(m.highAt); elapsed > 0 && clockRate > 0 {
			step = max(1, uint32(uint64(elapsed)*uint64(clockRate)/uint64(time.Second)))
		}
		m.tsOff = m.highTS + step - h.Timestamp
	} else {
		m.outBase = h.SequenceNumber
		m.tsOff = 0
	}
	m.gen, m.ssrc = gen, h.SSRC
	m.baseIn, m.highIn = ext, ext
	m.synced = true
}

func (m *munger) outSeq(ext int64) uint16 { return m.outBase + uint16(ext-m.baseIn) }

// sourceSeq returns the extended upstream sequence number that was sent to
// the subscriber as seq, if seq is one of the current mapping's.
func (m *munger) sourceSeq(seq uint16) (int64, bool) {
	ext := m.baseIn + int64(seq-m.outBase)
	if !m.synced || ext > m.highIn || m.highIn-ext >= cacheSize {
		return 0, false
	}
	return ext, true
}

// extend returns the extended sequence number of seq: the one nearest to
// the highest seen.
func (m *munger) extend(seq uint16) int64 {
	return m.highIn + int64(int16(seq-uint16(m.highIn)))
}

// rewrite returns the subscriber's sequence number and timestamp for h, or
// false for a packet older than the start of the mapping.
func (m *munger) rewrite(h *rtp.Header, now time.Time) (uint16, uint32, bool) {
	ext := m.extend(h.SequenceNumber)
	if ext < m.baseIn {
		return 0, 0, false
	}
	ts := h.Timestamp + m.tsOff
	if ext >= m.highIn {
		m.highIn, m.highTS, m.highAt = ext, ts, now
	}
	m.started = true
	return m.outSeq(ext), ts, true
}

// observeReports tells the counters' observer what the subscriber's
// report blocks about this track say.
func (d *DownTrack) observeReports(reports []rtcp.ReceptionReport, ssrc uint32) {
	now := time.Now()
	for _, r := range reports {
		if r.SSRC != ssrc {
			continue
		}
		rec := Reception{
			FractionLost: float64(r.FractionLost) / 256,
			RTT:          roundTrip(now, r.LastSenderReport, r.Delay),
		}
		if rec.RTT > 0 {
			d.rtt.Store(int64(rec.RTT))
		}
		o := d.src.counters.reception
		if o == nil {
			continue
		}
		if u := d.src.up.Load(); u != nil && u.codec.ClockRate > 0 {
			rec.Jitter = time.Duration(uint64(r.Jitter) * uint64(time.Second) / uint64(u.codec.ClockRate))
		}
		o.ObserveReception(d.src.kind, rec)
	}
}
