// Package api serves the ivs-realtime REST-JSON API (version 2020-07-14) so
// that the aws CLI and AWS SDKs, pointed at this server, work unchanged.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ivsrt/ivsrt"
)

// DefaultMaxBodyBytes bounds a request body. The largest valid request, a
// CreateStage with 12 token configurations of 1 KB attributes and 50 tags,
// is about 40 KB.
const DefaultMaxBodyBytes = 256 << 10

// Config is what a Server needs besides its collaborators.
type Config struct {
	Region    string
	AccountID string
	// PublicURL is the base URL clients reach this server at; stage
	// endpoints and token claims point under it.
	PublicURL string
	// RTMPURL and RTMPSURL are where encoders publish with the stream keys
	// of ingest configurations, as stages show them in endpoints.rtmp and
	// endpoints.rtmps; an encoder appends the stream key. AWS's have the
	// forms rtmp://{host}/app/ and rtmps://{host}:443/app/. "" when this
	// server takes no RTMP, or no RTMPS: the stage then shows none.
	RTMPURL  string
	RTMPSURL string
	Quota    ivsrt.StageQuota
	// PublicKeyQuota bounds ImportPublicKey.
	PublicKeyQuota ivsrt.PublicKeyQuota
	// ReplicationQuota bounds StartParticipantReplication.
	ReplicationQuota ivsrt.ReplicationQuota
	// PaginationKey signs nextTokens; keep it across restarts so that
	// tokens handed out stay valid.
	PaginationKey []byte
	MaxBodyBytes  int64
}

// Server answers the ivs-realtime API.
type Server struct {
	store  ivsrt.Store
	tokens ivsrt.TokenIssuer
	media  ivsrt.MediaPlane
	auth   *SigV4Verifier
	cfg    Config
	pages  pager
	logger *slog.Logger
	now    func() time.Time

	eventsURL string
	whipURL   string
	ops       map[string]operation
	observer  RequestObserver

	// buckets checks the bucket of a new storage configuration; nil
	// checks nothing.
	buckets BucketChecker

	// ingest ends the publishing of an ingest configuration's encoders;
	// nil when no RTMP(S) server runs.
	ingest ivsrt.IngestDisconnector

	// compositor runs compositions; nil when the server runs none.
	compositor ivsrt.Compositor
}

type operation func(ctx context.Context, body []byte) (any, error)

// Option configures a Server.
type Option func(*Server)

