package sfu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// RemoteFeeds carries feeds between the nodes of a cluster: a replica here
// whose source publishes on another node subscribes there, over a peer
// connection whose offer and answer RemoteFeeds carries.
type RemoteFeeds interface {
	// Remote reports whether the stage's media is hosted on another node.
	Remote(ctx context.Context, stage ivsrt.StageARN) (bool, error)

	// OpenFeed has the node hosting the stage answer offer with a feed of
	// participant id's publication (that node's Server.AnswerFeed); notify
	// is told, in order, what the feed does. end asks that node to end
	// the feed. Returns what AnswerFeed returns.
	OpenFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, live bool, offer string,
		notify func(ivsrt.FeedEvent)) (answer string, info ivsrt.FeedInfo, end func(), err error)
}

// SetRemoteFeeds makes replicas whose source publishes on another node
// reach it through r; without, every source is looked for here.
func (s *Server) SetRemoteFeeds(r RemoteFeeds) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remote = r
}

// feedLink is a replica's end of a feed.
type feedLink interface {
	// info is what the replica learns of the publication.
	info() ivsrt.FeedInfo
	// attach starts feeding the replica's sources. No lock is held.
	attach(sink *replicaSink)
	// release lets the feed's events through to the replica.
	release()
	// close ends the feed. No lock is held.
	close()
}

// replicaSink is where a feed writes: the sources of the replica's
// publication, by kind.
type replicaSink struct {
	sources map[webrtc.RTPCodecType]*forward.Source
}

// openFeed opens a feed of participant id's publication in the stage, on
// this node or, with RemoteFeeds, on the one hosting the stage. onEvent
// is told, in order, what the feed does, once the link is released.
func (s *Server) openFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, live bool,
	onEvent func(feedLink, ivsrt.FeedEvent)) (feedLink, error) {
	s.mu.Lock()
	remote := s.remote
	s.mu.Unlock()
	if remote != nil {
		elsewhere, err := remote.Remote(ctx, stage)
		if err != nil {
			return nil, err
		}
		if elsewhere {
			return s.openRemoteFeed(ctx, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}, func(ctx context.Context, offer string, notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
				return remote.OpenFeed(ctx, stage, id, live, offer, notify)
			}, onEvent)
		}
	}
	link := &localLink{s: s}
	f, info, sources, err := s.registerFeed(stage, id, live, false, func(ev ivsrt.FeedEvent) { onEvent(link, ev) })
	if err != nil {
		return nil, err
	}
	link.f, link.inf, link.sources = f, info, sources
	return link, nil
}

// localLink is a feed on this node: a bridge.
type localLink struct {
	s       *Server
	f       *feed
	inf     ivsrt.FeedInfo
	sources map[webrtc.RTPCodecType]*forward.Source
}

func (l *localLink) info() ivsrt.FeedInfo     { return l.inf }
func (l *localLink) attach(sink *replicaSink) { l.s.bridge(l.f, l.sources, sink) }
func (l *localLink) release()                 { l.f.out.release() }

func (l *localLink) close() {
	st := l.f.st
	st.lock()
	st.endFeed(l.f, false)
	st.unlock()
}

// remoteLink is a feed on another node: a peer connection from here,
// which subscribes there as a WHEP client would.
type remoteLink struct {
	pc  *webrtc.PeerConnection
	inf ivsrt.FeedInfo
	end func()
	out *notifier[ivsrt.FeedEvent]

	sinkReady chan struct{} // closed once sink is set
	sink      *replicaSink

	mu        sync.Mutex
	simulcast *forward.Upstream // of a simulcast video, once its first layer arrived
	done      chan struct{}     // closed by close
	closeOnce sync.Once
}

func (l *remoteLink) info() ivsrt.FeedInfo { return l.inf }
func (l *remoteLink) release()             { l.out.release() }

func (l *remoteLink) attach(sink *replicaSink) {
	l.sink = sink
	close(l.sinkReady)
}

func (l *remoteLink) close() {
	l.closeOnce.Do(func() {
		close(l.done)
		l.pc.Close()
		if l.end != nil {
			l.end()
		}
	})
}

// openFeedFunc has the node hosting a publication answer a feed's offer:
// RemoteFeeds.OpenFeed, or EdgeOrigins.OpenEdgeFeed.
type openFeedFunc func(ctx context.Context, offer string, notify func(ivsrt.FeedEvent)) (answer string, info ivsrt.FeedInfo, end func(), err error)

