package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/bench/internal/rtcpeer"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// The record phases' publishers send real media, as a browser does:
// H.264 constrained baseline and Opus, from a clip ffmpeg encodes once,
// sent over and over with sequence numbers and timestamps going on.
var h264, opus = rtcpeer.H264, rtcpeer.Opus

// clip is the media of the record phases, and what tells its packets
// apart. An H.264 payload cannot carry the bench's trailer (the recording
// would store it in the video), and the SFU renumbers packets so that a
// subscriber's stream has no gap where it dropped some: a subscriber
// finds which packet of the clip it got by its payload, which the SFU
// never changes, and which time round by its publisher's send log.
type clip struct {
	media         testmedia.Media
	payloads      [][]byte         // the video payloads of one loop, in order
	index         map[uint64][]int // a payload's hash → its places in payloads
	seed          maphash.Seed
	duration      time.Duration
	width, height int
	videoBytes    int // the video payloads of one loop
	audioBytes    int
}

// newClip encodes the clip in dir.
func newClip(dir string, o *options) (*clip, error) {
	m, err := testmedia.EncodeClip(dir, testmedia.Clip{Seconds: int(o.clipLength / time.Second),
		Width: o.clipWidth, Height: o.clipHeight, VideoKbps: o.stream.bitrate / 1000})
	if err != nil {
		return nil, err
	}
	return clipOf(m, o.stream.payloadSize, o.clipWidth, o.clipHeight), nil
}

// clipOf indexes the video payloads of m, cut to mtu.
func clipOf(m testmedia.Media, mtu, width, height int) *clip {
	l := testmedia.NewRTPLoop(m, mtu)
	c := &clip{media: m, payloads: l.VideoPayloads(), index: map[uint64][]int{}, seed: maphash.MakeSeed(),
		duration: l.Duration(), width: width, height: height}
	for i, p := range c.payloads {
		h := maphash.Bytes(c.seed, p)
		c.index[h] = append(c.index[h], i)
		c.videoBytes += len(p)
	}
	for i, p := range m.Opus {
		if time.Duration(i)*20*time.Millisecond < c.duration {
			c.audioBytes += len(p)
		}
	}
	return c
}

// videoKbps and audioKbps are the clip's bit rates of RTP payload.
func (c *clip) videoKbps() float64 { return float64(c.videoBytes) * 8 / c.duration.Seconds() / 1000 }
func (c *clip) audioKbps() float64 { return float64(c.audioBytes) * 8 / c.duration.Seconds() / 1000 }

// packetsPerSecond is the video's packet rate.
func (c *clip) packetsPerSecond() float64 { return float64(len(c.payloads)) / c.duration.Seconds() }

// sendLog is a publisher's video packets: how many it sent (the counter
// of the next), when it sent each of the last sendLogSize, and which
// counter each packet of the clip was last sent with.
type sendLog struct {
	sent  atomic.Uint64
	times [sendLogSize]atomic.Int64
	last  []atomic.Uint64 // per packet of the clip: 1 + its last counter; 0: not sent yet
}

func (c *clip) newSendLog() *sendLog {
	return &sendLog{last: make([]atomic.Uint64, len(c.payloads))}
}

// note logs that counter is the clip's packet k, sent at now.
func (l *sendLog) note(counter uint64, k int, now time.Time) {
	l.times[counter%sendLogSize].Store(now.UnixNano())
	l.last[k].Store(counter + 1)
	l.sent.Store(counter + 1)
}

const sendLogSize = 1 << 15 // two minutes of video at 2.5 Mbps

// video returns what a subscriber of the publisher whose log this is
// receives. A payload is the packet of the clip it equals (the parameter
// sets repeat at each keyframe: then the one of them sent last), as it
// was last sent: right for every packet that arrives before its publisher
// sends it again, a loop of the clip later (the parameter sets: a
// keyframe later).
func (c *clip) video(log *sendLog) videoSpec {
	return videoSpec{codec: h264, ident: func(payload []byte) (uint64, int64, bool) {
		var last uint64 // 1 + the counter
		for _, k := range c.index[maphash.Bytes(c.seed, payload)] {
			if bytes.Equal(c.payloads[k], payload) {
				last = max(last, log.last[k].Load())
			}
		}
		if last == 0 {
			return 0, 0, false
		}
		return last - 1, log.times[(last-1)%sendLogSize].Load(), true
	}}
}

