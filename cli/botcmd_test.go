package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/bot"
)

// TestBotFirstReport checks that the first report of `ivsrt bot` shows
// the rates since the media started, not zero for want of an earlier
// report.
func TestBotFirstReport(t *testing.T) {
	now := time.Now()
	stats := []bot.Stats{{
		Index: 0, ParticipantID: "Ab3dE5gH7jK9", State: bot.StatePublishing, Elapsed: 1, At: now,
		Sent: bot.Sent{Since: now.Add(-500 * time.Millisecond), VideoFrames: 15, VideoBytes: 50_000},
		Received: []bot.RemoteStats{{ParticipantID: "Zy9xW8vU7tS6", Since: now.Add(-250 * time.Millisecond),
			VideoBytes: 25_000, VideoFrames: 5}},
	}}
	var out bytes.Buffer
	r := &reporter{out: &out, live: true, publish: true}
	r.report(stats, false)
	for _, want := range []string{
		"bot 1   Ab3dE5gH7jK9 PUBLISHING sent 800 kb/s  received from 1: 800 kb/s, 20 frames/s\n",
		"1 publishing, 0 failed  sent 800 kb/s  received 800 kb/s, 20 frames/s\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("first report got %q, want it to contain %q", out.String(), want)
		}
	}
}
