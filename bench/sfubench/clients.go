package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/bench/internal/rtcpeer"
)

// vp8 is the codec of the bench's publisher and subscribers, with the
// feedback a browser offers.
var vp8 = rtcpeer.VP8

// videoSpec is the video a subscriber receives: the codec it offers, and
// how it tells which of its publisher's packets one is.
type videoSpec struct {
	codec webrtc.RTPCodecParameters
	// ident returns the publisher's counter of the packet with this
	// payload and when it was sent (unix nanoseconds).
	ident func(payload []byte) (counter uint64, sent int64, ok bool)
	// lower, for a simulcast publisher, returns when a packet of one of
	// its lower layers was sent: ident counts the top layer's, and a
	// subscriber is expected to get that one (see note).
	lower func(payload []byte) (sent int64, ok bool)
}

// vp8Video is the synthetic VP8 stream's: each payload ends with the
// bench's trailer.
var vp8Video = videoSpec{codec: vp8, ident: readTrailer}

// vp8Simulcast is the synthetic VP8 stream's in simulcast: the top
// layer's trailer is vp8Video's, the lower layers' say which they are.
var vp8Simulcast = videoSpec{codec: vp8, ident: readTrailer, lower: readLowerTrailer}

// note counts a payload received at now into t. Loss is counted on the
// publisher's counter, which is that of the top layer of a simulcast
// publisher: each layer has its own counter, and one subscriber gets one
// layer at a time, switching at keyframes. A subscriber with no size
// limit on a path that carries every layer gets the top one; a packet of
// a lower layer counts as an arrival (and its latency is measured), and
// the top layer's packets sent meanwhile count as lost, which is what
// the subscriber's viewer misses. rtx: it came in the retransmission
// stream.
func (v videoSpec) note(t *tally, payload []byte, now time.Time, rtx bool) {
	if c, sent, ok := v.ident(payload); ok {
		t.note(c, true, sent, now, rtx)
	} else if v.lower != nil {
		if sent, ok := v.lower(payload); ok {
			t.note(0, false, sent, now, rtx)
		}
	}
}

// newPeer returns a peer as o says, on a socket with the bench's buffer
// sizes.
func newPeer(o rtcpeer.Options) (*rtcpeer.Peer, error) {
	o.SocketBuffer = socketBuffer
	return rtcpeer.New(o)
}

// publisher is a WHIP client that sends the synthetic stream: one, or
// with simulcast one per layer.
type publisher struct {
	*rtcpeer.Peer
	layers []*sender // lowest first; one without simulcast
	sender *sender   // the top layer's, whose counter subscribers count
}

// keyRequests returns the keyframe requests the publisher received, for
// all its layers.
func (p *publisher) keyRequests() uint64 {
	var n uint64
	for _, l := range p.layers {
		n += l.keyRequests.Load()
	}
	return n
}

// publish starts a WHIP session; the stream starts once connected. With
// simulcast, the video goes as the layers of simulcastRIDs (RFC 8853):
// one track each, its own SSRC and sequence, the first added as the
// track and the others as encodings of its sender.
func publish(ctx context.Context, client *http.Client, base, token string, cfg streamConfig, rtcpFeedback, simulcast bool) (*publisher, error) {
	p, err := newPeer(rtcpeer.Options{Video: vp8, RTCPFeedback: rtcpFeedback, Simulcast: simulcast})
	if err != nil {
		return nil, err
	}
	rids := []string{""}
	if simulcast {
		rids = simulcastRIDs
	}
	tracks := make([]*webrtc.TrackLocalStaticRTP, len(rids))
	for i, rid := range rids {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if rid != "" {
			opts = append(opts, webrtc.WithRTPStreamID(rid))
		}
		if tracks[i], err = webrtc.NewTrackLocalStaticRTP(vp8.RTPCodecCapability, "video", "sfubench", opts...); err != nil {
			p.Close()
			return nil, err
		}
	}
	tr, err := p.PC.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		p.Close()
		return nil, err
	}
	for _, t := range tracks[1:] {
		if err := tr.Sender().AddEncoding(t); err != nil {
			p.Close()
			return nil, err
		}
	}
	pub := &publisher{Peer: p}
	// The rids' header extension, and the MID's, are known once
	// negotiated: the layers start sending only then.
	var tags struct{ mid, rid uint8 }
	for i, rid := range rids {
		cfg := cfg
		if simulcast {
			cfg = cfg.layer(i)
		}
		track := tracks[i]
		var write func([]byte) error
		if rid == "" {
			write = func(raw []byte) error {
				_, err := track.Write(raw)
				return err
			}
		} else {
			// A layer's packets carry the MID and their rid, by which the
			// server tells the layers apart. A browser stops sending them
			// once the server's reports acknowledge the stream; on every
			// packet is simpler.
			mid, ridValue := []byte(nil), []byte(rid)
			write = func(raw []byte) error {
				var pkt rtp.Packet
				if err := pkt.Unmarshal(raw); err != nil {
					return err
				}
				if mid == nil {
					mid = []byte(tr.Mid())
				}
				if err := pkt.Header.SetExtension(tags.mid, mid); err != nil {
					return err
				}
				if err := pkt.Header.SetExtension(tags.rid, ridValue); err != nil {
					return err
				}
				return track.WriteRTP(&pkt)
			}
		}
		pub.layers = append(pub.layers, newSender(cfg, write))
	}
	pub.sender = pub.layers[len(pub.layers)-1]
	// Keyframe requests (the SFU's PLI when a subscriber starts, or moves
	// to another layer) are answered with a keyframe at the layer's next
	// frame, as an encoder does.
	for i, rid := range rids {
		snd := pub.layers[i]
		read := tr.Sender().ReadRTCP
		if rid != "" {
			read = func() ([]rtcp.Packet, interceptor.Attributes, error) { return tr.Sender().ReadSimulcastRTCP(rid) }
		}
		go func() {
			for {
				pkts, _, err := read()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						snd.keyAsked.Store(true)
						snd.keyRequests.Add(1)
					}
				}
			}
		}()
	}
	offer, err := p.Offer(ctx)
	if err == nil {
		_, _, err = p.Exchange(ctx, client, base+"/whip", token, offer)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("WHIP: %w", err)
	}
	if simulcast {
		for _, e := range tr.Sender().GetParameters().HeaderExtensions {
			switch e.URI {
			case sdp.SDESMidURI:
				tags.mid = uint8(e.ID)
			case sdp.SDESRTPStreamIDURI:
				tags.rid = uint8(e.ID)
			}
		}
		if tags.mid == 0 || tags.rid == 0 {
			p.Close()
			return nil, errors.New("WHIP: the answer has no MID or rid header extension for simulcast")
		}
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
	for _, l := range pub.layers {
		go l.run()
	}
	return pub, nil
}

