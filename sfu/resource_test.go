package sfu

import (
	"regexp"
	"testing"
)

// TestResourceIDs: the URL of a WHIP or WHEP session is what allows ending
// it, so its id carries 128 random bits (after a cluster node's prefix).
func TestResourceIDs(t *testing.T) {
	s := &Server{cfg: Config{ResourcePrefix: "node-a."}}
	pattern := regexp.MustCompile(`^node-a\.[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for range 10000 {
		id := s.newResourceID()
		if !pattern.MatchString(id) {
			t.Fatalf("resource id %q, want node-a. and 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("resource id %q made twice", id)
		}
		seen[id] = true
	}
}
