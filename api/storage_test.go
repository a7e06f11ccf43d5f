package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ivsrt/ivsrt"
)

// fakeBuckets is a BucketChecker with a fixed answer per bucket.
type fakeBuckets struct {
	mu      sync.Mutex
	errs    map[string]error
	checked []string
}

func (f *fakeBuckets) CheckBucket(ctx context.Context, bucket string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = append(f.checked, bucket)
	return f.errs[bucket]
}

func TestBucketChecker(t *testing.T) {
	h := newFuzzHarness(t)
	buckets := &fakeBuckets{errs: map[string]error{
		"missing":     ivsrt.Errorf(ivsrt.ENOTFOUND, "no such bucket"),
		"read-only":   ivsrt.Errorf(ivsrt.EDENIED, "the bucket refuses writes"),
		"unreachable": errors.New("dial tcp 10.1.2.3:9000: connection refused"),
	}}
	WithBucketChecker(buckets)(h.srv)

	tests := []struct {
		bucket string
		status int
		want   []string // in the message
		hidden string   // not in the message
	}{
		{"fine", http.StatusOK, nil, ""},
		{"missing", http.StatusBadRequest, []string{"'missing'", "does not exist or is not writable", "no such bucket"}, ""},
		{"read-only", http.StatusBadRequest, []string{"'read-only'", "does not exist or is not writable", "refuses writes"}, ""},
		{"unreachable", http.StatusBadRequest, []string{"'unreachable'", "does not exist or is not writable"}, "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.bucket, func(t *testing.T) {
			before, _, err := h.db.ListStorageConfigurations(t.Context(), ivsrt.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			r := h.operation(t, "CreateStorageConfiguration", []byte(`{"s3":{"bucketName":"`+tt.bucket+`"}}`))
			if r.status != tt.status {
				t.Fatalf("got status %d, want %d: %s", r.status, tt.status, r.body)
			}
			after, _, err := h.db.ListStorageConfigurations(t.Context(), ivsrt.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if tt.status == http.StatusOK {
				if len(after) != len(before)+1 {
					t.Errorf("got %d storage configurations, want %d", len(after), len(before)+1)
				}
				return
			}
			if len(after) != len(before) {
				t.Errorf("got %d storage configurations after a refused bucket, want %d", len(after), len(before))
			}
			if got := r.header.Get("x-amzn-ErrorType"); got != "ValidationException" {
				t.Errorf("x-amzn-ErrorType: got %q, want ValidationException", got)
			}
			var e errorBody
			json.Unmarshal(r.body, &e)
			for _, w := range tt.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not contain %q", e.Message, w)
				}
			}
			if tt.hidden != "" && strings.Contains(e.Message, tt.hidden) {
				t.Errorf("message %q shows the checker's internal error", e.Message)
			}
		})
	}
	if !strings.Contains(h.logs.String(), "10.1.2.3") {
		t.Errorf("the checker's internal error was not logged; log:\n%s", h.logs.String())
	}

	// An invalid request never reaches the checker.
	buckets.mu.Lock()
	n := len(buckets.checked)
	buckets.mu.Unlock()
	for _, body := range []string{`{}`, `{"s3":{}}`, `{"s3":{"bucketName":"UPPER"}}`, `{"name":"bad name","s3":{"bucketName":"fine"}}`,
		`{"s3":{"bucketName":"fine"},"tags":{"aws:x":"y"}}`} {
		if r := h.operation(t, "CreateStorageConfiguration", []byte(body)); r.status != http.StatusBadRequest {
			t.Errorf("%s: got status %d, want 400", body, r.status)
		}
	}
	buckets.mu.Lock()
	defer buckets.mu.Unlock()
	if len(buckets.checked) != n {
		t.Errorf("invalid requests were checked against the buckets: %v", buckets.checked[n:])
	}
}
