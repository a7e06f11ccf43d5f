package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivsrt/ivsrt/events"
)

// arrival is one envelope the receiver took, first copy only.
type arrival struct {
	At          time.Time
	ID          string
	Stage       string // resources[0]
	EventName   string
	StageName   string // Stage Created/Updated/Deleted
	Participant string // participant events
}

// receiver is the webhook: a plain net/http server on loopback that
// verifies every request's signature, keeps the arrival time of each
// envelope and answers 200. It can be stopped and started again on the
// same address, as a receiver that goes down and comes back.
type receiver struct {
	secret []byte
	addr   string

	mu       sync.Mutex
	srv      *http.Server
	seen     map[string]bool
	arrivals []arrival
	dups     int
	badSigs  int
	retried  int // requests whose Ivsrt-Delivery-Attempt was above 1
	changed  chan struct{}

	conns atomic.Int64 // TCP connections accepted
}

func newReceiver(secret string) (*receiver, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	r := &receiver{secret: []byte(secret), addr: addr, changed: make(chan struct{})}
	r.reset()
	return r, r.start()
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

// start listens and serves; the address stays the same across restarts.
func (r *receiver) start() error {
	var l net.Listener
	var err error
	for range 50 { // the port may linger for a moment after a stop
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(r.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				r.conns.Add(1)
			}
		},
	}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(l)
	return nil
}

// stop closes the listener and every connection: the server's next try
// is refused.
func (r *receiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// reset forgets everything received so far.
func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = map[string]bool{}
	r.arrivals = nil
	r.dups, r.badSigs, r.retried = 0, 0, 0
	r.conns.Store(0)
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	now := time.Now()
	if err != nil || req.Method != http.MethodPost || req.URL.Path != "/hook" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := events.VerifySignature(r.secret, req.Header.Get(events.SignatureHeader), body, now, 0); err != nil {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var env struct {
		ID        string         `json:"id"`
		Resources []string       `json:"resources"`
		Detail    map[string]any `json:"detail"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.ID == "" {
		http.Error(w, "not an envelope", http.StatusBadRequest)
		return
	}
	a := arrival{At: now, ID: env.ID}
	if len(env.Resources) > 0 {
		a.Stage = env.Resources[0]
	}
	a.EventName, _ = env.Detail["event_name"].(string)
	a.StageName, _ = env.Detail["stage_name"].(string)
	a.Participant, _ = env.Detail["participant_id"].(string)
	attempt, _ := strconv.Atoi(req.Header.Get(events.AttemptHeader))

	r.mu.Lock()
	if attempt > 1 {
		r.retried++
	}
	if r.seen[env.ID] {
		r.dups++
	} else {
		r.seen[env.ID] = true
		r.arrivals = append(r.arrivals, a)
		close(r.changed)
		r.changed = make(chan struct{})
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// counts is what the receiver counted since its last reset.
type counts struct {
	Arrivals, Dups, BadSigs, Retried int
	Conns                            int64
}

func (r *receiver) counts() counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return counts{Arrivals: len(r.arrivals), Dups: r.dups, BadSigs: r.badSigs, Retried: r.retried, Conns: r.conns.Load()}
}

// snapshot returns the arrivals so far, in arrival order.
func (r *receiver) snapshot() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.arrivals...)
}

var errTimeout = errors.New("timed out")

// waitFor waits, up to timeout, until ok finds what it looks for among the
// arrivals (ok returns its index, or -1 to keep waiting), and returns that
// arrival.
func (r *receiver) waitFor(ctx context.Context, timeout time.Duration, ok func([]arrival) int) (arrival, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		r.mu.Lock()
		i := ok(r.arrivals)
		var a arrival
		if i >= 0 {
			a = r.arrivals[i]
		}
		changed := r.changed
		r.mu.Unlock()
		if i >= 0 {
			return a, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return a, errTimeout
			}
			return a, ctx.Err()
		}
	}
}

// find returns a waitFor condition: the first arrival with that event
// name (and participant, if given).
func find(eventName, participant string) func([]arrival) int {
	return func(as []arrival) int {
		for i, a := range as {
			if a.EventName == eventName && (participant == "" || a.Participant == participant) {
				return i
			}
		}
		return -1
	}
}
