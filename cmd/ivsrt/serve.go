package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
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
	"github.com/ivsrt/ivsrt/health"
	"github.com/ivsrt/ivsrt/internal/config"
	"github.com/ivsrt/ivsrt/metrics"
	"github.com/ivsrt/ivsrt/sfu"
	"github.com/ivsrt/ivsrt/token"
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
	LogLevel        string

	// Media: the UDP port all media goes through, the TCP port of the ICE
	// fallback (-1 disables it), and the public addresses put in ICE
	// candidates when the server is behind a 1:1 NAT (comma-separated).
	RTCUDPPort    int
	RTCUDPSockets int
	RTCTCPPort    int
	RTCPublicIPs  string

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

	// MetricsListen, when set, serves /metrics on its own address instead
	// of the API's. DrainTimeout is how long a draining server (SIGTERM)
	// lets live sessions go on before it disconnects them.
	MetricsListen string
	DrainTimeout  time.Duration
}

// DefaultDrainTimeout is how long a draining server waits for its live
// sessions by default: the 30 s Kubernetes gives a pod, less a margin.
const DefaultDrainTimeout = 25 * time.Second

// defaultRTCPort is the default media port, UDP and TCP.
const defaultRTCPort = 7881

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

	// rtcPortsGiven is set when the media ports were configured; if not,
	// a server listening on port 0 takes free media ports too, so that
	// servers started side by side (tests) do not collide.
	rtcPortsGiven bool

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
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("--access-key-id and --secret-access-key go together: give both or neither")
	}
	if c.MaxStages < 0 {
		return fmt.Errorf("--max-stages %d: want 0 or more", c.MaxStages)
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
	m.Metrics, m.Probes = metrics.New(), health.New()
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
	creds, pageKey, signingKey := sec.credentials, sec.pageKey, sec.signingKey
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
		publicURL = "http://" + m.listener.Addr().String()
	}
	m.Config.PublicURL = publicURL
	eventsURL, whipURL := api.EndpointURLs(publicURL)
	issuer := token.NewIssuer(signingKey, token.WithEventsURL(eventsURL), token.WithWHIPURL(whipURL))
	if c.ClusterNATS != "" {
		nodeURL := c.NodeURL
		if nodeURL == "" {
			nodeURL = "http://" + m.listener.Addr().String()
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
		UDPAddr:    net.JoinHostPort(host, strconv.Itoa(udpPort)),
		UDPSockets: c.RTCUDPSockets,
		PublicIPs:  publicIPs(c.RTCPublicIPs),
		PublicURL:  publicURL,
	}
	if m.Node != nil {
		rtc.ResourcePrefix = m.Node.ResourcePrefix()
	}
	if tcpPort >= 0 {
		rtc.TCPAddr = net.JoinHostPort(host, strconv.Itoa(tcpPort))
	}
	if m.SFU, err = sfu.New(m.DB, issuer, rtc, sfu.WithLogger(m.Logger), sfu.WithReceptionObserver(m.Metrics)); err != nil {
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
	} else {
		if err := m.joinCluster(ctx); err != nil {
			return err
		}
		media = m.Node
		node := m.Node
		m.Probes.Add("cluster", func(context.Context) error { return node.Healthy() })
	}

	verifier := &api.SigV4Verifier{Credentials: creds, Service: "ivs", Dev: c.Dev}
	m.API, err = api.NewServer(m.DB, issuer, verifier, api.Config{
		Region:        c.Region,
		AccountID:     c.AccountID,
		PublicURL:     publicURL,
		Quota:         ivsrt.StageQuota{MaxStages: c.MaxStages},
		PaginationKey: pageKey,
	}, api.WithLogger(m.Logger.With("component", "api")), api.WithMediaPlane(media), api.WithRequestObserver(m.Metrics))
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
	var handler http.Handler = withEventStream(stream, admin, router{api: m.API, media: mediaHandler, web: pages, probes: m.Probes, metrics: metricsHandler})
	if m.Node != nil {
		status := m.Node.StatusHandler(verifier.Authorize)
		next := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == cluster.StatusPath {
				status.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	m.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.http.RegisterOnShutdown(stream.Close) // streams never end by themselves
	m.served = make(chan error, 1)
	go func() { m.served <- m.http.Serve(m.listener) }()
	m.Logger.Info("serving", "addr", m.listener.Addr().String(), "public_url", publicURL,
		"data", c.DataDir, "region", c.Region, "dev", c.Dev,
		"rtc_udp", m.SFU.UDPAddr().String(), "rtc_tcp", addrString(m.SFU.TCPAddr()))
	return nil
}

// router sends the media plane's paths (/events, /whip, /whep/...) to the
// sfu, the pages (/join, /console, /client/...) to web, and everything else
// to the API.
type router struct {
	api     http.Handler
	media   http.Handler
	web     http.Handler
	probes  http.Handler
	metrics http.Handler // nil when served on a listener of its own
}

func (rt router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if health.IsPath(r.URL.Path) {
		rt.probes.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == metricsPath && rt.metrics != nil {
		rt.metrics.ServeHTTP(w, r)
		return
	}
	if ivsrt.IsMediaPath(r.URL.Path) {
		rt.media.ServeHTTP(w, r)
		return
	}
	if web.IsWebRequest(r) {
		rt.web.ServeHTTP(w, r)
		return
	}
	rt.api.ServeHTTP(w, r)
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

// metricsPath is where the metrics are served.
const metricsPath = "/metrics"

// serveMetrics serves /metrics, and the probes, on a listener of their own.
func (m *Main) serveMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for metrics: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(metricsPath, m.Metrics.Handler())
	mux.Handle(health.LivePath, m.Probes)
	mux.Handle(health.ReadyPath, m.Probes)
	m.metricsListener = ln
	m.metricsHTTP = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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
	m.SFU.Drain(ctx)
}

// Close disconnects the participants (recording their departure), stops
// serving, letting requests in flight finish, and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.SFU != nil {
		errs = append(errs, m.SFU.Close())
		m.SFU = nil
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

// storedCredentials is the data folder's credentials.json.
type storedCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// credentials returns the keys clients must sign with: the configured ones,
// or else the data folder's, generated at first start so that a fresh
// install is never open to anyone.
func (m *Main) credentials() ([]api.Credential, error) {
	c := m.Config
	if c.AccessKeyID != "" {
		return []api.Credential{{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}}, nil
	}
	path := filepath.Join(c.DataDir, "credentials.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		sc := newCredentials()
		data, _ = json.MarshalIndent(sc, "", "  ")
		if err := writeFileAtomic(path, append(data, '\n')); err != nil {
			return nil, fmt.Errorf("save generated credentials: %w", err)
		}
		fmt.Fprintf(os.Stderr, "ivsrt: generated API credentials (kept in %s):\n"+
			"  export AWS_ACCESS_KEY_ID=%s\n  export AWS_SECRET_ACCESS_KEY=%s\n",
			path, sc.AccessKeyID, sc.SecretAccessKey)
	} else if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var sc storedCredentials
	if err := json.Unmarshal(data, &sc); err != nil || sc.AccessKeyID == "" || sc.SecretAccessKey == "" {
		return nil, fmt.Errorf("%s is damaged: want {\"accessKeyId\": ..., \"secretAccessKey\": ...}", path)
	}
	return []api.Credential{{AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey}}, nil
}

// newCredentials returns a new random access key.
func newCredentials() storedCredentials {
	return storedCredentials{
		AccessKeyID:     "AKIV" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
	}
}

// loadOrCreateSecret returns the n random bytes kept at path, creating them
// the first time.
func loadOrCreateSecret(path string, n int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if len(data) != n {
			return nil, fmt.Errorf("%s is damaged: want %d bytes, got %d", path, n, len(data))
		}
		return data, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	data = make([]byte, n)
	rand.Read(data)
	if err := writeFileAtomic(path, data); err != nil {
		return nil, fmt.Errorf("save %s: %w", path, err)
	}
	return data, nil
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// writeFileAtomic writes data so that a crash leaves either the old file or
// the whole new one: temp file, fsync, rename, fsync of the folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
