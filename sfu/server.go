// Package sfu is the media plane: participants join stages over a JSON
// events WebSocket, publish over WHIP (RFC 9725) and subscribe over WHEP,
// and a selective forwarding unit built on pion/webrtc carries their media.
// Every join, leave, publish and subscribe is written through the store as
// it happens, so that the API tells the same story.
//
// The stage and participant lifecycle lives here; the RTP forwarding
// itself lives in package forward.
package sfu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// Defaults of a Server's limits and timers.
const (
	DefaultMaxPublishers  = 12    // per stage, as in Amazon IVS
	DefaultMaxSubscribers = 10000 // subscribers per stage: participants receiving any publisher

	DefaultPingInterval   = 5 * time.Second
	DefaultPingTimeout    = 5 * time.Second
	DefaultRepublishGrace = 5 * time.Second

	DefaultICEDisconnectedTimeout = 3 * time.Second
	DefaultICEFailedTimeout       = 5 * time.Second
	DefaultICEKeepalive           = time.Second
)

// DefaultStoreTimeout bounds one call to the store made with a stage
// locked.
const DefaultStoreTimeout = 5 * time.Second

// tombstoneTTL is how long joins to a stage closed by CloseStage are
// refused, while the API deletes it.
const tombstoneTTL = 10 * time.Second

// Config is what a Server needs besides its collaborators.
type Config struct {
	// UDPAddr is the address of the single UDP socket that carries all
	// media (pion's ICE UDP mux), such as ":7881" or "127.0.0.1:0". A
	// specific IP address also limits the ICE candidates offered to it.
	UDPAddr string

	// TCPAddr, if set, also accepts ICE over TCP (passive candidates) at
	// this address, for clients whose UDP is blocked.
	TCPAddr string

	// UDPSockets is how many sockets share the UDP port when UDPAddr
	// names one IP address (SO_REUSEPORT, Linux), each with its own
	// sender; zero means one. One socket's batched sends carry several
	// hundred thousand datagrams a second, and reading it needs no
	// goroutine in between: more sockets cost CPU per packet and are only
	// worth it past that.
	UDPSockets int

	// PublicIPs, if set, replace the address of host candidates: the
	// server's public addresses behind a 1:1 NAT.
	PublicIPs []string

	// PublicURL is the base URL of WHIP and WHEP resources (the Location
	// of a session); empty means the scheme and host of each request.
	PublicURL string

	// NoBandwidthEstimation turns off the estimate of each subscriber's
	// bandwidth (TWCC feedback, probes): subscribers of simulcast get
	// the layer that fits the size they show, whatever their path.
	NoBandwidthEstimation bool

	// MaxPublishers and MaxSubscribers bound a stage: its participants
	// publishing, and those subscribing to any publisher (on every node of
	// a cluster); zero means the defaults.
	MaxPublishers  int
	MaxSubscribers int

	// ResourcePrefix starts the id of every WHIP and WHEP session, so that
	// in a cluster a request for one reaches the node that has it.
	ResourcePrefix string
}

