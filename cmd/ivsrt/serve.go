package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/front"
	"github.com/ivsrt/ivsrt/health"
	"github.com/ivsrt/ivsrt/internal/config"
	"github.com/ivsrt/ivsrt/metrics"
	"github.com/ivsrt/ivsrt/objectstore/folder"
	s3store "github.com/ivsrt/ivsrt/objectstore/s3"
	"github.com/ivsrt/ivsrt/playback"
	"github.com/ivsrt/ivsrt/recording"
	"github.com/ivsrt/ivsrt/rtmpingest"
	"github.com/ivsrt/ivsrt/secrets"
	"github.com/ivsrt/ivsrt/sfu"
	"github.com/ivsrt/ivsrt/token"
	"github.com/ivsrt/ivsrt/turnrelay"
	"github.com/ivsrt/ivsrt/web"
)

// Config is what `ivsrt serve` is told: defaults, overridden by the
// configuration file, by IVSRT_* environment variables, by flags given on
// the command line. The table in config.go defines each setting.
type Config struct {
	Listen          string
	DataDir         string
	Region          string
	AccountID       string
	PublicURL       string
	Dev             bool
	AccessKeyID     string
	SecretAccessKey string
	MaxStages       int
	MaxSubscribers  int // per stage
	MaxPublicKeys   int
	MaxReplicas     int // of one participant at once
	LogLevel        string

	// Media: the UDP port all media goes through, the TCP port of the ICE
	// fallback (-1 disables it), and the public addresses put in ICE
	// candidates when the server is behind a 1:1 NAT (comma-separated).
	RTCUDPPort    int
	RTCUDPSockets int
	// RTCBandwidthEstimation estimates subscribers' bandwidth.
	RTCBandwidthEstimation bool
	RTCTCPPort             int
	RTCPublicIPs           string

	// TURN (see turn.go): the embedded server's port for UDP and TCP and
	// its TLS port (-1 disables either), its certificate, the host its
	// URLs name (default: --public-url's); or an external server's URLs,
	// with the secret credentials are derived from.
	TURNUDPPort        int
	TURNTLSPort        int
	TURNCert, TURNKey  string
	TURNHost           string
	TURNURLs           []string
	TURNSecret         string
	TURNMaxAllocations int

	// RTMP(S) ingest (see ingest.go): the ports encoders publish to (-1
	// disables either), the certificate of RTMPS, the host the stages'
	// endpoints name (default: --public-url's).
	RTMPPort, RTMPSPort int
	// Compositions (see composition.go): how many run at once, and the
	// RTMP(S) targets of channel ARNs (CHANNEL_ARN=URL).
	MaxCompositions     int
	CompositionChannels []string
	RTMPSCert, RTMPSKey string
	IngestHost          string

	// The event stream's sinks (see sinks.go) and how long delivered
	// events are kept (0 for ever).
	EventSinksFile    string
	WebhookURLs       []string
	WebhookSecret     string
	WebhookFilter     string
	NATSURL           string
	NATSSubjectPrefix string
	NATSJetStream     bool
	EventRetryFor     time.Duration
	EventRetention    time.Duration

	// Store is where state lives: empty for SQLite in the data folder, or
	// a postgres:// URL. ClusterNATS, with a PostgreSQL store, makes this
	// process a node of a cluster (see cluster.go); NodeURL is where the
	// other nodes reach it, NodeID its name there (empty: made up).
	Store       string
	ClusterNATS string
	NodeURL     string
	NodeID      string
	// How long a stage's placement holds unrenewed, how often a node
	// reports, and after how long a silent node counts as dead.
	ClusterLeaseTTL  time.Duration
	ClusterHeartbeat time.Duration
	ClusterDeadAfter time.Duration
	// NodeMaxSubscriptions is how many subscriptions a node serves before
	// new subscribers are placed on another node; 0: no limit.
	NodeMaxSubscriptions int

	// MetricsListen, when set, serves /metrics on its own address instead
	// of the API's. DrainTimeout is how long a draining server (SIGTERM)
	// lets live sessions go on before it disconnects them.
	MetricsListen string
	DrainTimeout  time.Duration

	// Where recordings go: an S3-compatible service, or, without an
	// endpoint, a folder per bucket under DATA/s3.
	S3EndpointURL     string
	S3Region          string
	S3AccessKeyID     string
	S3SecretAccessKey string
}

