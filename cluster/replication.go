package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ivsrt/ivsrt"
)

// Participant replication across nodes. A replica lives on the node that
// hosts its destination stage: StartReplication and StopReplication go
// there (placing the destination first if nobody is in it). That node
// feeds the replica from the node that hosts the source stage: it sends
// that node an offer over NATS (OpenFeed), is answered with a feed of the
// source's publication, a peer connection between the two nodes, and is
// told over NATS what the feed does (the source stops publishing,
// publishes again, the feed ends). Signalling stays on the cluster's
// NATS, which only nodes reach: no credential of the public API or media
// plane is made for it.

// Replication is what the cluster asks of a node's media plane for
// replications: those whose replica is hosted here, and the feeds of the
// publications hosted here (see the sfu package).
type Replication interface {
	ivsrt.ReplicationPlane
	AnswerFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, live bool, offer string,
		notify func(ivsrt.FeedEvent)) (answer string, info ivsrt.FeedInfo, feedID string, err error)
	EndFeed(id string)
}

var _ ivsrt.ReplicationPlane = (*Node)(nil)

// replication returns the local media plane's replication, or nil.
func (n *Node) replication() Replication {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, _ := n.local.(Replication)
	return r
}

var errNoReplication = ivsrt.Errorf(ivsrt.EINTERNAL, "this node's media plane does not replicate participants")

// StartReplication implements ivsrt.ReplicationPlane for the whole
// cluster: it runs on the node hosting the destination stage, which is
// placed first if it has no host.
func (n *Node) StartReplication(ctx context.Context, r *ivsrt.ReplicationRequest) (*ivsrt.ParticipantReplication, error) {
	host, err := n.placeStage(ctx, r.DestinationStageARN)
	if err != nil {
		return nil, err
	}
	if host == n.cfg.NodeID {
		local := n.replication()
		if local == nil {
			return nil, errNoReplication
		}
		return local.StartReplication(ctx, r)
	}
	var reply mediaReply
	// The host opens a feed with a request of its own: it may take two
	// request timeouts.
	if err := n.request(ctx, host, mediaRequest{Op: "startReplication", Stage: r.DestinationStageARN, Replication: r}, 2, &reply); err != nil {
		return nil, err
	}
	if reply.Replicated == nil {
		return nil, fmt.Errorf("cluster: startReplication on node %s: no replication in the reply", host)
	}
	return reply.Replicated, nil
}

// StopReplication implements ivsrt.ReplicationPlane for the whole
// cluster: the node hosting the destination stage ends the replica.
// Returns ENOTFOUND if no live node hosts it.
func (n *Node) StopReplication(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN) error {
	notLive := ivsrt.Errorf(ivsrt.ENOTFOUND, "No replica of participant %s is live in stage %s.", id, dest)
	host, err := n.liveHost(ctx, dest)
	if err != nil {
		return err
	}
	switch host {
	case "":
		return notLive
	case n.cfg.NodeID:
		local := n.replication()
		if local == nil {
			return notLive
		}
		return local.StopReplication(ctx, source, id, dest)
	}
	var reply mediaReply
	err = n.request(ctx, host, mediaRequest{Op: "stopReplication", Stage: dest, Source: source, Participant: id}, 1, &reply)
	if errors.Is(err, nats.ErrNoResponders) {
		return notLive
	}
	return err
}

// liveHost returns the node hosting the stage, "" if none is alive.
func (n *Node) liveHost(ctx context.Context, stage ivsrt.StageARN) (string, error) {
	h, err := n.store.GetStageHost(ctx, stage)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if h.NodeID == n.cfg.NodeID {
		return h.NodeID, nil
	}
	nodes, err := n.aliveNodes(ctx, false)
	if err != nil {
		return "", err
	}
	if nodes[h.NodeID] == nil {
		return "", nil
	}
	return h.NodeID, nil
}

// Remote reports whether the stage's media is hosted on another live node
// (the sfu's RemoteFeeds).
func (n *Node) Remote(ctx context.Context, stage ivsrt.StageARN) (bool, error) {
	host, err := n.liveHost(ctx, stage)
	if err != nil {
		return false, err
	}
	return host != "" && host != n.cfg.NodeID, nil
}

// feedMessage tells a replica's node what a feed does.
type feedMessage struct {
	Ref   string          `json:"ref"`
	Event ivsrt.FeedEvent `json:"event"`
	// Or what an origin tells an edge of a subscription (edge.go).
	Notice *ivsrt.EdgeNotice `json:"notice,omitempty"`
}

// OpenFeed has the node hosting the stage answer a replica's offer (the
// sfu's RemoteFeeds): the request carries a reference under which that
// node reports what the feed does, to this node's feed subject.
func (n *Node) OpenFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, live bool, offer string,
	notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
	return n.openFeed(ctx, mediaRequest{Op: "openFeed", Stage: stage, Participant: id, Live: live, Offer: offer}, notify)
}

// OpenEdgeFeed has the node hosting the stage answer an edge's offer (the
// sfu's EdgeOrigins), as OpenFeed does a replica's.
func (n *Node) OpenEdgeFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, kinds []string, offer string,
	notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
	return n.openFeed(ctx, mediaRequest{Op: "openFeed", Stage: stage, Participant: id, Live: true, Offer: offer, ForEdge: true, Kinds: kinds}, notify)
}

