package sfu

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// A feed carries a publication's media to a replica (see replica.go): it
// is an internal subscriber of the source stage, with a down track of
// each of the publication's sources, and no participant of its own.
//
// When the replica is on this node, the feed is a bridge: each down track
// is bound to a writer that hands its packets to the replica's source in
// the destination stage, in process, keyframe requests going the other
// way as calls. When the replica is on another node, the feed is a peer
// connection to that node, which subscribes like a WHEP client (see
// remote.go). Either way the down track does what it does for any
// subscriber: it starts at a keyframe, keeps one continuous stream
// across the publisher's reconnections, and drops rather than waits
// when the replica falls behind.
//
// A feed tells the replica what its source does (an ivsrt.FeedEvent), in
// order and without any lock held.

// feed is one internal subscriber of a publication.
type feed struct {
	id  string
	st  *stage
	pub *publication

	// Guarded by st.mu.
	downs []*forward.DownTrack
	pc    *webrtc.PeerConnection // remote feeds
	ended bool

	out *notifier[ivsrt.FeedEvent]
}

// notifier calls fn with what it is posted, in order, one at a time, on
// a goroutine of its own and never with a lock held. Posting never
// blocks: it may be done with a stage locked. It holds what is posted
// until released. After an event final says is the last, nothing more is
// delivered.
type notifier[T any] struct {
	fn    func(T)
	final func(T) bool

	mu       sync.Mutex
	queue    []T
	held     bool
	running  bool
	finished bool // the last event was delivered: nothing more is
}

func newNotifier(fn func(ivsrt.FeedEvent)) *notifier[ivsrt.FeedEvent] {
	return &notifier[ivsrt.FeedEvent]{fn: fn, held: true, final: func(ev ivsrt.FeedEvent) bool {
		return ev == ivsrt.FeedEnded || ev == ivsrt.FeedEndedFinal
	}}
}

func (n *notifier[T]) post(ev T) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue = append(n.queue, ev)
	n.kick()
}

// release lets posted events through.
func (n *notifier[T]) release() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.held = false
	n.kick()
}

func (n *notifier[T]) kick() {
	if n.held || n.running || len(n.queue) == 0 {
		return
	}
	n.running = true
	go n.run()
}

func (n *notifier[T]) run() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 || n.finished {
			n.queue = nil
			n.running = false
			n.mu.Unlock()
			return
		}
		ev := n.queue[0]
		n.queue = n.queue[1:]
		if n.final(ev) {
			n.finished = true
		}
		n.mu.Unlock()
		n.fn(ev)
	}
}

// errNotPublishing is the refusal of a feed of a participant that does
// not publish in the stage (here).
func errNotPublishing(id ivsrt.ParticipantID, stage ivsrt.StageARN) error {
	return ivsrt.Errorf(ivsrt.ENOTFOUND, "Participant %s is not publishing in stage %s.", id, stage)
}

// registerFeed adds a feed of participant id's publication in the stage,
// if it publishes here; with live false, a publication whose publisher is
// away (within the republish grace period) counts too, and is fed once it
// is back. The stage is left unlocked. Returns ENOTFOUND if the
// participant does not publish here, ECONFLICT if it is a replica.
func (s *Server) registerFeed(stage ivsrt.StageARN, id ivsrt.ParticipantID, live, replicas bool, notify func(ivsrt.FeedEvent)) (*feed, ivsrt.FeedInfo, map[webrtc.RTPCodecType]*forward.Source, error) {
	st := s.existingStage(stage)
	if st == nil {
		return nil, ivsrt.FeedInfo{}, nil, errNotPublishing(id, stage)
	}
	defer st.unlock()
	pub := st.pubs[id]
	switch {
	case pub != nil && pub.replica != nil && !replicas:
		return nil, ivsrt.FeedInfo{}, nil, ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is a replica in stage %s: a replica cannot be replicated.", id, stage)
	case pub == nil || len(pub.sources) == 0 || pub.session == nil && pub.grace == nil && pub.ingest == nil && pub.replica == nil ||
		live && !pub.live():
		return nil, ivsrt.FeedInfo{}, nil, errNotPublishing(id, stage)
	}
	f := &feed{id: s.newResourceID(), st: st, pub: pub, out: newNotifier(notify)}
	if pub.feeds == nil {
		pub.feeds = map[*feed]struct{}{}
	}
	pub.feeds[f] = struct{}{}
	sources := make(map[webrtc.RTPCodecType]*forward.Source, len(pub.sources))
	info := ivsrt.FeedInfo{SessionID: st.session, Live: pub.live()}
	for k, src := range pub.sources {
		sources[k] = src
		info.Kinds = append(info.Kinds, k.String())
		if k == webrtc.RTPCodecTypeVideo {
			info.Layers = src.LayerRIDs()
		}
	}
	slices.Sort(info.Kinds)
	s.mu.Lock()
	s.feeds[f.id] = f
	s.mu.Unlock()
	return f, info, sources, nil
}