// DefaultDrainTimeout is how long a draining server waits for its live
// sessions by default: the 30 s Kubernetes gives a pod, less a margin.
const DefaultDrainTimeout = 25 * time.Second

// defaultRTCPort is the default media port, UDP and TCP.
const defaultRTCPort = 7881

// defaultTURNPort is the default port of the embedded TURN server, UDP and
// TCP: TURN's own (RFC 8656).
const defaultTURNPort = 3478

// Main is the running server: a test can start one on 127.0.0.1:0 with a
// temporary data folder, talk to it, and close it.
type Main struct {
	Config Config
	Logger *slog.Logger

	DB       ivsrt.Store
	API      *api.Server
	SFU      *sfu.Server
	Relay    *events.Relay // of a single node; in a cluster, see delivery
	Node     *cluster.Node // nil outside a cluster
	sinks    *sinkSet
	delivery *deliveryControl
	listener net.Listener
	http     *http.Server
	served   chan error

	// Metrics is what /metrics reports; Probes answer /healthz and
	// /readyz. The metrics have their own listener with --metrics-listen.
	Metrics         *metrics.Registry
	Probes          *health.Probes
	metricsListener net.Listener
	metricsHTTP     *http.Server

	keys *secrets.Set // credentials generated by this start are shown once it serves

	// Objects is where recordings go.
	Objects ivsrt.ObjectStore

	drain *drainRequest // see DrainPath

	// rtcPortsGiven is set when the media ports were configured; if not,
	// a server listening on port 0 takes free media ports too, so that
	// servers started side by side (tests) do not collide.
	rtcPortsGiven bool
	// turnPortsGiven is the same for the TURN ports, ingestPortsGiven for
	// the RTMP(S) ones.
	turnPortsGiven   bool
	ingestPortsGiven bool

	// ingest is the RTMP(S) server, if it runs, and rtmpURL and rtmpsURL
	// the endpoints stages show ("" when off).
	ingest            *rtmpingest.Server
	rtmpURL, rtmpsURL string

	// turn is the embedded TURN server, if it runs.
	turn *turnrelay.Server

	// printConfig (--print-config) asks for the configuration rather than
	// a server; sources says where ParseFlags found each setting.
	printConfig bool
	sources     *config.Loaded
}