// openRemoteFeed offers to receive kinds of a publication, and has the
// node hosting it answer through open.
func (s *Server) openRemoteFeed(ctx context.Context, kinds []webrtc.RTPCodecType, open openFeedFunc, onEvent func(feedLink, ivsrt.FeedEvent)) (feedLink, error) {
	api, err := s.clientAPI()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("replica feed: create peer connection: %w", err)
	}
	link := &remoteLink{pc: pc, sinkReady: make(chan struct{}), done: make(chan struct{})}
	link.out = newNotifier(func(ev ivsrt.FeedEvent) { onEvent(link, ev) })
	fail := func(err error) (feedLink, error) {
		pc.Close()
		return nil, err
	}
	// Audio, and video: one track, or one per layer of a simulcast
	// video (FeedInfo.Layers).
	var receive []webrtc.RTPCodecType
	for _, kind := range kinds {
		n := 1
		if kind == webrtc.RTPCodecTypeVideo {
			n = forward.MaxLayers
		}
		for range n {
			receive = append(receive, kind)
		}
	}
	for _, kind := range receive {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(fmt.Errorf("replica feed: %w", err))
		}
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { link.track(t, r) })
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		if state == webrtc.PeerConnectionStateFailed || state == webrtc.PeerConnectionStateClosed {
			link.out.post(ivsrt.FeedEnded)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(fmt.Errorf("replica feed: create offer: %w", err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(fmt.Errorf("replica feed: set offer: %w", err))
	}
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	answer, info, end, err := open(ctx, pc.LocalDescription().SDP, link.out.post)
	if err != nil {
		return fail(err)
	}
	link.inf, link.end = info, end
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		link.close()
		return nil, fmt.Errorf("replica feed: answer of the source's node: %w", err)
	}
	return link, nil
}

// track writes what the source's node sends of one kind into the
// replica's source of that kind, until the feed ends or another takes
// over; the replica's subscribers' keyframe requests go back as PLIs.
func (l *remoteLink) track(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	select {
	case <-l.sinkReady:
	case <-l.done:
		return
	}
	src := l.sink.sources[t.Kind()]
	if src == nil {
		return
	}
	pc, ssrc := l.pc, uint32(t.SSRC())
	askKeyframe := func() {
		pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
	var out interface{ WriteRTP(*rtp.Packet) error }
	if rid := l.layerOf(t.Kind(), r); rid != "" {
		// A layer of a simulcast video: the layers share an upstream.
		l.mu.Lock()
		if l.simulcast == nil {
			l.simulcast = src.AttachSimulcast(t.Codec(), l.inf.Layers)
		}
		up := l.simulcast
		l.mu.Unlock()
		layer, err := up.AddLayer(rid, askKeyframe)
		if err != nil {
			return
		}
		out = layer
	} else {
		out = src.Attach(t.Codec(), askKeyframe)
	}
	// Reading RTCP lets the interceptors see the sender reports.
	go func() {
		for {
			if _, _, err := r.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if err := out.WriteRTP(pkt); errors.Is(err, forward.ErrDetached) {
			return
		}
	}
}

// layerOf returns the rid of the simulcast layer the feed sends on the
// receiver r: the feed's video tracks are its layers, in the order of
// FeedInfo.Layers; "" for a video of one layer, or audio.
func (l *remoteLink) layerOf(kind webrtc.RTPCodecType, r *webrtc.RTPReceiver) string {
	if kind != webrtc.RTPCodecTypeVideo || len(l.inf.Layers) == 0 {
		return ""
	}
	i := 0
	for _, tr := range l.pc.GetTransceivers() {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			continue
		}
		if tr.Receiver() == r {
			if i < len(l.inf.Layers) {
				return l.inf.Layers[i]
			}
			return ""
		}
		i++
	}
	return ""
}

// clientAPI returns the WebRTC API of the peer connections a replica
// opens to other nodes. They are ICE-controlling clients, each on an
// ephemeral UDP port of its own: the node's shared media port tells its
// peer connections apart by the remote address, which all of them would
// share if they used it to reach the same node.
func (s *Server) clientAPI() (*webrtc.API, error) {
	s.clientOnce.Do(func() {
		s.client, s.clientErr = s.newClientAPI()
	})
	return s.client, s.clientErr
}

func (s *Server) newClientAPI() (*webrtc.API, error) {
	var se webrtc.SettingEngine
	se.LoggerFactory = pionLoggerFactory{s.logger}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(s.iceDisconnected, s.iceFailed, s.iceKA)
	se.SetSRTPReplayProtectionWindow(srtpReplayWindow)
	if host, _, err := net.SplitHostPort(s.cfg.UDPAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			// From the address media is bound to, as the server's own.
			se.SetIPFilter(func(candidate net.IP) bool { return candidate.Equal(ip) })
			se.SetIncludeLoopbackCandidate(ip.IsLoopback())
		}
	}
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(codecOpus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("sfu: register codec: %w", err)
	}
	for _, c := range []webrtc.RTPCodecParameters{codecVP8, codecH264ConstrainedBaseline, codecH264Baseline} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("sfu: register codec: %w", err)
		}
	}
	// The client asks for what it loses, as a publisher's connection does.
	var ir interceptor.Registry
	generator, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, fmt.Errorf("sfu: configure NACK: %w", err)
	}
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	ir.Add(generator)
	if err := webrtc.ConfigureRTCPReports(&ir); err != nil {
		return nil, fmt.Errorf("sfu: configure RTCP reports: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(se)), nil
}
