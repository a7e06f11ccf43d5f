package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// TestClipIdent: a subscriber of the clip finds the publisher's counter of
// each packet it gets by its payload, in the loop sent last, the
// parameter sets (the same at each keyframe) included; a packet that did
// not come counts as lost.
func TestClipIdent(t *testing.T) {
	sps, pps := []byte{0x67, 0x42, 0xe0, 0x1f, 1, 2}, []byte{0x68, 0xce, 0x3c, 0x80}
	frame := func(typ byte, fill byte, n int) []byte { return append([]byte{typ}, bytes.Repeat([]byte{fill}, n)...) }
	// Two groups of pictures: each keyframe sends the same parameter sets.
	m := testmedia.Media{Frames: [][][]byte{
		{sps, pps, frame(0x65, 1, 2500)}, {frame(0x41, 2, 10)},
		{sps, pps, frame(0x65, 3, 2500)}, {frame(0x41, 4, 10)},
	}}
	c := clipOf(m, 1200, 16, 16)
	loop := len(c.payloads)
	if loop != 2*(1+3+1) {
		t.Fatalf("%d payloads a loop, want 10", loop)
	}
	var log sendLog
	spec := c.video(&log)
	var got tally
	l := testmedia.NewRTPLoop(m, 1200)
	var counter uint64
	for range 3 * len(m.Frames) { // three loops
		u := l.Next()
		for _, p := range u.Packets {
			log.times[counter%sendLogSize].Store(int64(1000 + counter))
			counter++
			log.sent.Store(counter)
			if counter == uint64(loop)+4 {
				continue // lost: the second loop's 4th packet
			}
			n, sent, ok := spec.ident(p.Payload)
			if !ok || n != counter-1 || sent != int64(1000+n) {
				t.Fatalf("packet %d: identified as %d sent at %d (%v)", counter-1, n, sent, ok)
			}
			got.add(n, sent, time.Now())
		}
	}
	if n := got.count(0, counter); n != counter-1 {
		t.Errorf("%d of %d packets counted, want all but one", n, counter)
	}
	if _, _, ok := spec.ident([]byte{0x41, 9, 9}); ok {
		t.Error("a payload not of the clip was identified")
	}
}
