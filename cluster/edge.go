package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ivsrt/ivsrt"
)

// Edges. A subscriber of a stage may be served by any node, not only the
// stage's host: the node its request lands on while it has room
// (Config.MaxSubscriptions), else the host or the least-loaded node with
// room. A node serving another node's stage is an edge: it asks the host
// (the origin) over NATS to admit each subscriber, pulls each publication
// its subscribers want from the origin once (a feed, as replication's),
// and tells the origin when a subscriber connects and leaves. The origin
// tells the edge, on the edge's feed subject, when it ends a
// subscription; it ends by itself those of an edge that died or
// restarted.

// Edge requests, from an edge to a stage's origin.
const (
	opEdgeAdmit   = "edgeAdmit"
	opEdgeStarted = "edgeStarted"
	opEdgeEnded   = "edgeEnded"
	opEdgeLayer   = "edgeLayer"

	// From any node to a stage's host: where its subscriptions are
	// served (status.go).
	opSubscriptionPlaces = "subscriptionPlaces"

	// From an origin to an edge: the subscriptions it has the edge serve,
	// to be confirmed (reconcileEdges).
	opEdgeConfirm = "edgeConfirm"
)

// reconcileGrace is how long after its admission an edge subscription is
// left out of reconciling: its admission's answer may still be on the
// way.
const reconcileGrace = 10 * time.Second

// edgeOps are the requests of edge.go.
var edgeOps = map[string]bool{opEdgeAdmit: true, opEdgeStarted: true, opEdgeEnded: true, opEdgeLayer: true, opEdgeConfirm: true}

// edgeOrigin returns the local media plane's origin side, or nil.
func (n *Node) edgeOrigin() ivsrt.EdgeOrigin {
	n.mu.Lock()
	defer n.mu.Unlock()
	o, _ := n.local.(ivsrt.EdgeOrigin)
	return o
}

// AdmitSubscriber has the stage's origin admit sub (the sfu's
// EdgeOrigins): it names this node as the edge, and registers notify
// under the subscription's id on this node's feed subject, where the
// origin's notices arrive in order.
func (n *Node) AdmitSubscriber(ctx context.Context, stage ivsrt.StageARN, sub *ivsrt.EdgeSubscription, notify func(ivsrt.EdgeNotice)) (ivsrt.EdgeAdmission, error) {
	host, err := n.liveHost(ctx, stage)
	if err != nil {
		return ivsrt.EdgeAdmission{}, err
	}
	if host == "" || host == n.cfg.NodeID {
		return ivsrt.EdgeAdmission{}, &unavailableError{"the stage has no live node"}
	}
	s := *sub
	s.Node = n.cfg.NodeID
	s.NodeStartedAt = n.selfStartedAt()
	n.mu.Lock()
	n.edgeSubs[sub.ID] = notify
	n.mu.Unlock()
	var reply mediaReply
	err = n.request(ctx, host, mediaRequest{Op: opEdgeAdmit, Stage: stage, Edge: &s}, 1, &reply)
	if err == nil && reply.Refusal != nil {
		err = reply.Refusal
	}
	if err != nil {
		n.forgetFeed(sub.ID)
		return ivsrt.EdgeAdmission{}, err
	}
	return reply.Admission, nil
}

// SubscriberStarted tells the stage's origin that an edge subscriber is
// connected.
func (n *Node) SubscriberStarted(ctx context.Context, stage ivsrt.StageARN, id string) error {
	return n.toOrigin(ctx, mediaRequest{Op: opEdgeStarted, Stage: stage, Feed: id})
}

// toOrigin sends req to the live node hosting its stage; ENOTFOUND if
// none is.
func (n *Node) toOrigin(ctx context.Context, req mediaRequest) error {
	host, err := n.liveHost(ctx, req.Stage)
	if err != nil {
		return err
	}
	if host == "" {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "the stage has no live node")
	}
	var reply mediaReply
	return n.request(ctx, host, req, 1, &reply)
}

// SubscriberEnded tells the stage's origin that an edge subscription
// ended here, and forgets it.
func (n *Node) SubscriberEnded(ctx context.Context, stage ivsrt.StageARN, id string) error {
	n.forgetFeed(id)
	host, err := n.liveHost(ctx, stage)
	if err != nil || host == "" {
		return err // a dead origin ended it with its session
	}
	var reply mediaReply
	err = n.request(ctx, host, mediaRequest{Op: opEdgeEnded, Stage: stage, Feed: id}, 1, &reply)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil
	}
	return err
}

