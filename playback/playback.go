// Package playback serves the objects of participant recordings over HTTP,
// read-only, from the object store recordings are written to, so that a
// browser can play them: GET /v1/recordings/<bucket>/<key>, signed with
// SigV4 as API requests are.
//
// Only keys laid out as recordings are (<stageId>/<sessionId>/
// <participantId>/<start>/..., ending in .m3u8, .mp4, .jpg or .json) are
// served; the buckets are never listed.
package playback

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt"
)

// PathPrefix is where the objects are: PathPrefix + bucket + "/" + key.
const PathPrefix = "/v1/recordings/"

// IsPath reports whether path names an object of a recording.
func IsPath(path string) bool { return strings.HasPrefix(path, PathPrefix) }

// Authorizer checks a request, whose body has been read into body, and
// answers it when the check fails, reporting whether it may go on
// (api.SigV4Verifier.Authorize).
type Authorizer func(w http.ResponseWriter, r *http.Request, body []byte) bool

// Handler serves the objects.
type Handler struct {
	objects   ivsrt.ObjectStore
	authorize Authorizer
	logger    *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the handler of the objects of store. Every request is
// checked by authorize first, which must be set; logger gets the store's
// failures.
func NewHandler(store ivsrt.ObjectStore, authorize Authorizer, logger *slog.Logger) *Handler {
	if authorize == nil {
		panic("playback: NewHandler without an Authorizer")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{objects: store, authorize: authorize, logger: logger}
}

// ServeHTTP answers GET and HEAD of an object, with its content type
// from the store; a Range asks for part of it (RFC 9110, section 14).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, "UnknownOperationException", http.StatusMethodNotAllowed, "Recordings are read with GET or HEAD.")
		return
	}
	// Whoever is not allowed learns nothing, not even which keys are
	// well formed. A GET has no body: what it signs is the empty one.
	if !h.authorize(w, r, nil) {
		return
	}
	bucket, key, err := ParsePath(r.URL.Path)
	if err != nil {
		writeError(w, "ValidationException", http.StatusBadRequest, ivsrt.ErrorMessage(err))
		return
	}
	body, contentType, err := h.objects.GetObject(r.Context(), bucket, key)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		writeError(w, "ResourceNotFoundException", http.StatusNotFound, "No object "+key+" in bucket "+bucket+".")
		return
	} else if err != nil {
		h.logger.ErrorContext(r.Context(), "read a recording's object", "bucket", bucket, "key", key, "err", err)
		writeError(w, "InternalServerException", http.StatusInternalServerError, "Internal server error.")
		return
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	sum := sha256.Sum256(body)
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	// The playlists of a recording in progress change: always ask.
	hd.Set("Cache-Control", "private, no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

var (
	// bucketPattern is an S3 bucket name: 3 to 63 lower-case letters,
	// digits, dots and dashes, beginning and ending with a letter or a
	// digit (and so never "." or "..").
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	// keyPattern is the key of an object a recording writes: the
	// recording's prefix (stage id, session id, participant id, start in
	// Unix milliseconds), then names of letters, digits, "_" and "-", the
	// last with its extension.
	keyPattern = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}/st-[a-zA-Z0-9]{1,32}/[a-zA-Z0-9-]{1,64}/[0-9]{1,16}/` +
		`([a-zA-Z0-9_-]{1,64}/){0,4}[a-zA-Z0-9_-]{1,64}\.(m3u8|mp4|jpg|json)$`)
)

// ParsePath returns the bucket and key of an object's path, or an *Error
// with EINVALID when the path is not PathPrefix + bucket + "/" + key of a
// recording's object: nothing else is served, so no path leaves the
// recordings of a bucket.
func ParsePath(path string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return "", "", ivsrt.Errorf(ivsrt.EINVALID, "A recording's object is at %s<bucket>/<key>.", PathPrefix)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if !bucketPattern.MatchString(bucket) || strings.Contains(bucket, "..") {
		return "", "", ivsrt.Errorf(ivsrt.EINVALID, "%q is not an S3 bucket name.", shorten(bucket))
	}
	if !keyPattern.MatchString(key) {
		return "", "", ivsrt.Errorf(ivsrt.EINVALID,
			"%q is not the key of a recording's object: <stageId>/<sessionId>/<participantId>/<start>/ then a .m3u8, .mp4, .jpg or .json object.", shorten(key))
	}
	return bucket, key, nil
}

func shorten(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// writeError answers in the API's error shape: the exception's name in
// x-amzn-ErrorType, the message in the body as message and
// exceptionMessage, so that API clients read it as any other.
func writeError(w http.ResponseWriter, name string, status int, message string) {
	body, _ := json.Marshal(map[string]string{"message": message, "exceptionMessage": message})
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("x-amzn-ErrorType", name)
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}