func (p *publisher) close() {
	for _, l := range p.layers {
		l.close()
	}
	p.Peer.Close()
}

// subscriber is a WHEP client that counts what it receives.
type subscriber struct {
	*rtcpeer.Peer
	start time.Time // when the WHEP request began
	tally tally
}

// subscribe starts a WHEP session to the publisher's video; with twcc it
// negotiates what a browser does for the server to estimate its
// bandwidth (see rtcpeer.Options).
func subscribe(ctx context.Context, client *http.Client, base, token, publisherID string, rtcpFeedback, twcc bool, video videoSpec) (*subscriber, error) {
	p, err := newPeer(rtcpeer.Options{Video: video.codec, RTCPFeedback: rtcpFeedback, TWCC: twcc})
	if err != nil {
		return nil, err
	}
	s := &subscriber{Peer: p}
	if _, err := p.PC.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		p.Close()
		return nil, err
	}
	p.PC.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, attrs, err := tr.Read(buf)
			if err != nil {
				return
			}
			if p, err := rtpPayload(buf[:n]); err == nil {
				// pion hands a packet of the retransmission stream on
				// as the packet it repeats, marked.
				video.note(&s.tally, p, time.Now(), attrs != nil && attrs.Get(webrtc.AttributeRtxSsrc) != nil)
			}
		}
	})
	offer, err := p.Offer(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	s.start = time.Now()
	if _, _, err := p.Exchange(ctx, client, base+"/whep/"+publisherID, token, offer); err != nil {
		p.Close()
		return nil, err
	}
	return s, nil
}

// receiver is a subscriber of either kind.
type receiver interface {
	counts() *tally
	wire() uint64 // bytes received on the socket
	began() time.Time
	close()
}

func (s *subscriber) counts() *tally       { return &s.tally }
func (s *subscriber) wire() uint64         { return s.WireBytes() }
func (s *subscriber) began() time.Time     { return s.start }
func (s *subscriber) close()               { s.Close() }
func (s *liteSubscriber) counts() *tally   { return &s.tally }
func (s *liteSubscriber) wire() uint64     { return s.bytes.Load() }
func (s *liteSubscriber) began() time.Time { return s.start }

// sender sends the stream's packets when they are due.
type sender struct {
	cfg         streamConfig
	write       func([]byte) error
	keyAsked    atomic.Bool
	keyRequests atomic.Uint64 // PLIs and FIRs received
	sent        atomic.Uint64 // packets sent: the counter of the next one
	stop        chan struct{}
	done        chan struct{}
}

func newSender(cfg streamConfig, write func([]byte) error) *sender {
	return &sender{cfg: cfg, write: write, stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *sender) run() {
	defer close(s.done)
	st := newStream(s.cfg, time.Now())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if s.keyAsked.Swap(false) {
			st.requestKeyframe()
		}
		for _, p := range st.nextFrame() {
			if d := time.Until(p.due); d > 0 {
				timer.Reset(d)
				select {
				case <-s.stop:
					return
				case <-timer.C:
				}
			}
			stamp(p.raw, time.Now())
			s.write(p.raw)
			s.sent.Store(p.counter + 1)
		}
	}
}

func (s *sender) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