// notifyFeeds tells the publication's feeds ev. The stage is locked.
func (pub *publication) notifyFeeds(ev ivsrt.FeedEvent) {
	for f := range pub.feeds {
		f.out.post(ev)
	}
}

// endFeeds ends the publication's feeds. The stage is locked.
func (st *stage) endFeeds(pub *publication, final bool) {
	for f := range pub.feeds {
		st.endFeed(f, final)
	}
}

// endFeed ends a feed: its down tracks and connection close, and the
// replica is told unless it asked for the end. The stage is locked.
func (st *stage) endFeed(f *feed, final bool) {
	if f.ended {
		return
	}
	f.ended = true
	delete(f.pub.feeds, f)
	st.s.mu.Lock()
	delete(st.s.feeds, f.id)
	st.s.mu.Unlock()
	downs, pc := f.downs, f.pc
	f.downs, f.pc = nil, nil
	st.later(func() {
		for _, d := range downs {
			d.Close()
		}
		if pc != nil {
			pc.Close()
		}
	})
	if final {
		f.out.post(ivsrt.FeedEndedFinal)
	} else {
		f.out.post(ivsrt.FeedEnded)
	}
}

// EndFeed ends the feed of that id, if it is still there: the replica it
// fed asked for the end.
func (s *Server) EndFeed(id string) {
	s.mu.Lock()
	f := s.feeds[id]
	s.mu.Unlock()
	if f == nil {
		return
	}
	st := f.st
	st.lock()
	st.endFeed(f, false)
	st.unlock()
}

// setDowns hands the feed its down tracks, or closes them if it ended
// meanwhile, and reports which.
func (f *feed) setDowns(downs []*forward.DownTrack) bool {
	st := f.st
	st.lock()
	if f.ended {
		st.unlock()
		for _, d := range downs {
			d.Close()
		}
		return false
	}
	f.downs = downs
	st.unlock()
	return true
}

// bridge feeds a replica on this node: a down track of each of the
// source's tracks, written into the replica's source of the same kind.
func (s *Server) bridge(f *feed, sources map[webrtc.RTPCodecType]*forward.Source, sink *replicaSink) {
	var downs []*forward.DownTrack
	for kind, src := range sources {
		dst := sink.sources[kind]
		if dst == nil {
			continue
		}
		d, err := src.NewDownTrack()
		if err != nil {
			continue // the publication ended meanwhile; the feed ends with it
		}
		w := &bridgeWriter{dst: dst, codecs: codecsOf(kind), upstream: src}
		if _, err := d.Bind(&bridgeContext{id: f.id + kind.String(), codecs: w.codecs, writer: w, rtcp: newQuietReader()}); err != nil {
			d.Close()
			continue
		}
		downs = append(downs, d)
	}
	if f.setDowns(downs) {
		for _, d := range downs {
			d.Start()
		}
	}
}

// codecsOf returns the codecs this server negotiates for kind.
func codecsOf(kind webrtc.RTPCodecType) []webrtc.RTPCodecParameters {
	if kind == webrtc.RTPCodecTypeAudio {
		return []webrtc.RTPCodecParameters{codecOpus}
	}
	return []webrtc.RTPCodecParameters{codecVP8, codecH264ConstrainedBaseline, codecH264Baseline}
}

// bridgeContext binds a down track to a bridge, as a peer connection
// would bind it to a subscriber.
type bridgeContext struct {
	id     string
	codecs []webrtc.RTPCodecParameters
	writer webrtc.TrackLocalWriter
	rtcp   interceptor.RTCPReader
}

func (c *bridgeContext) CodecParameters() []webrtc.RTPCodecParameters           { return c.codecs }
func (c *bridgeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c *bridgeContext) SSRC() webrtc.SSRC                                      { return 1 }
func (c *bridgeContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c *bridgeContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c *bridgeContext) WriteStream() webrtc.TrackLocalWriter                   { return c.writer }
func (c *bridgeContext) ID() string                                             { return c.id }
func (c *bridgeContext) RTCPReader() interceptor.RTCPReader                     { return c.rtcp }

// quietReader is the RTCP of a bridge, which has none: keyframe requests
// go straight to the source. Its first read ends the down track's reading.
type quietReader struct{}

func newQuietReader() quietReader { return quietReader{} }

func (quietReader) Read([]byte, interceptor.Attributes) (int, interceptor.Attributes, error) {
	return 0, nil, io.EOF
}

// bridgeWriter writes a down track's packets into the replica's source.
// A down track writes from one worker at a time, so its fields need no
// lock.
type bridgeWriter struct {
	dst      *forward.Source // the replica's
	codecs   []webrtc.RTPCodecParameters
	upstream *forward.Source // the source's, asked for keyframes

	up *forward.Upstream
	pt uint8
}

