package sfu

import (
	"context"
	"net/http"
	"strconv"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/bwe"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// subscribeSession is one WHEP session: one peer connection sending a
// subscriber the tracks of one publisher.
type subscribeSession struct {
	id     string
	st     *stage
	pid    ivsrt.ParticipantID // the subscriber
	remote ivsrt.ParticipantID // the publisher

	// Guarded by st.mu.
	pc      *webrtc.PeerConnection
	sources map[webrtc.RTPCodecType]*forward.Source
	downs   []*forward.DownTrack
	started bool // connected: SUBSCRIBE_STARTED recorded
	ended   bool
	replica bool     // the publisher is a replica: its events say so
	lost    lostPath // while the connection has failed
	edge    *edgeLeg // served by an edge node: no connection here (edge_origin.go)

	done chan struct{} // closed when the session ends
}

// postWHEP creates a WHEP session: POST /whep/{participantId} with the
// subscriber's bearer token and an SDP offer receiving audio, video or
// both subscribes to that participant; the answer comes back with 201
// Created and the session's URL in Location. ?initialLayer=lowest or
// highest picks the simulcast layer the first picture comes from.
func (s *Server) postWHEP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	remote := ivsrt.ParticipantID(r.PathValue("participant"))
	var v ivsrt.Validation
	if !v.TokenParticipantID("participantId", string(remote)) {
		writeRefusal(w, &refusal{http.StatusNotFound, ivsrt.ErrPublisherNotFound, "no participant has that id"})
		return
	}
	initial, ref := initialLayerOf(r)
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	if s.serveAsEdge(w, r, remote, initial) {
		return
	}
	offer, c, st, ok := s.admitOffer(w, r)
	if !ok {
		return
	}
	ss, ref := st.startSubscribe(ctx, c, remote, nil)
	st.unlock()
	if ref != nil {
		writeRefusal(w, ref)
		return
	}

	answer, ref := s.negotiateSubscribe(ctx, ss, offer, initial)
	if ref != nil {
		st.lock()
		if !ss.ended {
			// A client that gave up on its request made no error of ours.
			if ctx.Err() == nil {
				st.record(ctx, &ivsrt.Event{Name: ivsrt.EventSubscribeError, ParticipantID: ss.pid,
					RemoteParticipantID: remote, ErrorCode: eventCode(ref), Replica: ss.replica})
			}
			st.endSubscribe(ctx, ss)
		}
		st.unlock()
		writeRefusal(w, ref)
		return
	}
	s.writeAnswer(w, r, "/whep/"+string(remote)+"/"+ss.id, c.tok, answer)
}

// initialLayerOf reads a WHEP request's initialLayer: "lowest",
// "highest", or none (the layer is chosen as every later one).
func initialLayerOf(r *http.Request) (forward.InitialLayer, *refusal) {
	switch v := r.URL.Query().Get("initialLayer"); v {
	case "":
		return forward.InitialChosen, nil
	case "lowest":
		return forward.InitialLowest, nil
	case "highest":
		return forward.InitialHighest, nil
	default:
		return 0, &refusal{http.StatusBadRequest, codeInvalidInput, "initialLayer must be lowest or highest, not " + strconv.Quote(v)}
	}
}

// writeAnswer answers a WHIP or WHEP POST that created the session at
// path: 201 Created, its Location, the participant's ICE servers, the
// SDP answer.
func (s *Server) writeAnswer(w http.ResponseWriter, r *http.Request, path string, tok *ivsrt.ParticipantToken, answer string) {
	w.Header().Set("Location", s.resourceURL(r, path))
	s.setICELinks(w.Header(), tok)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(answer))
}

