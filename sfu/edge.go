package sfu

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/clientinfo"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// An edge serves subscribers of a stage hosted on another node, its
// origin (see the root package's edge.go). A WHEP request for such a
// stage is admitted by the origin, which keeps the subscription's story;
// the media comes from a pull: one feed of the publication from the
// origin, whatever the number of subscribers here, opened for the first
// and closed when the last leaves. Each subscriber gets its own down
// tracks of the pull's sources, as it would of a publisher's here: its
// own queue, keyframe start, retransmissions and bandwidth estimation.

// EdgeOrigins reaches the origins of stages hosted on other nodes: the
// cluster's side of ivsrt.EdgeOrigin, filling in this node's name.
type EdgeOrigins interface {
	// AdmitSubscriber has the stage's origin admit sub
	// (ivsrt.EdgeOrigin.AdmitEdgeSubscription); notify is told, in order,
	// what the origin tells of it.
	AdmitSubscriber(ctx context.Context, stage ivsrt.StageARN, sub *ivsrt.EdgeSubscription, notify func(ivsrt.EdgeNotice)) (ivsrt.EdgeAdmission, error)
	// SubscriberStarted tells the origin the subscriber is connected.
	SubscriberStarted(ctx context.Context, stage ivsrt.StageARN, id string) error
	// SubscriberLayer tells the origin the simulcast layer sent to the
	// subscriber.
	SubscriberLayer(ctx context.Context, stage ivsrt.StageARN, id, rid string) error
	// OpenEdgeFeed has the stage's origin answer offer with a feed of
	// kinds of participant id's publication (its Server.AnswerEdgeFeed),
	// as RemoteFeeds.OpenFeed does for a replica.
	OpenEdgeFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, kinds []string, offer string,
		notify func(ivsrt.FeedEvent)) (answer string, info ivsrt.FeedInfo, end func(), err error)
	// SubscriberEnded tells the origin the subscription ended here.
	SubscriberEnded(ctx context.Context, stage ivsrt.StageARN, id string) error
	// ForgetSubscriber forgets a subscription that ended here without
	// telling the origin (it ended it), which will tell nothing more of it.
	ForgetSubscriber(id string)
}

// pullTimeout bounds opening a pull: the origin's answer and the feed's
// connection.
const pullTimeout = 10 * time.Second

// pullKey names a pull: one kind of a publication, so that an edge pulls
// only what its subscribers receive (none but audio, for audio-only
// subscribers).
type pullKey struct {
	stage  ivsrt.StageARN
	remote ivsrt.ParticipantID
	kind   webrtc.RTPCodecType
}

// edgePull is one feed of one kind of a publication from its origin,
// shared by the subscribers to it here. Guarded by the server's edgeMu.
type edgePull struct {
	key     pullKey
	subs    map[*edgeSession]struct{}
	link    feedLink
	sources map[webrtc.RTPCodecType]*forward.Source
	ready   chan struct{} // closed once opened, or failed (err set)
	err     error
	ended   bool
}

// edgeSession is a WHEP session served here for another node's stage.
// Its fields are guarded by the server's edgeMu.
type edgeSession struct {
	id     string
	stage  ivsrt.StageARN
	remote ivsrt.ParticipantID
	pulls  []*edgePull

	pc     *webrtc.PeerConnection
	downs  []*forward.DownTrack
	wish   ivsrt.VideoWish // what the subscriber asks of the video
	wished bool            // the origin told wish since the admission
	// initial is the layer the video's first picture comes from.
	initial forward.InitialLayer
	// admitted: the origin's admission came back, at admittedAt; only
	// then may the origin's list of its subscriptions miss it for good
	// (ConfirmEdgeSubscriptions).
	admitted   bool
	admittedAt time.Time
	started    bool
	ended      bool
	lost       lostPath
	done       chan struct{} // closed when it ends
}

