package main

import (
	"testing"
	"time"
)

// A subscriber counts the top layer's packets by their counter, and a
// lower layer's only as arrivals: their counters are their own.
func TestSimulcastLayers(t *testing.T) {
	cfg := streamConfig{bitrate: 2_500_000, payloadSize: 1200, fps: 30, keyframeEvery: 2 * time.Second, keyframeSize: 3}
	wantRate := []int{156_250, 625_000, 2_500_000}
	wantWidth := []int{320, 640, 1280}
	var got tally
	for i := range simulcastRIDs {
		l := cfg.layer(i)
		if l.bitrate != wantRate[i] || l.width != wantWidth[i] || l.height*16 != l.width*9 {
			t.Errorf("layer %d: %d bit/s, %dx%d; want %d bit/s, %d wide, 16:9", i, l.bitrate, l.width, l.height, wantRate[i], wantWidth[i])
		}
		st := newStream(l, time.Now())
		for range 3 {
			for _, p := range st.nextFrame() {
				stamp(p.raw, time.Now())
				payload, err := rtpPayload(p.raw)
				if err != nil {
					t.Fatal(err)
				}
				vp8Simulcast.note(&got, payload, time.Now(), false)
				_, _, top := readTrailer(payload)
				if top != (i == len(simulcastRIDs)-1) {
					t.Errorf("layer %d: read as the top layer's: %v", i, top)
				}
			}
		}
	}
	lower, _ := got.extra()
	top := cfg.layer(2)
	st := newStream(top, time.Now())
	var n uint64
	for range 3 {
		n += uint64(len(st.nextFrame()))
	}
	if c := got.count(0, 1<<20); c != n {
		t.Errorf("top layer: %d packets counted, want %d", c, n)
	}
	if got.arrivals() != n+lower || lower == 0 {
		t.Errorf("%d arrivals, %d of lower layers; want the top layer's %d and the lower ones'", got.arrivals(), lower, n)
	}
	// Without simulcast, a lower layer's packet is not the bench's.
	var plain tally
	q := newStream(cfg.layer(0), time.Now()).nextFrame()[0]
	payload, _ := rtpPayload(q.raw)
	vp8Video.note(&plain, payload, time.Now(), false)
	if plain.arrivals() != 0 {
		t.Error("a lower layer's packet was counted without simulcast")
	}
}
