package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt"
)

// ForwardedHeader marks a media request one node has routed to another, so
// that it is never routed again.
const ForwardedHeader = "Ivsrt-Forwarded-By"

// Route returns local (this node's media plane: the events WebSocket,
// WHIP, WHEP) behind the cluster's routing: a request for a stage hosted on
// another node is proxied there, placing the stage first if it has no
// host. Requests this node cannot place (no token, a token it refuses) go
// to local, which answers them as on a single node.
func (n *Node) Route(local http.Handler) http.Handler {
	proxies := &proxySet{node: n}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(ForwardedHeader) != "" || r.Method == http.MethodOptions {
			if r.Header.Get(ForwardedHeader) != "" && isSubscribe(r) && n.full() {
				// Sent here on a load the heartbeats had not caught up
				// with: the limit holds, and the client tries again.
				n.refuseRoute(w, r, &unavailableError{"this node serves the most subscriptions it may; try again"})
				return
			}
			local.ServeHTTP(w, r)
			return
		}
		target, err := n.routeOf(r)
		if err == nil && target != "" && isSubscribe(r) {
			// A subscriber may be served by any node (edge.go).
			target, err = n.placeSubscriber(r.Context(), target)
		}
		if err != nil {
			n.refuseRoute(w, r, err)
			return
		}
		if target == "" || target == n.cfg.NodeID {
			local.ServeHTTP(w, r)
			return
		}
		p, err := proxies.get(r.Context(), target)
		if err != nil {
			n.refuseRoute(w, r, err)
			return
		}
		// A WebSocket outlives the server's read and write timeouts, which
		// are meant for ordinary requests; the proxy hijacks the connection
		// with whatever deadlines it has.
		if r.Header.Get("Upgrade") != "" {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		p.ServeHTTP(w, r)
	})
}

// refuseRoute answers a media request that could not be routed: 503 to
// try again soon if the stage's node is away, else 500.
func (n *Node) refuseRoute(w http.ResponseWriter, r *http.Request, err error) {
	var unavailable *unavailableError
	if errors.As(err, &unavailable) {
		w.Header().Set("Retry-After", "2")
		writeJSONError(w, http.StatusServiceUnavailable, unavailable.Error())
		return
	}
	n.log.Error("cluster: route media request", "path", r.URL.Path, "err", err)
	writeJSONError(w, http.StatusInternalServerError, "internal server error")
}

// unavailableError is a stage whose host cannot be reached for now.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string { return e.msg }

// routeOf returns the node that should serve r, "" for this one.
func (n *Node) routeOf(r *http.Request) (string, error) {
	path := r.URL.Path
	// A session resource (/whip/{id}, /whep/{participant}/{id}) lives where
	// its id says.
	if id, ok := resourceID(path); ok {
		node, _, found := strings.Cut(id, ".")
		if !found {
			return "", nil
		}
		return node, nil
	}
	joining := path == ivsrt.EventsPath ||
		path == ivsrt.WHIPPath && r.Method == http.MethodPost ||
		strings.HasPrefix(path, ivsrt.WHEPPrefix) && r.Method == http.MethodPost
	if !joining {
		return "", nil
	}
	token := ivsrt.PresentedToken(path, r.Header.Get("Authorization"), r.URL.Query().Get("access_token"))
	if token == "" {
		return "", nil
	}
	claims, err := n.tokens.Verify(r.Context(), token)
	if err != nil && !errors.Is(err, ivsrt.ErrTokenExpired) {
		return "", nil // refused where it lands, with the reason
	}
	return n.placeStage(r.Context(), claims.StageARN)
}

// resourceID returns the session id of a WHIP or WHEP resource path.
func resourceID(path string) (string, bool) {
	if rest, ok := strings.CutPrefix(path, ivsrt.WHIPPath+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
		return rest, true
	}
	if rest, ok := strings.CutPrefix(path, ivsrt.WHEPPrefix); ok {
		if _, id, found := strings.Cut(rest, "/"); found && id != "" && !strings.Contains(id, "/") {
			return id, true
		}
	}
	return "", false
}