// edgeOrigins returns how to reach the origin of a stage hosted on
// another node, or nil if the stage is hosted here (or there is no
// cluster).
func (s *Server) edgeOrigins(ctx context.Context, stage ivsrt.StageARN) (EdgeOrigins, error) {
	s.mu.Lock()
	remote := s.remote
	s.mu.Unlock()
	origins, ok := remote.(EdgeOrigins)
	if !ok {
		return nil, nil
	}
	elsewhere, err := remote.Remote(ctx, stage)
	if err != nil || !elsewhere {
		return nil, err
	}
	return origins, nil
}

// postEdgeWHEP serves a WHEP request as an edge: the origin admits it, a
// pull of the publication brings the media here, and the answer offers
// this node's candidates.
func (s *Server) postEdgeWHEP(w http.ResponseWriter, r *http.Request, origins EdgeOrigins, offer, raw string, c claims, remote ivsrt.ParticipantID, initial forward.InitialLayer) {
	ctx := r.Context()
	if s.isClosing() || s.draining.Load() {
		writeRefusal(w, errShuttingDown)
		return
	}
	stage := c.tok.StageARN
	es := &edgeSession{id: s.newResourceID(), stage: stage, remote: remote, initial: initial, done: make(chan struct{})}
	s.edgeMu.Lock()
	if s.edgeSessions == nil {
		s.edgeSessions = map[string]*edgeSession{}
	}
	s.edgeSessions[es.id] = es
	s.edgeMu.Unlock()
	sub := &ivsrt.EdgeSubscription{ID: es.id, Token: raw, Remote: remote, Client: c.client, Kinds: offeredKinds(offer)}
	adm, err := origins.AdmitSubscriber(ctx, stage, sub, func(n ivsrt.EdgeNotice) { s.edgeNotice(es, n) })
	if err != nil {
		var refused *ivsrt.EdgeRefusal
		if errors.As(err, &refused) {
			s.endEdgeSession(es, nil) // nothing of it at the origin
			writeRefusal(w, &refusal{refused.Status, refused.Code, refused.Message})
			return
		}
		s.logger.Warn("edge: the stage's origin did not admit a subscriber", "stage", stage, "error", err)
		// The origin may have admitted it all the same (its answer was
		// lost, or came too late): it is told the subscription ended.
		s.goClose(func() { s.endEdgeSession(es, origins) })
		writeRefusal(w, &refusal{http.StatusServiceUnavailable, codeUnavailable, "the stage's node could not be reached; try again"})
		return
	}
	s.edgeMu.Lock()
	if !es.ended && !es.wished {
		es.wish = adm.Video
	}
	es.admitted, es.admittedAt = true, time.Now()
	s.edgeMu.Unlock()
	// From here on the origin counts the subscription: any failure ends
	// it there too.
	fail := func(ref *refusal) {
		s.endEdgeSession(es, origins)
		writeRefusal(w, ref)
	}
	answer, ref := s.negotiateEdge(ctx, es, origins, adm.Kinds, offer)
	if ref != nil {
		fail(ref)
		return
	}
	s.addResource(es.id, es)
	s.edgeMu.Lock()
	ended := es.ended
	s.edgeMu.Unlock()
	if ended {
		// The origin ended it while it was negotiated.
		s.removeResource(es.id)
		writeRefusal(w, errSessionEnded)
		return
	}
	s.writeAnswer(w, r, "/whep/"+string(remote)+"/"+es.id, c.tok, answer)
}

// joinPull adds es to the pull of kind of its publication, opening the
// pull if it is the first, and waits until the pull is open.
func (s *Server) joinPull(ctx context.Context, es *edgeSession, kind webrtc.RTPCodecType) (*edgePull, error) {
	key := pullKey{es.stage, es.remote, kind}
	s.edgeMu.Lock()
	if es.ended {
		s.edgeMu.Unlock()
		return nil, errors.New("the subscription ended")
	}
	p := s.pulls[key]
	opening := p == nil
	if opening {
		p = &edgePull{key: key, subs: map[*edgeSession]struct{}{}, ready: make(chan struct{})}
		if s.pulls == nil {
			s.pulls = map[pullKey]*edgePull{}
		}
		s.pulls[key] = p
	}
	p.subs[es] = struct{}{}
	es.pulls = append(es.pulls, p)
	s.edgeMu.Unlock()

	if opening {
		// The pull outlives the request that opened it.
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pullTimeout)
		err := s.openPull(octx, p)
		cancel()
		s.edgeMu.Lock()
		if err == nil && p.ended {
			// Its feed ended while it opened (endPull ran).
			err = errors.New("the feed from the stage's node ended as it opened")
		}
		p.err = err
		close(p.ready)
		var link feedLink
		var sources map[webrtc.RTPCodecType]*forward.Source
		if err != nil {
			p.ended = true
			if s.pulls[key] == p {
				delete(s.pulls, key)
			}
			link, sources = p.link, p.sources
		}
		s.edgeMu.Unlock()
		if err != nil {
			closeLink(link, sources)
		} else {
			// Its subscribers may all have ended while it opened.
			s.closePull(p)
		}
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p, p.err
}

