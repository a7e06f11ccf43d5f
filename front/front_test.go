package front

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// named answers with its name, to see who took a request.
type named string

func (n named) ServeHTTP(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(n)) }

func TestRouter(t *testing.T) {
	all := Handlers{
		API: named("api"), Media: named("media"), Pages: named("pages"), EventStream: named("stream"),
		EventAdmin: named("admin"), Probes: named("probes"), Metrics: named("metrics"), Drain: named("drain"),
		ClusterStatus: named("cluster"), ClusterStages: named("stages"), Recordings: named("recordings"),
	}
	tests := []struct {
		method, path string
		want         string
	}{
		{"POST", "/CreateStage", "api"},
		{"POST", "/tags/arn:aws:ivs:us-east-1:123456789012:stage/x", "api"},
		{"GET", "/", "pages"},
		{"POST", "/", "api"}, // only GET and HEAD are pages
		{"GET", "/join", "pages"},
		{"GET", "/client/ivsrt.js", "pages"},
		{"GET", "/events", "media"},
		{"POST", "/whip", "media"},
		{"DELETE", "/whip/abc", "media"},
		{"POST", "/whep/participant", "media"},
		{"GET", "/v1/events/stream", "stream"},
		{"GET", "/v1/events/sinks", "admin"},
		{"GET", "/healthz", "probes"},
		{"GET", "/readyz", "probes"},
		{"GET", "/metrics", "metrics"},
		{"POST", "/v1/server/drain", "drain"},
		{"GET", "/v1/cluster/nodes", "cluster"},
		{"GET", "/v1/cluster/stages", "stages"},
		{"GET", "/v1/recordings/recs/a/st-b/c/1/media/hls/high/1.mp4", "recordings"},
		{"HEAD", "/v1/recordings/x", "recordings"},
		{"POST", "/v1/recordings/", "recordings"}, // refused there, not taken as an operation
		{"GET", "/NoSuchThing", "api"},
	}
	h := Router(all)
	for _, tt := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if got := w.Body.String(); got != tt.want {
			t.Errorf("%s %s went to %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}

	// Without metrics or a cluster, their paths are the API's (an unknown
	// operation).
	partial := all
	partial.Metrics, partial.ClusterStatus, partial.ClusterStages = nil, nil, nil
	h = Router(partial)
	for _, p := range []string{"/metrics", "/v1/cluster/nodes", "/v1/cluster/stages"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if got := w.Body.String(); got != "api" {
			t.Errorf("GET %s without its handler went to %q, want the API", p, got)
		}
	}
}
