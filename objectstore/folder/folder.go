// Package folder keeps objects the way S3 would, in a folder per bucket:
// the object at key "a/b/c.mp4" of bucket "rec" is the file
// <root>/rec/a/b/c.mp4. It is ivsrt's embedded object store, needing no
// setup; with an S3-compatible service, objectstore/s3 is used instead.
package folder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ivsrt/ivsrt"
)

// Store is a folder of buckets.
type Store struct {
	root string
}

var _ ivsrt.ObjectStore = (*Store)(nil)

// New returns the store of buckets under root, created if missing.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("folder: %w", err)
	}
	return &Store{root: root}, nil
}

// Path returns where the object at key of bucket lives, or an error if
// the bucket or key would name a path outside the bucket's folder.
func (s *Store) Path(bucket, key string) (string, error) {
	if err := checkBucketName(bucket); err != nil {
		return "", err
	}
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("folder: bad key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("folder: bad key %q", key)
		}
	}
	return filepath.Join(s.root, bucket, filepath.FromSlash(key)), nil
}

// CheckBucket implements ivsrt.ObjectStore. A bucket here is a folder, and
// there is no other way to make one: a bucket not there yet is created, so
// that recording works with no setup; one that cannot be written to is
// refused.
func (s *Store) CheckBucket(ctx context.Context, bucket string) error {
	if err := checkBucketName(bucket); err != nil {
		return err
	}
	dir := filepath.Join(s.root, bucket)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bucket %s (%s): %w", bucket, dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("bucket %s (%s) cannot be written: %w", bucket, dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// PutObject implements ivsrt.ObjectStore: the object is written beside its
// place, flushed, then renamed into it, so a crash leaves the old object
// or the new one.
func (s *Store) PutObject(ctx context.Context, bucket, key string, body []byte, contentType string) (err error) {
	path, err := s.Path(bucket, key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	f, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(body); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// GetObject implements ivsrt.ObjectStore. A folder keeps no content
// types: the type is told by the key's extension, as for the objects
// recordings write.
func (s *Store) GetObject(ctx context.Context, bucket, key string) ([]byte, string, error) {
	path, err := s.Path(bucket, key)
	if err != nil {
		return nil, "", ivsrt.Errorf(ivsrt.ENOTFOUND, "no object %s in bucket %s", key, bucket)
	}
	body, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", ivsrt.Errorf(ivsrt.ENOTFOUND, "no object %s in bucket %s", key, bucket)
	} else if err != nil {
		return nil, "", fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return body, contentTypeOf(key), nil
}

// contentTypeOf returns the content type of the objects recordings write,
// by extension.
func contentTypeOf(key string) string {
	switch strings.ToLower(filepath.Ext(key)) {
	case ".m3u8":
		return "application/x-mpegURL"
	case ".mp4":
		return "video/mp4"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// checkBucketName refuses what S3 would (3 to 63 lower-case letters,
// digits, dots and dashes) and anything that could leave the root.
func checkBucketName(b string) error {
	if len(b) < 3 || len(b) > 63 || strings.Trim(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" ||
		strings.Contains(b, "..") || b[0] == '.' || b[0] == '-' {
		return errors.New("folder: bad bucket name " + fmt.Sprintf("%q", b))
	}
	return nil
}