// clipPublisher is a WHIP client that sends the clip, video and audio.
type clipPublisher struct {
	*rtcpeer.Peer
	video, audio *webrtc.TrackLocalStaticRTP
	log          *sendLog
	keyAsked     atomic.Bool
	keyRequests  atomic.Uint64 // PLIs and FIRs received
	location     string        // the WHIP session's URL
	started      time.Time
	stopped      time.Time
	stop, done   chan struct{}
}

// publishClip starts a WHIP session that sends the clip once connected,
// each frame's packets paced at pacing × the average rate (0: at once).
func publishClip(ctx context.Context, client *http.Client, base, token string, c *clip, mtu int, pacing float64, rtcpFeedback bool) (*clipPublisher, error) {
	p, err := newPeer(rtcpeer.Options{Video: h264, Audio: &opus, RTCPFeedback: rtcpFeedback})
	if err != nil {
		return nil, err
	}
	pub := &clipPublisher{Peer: p, log: c.newSendLog(), stop: make(chan struct{}), done: make(chan struct{})}
	if pub.video, err = webrtc.NewTrackLocalStaticRTP(h264.RTPCodecCapability, "video", "sfubench"); err == nil {
		pub.audio, err = webrtc.NewTrackLocalStaticRTP(opus.RTPCodecCapability, "audio", "sfubench")
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	for _, t := range []*webrtc.TrackLocalStaticRTP{pub.video, pub.audio} {
		tr, err := p.PC.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.Close()
			return nil, err
		}
		go func() {
			for {
				pkts, _, err := tr.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						pub.keyAsked.Store(true)
						pub.keyRequests.Add(1)
					}
				}
			}
		}()
	}
	offer, err := p.Offer(ctx)
	var answer string
	if err == nil {
		answer, pub.location, err = p.Exchange(ctx, client, base+"/whip", token, offer)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("WHIP: %w", err)
	}
	if !strings.Contains(answer, "H264/90000") {
		p.Close()
		return nil, errors.New("WHIP: the answer has no H.264")
	}
	select {
	case <-p.Connected:
	case <-time.After(10 * time.Second):
		p.Close()
		return nil, errors.New("WHIP: the publisher did not connect")
	case <-ctx.Done():
		p.Close()
		return nil, ctx.Err()
	}
	pub.started = time.Now()
	go pub.run(testmedia.NewRTPLoop(c.media, mtu), pacing)
	return pub, nil
}

// run sends the clip's packets when they are due. A keyframe request is
// answered with the clip's next keyframe at the next frame, as an encoder
// does. A video packet's counter and send time are logged before it is
// written, so that a subscriber never gets a packet its publisher has not
// logged.
func (p *clipPublisher) run(l *testmedia.RTPLoop, pacing float64) {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var counter uint64
	for {
		if p.keyAsked.Swap(false) {
			l.KeyframeNext()
		}
		u := l.Next()
		var gap time.Duration
		if u.Video && pacing > 0 {
			gap = time.Duration(float64(time.Second/30) / pacing / float64(len(u.Packets)))
		}
		for i, pkt := range u.Packets {
			if d := time.Until(p.started.Add(u.At + time.Duration(i)*gap)); d > 0 {
				timer.Reset(d)
				select {
				case <-p.stop:
					return
				case <-timer.C:
				}
			}
			if !u.Video {
				p.audio.WriteRTP(pkt)
				continue
			}
			p.log.note(counter, u.Index+i, time.Now())
			counter++
			p.video.WriteRTP(pkt)
		}
	}
}

// end stops sending and ends the WHIP session with a DELETE, as a client
// that leaves does: the server ends the publication (and its recording)
// at once.
func (p *clipPublisher) end(ctx context.Context, client *http.Client) error {
	p.halt()
	if p.location == "" {
		return errors.New("WHIP: the answer gave no Location")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.location, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("WHIP DELETE: %s", resp.Status)
	}
	return nil
}

// halt stops sending.
func (p *clipPublisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		<-p.done
		p.stopped = time.Now()
	}
}

func (p *clipPublisher) close() {
	p.halt()
	p.Peer.Close()
}
