package bot

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// States of a bot.
const (
	StateJoining    = "JOINING"
	StateJoined     = "JOINED"
	StatePublishing = "PUBLISHING"
	StateLeft       = "LEFT"
	StateFailed     = "FAILED"
)

// Stats are a bot's counters at one moment.
type Stats struct {
	Index         int    `json:"bot"`
	ParticipantID string `json:"participantId"`
	UserID        string `json:"userId,omitempty"`
	StageARN      string `json:"stageArn"`
	SessionID     string `json:"sessionId,omitempty"`
	State         string `json:"state"`
	Error         string `json:"error,omitempty"`
	// Seconds since the bot started.
	Elapsed float64 `json:"elapsedSeconds"`
	// When the counters were read.
	At time.Time `json:"-"`

	Sent     Sent          `json:"sent"`
	Received []RemoteStats `json:"received"`
}

// Sent is what a bot has published.
type Sent struct {
	VideoFrames  int64 `json:"videoFrames"`
	VideoBytes   int64 `json:"videoBytes"`
	AudioPackets int64 `json:"audioPackets"`
	AudioBytes   int64 `json:"audioBytes"`
	// When the first frame or packet was sent; zero before.
	Since time.Time `json:"since,omitzero"`
}

// RemoteStats is what a bot has received from one publisher. Bytes are
// RTP payload bytes; frames are counted by the marker bit, keyframes by
// the codec's keyframe start.
type RemoteStats struct {
	ParticipantID string `json:"participantId"`
	UserID        string `json:"userId,omitempty"`
	VideoCodec    string `json:"videoCodec,omitempty"`
	AudioCodec    string `json:"audioCodec,omitempty"`
	VideoPackets  int64  `json:"videoPackets"`
	VideoBytes    int64  `json:"videoBytes"`
	VideoFrames   int64  `json:"videoFrames"`
	Keyframes     int64  `json:"keyframes"`
	AudioPackets  int64  `json:"audioPackets"`
	AudioBytes    int64  `json:"audioBytes"`
	// When the first packet arrived; zero before.
	Since time.Time `json:"since,omitzero"`
	// Average bitrates (bits per second) and frame rate since the first
	// packet.
	VideoBitrate float64 `json:"videoBitrate"`
	AudioBitrate float64 `json:"audioBitrate"`
	FrameRate    float64 `json:"frameRate"`
	Error        string  `json:"error,omitempty"`
}

// remoteCounters count what comes from one publisher.
type remoteCounters struct {
	mu            sync.Mutex
	participantID string
	userID        string
	s             RemoteStats
	first, last   time.Time
	firstVideo    time.Time
}

func (c *remoteCounters) setCodec(video bool, mime string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if video {
		c.s.VideoCodec = mime
	} else {
		c.s.AudioCodec = mime
	}
}

func (c *remoteCounters) setError(err error) {
	c.mu.Lock()
	c.s.Error = err.Error()
	c.mu.Unlock()
}

func (c *remoteCounters) add(video bool, mime string, pkt *rtp.Packet) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.IsZero() {
		c.first = now
	}
	c.last = now
	if !video {
		c.s.AudioPackets++
		c.s.AudioBytes += int64(len(pkt.Payload))
		return
	}
	if c.firstVideo.IsZero() {
		c.firstVideo = now
	}
	c.s.VideoPackets++
	c.s.VideoBytes += int64(len(pkt.Payload))
	if pkt.Marker {
		c.s.VideoFrames++
	}
	if keyframeStart(mime, pkt.Payload) {
		c.s.Keyframes++
	}
}

func (c *remoteCounters) snapshot() RemoteStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.ParticipantID, s.UserID, s.Since = c.participantID, c.userID, c.first
	if d := c.last.Sub(c.first).Seconds(); d > 0 {
		s.AudioBitrate = float64(s.AudioBytes*8) / d
	}
	if d := c.last.Sub(c.firstVideo).Seconds(); d > 0 && !c.firstVideo.IsZero() {
		s.VideoBitrate = float64(s.VideoBytes*8) / d
		s.FrameRate = float64(s.VideoFrames) / d
	}
	return s
}

