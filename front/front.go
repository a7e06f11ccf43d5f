// Package front is the server's HTTP front door: the one table of which
// handler answers which request, and the HTTP server's limits.
package front

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/health"
	"github.com/ivsrt/ivsrt/playback"
	"github.com/ivsrt/ivsrt/web"
)

// Paths the front door itself assigns.
const (
	MetricsPath = "/metrics"
	DrainPath   = "/v1/server/drain" // see cmd/ivsrt's drain
)

// Handlers are what answers each part of the server. A nil handler's
// routes are left out (no metrics on this listener, no cluster).
type Handlers struct {
	API           http.Handler // the ivs-realtime operations: everything no other route takes
	Media         http.Handler // the events WebSocket, WHIP and WHEP
	Pages         http.Handler // the join page, the console, the browser client
	EventStream   http.Handler // GET /v1/events/stream
	EventAdmin    http.Handler // the rest of /v1/events/: sinks, dead letters
	Probes        http.Handler // /healthz, /readyz
	Metrics       http.Handler // /metrics
	Drain         http.Handler // POST /v1/server/drain
	ClusterStatus http.Handler // /v1/cluster/nodes
	ClusterStages http.Handler // /v1/cluster/stages
	Recordings    http.Handler // GET /v1/recordings/<bucket>/<key>: recordings' objects
}

// route is a row of the table: the first whose match takes a request
// answers it.
type route struct {
	name    string // for reading the table, and in errors
	match   func(*http.Request) bool
	handler http.Handler
}

func path(p string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.URL.Path == p }
}

func prefix(p string) func(*http.Request) bool {
	return func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, p) }
}

// table is the routing table, in order. The API comes last and takes the
// rest: its paths are its operations' names, and an unknown one gets the
// AWS-shaped UnknownOperationException.
func table(h Handlers) []route {
	return []route{
		{"probes", func(r *http.Request) bool { return health.IsPath(r.URL.Path) }, h.Probes},
		{"metrics", path(MetricsPath), h.Metrics},
		{"drain", path(DrainPath), h.Drain},
		{"cluster status", path(cluster.StatusPath), h.ClusterStatus},
		{"cluster stages", path(cluster.StagesPath), h.ClusterStages},
		{"event stream", func(r *http.Request) bool { return events.IsStreamPath(r.URL.Path) }, h.EventStream},
		{"event delivery API", func(r *http.Request) bool { return events.IsEventsPath(r.URL.Path) }, h.EventAdmin},
		{"recordings", func(r *http.Request) bool { return playback.IsPath(r.URL.Path) }, h.Recordings},
		{"media", func(r *http.Request) bool { return ivsrt.IsMediaPath(r.URL.Path) }, h.Media},
		{"pages", web.IsWebRequest, h.Pages},
		{"api", prefix("/"), h.API},
	}
}

// Router returns the handler that sends each request down the table.
func Router(h Handlers) http.Handler {
	var routes []route
	for _, rt := range table(h) {
		if rt.handler != nil {
			routes = append(routes, rt)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range routes {
			if rt.match(r) {
				rt.handler.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
}

// NewServer returns the HTTP server of handler with the limits every
// listener of ivsrt has: a slow or idle client cannot hold a connection
// for ever, nor send unbounded headers.
func NewServer(handler http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
