package engine

import (
	"errors"
	"strings"
	"testing"
)

// TestRedact: an error naming an RTMP output shows it without its stream
// key.
func TestRedact(t *testing.T) {
	e := &Engine{cfg: Config{Outputs: []Output{{RTMP: "rtmp://example.com:1935/live/sk_secret123"}, {HLS: &HLS{Dir: "/tmp"}}}}}
	err := e.redact(errors.New("rtmp://example.com:1935/live/sk_secret123: Connection refused"))
	if strings.Contains(err.Error(), "sk_secret123") || !strings.Contains(err.Error(), "rtmp://example.com:1935/live/<stream key>") {
		t.Errorf("redacted: %v", err)
	}
	plain := errors.New("something else")
	if e.redact(plain) != plain {
		t.Errorf("an error without the URL was changed")
	}
}
