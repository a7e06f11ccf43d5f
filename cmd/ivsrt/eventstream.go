package main

import (
	"net/http"

	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/events"
)

// newEventStream returns the handler of the event stream (GET
// /v1/events/stream). Clients sign their requests as for the API; with
// --dev, which trusts every caller, the stream is open to anyone (so that a
// browser's EventSource, which cannot sign, can follow it).
func (m *Main) newEventStream(verifier *api.SigV4Verifier) *events.Handler {
	cfg := events.Config{Region: m.Config.Region, AccountID: m.Config.AccountID}
	if !m.Config.Dev {
		cfg.Authorize = func(w http.ResponseWriter, r *http.Request) bool {
			return verifier.Authorize(w, r, nil)
		}
	}
	return events.NewHandler(m.DB, cfg, events.WithLogger(m.Logger.With("component", "events")))
}

// withEventStream sends the event stream's path to stream and every other
// request to next.
func withEventStream(stream, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if events.IsStreamPath(r.URL.Path) {
			stream.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