func (n *Node) openFeed(ctx context.Context, req mediaRequest, notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
	stage, id := req.Stage, req.Participant
	host, err := n.liveHost(ctx, stage)
	if err != nil {
		return "", ivsrt.FeedInfo{}, nil, err
	}
	if host == "" || host == n.cfg.NodeID {
		return "", ivsrt.FeedInfo{}, nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "Participant %s is not publishing in stage %s.", id, stage)
	}
	b := make([]byte, 12)
	rand.Read(b)
	ref := hex.EncodeToString(b)
	n.mu.Lock()
	n.feeds[ref] = notify
	n.mu.Unlock()
	forget := func() {
		n.mu.Lock()
		delete(n.feeds, ref)
		n.mu.Unlock()
	}
	var reply mediaReply
	req.From, req.Ref = n.cfg.NodeID, ref
	err = n.request(ctx, host, req, 1, &reply)
	if errors.Is(err, nats.ErrNoResponders) {
		err = ivsrt.Errorf(ivsrt.ENOTFOUND, "Participant %s is not publishing in stage %s.", id, stage)
	}
	if err != nil {
		forget()
		return "", ivsrt.FeedInfo{}, nil, err
	}
	end := func() {
		forget()
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		var ignored mediaReply
		if err := n.request(ctx, host, mediaRequest{Op: "endFeed", Stage: stage, Feed: reply.Feed}, 1, &ignored); err != nil {
			n.log.Debug("cluster: end a feed", "node", host, "err", err)
		}
	}
	return reply.Answer, reply.Info, end, nil
}

// feedSubject is where node id hears what the feeds of its replicas do.
func (n *Node) feedSubject(id string) string { return n.cfg.SubjectPrefix + ".feed." + id }

// serveFeedMessage passes what a feed does to its replica. NATS delivers
// one subscription's messages in order, one at a time.
func (n *Node) serveFeedMessage(msg *nats.Msg) {
	var m feedMessage
	if err := json.Unmarshal(msg.Data, &m); err != nil {
		return
	}
	n.mu.Lock()
	notify, edge := n.feeds[m.Ref], n.edgeSubs[m.Ref]
	n.mu.Unlock()
	switch {
	case m.Notice != nil && edge != nil:
		if m.Notice.Ended {
			n.forgetFeed(m.Ref)
		}
		edge(*m.Notice)
	case m.Notice == nil && notify != nil:
		notify(m.Event)
	}
}

// runReplication runs a replication request of another node here.
func (n *Node) runReplication(ctx context.Context, req mediaRequest, reply *mediaReply) error {
	local := n.replication()
	if local == nil {
		return errNoReplication
	}
	switch req.Op {
	case "startReplication":
		if req.Replication == nil {
			return ivsrt.Errorf(ivsrt.EINVALID, "no replication in the request")
		}
		r, err := local.StartReplication(ctx, req.Replication)
		reply.Replicated = r
		return err
	case "stopReplication":
		return local.StopReplication(ctx, req.Source, req.Participant, req.Stage)
	case "openFeed":
		subject, ref := n.feedSubject(req.From), req.Ref
		notify := func(ev ivsrt.FeedEvent) {
			body, _ := json.Marshal(feedMessage{Ref: ref, Event: ev})
			if err := n.nc.Publish(subject, body); err != nil {
				n.log.Warn("cluster: tell a replica's node of its feed", "node", req.From, "err", err)
			}
		}
		answer, info, feed, err := "", ivsrt.FeedInfo{}, "", error(nil)
		if req.ForEdge {
			edge, ok := local.(edgeFeeds)
			if !ok {
				return errors.New("this node's media plane feeds no edges")
			}
			answer, info, feed, err = edge.AnswerEdgeFeed(ctx, req.Stage, req.Participant, req.Kinds, req.Offer, notify)
		} else {
			answer, info, feed, err = local.AnswerFeed(ctx, req.Stage, req.Participant, req.Live, req.Offer, notify)
		}
		reply.Answer, reply.Info, reply.Feed = answer, info, feed
		return err
	case "endFeed":
		local.EndFeed(req.Feed)
		return nil
	}
	return fmt.Errorf("unknown operation %q", req.Op)
}

// request sends req to node id and decodes its reply, waiting up to
// timeouts request timeouts. An error the node answered with comes back
// with its domain code.
func (n *Node) request(ctx context.Context, id string, req mediaRequest, timeouts int, reply *mediaReply) error {
	body, _ := json.Marshal(req)
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout*time.Duration(timeouts))
	defer cancel()
	msg, err := n.nc.RequestWithContext(rctx, n.subject(id), body)
	if err != nil {
		return fmt.Errorf("cluster: %s on node %s: %w", req.Op, id, err)
	}
	if err := json.Unmarshal(msg.Data, reply); err != nil {
		return fmt.Errorf("cluster: reply of node %s: %w", id, err)
	}
	return reply.err(req.Op, id)
}

// err returns the error a reply carries.
func (r *mediaReply) err(op, node string) error {
	switch {
	case r.Error == "":
		return nil
	case r.Code != "" && r.Code != ivsrt.EINTERNAL:
		return ivsrt.Errorf(r.Code, "%s", r.Error)
	}
	return fmt.Errorf("cluster: %s on node %s: %s", op, node, r.Error)
}
