// Package health answers the probes of load balancers and orchestrators:
// /healthz, whether the process is alive, and /readyz, whether it should
// be sent new work.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Paths of the probes.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// IsPath reports whether path is one of the probes.
func IsPath(path string) bool { return path == LivePath || path == ReadyPath }

// Check returns why a dependency of the server is not fit to serve, or nil.
type Check func(ctx context.Context) error

// Probes holds the readiness checks and the draining state.
type Probes struct {
	timeout time.Duration

	mu     sync.Mutex
	checks []namedCheck

	draining atomic.Bool
}

type namedCheck struct {
	name  string
	check Check
}

// DefaultTimeout bounds each readiness check: a probe must answer within
// the orchestrator's own timeout (Kubernetes: 1 s by default), so a store
// that hangs makes the server not ready rather than the probe time out.
const DefaultTimeout = 800 * time.Millisecond

// New returns probes with no checks.
func New() *Probes { return &Probes{timeout: DefaultTimeout} }

// Add adds a readiness check under name.
func (p *Probes) Add(name string, c Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks = append(p.checks, namedCheck{name, c})
}

// SetDraining marks the server draining: not ready, whatever the checks
// say, so that load balancers send new work elsewhere.
func (p *Probes) SetDraining(d bool) { p.draining.Store(d) }

// Draining reports whether SetDraining(true) was called.
func (p *Probes) Draining() bool { return p.draining.Load() }

// Report is a readiness answer's body.
type Report struct {
	Ready    bool              `json:"ready"`
	Draining bool              `json:"draining,omitempty"`
	Checks   map[string]string `json:"checks"` // "ok" or why not
}

// Ready runs the checks, concurrently, and reports.
func (p *Probes) Ready(ctx context.Context) Report {
	p.mu.Lock()
	checks := append([]namedCheck(nil), p.checks...)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = run(ctx, c.check) })
	}
	wg.Wait()
	rep := Report{Ready: !p.Draining(), Draining: p.Draining(), Checks: map[string]string{}}
	for i, c := range checks {
		if results[i] != nil {
			rep.Ready = false
			rep.Checks[c.name] = results[i].Error()
		} else {
			rep.Checks[c.name] = "ok"
		}
	}
	return rep
}

// run runs c, giving up when ctx ends even if c does not return.
func run(ctx context.Context, c Check) error {
	done := make(chan error, 1)
	go func() { done <- c(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// ServeHTTP answers /healthz with 200 while the process can answer at all,
// and /readyz with 200 when ready, 503 when not, with a JSON report.
func (p *Probes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case LivePath:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	case ReadyPath:
		rep := p.Ready(r.Context())
		body, _ := json.Marshal(rep)
		w.Header().Set("Content-Type", "application/json")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write(append(body, '\n'))
	default:
		http.NotFound(w, r)
	}
}