// Server is the media plane. It implements ivsrt.MediaPlane and serves the
// events WebSocket, WHIP and WHEP over HTTP.
type Server struct {
	store  ivsrt.MediaPlaneStore
	tokens ivsrt.TokenIssuer
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	pingInterval, pingTimeout         time.Duration
	grace                             time.Duration
	iceDisconnected, iceFailed, iceKA time.Duration
	keyframeInterval                  time.Duration
	storeTimeout                      time.Duration

	backlog *backlog // events the store failed to take, retried

	ingestMu sync.Mutex
	ingests  map[*ingestStream]struct{} // RTMP(S) encoders publishing here
	// ingestStateMu makes the writes of ingest credentials' states one at
	// a time (ingest.go).
	ingestStateMu sync.Mutex

	objects     ivsrt.ObjectStore // where recordings go; nil: nothing is recorded
	recObserver RecordingObserver

	// Compositions (composition.go): nil compCfg runs none. compMu is a
	// leaf: nothing is locked or written under it.
	compCfg *CompositionConfig
	compMu  sync.Mutex
	comps   map[ivsrt.CompositionARN]*compositionRun

	counters  *forward.Counters // of every source
	draining  atomic.Bool       // new participants are refused; see Drain
	reception ivsrt.ReceptionObserver

	api *webrtc.API
	// What every API is built from: subscribers' connections each get
	// their own, with their bandwidth estimator (rtc.go).
	mediaEngine  *webrtc.MediaEngine
	settings     webrtc.SettingEngine
	interceptors []interceptor.Factory
	udpConn      net.PacketConn
	udpMux       ice.UDPMux
	tcpLn        net.Listener
	tcpMux       ice.TCPMux
	routes       *http.ServeMux

	mu      sync.Mutex
	closing bool // no new work is accepted

	stopSpeakers chan struct{} // closed by Close: the speakers' judge stops
	speakersDone chan struct{}
	closed       bool // no more background work is counted
	stages       map[ivsrt.StageARN]*stage
	tombstones   map[ivsrt.StageARN]time.Time
	resources    map[string]any // *publishSession or *subscribeSession by id
	wg           sync.WaitGroup // event connections and closers

	// Replication (replica.go, feed.go, remote.go): the feeds of this
	// node's publications by id, how to reach other nodes' (nil on a
	// single node), and the WebRTC API of the connections made to them.
	feeds  map[string]*feed
	remote RemoteFeeds

	// Edges (edge.go, edge_origin.go): the subscriptions of stages hosted
	// here that edge nodes serve, by id; and, as an edge, the pulls of
	// other nodes' publications, under edgeMu, a leaf lock.
	edgeSubs     map[string]*subscribeSession
	edgeMu       sync.Mutex
	pulls        map[pullKey]*edgePull
	edgeSessions map[string]*edgeSession // live, by id
	// edgePullsOpened counts the pulls opened since start.
	edgePullsOpened atomic.Int64

	iceServers ivsrt.ICEServerSource // nil: none to hand out

	// restartGrace is how long a session whose connection failed waits
	// for the client to restart ICE before it ends: the ICE failed
	// timeout again, so that a vanished participant leaves within twice
	// that.
	restartGrace time.Duration
	clientOnce   sync.Once
	client       *webrtc.API
	clientErr    error
}

var _ ivsrt.MediaPlane = (*Server)(nil)

// Option configures a Server.
type Option func(*Server)

