package events

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt"
)

// Paths of the event delivery's own API, beside the stream.
const (
	SinksPath          = "/v1/events/sinks"
	DeadLettersPath    = "/v1/events/dead-letters"
	RedrivePath        = "/v1/events/dead-letters/redrive"
	eventsPathPrefix   = "/v1/events/"
	maxAdminBody       = 4 << 10
	defaultDeadLetters = 50
	maxDeadLetters     = 100
)

// IsEventsPath reports whether path belongs to the event stream or its
// delivery API (see Mux).
func IsEventsPath(path string) bool { return strings.HasPrefix(path, eventsPathPrefix) }

// AdminHandler serves what operators need to watch and mend deliveries:
//
//	GET  /v1/events/sinks                          the sinks and how they fare
//	GET  /v1/events/dead-letters?sink=&maxResults=&nextToken=
//	POST /v1/events/dead-letters/redrive  {"sink": "...", "eventId": "..."}
//
// Answers are JSON; errors are {"message": "..."} with a 4xx or 5xx status.
type AdminHandler struct {
	relay     DeliveryControl // nil when no sink is configured
	store     ivsrt.DeliveryStore
	region    string
	account   string
	authorize func(w http.ResponseWriter, r *http.Request, body []byte) bool
	log       *slog.Logger
}

// DeliveryControl is what the handler shows and mends: a Relay, or in a
// cluster whichever node's relay runs.
type DeliveryControl interface {
	Status() []SinkStatus
	Redrive(ctx context.Context, sink, eventID string) error
}

var _ DeliveryControl = (*Relay)(nil)

// NewAdminHandler returns the handler; relay may be nil (no sinks), and
// cfg's Authorize, Region and AccountID apply as for the stream.
func NewAdminHandler(relay DeliveryControl, store ivsrt.DeliveryStore, cfg Config, log *slog.Logger) *AdminHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AdminHandler{relay: relay, store: store, region: cfg.Region, account: cfg.AccountID, authorize: cfg.Authorize, log: log}
}

// DeadLetterView is a dead letter as the API shows it.
type DeadLetterView struct {
	Sink       string          `json:"sink"`
	Attempts   int             `json:"attempts"`
	LastError  string          `json:"lastError"`
	EnqueuedAt time.Time       `json:"enqueuedAt"`
	DeadAt     time.Time       `json:"deadAt"`
	Event      *ivsrt.Envelope `json:"event"`
}

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := map[string]string{SinksPath: http.MethodGet, DeadLettersPath: http.MethodGet, RedrivePath: http.MethodPost}
	method, ok := route[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "Not found.")
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, "Use "+method+".")
		return
	}
	// The signature covers the body: read it (bounded) first.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil || len(body) > maxAdminBody {
		writeError(w, http.StatusRequestEntityTooLarge, "The body must be a small JSON object.")
		return
	}
	if h.authorize != nil && !h.authorize(w, r, body) {
		return
	}
	switch r.URL.Path {
	case SinksPath:
		sinks := []SinkStatus{}
		if h.relay != nil {
			sinks = h.relay.Status()
		}
		writeJSON(w, http.StatusOK, map[string]any{"sinks": sinks})
	case DeadLettersPath:
		h.listDeadLetters(w, r)
	case RedrivePath:
		h.redrive(w, r, body)
	}
}

func (h *AdminHandler) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultDeadLetters
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeadLetters {
			writeError(w, http.StatusBadRequest, "maxResults must be a whole number from 1 to 100.")
			return
		}
		limit = n
	}
	letters, err := h.store.ListDeadLetters(r.Context(), q.Get("sink"), ivsrt.Page{After: q.Get("nextToken"), Limit: limit})
	if ivsrt.ErrorCode(err) == ivsrt.EINVALID {
		writeError(w, http.StatusBadRequest, "nextToken is not one this server gave.")
		return
	} else if err != nil {
		h.log.Error("list dead letters", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal server error.")
		return
	}
	out := struct {
		DeadLetters []DeadLetterView `json:"deadLetters"`
		NextToken   string           `json:"nextToken,omitempty"`
	}{DeadLetters: make([]DeadLetterView, 0, len(letters))}
	for _, l := range letters {
		out.DeadLetters = append(out.DeadLetters, DeadLetterView{
			Sink: l.Sink, Attempts: l.Attempts, LastError: l.LastError,
			EnqueuedAt: l.EnqueuedAt, DeadAt: l.DeadAt, Event: l.Event.Envelope(h.region, h.account),
		})
	}
	if len(letters) == limit {
		out.NextToken = letters[len(letters)-1].PageKey()
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *AdminHandler) redrive(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		Sink    string `json:"sink"`
		EventID string `json:"eventId"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Sink == "" || in.EventID == "" {
		writeError(w, http.StatusBadRequest, `The body must be {"sink": "...", "eventId": "..."}.`)
		return
	}
	if h.relay == nil {
		writeError(w, http.StatusNotFound, "No event sink is configured.")
		return
	}
	err := h.relay.Redrive(r.Context(), in.Sink, in.EventID)
	switch ivsrt.ErrorCode(err) {
	case "":
		writeJSON(w, http.StatusOK, map[string]string{"sink": in.Sink, "eventId": in.EventID})
	case ivsrt.ENOTFOUND:
		writeError(w, http.StatusNotFound, ivsrt.ErrorMessage(err))
	default:
		h.log.Error("redrive", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal server error.")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