// NewMain returns a Main with default configuration.
func NewMain() *Main {
	m := &Main{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	m.settings().Reset()
	return m
}

// ParseFlags reads the configuration file, the environment, then the
// flags into m.Config, over what it holds (NewMain's defaults), and
// checks the result. With -h it writes the help to stdout and returns
// flag.ErrHelp.
func (m *Main) ParseFlags(args []string) error {
	set := m.settings()
	sources, err := set.Load(args, os.Environ())
	if errors.Is(err, flag.ErrHelp) {
		set.Usage(os.Stdout)
		return err
	}
	if err != nil {
		return err
	}
	m.sources = sources
	if sources.Given("rtc-udp-port") || sources.Given("rtc-tcp-port") {
		m.rtcPortsGiven = true
	}
	if sources.Given("turn-udp-port") || sources.Given("turn-tls-port") {
		m.turnPortsGiven = true
	}
	if sources.Given("rtmp-port") || sources.Given("rtmps-port") {
		m.ingestPortsGiven = true
	}
	if err := m.validate(); err != nil {
		return err
	}
	for _, name := range sources.UnknownEnv {
		m.Logger.Warn("environment variable is not a setting of ivsrt serve; ignored", "name", name)
	}
	return nil
}

func (m *Main) validate() error {
	c := &m.Config
	if len(c.AccountID) != 12 || strings.Trim(c.AccountID, "0123456789") != "" {
		return fmt.Errorf("--account-id %q: want 12 digits", c.AccountID)
	}
	if c.Region == "" || strings.Trim(c.Region, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("--region %q: want lower-case letters, digits and dashes", c.Region)
	}
	if (c.S3AccessKeyID == "") != (c.S3SecretAccessKey == "") {
		return errors.New("--s3-access-key-id and --s3-secret-access-key go together: give both or neither")
	}
	if c.S3EndpointURL != "" && !strings.HasPrefix(c.S3EndpointURL, "http://") && !strings.HasPrefix(c.S3EndpointURL, "https://") {
		return fmt.Errorf("--s3-endpoint-url %q: want an http:// or https:// URL", c.S3EndpointURL)
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("--access-key-id and --secret-access-key go together: give both or neither")
	}
	if c.MaxSubscribers < 1 {
		return fmt.Errorf("--max-subscribers %d: want 1 or more", c.MaxSubscribers)
	}
	if c.MaxStages < 0 {
		return fmt.Errorf("--max-stages %d: want 0 or more", c.MaxStages)
	}
	if c.MaxPublicKeys < 0 {
		return fmt.Errorf("--max-public-keys %d: want 0 or more", c.MaxPublicKeys)
	}
	if c.MaxReplicas < 0 {
		return fmt.Errorf("--max-replicas-per-participant %d: want 0 or more", c.MaxReplicas)
	}
	if err := c.validateIngest(); err != nil {
		return err
	}
	if err := c.validateTURN(); err != nil {
		return err
	}
	if c.RTCUDPPort < 0 || c.RTCUDPPort > 65535 {
		return fmt.Errorf("--rtc-udp-port %d: want a port number, 0..65535", c.RTCUDPPort)
	}
	if c.RTCUDPSockets < 0 {
		return fmt.Errorf("--rtc-udp-sockets %d: want 0 or more", c.RTCUDPSockets)
	}
	if c.RTCTCPPort < -1 || c.RTCTCPPort > 65535 {
		return fmt.Errorf("--rtc-tcp-port %d: want a port number, 0..65535, or -1", c.RTCTCPPort)
	}
	for _, ip := range publicIPs(c.RTCPublicIPs) {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("--rtc-public-ip %q: want IP addresses separated by commas", c.RTCPublicIPs)
		}
	}
	if c.Store != "" && !isPostgres(c.Store) && c.Store != "sqlite" {
		return fmt.Errorf("--store %q: want empty, sqlite, or a postgres:// URL", redactDSN(c.Store))
	}
	if c.ClusterNATS != "" && !isPostgres(c.Store) {
		return errors.New("--cluster-nats needs a PostgreSQL --store, which the nodes share")
	}
	if c.ClusterLeaseTTL <= 0 || c.ClusterHeartbeat <= 0 || c.ClusterDeadAfter <= 0 || c.ClusterHeartbeat >= c.ClusterLeaseTTL {
		return errors.New("--cluster-lease, --cluster-heartbeat and --cluster-dead-after must be positive, the heartbeat shorter than the lease")
	}
	if c.NodeMaxSubscriptions < 0 {
		return errors.New("--node-max-subscriptions must not be negative")
	}
	if c.EventRetryFor <= 0 {
		return fmt.Errorf("--event-retry-for %v: want a positive duration", c.EventRetryFor)
	}
	if c.DrainTimeout < 0 {
		return fmt.Errorf("--drain-timeout %v: want 0 (stop at once) or a positive duration", c.DrainTimeout)
	}
	if c.EventRetention < 0 {
		return fmt.Errorf("--event-retention %v: want 0 (for ever) or a positive duration", c.EventRetention)
	}
	if _, err := events.ParsePattern(c.WebhookFilter); err != nil {
		return fmt.Errorf("--webhook-filter: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	m.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// Run opens the data folder and starts serving; it returns once the
// server is listening.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	if err := checkWritable(c.DataDir); err != nil {
		return err
	}
	m.Metrics, m.Probes, m.drain = metrics.New(), health.New(), newDrainRequest()
	if err := m.openStore(ctx); err != nil {
		return err
	}
	if db, ok := m.DB.(interface{ SetObserver(ivsrt.StoreObserver) }); ok {
		db.SetObserver(m.Metrics)
	}
	if db, ok := m.DB.(interface{ Ping(context.Context) error }); ok {
		m.Probes.Add("store", db.Ping)
	}
	sec, err := m.secrets(ctx)
	if err != nil {
		return err
	}
	m.keys = sec
	creds, pageKey, signingKey := sec.Credentials, sec.PaginationKey, sec.SigningKey
	// The relay starts before anything writes events, so that a sink
	// configured for the first time gets those of this start-up too. In a
	// cluster it runs on one node at a time, once this one has joined.
	if c.ClusterNATS == "" {
		if m.Relay, m.sinks, err = m.startRelay(ctx); err != nil {
			return err
		}
	}

	if m.listener, err = net.Listen("tcp", c.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	publicURL := c.PublicURL
	if publicURL == "" {
		publicURL = m.defaultURL("--public-url")
	}
	m.Config.PublicURL = publicURL
	eventsURL, whipURL := api.EndpointURLs(publicURL)
	// Self-signed tokens are checked with the imported public keys, read
	// from the store as each is presented.
	issuer := token.NewIssuer(signingKey, token.WithEventsURL(eventsURL), token.WithWHIPURL(whipURL),
		token.WithPublicKeys(m.DB))
	if c.ClusterNATS != "" {
		nodeURL := c.NodeURL
		if nodeURL == "" {
			nodeURL = m.defaultURL("--node-url")
		}
		if err := m.newNode(issuer, nodeURL); err != nil {
			return err
		}
	}

	// Media binds to the address the API listens on, so that a server
	// kept to the loopback interface keeps its media there too.
	udpPort, tcpPort := c.RTCUDPPort, c.RTCTCPPort
	if _, port, _ := net.SplitHostPort(c.Listen); port == "0" && !m.rtcPortsGiven {
		udpPort, tcpPort = 0, min(tcpPort, 0)
	}
	host := m.listener.Addr().(*net.TCPAddr).IP.String()
	rtc := sfu.Config{
		UDPAddr:               net.JoinHostPort(host, strconv.Itoa(udpPort)),
		UDPSockets:            c.RTCUDPSockets,
		PublicIPs:             publicIPs(c.RTCPublicIPs),
		PublicURL:             publicURL,
		NoBandwidthEstimation: !c.RTCBandwidthEstimation,
		MaxSubscribers:        c.MaxSubscribers,
	}
	if m.Node != nil {
		rtc.ResourcePrefix = m.Node.ResourcePrefix()
	}
	if tcpPort >= 0 {
		rtc.TCPAddr = net.JoinHostPort(host, strconv.Itoa(tcpPort))
	}
	if m.Objects, err = m.openObjects(ctx); err != nil {
		return err
	}
	iceServers, err := m.startTURN(publicURL, host, sec.TURNSecret)
	if err != nil {
		return err
	}
	sfuOpts := []sfu.Option{sfu.WithLogger(m.Logger), sfu.WithReceptionObserver(m.Metrics),
		sfu.WithRecording(m.Objects, recordingLogger{m.Logger.With("component", "recording")})}
	if iceServers != nil {
		sfuOpts = append(sfuOpts, sfu.WithICEServers(iceServers))
	}
	channels, err := compositionChannels(c.CompositionChannels)
	if err != nil {
		return err
	}
	compositions, composing := m.compositionOption(channels)
	if composing {
		sfuOpts = append(sfuOpts, compositions)
	}
	if m.SFU, err = sfu.New(m.DB, issuer, rtc, sfuOpts...); err != nil {
		return err
	}
	m.Metrics.SetMedia(m.SFU)
	m.Probes.Add("media", func(context.Context) error { return m.SFU.Healthy() })
	// Nobody is connected to a server that is only starting: whoever the
	// store still has in a stage was there when the last run ended
	// without saying goodbye (a crash, kill -9), and leaves now. (In a
	// cluster the others may well be connected: the stages of a node that
	// died are cleaned up by the survivors, once its leases run out.)
	var media ivsrt.MediaPlane = m.SFU
	if m.Node == nil {
		if n, err := m.SFU.EndStaleSessions(ctx); err != nil {
			return fmt.Errorf("end sessions left open: %w", err)
		} else if n > 0 {
			m.Logger.Info("ended sessions left open by the last run", "departures", n)
		}
		if n, err := resetIngestStates(ctx, m.DB); err != nil {
			return fmt.Errorf("reset ingest configurations left active: %w", err)
		} else if n > 0 {
			m.Logger.Info("ingest configurations left active by the last run are inactive", "credentials", n)
		}
		if n, err := failInterruptedCompositions(ctx, m.DB, time.Now()); err != nil {
			return fmt.Errorf("end compositions left running: %w", err)
		} else if n > 0 {
			m.Logger.Info("compositions left running by the last run have failed", "compositions", n)
		}
	} else {
		if err := m.joinCluster(ctx); err != nil {
			return err
		}
		media = m.Node
		node := m.Node
		m.Probes.Add("cluster", func(context.Context) error { return node.Healthy() })
	}

	verifier := &api.SigV4Verifier{Credentials: creds, Service: "ivs", Region: c.Region, Dev: c.Dev}
	if m.rtmpURL, m.rtmpsURL, err = m.startIngest(ctx, publicURL, host, m.DB); err != nil {
		return err
	}
	m.API, err = api.NewServer(m.DB, issuer, verifier, api.Config{
		RTMPURL:          m.rtmpURL,
		RTMPSURL:         m.rtmpsURL,
		Region:           c.Region,
		AccountID:        c.AccountID,
		PublicURL:        publicURL,
		Quota:            ivsrt.StageQuota{MaxStages: c.MaxStages},
		PublicKeyQuota:   ivsrt.PublicKeyQuota{MaxPublicKeys: c.MaxPublicKeys},
		ReplicationQuota: ivsrt.ReplicationQuota{MaxReplicasPerParticipant: c.MaxReplicas},
		PaginationKey:    pageKey,
	}, api.WithLogger(m.Logger.With("component", "api")), api.WithMediaPlane(media), api.WithRequestObserver(m.Metrics),
		api.WithBucketChecker(m.Objects), api.WithIngestDisconnector(m.SFU), compositorOption(m.SFU, composing))
	if err != nil {
		return err
	}

	pages, err := web.NewHandler(web.Config{Region: c.Region, Dev: c.Dev, PublicURL: publicURL})
	if err != nil {
		return err
	}

	// The event stream and its delivery API, served beside the router (see
	// eventstream.go).
	stream, admin := m.newEventHandlers(verifier)
	m.Metrics.SetSinks(sinkStatuses(func() []events.SinkStatus {
		if m.delivery != nil {
			return m.delivery.Status()
		}
		if r := m.Relay; r != nil {
			return r.Status()
		}
		return nil
	}))
	var metricsHandler http.Handler
	if c.MetricsListen != "" {
		if err := m.serveMetrics(c.MetricsListen); err != nil {
			return err
		}
	} else {
		metricsHandler = m.Metrics.Handler()
	}

	var mediaHandler http.Handler = m.SFU
	if m.Node != nil {
		mediaHandler = m.Node.Route(m.SFU)
	}
	routes := front.Handlers{
		API:         m.API,
		Media:       mediaHandler,
		Pages:       pages,
		EventStream: stream,
		EventAdmin:  admin,
		Probes:      m.Probes,
		Metrics:     metricsHandler,
		Drain:       m.drainHandler(verifier.Authorize),
		// Recordings are read signed, as the API is: the console plays
		// them with its keys.
		Recordings: playback.NewHandler(m.Objects, verifier.Authorize, m.Logger.With("component", "playback")),
	}
	if m.Node != nil {
		routes.ClusterStatus = m.Node.StatusHandler(verifier.Authorize)
		routes.ClusterStages = m.Node.StagesHandler(verifier.Authorize)
	}
	m.http = front.NewServer(front.Router(routes), m.Logger)
	m.http.RegisterOnShutdown(stream.Close) // streams never end by themselves
	m.served = make(chan error, 1)
	go func() { m.served <- m.http.Serve(m.listener) }()
	// Only now that it serves: a start that failed earlier must not show
	// credentials the next start would not use.
	if err := m.keys.Commit(os.Stderr); err != nil {
		return err
	}
	m.Logger.Info("serving", "version", versionString(), "addr", m.listener.Addr().String(), "public_url", publicURL,
		"data", c.DataDir, "region", c.Region, "dev", c.Dev,
		"rtc_udp", m.SFU.UDPAddr().String(), "rtc_tcp", addrString(m.SFU.TCPAddr()), "turn", m.turnSummary())
	return nil
}

// publicIPs splits the --rtc-public-ip list.
func publicIPs(list string) []string {
	var ips []string
	for _, ip := range strings.Split(list, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			ips = append(ips, ip)
		}
	}
	return ips
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// Addr returns the address the server listens on.
func (m *Main) Addr() string { return m.listener.Addr().String() }

// defaultURL is the URL others reach the server at when flag does not
// say: the listener's address, unless it listens on every interface
// (0.0.0.0, ::), which nobody can connect to; then the address of the
// interface the default route leaves from, said in a warning.
func (m *Main) defaultURL(flag string) string {
	addr := m.listener.Addr().(*net.TCPAddr)
	if !addr.IP.IsUnspecified() {
		return "http://" + addr.String()
	}
	host := outboundIP()
	u := "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
	m.Logger.Warn("listening on every interface without "+flag+": clients are told "+u+"; set "+flag+" to the URL they reach this server at",
		"listen", addr.String())
	return u
}

// outboundIP returns the local address of the interface the default route
// leaves from (a UDP "connection" sends nothing), or the loopback address
// when there is no route.
func outboundIP() string {
	for _, probe := range []string{"udp4", "udp6"} {
		target := "192.0.2.1:9" // TEST-NET-1: routed like any address, never used
		if probe == "udp6" {
			target = "[2001:db8::1]:9"
		}
		c, err := net.Dial(probe, target)
		if err != nil {
			continue
		}
		ip := c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
		if !ip.IsLoopback() && !ip.IsUnspecified() {
			return ip.String()
		}
	}
	return "127.0.0.1"
}

// openObjects returns where recordings go: the S3-compatible service of
// --s3-endpoint-url, or a folder per bucket under DATA/s3.
func (m *Main) openObjects(ctx context.Context) (ivsrt.ObjectStore, error) {
	c := m.Config
	if _, err := recording.FFmpegPath(); err != nil {
		m.Logger.Warn("ffmpeg is not installed: recordings are made, without thumbnails (Debian: apt-get install ffmpeg)")
	}
	if c.S3EndpointURL == "" {
		dir := filepath.Join(c.DataDir, "s3")
		objects, err := folder.New(dir)
		if err != nil {
			return nil, err
		}
		m.Logger.Info("recordings: each bucket is a folder", "path", dir)
		return objects, nil
	}
	region := c.S3Region
	if region == "" {
		region = c.Region
	}
	objects, err := s3store.New(ctx, s3store.Config{EndpointURL: c.S3EndpointURL, Region: region,
		AccessKeyID: c.S3AccessKeyID, SecretAccessKey: c.S3SecretAccessKey})
	if err != nil {
		return nil, err
	}
	m.Logger.Info("recordings: buckets are in an S3-compatible service", "endpoint", c.S3EndpointURL)
	return objects, nil
}

// recordingLogger logs the state changes of participant recordings.
type recordingLogger struct{ log *slog.Logger }

func (l recordingLogger) RecordingStateChanged(_ context.Context, r sfu.RecordingInfo) {
	args := []any{"stage", r.StageARN, "session", r.SessionID, "participant", r.ParticipantID, "state", r.State,
		"bucket", r.Bucket, "prefix", r.Prefix}
	if r.Duration > 0 {
		args = append(args, "duration", r.Duration)
	}
	if r.Err != nil {
		l.log.Warn("participant recording failed", append(args, "err", r.Err)...)
		return
	}
	l.log.Info("participant recording", args...)
}

// checkWritable says plainly when the data folder cannot be written,
// which SQLite would report as "unable to open database file (14)".
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data folder %s cannot be written (--data, IVSRT_DATA): %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// serveMetrics serves /metrics, and the probes, on a listener of their own.
func (m *Main) serveMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for metrics: %w", addr, err)
	}
	m.metricsListener = ln
	m.metricsHTTP = front.NewServer(front.Router(front.Handlers{Metrics: m.Metrics.Handler(), Probes: m.Probes}), m.Logger)
	go m.metricsHTTP.Serve(ln)
	m.Logger.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}

