// Package cluster runs many ivsrt nodes behind one API. The nodes share a
// PostgreSQL store (ivsrt.ClusterStore) and talk over NATS:
//
//   - every node serves the API, over the shared store;
//   - each stage's media lives on one node, its host, chosen by load when
//     the stage first needs one and held with a lease the host renews while
//     anyone is connected there; a participant may join through any node,
//     which proxies the media plane's HTTP requests (the events WebSocket,
//     WHIP, WHEP) to the host, while the media itself goes straight to the
//     host's ICE candidates;
//   - API calls that act on live media (DisconnectParticipant, DeleteStage)
//     reach the host by NATS request/reply;
//   - when a node dies, its leases run out and a survivor ends the sessions
//     it hosted, recording everyone's departure; participants join again
//     and land on a live node;
//   - a node started again with the same id (after a crash) ends the
//     sessions of its previous run itself, before it serves; a process
//     given the id of a node still running is refused;
//   - work that must run once per cluster (delivering the event stream)
//     runs on the node holding the store's lock for it.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ivsrt/ivsrt"
)

// Defaults of Config.
const (
	DefaultLeaseTTL          = 15 * time.Second
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultDeadAfter         = 10 * time.Second
	DefaultRequestTimeout    = 5 * time.Second
	DefaultSubjectPrefix     = "ivsrt.cluster"
)

// Config configures a node.
type Config struct {
	// NodeID names this node; empty makes one up (host name and a random
	// suffix), new at every start, so that a restarted node is a new one
	// and the stages of its last run are cleaned up as a dead node's. A
	// node started again with the same id cleans them up itself, at once.
	// Two processes never run under one id at a time: see Start.
	NodeID string
	// URL is where the other nodes reach this node's HTTP listener.
	URL string
	// PublicURL is where clients reach this node (or the cluster's load
	// balancer): a request it routes to another node carries it, so that
	// the URLs in the answer name it.
	PublicURL string
	// NATSURL is the NATS server (or comma-separated servers) of the
	// cluster; SubjectPrefix starts the subjects the nodes use.
	NATSURL       string
	SubjectPrefix string

	LeaseTTL          time.Duration // how long a stage's placement holds without renewal
	HeartbeatInterval time.Duration // how often the node reports its load (and renews leases)
	DeadAfter         time.Duration // silence after which a node counts as dead
	RequestTimeout    time.Duration // of requests to other nodes

	// MaxSubscriptions is how many subscriptions the node serves, of its
	// own stages and as an edge, before new subscribers go to another
	// node; 0 sets no limit, and a node serves every subscriber whose
	// request reaches it.
	MaxSubscriptions int
}

func (c *Config) setDefaults() error {
	if c.NodeID == "" {
		host, _ := os.Hostname()
		host = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, host)
		b := make([]byte, 3)
		rand.Read(b)
		c.NodeID = strings.Trim(host, "-") + "-" + hex.EncodeToString(b)
	}
	if strings.ContainsAny(c.NodeID, ". *>\t\r\n") {
		return fmt.Errorf("cluster: node id %q: no dots, spaces or wildcards", c.NodeID)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("cluster: node URL %q: want http(s)://host:port", c.URL)
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	if c.NATSURL == "" {
		return errors.New("cluster: a NATS URL is required")
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	return nil
}

// LocalMedia is this node's media plane, as the cluster needs it.
type LocalMedia interface {
	ivsrt.MediaPlane
	// HostedStages returns the stages with someone connected here.
	HostedStages() []ivsrt.StageARN
	// ParticipantCount returns how many participants are connected here.
	ParticipantCount() int
	// EvictStage disconnects everyone in a stage this node no longer hosts.
	EvictStage(ctx context.Context, stage ivsrt.StageARN, reason string)
	// FailInterruptedRecordings ends, as failed, the recordings a dead
	// node left in progress in the session.
	FailInterruptedRecordings(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID) error
}

// Store is what a node needs of the shared store.
type Store interface {
	ivsrt.Store
	ivsrt.ClusterStore
}

// Node is this process as a member of the cluster.
type Node struct {
	cfg    Config
	store  Store
	tokens ivsrt.TokenIssuer
	log    *slog.Logger
	now    func() time.Time
	nc     *nats.Conn

	mu        sync.Mutex
	local     LocalMedia
	nodes     map[string]*ivsrt.Node // alive nodes, refreshed with each heartbeat
	nodesAt   time.Time
	startedAt time.Time
	draining  atomic.Bool // see SetDraining
	// The outcome of the last heartbeat, for Healthy.
	lastHeartbeat time.Time
	heartbeatErr  error
	cpu           cpuMeter
	// The store's lock on this node's id (see claimID): lost is closed if
	// the connection holding it broke, release gives it up; idErr is why
	// it could not be taken back since, for Healthy.
	idLost    <-chan struct{}
	idRelease func()
	idErr     error

	cancel  context.CancelFunc
	stopped chan struct{} // closed by Close
	closing sync.Once
	wg      sync.WaitGroup
	sub     *nats.Subscription

	// The feeds of this node's replicas, by the reference their source's
	// node reports under (replication.go), and the subscription it
	// reports to.
	feeds   map[string]func(ivsrt.FeedEvent)
	feedSub *nats.Subscription
	// What origins tell of the subscriptions this node serves as an
	// edge, by subscription id (edge.go), on the same subject.
	edgeSubs map[string]func(ivsrt.EdgeNotice)
}

// done is closed when the node is closing.
func (n *Node) done() <-chan struct{} { return n.stopped }

// Option configures a Node.
type Option func(*Node)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(n *Node) { n.log = l } }

