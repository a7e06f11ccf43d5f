package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivsrt/ivsrt/playback"
)

// TestRecordingObjects reads the objects of a recording back through
// GET /v1/recordings/<bucket>/<key>: signed with the API's keys, whole or
// a range of bytes, with the type they were stored with; unsigned or
// wrongly signed requests are refused as the API refuses them, a missing
// object is 404, and no path reaches out of the bucket's recordings.
func TestRecordingObjects(t *testing.T) {
	m, _ := startServer(t)
	ctx := testContext(t)
	const prefix = "AbCdEfGhIjKl/st-AbCdEfGhIjKlM/pArTiCiPaNt01/1767323045000/"
	segment := make([]byte, 100_000)
	for i := range segment {
		segment[i] = byte(i * 7)
	}
	for key, obj := range map[string]struct {
		body        []byte
		contentType string
	}{
		"media/hls/high/1.mp4":         {segment, "video/mp4"},
		"media/hls/high/playlist.m3u8": {[]byte("#EXTM3U\n#EXT-X-ENDLIST\n"), "application/x-mpegURL"},
	} {
		if err := m.Objects.PutObject(ctx, "recs", prefix+key, obj.body, obj.contentType); err != nil {
			t.Fatal(err)
		}
	}
	// Files beside the bucket's folder, and in the data folder, which no
	// path may reach.
	if err := os.WriteFile(filepath.Join(m.Config.DataDir, "s3", "secret.json"), []byte(`{"secret": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.Config.DataDir, "credentials.json")); err != nil {
		if err := os.WriteFile(filepath.Join(m.Config.DataDir, "credentials.json"), []byte(`{"secret": 2}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	object := playback.PathPrefix + "recs/" + prefix

	type result struct {
		status int
		header http.Header
		body   []byte
	}
	do := func(t *testing.T, r *http.Request) result {
		t.Helper()
		resp, err := localHTTPClient(t).Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.URL, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return result{resp.StatusCode, resp.Header, body}
	}
	signed := func(t *testing.T, method, path string, header map[string]string) result {
		t.Helper()
		r := newSignedRequest(t, m, method, path, "", testAccessKeyID, testSecretAccessKey)
		for k, v := range header {
			r.Header.Set(k, v) // unsigned, as a browser's Range is
		}
		return do(t, r)
	}
	wantError := func(t *testing.T, got result, status int, exception string) {
		t.Helper()
		if got.status != status || got.header.Get("x-amzn-ErrorType") != exception {
			t.Fatalf("got %d %s (%s), want %d %s", got.status, got.header.Get("x-amzn-ErrorType"), got.body, status, exception)
		}
		var e struct{ Message, ExceptionMessage string }
		if err := json.Unmarshal(got.body, &e); err != nil || e.Message == "" || e.Message != e.ExceptionMessage {
			t.Errorf("error body %s: want message and exceptionMessage, the same (%v)", got.body, err)
		}
		if got.header.Get("Content-Type") != "application/json" {
			t.Errorf("error Content-Type %q, want application/json", got.header.Get("Content-Type"))
		}
	}

	t.Run("whole", func(t *testing.T) {
		got := signed(t, "GET", object+"media/hls/high/1.mp4", nil)
		if got.status != http.StatusOK || string(got.body) != string(segment) {
			t.Fatalf("got %d, %d bytes, want 200 and the %d bytes stored", got.status, len(got.body), len(segment))
		}
		if ct := got.header.Get("Content-Type"); ct != "video/mp4" {
			t.Errorf("Content-Type got %q, want video/mp4", ct)
		}
		got = signed(t, "GET", object+"media/hls/high/playlist.m3u8", nil)
		if got.status != http.StatusOK || got.header.Get("Content-Type") != "application/x-mpegURL" || string(got.body) != "#EXTM3U\n#EXT-X-ENDLIST\n" {
			t.Errorf("playlist: got %d %q %q", got.status, got.header.Get("Content-Type"), got.body)
		}
	})

	t.Run("range", func(t *testing.T) {
		got := signed(t, "GET", object+"media/hls/high/1.mp4", map[string]string{"Range": "bytes=1000-1999"})
		if got.status != http.StatusPartialContent || string(got.body) != string(segment[1000:2000]) {
			t.Fatalf("got %d, %d bytes, want 206 and bytes 1000-1999", got.status, len(got.body))
		}
		if cr := got.header.Get("Content-Range"); cr != "bytes 1000-1999/100000" {
			t.Errorf("Content-Range got %q, want bytes 1000-1999/100000", cr)
		}
		got = signed(t, "GET", object+"media/hls/high/1.mp4", map[string]string{"Range": "bytes=100000-"})
		if got.status != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("a range past the end: got %d, want 416", got.status)
		}
	})

	t.Run("head", func(t *testing.T) {
		got := signed(t, "HEAD", object+"media/hls/high/1.mp4", nil)
		if got.status != http.StatusOK || got.header.Get("Content-Length") != "100000" || len(got.body) != 0 {
			t.Errorf("got %d, Content-Length %q, %d bytes of body; want 200, 100000, none", got.status, got.header.Get("Content-Length"), len(got.body))
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		wantError(t, do(t, newRequest(t, m, "GET", object+"media/hls/high/1.mp4", "")), http.StatusForbidden, "MissingAuthenticationTokenException")
	})

	t.Run("wrong secret", func(t *testing.T) {
		r := newSignedRequest(t, m, "GET", object+"media/hls/high/1.mp4", "", testAccessKeyID, "not-the-secret")
		wantError(t, do(t, r), http.StatusForbidden, "InvalidSignatureException")
	})

	t.Run("unknown key id", func(t *testing.T) {
		r := newSignedRequest(t, m, "GET", object+"media/hls/high/1.mp4", "", "AKIDNOTKNOWN00000000", testSecretAccessKey)
		wantError(t, do(t, r), http.StatusForbidden, "UnrecognizedClientException")
	})

	t.Run("missing", func(t *testing.T) {
		wantError(t, signed(t, "GET", object+"media/hls/high/2.mp4", nil), http.StatusNotFound, "ResourceNotFoundException")
		wantError(t, signed(t, "GET", playback.PathPrefix+"nobucket/"+prefix+"media/hls/high/1.mp4", nil), http.StatusNotFound, "ResourceNotFoundException")
	})

	t.Run("traversal", func(t *testing.T) {
		for _, path := range []string{
			playback.PathPrefix + "recs/../secret.json",
			playback.PathPrefix + "recs/" + prefix + "../../../../../secret.json",
			playback.PathPrefix + "recs/" + prefix + "../../../../../../credentials.json",
			playback.PathPrefix + "recs/%2e%2e/%2e%2e/credentials.json",
			playback.PathPrefix + "recs/" + prefix + "media%2f..%2f..%2f..%2f..%2f..%2f..%2fcredentials.json",
			playback.PathPrefix + "../credentials.json",
			playback.PathPrefix + "recs//etc/passwd",
		} {
			got := signed(t, "GET", path, nil)
			if strings.Contains(string(got.body), `"secret":`) {
				t.Fatalf("GET %s: got %d %q, a file out of the bucket", path, got.status, got.body)
			}
			if got.status != http.StatusBadRequest || got.header.Get("x-amzn-ErrorType") != "ValidationException" {
				t.Errorf("GET %s: got %d %s %q, want 400 ValidationException", path, got.status, got.header.Get("x-amzn-ErrorType"), got.body)
			}
		}
	})

	t.Run("read only", func(t *testing.T) {
		for _, method := range []string{"PUT", "POST", "DELETE"} {
			wantError(t, signed(t, method, object+"media/hls/high/1.mp4", nil), http.StatusMethodNotAllowed, "UnknownOperationException")
		}
		if got := signed(t, "GET", object+"media/hls/high/1.mp4", nil); got.status != http.StatusOK || len(got.body) != len(segment) {
			t.Errorf("after the refused writes: got %d, %d bytes", got.status, len(got.body))
		}
	})
}

// TestRecordingObjectsFromS3: with an S3-compatible service, objects are
// read from it, with the content type they were stored with; a missing
// object or bucket is 404.
func TestRecordingObjectsFromS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("recs"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	defer s3.Close()
	m, _ := startServer(t, func(c *Config) {
		c.S3EndpointURL, c.S3AccessKeyID, c.S3SecretAccessKey = s3.URL, "AKIDTEST", "secret"
	})
	const key = "AbCdEfGhIjKl/st-AbCdEfGhIjKlM/pArTiCiPaNt01/1767323045000/media/hls/high/1.mp4"
	// Not the type a folder would tell by the extension: the store's.
	const contentType = "video/iso.segment"
	if err := m.Objects.PutObject(testContext(t), "recs", key, []byte("0123456789"), contentType); err != nil {
		t.Fatal(err)
	}
	get := func(path, rangeHeader string) (int, http.Header, string) {
		t.Helper()
		r := newSignedRequest(t, m, "GET", path, "", testAccessKeyID, testSecretAccessKey)
		if rangeHeader != "" {
			r.Header.Set("Range", rangeHeader)
		}
		resp, err := localHTTPClient(t).Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	if status, h, body := get(playback.PathPrefix+"recs/"+key, ""); status != http.StatusOK || body != "0123456789" || h.Get("Content-Type") != contentType {
		t.Errorf("got %d %q %q, want 200 %q 0123456789", status, h.Get("Content-Type"), body, contentType)
	}
	if status, _, body := get(playback.PathPrefix+"recs/"+key, "bytes=2-4"); status != http.StatusPartialContent || body != "234" {
		t.Errorf("range: got %d %q, want 206 234", status, body)
	}
	for _, path := range []string{
		playback.PathPrefix + "recs/" + strings.Replace(key, "1.mp4", "2.mp4", 1),
		playback.PathPrefix + "nobucket/" + key,
	} {
		if status, h, body := get(path, ""); status != http.StatusNotFound || h.Get("x-amzn-ErrorType") != "ResourceNotFoundException" {
			t.Errorf("GET %s: got %d %s %q, want 404 ResourceNotFoundException", path, status, h.Get("x-amzn-ErrorType"), body)
		}
	}
}