// WithICEServers hands participants the ICE servers (TURN) src gives
// them: in the events WebSocket's joined message, and in Link headers of
// WHIP and WHEP responses (RFC 9725, section 4.6).
func WithICEServers(src ivsrt.ICEServerSource) Option { return func(s *Server) { s.iceServers = src } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithClock sets the clock of the join times in the stage state. Event
// times come from the store's clock, token expiry from the issuer's.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithPing sets how often the events WebSocket is pinged and how long a
// pong may take before the participant is considered gone.
func WithPing(interval, timeout time.Duration) Option {
	return func(s *Server) { s.pingInterval, s.pingTimeout = interval, timeout }
}

// WithICETimeouts sets how long a peer connection may go without network
// activity before it is disconnected and then failed (and the session
// ended), and how often keepalives are sent.
func WithICETimeouts(disconnected, failed, keepalive time.Duration) Option {
	return func(s *Server) { s.iceDisconnected, s.iceFailed, s.iceKA = disconnected, failed, keepalive }
}

// WithReceptionObserver has o told of the receiver reports subscribers
// send.
func WithReceptionObserver(o ivsrt.ReceptionObserver) Option {
	return func(s *Server) { s.reception = o }
}

// WithStoreTimeout bounds each call to the store made with a stage locked;
// DefaultStoreTimeout by default. A write that fails or times out is
// retried in the background, in order, without the lock.
func WithStoreTimeout(d time.Duration) Option { return func(s *Server) { s.storeTimeout = d } }

// WithRepublishGrace sets how long subscriptions to a publisher that
// stopped publishing are kept, waiting for it to publish again.
func WithRepublishGrace(d time.Duration) Option { return func(s *Server) { s.grace = d } }

// WithKeyframeInterval sets the least time between two keyframe requests
// sent to a publisher.
func WithKeyframeInterval(d time.Duration) Option {
	return func(s *Server) { s.keyframeInterval = d }
}

// New returns a media plane over store that checks participant tokens
// with tokens. It binds the media sockets at once; Close releases them.
func New(store ivsrt.MediaPlaneStore, tokens ivsrt.TokenIssuer, cfg Config, opts ...Option) (*Server, error) {
	s := &Server{
		store:      store,
		tokens:     tokens,
		cfg:        cfg,
		stages:     map[ivsrt.StageARN]*stage{},
		tombstones: map[ivsrt.StageARN]time.Time{},
		resources:  map[string]any{},
		feeds:      map[string]*feed{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("component", "sfu")
	var reports forward.ReceptionObserver
	if s.reception != nil {
		reports = receptionAdapter{s.reception}
	}
	s.counters = forward.NewCounters(reports)
	if s.now == nil {
		s.now = time.Now
	}
	if s.pingInterval <= 0 {
		s.pingInterval = DefaultPingInterval
	}
	if s.pingTimeout <= 0 {
		s.pingTimeout = DefaultPingTimeout
	}
	if s.grace <= 0 {
		s.grace = DefaultRepublishGrace
	}
	if s.iceDisconnected <= 0 {
		s.iceDisconnected = DefaultICEDisconnectedTimeout
	}
	if s.iceFailed <= 0 {
		s.iceFailed = DefaultICEFailedTimeout
	}
	if s.iceKA <= 0 {
		s.iceKA = DefaultICEKeepalive
	}
	s.restartGrace = s.iceFailed
	if s.storeTimeout <= 0 {
		s.storeTimeout = DefaultStoreTimeout
	}
	s.backlog = newBacklog(s.store, s.logger, s.storeTimeout, s.now)
	if s.cfg.MaxPublishers <= 0 {
		s.cfg.MaxPublishers = DefaultMaxPublishers
	}
	if s.cfg.MaxSubscribers <= 0 {
		s.cfg.MaxSubscribers = DefaultMaxSubscribers
	}
	s.cfg.PublicURL = strings.TrimSuffix(s.cfg.PublicURL, "/")
	if err := s.listen(); err != nil {
		s.closeSockets()
		return nil, err
	}
	s.stopSpeakers, s.speakersDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.speakersDone)
		s.judgeSpeakers(s.stopSpeakers)
	}()
	s.routes = http.NewServeMux()
	s.routes.HandleFunc("GET /events", s.serveEvents)
	s.routes.HandleFunc("POST /whip", s.postWHIP)
	s.routes.HandleFunc("OPTIONS /whip", s.options)
	s.routes.HandleFunc("DELETE /whip/{id}", s.deleteWHIP)
	s.routes.HandleFunc("PATCH /whip/{id}", s.patch)
	s.routes.HandleFunc("OPTIONS /whip/{id}", s.options)
	s.routes.HandleFunc("POST /whep/{participant}", s.postWHEP)
	s.routes.HandleFunc("OPTIONS /whep/{participant}", s.options)
	s.routes.HandleFunc("DELETE /whep/{participant}/{id}", s.deleteWHEP)
	s.routes.HandleFunc("PATCH /whep/{participant}/{id}", s.patch)
	s.routes.HandleFunc("OPTIONS /whep/{participant}/{id}", s.options)
	return s, nil
}

// ServeHTTP serves the events WebSocket, WHIP and WHEP.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCORS(w.Header())
	s.routes.ServeHTTP(w, r)
}

// UDPAddr returns the address of the media UDP socket.
func (s *Server) UDPAddr() net.Addr {
	if s.udpConn != nil {
		return s.udpConn.LocalAddr()
	}
	if m, ok := s.udpMux.(*ice.MultiUDPMuxDefault); ok {
		if addrs := m.GetListenAddresses(); len(addrs) > 0 {
			return addrs[0]
		}
	}
	return nil
}