// openPull opens the feed of p's publication from its origin and the
// sources it writes into.
func (s *Server) openPull(ctx context.Context, p *edgePull) error {
	origins, ok := s.remoteOrigins()
	if !ok {
		return errors.New("no cluster to pull from")
	}
	kind := p.key.kind
	open := func(ctx context.Context, offer string, notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
		return origins.OpenEdgeFeed(ctx, p.key.stage, p.key.remote, []string{kind.String()}, offer, notify)
	}
	link, err := s.openRemoteFeed(ctx, []webrtc.RTPCodecType{kind}, open, func(_ feedLink, ev ivsrt.FeedEvent) {
		if ev == ivsrt.FeedEnded || ev == ivsrt.FeedEndedFinal {
			s.endPull(p)
		}
	})
	if err != nil {
		return err
	}
	if !slices.Contains(link.info().Kinds, kind.String()) {
		link.close()
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "Participant %s publishes no %s.", p.key.remote, kind)
	}
	sources := map[webrtc.RTPCodecType]*forward.Source{
		kind: forward.NewSource(kind, kind.String(), string(p.key.remote), s.sourceOptions()...),
	}
	s.edgeMu.Lock()
	p.link, p.sources = link, sources
	s.edgeMu.Unlock()
	link.attach(&replicaSink{sources: sources})
	link.release()
	s.edgePullsOpened.Add(1)
	return nil
}

// endPull ends a pull whose feed ended (the publication ended, or the
// origin is gone) and every subscription it fed; the origin is told of
// each, in case it is still there.
func (s *Server) endPull(p *edgePull) {
	// Out of the pulls at once, so that no new subscriber joins it while
	// its subscribers are ended.
	s.edgeMu.Lock()
	if p.ended {
		s.edgeMu.Unlock()
		return
	}
	p.ended = true
	if s.pulls[p.key] == p {
		delete(s.pulls, p.key)
	}
	var sessions []*edgeSession
	for es := range p.subs {
		sessions = append(sessions, es)
	}
	link, sources := p.link, p.sources
	s.edgeMu.Unlock()
	closeLink(link, sources)
	// Each ending may wait on the origin: one slow answer holds back none
	// of the others.
	origins, _ := s.remoteOrigins()
	var wg sync.WaitGroup
	for _, es := range sessions {
		wg.Go(func() { s.endEdgeSession(es, origins) })
	}
	wg.Wait()
}

// closeLink closes a pull's feed and sources, either of which may be nil.
func closeLink(link feedLink, sources map[webrtc.RTPCodecType]*forward.Source) {
	if link != nil {
		link.close()
	}
	for _, src := range sources {
		src.Close()
	}
}

func (s *Server) remoteOrigins() (EdgeOrigins, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.remote.(EdgeOrigins)
	return o, ok
}

// closePull closes a pull nobody uses any more.
func (s *Server) closePull(p *edgePull) {
	s.edgeMu.Lock()
	if p.ended || len(p.subs) > 0 {
		s.edgeMu.Unlock()
		return
	}
	select {
	case <-p.ready:
	default:
		// Still opening: the opener closes it once open if nobody is
		// left (joinPull).
		s.edgeMu.Unlock()
		return
	}
	p.ended = true
	if s.pulls[p.key] == p {
		delete(s.pulls, p.key)
	}
	link, sources := p.link, p.sources
	s.edgeMu.Unlock()
	closeLink(link, sources)
}

