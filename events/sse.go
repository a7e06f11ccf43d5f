// Package events delivers ivsrt's event stream (the store's outbox): to
// clients over Server-Sent Events, and through a Relay to sinks (webhooks
// here; NATS in events/natssink), each with a durable queue.
package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ivsrt/ivsrt"
)

// StreamPath is where the Server-Sent Events stream is served. (/events is
// the media plane's WebSocket.)
const StreamPath = "/v1/events/stream"

// IsStreamPath reports whether path is served by the Handler.
func IsStreamPath(path string) bool { return path == StreamPath }

// Defaults of Config.
const (
	DefaultPollInterval = 200 * time.Millisecond
	DefaultKeepAlive    = 15 * time.Second
	DefaultBatchSize    = 256
)

// Config configures a Handler.
type Config struct {
	Region    string // the envelopes' region
	AccountID string // the envelopes' account

	// Authorize checks a request, whose body has been read into body,
	// before it may go on; when it refuses, it has answered the request
	// itself. nil lets anyone in.
	Authorize func(w http.ResponseWriter, r *http.Request, body []byte) bool

	PollInterval time.Duration // how often the store is read for new events
	KeepAlive    time.Duration // longest silence before a comment is sent
	BatchSize    int           // most events read from the store at once
}

// Handler serves GET /v1/events/stream: the event stream as Server-Sent
// Events, one envelope per event:
//
//	id: <seq>
//	event: <detail-type>
//	data: <envelope JSON>
//
// Query parameters stageArn, eventName and detailType (each repeatable)
// keep only the events of those stages, with those event names and detail
// types. A client resumes with
// the Last-Event-ID header (or ?after=<seq>): the events after that seq are
// replayed from the store, then new ones follow. Without either, the
// stream starts with the events written after the request arrived.
type Handler struct {
	stream ivsrt.EventStream
	cfg    Config
	log    *slog.Logger

	// The handler's lifetime: Close ends every open stream.
	ctx    context.Context
	cancel context.CancelFunc
}

// Option configures a Handler.
type Option func(*Handler)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// NewHandler returns a handler streaming the events of stream.
func NewHandler(stream ivsrt.EventStream, cfg Config, opts ...Option) *Handler {
	h := &Handler{stream: stream, cfg: cfg, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(h)
	}
	if h.cfg.PollInterval <= 0 {
		h.cfg.PollInterval = DefaultPollInterval
	}
	if h.cfg.KeepAlive <= 0 {
		h.cfg.KeepAlive = DefaultKeepAlive
	}
	if h.cfg.BatchSize <= 0 {
		h.cfg.BatchSize = DefaultBatchSize
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// Close ends the open streams; requests that arrive later are refused.
func (h *Handler) Close() { h.cancel() }

// filter keeps the events a client asked for.
type filter struct {
	stages      []ivsrt.StageARN
	names       []string
	detailTypes []string
}

func (f filter) match(ev *ivsrt.StreamEvent) bool {
	return (len(f.stages) == 0 || slices.Contains(f.stages, ev.StageARN)) &&
		(len(f.names) == 0 || slices.Contains(f.names, ev.EventName())) &&
		(len(f.detailTypes) == 0 || slices.Contains(f.detailTypes, ev.DetailType))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !IsStreamPath(r.URL.Path) {
		writeError(w, http.StatusNotFound, "Not found.")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "Use GET.")
		return
	}
	if h.cfg.Authorize != nil && !h.cfg.Authorize(w, r, nil) {
		return
	}
	q := r.URL.Query()
	var f filter
	for _, s := range q["stageArn"] {
		f.stages = append(f.stages, ivsrt.StageARN(s))
	}
	f.names = q["eventName"]
	f.detailTypes = q["detailType"]

	after, resume := int64(0), r.Header.Get("Last-Event-ID")
	if resume == "" {
		resume = q.Get("after")
	}
	if resume != "" {
		n, err := strconv.ParseInt(resume, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Last-Event-ID (or after) must be the id of an event: a whole number.")
			return
		}
		after = n
	} else {
		n, err := h.stream.LastEventSeq(r.Context())
		if err != nil {
			h.log.Error("read last event seq", "err", err)
			writeError(w, http.StatusInternalServerError, "Internal server error.")
			return
		}
		after = n
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	if h.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "The server is shutting down.")
		return
	}

	// A stream outlives the server's read and write timeouts, which are
	// meant for ordinary requests.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // tell proxies not to hold events back
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	// The comment lets the client know the stream is open before any event.
	fmt.Fprint(bw, ": stream open\n\n")
	if err := flush(bw, rc); err != nil {
		return
	}
	if err := h.follow(ctx, bw, rc, f, after); err != nil && ctx.Err() == nil {
		h.log.Warn("event stream ended", "err", err)
	}
}

// follow writes the events after seq that f keeps, then waits for more,
// until ctx ends or writing fails.
func (h *Handler) follow(ctx context.Context, bw *bufio.Writer, rc *http.ResponseController, f filter, after int64) error {
	poll := time.NewTicker(h.cfg.PollInterval)
	defer poll.Stop()
	var wake <-chan struct{}
	if n, ok := h.stream.(ivsrt.EventNotifier); ok {
		ch, stop := n.NotifyEvents()
		defer stop()
		wake = ch
	}
	keepAlive := time.NewTimer(h.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		evs, err := h.stream.ReadEvents(ctx, after, h.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		wrote := false
		for _, ev := range evs {
			after = ev.Seq
			if !f.match(ev) {
				continue
			}
			if err := h.writeEvent(bw, ev); err != nil {
				return err
			}
			wrote = true
		}
		if wrote {
			if err := flush(bw, rc); err != nil {
				return err
			}
			keepAlive.Reset(h.cfg.KeepAlive)
		}
		if len(evs) == h.cfg.BatchSize {
			continue // more are waiting
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-poll.C:
				waiting = false
			case <-wake:
				waiting = false
			case <-keepAlive.C:
				fmt.Fprint(bw, ": keep-alive\n\n")
				if err := flush(bw, rc); err != nil {
					return err
				}
				keepAlive.Reset(h.cfg.KeepAlive)
			}
		}
	}
}

func (h *Handler) writeEvent(bw *bufio.Writer, ev *ivsrt.StreamEvent) error {
	data, err := json.Marshal(ev.Envelope(h.cfg.Region, h.cfg.AccountID))
	if err != nil {
		return fmt.Errorf("encode event %d: %w", ev.Seq, err)
	}
	// json.Marshal writes no newlines, so data is one "data:" line.
	fmt.Fprintf(bw, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.DetailType, data)
	return nil
}

func flush(bw *bufio.Writer, rc *http.ResponseController) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// writeError answers in the API's error shape: the exception's name in
// x-amzn-ErrorType, the message in the body (as message and
// exceptionMessage), so that clients of the API read these errors too.
func writeError(w http.ResponseWriter, status int, message string) {
	name, ok := exceptions[status]
	if !ok {
		name = "InternalServerException"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", name)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": message, "exceptionMessage": message})
}

var exceptions = map[int]string{
	http.StatusBadRequest:            "ValidationException",
	http.StatusRequestEntityTooLarge: "ValidationException",
	http.StatusForbidden:             "AccessDeniedException",
	http.StatusNotFound:              "ResourceNotFoundException",
	http.StatusMethodNotAllowed:      "UnknownOperationException",
	http.StatusServiceUnavailable:    "ServiceUnavailableException",
}