// SubscriberLayer tells the stage's origin the simulcast layer an edge
// sends a subscriber.
func (n *Node) SubscriberLayer(ctx context.Context, stage ivsrt.StageARN, id, rid string) error {
	return n.toOrigin(ctx, mediaRequest{Op: opEdgeLayer, Stage: stage, Feed: id, Ref: rid})
}

// ForgetSubscriber forgets an edge subscription the origin ended (the
// sfu's EdgeOrigins).
func (n *Node) ForgetSubscriber(id string) { n.forgetFeed(id) }

func (n *Node) forgetFeed(ref string) {
	n.mu.Lock()
	delete(n.edgeSubs, ref)
	n.mu.Unlock()
}

// selfStartedAt is when this node started, as the store has it (to the
// millisecond), so that origins compare it with what they list.
func (n *Node) selfStartedAt() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	if self := n.nodes[n.cfg.NodeID]; self != nil {
		return self.StartedAt
	}
	return n.startedAt.Truncate(time.Millisecond).UTC()
}

// runEdge runs an edge's request here, at the stage's origin, or an
// origin's request here, at the edge.
func (n *Node) runEdge(ctx context.Context, req mediaRequest, reply *mediaReply) error {
	if req.Op == opEdgeConfirm {
		n.mu.Lock()
		edge, _ := n.local.(edgeConfirmer)
		n.mu.Unlock()
		if edge == nil {
			return errors.New("this node's media plane serves no edge subscriptions")
		}
		reply.Missing = edge.ConfirmEdgeSubscriptions(req.Listed, time.Now().Add(-reconcileGrace))
		return nil
	}
	origin := n.edgeOrigin()
	if origin == nil {
		return errors.New("this node's media plane serves no edges")
	}
	switch req.Op {
	case opEdgeAdmit:
		if req.Edge == nil {
			return ivsrt.Errorf(ivsrt.EINVALID, "no subscription in the request")
		}
		sub := req.Edge
		subject, ref := n.feedSubject(sub.Node), sub.ID
		notify := func(notice ivsrt.EdgeNotice) {
			body, _ := json.Marshal(feedMessage{Ref: ref, Notice: &notice})
			if err := n.nc.Publish(subject, body); err != nil {
				n.log.Warn("cluster: tell an edge of a subscription", "node", sub.Node, "err", err)
			}
		}
		adm, err := origin.AdmitEdgeSubscription(ctx, req.Stage, sub, notify)
		var refused *ivsrt.EdgeRefusal
		if errors.As(err, &refused) {
			reply.Refusal = refused
			return nil
		}
		reply.Admission = adm
		return err
	case opEdgeStarted:
		return origin.EdgeSubscriptionStarted(ctx, req.Stage, req.Feed)
	case opEdgeEnded:
		return origin.EndEdgeSubscription(ctx, req.Stage, req.Feed)
	case opEdgeLayer:
		return origin.EdgeSubscriptionLayer(ctx, req.Stage, req.Feed, req.Ref)
	}
	return fmt.Errorf("unknown operation %q", req.Op)
}

// pruneEdges has this node's media plane end the subscriptions of edges
// that are gone, as the alive nodes show.
func (n *Node) pruneEdges(ctx context.Context, nodes map[string]*ivsrt.Node) {
	origin := n.edgeOrigin()
	if origin == nil {
		return
	}
	alive := make(ivsrt.EdgeNodes, len(nodes))
	for id, nd := range nodes {
		alive[id] = nd.StartedAt
	}
	origin.PruneEdgeSubscriptions(ctx, alive)
}

// subscriptionCounter is a media plane that counts the subscriptions it
// serves (the sfu's Server).
type subscriptionCounter interface {
	SubscriptionCount() int
}

// subscriptionsOf returns how many subscriptions local serves, 0 if it
// does not say.
func subscriptionsOf(local LocalMedia) int {
	if c, ok := local.(subscriptionCounter); ok {
		return c.SubscriptionCount()
	}
	return 0
}

// isSubscribe reports whether r starts a WHEP session.
func isSubscribe(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, ivsrt.WHEPPrefix)
}

// full reports whether this node serves the most subscriptions it may.
func (n *Node) full() bool {
	limit := n.cfg.MaxSubscriptions
	if limit == 0 {
		return false
	}
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	return subscriptionsOf(local) >= limit
}