// negotiateEdge answers the subscriber's offer with down tracks of the
// pulls of the kinds it receives, of those the publication has.
func (s *Server) negotiateEdge(ctx context.Context, es *edgeSession, origins EdgeOrigins, kinds []string, offer string) (string, *refusal) {
	api, est, ref := s.subscriberPeerAPI()
	if ref != nil {
		return "", ref
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		s.logger.Error("create peer connection failed", "error", err)
		return "", errInternal
	}
	s.edgeMu.Lock()
	if es.ended {
		s.edgeMu.Unlock()
		pc.Close()
		return "", errSessionEnded
	}
	es.pc = pc
	s.edgeMu.Unlock()
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) { s.edgeState(es, origins, state) })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer was not accepted: " + err.Error()}
	}
	offered := map[webrtc.RTPCodecType]bool{}
	for _, t := range pc.GetTransceivers() {
		offered[t.Kind()] = true
	}
	var downs []*forward.DownTrack
	closeDowns := func() {
		for _, d := range downs {
			d.Close()
		}
	}
	var video *forward.DownTrack
	audio := false
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if !offered[kind] || !slices.Contains(kinds, kind.String()) {
			continue
		}
		if s.isClosing() {
			closeDowns()
			return "", errShuttingDown
		}
		p, err := s.joinPull(ctx, es, kind)
		if err != nil {
			closeDowns()
			if s.edgeEnded(es) {
				return "", errSessionEnded
			}
			s.logger.Warn("edge: pull from the stage's origin failed", "stage", es.stage, "remote", es.remote, "kind", kind, "error", err)
			if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
				return "", &refusal{http.StatusNotFound, ivsrt.ErrPublisherNotFound, "participant " + string(es.remote) + " does not publish in this stage"}
			}
			return "", &refusal{http.StatusServiceUnavailable, codeUnavailable, "the publication could not be brought to this node; try again"}
		}
		s.edgeMu.Lock()
		src := p.sources[kind]
		s.edgeMu.Unlock()
		if src == nil {
			continue
		}
		d, err := src.NewDownTrack()
		if err != nil {
			continue // the pull ended meanwhile
		}
		d.SetInitialLayer(es.initial)
		downs = append(downs, d)
		if _, err := pc.AddTrack(d); err != nil {
			closeDowns()
			if s.edgeEnded(es) {
				return "", errSessionEnded
			}
			return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer cannot receive the " + kind.String() + " track: " + err.Error()}
		}
		if kind == webrtc.RTPCodecTypeVideo {
			video = d
		} else {
			audio = true
		}
	}
	s.edgeMu.Lock()
	if es.ended {
		s.edgeMu.Unlock()
		closeDowns()
		return "", errSessionEnded
	}
	es.downs = downs
	if video != nil {
		applyWish(video, es.wish)
	}
	s.edgeMu.Unlock()
	if len(downs) == 0 {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer receives none of the kinds the participant publishes"}
	}
	if video != nil {
		if est != nil {
			go adaptSubscription(est, video, audio, es.done)
		}
		go s.reportEdgeLayer(es, origins, video)
	}
	return s.completeAnswer(ctx, pc)
}

// edgeState follows an edge subscriber's connection as subscribeState
// does a local one's: connected, the origin records SUBSCRIBE_STARTED and
// forwarding starts; failed, it waits for an ICE restart; closed, it ends.
func (s *Server) edgeState(es *edgeSession, origins EdgeOrigins, state webrtc.PeerConnectionState) {
	switch state {
	case webrtc.PeerConnectionStateConnected:
		es.lost.end()
		s.edgeMu.Lock()
		if es.ended || es.started {
			s.edgeMu.Unlock()
			return
		}
		es.started = true
		downs := es.downs
		s.edgeMu.Unlock()
		for _, d := range downs {
			d.Start()
		}
		ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
		defer cancel()
		if err := origins.SubscriberStarted(ctx, es.stage, es.id); err != nil {
			// The origin ended it meanwhile, or is gone: either way the
			// subscription is over.
			s.logger.Info("edge: the origin did not take a subscriber's start", "stage", es.stage, "error", err)
			s.endEdgeSession(es, origins)
		}
	case webrtc.PeerConnectionStateFailed:
		s.edgeMu.Lock()
		if !es.ended {
			es.lost.begin(s.restartGrace, func() {
				s.edgeMu.Lock()
				pc := es.pc
				s.edgeMu.Unlock()
				if pc == nil || pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
					s.endEdgeSession(es, origins)
				}
			})
		}
		s.edgeMu.Unlock()
	case webrtc.PeerConnectionStateClosed:
		s.endEdgeSession(es, origins)
	}
}