// Stats returns the bot's counters now.
func (b *Bot) Stats() Stats {
	b.mu.Lock()
	s := b.stats
	if !b.started.IsZero() {
		s.Elapsed = time.Since(b.started).Seconds()
	}
	var remotes []*remoteCounters
	for _, sub := range b.subs {
		remotes = append(remotes, sub.stats)
	}
	b.mu.Unlock()
	// The counters are read after the time media started, which is set
	// before anything is counted: counts are never older than their start.
	since := b.sentSince.Load()
	s.Sent = Sent{VideoFrames: b.sentVideoFrames.Load(), VideoBytes: b.sentVideoBytes.Load(),
		AudioPackets: b.sentAudioPackets.Load(), AudioBytes: b.sentAudioBytes.Load()}
	if since != 0 {
		s.Sent.Since = time.Unix(0, since)
	}
	s.Received = []RemoteStats{}
	for _, r := range remotes {
		s.Received = append(s.Received, r.snapshot())
	}
	sortRemotes(s.Received)
	s.At = time.Now()
	return s
}

// Rates are what a bot sends and receives per second.
type Rates struct {
	SentBits       float64 // payload bits sent, video and audio
	ReceivedBits   float64 // payload bits received from every publisher, video and audio
	ReceivedFrames float64 // video frames received from every publisher
}

// minRateWindow is the shortest time a rate is measured over: a count
// that started just before a reading is spread over this much rather than
// over the instant since its first packet.
const minRateWindow = 200 * time.Millisecond

// RatesSince returns the rates from prev, an earlier reading of the same
// bot, to s. A count that prev does not cover, because there is no prev
// (the first report) or because its media started after prev was read (a
// publisher subscribed to since), is measured from when its media started,
// so that a first report shows what flows rather than nothing. A count
// whose media has not started is 0.
func (s Stats) RatesSince(prev *Stats) Rates {
	var (
		r       Rates
		prevAt  time.Time
		prevOut Sent
		prevIn  = map[string]RemoteStats{}
	)
	if prev != nil {
		prevAt, prevOut = prev.At, prev.Sent
		for _, rs := range prev.Received {
			prevIn[rs.ParticipantID] = rs
		}
	}
	r.SentBits = 8 * rate(s.Sent.Since, prevAt, s.At, prevOut.VideoBytes+prevOut.AudioBytes, s.Sent.VideoBytes+s.Sent.AudioBytes)
	for _, rs := range s.Received {
		before := prevIn[rs.ParticipantID]
		r.ReceivedBits += 8 * rate(rs.Since, prevAt, s.At, before.VideoBytes+before.AudioBytes, rs.VideoBytes+rs.AudioBytes)
		r.ReceivedFrames += rate(rs.Since, prevAt, s.At, before.VideoFrames, rs.VideoFrames)
	}
	return r
}

// rate is the growth per second of a count that started at since and was
// n0 at prevAt and n at at. A count that started after prevAt (or with no
// prevAt) is measured from its start, over at least minRateWindow.
func rate(since, prevAt, at time.Time, n0, n int64) float64 {
	if since.IsZero() {
		return 0
	}
	if prevAt.After(since) {
		if d := at.Sub(prevAt); d > 0 && n >= n0 {
			return float64(n-n0) / d.Seconds()
		}
		return 0
	}
	return float64(n) / max(at.Sub(since), minRateWindow).Seconds()
}

func sortRemotes(r []RemoteStats) {
	slices.SortFunc(r, func(a, b RemoteStats) int { return strings.Compare(a.ParticipantID, b.ParticipantID) })
}

// keyframeStart reports whether an RTP payload starts a keyframe: for VP8
// the first packet of a frame whose P bit is clear (RFC 7741), for H.264
// an IDR slice or a sequence parameter set, alone, in a STAP-A or at the
// start of an FU-A (RFC 6184).
func keyframeStart(mime string, p []byte) bool {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x07 != 0 {
			return false
		}
		i := 1
		if p[0]&0x80 != 0 { // X: extensions
			if len(p) < 2 {
				return false
			}
			ext := p[1]
			i = 2
			if ext&0x80 != 0 { // I: picture id, 7 or 15 bits
				if len(p) <= i {
					return false
				}
				if p[i]&0x80 != 0 {
					i++
				}
				i++
			}
			if ext&0x40 != 0 { // L
				i++
			}
			if ext&0x30 != 0 { // T or K
				i++
			}
		}
		return len(p) > i && p[i]&0x01 == 0
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		if len(p) < 2 {
			return false
		}
		switch t := p[0] & 0x1f; t {
		case 5, 7:
			return true
		case 24: // STAP-A
			for rest := p[1:]; len(rest) > 2; {
				n := int(rest[0])<<8 | int(rest[1])
				rest = rest[2:]
				if n == 0 || n > len(rest) {
					return false
				}
				if t := rest[0] & 0x1f; t == 5 || t == 7 {
					return true
				}
				rest = rest[n:]
			}
		case 28: // FU-A
			return p[1]&0x80 != 0 && p[1]&0x1f == 5
		}
	}
	return false
}
