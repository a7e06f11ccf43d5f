package sfu

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
)

// The origin's side of edge subscriptions (see ivsrt.EdgeOrigin): a
// subscription an edge node serves is a subscribeSession here like any
// other — admitted by the same rules, counted against the same quota,
// recorded in the same events, ended by the same causes — but without a
// connection: its media leaves through the edge's feed of the
// publication, and its end is told to the edge.

var _ ivsrt.EdgeOrigin = (*Server)(nil)

// edgeLeg is what the origin knows of the edge serving a subscription.
type edgeLeg struct {
	id            string // the WHEP session's, given by the edge
	node          string
	nodeStartedAt time.Time
	// out tells the edge; nil once the edge asked for the end. Guarded by
	// the stage's lock.
	out *notifier[ivsrt.EdgeNotice]
	// The layer the edge sends, and the one the subscriber prefers, for
	// the subscriber's layer reports.
	selected, preferred atomic.Pointer[string]
	admittedAt          time.Time
}

// selection is the layer report's view of an edge subscription.
func (e *edgeLeg) selection() (selected string, ok bool, preferred string) {
	if p := e.selected.Load(); p != nil && *p != "" {
		selected, ok = *p, true
	}
	if p := e.preferred.Load(); p != nil {
		preferred = *p
	}
	return selected, ok, preferred
}

// tellWish tells the edge what the subscriber asks of the video. The
// stage is locked.
func (st *stage) tellWish(ss *subscribeSession) {
	if ss.edge == nil || ss.edge.out == nil {
		return
	}
	w := st.wishOf(ss.pid, ss.remote)
	ss.edge.preferred.Store(&w.PreferredLayer)
	ss.edge.out.post(ivsrt.EdgeNotice{Video: &w})
}

// wishOf is what participant id asks of remote's video. The stage is
// locked.
func (st *stage) wishOf(id, remote ivsrt.ParticipantID) ivsrt.VideoWish {
	var w ivsrt.VideoWish
	if p := st.parts[id]; p != nil {
		if size, ok := p.videoSizes[remote]; ok {
			w.Width, w.Height = size.width, size.height
		}
		w.PreferredLayer = p.preferredLayers[remote]
	}
	return w
}

func (s *Server) addEdgeSubscription(ss *subscribeSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.edgeSubs == nil {
		s.edgeSubs = map[string]*subscribeSession{}
	}
	s.edgeSubs[ss.id] = ss
}

func (s *Server) removeEdgeSubscription(ss *subscribeSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.edgeSubs[ss.id] == ss {
		delete(s.edgeSubs, ss.id)
	}
}

func (s *Server) edgeSubscription(id string) *subscribeSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.edgeSubs[id]
}

// AdmitEdgeSubscription implements ivsrt.EdgeOrigin.
func (s *Server) AdmitEdgeSubscription(ctx context.Context, arn ivsrt.StageARN, sub *ivsrt.EdgeSubscription, notify func(ivsrt.EdgeNotice)) (ivsrt.EdgeAdmission, error) {
	var v ivsrt.Validation
	if !v.TokenParticipantID("participantId", string(sub.Remote)) {
		return ivsrt.EdgeAdmission{}, refusalOf(&refusal{http.StatusNotFound, ivsrt.ErrPublisherNotFound, "no participant has that id"})
	}
	if sub.ID == "" || sub.Node == "" {
		return ivsrt.EdgeAdmission{}, refusalOf(&refusal{http.StatusBadRequest, codeInvalidInput, "an edge subscription needs its id and node"})
	}
	c, ref := s.verify(ctx, sub.Token)
	if ref == nil && c.tok.StageARN != arn {
		ref = &refusal{http.StatusUnauthorized, codeTokenInvalid, "the token is not for this stage"}
	}
	if ref != nil {
		return ivsrt.EdgeAdmission{}, refusalOf(ref)
	}
	c.client = sub.Client
	st, ref := s.lockStage(arn)
	if ref != nil {
		return ivsrt.EdgeAdmission{}, refusalOf(ref)
	}
	out := &notifier[ivsrt.EdgeNotice]{fn: notify, held: true, final: func(n ivsrt.EdgeNotice) bool { return n.Ended }}
	leg := &edgeLeg{id: sub.ID, node: sub.Node, nodeStartedAt: sub.NodeStartedAt, out: out, admittedAt: time.Now()}
	ss, ref := st.startSubscribe(ctx, c, sub.Remote, leg)
	if ref != nil {
		st.unlock()
		return ivsrt.EdgeAdmission{}, refusalOf(ref)
	}
	adm := ivsrt.EdgeAdmission{Replica: ss.replica, Video: st.wishOf(ss.pid, ss.remote)}
	leg.preferred.Store(&adm.Video.PreferredLayer)
	for k := range ss.sources {
		adm.Kinds = append(adm.Kinds, k.String())
	}
	slices.Sort(adm.Kinds)
	if src := ss.sources[webrtc.RTPCodecTypeVideo]; src != nil && (len(sub.Kinds) == 0 || slices.Contains(sub.Kinds, "video")) {
		go st.reportLayers(ss, src, leg.selection)
	}
	st.unlock()
	// What the origin tells the edge comes after the admission.
	out.release()
	return adm, nil
}

