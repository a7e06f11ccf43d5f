package cluster

import (
	"encoding/json"
	"net/http"
	"time"
)

// StatusPath is where a node tells which nodes it sees alive.
const StatusPath = "/v1/cluster/nodes"

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
		if r.URL.Path != StatusPath {
			writeJSONError(w, http.StatusNotFound, "Not found.")
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSONError(w, http.StatusMethodNotAllowed, "Use GET.")
			return
		}
		if authorize != nil && !authorize(w, r, nil) {
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