// placeSubscriber returns the node that serves a new subscriber of a stage
// hosted on host: this node while it has room (the load balancer's
// choice); else the host, if it has room; else the node with the fewest
// subscriptions that has room. Draining nodes take none. The choice is
// counted against the node at once, so that subscribers placed before
// the next heartbeat spread out.
func (n *Node) placeSubscriber(ctx context.Context, host string) (string, error) {
	limit := n.cfg.MaxSubscriptions
	room := func(nd *ivsrt.Node) bool { return !nd.Draining && (limit == 0 || nd.Subscriptions < limit) }
	if !n.draining.Load() && !n.full() {
		return n.cfg.NodeID, nil
	}
	nodes, err := n.aliveNodes(ctx, false)
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	best := nodes[host]
	if best == nil || best.ID == n.cfg.NodeID || !room(best) {
		best = nil
		for _, nd := range nodes {
			if nd.ID == n.cfg.NodeID || !room(nd) {
				continue
			}
			if best == nil || nd.Subscriptions < best.Subscriptions || nd.Subscriptions == best.Subscriptions && nd.ID < best.ID {
				best = nd
			}
		}
	}
	if best == nil {
		return "", &unavailableError{"every node of the cluster serves the most subscriptions it may; try again later"}
	}
	best.Subscriptions++
	return best.ID, nil
}

// edgeFeeds is a media plane that feeds edges (the sfu's Server).
type edgeFeeds interface {
	AnswerEdgeFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, kinds []string, offer string,
		notify func(ivsrt.FeedEvent)) (answer string, info ivsrt.FeedInfo, feedID string, err error)
}

// edgeConfirmer is a media plane serving edge subscriptions (the sfu's
// Server).
type edgeConfirmer interface {
	ConfirmEdgeSubscriptions(listed map[ivsrt.StageARN][]string, admittedBefore time.Time) (missing []string)
}

// edgeLoop keeps this node's stages and their edges agreeing, every
// heartbeat interval, on a goroutine of its own: it waits on other nodes,
// which the heartbeat must never do (a node whose heartbeat stalls is
// taken for dead).
func (n *Node) edgeLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		nodes := n.nodes
		n.mu.Unlock()
		n.pruneEdges(ctx, nodes)
		n.reconcileEdges(ctx, nodes)
	}
}

// reconcileEdges has every other live node confirm the subscriptions of
// this node's stages it serves as an edge: those it does not serve are
// ended here, those it serves that this node no longer has, there. A
// notice lost on the way (NATS delivers at most once) leaves neither a
// subscription counted here that nobody gets, nor media sent there to
// someone the stage ended.
func (n *Node) reconcileEdges(ctx context.Context, nodes map[string]*ivsrt.Node) {
	origin := n.edgeOrigin()
	if origin == nil {
		return
	}
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	hosted := local.HostedStages()
	if len(hosted) == 0 {
		return
	}
	cutoff := time.Now().Add(-reconcileGrace)
	// The nodes at once: one slow to answer holds back none of the others.
	var wg sync.WaitGroup
	for id := range nodes {
		if id == n.cfg.NodeID {
			continue
		}
		wg.Go(func() { n.reconcileEdge(ctx, origin, id, hosted, cutoff) })
	}
	wg.Wait()
}

// reconcileEdge has node id confirm the subscriptions of this node's
// hosted stages it serves.
func (n *Node) reconcileEdge(ctx context.Context, origin ivsrt.EdgeOrigin, id string, hosted []ivsrt.StageARN, cutoff time.Time) {
	listed := origin.EdgeSubscriptionsOf(id, cutoff)
	for _, stage := range hosted {
		if _, ok := listed[stage]; !ok {
			listed[stage] = []string{}
		}
	}
	var reply mediaReply
	if err := n.request(ctx, id, mediaRequest{Op: opEdgeConfirm, Listed: listed}, 1, &reply); err != nil {
		n.log.Debug("cluster: confirm an edge's subscriptions", "node", id, "err", err)
		return
	}
	stageOf := map[string]ivsrt.StageARN{}
	for stage, ids := range listed {
		for _, sid := range ids {
			stageOf[sid] = stage
		}
	}
	for _, sid := range reply.Missing {
		if stage, ok := stageOf[sid]; ok {
			n.log.Info("cluster: ending a subscription its edge no longer serves", "stage", stage, "node", id)
			if err := origin.EndEdgeSubscription(ctx, stage, sid); err != nil {
				n.log.Warn("cluster: end an edge subscription", "stage", stage, "err", err)
			}
		}
	}
}
