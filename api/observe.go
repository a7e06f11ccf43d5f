package api

import (
	"net/http"
	"strings"
	"time"
)

// RequestObserver is told of every request the API answers: the
// operation it named ("Unknown" if none), the AWS error type of the answer
// ("" for success) and how long answering took. It must not block.
type RequestObserver interface {
	ObserveRequest(operation, errorType string, took time.Duration)
}

// WithRequestObserver has o told of every request.
func WithRequestObserver(o RequestObserver) Option { return func(s *Server) { s.observer = o } }

// operationName names the operation r asks for, from the fixed set the
// server knows, so that what is reported per operation stays bounded
// whatever clients send.
func (s *Server) operationName(r *http.Request) string {
	if _, ok := strings.CutPrefix(r.URL.Path, "/tags/"); ok {
		switch r.Method {
		case http.MethodGet:
			return "ListTagsForResource"
		case http.MethodPost:
			return "TagResource"
		case http.MethodDelete:
			return "UntagResource"
		}
		return "Unknown"
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if _, ok := s.ops[name]; ok && r.Method == http.MethodPost {
		return name
	}
	return "Unknown"
}

// statusRecorder keeps the error type of the answer written through it.
type statusRecorder struct {
	http.ResponseWriter
	errorType string
}

func (w *statusRecorder) WriteHeader(status int) {
	if status >= 400 {
		w.errorType = w.Header().Get("x-amzn-ErrorType")
		if w.errorType == "" {
			w.errorType = http.StatusText(status)
		}
	}
	w.ResponseWriter.WriteHeader(status)
}