// New connects to NATS and returns this node, not yet started. tokens
// verifies participant tokens, to learn the stage of a media request.
func New(cfg Config, store Store, tokens ivsrt.TokenIssuer, opts ...Option) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, store: store, tokens: tokens, log: slog.New(slog.DiscardHandler), now: time.Now,
		nodes: map[string]*ivsrt.Node{}, stopped: make(chan struct{}), feeds: map[string]func(ivsrt.FeedEvent){},
		edgeSubs: map[string]func(ivsrt.EdgeNotice){}}
	for _, o := range opts {
		o(n)
	}
	n.log = n.log.With("node", cfg.NodeID)
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("ivsrt "+cfg.NodeID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("cluster: NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { n.log.Info("cluster: NATS reconnected") }),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	n.nc = nc
	return n, nil
}

// ResourcePrefix is what the ids of this node's WHIP and WHEP sessions
// start with, so that any node can route a request for one here.
func (n *Node) ResourcePrefix() string { return n.cfg.NodeID + "." }

// ErrNodeIDInUse is what the error Start returns is (errors.Is) when
// another process runs as a node of the same id.
var ErrNodeIDInUse = errors.New("cluster: node id in use")

// idInUseError tells what the store knows of the process holding an id.
type idInUseError struct{ msg string }

func (e *idInUseError) Error() string        { return e.msg }
func (e *idInUseError) Is(target error) bool { return target == ErrNodeIDInUse }

// Start joins the cluster with local as this node's media plane: the node
// reports itself alive, answers the other nodes' requests, renews its
// stages' leases and cleans up after dead nodes, until Close.
//
// Before any of that, it takes the store's lock on its id, which it holds
// while it runs: if another process holds it, a node of that id is
// running, and Start fails with ErrNodeIDInUse rather than take over that
// node's stages and requests. Then it ends the sessions of the stages
// still placed on its id: they are its previous run's (it hosts nothing
// yet), which crashed without cleaning up.
func (n *Node) Start(ctx context.Context, local LocalMedia) (err error) {
	if err := n.claimID(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			n.releaseID()
		}
	}()
	n.mu.Lock()
	n.local = local
	n.startedAt = n.now()
	n.mu.Unlock()
	if err := n.takeOwnStages(ctx); err != nil {
		return fmt.Errorf("cluster: end the sessions of the previous run: %w", err)
	}
	if err := n.heartbeat(ctx); err != nil {
		return fmt.Errorf("cluster: first heartbeat: %w", err)
	}
	sub, err := n.nc.Subscribe(n.subject(n.cfg.NodeID), n.serveRequest)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	n.sub = sub
	if n.feedSub, err = n.nc.Subscribe(n.feedSubject(n.cfg.NodeID), n.serveFeedMessage); err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	// Make sure the subscription is in place before anyone is told of us.
	if err := n.nc.FlushTimeout(n.cfg.RequestTimeout); err != nil {
		n.log.Warn("cluster: NATS not reachable yet", "err", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.mu.Lock()
	n.cancel = cancel
	n.mu.Unlock()
	n.wg.Go(func() { n.loop(ctx) })
	n.wg.Go(func() { n.edgeLoop(ctx) })
	n.log.Info("cluster: joined", "url", n.cfg.URL)
	return nil
}

// Close leaves the cluster: it stops answering and reporting, gives up the
// leases of the stages still hosted here (call it after the local media
// plane has closed, so that those are empty), disconnects from NATS, and
// lets go of its id.
func (n *Node) Close() {
	n.mu.Lock()
	cancel := n.cancel
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	done := true
	n.closing.Do(func() { close(n.stopped); done = false })
	if done {
		return
	}
	n.wg.Wait()
	if n.sub != nil {
		n.sub.Unsubscribe()
	}
	if n.feedSub != nil {
		n.feedSub.Unsubscribe()
	}
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	if local != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		for _, arn := range local.HostedStages() {
			if err := n.store.ReleaseStageHost(ctx, arn, n.cfg.NodeID); err != nil {
				n.log.Warn("cluster: release stage", "stage", arn, "err", err)
			}
		}
		cancel()
	}
	n.nc.Close()
	n.releaseID()
}

// idLockName is the store lock a node holds under its id while it runs.
func idLockName(id string) string { return "node-id:" + id }

// claimID takes the store's lock on this node's id, or returns an
// ErrNodeIDInUse error that tells what the store knows of its holder.
//
// The lock lives as long as its holder's connection to the store, not as
// long as its heartbeats: a node that crashed lets go of it as soon as the
// database sees its connection close, so that it may start again at once,
// while its last heartbeat still looks recent; a node whose machine
// vanished lets go of it once the database drops the idle connection (see
// the store's TryLead). A heartbeat alone cannot tell a node's previous
// run, crashed a moment ago, from another process running under its id.
func (n *Node) claimID(ctx context.Context) error {
	id := n.cfg.NodeID
	ok, lost, release, err := n.store.TryLead(ctx, idLockName(id))
	if err != nil {
		return fmt.Errorf("cluster: lock node id %s: %w", id, err)
	}
	if !ok {
		holder := ""
		if nodes, err := n.store.ListNodes(ctx, time.Time{}); err == nil {
			for _, nd := range nodes {
				if nd.ID == id {
					holder = fmt.Sprintf(" (at %s, started %s, last heartbeat %s)",
						nd.URL, nd.StartedAt.Format(time.RFC3339), nd.HeartbeatAt.Format(time.RFC3339))
				}
			}
		}
		return &idInUseError{fmt.Sprintf("cluster: node id %s is in use by another process%s; give each node its own id", id, holder)}
	}
	n.mu.Lock()
	n.idLost, n.idRelease, n.idErr = lost, release, nil
	n.mu.Unlock()
	return nil
}

// keepID takes the lock on the node's id back if the connection holding
// it broke; a store that cannot be reached yet is tried again next time.
// If another process took the lock meanwhile, two run under one id: the
// node says so, in its log and through Healthy, until it has it back.
func (n *Node) keepID(ctx context.Context) {
	n.mu.Lock()
	lost := n.idLost
	n.mu.Unlock()
	if lost == nil {
		return
	}
	select {
	case <-lost:
	default:
		return
	}
	err := n.claimID(ctx)
	switch {
	case err == nil:
		n.log.Info("cluster: took back the lock on this node's id")
	case errors.Is(err, ErrNodeIDInUse):
		n.log.Error("cluster: another process took this node's id", "err", err)
		n.mu.Lock()
		n.idErr = err
		n.mu.Unlock()
	case ctx.Err() == nil:
		n.log.Warn("cluster: take back the lock on this node's id", "err", err)
	}
}

// releaseID lets go of the lock on the node's id, if it holds it.
func (n *Node) releaseID() {
	n.mu.Lock()
	release := n.idRelease
	n.idLost, n.idRelease = nil, nil
	n.mu.Unlock()
	if release != nil {
		release()
	}
}

// subject is where node id takes requests.
func (n *Node) subject(id string) string { return n.cfg.SubjectPrefix + ".node." + id }

// loop reports the node's load, renews its leases and takes over dead
// nodes' stages, every heartbeat interval.
func (n *Node) loop(ctx context.Context) {
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := n.heartbeat(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Error("cluster: heartbeat", "err", err)
		}
		n.mu.Lock()
		n.heartbeatErr = err
		if err == nil {
			n.lastHeartbeat = time.Now()
		}
		n.mu.Unlock()
		n.keepID(ctx)
		if err := n.renew(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("cluster: renew leases", "err", err)
		}
		if err := n.takeOrphans(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("cluster: clean up after dead nodes", "err", err)
		}
	}
}

