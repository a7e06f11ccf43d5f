package main

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt/front"
)

// DrainPath is where `ivsrt drain` asks a running server to drain and
// stop, as SIGTERM does: for when signals cannot reach it (a container
// one can only reach over the network).
const DrainPath = front.DrainPath

// drainRequest is what makes the serving loop drain: closed once, by the
// first request.
type drainRequest struct {
	once sync.Once
	ch   chan struct{}
}

func newDrainRequest() *drainRequest { return &drainRequest{ch: make(chan struct{})} }

func (d *drainRequest) request()                   { d.once.Do(func() { close(d.ch) }) }
func (d *drainRequest) requested() <-chan struct{} { return d.ch }

// drainAnswer is the body of DrainPath's answer.
type drainAnswer struct {
	Draining bool   `json:"draining"`
	Timeout  string `json:"timeout"` // how long live sessions may go on
}

// drainHandler answers POST DrainPath, signed as API requests are, with
// 202 Accepted: the server drains, then stops.
func (m *Main) drainHandler(authorize func(w http.ResponseWriter, r *http.Request, body []byte) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<10))
		if err != nil {
			http.Error(w, "the request body could not be read", http.StatusBadRequest)
			return
		}
		if !authorize(w, r, body) {
			return
		}
		m.Logger.Info("drain requested", "from", r.RemoteAddr)
		m.drain.request()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(drainAnswer{Draining: true, Timeout: m.Config.DrainTimeout.Round(time.Second).String()})
	})
}

// DrainRequested is closed once a drain was asked for over HTTP.
func (m *Main) DrainRequested() <-chan struct{} { return m.drain.requested() }
