package playback_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/objectstore/folder"
	"github.com/ivsrt/ivsrt/playback"
)

const prefix = "AbCdEfGhIjKl/st-AbCdEfGhIjKlM/pArTiCiPaNt01/1767323045000/"

func TestParsePath(t *testing.T) {
	tests := []struct {
		path        string
		bucket, key string // empty: refused
	}{
		{"/v1/recordings/recs/" + prefix + "media/hls/multivariant.m3u8", "recs", prefix + "media/hls/multivariant.m3u8"},
		{"/v1/recordings/recs/" + prefix + "media/hls/high/playlist.m3u8", "recs", prefix + "media/hls/high/playlist.m3u8"},
		{"/v1/recordings/recs/" + prefix + "media/hls/high/init.mp4", "recs", prefix + "media/hls/high/init.mp4"},
		{"/v1/recordings/my.bucket-1/" + prefix + "media/hls/high/12.mp4", "my.bucket-1", prefix + "media/hls/high/12.mp4"},
		{"/v1/recordings/recs/" + prefix + "media/thumbnails/high/3.jpg", "recs", prefix + "media/thumbnails/high/3.jpg"},
		{"/v1/recordings/recs/" + prefix + "media/latest_thumbnail/high/thumb.jpg", "recs", prefix + "media/latest_thumbnail/high/thumb.jpg"},
		{"/v1/recordings/recs/" + prefix + "events/recording-ended.json", "recs", prefix + "events/recording-ended.json"},

		// Out of the bucket, or of the recordings.
		{"/v1/recordings/recs/" + prefix + "../../../../other/x.mp4", "", ""},
		{"/v1/recordings/recs/" + prefix + "media/../../x.mp4", "", ""},
		{"/v1/recordings/recs/" + prefix + "media/./hls/x.mp4", "", ""},
		{"/v1/recordings/../" + prefix + "media/x.mp4", "", ""},
		{"/v1/recordings/../../etc/passwd", "", ""},
		{"/v1/recordings/recs//" + prefix + "media/x.mp4", "", ""},
		{"/v1/recordings/recs/" + prefix + "media//x.mp4", "", ""},
		{"/v1/recordings/recs//etc/passwd", "", ""},
		{"/v1/recordings/recs/" + prefix + "media\\x.mp4", "", ""},
		{"/v1/recordings/recs/" + prefix + "media/x.mp4\x00.json", "", ""},
		// Not an object a recording writes.
		{"/v1/recordings/recs/" + prefix + ".ivsrt-write-check", "", ""},
		{"/v1/recordings/recs/" + prefix + "media/hls/high/.put-123", "", ""},
		{"/v1/recordings/recs/" + prefix + "media/x.sh", "", ""},
		{"/v1/recordings/recs/" + prefix, "", ""},
		{"/v1/recordings/recs/AbCdEfGhIjKl/x/pArTiCiPaNt01/1/media/x.mp4", "", ""},        // not a session id
		{"/v1/recordings/recs/AbCdEfGhIjKl/st-A/pArTiCiPaNt01/start/media/x.mp4", "", ""}, // not a time
		{"/v1/recordings/recs/x.mp4", "", ""},
		{"/v1/recordings/recs", "", ""},
		{"/v1/recordings/", "", ""},
		// Not a bucket.
		{"/v1/recordings/Recs/" + prefix + "media/x.mp4", "", ""},
		{"/v1/recordings/re/" + prefix + "media/x.mp4", "", ""},
		{"/v1/recordings/.recs/" + prefix + "media/x.mp4", "", ""},
		{"/v1/recordings/re..cs/" + prefix + "media/x.mp4", "", ""},
		{"/v1/recordings/" + strings.Repeat("a", 64) + "/" + prefix + "media/x.mp4", "", ""},
		{"/v2/recordings/recs/" + prefix + "media/x.mp4", "", ""},
	}
	for _, tt := range tests {
		bucket, key, err := playback.ParsePath(tt.path)
		if tt.bucket == "" {
			if err == nil || ivsrt.ErrorCode(err) != ivsrt.EINVALID {
				t.Errorf("ParsePath(%q) got %q, %q, %v, want EINVALID", tt.path, bucket, key, err)
			}
			continue
		}
		if err != nil || bucket != tt.bucket || key != tt.key {
			t.Errorf("ParsePath(%q) got %q, %q, %v, want %q, %q", tt.path, bucket, key, err, tt.bucket, tt.key)
		}
	}
}

// FuzzParsePath: what ParsePath takes is a bucket and key whose object a
// folder store keeps inside the bucket's folder, and the path is made of
// them.
func FuzzParsePath(f *testing.F) {
	f.Add("/v1/recordings/recs/" + prefix + "media/hls/high/1.mp4")
	f.Add("/v1/recordings/recs/" + prefix + "../x.mp4")
	f.Add("/v1/recordings/a.b/" + prefix + "events/recording-failed.json")
	store, err := folder.New(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		bucket, key, err := playback.ParsePath(path)
		if err != nil {
			return
		}
		if path != playback.PathPrefix+bucket+"/"+key {
			t.Fatalf("ParsePath(%q) = %q, %q: not the path's parts", path, bucket, key)
		}
		if _, err := store.Path(bucket, key); err != nil {
			t.Fatalf("ParsePath(%q) = %q, %q, which the folder store refuses: %v", path, bucket, key, err)
		}
		for _, part := range strings.Split(bucket+"/"+key, "/") {
			if part == "" || part == "." || part == ".." {
				t.Fatalf("ParsePath(%q) = %q, %q: a part %q", path, bucket, key, part)
			}
		}
	})
}