// TCPAddr returns the address ICE over TCP is accepted at, or nil.
func (s *Server) TCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// Close disconnects everyone, recording their departure, and releases the
// media sockets.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	stages := make([]*stage, 0, len(s.stages))
	for _, st := range s.stages {
		stages = append(stages, st)
	}
	s.mu.Unlock()
	s.stopCompositions(errServerClosing)

	ctx := context.Background()
	for _, st := range stages {
		st.lock()
		st.closeAll(ctx, closeShutdown, "server shutting down")
		st.unlock()
	}
	s.closeEdges()
	if err := s.backlog.close(ctx); err != nil {
		s.logger.Error("close: store unavailable", "error", err)
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stopSpeakers)
	<-s.speakersDone
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.logger.Warn("connections still closing at shutdown")
	}
	return s.closeSockets()
}

// DisconnectParticipant implements ivsrt.MediaPlane: it ends the
// participant's WebSocket (telling it reason), its publication and its
// subscriptions, and records its departure. The caller has revoked the
// token already.
func (s *Server) DisconnectParticipant(ctx context.Context, arn ivsrt.StageARN, id ivsrt.ParticipantID, reason string) error {
	st := s.existingStage(arn)
	if st == nil {
		return nil
	}
	defer st.unlock()
	if reason == "" {
		reason = "disconnected"
	}
	st.disconnect(ctx, id, closeDisconnected, reason)
	return nil
}

// CloseStage implements ivsrt.MediaPlane: everyone is disconnected and,
// for a while, nobody may join, so that the stage can be deleted.
func (s *Server) CloseStage(ctx context.Context, arn ivsrt.StageARN) error {
	s.mu.Lock()
	now := s.now()
	for a, until := range s.tombstones {
		if now.After(until) {
			delete(s.tombstones, a)
		}
	}
	s.tombstones[arn] = now.Add(tombstoneTTL)
	s.mu.Unlock()
	// A deleted stage stops its compositions as StopComposition would:
	// the end was asked for, nothing failed.
	for _, r := range s.compositionsOf(arn) {
		s.logger.Info("composition: its stage was deleted", "composition", r.arn)
		r.requestStop(nil)
	}
	st := s.existingStage(arn)
	if st == nil {
		return nil
	}
	defer st.unlock()
	st.closeAll(ctx, closeStageDeleted, "stage deleted")
	return nil
}

// errDraining refuses new participants while the server drains.
var errDraining = &refusal{http.StatusServiceUnavailable, codeShuttingDown, "the server is draining: join again to be served by another"}

// Drain stops taking new participants, and returns once nobody is
// connected or ctx ends, whichever is first. Participants already in a
// stage carry on meanwhile: they may still publish, subscribe and
// reconnect. Close then disconnects whoever is left.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	s.logger.Info("draining: new participants are refused")
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		n := s.ParticipantCount()
		if n == 0 {
			s.logger.Info("drained: nobody is connected")
			return nil
		}
		select {
		case <-ctx.Done():
			s.logger.Info("drain time is up", "participants", n)
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// errShuttingDown refuses work once Close has begun.
var errShuttingDown = &refusal{http.StatusServiceUnavailable, codeShuttingDown, "the server is shutting down"}

// lockStage returns the stage arn, created if needed, locked.
func (s *Server) lockStage(arn ivsrt.StageARN) (*stage, *refusal) {
	for {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return nil, errShuttingDown
		}
		if until, ok := s.tombstones[arn]; ok {
			if s.now().Before(until) {
				s.mu.Unlock()
				return nil, &refusal{http.StatusNotFound, codeStageNotFound, "the stage was deleted"}
			}
			delete(s.tombstones, arn)
		}
		st := s.stages[arn]
		if st == nil {
			st = newStage(s, arn)
			s.stages[arn] = st
		}
		s.mu.Unlock()
		st.mu.Lock()
		if !st.dead {
			return st, nil
		}
		st.mu.Unlock()
	}
}

