// Package forward is the hot path of the media plane: it carries the RTP
// packets of one published track to every subscriber without decoding
// them, rewriting what must differ per subscriber (SSRC, payload type,
// sequence numbers, timestamps) so that each subscriber sees one continuous
// stream, even across the publisher's reconnections, and it passes
// subscribers' keyframe requests up to the publisher.
//
// A Source is one published track; an Upstream feeds it from one publisher
// connection; a DownTrack is the webrtc.TrackLocal of one subscriber.
//
// # Nothing waits for a subscriber
//
// Upstream.WriteRTP never blocks on a subscriber and takes no lock that a
// subscriber's write holds. A source keeps its current upstream and its
// subscribers as immutable snapshots behind atomic pointers; the calls that
// change them (Attach, Detach, NewDownTrack, DownTrack.Close, Source.Close)
// serialize on Source.mu and replace the snapshot (copy on write). WriteRTP
// reads the snapshots, keeps the packet in the source's cache (for NACKs
// and for new subscribers' first keyframe) and appends it to each
// subscriber's queue.
//
// Each DownTrack has a bounded queue. Whatever is written to the
// subscriber passes through it, in order: packets, the keyframe replay of
// Start and the retransmissions that NACKs ask for. A subscriber with
// something queued goes on a run queue shared by all sources, served by a
// few workers (see pool.go); one worker at a time handles a subscriber and
// owns its stream state (the sequence and timestamp mapping, the payload
// type). When a subscriber falls behind (its socket, its encryption or its
// peer is slow), its queue fills and the packets that do not fit are
// dropped and counted; its stream then starts again at the next keyframe,
// asked of the publisher, and follows on from the last packet sent, so the
// subscriber sees no gap to retransmit. The publisher and the other
// subscribers are not held back, and a subscriber's audio, a DownTrack of
// its own, is never queued behind its video.
//
// # Lock order
//
// Source.mu is taken only by the calls that change a source, never while
// another lock is held, and it is held across no write. Every other lock —
// a DownTrack's queue, the run queue, the packet cache, the keyframe
// timer — is a leaf: nothing else is locked while it is held, and none is
// held across a write to a subscriber or a call to the publisher.
package forward

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// DefaultKeyframeInterval is the least time between two keyframe requests
// a Source sends upstream.
const DefaultKeyframeInterval = 250 * time.Millisecond

// Default queue lengths of a subscriber: about a second of a 2.5 Mbps
// video stream, a keyframe burst with room to spare, and over a second of
// Opus. A subscriber further behind than that is dropping packets anyway.
const (
	DefaultVideoQueue = 256
	DefaultAudioQueue = 64
)

var (
	// ErrDetached is returned by Upstream.WriteRTP once another upstream
	// has taken over the source, or the upstream was detached.
	ErrDetached = errors.New("forward: upstream detached")

	// ErrClosed is returned when adding a subscriber to a closed source.
	ErrClosed = errors.New("forward: source closed")
)

// Source is one published track (the audio or the video of one
// participant) as subscribers see it. It outlives the publisher's
// connections: a publisher that reconnects attaches a new Upstream and
// subscribers carry on with the same tracks. It is safe for concurrent use.
type Source struct {
	kind             webrtc.RTPCodecType
	trackID          string
	streamID         string
	keyframeInterval time.Duration
	queueLen         int
	batcher          Batcher
	counters         *Counters

	mu     sync.Mutex // serializes changes of up, downs and closed
	gen    uint64
	closed bool

	up    atomic.Pointer[Upstream]
	downs atomic.Pointer[[]*DownTrack] // never modified once stored

	sel         atomic.Pointer[selector] // picks each subscriber's layer, once the upstream has several
	selectEvery time.Duration
	// needed is told which layers of a simulcast upstream subscribers need.
	needed func(rids []string)
}

// Option configures a Source.
type Option func(*Source)

// WithKeyframeInterval sets the least time between two keyframe requests
// sent upstream; DefaultKeyframeInterval by default. Requests that come
// sooner are merged into one sent when the interval has passed.
func WithKeyframeInterval(d time.Duration) Option {
	return func(s *Source) { s.keyframeInterval = d }
}

// Batcher is the transport under the subscribers' connections, told when
// a worker starts writing to them and when it has nothing more to write
// for now, so that what it writes in between can leave together (one
// sendmmsg for many datagrams) rather than as each is written. Release
// must send what was held. Both are called without any lock held.
type Batcher interface {
	Hold()
	Release()
}

// WithBatcher makes the workers hold b while they write to the source's
// subscribers.
func WithBatcher(b Batcher) Option {
	return func(s *Source) { s.batcher = b }
}

