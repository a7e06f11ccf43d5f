// Package publish sends a clip at real-time pace, as a live encoder or a
// browser sends its picture, through a connection of the caller's (RTMP)
// or over WHIP with a pion peer connection, and notes when it sent each
// unit of media. It serves bench/ingestbench and bench/compositionbench.
package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/pion/rtp"
	rtpcodecs "github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/rtcpeer"
)

// Writer is a publisher's connection: it writes one video frame or one
// audio unit (an AAC frame or an Opus packet) stamped pts.
type Writer interface {
	WriteVideo(pts time.Duration, f clip.Frame) error
	WriteAudio(pts time.Duration, data []byte) error
}

// Source is what a publisher sends: video frame i (pts
// clip.FramePTS(i)) and audio unit j (pts j × the Log's Unit). Send asks
// for each when it is due; a Source that takes its time over one delays
// its write, and what follows is sent as soon as it is due.
type Source interface {
	Video(i int) clip.Frame
	Audio(j int) []byte
}

// Loop sends c's frames and the audio units over and over.
func Loop(c *clip.Clip, audio [][]byte) Source { return loop{c, audio} }

type loop struct {
	c     *clip.Clip
	audio [][]byte
}

func (l loop) Video(i int) clip.Frame { return l.c.Frames[i%len(l.c.Frames)] }
func (l loop) Audio(j int) []byte     { return l.audio[j%len(l.audio)] }

// Log is when a publisher sent each video frame (frame i has pts
// clip.FramePTS(i)) and each audio unit (unit j has pts j × Unit), noted
// just before the write.
type Log struct {
	Unit time.Duration // of audio: clip.OpusPacket or clip.AACFrameTime

	mu    sync.Mutex
	video []Sent
	audio []time.Time
}

// Sent is the send of one video frame.
type Sent struct {
	At  time.Time
	Key bool
}

// Snapshot returns what was sent so far.
func (l *Log) Snapshot() ([]Sent, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Sent(nil), l.video...), append([]time.Time(nil), l.audio...)
}

// Send writes src's video and audio to w at real-time pace until ctx
// ends or a write fails: each unit is written when its pts is due after
// the start, and log notes when, just before the write.
func Send(ctx context.Context, src Source, w Writer, log *Log) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	var i, j int // the next video frame and audio unit
	for {
		vAt, aAt := clip.FramePTS(i), time.Duration(j)*log.Unit
		due := min(vAt, aAt)
		if d := time.Until(start.Add(due)); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		var err error
		if vAt <= aAt {
			f := src.Video(i) // which may take its time: the log notes the write's
			now := time.Now()
			log.mu.Lock()
			log.video = append(log.video, Sent{At: now, Key: f.Key})
			log.mu.Unlock()
			err = w.WriteVideo(vAt, f)
			i++
		} else {
			now := time.Now()
			log.mu.Lock()
			log.audio = append(log.audio, now)
			log.mu.Unlock()
			err = w.WriteAudio(aAt, src.Audio(j))
			j++
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// MTU is the largest RTP payload of the WHIP publishers, as the server
// packetizes ingested video.
const MTU = 1200

// WHIP publishes H.264 and Opus over WHIP, as a browser does. It sends
// each frame's packets at once (as RTMP writes a frame at once), and does
// not answer keyframe requests, as an RTMP encoder cannot: the clips'
// keyframes come at their key interval.
type WHIP struct {
	*rtcpeer.Peer
	video, audio *webrtc.TrackLocalStaticRTP
	payloader    rtpcodecs.H264Payloader
	vseq, aseq   uint16
}

// DialWHIP starts a WHIP session to the server at base with a
// participant token, and waits until it is connected.
func DialWHIP(ctx context.Context, hc *http.Client, base, token string) (*WHIP, error) {
	peer, err := rtcpeer.New(rtcpeer.Options{Video: rtcpeer.H264, Audio: &rtcpeer.Opus, RTCPFeedback: true})
	if err != nil {
		return nil, err
	}
	p := &WHIP{Peer: peer}
	if p.video, err = webrtc.NewTrackLocalStaticRTP(rtcpeer.H264.RTPCodecCapability, "video", "bench"); err == nil {
		p.audio, err = webrtc.NewTrackLocalStaticRTP(rtcpeer.Opus.RTPCodecCapability, "audio", "bench")
	}
	if err != nil {
		peer.Close()
		return nil, err
	}
	for _, t := range []*webrtc.TrackLocalStaticRTP{p.video, p.audio} {
		tr, err := peer.PC.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			peer.Close()
			return nil, err
		}
		go func() {
			// The interceptors read the server's RTCP (NACKs) here.
			for {
				if _, _, err := tr.Sender().ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	offer, err := peer.Offer(ctx)
	if err == nil {
		_, _, err = peer.Exchange(ctx, hc, base+"/whip", token, offer)
	}
	if err != nil {
		peer.Close()
		return nil, fmt.Errorf("WHIP: %w", err)
	}
	select {
	case <-peer.Connected:
	case <-time.After(10 * time.Second):
		peer.Close()
		return nil, errors.New("WHIP: the publisher did not connect")
	case <-ctx.Done():
		peer.Close()
		return nil, ctx.Err()
	}
	return p, nil
}

// WriteVideo sends a frame's packets (RFC 6184, packetization mode 1).
func (p *WHIP) WriteVideo(pts time.Duration, f clip.Frame) error {
	ts := uint32(pts * 90000 / time.Second)
	payloads := p.payloader.Payload(MTU, clip.AnnexB(f.NALUs))
	for i, payload := range payloads {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: p.vseq, Timestamp: ts,
			Marker: i == len(payloads)-1}, Payload: payload}
		p.vseq++
		if err := p.video.WriteRTP(pkt); err != nil {
			return err
		}
	}
	return nil
}

// WriteAudio sends an Opus packet.
func (p *WHIP) WriteAudio(pts time.Duration, data []byte) error {
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: p.aseq,
		Timestamp: uint32(pts * clip.SampleRate / time.Second)}, Payload: data}
	p.aseq++
	return p.audio.WriteRTP(pkt)
}