// existingStage returns the stage arn locked, or nil if it has nobody.
func (s *Server) existingStage(arn ivsrt.StageARN) *stage {
	for {
		s.mu.Lock()
		st := s.stages[arn]
		s.mu.Unlock()
		if st == nil {
			return nil
		}
		st.mu.Lock()
		if !st.dead {
			return st
		}
		st.mu.Unlock()
	}
}

// forget removes a stage that has become empty.
func (s *Server) forget(st *stage) {
	s.mu.Lock()
	if s.stages[st.arn] == st {
		delete(s.stages, st.arn)
	}
	s.mu.Unlock()
}

// track counts a goroutine that Close waits for; false once closed.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// goClose runs f in the background; Close waits for it.
func (s *Server) goClose(f func()) {
	if !s.track() {
		go f()
		return
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) addResource(id string, r any) {
	s.mu.Lock()
	s.resources[id] = r
	s.mu.Unlock()
}

func (s *Server) removeResource(id string) {
	s.mu.Lock()
	delete(s.resources, id)
	s.mu.Unlock()
}

func (s *Server) resource(id string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resources[id]
}

// newResourceID returns an unguessable id for a WHIP or WHEP session (its
// URL is what allows ending it), after the configured prefix.
func (s *Server) newResourceID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return s.cfg.ResourcePrefix + hex.EncodeToString(b)
}

// HostedStages returns the stages that have someone connected here.
func (s *Server) HostedStages() []ivsrt.StageARN {
	s.mu.Lock()
	defer s.mu.Unlock()
	arns := make([]ivsrt.StageARN, 0, len(s.stages))
	for arn := range s.stages {
		arns = append(arns, arn)
	}
	return arns
}

// ParticipantCount returns how many participants are connected here, by
// the events WebSocket or by WHIP alone.
func (s *Server) ParticipantCount() int {
	s.mu.Lock()
	stages := make([]*stage, 0, len(s.stages))
	for _, st := range s.stages {
		stages = append(stages, st)
	}
	s.mu.Unlock()
	n := 0
	for _, st := range stages {
		st.mu.Lock()
		ids := make(map[ivsrt.ParticipantID]bool, len(st.parts)+len(st.pubs))
		for id := range st.parts {
			ids[id] = true
		}
		for id := range st.pubs {
			ids[id] = true
		}
		st.mu.Unlock()
		n += len(ids)
	}
	return n
}

// EvictStage disconnects everyone in the stage, telling them reason, and
// records their departure; unlike CloseStage it lets them join again at
// once (elsewhere, when another node has taken the stage over).
func (s *Server) EvictStage(ctx context.Context, arn ivsrt.StageARN, reason string) {
	st := s.existingStage(arn)
	if st == nil {
		return
	}
	defer st.unlock()
	st.closeAll(ctx, closeEvicted, reason)
}

// resourceURL returns the absolute URL of a session resource at path: on
// the node the client used (ivsrt.ForwardedPublicURLHeader), else on
// this one.
func (s *Server) resourceURL(r *http.Request, path string) string {
	if v := r.Header.Get(ivsrt.ForwardedPublicURLHeader); v != "" {
		if u, err := url.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return strings.TrimSuffix(v, "/") + path
		}
	}
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s%s", scheme, r.Host, path)
}

// EndStaleSessions records the departure of every participant the store
// still has connected, and so ends their sessions: after a crash, nobody
// is connected any more. Call it when starting, before serving. It returns
// how many departures it recorded.
func (s *Server) EndStaleSessions(ctx context.Context) (int, error) {
	n := 0
	page := ivsrt.Page{Limit: 100}
	for {
		stages, next, err := s.store.ListStages(ctx, page)
		if err != nil {
			return n, fmt.Errorf("list stages: %w", err)
		}
		for _, stg := range stages {
			if stg.ActiveSessionID == "" {
				continue
			}
			if err := s.FailInterruptedRecordings(ctx, stg.ARN, stg.ActiveSessionID); err != nil {
				return n, err
			}
			left, err := ivsrt.EndSession(ctx, s.store, stg.ARN, stg.ActiveSessionID)
			n += left
			if err != nil {
				return n, err
			}
		}
		if next == "" {
			return n, nil
		}
		page.After = next
	}
}
