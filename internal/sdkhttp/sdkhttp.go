// Package sdkhttp adapts net/http for aws-sdk-go-v2 clients of a server
// close by (on loopback, or the same network).
//
// The SDK (smithy-go) closes a request's body as soon as the response
// arrives, and once closed the body's WriteTo returns io.EOF. net/http,
// after sending a body, reads it once more to check that nothing is left
// beyond its length; when the response came first, as it can from a server
// close by, it takes that io.EOF for a failed write and closes the
// connection, cutting off a response not yet read in full (a page of
// ListStages): "deserialization failed ... use of closed network
// connection". Sending the body as a plain reader, without WriteTo, avoids
// it.
package sdkhttp

import (
	"io"
	"net/http"
)

// Transport returns base (http.DefaultTransport if nil) sending request
// bodies as plain readers.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return plainBodies{base}
}

type plainBodies struct{ base http.RoundTripper }

func (t plainBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = struct{ io.ReadCloser }{r.Body} // hides WriteTo
	}
	return t.base.RoundTrip(r)
}