// WithMediaPlane lets DisconnectParticipant and DeleteStage end live connections.
func WithMediaPlane(m ivsrt.MediaPlane) Option { return func(s *Server) { s.media = m } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithClock sets the clock used for token times.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// NewServer returns a Server over store, signing participant tokens with
// tokens and checking requests with auth.
func NewServer(store ivsrt.Store, tokens ivsrt.TokenIssuer, auth *SigV4Verifier, cfg Config, opts ...Option) (*Server, error) {
	s := &Server{store: store, tokens: tokens, auth: auth, cfg: cfg}
	for _, o := range opts {
		o(s)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.media == nil {
		s.media = noMedia{}
	}
	if s.cfg.MaxBodyBytes <= 0 {
		s.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if len(cfg.PaginationKey) < 16 {
		return nil, fmt.Errorf("api: pagination key must be at least 16 bytes")
	}
	s.pages = pager{key: cfg.PaginationKey}
	if err := checkPublicURL(cfg.PublicURL); err != nil {
		return nil, err
	}
	if err := checkIngestURL(cfg.RTMPURL, "rtmp"); err != nil {
		return nil, err
	}
	if err := checkIngestURL(cfg.RTMPSURL, "rtmps"); err != nil {
		return nil, err
	}
	s.eventsURL, s.whipURL = EndpointURLs(cfg.PublicURL)
	s.ops = map[string]operation{
		"CreateStage":            s.createStage,
		"GetStage":               s.getStage,
		"UpdateStage":            s.updateStage,
		"DeleteStage":            s.deleteStage,
		"ListStages":             s.listStages,
		"CreateParticipantToken": s.createParticipantToken,
		"DisconnectParticipant":  s.disconnectParticipant,
		"GetParticipant":         s.getParticipant,
		"ListParticipants":       s.listParticipants,
		"ListParticipantEvents":  s.listParticipantEvents,
		"GetStageSession":        s.getStageSession,
		"ListStageSessions":      s.listStageSessions,

		"CreateStorageConfiguration": s.createStorageConfiguration,
		"GetStorageConfiguration":    s.getStorageConfiguration,
		"ListStorageConfigurations":  s.listStorageConfigurations,
		"DeleteStorageConfiguration": s.deleteStorageConfiguration,

		"ImportPublicKey": s.importPublicKey,
		"GetPublicKey":    s.getPublicKey,
		"ListPublicKeys":  s.listPublicKeys,
		"DeletePublicKey": s.deletePublicKey,

		"CreateIngestConfiguration": s.createIngestConfiguration,
		"GetIngestConfiguration":    s.getIngestConfiguration,
		"UpdateIngestConfiguration": s.updateIngestConfiguration,
		"DeleteIngestConfiguration": s.deleteIngestConfiguration,
		"ListIngestConfigurations":  s.listIngestConfigurations,

		"CreateEncoderConfiguration": s.createEncoderConfiguration,
		"GetEncoderConfiguration":    s.getEncoderConfiguration,
		"ListEncoderConfigurations":  s.listEncoderConfigurations,
		"DeleteEncoderConfiguration": s.deleteEncoderConfiguration,

		"StartComposition": s.startComposition,
		"GetComposition":   s.getComposition,
		"ListCompositions": s.listCompositions,
		"StopComposition":  s.stopComposition,

		"StartParticipantReplication": s.startParticipantReplication,
		"StopParticipantReplication":  s.stopParticipantReplication,
		"ListParticipantReplicas":     s.listParticipantReplicas,
	}
	return s, nil
}

// EndpointURLs returns the events WebSocket and WHIP URLs under publicURL,
// which must be an absolute http(s) URL.
func EndpointURLs(publicURL string) (events, whip string) {
	base := strings.TrimSuffix(publicURL, "/")
	return "ws" + strings.TrimPrefix(base, "http") + "/events", base + "/whip"
}

func checkPublicURL(publicURL string) error {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("api: public URL %q must be an absolute http(s) URL", publicURL)
	}
	return nil
}

// checkIngestURL checks an RTMP(S) endpoint: "" for none, or an absolute
// URL of scheme with a host and nothing after its path, to which encoders
// append the stream key.
func checkIngestURL(endpoint, scheme string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != scheme || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("api: %s endpoint %q must be an absolute %s:// URL, like %s://host/app/", scheme, endpoint, scheme, scheme)
	}
	return nil
}

type noMedia struct{}

func (noMedia) DisconnectParticipant(context.Context, ivsrt.StageARN, ivsrt.ParticipantID, string) error {
	return nil
}
func (noMedia) CloseStage(context.Context, ivsrt.StageARN) error { return nil }

// ServeHTTP reads and authenticates the request, then runs the operation it names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.observer != nil {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		w = rec
		defer func() { s.observer.ObserveRequest(s.operationName(r), rec.errorType, time.Since(start)) }()
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", v)
			s.writeError(w, r, fmt.Errorf("panic: %v", v))
		}
	}()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeException(w, "ValidationException", http.StatusRequestEntityTooLarge,
				fmt.Sprintf("The request body exceeds the limit of %d bytes.", tooBig.Limit))
			return
		}
		writeException(w, "ValidationException", http.StatusBadRequest, "The request body could not be read.")
		return
	}
	if !s.auth.Authorize(w, r, body) {
		return
	}

	var out any
	if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/tags/"); ok && isTagsMethod(r.Method) {
		out, err = s.serveTags(r, rest, body)
	} else if op, ok := s.ops[strings.TrimPrefix(r.URL.Path, "/")]; ok && r.Method == http.MethodPost {
		out, err = op(r.Context(), body)
	} else {
		writeException(w, "UnknownOperationException", http.StatusNotFound,
			fmt.Sprintf("No operation matches %s %s.", shorten(r.Method), shorten(r.URL.Path)))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	buf, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	if h, ok := out.(headerSetter); ok {
		h.setHeaders(w.Header())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
}

// shorten keeps client-supplied text quoted in a message short, so that a
// long request line cannot make a longer answer.
func shorten(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// isTagsMethod reports whether /tags/{resourceArn} answers method; any
// other is an unknown operation, as for any other unmatched route.
func isTagsMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodPost || method == http.MethodDelete
}

// decode parses a JSON request body into v. An empty body is an empty
// object, as clients send for operations without fields.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD and store what the
	// client never sent.
	if !utf8.Valid(body) {
		return ivsrt.Errorf(ivsrt.EINVALID, "The request body is not valid UTF-8.")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return ivsrt.Errorf(ivsrt.EINVALID, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must be of type %s",
			wireField(reflect.TypeOf(v), typeErr.Field), jsonTypeName(typeErr.Type.String()))
	}
	return ivsrt.Errorf(ivsrt.EINVALID, "The request body is not valid JSON for this operation.")
}

// wireField returns the path of a field as the client sent it. encoding/json
// puts the Go names of embedded structs in the path ("tokenConfigWire.duration"
// for "duration"), which mean nothing to a client.
func wireField(t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	head, rest, ok := strings.Cut(path, ".")
	if !ok || t.Kind() != reflect.Struct {
		return path
	}
	if f, found := t.FieldByName(head); found && f.Anonymous {
		return wireField(f.Type, rest)
	}
	return path
}

func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["):
		return "map"
	case strings.HasPrefix(goType, "[]"):
		return "list"
	case strings.Contains(goType, "string"):
		return "string"
	case strings.Contains(goType, "int"):
		return "integer"
	case strings.Contains(goType, "float"):
		return "float"
	case strings.Contains(goType, "bool"):
		return "boolean"
	}
	return "structure"
}

// notFound rewords a store's ENOTFOUND for the resource the caller named,
// and passes any other error through.
func notFound(err error, format string, args ...any) error {
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, format, args...)
	}
	return err
}

// pageSize returns the requested page size or the default.
func pageSize(maxResults *int) int {
	if maxResults == nil {
		return ivsrt.DefaultPageSize
	}
	return *maxResults
}
