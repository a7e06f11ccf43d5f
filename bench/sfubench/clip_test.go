package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// TestClipIdent: a subscriber of the clip finds the publisher's counter of
// each packet it gets by its payload, as last sent, the parameter sets
// (the same at each keyframe) and a keyframe sent early for a keyframe
// request included; a packet that did not come counts as lost.
func TestClipIdent(t *testing.T) {
	sps, pps := []byte{0x67, 0x42, 0xe0, 0x1f, 1, 2}, []byte{0x68, 0xce, 0x3c, 0x80}
	frame := func(typ byte, fill byte, n int) []byte { return append([]byte{typ}, bytes.Repeat([]byte{fill}, n)...) }
	// Two groups of pictures: each keyframe sends the same parameter sets.
	m := testmedia.Media{Frames: [][][]byte{
		{sps, pps, frame(0x65, 1, 2500)}, {frame(0x41, 2, 10)}, {frame(0x41, 3, 10)},
		{sps, pps, frame(0x65, 4, 2500)}, {frame(0x41, 5, 10)},
	}}
	c := clipOf(m, 1200, 16, 16)
	if n := len(c.payloads); n != 2*(1+3)+3 {
		t.Fatalf("%d payloads a loop, want 11", n)
	}
	log := c.newSendLog()
	spec := c.video(log)
	var got tally
	l := testmedia.NewRTPLoop(m, 1200)
	var counter uint64
	var frames []int
	for f := range 16 {
		if f == 7 { // after frame 1 of the second loop
			l.KeyframeNext()
		}
		u := l.Next()
		frames = append(frames, u.Frame)
		for i, p := range u.Packets {
			log.note(counter, u.Index+i, time.Unix(0, int64(1000+counter)))
			counter++
			if counter == 15 {
				continue // lost
			}
			n, sent, ok := spec.ident(p.Payload)
			if !ok || n != counter-1 || sent != int64(1000+n) {
				t.Fatalf("packet %d (frame %d of the clip): identified as %d sent at %d (%v)", counter-1, u.Frame, n, sent, ok)
			}
			got.add(n, sent, time.Now())
		}
	}
	if frames[7] != 3 {
		t.Fatalf("frames %v: the keyframe request did not skip to frame 3", frames)
	}
	if n := got.count(0, counter); n != counter-1 {
		t.Errorf("%d of %d packets counted, want all but one", n, counter)
	}
	if _, _, ok := spec.ident([]byte{0x41, 9, 9}); ok {
		t.Error("a payload not of the clip was identified")
	}
}