// MetricsAddr returns the address of the metrics listener, "" without
// one.
func (m *Main) MetricsAddr() string {
	if m.metricsListener == nil {
		return ""
	}
	return m.metricsListener.Addr().String()
}

// sinkStatuses reads the sinks' state for the metrics.
type sinkStatuses func() []events.SinkStatus

func (f sinkStatuses) Status() []events.SinkStatus { return f() }

// Drain makes the server unready, refuses new participants and waits up
// to the drain timeout for those connected to leave. Close follows.
func (m *Main) Drain(ctx context.Context) {
	if m.Probes != nil {
		m.Probes.SetDraining(true)
	}
	if m.SFU == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.Config.DrainTimeout)
	defer cancel()
	if m.Node != nil {
		// New stages go to the other nodes from now on.
		if err := m.Node.SetDraining(ctx); err != nil {
			m.Logger.Warn("cluster: tell the others this node drains", "err", err)
		}
	}
	m.SFU.Drain(ctx)
}

// Close disconnects the participants (recording their departure), stops
// serving, letting requests in flight finish, and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.ingest != nil {
		// Encoders first: none starts while the stages close.
		errs = append(errs, m.ingest.Close())
		m.ingest = nil
	}
	if m.SFU != nil {
		errs = append(errs, m.SFU.Close())
		m.SFU = nil
	}
	if m.turn != nil {
		errs = append(errs, m.turn.Close())
		m.turn = nil
	}
	if m.metricsHTTP != nil {
		errs = append(errs, m.metricsHTTP.Close())
		m.metricsHTTP = nil
	}
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs = append(errs, m.http.Shutdown(ctx))
		if err := <-m.served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		m.http = nil
	}
	// What is not delivered yet stays queued in the store for the next run.
	if m.Relay != nil {
		m.Relay.Close()
		m.Relay = nil
	}
	// Leaving the cluster stops the relay if it ran here, and gives up the
	// stages' leases.
	if m.Node != nil {
		m.Node.Close()
		m.Node = nil
	}
	if m.sinks != nil {
		m.sinks.close()
		m.sinks = nil
	}
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
		m.DB = nil
	}
	return errors.Join(errs...)
}
