package sfu_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/ivsrt/ivsrt"
	"github.com/pion/webrtc/v4"
)

// TestSlowSubscriber: one of 50 subscribers (20 under the race detector)
// reads its socket at a tenth of
// the rate its media arrives. The other 49 lose nothing, and their packets
// come no later than before it slowed (within 50 ms more, measured against
// their own latency in the same run, so that a busy machine does not fail
// the test; when the clients cannot keep up even before, latency is not
// judged, nor under the race detector); once it reads at full speed again
// it gets whole keyframes again. The test is not parallel: fifty peer
// connections are load enough.
func TestSlowSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("fifty peer connections")
	}
	h := newHarness(t)
	stage := h.createStage("slow-subscriber")
	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	// Video alone: fifty subscribers of it are load enough under -race.
	pub := h.mustPublish(aws.ToString(alice.Token), vp8, false, keyEvery(90))

	// Fifty without the race detector. Under it, fifty instrumented
	// peer connections beside the other packages' tests (CI runs two at
	// once, cmd/ivsrt's browsers among them) starve the server of CPU
	// before anyone is slow, and frames are lost for want of a core, not
	// because of the slow one: twenty are load enough there.
	n := 50
	if raceEnabled {
		n = 20
	}
	subs := make([]*subscriber, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		tok := aws.ToString(h.token(stage, fmt.Sprint("viewer-", i)).Token)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			subs[i] = h.mustSubscribe(tok, aliceID)
			subs[i].waitFor(webrtc.RTPCodecTypeVideo, 10)
		})
	}
	wg.Wait()
	slow, fast := subs[0], subs[1:]

	window := func(d time.Duration) (first, end uint32) {
		first = uint32(pub.sentVideo.Load())
		time.Sleep(d)
		return first, uint32(pub.sentVideo.Load())
	}
	statsBefore := h.sfu.MediaStats()
	baseFirst, baseEnd := window(2 * time.Second)
	statsBase := h.sfu.MediaStats()
	slow.conn.readWait.Store(int64(140 * time.Millisecond)) // ~7 reads a second of ~70 packets
	slowFirst, slowEnd := window(5 * time.Second)
	slow.conn.readWait.Store(0)
	recovered := time.Now()
	statsSlow := h.sfu.MediaStats()
	t.Logf("server before the slowdown (2 s): %s", statsDelta(statsBefore, statsBase))
	t.Logf("server while one was slow (5 s): %s", statsDelta(statsBase, statsSlow))

	// Everyone fast has every packet of every frame of both windows.
	defer func() { t.Logf("server since: %s", statsDelta(statsSlow, h.sfu.MediaStats())) }()
	for i, s := range fast {
		eventually(t, fmt.Sprint("subscriber ", i+1, " to have every frame"), func() error {
			if missing := s.missingFrames(baseFirst, slowEnd); len(missing) > 0 {
				return fmt.Errorf("frames %v incomplete", missing)
			}
			return nil
		})
	}
	base := latencies(pub, fast, baseFirst, baseEnd)
	during := latencies(pub, fast, slowFirst, slowEnd)
	p95 := func(l []time.Duration) time.Duration { return l[len(l)*95/100] }
	t.Logf("latency of the others p50/p95/max: before %v/%v/%v, while one was slow %v/%v/%v",
		base[len(base)/2], p95(base), base[len(base)-1], during[len(during)/2], p95(during), during[len(during)-1])
	switch {
	case raceEnabled:
		// Fifty race-instrumented peer connections on two cores: the
		// latency is the clients' own queueing, and it moves with
		// whatever else the machine runs. Judged without -race.
		t.Log("latency not judged under the race detector")
	case p95(base) > 100*time.Millisecond:
		// The clients themselves cannot keep up (fifty race-instrumented
		// peer connections on two cores): their own queues, not the
		// server, set the latency, and it says nothing of the server.
		// sfubench measures it on a quiet machine.
		t.Logf("latency not judged: p95 %v before the slowdown, the machine is saturated", p95(base))
	case p95(during) > p95(base)+50*time.Millisecond:
		t.Errorf("while one subscriber was slow the others' p95 latency was %v, %v before", p95(during), p95(base))
	}

	// The slow one decodes again: a whole keyframe sent after it recovered.
	eventually(t, "the slow subscriber to get a whole keyframe", func() error {
		if !slow.wholeKeyframeAfter(pub, recovered) {
			return fmt.Errorf("none since it recovered")
		}
		return nil
	})
}

// statsDelta says what the server did between two of its statistics.
func statsDelta(a, b ivsrt.MediaStats) string {
	return fmt.Sprintf("%d packets out, %d NACKs in, %d retransmitted (%d not: repeated, %d not: over budget), %d dropped for a full queue, %d waiting for a keyframe, %d keyframe requests out",
		b.PacketsOut-a.PacketsOut, b.NACKs-a.NACKs, b.Retransmitted-a.Retransmitted,
		b.ResendRepeated-a.ResendRepeated, b.ResendOverBudget-a.ResendOverBudget,
		b.DroppedQueueFull-a.DroppedQueueFull, b.DroppedWaitingKeyframe-a.DroppedWaitingKeyframe,
		b.KeyframeRequestsOut-a.KeyframeRequestsOut)
}

// missingFrames returns the video frames in [first, end) of which a
// packet did not arrive.
func (s *subscriber) missingFrames(first, end uint32) []uint32 {
	got := map[uint32]map[uint16]bool{}
	count := map[uint32]uint16{}
	for _, r := range s.packets(webrtc.RTPCodecTypeVideo) {
		if r.m.Frame < first || r.m.Frame >= end {
			continue
		}
		if got[r.m.Frame] == nil {
			got[r.m.Frame] = map[uint16]bool{}
		}
		got[r.m.Frame][r.m.Index] = true
		count[r.m.Frame] = r.m.Count
	}
	var missing []uint32
	for f := first; f < end; f++ {
		if got[f] == nil || len(got[f]) != int(count[f]) {
			missing = append(missing, f)
		}
	}
	return missing
}

// wholeKeyframeAfter reports whether every packet of a keyframe sent after
// t arrived.
func (s *subscriber) wholeKeyframeAfter(p *publisher, t time.Time) bool {
	got := map[uint32]int{}
	for _, r := range s.packets(webrtc.RTPCodecTypeVideo) {
		if !r.m.Key {
			continue
		}
		if sent, ok := p.frameSent(r.m.Frame); !ok || sent.Before(t) {
			continue
		}
		got[r.m.Frame]++
		if got[r.m.Frame] == int(r.m.Count) {
			return true
		}
	}
	return false
}

// latencies returns, sorted, the time from the publisher sending a video
// frame in [first, end) to each packet of it reaching each subscriber
// (first arrivals only).
func latencies(p *publisher, subs []*subscriber, first, end uint32) []time.Duration {
	var out []time.Duration
	for _, s := range subs {
		seen := map[[2]uint32]bool{}
		for _, r := range s.packets(webrtc.RTPCodecTypeVideo) {
			key := [2]uint32{r.m.Frame, uint32(r.m.Index)}
			if r.m.Frame < first || r.m.Frame >= end || seen[key] {
				continue
			}
			seen[key] = true
			if sent, ok := p.frameSent(r.m.Frame); ok {
				out = append(out, r.at.Sub(sent))
			}
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		out = append(out, 0)
	}
	return out
}
