// Package forward is the hot path of the media plane: it carries the RTP
// packets of one published track to every subscriber without decoding
// them, rewriting what must differ per subscriber (SSRC, payload type,
// sequence numbers, timestamps) so that each subscriber sees one continuous
// stream, even across the publisher's reconnections, and it passes
// subscribers' keyframe requests up to the publisher.
//
// A Source is one published track; an Upstream feeds it from one publisher
// connection; a DownTrack is the webrtc.TrackLocal of one subscriber.
package forward

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// DefaultKeyframeInterval is the least time between two keyframe requests
// a Source sends upstream.
const DefaultKeyframeInterval = 250 * time.Millisecond

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

	fanout int // workers, see WithFanout

	mu     sync.RWMutex
	up     *Upstream
	gen    uint64
	downs  []*DownTrack
	closed bool
	// With enough subscribers, the copies of a packet are written by
	// fanout workers, each for a fixed share of the subscribers, so that
	// the sends run on every core and each subscriber's packets stay in
	// order. shards[i] is worker i's share; a share is replaced, never
	// modified, as the worker may still be writing to an old one.
	shards  [][]*DownTrack
	workers []chan job // nil until started; closed by Close

	cache packetCache // recent upstream packets, for subscribers' NACKs

	kfMu      sync.Mutex
	kfLast    time.Time
	kfPending *time.Timer
}

// Option configures a Source.
type Option func(*Source)

// WithKeyframeInterval sets the least time between two keyframe requests
// sent upstream; DefaultKeyframeInterval by default. Requests that come
// sooner are merged into one sent when the interval has passed.
func WithKeyframeInterval(d time.Duration) Option {
	return func(s *Source) { s.keyframeInterval = d }
}

// WithFanout sets how many workers write a packet's copies once the
// source has minShard subscribers for each; runtime.GOMAXPROCS by default.
// With 1, WriteRTP writes every copy itself.
func WithFanout(n int) Option {
	return func(s *Source) { s.fanout = n }
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
	if s.fanout <= 0 {
		s.fanout = runtime.GOMAXPROCS(0)
	}
	s.shards = make([][]*DownTrack, s.fanout)
	return s
}

// Kind returns whether the source is audio or video.
func (s *Source) Kind() webrtc.RTPCodecType { return s.kind }

// Codec returns the codec of the current upstream, if there is one.
func (s *Source) Codec() (webrtc.RTPCodecParameters, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.up == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return s.up.codec, true
}

// Upstream feeds a Source with the packets of one publisher connection.
type Upstream struct {
	src             *Source
	gen             uint64
	codec           webrtc.RTPCodecParameters
	requestKeyframe func()
}

// Attach makes a new upstream the source of packets, detaching the
// previous one. codec is what the publisher sends; requestKeyframe asks the
// publisher for a keyframe (a PLI) and must not block for long.
func (s *Source) Attach(codec webrtc.RTPCodecParameters, requestKeyframe func()) *Upstream {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	u := &Upstream{src: s, gen: s.gen, codec: codec, requestKeyframe: requestKeyframe}
	s.up = u
	return u
}

// minShard is the fewest subscribers per worker for a source to start its
// workers: each copy costs several microseconds (SRTP and a sendto),
// handing a packet to a worker a few.
const minShard = 16

// workerQueue is how many packets a worker may be behind the upstream
// before WriteRTP waits for it: about two seconds of video.
const workerQueue = 512

// job is one packet for a worker to write to its share of the subscribers.
type job struct {
	p     *rtp.Packet
	u     *Upstream
	now   time.Time
	downs []*DownTrack
}

// WriteRTP forwards p to every started subscriber, in the order packets
// are written. Once the source has enough subscribers to start its
// workers, it returns when the workers have p, not when they have written
// it. p is not modified, but it is kept (to answer NACKs, and by the
// workers): the caller must not reuse it. It returns ErrDetached once u no
// longer feeds the source.
func (u *Upstream) WriteRTP(p *rtp.Packet) error {
	s := u.src
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.up != u {
		return ErrDetached
	}
	now := time.Now()
	if s.kind == webrtc.RTPCodecTypeVideo {
		s.cache.put(u.gen, p, KeyframeStart(u.codec.MimeType, p.Payload), now)
	}
	if s.workers == nil {
		for _, d := range s.downs {
			d.write(p, u, now)
		}
		return nil
	}
	// Close waits for the read lock: no worker is stopped while this runs.
	for i, jobs := range s.workers {
		if len(s.shards[i]) > 0 {
			jobs <- job{p, u, now, s.shards[i]}
		}
	}
	return nil
}

// work writes the packets it is given until the source closes.
func work(jobs <-chan job) {
	for j := range jobs {
		for _, d := range j.downs {
			d.write(j.p, j.u, j.now)
		}
	}
}

// Detach stops u feeding the source; later writes return ErrDetached.
func (u *Upstream) Detach() {
	s := u.src
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up == u {
		s.up = nil
	}
}

// RequestKeyframe asks the current upstream for a keyframe, at most once
// per keyframe interval. Audio sources ignore it.
func (s *Source) RequestKeyframe() {
	s.mu.RLock()
	u := s.up
	s.mu.RUnlock()
	if u != nil {
		s.requestKeyframe(u)
	}
}

// requestKeyframe asks u for a keyframe now, or when the interval since
// the last request has passed. It never blocks on the publisher.
func (s *Source) requestKeyframe(u *Upstream) {
	if s.kind != webrtc.RTPCodecTypeVideo || u.requestKeyframe == nil {
		return
	}
	s.kfMu.Lock()
	defer s.kfMu.Unlock()
	if s.kfPending != nil {
		return // a request is already scheduled
	}
	wait := s.keyframeInterval - time.Since(s.kfLast)
	if wait <= 0 {
		s.kfLast = time.Now()
		go u.requestKeyframe()
		return
	}
	s.kfPending = time.AfterFunc(wait, func() {
		s.kfMu.Lock()
		s.kfPending = nil
		s.kfMu.Unlock()
		s.RequestKeyframe()
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
	d := &DownTrack{src: s}
	s.downs = append(s.downs, d)
	// The new subscriber goes to the smallest share.
	for i := range s.shards {
		if len(s.shards[i]) < len(s.shards[d.shard]) {
			d.shard = i
		}
	}
	s.shards[d.shard] = append(slices.Clip(s.shards[d.shard]), d)
	// Once started, the workers write every packet until the source
	// closes: going back to writing in WriteRTP could overtake packets
	// still queued.
	if s.workers == nil && s.fanout > 1 && len(s.downs) >= s.fanout*minShard {
		s.workers = make([]chan job, s.fanout)
		for i := range s.workers {
			s.workers[i] = make(chan job, workerQueue)
			go work(s.workers[i])
		}
	}
	return d, nil
}

// Close detaches every subscriber and the upstream; the source forwards
// nothing afterwards.
func (s *Source) Close() {
	s.mu.Lock()
	for _, d := range s.downs {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
	}
	s.downs = nil
	clear(s.shards)
	for _, jobs := range s.workers {
		close(jobs)
	}
	s.workers = nil
	s.up = nil
	s.closed = true
	s.mu.Unlock()

	s.kfMu.Lock()
	if s.kfPending != nil {
		s.kfPending.Stop()
		s.kfPending = nil
	}
	s.kfMu.Unlock()
	s.cache.clear()
}

// Subscribers returns how many down tracks the source has.
func (s *Source) Subscribers() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.downs)
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