// SetDraining marks the node draining and tells the others at once: new
// stages are placed elsewhere. The stages it hosts stay here while anyone
// is connected (a stage lives on one node); once empty, their leases are
// no longer renewed and they are placed anew, elsewhere, when someone
// joins.
func (n *Node) SetDraining(ctx context.Context) error {
	n.draining.Store(true)
	return n.heartbeat(ctx)
}

// Healthy returns why the node is not a sound member of its cluster, or
// nil: it must be connected to NATS, hold the lock on its id, and its last
// heartbeat must have reached the store, within the time after which
// others count it dead.
func (n *Node) Healthy() error {
	if !n.nc.IsConnected() {
		return fmt.Errorf("cluster: not connected to NATS (%s)", n.nc.Status())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.idErr != nil {
		return n.idErr
	}
	since := n.lastHeartbeat
	if since.IsZero() {
		since = n.startedAt
	}
	if n.heartbeatErr != nil && time.Since(since) > n.cfg.DeadAfter/2 {
		return fmt.Errorf("cluster: no heartbeat for %v: %w", time.Since(since).Round(time.Second), n.heartbeatErr)
	}
	return nil
}

// heartbeat reports this node alive with its load, and refreshes the view
// of the others.
func (n *Node) heartbeat(ctx context.Context) error {
	n.mu.Lock()
	local, started := n.local, n.startedAt
	n.mu.Unlock()
	self := &ivsrt.Node{ID: n.cfg.NodeID, URL: n.cfg.URL, CPU: n.cpu.sample(), StartedAt: started, Draining: n.draining.Load()}
	if local != nil {
		self.Participants = local.ParticipantCount()
		self.Subscriptions = subscriptionsOf(local)
	}
	if err := n.store.Heartbeat(ctx, self); err != nil {
		return err
	}
	_, err := n.aliveNodes(ctx, true)
	return err
}

// aliveNodes returns the nodes that sent a heartbeat lately, read from the
// store at most once per heartbeat interval unless fresh is set.
func (n *Node) aliveNodes(ctx context.Context, fresh bool) (map[string]*ivsrt.Node, error) {
	n.mu.Lock()
	if !fresh && n.now().Sub(n.nodesAt) < n.cfg.HeartbeatInterval {
		nodes := n.nodes
		n.mu.Unlock()
		return nodes, nil
	}
	n.mu.Unlock()
	list, err := n.store.ListNodes(ctx, n.now().Add(-n.cfg.DeadAfter))
	if err != nil {
		return nil, err
	}
	nodes := make(map[string]*ivsrt.Node, len(list))
	for _, nd := range list {
		nodes[nd.ID] = nd
	}
	n.mu.Lock()
	n.nodes, n.nodesAt = nodes, n.now()
	n.mu.Unlock()
	return nodes, nil
}

// Nodes returns the alive nodes, by id.
func (n *Node) Nodes(ctx context.Context) ([]*ivsrt.Node, error) {
	nodes, err := n.aliveNodes(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]*ivsrt.Node, 0, len(nodes))
	for _, nd := range nodes {
		out = append(out, nd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// renew extends the leases of the stages hosted here; a stage found taken
// over by another node (this one was thought dead) is evicted, so that its
// participants join again where it now lives.
func (n *Node) renew(ctx context.Context) error {
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	stages := local.HostedStages()
	if len(stages) == 0 {
		return nil
	}
	lost, err := n.store.RenewStageHosts(ctx, n.cfg.NodeID, stages, n.now().Add(n.cfg.LeaseTTL))
	if err != nil {
		return err
	}
	for _, arn := range lost {
		h, err := n.store.GetStageHost(ctx, arn)
		if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
			// Nobody has it: take it back rather than evict everyone.
			if h, err = n.store.ClaimStageHost(ctx, arn, n.cfg.NodeID, n.now().Add(n.cfg.LeaseTTL)); err == nil && h.NodeID == n.cfg.NodeID {
				continue
			}
		}
		if err != nil {
			return err
		}
		if h.NodeID == n.cfg.NodeID {
			continue
		}
		n.log.Warn("cluster: stage taken over by another node; evicting its participants here", "stage", arn, "host", h.NodeID)
		local.EvictStage(ctx, arn, "the stage moved to another node")
	}
	return nil
}

// takeOrphans ends the sessions of the stages whose host died.
func (n *Node) takeOrphans(ctx context.Context) error {
	now := n.now()
	orphans, err := n.store.TakeOrphanedStages(ctx, now, now.Add(-n.cfg.DeadAfter))
	if err != nil {
		return err
	}
	for _, h := range orphans {
		session, left, err := n.endSessionOf(ctx, h)
		if err != nil {
			return err
		}
		if session != "" {
			n.log.Info("cluster: ended the session of a dead node's stage", "stage", h.StageARN, "session", session,
				"dead_node", h.NodeID, "departures", left)
		}
	}
	return nil
}

// takeOwnStages ends the sessions of the stages placed on this node's id
// when it starts: its previous run hosted them and ended without a word
// (a crash, kill -9), and a restart with the same id was quick enough that
// nobody took them as a dead node's. A placement whose session could not
// be ended is put back, lease run out, so that the next start or a
// survivor tries again.
func (n *Node) takeOwnStages(ctx context.Context) error {
	taken, err := n.store.TakeNodeStages(ctx, n.cfg.NodeID)
	if err != nil {
		return err
	}
	var errs []error
	ended, departures := 0, 0
	for _, h := range taken {
		session, left, err := n.endSessionOf(ctx, h)
		if err != nil {
			errs = append(errs, err)
			if _, err := n.store.ClaimStageHost(ctx, h.StageARN, n.cfg.NodeID, n.now()); err != nil {
				errs = append(errs, fmt.Errorf("put back the placement of %s: %w", h.StageARN, err))
			}
			continue
		}
		if session != "" {
			ended++
			departures += left
			n.log.Info("cluster: ended the session of the previous run's stage", "stage", h.StageARN, "session", session, "departures", left)
		}
	}
	if len(taken) > 0 {
		n.log.Info("cluster: ended the sessions of the previous run", "stages", len(taken), "sessions", ended, "departures", departures)
	}
	return errors.Join(errs...)
}

// endSessionOf ends the active session of a stage whose placement was
// taken from its host, a dead node or this node's previous run: the
// recordings the host left in progress fail, and everyone it still has
// connected leaves. It returns the session it ended, "" if the stage has
// none (or no longer exists), and the departures it recorded.
func (n *Node) endSessionOf(ctx context.Context, h *ivsrt.StageHost) (ivsrt.SessionID, int, error) {
	stg, err := n.store.GetStage(ctx, h.StageARN)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return "", 0, nil
	} else if err != nil {
		return "", 0, err
	}
	if stg.ActiveSessionID == "" {
		return "", 0, nil
	}
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	if local != nil {
		if err := local.FailInterruptedRecordings(ctx, stg.ARN, stg.ActiveSessionID); err != nil {
			return "", 0, fmt.Errorf("end the recordings of %s: %w", stg.ARN, err)
		}
	}
	left, err := ivsrt.EndSession(ctx, n.store, stg.ARN, stg.ActiveSessionID)
	if err != nil {
		return "", 0, fmt.Errorf("end session of %s: %w", stg.ARN, err)
	}
	return stg.ActiveSessionID, left, nil
}

// cpuMeter measures the process's CPU use between samples.
type cpuMeter struct {
	mu       sync.Mutex
	lastCPU  time.Duration
	lastWall time.Time
}

// sample returns the cores used since the last sample (0 the first time).
func (m *cpuMeter) sample() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var used float64
	if !m.lastWall.IsZero() {
		if wall := now.Sub(m.lastWall); wall > 0 {
			used = float64(cpu-m.lastCPU) / float64(wall)
		}
	}
	m.lastCPU, m.lastWall = cpu, now
	return used
}
