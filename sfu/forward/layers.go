package forward

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// MaxLayers is how many simulcast layers (RTP streams of one track, told
// apart by their rid, RFC 8853) an upstream may have.
const MaxLayers = 3

// ErrTooManyLayers is returned when an upstream already has MaxLayers.
var ErrTooManyLayers = errors.New("forward: too many simulcast layers")

// Layer is one RTP stream of an upstream: its only one, or one of the
// simulcast layers of a publisher that encodes the same video at up to
// MaxLayers sizes. Each subscriber gets one layer at a time, switched at a
// keyframe of the layer it switches to.
type Layer struct {
	u               *Upstream
	id              int                    // its slot in the upstream, in the order layers were added
	rid             string                 // the publisher's rid; "" without simulcast
	requestKeyframe atomic.Pointer[func()] // set when the layer's stream arrives

	cache packetCache // recent packets, for NACKs and new subscribers (video)
	kf    keyframeLimiter

	bytes  atomic.Uint64 // received, ever
	lastAt atomic.Int64  // unix nanoseconds of the newest packet; 0: none yet
	// resumedAt is when its packets started flowing again (unix
	// nanoseconds): its bitrate is not known again until it has been
	// measured for a while.
	resumedAt atomic.Int64
	width     atomic.Uint32 // of the newest keyframe; 0: not known
	height    atomic.Uint32
	frames    atomic.Uint64 // received, ever: packets that end a frame (RTP marker)

	// Updated by the source's selector.
	rate      atomic.Int64 // bits per second received, smoothed
	peakRate  atomic.Int64 // the highest smoothed rate, forgotten slowly (peakDecay)
	fps       atomic.Int64 // frames per second received, smoothed, in thousandths
	selBytes  uint64       // bytes at the previous measurement
	selFrames uint64       // frames at the previous measurement
}

// settled reports whether the layer has been sent long enough since it
// resumed for its bitrate to be known.
func (l *Layer) settled(now time.Time) bool {
	return now.Sub(time.Unix(0, l.resumedAt.Load())) >= layerSettle
}

// layerSettle is how long a layer that starts or resumes is measured
// before a subscriber is moved up to it.
const layerSettle = time.Second

// peakDecay is how much of a layer's peak rate remains after each
// measurement that is lower: half after about 17 s of measurements. An
// encoder's bitrate swings with the picture and its own bandwidth, and
// one that resumes a layer climbs back to it over seconds: a subscriber is
// given a layer only if it can take the layer's peaks, or the layer would
// congest its path the next time it peaks. A paused layer is not measured
// and keeps its peak.
const peakDecay = 0.99

// measured records a new smoothed rate and updates the peak.
func (l *Layer) measured(rate int64) {
	l.rate.Store(rate)
	l.peakRate.Store(max(rate, int64(float64(l.peakRate.Load())*peakDecay)))
}

// RID returns the rid of the layer, "" without simulcast.
func (l *Layer) RID() string { return l.rid }

// WriteRTP forwards p, a packet of this layer, to the subscribers that get
// the layer or are switching to it. Like Upstream.WriteRTP it never waits
// for a subscriber, keeps p and returns ErrDetached once the upstream no
// longer feeds the source.
func (l *Layer) WriteRTP(p *rtp.Packet) error {
	u := l.u
	s := u.src
	if s.up.Load() != u {
		return ErrDetached
	}
	size := uint64(p.MarshalSize())
	s.counters.packetsIn.Add(1)
	s.counters.bytesIn.Add(size)
	now := time.Now()
	l.bytes.Add(size)
	if p.Marker {
		l.frames.Add(1)
	}
	if last := l.lastAt.Swap(now.UnixNano()); last == 0 || now.UnixNano()-last >= int64(layerIdle) {
		l.resumedAt.Store(now.UnixNano())
	}
	if s.kind == videoKind {
		key := KeyframeStart(u.codec.MimeType, p.Payload)
		if key {
			l.observeKeyframe(u.codec.MimeType, p.Payload)
		}
		l.cache.put(u.gen, p, key, now)
	}
	downs := s.downs.Load()
	if downs == nil {
		return nil
	}
	single := u.single
	var buf [64]*DownTrack
	idle := buf[:0]
	for _, d := range *downs {
		if !d.started.Load() {
			continue
		}
		if !single && int32(l.id) != d.cur.Load() && int32(l.id) != d.want.Load() {
			continue // a layer the subscriber neither gets nor switches to
		}
		if _, schedule := d.q.push(item{kind: itemPacket, p: p, l: l, at: now}); schedule {
			idle = append(idle, d)
		}
	}
	if len(idle) > 0 {
		writers.schedule(idle...)
	}
	return nil
}