// placeStage returns the node hosting the stage, choosing one by load if
// it has none: the node with the fewest participants (then the least CPU).
func (n *Node) placeStage(ctx context.Context, stage ivsrt.StageARN) (string, error) {
	nodes, err := n.aliveNodes(ctx, false)
	if err != nil {
		return "", err
	}
	h, err := n.store.GetStageHost(ctx, stage)
	switch {
	case ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND:
	case err != nil:
		return "", err
	case h.LeaseUntil.After(n.now()):
		if h.NodeID == n.cfg.NodeID || nodes[h.NodeID] != nil {
			return h.NodeID, nil
		}
		return "", &unavailableError{fmt.Sprintf("the stage's node %s is not answering; try again in a few seconds", h.NodeID)}
	case nodes[h.NodeID] == nil:
		// Its host died: end what it left open before the stage starts
		// anew, so that the dead node's participants do not linger.
		if err := n.takeOrphans(ctx); err != nil {
			return "", err
		}
	}
	candidate := n.leastLoaded(nodes)
	h, err = n.store.ClaimStageHost(ctx, stage, candidate, n.now().Add(n.cfg.LeaseTTL))
	if err != nil {
		return "", err
	}
	if h.NodeID != n.cfg.NodeID && nodes[h.NodeID] == nil {
		return "", &unavailableError{fmt.Sprintf("the stage's node %s is not answering; try again in a few seconds", h.NodeID)}
	}
	return h.NodeID, nil
}

// leastLoaded picks the node a new stage goes to, and counts the stage's
// first participant against it at once, so that stages placed before the
// next heartbeat spread out.
func (n *Node) leastLoaded(nodes map[string]*ivsrt.Node) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var best *ivsrt.Node
	for _, nd := range nodes {
		if best != nil && nd.Draining != best.Draining {
			// A draining node only if every node drains.
			if nd.Draining {
				continue
			}
			best = nd
			continue
		}
		if best == nil || nd.Participants < best.Participants ||
			nd.Participants == best.Participants && (nd.CPU < best.CPU || nd.CPU == best.CPU && nd.ID < best.ID) {
			best = nd
		}
	}
	if best == nil {
		return n.cfg.NodeID
	}
	best.Participants++
	return best.ID
}

// proxySet keeps a reverse proxy per node.
type proxySet struct {
	node *Node
	mu   sync.Mutex
	byID map[string]*httputil.ReverseProxy
}

func (ps *proxySet) get(ctx context.Context, id string) (*httputil.ReverseProxy, error) {
	nodes, err := ps.node.aliveNodes(ctx, false)
	if err != nil {
		return nil, err
	}
	nd := nodes[id]
	if nd == nil {
		return nil, &unavailableError{fmt.Sprintf("node %s is not answering; join again", id)}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.byID[id+" "+nd.URL]; p != nil {
		return p, nil
	}
	target, err := url.Parse(nd.URL)
	if err != nil {
		return nil, fmt.Errorf("node %s URL %q: %w", id, nd.URL, err)
	}
	self := ps.node.cfg.NodeID
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // resource URLs keep naming the node the client used
			pr.SetXForwarded()
			pr.Out.Header.Set(ForwardedHeader, self)
			pr.Out.Header.Del(ivsrt.ForwardedPublicURLHeader)
			if public := ps.node.cfg.PublicURL; public != "" {
				pr.Out.Header.Set(ivsrt.ForwardedPublicURLHeader, public)
			}
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			ps.node.log.Warn("cluster: proxy to node", "node", id, "path", r.URL.Path, "err", err)
			writeJSONError(w, http.StatusBadGateway, "the stage's node could not be reached; join again")
		},
	}
	if ps.byID == nil {
		ps.byID = map[string]*httputil.ReverseProxy{}
	}
	ps.byID[id+" "+nd.URL] = p
	return p, nil
}

func writeJSONError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": message})
}