// startSubscribe checks that the participant may subscribe to remote and
// registers its new WHEP session, which replaces any previous one to the
// same publisher; with edge, a session an edge node serves, under the id
// the edge gave it. The stage is locked.
func (st *stage) startSubscribe(ctx context.Context, c claims, remote ivsrt.ParticipantID, edge *edgeLeg) (*subscribeSession, *refusal) {
	tok, ref := st.admit(ctx, c)
	if ref != nil {
		return nil, ref
	}
	id := tok.ParticipantID
	if !tok.Can(ivsrt.CapabilitySubscribe) {
		st.refuseAction(ctx, tok, c.client, protocolUnknown, ivsrt.EventSubscribeError, ivsrt.ErrInsufficientCapabilities, remote)
		return nil, &refusal{http.StatusForbidden, ivsrt.ErrInsufficientCapabilities, "the participant token does not allow subscribing"}
	}
	pub := st.pubs[remote]
	if pub == nil || !pub.live() {
		st.refuseAction(ctx, tok, c.client, protocolUnknown, ivsrt.EventSubscribeError, ivsrt.ErrPublisherNotFound, remote)
		return nil, &refusal{http.StatusNotFound, ivsrt.ErrPublisherNotFound, "participant " + string(remote) + " does not publish in this stage"}
	}
	p := st.parts[id]
	var old *subscribeSession
	if p != nil {
		old = p.subs[remote]
	}
	if (p == nil || len(p.subs) == 0) && st.subscribers() >= st.s.cfg.MaxSubscribers {
		st.refuseAction(ctx, tok, c.client, protocolUnknown, ivsrt.EventSubscribeError, ivsrt.ErrQuotaExceeded, remote)
		return nil, &refusal{http.StatusForbidden, ivsrt.ErrQuotaExceeded, "the stage already has the most subscribers it may have"}
	}
	p, ref = st.join(ctx, tok, c.client, protocolUnknown)
	if ref != nil {
		return nil, ref
	}
	ss := &subscribeSession{id: st.s.newResourceID(), st: st, pid: id, remote: remote,
		sources: make(map[webrtc.RTPCodecType]*forward.Source, len(pub.sources)), replica: pub.replica != nil,
		done: make(chan struct{}), edge: edge}
	for k, src := range pub.sources {
		ss.sources[k] = src
	}
	if edge != nil {
		ss.id = edge.id
	}
	p.subs[remote] = ss
	pub.subs[ss] = struct{}{}
	if old != nil {
		st.endSubscribe(ctx, old)
	}
	if edge != nil {
		st.s.addEdgeSubscription(ss)
	} else {
		st.s.addResource(ss.id, ss)
	}
	return ss, nil
}

// subscriberPeerAPI returns the WebRTC API of a subscriber's connection:
// one of its own with a bandwidth estimator (est), unless estimation is
// off (est nil, the server's API).
func (s *Server) subscriberPeerAPI() (api *webrtc.API, est *bwe.Estimator, ref *refusal) {
	if s.cfg.NoBandwidthEstimation {
		return s.api, nil, nil
	}
	est = bwe.New(pionLoggerFactory{s.logger})
	api, err := s.subscriberAPI(est)
	if err != nil {
		s.logger.Error("create peer connection failed", "error", err)
		return nil, nil, errInternal
	}
	return api, est, nil
}