// active reports whether the layer's packets are flowing: a publisher
// stops sending a layer it paused, or that its own bandwidth cannot carry.
func (l *Layer) active(now time.Time) bool {
	at := l.lastAt.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < layerIdle
}

// layerIdle is how long without a packet makes a layer inactive: several
// frame intervals of the slowest layer a browser sends.
const layerIdle = 600 * time.Millisecond

// observeKeyframe records the picture size a keyframe tells.
func (l *Layer) observeKeyframe(mimeType string, payload []byte) {
	w, h, ok := keyframeSize(mimeType, payload)
	if ok {
		l.width.Store(uint32(w))
		l.height.Store(uint32(h))
	}
}

// keyframeSize returns the picture size a keyframe's first packet tells:
// the VP8 key frame header (RFC 6386, section 9.1), or an H.264 sequence
// parameter set sent alone or in a STAP-A.
func keyframeSize(mimeType string, p []byte) (int, int, bool) {
	switch {
	case len(p) == 0:
		return 0, 0, false
	case strings.EqualFold(mimeType, "video/VP8"):
		return vp8Size(p)
	default:
		return h264Size(p)
	}
}

func vp8Size(p []byte) (int, int, bool) {
	// Skip the payload descriptor (RFC 7741, section 4.2).
	x := p[0]&0x80 != 0
	i := 1
	if x {
		if len(p) <= i {
			return 0, 0, false
		}
		ext := p[i]
		i++
		if ext&0x80 != 0 {
			if len(p) <= i {
				return 0, 0, false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 {
			i++
		}
		if ext&0x30 != 0 {
			i++
		}
	}
	// 3 bytes of frame tag, the start code 9d 01 2a, then 14-bit width
	// and height, each with 2 bits of scaling.
	b := p[min(i, len(p)):]
	if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return 0, 0, false
	}
	w := int(binary.LittleEndian.Uint16(b[6:]) & 0x3fff)
	h := int(binary.LittleEndian.Uint16(b[8:]) & 0x3fff)
	return w, h, w > 0 && h > 0
}

func h264Size(p []byte) (int, int, bool) {
	var nalus [][]byte
	switch p[0] & 0x1f {
	case naluSPS:
		nalus = append(nalus, p)
	case naluSTAPA:
		for rest := p[1:]; len(rest) >= 2; {
			size := int(rest[0])<<8 | int(rest[1])
			rest = rest[2:]
			if size == 0 || size > len(rest) {
				break
			}
			nalus = append(nalus, rest[:size])
			rest = rest[size:]
		}
	}
	for _, n := range nalus {
		if len(n) == 0 || n[0]&0x1f != naluSPS {
			continue
		}
		var sps h264.SPS
		if sps.Unmarshal(n) == nil && sps.Width() > 0 && sps.Height() > 0 {
			return sps.Width(), sps.Height(), true
		}
	}
	return 0, 0, false
}

// keyframeLimiter spaces a layer's keyframe requests to the publisher by
// at least the source's keyframe interval, merging those that come sooner
// into one sent when the interval has passed. Its mutex is a leaf.
type keyframeLimiter struct {
	mu      sync.Mutex
	last    time.Time
	pending *time.Timer
	stopped bool
}

func (k *keyframeLimiter) stop() {
	k.mu.Lock()
	k.stopped = true
	if k.pending != nil {
		k.pending.Stop()
		k.pending = nil
	}
	k.mu.Unlock()
}
