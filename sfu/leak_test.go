package sfu_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"
)

// TestSessionsLeaveNoGoroutines has publishers and subscribers come and go
// and checks that the server is left with the goroutines it started with.
// It is not parallel: the count is the whole process's.
func TestSessionsLeaveNoGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	h := newHarness(t)
	stage := h.createStage("leak")
	before := serverGoroutines()

	for round := range 2 {
		alice := h.token(stage, fmt.Sprint("alice", round))
		pub := h.mustPublish(aws.ToString(alice.Token), vp8, true)
		aliceID := aws.ToString(alice.ParticipantId)
		var subs []*subscriber
		for i := range 3 {
			tok := h.token(stage, fmt.Sprint("bob", round, i), types.ParticipantTokenCapabilitySubscribe)
			sub := h.mustSubscribe(aws.ToString(tok.Token), aliceID)
			sub.waitFor(webrtc.RTPCodecTypeVideo, 30)
			subs = append(subs, sub)
		}
		// One subscriber leaves while packets flow, then the rest with the
		// publisher.
		for _, sub := range subs {
			if got := h.delete(sub.location); got != 200 {
				t.Errorf("DELETE WHEP session got %d, want 200", got)
			}
			wait(t, sub.gone, "the subscriber's connection to close")
			sub.pc.Close()
		}
		if got := h.delete(pub.location); got != 200 {
			t.Errorf("DELETE WHIP session got %d, want 200", got)
		}
		wait(t, pub.gone, "the publisher's connection to close")
		pub.halt()
		h.waitIdle(stage)
	}

	h.http.CloseIdleConnections()
	deadline := time.Now().Add(testTimeout)
	for len(serverGoroutines()) > len(before) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if after := serverGoroutines(); len(after) > len(before) {
		t.Errorf("%d server goroutines, %d before the sessions:\n%s", len(after), len(before), strings.Join(after, "\n\n"))
	}
}

// serverGoroutines returns the stacks of the goroutines that run the media
// plane's code or pion's, leaving out the test's clients (their sockets
// close when the test ends).
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var stacks []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if (strings.Contains(g, "github.com/pion/") || strings.Contains(g, "github.com/ivsrt/ivsrt/sfu.")) &&
			!strings.Contains(g, "sfu_test.") {
			stacks = append(stacks, g)
		}
	}
	return stacks
}
