package s3

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivsrt/ivsrt"
)

// fakeS3 starts an S3 server in the process, with the bucket "recordings".
func fakeS3(t *testing.T) (*s3mem.Backend, string) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("recordings"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return backend, srv.URL
}

func TestS3(t *testing.T) {
	ctx := context.Background()
	backend, url := fakeS3(t)
	s, err := New(ctx, Config{EndpointURL: url, AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(ctx, "recordings"); err != nil {
		t.Fatalf("CheckBucket of an existing bucket: %v", err)
	}
	if _, err := backend.HeadObject("recordings", writeCheckKey); err == nil {
		t.Error("the write check's object was left in the bucket")
	}
	if err := s.CheckBucket(ctx, "missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("CheckBucket of a missing bucket: %v", err)
	}
	key := "stage/session/participant/1700000000/events/recording-started.json"
	if err := s.PutObject(ctx, "recordings", key, []byte(`{"version":"v1"}`), "application/json"); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	obj, err := backend.GetObject("recordings", key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Contents.Close()
	body, _ := io.ReadAll(obj.Contents)
	if string(body) != `{"version":"v1"}` || obj.Metadata["Content-Type"] != "application/json" {
		t.Errorf("stored object: %q, metadata %v", body, obj.Metadata)
	}
	got, ct, err := s.GetObject(ctx, "recordings", key)
	if err != nil || string(got) != `{"version":"v1"}` || ct != "application/json" {
		t.Errorf("GetObject: %q, %q, %v", got, ct, err)
	}
	if _, _, err := s.GetObject(ctx, "recordings", "no/such/key"); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
		t.Errorf("GetObject of a missing key: %v, want ENOTFOUND", err)
	}
	if err := s.PutObject(ctx, "missing", key, []byte("x"), "text/plain"); err == nil {
		t.Error("PutObject to a missing bucket succeeded")
	}
}
