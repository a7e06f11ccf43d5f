package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/ivsrt/ivsrt"
)

// StatusPath is where a node tells which nodes it sees alive.
const StatusPath = "/v1/cluster/nodes"

// StagesPath is where a node tells which node hosts a stage, and which
// serves each of its participants.
const StagesPath = "/v1/cluster/stages"

// NodeView is a node as StatusHandler shows it.
type NodeView struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Participants int       `json:"participants"`
	CPU          float64   `json:"cpu"`
	StartedAt    time.Time `json:"startedAt"`
	HeartbeatAt  time.Time `json:"heartbeatAt"`
}

// StatusHandler serves GET StatusPath: {"self": id, "nodes": [NodeView]},
// the nodes alive as this node sees them. authorize checks the request
// first (it answers refusals itself); nil lets anyone in.
func (n *Node) StatusHandler(authorize func(w http.ResponseWriter, r *http.Request, body []byte) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !admitGet(w, r, StatusPath, authorize) {
			return
		}
		nodes, err := n.Nodes(r.Context())
		if err != nil {
			n.log.Error("cluster: list nodes", "err", err)
			writeJSONError(w, http.StatusInternalServerError, "Internal server error.")
			return
		}
		out := struct {
			Self  string     `json:"self"`
			Nodes []NodeView `json:"nodes"`
		}{Self: n.cfg.NodeID, Nodes: make([]NodeView, 0, len(nodes))}
		for _, nd := range nodes {
			out.Nodes = append(out.Nodes, NodeView{ID: nd.ID, URL: nd.URL, Participants: nd.Participants, CPU: nd.CPU,
				StartedAt: nd.StartedAt, HeartbeatAt: nd.HeartbeatAt})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

// StageView is a stage's place in the cluster as StagesHandler shows it.
type StageView struct {
	Stage ivsrt.StageARN `json:"stage"`
	// Host is the node hosting the stage's media, "" if it has none (nobody
	// has joined since it was last placed). Its lease may have run out
	// while nobody is connected.
	Host       string    `json:"host"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	// Session is the stage's active session, "" if it has none.
	Session      ivsrt.SessionID   `json:"session,omitempty"`
	Participants []ParticipantView `json:"participants"`
}

// ParticipantView is a connected participant and the node serving it:
// the host, which holds its events connection and its publication; and
// each of its subscriptions with the node whose media it gets, the host
// or an edge.
type ParticipantView struct {
	ID            ivsrt.ParticipantID `json:"id"`
	Node          string              `json:"node"`
	Subscriptions []SubscriptionView  `json:"subscriptions"`
}

// SubscriptionView is a subscription and the node serving its media.
type SubscriptionView struct {
	Publisher ivsrt.ParticipantID `json:"publisher"`
	Node      string              `json:"node"`
}

// StagesHandler serves GET StagesPath?arn=<stage ARN>: a StageView of the
// stage, with the participants the store has connected in its active
// session. authorize checks the request first (it answers refusals
// itself); nil lets anyone in.
func (n *Node) StagesHandler(authorize func(w http.ResponseWriter, r *http.Request, body []byte) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !admitGet(w, r, StagesPath, authorize) {
			return
		}
		arn := r.URL.Query().Get("arn")
		var v ivsrt.Validation
		v.StageARN("arn", arn)
		if err := v.Err(); err != nil {
			writeJSONError(w, http.StatusBadRequest, ivsrt.ErrorMessage(err))
			return
		}
		view, err := n.stageView(r.Context(), ivsrt.StageARN(arn))
		if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
			writeJSONError(w, http.StatusNotFound, ivsrt.ErrorMessage(err))
			return
		} else if err != nil {
			n.log.Error("cluster: show stage", "stage", arn, "err", err)
			writeJSONError(w, http.StatusInternalServerError, "Internal server error.")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(view)
	})
}

// stageView reads where the stage and its connected participants are.
// Returns ENOTFOUND if the stage does not exist.
func (n *Node) stageView(ctx context.Context, arn ivsrt.StageARN) (*StageView, error) {
	stg, err := n.store.GetStage(ctx, arn)
	if err != nil {
		return nil, err
	}
	view := &StageView{Stage: arn, Session: stg.ActiveSessionID, Participants: []ParticipantView{}}
	host, err := n.store.GetStageHost(ctx, arn)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		host = nil
	} else if err != nil {
		return nil, err
	} else {
		view.Host, view.LeaseUntil = host.NodeID, host.LeaseUntil
	}
	if stg.ActiveSessionID == "" {
		return view, nil
	}
	places, err := n.subscriptionPlaces(ctx, host)
	if err != nil {
		return nil, err
	}
	connected := ivsrt.ParticipantConnected
	page := ivsrt.Page{Limit: ivsrt.MaxPageSize}
	for {
		ps, next, err := n.store.ListParticipants(ctx, arn, stg.ActiveSessionID, ivsrt.ParticipantFilter{State: &connected}, page)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			pv := ParticipantView{ID: p.ID, Node: participantNode(host, p), Subscriptions: []SubscriptionView{}}
			for _, sp := range places {
				if sp.Subscriber == p.ID {
					pv.Subscriptions = append(pv.Subscriptions, SubscriptionView{Publisher: sp.Publisher, Node: sp.Node})
				}
			}
			view.Participants = append(view.Participants, pv)
		}
		if next == "" {
			return view, nil
		}
		page.After = next
	}
}

// participantNode returns the node serving a connected participant of a
// stage placed as host says (nil: placed nowhere): the host, which holds
// every participant's events connection and publications. Its
// subscriptions may be served by edges: subscriptionPlaces says.
func participantNode(host *ivsrt.StageHost, p *ivsrt.Participant) string {
	if host == nil {
		return ""
	}
	return host.NodeID
}

// subscriptionPlaces asks the stage's host, if it is alive, where its
// live subscriptions are served.
func (n *Node) subscriptionPlaces(ctx context.Context, host *ivsrt.StageHost) ([]ivsrt.SubscriptionPlace, error) {
	if host == nil {
		return nil, nil
	}
	if host.NodeID == n.cfg.NodeID {
		return n.localPlaces(host.StageARN), nil
	}
	live, err := n.liveHost(ctx, host.StageARN)
	if err != nil || live == "" {
		return nil, err
	}
	var reply mediaReply
	if err := n.request(ctx, live, mediaRequest{Op: opSubscriptionPlaces, Stage: host.StageARN}, 1, &reply); err != nil {
		return nil, err
	}
	return reply.Places, nil
}

// placesReporter is a media plane that tells where a stage's
// subscriptions are served (the sfu's Server).
type placesReporter interface {
	SubscriptionPlaces(stage ivsrt.StageARN, self string) []ivsrt.SubscriptionPlace
}

func (n *Node) localPlaces(stage ivsrt.StageARN) []ivsrt.SubscriptionPlace {
	n.mu.Lock()
	r, _ := n.local.(placesReporter)
	n.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.SubscriptionPlaces(stage, n.cfg.NodeID)
}

// admitGet lets through a GET of path that authorize (nil: anyone) lets
// in, and answers any other request itself.
func admitGet(w http.ResponseWriter, r *http.Request, path string, authorize func(w http.ResponseWriter, r *http.Request, body []byte) bool) bool {
	if r.URL.Path != path {
		writeJSONError(w, http.StatusNotFound, "Not found.")
		return false
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSONError(w, http.StatusMethodNotAllowed, "Use GET.")
		return false
	}
	return authorize == nil || authorize(w, r, nil)
}