// negotiateSubscribe answers a WHEP offer with the publisher's tracks of
// the kinds the offer receives; the video's first picture comes from the
// initial layer.
func (s *Server) negotiateSubscribe(ctx context.Context, ss *subscribeSession, offer string, initial forward.InitialLayer) (string, *refusal) {
	var sources map[webrtc.RTPCodecType]*forward.Source
	st := ss.st
	api, est, ref := s.subscriberPeerAPI()
	if ref != nil {
		return "", ref
	}
	pc, ref := s.newPeer(api, st, func(pc *webrtc.PeerConnection) bool {
		if ss.ended {
			return true
		}
		ss.pc, sources = pc, ss.sources
		return false
	})
	if ref != nil {
		return "", ref
	}
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) { s.subscribeState(ss, state) })

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer was not accepted: " + err.Error()}
	}
	offered := map[webrtc.RTPCodecType]bool{}
	for _, t := range pc.GetTransceivers() {
		offered[t.Kind()] = true
	}
	var downs []*forward.DownTrack
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		src := sources[kind]
		if src == nil || !offered[kind] {
			continue
		}
		d, err := src.NewDownTrack()
		if err != nil {
			continue // the publication ended meanwhile
		}
		d.SetInitialLayer(initial)
		downs = append(downs, d)
		if _, err := pc.AddTrack(d); err != nil {
			for _, d := range downs {
				d.Close()
			}
			return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer cannot receive the " + kind.String() + " track: " + err.Error()}
		}
	}
	st.lock()
	if ss.ended {
		st.unlock()
		for _, d := range downs {
			d.Close()
		}
		return "", errSessionEnded
	}
	ss.downs = downs
	var video *forward.DownTrack
	audio := false
	for _, d := range downs {
		if d.Kind() == webrtc.RTPCodecTypeVideo {
			video = d
		} else {
			audio = true
		}
	}
	if video != nil {
		if p := st.parts[ss.pid]; p != nil {
			if size, ok := p.videoSizes[ss.remote]; ok {
				video.SetMaxSize(size.width, size.height)
			}
			video.SetPreferredLayer(p.preferredLayers[ss.remote])
		}
		go st.reportLayers(ss, sources[webrtc.RTPCodecTypeVideo], func() (string, bool, string) {
			rid, ok := video.Layer()
			return rid, ok, video.PreferredLayer()
		})
		if est != nil {
			go adaptSubscription(est, video, audio, ss.done)
		}
	}
	st.unlock()
	if len(downs) == 0 {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer receives none of the kinds the participant publishes"}
	}
	return s.completeAnswer(ctx, pc)
}

// subscribeState follows the subscriber's connection: once connected,
// SUBSCRIBE_STARTED, and forwarding starts at the next keyframe, which is
// asked of the publisher at once; the session ends when the connection
// fails or closes.
func (s *Server) subscribeState(ss *subscribeSession, state webrtc.PeerConnectionState) {
	st := ss.st
	ctx := context.Background()
	switch state {
	case webrtc.PeerConnectionStateConnected:
		st.lock()
		if ss.ended || ss.started {
			st.unlock()
			return
		}
		ss.started = true
		st.record(ctx, &ivsrt.Event{Name: ivsrt.EventSubscribeStarted, ParticipantID: ss.pid, RemoteParticipantID: ss.remote,
			Replica: ss.replica})
		downs := ss.downs
		st.unlock()
		for _, d := range downs {
			d.Start()
		}
	case webrtc.PeerConnectionStateFailed:
		st.lock()
		if !ss.ended {
			ss.lost.begin(s.restartGrace, func() {
				st.lock()
				if !ss.ended && ss.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
					st.endSubscribe(ctx, ss)
				}
				st.unlock()
			})
		}
		st.unlock()
	case webrtc.PeerConnectionStateClosed:
		st.lock()
		st.endSubscribe(ctx, ss)
		st.unlock()
	}
	if state == webrtc.PeerConnectionStateConnected {
		ss.lost.end()
	}
}

// deleteWHEP ends a WHEP session.
func (s *Server) deleteWHEP(w http.ResponseWriter, r *http.Request) {
	if es, ok := s.resource(r.PathValue("id")).(*edgeSession); ok && string(es.remote) == r.PathValue("participant") {
		origins, _ := s.remoteOrigins()
		s.endEdgeSession(es, origins)
		w.WriteHeader(http.StatusOK)
		return
	}
	ss, ok := s.resource(r.PathValue("id")).(*subscribeSession)
	if !ok || string(ss.remote) != r.PathValue("participant") {
		writeRefusal(w, &refusal{http.StatusNotFound, codeNotFound, "no such WHEP session"})
		return
	}
	st := ss.st
	st.lock()
	st.endSubscribe(r.Context(), ss)
	st.unlock()
	w.WriteHeader(http.StatusOK)
}