// endEdgeSession ends a subscription served here: its connection closes,
// it leaves its pull (closed if it was the last), and, with origins, the
// origin is told; without, the origin ended it.
func (s *Server) endEdgeSession(es *edgeSession, origins EdgeOrigins) {
	s.edgeMu.Lock()
	if es.ended {
		s.edgeMu.Unlock()
		return
	}
	es.ended = true
	close(es.done)
	delete(s.edgeSessions, es.id)
	pc, downs, pulls := es.pc, es.downs, es.pulls
	for _, p := range pulls {
		delete(p.subs, es)
	}
	s.edgeMu.Unlock()
	s.removeResource(es.id)
	for _, d := range downs {
		d.Close()
	}
	if pc != nil {
		pc.Close()
	}
	for _, p := range pulls {
		s.closePull(p)
	}
	if o, ok := s.remoteOrigins(); ok && origins == nil {
		o.ForgetSubscriber(es.id)
	}
	if origins != nil {
		ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
		defer cancel()
		if err := origins.SubscriberEnded(ctx, es.stage, es.id); err != nil {
			s.logger.Debug("edge: tell the origin a subscription ended", "stage", es.stage, "error", err)
		}
	}
}

// EdgeStats is what this node does as an edge.
type EdgeStats struct {
	Pulls         int // tracks pulled from other nodes now: each kind of a publication
	Subscriptions int // subscribers served from them
}

// edgeStats counts the pulls and the subscriptions served here as an
// edge.
func (s *Server) edgeStats() EdgeStats {
	s.edgeMu.Lock()
	defer s.edgeMu.Unlock()
	var st EdgeStats
	sessions := map[*edgeSession]struct{}{}
	for _, p := range s.pulls {
		if !p.ended {
			st.Pulls++
			for es := range p.subs {
				sessions[es] = struct{}{}
			}
		}
	}
	st.Subscriptions = len(sessions)
	return st
}

// closeEdges ends every subscription served here as an edge, at shutdown.
func (s *Server) closeEdges() {
	s.edgeMu.Lock()
	var sessions []*edgeSession
	for _, es := range s.edgeSessions {
		sessions = append(sessions, es)
	}
	s.edgeMu.Unlock()
	origins, _ := s.remoteOrigins()
	var wg sync.WaitGroup
	for _, es := range sessions {
		wg.Go(func() { s.endEdgeSession(es, origins) })
	}
	wg.Wait()
}

// serveAsEdge serves a WHEP request as an edge if its stage is hosted on
// another node of the cluster, and reports whether it did; otherwise the
// request is this node's own, and its body is untouched.
func (s *Server) serveAsEdge(w http.ResponseWriter, r *http.Request, remote ivsrt.ParticipantID, initial forward.InitialLayer) bool {
	if _, ok := s.remoteOrigins(); !ok {
		return false
	}
	ctx := r.Context()
	raw := ivsrt.PresentedToken(r.URL.Path, r.Header.Get("Authorization"), "")
	c, ref := s.verify(ctx, raw)
	if ref != nil {
		return false // refused as on a single node
	}
	origins, err := s.edgeOrigins(ctx, c.tok.StageARN)
	if err != nil {
		s.logger.Warn("edge: where the stage is hosted is not known", "stage", c.tok.StageARN, "error", err)
		writeRefusal(w, &refusal{http.StatusServiceUnavailable, codeUnavailable, "the stage's node could not be found; try again"})
		return true
	}
	if origins == nil {
		return false
	}
	offer, ref := readOffer(w, r)
	if ref != nil {
		writeRefusal(w, ref)
		return true
	}
	c.client = clientinfo.Describe(r.Header, nil)
	s.postEdgeWHEP(w, r, origins, offer, raw, c, remote, initial)
	return true
}