func (w *bridgeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.up == nil || h.PayloadType != w.pt {
		// The first packet, or the publisher came back with another
		// codec: the replica's source gets a new upstream.
		i := slices.IndexFunc(w.codecs, func(c webrtc.RTPCodecParameters) bool { return uint8(c.PayloadType) == h.PayloadType })
		if i < 0 {
			return 0, io.ErrShortWrite
		}
		if w.up != nil {
			w.up.Detach()
		}
		src := w.upstream
		w.up, w.pt = w.dst.Attach(w.codecs[i], src.RequestKeyframe), h.PayloadType
	}
	// The down track reuses its header: the packet gets a copy. The
	// payload is the source's, which nothing modifies.
	p := &rtp.Packet{Header: h.Clone(), Payload: payload}
	if err := w.up.WriteRTP(p); err != nil {
		return 0, err
	}
	return h.MarshalSize() + len(payload), nil
}

func (w *bridgeWriter) Write(b []byte) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return 0, err
	}
	return w.WriteRTP(&p.Header, p.Payload)
}

// AnswerFeed answers the offer of a replica on another node, which
// subscribes to participant id's publication in the stage: a peer
// connection like a WHEP session's, nobody's participant. With live, the
// participant must be publishing now (see registerFeed). notify is told
// what the feed does (see ivsrt.FeedEvent). It returns the answer, what the
// replica learns of the publication, and the feed's id, for EndFeed.
// Returns ENOTFOUND if the participant does not publish here, ECONFLICT
// if it is a replica, EINVALID for an offer that cannot be answered.
func (s *Server) AnswerFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, live bool, offer string, notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, string, error) {
	return s.answerFeed(ctx, stage, id, live, false, nil, offer, notify)
}

// AnswerEdgeFeed answers the offer of an edge, which pulls kinds ("audio",
// "video") of participant id's publication for its subscribers: as
// AnswerFeed with live, but a replica's publication is fed too. The info
// lists every kind the publication has.
func (s *Server) AnswerEdgeFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, kinds []string, offer string, notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, string, error) {
	return s.answerFeed(ctx, stage, id, true, true, kinds, offer, notify)
}

// answerFeed answers a feed's offer with the publication's kinds, all of
// them for nil.
func (s *Server) answerFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, live, replicas bool, kinds []string, offer string, notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, string, error) {
	f, info, sources, err := s.registerFeed(stage, id, live, replicas, notify)
	if err != nil {
		return "", ivsrt.FeedInfo{}, "", err
	}
	if kinds != nil {
		for k := range sources {
			if !slices.Contains(kinds, k.String()) {
				delete(sources, k)
			}
		}
	}
	answer, ref := s.negotiateFeed(ctx, f, sources, info.Layers, offer)
	if ref != nil {
		st := f.st
		st.lock()
		st.endFeed(f, false)
		st.unlock()
		if ref.status == http.StatusBadRequest {
			return "", ivsrt.FeedInfo{}, "", ivsrt.Errorf(ivsrt.EINVALID, "%s", ref.message)
		}
		return "", ivsrt.FeedInfo{}, "", ref
	}
	f.out.release()
	return answer, info, f.id, nil
}

// negotiateFeed answers a remote feed's offer with down tracks of the
// publication's sources, started once the connection is up: of a
// simulcast video, one per layer, each held to its layer, so that the
// other node chooses layers for its own subscribers.
func (s *Server) negotiateFeed(ctx context.Context, f *feed, sources map[webrtc.RTPCodecType]*forward.Source, layers []string, offer string) (string, *refusal) {
	st := f.st
	pc, ref := s.newPeer(s.api, st, func(pc *webrtc.PeerConnection) bool {
		if f.ended {
			return true
		}
		f.pc = pc
		return false
	})
	if ref != nil {
		return "", ref
	}
	var once sync.Once
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() {
				st.lock()
				downs := f.downs
				st.unlock()
				for _, d := range downs {
					d.Start()
				}
			})
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			st.lock()
			st.endFeed(f, false)
			st.unlock()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer was not accepted: " + err.Error()}
	}
	var downs []*forward.DownTrack
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		src := sources[kind]
		if src == nil {
			continue
		}
		pins := []string{""}
		if kind == webrtc.RTPCodecTypeVideo && len(layers) > 0 {
			pins = layers
		}
		for _, rid := range pins {
			d, err := src.NewDownTrack()
			if err != nil {
				continue
			}
			if rid != "" {
				d.SetPreferredLayer(rid)
			}
			downs = append(downs, d)
			if _, err := pc.AddTrack(d); err != nil {
				for _, d := range downs {
					d.Close()
				}
				return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer cannot receive the " + kind.String() + " track: " + err.Error()}
			}
		}
	}
	if !f.setDowns(downs) {
		return "", errSessionEnded
	}
	return s.completeAnswer(ctx, pc)
}
