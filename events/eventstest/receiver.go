// Package eventstest has a webhook receiver for tests and benchmarks of
// event delivery: a real HTTP server on loopback that verifies signatures
// and records what it accepts.
package eventstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
)

// Receiver is a webhook receiver on loopback that can be down (its port
// refuses connections) or up, and answers as its answer func says.
type Receiver struct {
	t      testing.TB
	addr   string
	secret []byte

	mu       sync.Mutex
	srv      *http.Server
	answer   func(env *ivsrt.Envelope) int // status to answer; nil: 200
	accepted []*ivsrt.Envelope             // answered 2xx, in order of arrival
	times    []time.Time                   // when each was accepted
	tries    int
	attempts map[string]int // highest Ivsrt-Delivery-Attempt seen per event id
	badSigs  int
	changed  chan struct{}
}

// NewReceiver reserves a loopback port and returns a receiver that is down
// and verifies signatures with secret.
func NewReceiver(t testing.TB, secret string) *Receiver {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{t: t, addr: l.Addr().String(), secret: []byte(secret), attempts: map[string]int{}, changed: make(chan struct{}, 1)}
	l.Close()
	t.Cleanup(r.Down)
	return r
}

// URL is where the receiver takes webhooks.
func (r *Receiver) URL() string { return "http://" + r.addr + "/hook" }

// Up starts answering on the receiver's port.
func (r *Receiver) Up() {
	r.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port was free a moment ago; retry briefly if TIME_WAIT holds it
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("receiver up: %v", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(l)
}

// Down closes the port: connections are refused.
func (r *Receiver) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// SetAnswer sets what status the receiver answers an event with (nil:
// 200 to all).
func (r *Receiver) SetAnswer(f func(env *ivsrt.Envelope) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// ServeHTTP takes one webhook request.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}()
	r.tries++
	if err := events.VerifySignature(r.secret, req.Header.Get(events.SignatureHeader), body, time.Now(), 0); err != nil {
		r.badSigs++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var env ivsrt.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, "json", http.StatusBadRequest)
		return
	}
	if id := req.Header.Get(events.EventIDHeader); id != env.ID {
		r.t.Errorf("%s %q, envelope id %q", events.EventIDHeader, id, env.ID)
	}
	n, _ := strconv.Atoi(req.Header.Get(events.AttemptHeader))
	r.attempts[env.ID] = max(r.attempts[env.ID], n)
	status := http.StatusOK
	if r.answer != nil {
		status = r.answer(&env)
	}
	if status/100 == 2 {
		r.accepted = append(r.accepted, &env)
		r.times = append(r.times, time.Now())
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answered %d", status)
}

// WaitAccepted waits until n envelopes were accepted and returns them.
func (r *Receiver) WaitAccepted(n int, within time.Duration) []*ivsrt.Envelope {
	r.t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		got := slices.Clone(r.accepted)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("receiver: %d events accepted after %v, want %d", len(got), within, n)
		}
	}
}

// Snapshot returns what was accepted so far, how many requests came and
// how many had a bad signature.
func (r *Receiver) Snapshot() (accepted []*ivsrt.Envelope, tries, badSigs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted), r.tries, r.badSigs
}

// AcceptedAt returns when each accepted envelope arrived.
func (r *Receiver) AcceptedAt() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.times)
}

// Attempt returns the highest try number seen for the event id.
func (r *Receiver) Attempt(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[id]
}