// NewSource returns a source of the given kind whose subscriber tracks have
// the given track and stream ids (what a subscriber sees as
// MediaStreamTrack.id and MediaStream.id).
func NewSource(kind webrtc.RTPCodecType, trackID, streamID string, opts ...Option) *Source {
	s := &Source{kind: kind, trackID: trackID, streamID: streamID}
	for _, o := range opts {
		o(s)
	}
	if s.keyframeInterval <= 0 {
		s.keyframeInterval = DefaultKeyframeInterval
	}
	if s.selectEvery <= 0 {
		s.selectEvery = selectEvery
	}
	if s.counters == nil {
		s.counters = &Counters{}
	}
	s.queueLen = DefaultAudioQueue
	if kind == webrtc.RTPCodecTypeVideo {
		s.queueLen = DefaultVideoQueue
	}
	return s
}

// Kind returns whether the source is audio or video.
func (s *Source) Kind() webrtc.RTPCodecType { return s.kind }

// Codec returns the codec of the current upstream, if there is one.
func (s *Source) Codec() (webrtc.RTPCodecParameters, bool) {
	if u := s.up.Load(); u != nil {
		return u.codec, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// WithLayersNeeded makes the source tell f, whenever it changes, the rids
// of the simulcast layers its subscribers need (those not seen yet, then
// from the lowest): a publisher
// that can pause layers pauses the others. f is called from one goroutine
// at a time, with no lock held, and must not block for long.
func WithLayersNeeded(f func(rids []string)) Option {
	return func(s *Source) { s.needed = f }
}

// Upstream feeds a Source with the packets of one publisher connection:
// one layer, or up to MaxLayers simulcast layers.
type Upstream struct {
	src     *Source
	gen     uint64
	codec   webrtc.RTPCodecParameters
	single  bool // not simulcast: one layer, every subscriber gets it
	layers  [MaxLayers]atomic.Pointer[Layer]
	mu      sync.Mutex    // serializes AddLayer
	levelID atomic.Uint32 // the publisher's id of the audio level extension; 0: none
}

// SetAudioLevelID says which header extension id carries the audio level
// (RFC 6464) in the publisher's packets: it is forwarded to subscribers
// that negotiated the extension, with theirs.
func (u *Upstream) SetAudioLevelID(id uint8) { u.levelID.Store(uint32(id)) }

// audioLevel returns the audio level extension of p, nil if it has none.
func (u *Upstream) audioLevel(p *rtp.Packet) []byte {
	id := u.levelID.Load()
	if id == 0 || !p.Extension {
		return nil
	}
	return p.GetExtension(uint8(id))
}

// Attach makes a new upstream of one layer the source of packets,
// detaching the previous one. codec is what the publisher sends;
// requestKeyframe asks the publisher for a keyframe (a PLI) and must not
// block for long. On a closed source the upstream is detached from the
// start.
func (s *Source) Attach(codec webrtc.RTPCodecParameters, requestKeyframe func()) *Upstream {
	u := s.attach(codec, true)
	l := &Layer{u: u, id: 0}
	l.requestKeyframe.Store(&requestKeyframe)
	u.layers[0].Store(l)
	return u
}

// AttachSimulcast makes a new simulcast upstream the source of packets,
// detaching the previous one. rids are the layers the publisher declared
// (at most MaxLayers are kept): they count as needed until they have been
// seen, so that a publisher told which layers are needed does not pause
// one before it has started. Layers are fed through AddLayer as the
// publisher's streams arrive.
func (s *Source) AttachSimulcast(codec webrtc.RTPCodecParameters, rids []string) *Upstream {
	u := s.attach(codec, false)
	for i, rid := range rids[:min(len(rids), MaxLayers)] {
		u.layers[i].Store(&Layer{u: u, id: i, rid: rid})
	}
	if len(rids) > 0 {
		s.startSelector()
	}
	return u
}

func (s *Source) attach(codec webrtc.RTPCodecParameters, single bool) *Upstream {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	u := &Upstream{src: s, gen: s.gen, codec: codec, single: single}
	if !s.closed {
		s.up.Store(u)
	}
	return u
}

// AddLayer adds the simulcast layer rid to u and returns it; the layer of
// that rid if it has one already. requestKeyframe asks the publisher for a
// keyframe of this layer and must not block for long.
func (u *Upstream) AddLayer(rid string, requestKeyframe func()) (*Layer, error) {
	if u.single {
		return nil, errors.New("forward: not a simulcast upstream")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range u.layers {
		l := u.layers[i].Load()
		if l == nil {
			l = &Layer{u: u, id: i, rid: rid}
			l.requestKeyframe.Store(&requestKeyframe)
			u.layers[i].Store(l)
			u.src.startSelector()
			return l, nil
		}
		if l.rid == rid {
			l.requestKeyframe.Store(&requestKeyframe)
			return l, nil
		}
	}
	return nil, ErrTooManyLayers
}

// layer returns u's layer in slot id, nil if there is none.
func (u *Upstream) layer(id int32) *Layer {
	if id < 0 || id >= MaxLayers {
		return nil
	}
	return u.layers[id].Load()
}

// WriteRTP forwards p, a packet of a single-layer upstream, to every
// started subscriber, in the order packets are written: it queues p for
// each and returns without waiting for any. p is not modified, but it is
// kept (to answer NACKs, and in the queues): the caller must not reuse it.
// It returns ErrDetached once u no longer feeds the source.
func (u *Upstream) WriteRTP(p *rtp.Packet) error {
	l := u.layers[0].Load()
	if l == nil {
		return errors.New("forward: a simulcast upstream is written through its layers")
	}
	return l.WriteRTP(p)
}

// Detach stops u feeding the source; later writes return ErrDetached.
func (u *Upstream) Detach() {
	s := u.src
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up.CompareAndSwap(u, nil)
}

const videoKind = webrtc.RTPCodecTypeVideo

// RequestKeyframe asks every layer of the current upstream for a
// keyframe, each at most once per keyframe interval. Audio sources ignore
// it.
func (s *Source) RequestKeyframe() {
	if u := s.up.Load(); u != nil {
		for i := range u.layers {
			if l := u.layers[i].Load(); l != nil {
				s.requestKeyframe(l)
			}
		}
	}
}

// requestKeyframe asks the publisher for a keyframe of l now, or when the
// interval since the last request has passed. It never blocks on the
// publisher.
func (s *Source) requestKeyframe(l *Layer) {
	if s.kind != webrtc.RTPCodecTypeVideo || l == nil {
		return
	}
	ask := l.requestKeyframe.Load()
	if ask == nil || *ask == nil {
		return // the layer's stream has not arrived
	}
	k := &l.kf
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pending != nil || k.stopped {
		return // a request is already scheduled
	}
	wait := s.keyframeInterval - time.Since(k.last)
	if wait <= 0 {
		k.last = time.Now()
		s.counters.keyframeRequestsOut.Add(1)
		go (*ask)()
		return
	}
	k.pending = time.AfterFunc(wait, func() {
		k.mu.Lock()
		k.pending = nil
		k.mu.Unlock()
		if s.up.Load() == l.u {
			s.requestKeyframe(l)
		}
	})
}

// NewDownTrack returns a subscriber's track of s. It forwards nothing until
// Start is called. Returns ErrClosed if s is closed.
func (s *Source) NewDownTrack() (*DownTrack, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	d := newDownTrack(s)
	var downs []*DownTrack
	if old := s.downs.Load(); old != nil {
		downs = slices.Clone(*old)
	}
	downs = append(downs, d)
	s.downs.Store(&downs)
	return d, nil
}

// remove takes d out of the subscribers' snapshot.
func (s *Source) remove(d *DownTrack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.downs.Load()
	if old == nil {
		return
	}
	if i := slices.Index(*old, d); i >= 0 {
		downs := slices.Delete(slices.Clone(*old), i, i+1)
		s.downs.Store(&downs)
	}
}

// Close detaches every subscriber and the upstream; the source forwards
// nothing afterwards.
func (s *Source) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	u := s.up.Swap(nil)
	downs := s.downs.Swap(nil)
	sel := s.sel.Load()
	s.mu.Unlock()
	if downs != nil {
		for _, d := range *downs {
			d.close()
		}
	}
	if sel != nil {
		sel.stop()
	}
	if u != nil {
		u.release()
	}
}

// release stops u's keyframe timers and drops the packets it keeps.
func (u *Upstream) release() {
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil {
			l.kf.stop()
			l.cache.clear()
		}
	}
}

// Subscribers returns how many down tracks the source has.
func (s *Source) Subscribers() int {
	if downs := s.downs.Load(); downs != nil {
		return len(*downs)
	}
	return 0
}

// forwardable reports whether packets of the codec can be forwarded as
// media: retransmission and error-correction formats cannot.
func forwardable(mimeType string) bool {
	_, name, _ := strings.Cut(strings.ToLower(mimeType), "/")
	switch name {
	case "rtx", "red", "ulpfec", "flexfec-03", "":
		return false
	}
	return true
}

// payloadType picks, among a subscriber's negotiated codecs, the payload
// type to send packets of src with: same MIME type and, for H.264, the same
// packetization mode, preferring the same profile.
func payloadType(codecs []webrtc.RTPCodecParameters, src webrtc.RTPCodecParameters) (uint8, bool) {
	best, bestScore := -1, 0
	for i, c := range codecs {
		if !strings.EqualFold(c.MimeType, src.MimeType) {
			continue
		}
		score := 1
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeH264) {
			if fmtp(c.SDPFmtpLine, "packetization-mode", "0") != fmtp(src.SDPFmtpLine, "packetization-mode", "0") {
				continue
			}
			if profile(c.SDPFmtpLine) == profile(src.SDPFmtpLine) {
				score = 2
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return 0, false
	}
	return uint8(codecs[best].PayloadType), true
}

// fmtp returns the value of key in an a=fmtp parameter line, or def.
func fmtp(line, key, def string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return strings.ToLower(strings.TrimSpace(v))
		}
	}
	return def
}

// profile returns the profile part (profile_idc and profile-iop) of an
// H.264 profile-level-id, without the level.
func profile(line string) string {
	p := fmtp(line, "profile-level-id", "42001f")
	if len(p) < 4 {
		return p
	}
	return p[:4]
}
