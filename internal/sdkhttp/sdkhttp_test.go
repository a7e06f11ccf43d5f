package sdkhttp

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// writerToBody is a body with WriteTo, as the SDK's request bodies have.
type writerToBody struct{ *bytes.Reader }

func (writerToBody) Close() error { return nil }

func TestTransportHidesWriteTo(t *testing.T) {
	var got io.ReadCloser
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Body
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	body := writerToBody{bytes.NewReader([]byte(`{"maxResults":100}`))}
	if _, ok := any(body).(io.WriterTo); !ok {
		t.Fatal("the test body has no WriteTo")
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/ListStages", body)
	if _, err := Transport(base).RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(io.WriterTo); ok {
		t.Error("the body sent still has WriteTo")
	}
	if b, _ := io.ReadAll(got); string(b) != `{"maxResults":100}` {
		t.Errorf("body sent %q", b)
	}
	if req.Body != io.ReadCloser(body) {
		t.Error("the caller's request was changed")
	}
	// No body, nothing to wrap.
	req, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	if _, err := Transport(base).RoundTrip(req); err != nil || got != nil {
		t.Errorf("GET: body %v, %v", got, err)
	}
}