// refusalOf is a refusal as the domain carries it between nodes.
func refusalOf(ref *refusal) error {
	return &ivsrt.EdgeRefusal{Status: ref.status, Code: ref.code, Message: ref.message}
}

// EdgeSubscriptionStarted implements ivsrt.EdgeOrigin.
func (s *Server) EdgeSubscriptionStarted(ctx context.Context, arn ivsrt.StageARN, id string) error {
	ss := s.edgeSubscription(id)
	if ss == nil || ss.st.arn != arn {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "no edge subscription %s in stage %s", id, arn)
	}
	st := ss.st
	st.lock()
	defer st.unlock()
	if ss.ended {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "the edge subscription %s has ended", id)
	}
	if !ss.started {
		ss.started = true
		st.record(ctx, &ivsrt.Event{Name: ivsrt.EventSubscribeStarted, ParticipantID: ss.pid, RemoteParticipantID: ss.remote,
			Replica: ss.replica})
	}
	return nil
}

// EndEdgeSubscription implements ivsrt.EdgeOrigin. Ending one that has
// ended already is not an error.
func (s *Server) EndEdgeSubscription(ctx context.Context, arn ivsrt.StageARN, id string) error {
	ss := s.edgeSubscription(id)
	if ss == nil || ss.st.arn != arn {
		return nil
	}
	st := ss.st
	st.lock()
	ss.edge.out = nil // the edge knows
	st.endSubscribe(ctx, ss)
	st.unlock()
	return nil
}

// EdgeSubscriptionLayer implements ivsrt.EdgeOrigin.
func (s *Server) EdgeSubscriptionLayer(ctx context.Context, arn ivsrt.StageARN, id, rid string) error {
	ss := s.edgeSubscription(id)
	if ss == nil || ss.st.arn != arn {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "no edge subscription %s in stage %s", id, arn)
	}
	ss.edge.selected.Store(&rid)
	return nil
}

// PruneEdgeSubscriptions implements ivsrt.EdgeOrigin.
func (s *Server) PruneEdgeSubscriptions(ctx context.Context, alive ivsrt.EdgeNodes) {
	s.mu.Lock()
	var gone []*subscribeSession
	for _, ss := range s.edgeSubs {
		started, ok := alive[ss.edge.node]
		if !ok || !started.Equal(ss.edge.nodeStartedAt) {
			gone = append(gone, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range gone {
		st := ss.st
		st.lock()
		if !ss.ended {
			s.logger.Info("ending a subscription of an edge node that is gone", "stage", st.arn, "participant", ss.pid,
				"remote", ss.remote, "node", ss.edge.node)
			// Told all the same: an edge thought dead that is alive (cut
			// off from the store a while) must stop serving it too.
			st.endSubscribe(ctx, ss)
		}
		st.unlock()
	}
}

// SubscriptionPlaces returns the stage's live subscriptions with the node
// serving each: self for those served here, the edge's name for the
// others.
func (s *Server) SubscriptionPlaces(arn ivsrt.StageARN, self string) []ivsrt.SubscriptionPlace {
	st := s.existingStage(arn)
	if st == nil {
		return nil
	}
	defer st.unlock()
	var out []ivsrt.SubscriptionPlace
	for _, p := range st.parts {
		for remote, ss := range p.subs {
			if ss.ended {
				continue
			}
			node := self
			if ss.edge != nil {
				node = ss.edge.node
			}
			out = append(out, ivsrt.SubscriptionPlace{Subscriber: p.id, Publisher: remote, Node: node})
		}
	}
	slices.SortFunc(out, func(a, b ivsrt.SubscriptionPlace) int {
		if c := strings.Compare(string(a.Subscriber), string(b.Subscriber)); c != 0 {
			return c
		}
		return strings.Compare(string(a.Publisher), string(b.Publisher))
	})
	return out
}

// EdgeSubscriptionsOf implements ivsrt.EdgeOrigin.
func (s *Server) EdgeSubscriptionsOf(node string, admittedBefore time.Time) map[ivsrt.StageARN][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[ivsrt.StageARN][]string{}
	for id, ss := range s.edgeSubs {
		// edge's fields are set before it is registered and never change.
		if ss.edge.node == node && ss.edge.admittedAt.Before(admittedBefore) {
			out[ss.st.arn] = append(out[ss.st.arn], id)
		}
	}
	return out
}