// SubscriptionCount returns how many subscriptions this node serves: its
// own stages' (not those edges serve) and, as an edge, other nodes'.
func (s *Server) SubscriptionCount() int {
	return s.MediaStats().Subscriptions
}

// edgeNotice applies what the origin tells of an edge subscription.
func (s *Server) edgeNotice(es *edgeSession, n ivsrt.EdgeNotice) {
	if n.Ended {
		// Closing the connection and maybe the pull takes a while: not on
		// the goroutine that brings every notice of this node.
		s.goClose(func() { s.endEdgeSession(es, nil) })
		return
	}
	if n.Video == nil {
		return
	}
	s.edgeMu.Lock()
	defer s.edgeMu.Unlock()
	es.wish, es.wished = *n.Video, true
	for _, d := range es.downs {
		if d.Kind() == webrtc.RTPCodecTypeVideo {
			applyWish(d, es.wish)
		}
	}
}

// applyWish holds a subscriber's video to what it asks for.
func applyWish(video *forward.DownTrack, w ivsrt.VideoWish) {
	video.SetMaxSize(w.Width, w.Height)
	video.SetPreferredLayer(w.PreferredLayer)
}

// reportEdgeLayer tells the origin, as it changes, the simulcast layer the
// subscriber gets, for the layer reports the origin sends it.
func (s *Server) reportEdgeLayer(es *edgeSession, origins EdgeOrigins, video *forward.DownTrack) {
	t := time.NewTicker(layersEvery)
	defer t.Stop()
	told := ""
	for {
		select {
		case <-es.done:
			return
		case <-t.C:
		}
		rid, _ := video.Layer()
		if rid == told {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
		err := origins.SubscriberLayer(ctx, es.stage, es.id, rid)
		cancel()
		switch {
		case err == nil:
			told = rid
		case ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND:
			// The origin no longer has it: its end was lost on the way.
			s.endEdgeSession(es, nil)
			return
		}
	}
}

// offeredKinds returns the kinds of media an SDP offer has sections for.
func offeredKinds(offer string) []string {
	var kinds []string
	for _, line := range strings.Split(offer, "\n") {
		for _, kind := range []string{"audio", "video"} {
			if strings.HasPrefix(line, "m="+kind+" ") && !slices.Contains(kinds, kind) {
				kinds = append(kinds, kind)
			}
		}
	}
	return kinds
}

// edgeEnded reports whether an edge session has ended.
func (s *Server) edgeEnded(es *edgeSession) bool {
	s.edgeMu.Lock()
	defer s.edgeMu.Unlock()
	return es.ended
}

// isClosing reports whether the server takes no new work.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// ConfirmEdgeSubscriptions answers an origin that lists, by stage, the
// subscriptions it has this node serve: it returns the ids this node does
// not serve (the origin ends them), and ends those of the listed stages it
// serves that the origin no longer has, admitted before admittedBefore.
func (s *Server) ConfirmEdgeSubscriptions(listed map[ivsrt.StageARN][]string, admittedBefore time.Time) (missing []string) {
	known := map[string]bool{}
	var stale []*edgeSession
	s.edgeMu.Lock()
	for stage, ids := range listed {
		for _, id := range ids {
			known[id] = true
			if es := s.edgeSessions[id]; es == nil || es.ended || es.stage != stage {
				missing = append(missing, id)
			}
		}
	}
	for _, es := range s.edgeSessions {
		if _, ok := listed[es.stage]; ok && es.admitted && !known[es.id] && es.admittedAt.Before(admittedBefore) {
			stale = append(stale, es)
		}
	}
	s.edgeMu.Unlock()
	for _, es := range stale {
		s.logger.Info("edge: ending a subscription its origin no longer has", "stage", es.stage, "remote", es.remote)
		s.goClose(func() { s.endEdgeSession(es, nil) })
	}
	return missing
}