// allow and deny stand for the API's SigV4 check.
func allow(http.ResponseWriter, *http.Request, []byte) bool { return true }

func deny(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
	w.Header().Set("x-amzn-ErrorType", "MissingAuthenticationTokenException")
	w.WriteHeader(http.StatusForbidden)
	return false
}

// failing is an object store that cannot be read.
type failing struct{ ivsrt.ObjectStore }

func (failing) GetObject(context.Context, string, string) ([]byte, string, error) {
	return nil, "", errors.New("disk on fire at /secret/path")
}

func TestHandler(t *testing.T) {
	store, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	segment := []byte("0123456789abcdefghij")
	if err := store.PutObject(ctx, "recs", prefix+"media/hls/high/1.mp4", segment, "video/mp4"); err != nil {
		t.Fatal(err)
	}
	if err := store.PutObject(ctx, "recs", prefix+"media/hls/high/playlist.m3u8", []byte("#EXTM3U\n"), "application/x-mpegURL"); err != nil {
		t.Fatal(err)
	}
	h := playback.NewHandler(store, allow, nil)
	object := playback.PathPrefix + "recs/" + prefix

	tests := []struct {
		name          string
		handler       http.Handler
		method, path  string
		header        map[string]string
		status        int
		errorType     string // x-amzn-ErrorType of a failure
		body          string // of a success
		contentType   string // of a success
		contentLength string
	}{
		{name: "segment", handler: h, method: "GET", path: object + "media/hls/high/1.mp4",
			status: 200, body: string(segment), contentType: "video/mp4", contentLength: "20"},
		{name: "playlist", handler: h, method: "GET", path: object + "media/hls/high/playlist.m3u8",
			status: 200, body: "#EXTM3U\n", contentType: "application/x-mpegURL"},
		{name: "head", handler: h, method: "HEAD", path: object + "media/hls/high/1.mp4",
			status: 200, contentType: "video/mp4", contentLength: "20"},
		{name: "range", handler: h, method: "GET", path: object + "media/hls/high/1.mp4", header: map[string]string{"Range": "bytes=10-14"},
			status: 206, body: "abcde", contentType: "video/mp4", contentLength: "5"},
		{name: "open range", handler: h, method: "GET", path: object + "media/hls/high/1.mp4", header: map[string]string{"Range": "bytes=-3"},
			status: 206, body: "hij", contentType: "video/mp4"},
		{name: "range past the end", handler: h, method: "GET", path: object + "media/hls/high/1.mp4", header: map[string]string{"Range": "bytes=20-"},
			status: 416},
		{name: "missing", handler: h, method: "GET", path: object + "media/hls/high/2.mp4",
			status: 404, errorType: "ResourceNotFoundException"},
		{name: "missing bucket", handler: h, method: "GET", path: playback.PathPrefix + "other/" + prefix + "media/hls/high/1.mp4",
			status: 404, errorType: "ResourceNotFoundException"},
		{name: "traversal", handler: h, method: "GET", path: object + "../../../../../etc/passwd.json",
			status: 400, errorType: "ValidationException"},
		{name: "post", handler: h, method: "POST", path: object + "media/hls/high/1.mp4",
			status: 405, errorType: "UnknownOperationException"},
		{name: "not signed", handler: playback.NewHandler(store, deny, nil), method: "GET", path: object + "media/hls/high/1.mp4",
			status: 403, errorType: "MissingAuthenticationTokenException"},
		{name: "not signed, bad key", handler: playback.NewHandler(store, deny, nil), method: "GET", path: object + "../x",
			status: 403, errorType: "MissingAuthenticationTokenException"},
		{name: "store fails", handler: playback.NewHandler(failing{}, allow, nil), method: "GET", path: object + "media/hls/high/1.mp4",
			status: 500, errorType: "InternalServerException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://ivsrt.test/", nil)
			r.URL.Path = tt.path // as the server decodes it, unclean
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			tt.handler.ServeHTTP(w, r)
			res := w.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status got %d, want %d (body %s)", res.StatusCode, tt.status, body)
			}
			if got := res.Header.Get("x-amzn-ErrorType"); got != tt.errorType {
				t.Errorf("x-amzn-ErrorType got %q, want %q", got, tt.errorType)
			}
			if tt.errorType != "" && tt.status != 403 { // the authorizer's answer is its own
				var e struct{ Message, ExceptionMessage string }
				if err := json.Unmarshal(body, &e); err != nil || e.Message == "" || e.Message != e.ExceptionMessage {
					t.Errorf("error body %s: want message and exceptionMessage, the same (%v)", body, err)
				}
				if strings.Contains(string(body), "/secret/path") {
					t.Errorf("error body %s tells the store's failure", body)
				}
			}
			if tt.status >= 300 {
				return
			}
			if string(body) != tt.body {
				t.Errorf("body got %q, want %q", body, tt.body)
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type got %q, want %q", got, tt.contentType)
			}
			if tt.contentLength != "" && res.Header.Get("Content-Length") != tt.contentLength {
				t.Errorf("Content-Length got %q, want %q", res.Header.Get("Content-Length"), tt.contentLength)
			}
			if got := res.Header.Get("Accept-Ranges"); got != "bytes" {
				t.Errorf("Accept-Ranges got %q, want bytes", got)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options got %q, want nosniff", got)
			}
		})
	}
}
