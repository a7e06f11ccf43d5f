package main

import (
	"io"
	"net/url"
	"strings"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/internal/config"
	"github.com/ivsrt/ivsrt/sfu"
	"github.com/ivsrt/ivsrt/turnrelay"
)

// otherEnv are IVSRT_* variables that are not settings of ivsrt serve but
// that the client commands (cli) and the tests read: a server started
// from the same shell must not trip on them.
var otherEnv = []string{
	"IVSRT_ENDPOINT_URL",  // cli: the server the client commands talk to
	"IVSRT_TEST_POSTGRES", // store/postgres/pgtest
	"IVSRT_ARTIFACTS",     // web/webtest
	"IVSRT_SOAK",          // cmd/ivsrt's soak test
	"IVSRT_BENCH",         // bench/clusterbench
}

// settings is the table of ivsrt serve's settings, writing into m.Config:
// the one place where a setting's flag, variable, file key, default and
// help are written. docs/configuration.md is made from it (see
// TestConfigDocs).
func (m *Main) settings() *config.Set {
	c := &m.Config
	return &config.Set{
		Command: "ivsrt serve",
		About: "Each setting takes its default, then the value in the --config file, then its IVSRT_*\n" +
			"environment variable, then its flag: the last one given wins. --print-config shows the\n" +
			"outcome. docs/configuration.md describes every setting.",
		EnvPrefix: "IVSRT_",
		FileFlag:  "config",
		FileEnv:   "IVSRT_CONFIG",
		OtherEnv:  otherEnv,
		Settings: []config.Setting{
			{Flag: "listen", Env: "IVSRT_LISTEN", Key: "listen",
				Value: config.String(&c.Listen, "127.0.0.1:7870"),
				Help:  "address to serve the API on"},
			{Flag: "data", Env: "IVSRT_DATA", Key: "data",
				Value: config.String(&c.DataDir, "./ivsrt-data"),
				Help:  "data folder (database, keys, credentials), created if missing"},
			{Flag: "region", Env: "IVSRT_REGION", Key: "region",
				Value: config.String(&c.Region, "us-east-1"),
				Help:  "AWS region this server answers as, in ARNs"},
			{Flag: "account-id", Env: "IVSRT_ACCOUNT_ID", Key: "account_id",
				Value: config.String(&c.AccountID, "123456789012"),
				Help:  "12-digit account id in ARNs"},
			{Flag: "public-url", Env: "IVSRT_PUBLIC_URL", Key: "public_url",
				Value: config.String(&c.PublicURL, ""), Default: "http://LISTEN",
				Help: "base URL clients reach this server at; stage endpoints and token URLs point under it"},
			{Flag: "dev", Env: "IVSRT_DEV", Key: "dev",
				Value: config.Bool(&c.Dev, false),
				Help:  "accept any well-formed SigV4 signature without checking the secret"},
			{Flag: "access-key-id", Env: "IVSRT_ACCESS_KEY_ID", Key: "access_key_id",
				Value: config.String(&c.AccessKeyID, ""), Default: "generated, kept in the data folder",
				Help: "access key id clients sign with; give --secret-access-key with it"},
			{Flag: "secret-access-key", Env: "IVSRT_SECRET_ACCESS_KEY", Key: "secret_access_key",
				Value: config.String(&c.SecretAccessKey, ""), Secret: true,
				Help: "secret access key clients sign with"},
			{Flag: "max-stages", Env: "IVSRT_MAX_STAGES", Key: "max_stages",
				Value: config.Int(&c.MaxStages, 0),
				Help:  "most stages that may exist at once, 0 for no limit; more is ServiceQuotaExceededException"},
			{Flag: "max-subscribers", Env: "IVSRT_MAX_SUBSCRIBERS", Key: "max_subscribers",
				Value: config.Int(&c.MaxSubscribers, sfu.DefaultMaxSubscribers),
				Help:  "most participants of a stage subscribing to anyone at once (on every node of a cluster); more get QUOTA_EXCEEDED"},
			{Flag: "max-public-keys", Env: "IVSRT_MAX_PUBLIC_KEYS", Key: "max_public_keys",
				Value: config.Int(&c.MaxPublicKeys, 0),
				Help:  "most public keys (for self-signed tokens) that may be imported at once, 0 for no limit; more is ServiceQuotaExceededException"},
			{Flag: "max-replicas-per-participant", Env: "IVSRT_MAX_REPLICAS_PER_PARTICIPANT", Key: "max_replicas_per_participant",
				Value: config.Int(&c.MaxReplicas, ivsrt.DefaultMaxReplicasPerParticipant),
				Help:  "most stages a participant may be replicated to at once, 0 for no limit; more is ServiceQuotaExceededException"},
			{Flag: "log-level", Env: "IVSRT_LOG_LEVEL", Key: "log_level",
				Value: config.String(&c.LogLevel, "info"),
				Help:  "debug, info, warn or error"},

			{Flag: "rtc-udp-port", Env: "IVSRT_RTC_UDP_PORT", Key: "rtc_udp_port",
				Value: config.Int(&c.RTCUDPPort, defaultRTCPort),
				Help:  "UDP port all media goes through, on the --listen address; 0 for any free port"},
			{Flag: "rtc-udp-sockets", Env: "IVSRT_RTC_UDP_SOCKETS", Key: "rtc_udp_sockets",
				Value: config.Int(&c.RTCUDPSockets, 0),
				Help:  "sockets sharing the UDP port (SO_REUSEPORT, Linux), each sending in batches; 0 for one"},
			{Flag: "rtc-tcp-port", Env: "IVSRT_RTC_TCP_PORT", Key: "rtc_tcp_port",
				Value: config.Int(&c.RTCTCPPort, defaultRTCPort),
				Help:  "TCP port of the ICE fallback for clients without UDP; 0 for any free port, -1 to disable"},
			{Flag: "rtc-bandwidth-estimation", Env: "IVSRT_RTC_BANDWIDTH_ESTIMATION", Key: "rtc_bandwidth_estimation",
				Value: config.Bool(&c.RTCBandwidthEstimation, true),
				Help:  "estimate each subscriber's bandwidth from its TWCC feedback, to give it the simulcast layer its path carries"},
			{Flag: "rtc-public-ip", Env: "IVSRT_RTC_PUBLIC_IP", Key: "rtc_public_ip",
				Value: config.String(&c.RTCPublicIPs, ""),
				Help:  "public IP address(es) of a 1:1 NAT in front of the server, comma-separated, for ICE candidates"},

			{Flag: "turn-udp-port", Env: "IVSRT_TURN_UDP_PORT", Key: "turn_udp_port",
				Value: config.Int(&c.TURNUDPPort, defaultTURNPort),
				Help:  "port of the embedded TURN server, UDP and TCP, on the --listen address; 0 for any free port, -1 to disable"},
			{Flag: "turn-tls-port", Env: "IVSRT_TURN_TLS_PORT", Key: "turn_tls_port",
				Value: config.Int(&c.TURNTLSPort, -1),
				Help:  "port of the embedded TURN server over TLS (443 in production), with --turn-cert and --turn-key; -1 to disable"},
			{Flag: "turn-cert", Env: "IVSRT_TURN_CERT", Key: "turn_cert",
				Value: config.String(&c.TURNCert, ""),
				Help:  "PEM certificate (chain) of TURN over TLS, for the name clients reach --turn-host by"},
			{Flag: "turn-key", Env: "IVSRT_TURN_KEY", Key: "turn_key",
				Value: config.String(&c.TURNKey, ""),
				Help:  "PEM private key of --turn-cert"},
			{Flag: "turn-host", Env: "IVSRT_TURN_HOST", Key: "turn_host",
				Value: config.String(&c.TURNHost, ""),
				Help:  "host name or address the TURN URLs handed to participants name; default: --public-url's"},
			{Flag: "turn-urls", Env: "IVSRT_TURN_URLS", Key: "turn_urls",
				Value: config.List(&c.TURNURLs, nil),
				Help:  "use this external TURN server (coturn with use-auth-secret) instead of the embedded one: its turn: and turns: URLs"},
			{Flag: "turn-secret", Env: "IVSRT_TURN_SECRET", Key: "turn_secret",
				Value: config.String(&c.TURNSecret, ""), Secret: true,
				Help: "secret TURN credentials are derived from: the external server's static-auth-secret; default for the embedded one: generated and kept"},
			{Flag: "turn-max-allocations", Env: "IVSRT_TURN_MAX_ALLOCATIONS", Key: "turn_max_allocations",
				Value: config.Int(&c.TURNMaxAllocations, turnrelay.DefaultMaxAllocations),
				Help:  "most TURN allocations one participant may hold at once on the embedded server"},

			{Flag: "rtmp-port", Env: "IVSRT_RTMP_PORT", Key: "rtmp_port",
				Value: config.Int(&c.RTMPPort, defaultRTMPPort),
				Help:  "port RTMP encoders publish to with an ingest configuration's stream key, on the --listen address; 0 for any free port, -1 to disable"},
			{Flag: "rtmps-port", Env: "IVSRT_RTMPS_PORT", Key: "rtmps_port",
				Value: config.Int(&c.RTMPSPort, -1),
				Help:  "port of RTMP over TLS (443 in production), with --rtmps-cert and --rtmps-key; -1 to disable"},
			{Flag: "rtmps-cert", Env: "IVSRT_RTMPS_CERT", Key: "rtmps_cert",
				Value: config.String(&c.RTMPSCert, ""),
				Help:  "PEM certificate (chain) of RTMPS, for the name encoders reach --ingest-host by"},
			{Flag: "rtmps-key", Env: "IVSRT_RTMPS_KEY", Key: "rtmps_key",
				Value: config.String(&c.RTMPSKey, ""),
				Help:  "PEM private key of --rtmps-cert"},
			{Flag: "ingest-host", Env: "IVSRT_INGEST_HOST", Key: "ingest_host",
				Value: config.String(&c.IngestHost, ""),
				Help:  "host name or address the stages' RTMP(S) endpoints name; default: --public-url's"},

			{Flag: "max-compositions", Env: "IVSRT_MAX_COMPOSITIONS", Key: "max_compositions",
				Value: config.Int(&c.MaxCompositions, defaultMaxCompositions),
				Help:  "most compositions (StartComposition) running at once; each encodes video, about a core at 720p30"},
			{Flag: "composition-channel", Env: "IVSRT_COMPOSITION_CHANNEL", Key: "composition_channel",
				Value: config.List(&c.CompositionChannels, nil),
				Help:  "CHANNEL_ARN=rtmp(s)://host/app/key: where a composition's channel destination of that ARN sends (repeatable); a channel not listed fails"},

			{Flag: "event-sinks", Env: "IVSRT_EVENT_SINKS", Key: "event_sinks",
				Value: config.String(&c.EventSinksFile, ""),
				Help:  "JSON file of the event stream's webhooks and NATS sinks, as docs/events.md describes"},
			{Flag: "webhook-url", Env: "IVSRT_WEBHOOK_URL", Key: "webhook_url",
				Value: config.List(&c.WebhookURLs, nil), Redact: events.Redact,
				Help: "deliver the event stream to this URL, signed with --webhook-secret"},
			{Flag: "webhook-secret", Env: "IVSRT_WEBHOOK_SECRET", Key: "webhook_secret",
				Value: config.String(&c.WebhookSecret, ""), Secret: true,
				Help: "secret the --webhook-url requests are signed with"},
			{Flag: "webhook-filter", Env: "IVSRT_WEBHOOK_FILTER", Key: "webhook_filter",
				Value: config.String(&c.WebhookFilter, ""),
				Help:  "EventBridge-style event pattern (JSON) the --webhook-url events must match"},
			{Flag: "nats-url", Env: "IVSRT_NATS_URL", Key: "nats_url",
				Value: config.String(&c.NATSURL, ""), Redact: redactUserInfo,
				Help: "publish the event stream to this NATS server"},
			{Flag: "nats-subject-prefix", Env: "IVSRT_NATS_SUBJECT_PREFIX", Key: "nats_subject_prefix",
				Value: config.String(&c.NATSSubjectPrefix, ""), Default: "ivs",
				Help: "first token of the NATS subjects"},
			{Flag: "nats-jetstream", Env: "IVSRT_NATS_JETSTREAM", Key: "nats_jetstream",
				Value: config.Bool(&c.NATSJetStream, false),
				Help:  "publish to NATS through JetStream, waiting for the stream's ack"},
			{Flag: "event-retry-for", Env: "IVSRT_EVENT_RETRY_FOR", Key: "event_retry_for",
				Value: config.Duration(&c.EventRetryFor, events.DefaultRetryFor),
				Help:  "how long an event is retried before it becomes a dead letter"},
			{Flag: "event-retention", Env: "IVSRT_EVENT_RETENTION", Key: "event_retention",
				Value: config.Duration(&c.EventRetention, events.DefaultRetention),
				Help:  "how long delivered events are kept for replay, 0 for ever"},

			{Flag: "store", Env: "IVSRT_STORE", Key: "store",
				Value: config.String(&c.Store, ""), Default: "SQLite in the data folder", Redact: redactStore,
				Help: "where state lives: sqlite, or postgres://user:pass@host/db; see docs/operations.md"},
			{Flag: "cluster-nats", Env: "IVSRT_CLUSTER_NATS", Key: "cluster_nats",
				Value: config.String(&c.ClusterNATS, ""), Redact: redactUserInfo,
				Help: "NATS URL(s) of the cluster this node joins, comma-separated; needs a PostgreSQL --store"},
			{Flag: "node-url", Env: "IVSRT_NODE_URL", Key: "node_url",
				Value: config.String(&c.NodeURL, ""), Default: "http://LISTEN",
				Help: "where the other nodes of the cluster reach this one"},
			{Flag: "node-id", Env: "IVSRT_NODE_ID", Key: "node_id",
				Value: config.String(&c.NodeID, ""), Default: "host name and a random suffix, new at each start",
				Help: "this node's name in the cluster"},
			{Flag: "cluster-lease", Env: "IVSRT_CLUSTER_LEASE", Key: "cluster_lease",
				Value: config.Duration(&c.ClusterLeaseTTL, cluster.DefaultLeaseTTL),
				Help:  "how long a stage stays placed on a node that stops renewing it"},
			{Flag: "cluster-heartbeat", Env: "IVSRT_CLUSTER_HEARTBEAT", Key: "cluster_heartbeat",
				Value: config.Duration(&c.ClusterHeartbeat, cluster.DefaultHeartbeatInterval),
				Help:  "how often a node reports its load and renews its stages; shorter than --cluster-lease"},
			{Flag: "cluster-dead-after", Env: "IVSRT_CLUSTER_DEAD_AFTER", Key: "cluster_dead_after",
				Value: config.Duration(&c.ClusterDeadAfter, cluster.DefaultDeadAfter),
				Help:  "silence after which a node counts as dead and its stages are cleaned up"},
			{Flag: "node-max-subscriptions", Env: "IVSRT_NODE_MAX_SUBSCRIPTIONS", Key: "node_max_subscriptions",
				Value: config.Int(&c.NodeMaxSubscriptions, 0), Default: "no limit",
				Help: "subscriptions a cluster node serves (of its stages, and as an edge of others') before new subscribers go to another node"},

			{Flag: "metrics-listen", Env: "IVSRT_METRICS_LISTEN", Key: "metrics_listen",
				Value: config.String(&c.MetricsListen, ""), Default: "the API's address",
				Help: "serve /metrics on this address instead of the API's"},
			{Flag: "drain-timeout", Env: "IVSRT_DRAIN_TIMEOUT", Key: "drain_timeout",
				Value: config.Duration(&c.DrainTimeout, DefaultDrainTimeout),
				Help:  "on SIGTERM, how long live sessions may go on before they are disconnected; 0 to stop at once"},

			{Flag: "s3-endpoint-url", Env: "IVSRT_S3_ENDPOINT_URL", Key: "s3_endpoint_url",
				Value: config.String(&c.S3EndpointURL, ""), Default: "none: buckets are folders in DATA/s3",
				Help: "S3-compatible service (AWS S3, MinIO, Ceph...) that holds the storage configurations' buckets, addressed in path style"},
			{Flag: "s3-region", Env: "IVSRT_S3_REGION", Key: "s3_region",
				Value: config.String(&c.S3Region, ""), Default: "--region",
				Help: "region requests to --s3-endpoint-url are signed for"},
			{Flag: "s3-access-key-id", Env: "IVSRT_S3_ACCESS_KEY_ID", Key: "s3_access_key_id",
				Value: config.String(&c.S3AccessKeyID, ""), Default: "the standard AWS chain (AWS_ACCESS_KEY_ID, ~/.aws...)",
				Help: "access key id for --s3-endpoint-url; give --s3-secret-access-key with it"},
			{Flag: "s3-secret-access-key", Env: "IVSRT_S3_SECRET_ACCESS_KEY", Key: "s3_secret_access_key",
				Value: config.String(&c.S3SecretAccessKey, ""), Secret: true,
				Help: "secret access key for --s3-endpoint-url"},

			// Not a setting of the server but of this command line: no
			// variable, no key, and nothing in Config.
			{Flag: "print-config", Value: config.Bool(&m.printConfig, false),
				Help: "print the effective configuration as a TOML file, secrets left out, and exit"},
		},
	}
}

// writeConfig writes the configuration ParseFlags settled on, for
// --print-config.
func (m *Main) writeConfig(w io.Writer) error {
	return m.settings().WriteTOML(w, m.sources)
}

// redactStore hides a database URL's password, in the user information
// (as redactDSN does) or in the query.
func redactStore(dsn string) string {
	s := redactDSN(dsn)
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "…")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return s
}

// redactUserInfo hides the user information of each of a comma-separated
// list of URLs; with NATS it may be a user and password or a token.
// Addresses without a scheme (host:4222) are left alone.
func redactUserInfo(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		authority := rest
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			authority = rest[:end]
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			parts[i] = scheme + "://…@" + rest[at+1:]
		}
	}
	return strings.Join(parts, ",")
}
