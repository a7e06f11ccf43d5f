package bot

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestRatesSince(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	remote := func(id string, since time.Time, bytes, frames int64) RemoteStats {
		return RemoteStats{ParticipantID: id, Since: since, VideoBytes: bytes, VideoFrames: frames}
	}
	first := Stats{At: at(time.Second), Sent: Sent{Since: at(500 * time.Millisecond), VideoBytes: 40_000, AudioBytes: 10_000},
		Received: []RemoteStats{remote("a", at(750*time.Millisecond), 25_000, 5)}}
	second := Stats{At: at(2 * time.Second), Sent: Sent{Since: first.Sent.Since, VideoBytes: 130_000, AudioBytes: 20_000},
		Received: []RemoteStats{
			remote("a", first.Received[0].Since, 125_000, 35),
			remote("b", at(1500*time.Millisecond), 50_000, 15), // subscribed to since the first reading
		}}
	for _, tt := range []struct {
		name string
		s    Stats
		prev *Stats
		want Rates
	}{
		{"nothing sent or received yet", Stats{At: at(time.Second)}, nil, Rates{}},
		// The first reading covers the time since the media started: 50 kB
		// in 0.5 s sent, 25 kB and 5 frames in 0.25 s received.
		{"first reading", first, nil, Rates{SentBits: 800_000, ReceivedBits: 800_000, ReceivedFrames: 20}},
		// Then the interval since the reading before; b since its start.
		{"second reading", second, &first, Rates{SentBits: 800_000, ReceivedBits: 800_000 + 800_000, ReceivedFrames: 30 + 30}},
		// Media that started an instant before the reading is spread over
		// minRateWindow rather than over the instant.
		{"media just started", Stats{At: at(time.Second), Sent: Sent{Since: at(time.Second - time.Millisecond), VideoBytes: 5_000}},
			nil, Rates{SentBits: 200_000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.s.RatesSince(tt.prev)
			if !near(got.SentBits, tt.want.SentBits) || !near(got.ReceivedBits, tt.want.ReceivedBits) || !near(got.ReceivedFrames, tt.want.ReceivedFrames) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestRemoteSince checks that a publisher's counters say when its media
// started to arrive.
func TestRemoteSince(t *testing.T) {
	var c remoteCounters
	if s := c.snapshot(); !s.Since.IsZero() {
		t.Errorf("before any packet: Since got %v, want zero", s.Since)
	}
	before := time.Now()
	c.add(true, "video/VP8", &rtp.Packet{Header: rtp.Header{Marker: true}, Payload: []byte{0x10, 0x00, 0x00}})
	c.add(false, "audio/opus", &rtp.Packet{Payload: []byte{0x78, 0x01}})
	s := c.snapshot()
	if s.Since.Before(before) || s.Since.After(time.Now()) {
		t.Errorf("Since got %v, want the time of the first packet, after %v", s.Since, before)
	}
	if s.VideoBytes != 3 || s.AudioBytes != 2 || s.VideoFrames != 1 {
		t.Errorf("counts got %d video bytes, %d audio bytes, %d frames; want 3, 2, 1", s.VideoBytes, s.AudioBytes, s.VideoFrames)
	}
}

// TestSentSince checks that a bot's statistics say when its media started,
// and when they were read.
func TestSentSince(t *testing.T) {
	b := &Bot{}
	if s := b.Stats(); !s.Sent.Since.IsZero() {
		t.Errorf("before any media: Sent.Since got %v, want zero", s.Sent.Since)
	}
	before := time.Now()
	b.markSent()
	b.sentVideoBytes.Add(1000)
	start := time.Unix(0, b.sentSince.Load())
	b.markSent() // later media does not move the start
	s := b.Stats()
	if !s.Sent.Since.Equal(start) || s.Sent.Since.Before(before) {
		t.Errorf("Sent.Since got %v, want %v, the first media's time (after %v)", s.Sent.Since, start, before)
	}
	if s.At.Before(s.Sent.Since) {
		t.Errorf("At got %v, before Sent.Since %v", s.At, s.Sent.Since)
	}
}
