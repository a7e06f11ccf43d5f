package folder

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ivsrt/ivsrt"
)

func TestFolder(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(ctx, "recordings"); err != nil {
		t.Fatalf("CheckBucket: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, "recordings")); err != nil || !fi.IsDir() {
		t.Fatalf("the bucket's folder: %v", err)
	}
	key := "stage/session/participant/1700000000/media/hls/high/1.mp4"
	for _, body := range []string{"first", "second"} {
		if err := s.PutObject(ctx, "recordings", key, []byte(body), "video/mp4"); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(root, "recordings", filepath.FromSlash(key)))
		if err != nil || string(got) != body {
			t.Errorf("object after PutObject(%q): %q, %v", body, got, err)
		}
	}
	if body, ct, err := s.GetObject(ctx, "recordings", key); err != nil || string(body) != "second" || ct != "video/mp4" {
		t.Errorf("GetObject: %q, %q, %v", body, ct, err)
	}
	for _, missing := range []string{"no/such/key", "../escape"} {
		if _, _, err := s.GetObject(ctx, "recordings", missing); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
			t.Errorf("GetObject(%q): %v, want ENOTFOUND", missing, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "recordings", "stage/session/participant/1700000000/media/hls/high"))
	if len(entries) != 1 {
		t.Errorf("files beside the object: %v, want only it (no temporary file left)", entries)
	}
	for _, bad := range []struct{ bucket, key string }{
		{"recordings", "../escape"}, {"recordings", "/abs"}, {"recordings", "a//b"}, {"recordings", ""},
		{"..", "x"}, {"Up", "x"}, {"a/b", "x"}, {"ab", "x"},
	} {
		if err := s.PutObject(ctx, bad.bucket, bad.key, []byte("x"), "text/plain"); err == nil {
			t.Errorf("PutObject(%q, %q) succeeded", bad.bucket, bad.key)
		}
	}
	if err := s.CheckBucket(ctx, "../etc"); err == nil {
		t.Error("CheckBucket(../etc) succeeded")
	}
}
