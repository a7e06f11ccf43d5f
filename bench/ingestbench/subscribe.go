package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/bench/internal/rtcpeer"
)

// arrival is a video frame (its marker packet) or an audio packet that a
// subscriber received: its RTP timestamp and when it arrived.
type arrival struct {
	ts  uint32
	at  time.Time
	key bool // a video frame with an IDR slice
}

// subscriber is a WHEP client of one publisher's video and audio, a pion
// peer connection that sends receiver reports, NACKs and TWCC feedback
// as a browser does. It notes every frame and audio packet it receives.
type subscriber struct {
	*rtcpeer.Peer
	firstVideo, firstAudio chan struct{}

	videoPackets, audioPackets atomic.Uint64
	videoBytes, audioBytes     atomic.Uint64 // RTP payloads

	mu     sync.Mutex
	frames []arrival
	audio  []arrival
}

// subscribe starts a WHEP session to publisherID. A publisher the server
// does not know yet (an encoder still connecting) is asked for again
// until the deadline.
func subscribe(ctx context.Context, hc *http.Client, base, token, publisherID string, deadline time.Time) (*subscriber, error) {
	for {
		s, err := subscribeOnce(ctx, hc, base, token, publisherID)
		var ref *rtcpeer.Refused
		if errors.As(err, &ref) && ref.Code == "PUBLISHER_NOT_FOUND" && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return s, err
	}
}

func subscribeOnce(ctx context.Context, hc *http.Client, base, token, publisherID string) (*subscriber, error) {
	peer, err := rtcpeer.New(rtcpeer.Options{Video: rtcpeer.H264, Audio: &rtcpeer.Opus, RTCPFeedback: true, TWCC: true})
	if err != nil {
		return nil, err
	}
	s := &subscriber{Peer: peer, firstVideo: make(chan struct{}), firstAudio: make(chan struct{})}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := peer.PC.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			peer.Close()
			return nil, err
		}
	}
	peer.PC.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			s.readVideo(tr)
		} else {
			s.readAudio(tr)
		}
	})
	offer, err := peer.Offer(ctx)
	if err == nil {
		_, _, err = peer.Exchange(ctx, hc, base+"/whep/"+publisherID, token, offer)
	}
	if err != nil {
		peer.Close()
		return nil, err
	}
	return s, nil
}

func (s *subscriber) readVideo(tr *webrtc.TrackRemote) {
	var once sync.Once
	key := false
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		s.videoPackets.Add(1)
		s.videoBytes.Add(uint64(len(p.Payload)))
		key = key || hasIDR(p.Payload)
		if !p.Marker {
			continue
		}
		s.mu.Lock()
		s.frames = append(s.frames, arrival{ts: p.Timestamp, at: now, key: key})
		s.mu.Unlock()
		key = false
		once.Do(func() { close(s.firstVideo) })
	}
}

func (s *subscriber) readAudio(tr *webrtc.TrackRemote) {
	var once sync.Once
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		s.audioPackets.Add(1)
		s.audioBytes.Add(uint64(len(p.Payload)))
		s.mu.Lock()
		s.audio = append(s.audio, arrival{ts: p.Timestamp, at: now})
		s.mu.Unlock()
		once.Do(func() { close(s.firstAudio) })
	}
}

// waitMedia waits for the first video frame and audio packet.
func (s *subscriber) waitMedia(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for _, ch := range []chan struct{}{s.firstVideo, s.firstAudio} {
		select {
		case <-ch:
		case <-t.C:
			return fmt.Errorf("no video or no audio within %v", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// received returns what arrived so far.
func (s *subscriber) received() (frames, audio []arrival) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]arrival(nil), s.frames...), append([]arrival(nil), s.audio...)
}

// counts is what a subscriber has received so far.
type counts struct {
	videoPackets, audioPackets, videoBytes, audioBytes, frames, wire uint64
}

func (s *subscriber) counts() counts {
	s.mu.Lock()
	frames := len(s.frames)
	s.mu.Unlock()
	return counts{videoPackets: s.videoPackets.Load(), audioPackets: s.audioPackets.Load(),
		videoBytes: s.videoBytes.Load(), audioBytes: s.audioBytes.Load(), frames: uint64(frames), wire: s.WireBytes()}
}

// hasIDR reports whether an H.264 RTP payload (RFC 6184) holds an IDR
// slice or its start: a single NAL unit, a STAP-A or the first fragment
// of an FU-A.
func hasIDR(payload []byte) bool {
	const idr, stapA, fuA = 5, 24, 28
	if len(payload) < 2 {
		return false
	}
	switch payload[0] & 0x1f {
	case idr:
		return true
	case stapA:
		for b := payload[1:]; len(b) > 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				return false
			}
			if b[2]&0x1f == idr {
				return true
			}
			b = b[2+n:]
		}
	case fuA:
		return payload[1]&0x80 != 0 && payload[1]&0x1f == idr
	}
	return false
}
