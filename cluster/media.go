package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/ivsrt/ivsrt"
)

var _ ivsrt.MediaPlane = (*Node)(nil)

// mediaRequest is what a node asks of a stage's host over NATS.
type mediaRequest struct {
	Op          string              `json:"op"` // "disconnect", "closeStage", or one of replicationOps
	Stage       ivsrt.StageARN      `json:"stage"`
	Participant ivsrt.ParticipantID `json:"participant,omitempty"`
	Reason      string              `json:"reason,omitempty"`

	// Of the replication requests (replication.go).
	Source      ivsrt.StageARN            `json:"source,omitempty"`
	Replication *ivsrt.ReplicationRequest `json:"replication,omitempty"`
	Live        bool                      `json:"live,omitempty"`
	Offer       string                    `json:"offer,omitempty"`
	From        string                    `json:"from,omitempty"`
	Ref         string                    `json:"ref,omitempty"`
	Feed        string                    `json:"feed,omitempty"`

	// Of the edge requests (edge.go); ForEdge marks an openFeed of an
	// edge's pull.
	Edge    *ivsrt.EdgeSubscription     `json:"edge,omitempty"`
	Listed  map[ivsrt.StageARN][]string `json:"listed,omitempty"`
	ForEdge bool                        `json:"forEdge,omitempty"`
	Kinds   []string                    `json:"kinds,omitempty"` // what the edge pulls
}

// replicationOps are the requests of replication.go.
var replicationOps = map[string]bool{"startReplication": true, "stopReplication": true, "openFeed": true, "endFeed": true}

type mediaReply struct {
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"` // the domain code of Error

	// Of the replication requests.
	Replicated *ivsrt.ParticipantReplication `json:"replicated,omitempty"`
	Answer     string                        `json:"answer,omitempty"`
	Info       ivsrt.FeedInfo                `json:"info"`
	Feed       string                        `json:"feed,omitempty"`

	// Of the edge requests.
	Admission ivsrt.EdgeAdmission `json:"admission"`
	Refusal   *ivsrt.EdgeRefusal  `json:"refusal,omitempty"`
	// Of subscriptionPlaces, and edgeConfirm.
	Places  []ivsrt.SubscriptionPlace `json:"places,omitempty"`
	Missing []string                  `json:"missing,omitempty"`
}

// DisconnectParticipant implements ivsrt.MediaPlane for the whole cluster:
// the stage's host disconnects the participant, wherever the API call came
// in. The caller has revoked the token, so no node lets it back in.
func (n *Node) DisconnectParticipant(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, reason string) error {
	return n.onHost(ctx, mediaRequest{Op: "disconnect", Stage: stage, Participant: id, Reason: reason})
}

// CloseStage implements ivsrt.MediaPlane for the whole cluster: the host
// disconnects everyone, then the placement is dropped.
func (n *Node) CloseStage(ctx context.Context, stage ivsrt.StageARN) error {
	// This node refuses joins too, in case the stage is placed here next.
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	if err := local.CloseStage(ctx, stage); err != nil {
		return err
	}
	if err := n.onHost(ctx, mediaRequest{Op: "closeStage", Stage: stage}); err != nil {
		return err
	}
	h, err := n.store.GetStageHost(ctx, stage)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	return n.store.ReleaseStageHost(ctx, stage, h.NodeID)
}

// onHost runs req on the stage's host: here, or on another node over NATS.
// A stage without a live host has no live media: there is nothing to do.
func (n *Node) onHost(ctx context.Context, req mediaRequest) error {
	h, err := n.store.GetStageHost(ctx, req.Stage)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if h.NodeID == n.cfg.NodeID {
		return n.runLocal(ctx, req)
	}
	if h.LeaseUntil.Before(n.now()) {
		nodes, err := n.aliveNodes(ctx, false)
		if err != nil {
			return err
		}
		if nodes[h.NodeID] == nil {
			return nil // a dead node's stage: its session is ended by cleanup
		}
	}
	body, _ := json.Marshal(req)
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	msg, err := n.nc.RequestWithContext(rctx, n.subject(h.NodeID), body)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil // the host is gone: nothing of the stage is live any more
	} else if err != nil {
		return fmt.Errorf("cluster: %s on node %s: %w", req.Op, h.NodeID, err)
	}
	var reply mediaReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return fmt.Errorf("cluster: reply of node %s: %w", h.NodeID, err)
	}
	if reply.Error != "" {
		return fmt.Errorf("cluster: %s on node %s: %s", req.Op, h.NodeID, reply.Error)
	}
	return nil
}

func (n *Node) runLocal(ctx context.Context, req mediaRequest) error {
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	switch req.Op {
	case "disconnect":
		return local.DisconnectParticipant(ctx, req.Stage, req.Participant, req.Reason)
	case "closeStage":
		return local.CloseStage(ctx, req.Stage)
	}
	return fmt.Errorf("unknown operation %q", req.Op)
}

// runQuery answers another node's question that needs a reply here.
func (n *Node) runQuery(ctx context.Context, req mediaRequest, reply *mediaReply) error {
	switch req.Op {
	case opSubscriptionPlaces:
		reply.Places = n.localPlaces(req.Stage)
		return nil
	}
	return fmt.Errorf("unknown operation %q", req.Op)
}

// serveRequest answers another node's request.
func (n *Node) serveRequest(msg *nats.Msg) {
	var req mediaRequest
	reply := mediaReply{}
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		reply.Error = "malformed request"
	} else if req.Op == opSubscriptionPlaces {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		if err := n.runQuery(ctx, req, &reply); err != nil {
			reply.Error = err.Error()
		}
		cancel()
	} else if replicationOps[req.Op] || edgeOps[req.Op] {
		// These may wait on requests to other nodes, which may be waiting
		// on this one, or on the store: each runs on its own, for at most
		// two request timeouts.
		go n.serveReplication(msg, req)
		return
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		if err := n.runLocal(ctx, req); err != nil {
			n.log.Error("cluster: request from another node", "op", req.Op, "stage", req.Stage, "err", err)
			reply.Error = err.Error()
		}
		cancel()
	}
	body, _ := json.Marshal(reply)
	if err := msg.Respond(body); err != nil {
		n.log.Warn("cluster: answer a request", "err", err)
	}
}

// serveReplication answers another node's replication or edge request.
func (n *Node) serveReplication(msg *nats.Msg, req mediaRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.cfg.RequestTimeout)
	defer cancel()
	reply := mediaReply{}
	run := n.runReplication
	if edgeOps[req.Op] {
		run = n.runEdge
	}
	if err := run(ctx, req, &reply); err != nil {
		reply.Error, reply.Code = ivsrt.ErrorMessage(err), ivsrt.ErrorCode(err)
		if reply.Code == ivsrt.EINTERNAL {
			n.log.Error("cluster: request from another node", "op", req.Op, "stage", req.Stage, "err", err)
			reply.Error = err.Error()
		}
	}
	body, _ := json.Marshal(reply)
	if err := msg.Respond(body); err != nil {
		n.log.Warn("cluster: answer a request", "err", err)
	}
}
