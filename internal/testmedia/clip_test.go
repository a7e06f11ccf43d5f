package testmedia

import (
	"bytes"
	"testing"
	"time"
)

// TestRTPLoop: the stream goes on from one loop to the next, sequence
// numbers and timestamps continuing, audio and video in step, large NAL
// units cut to the MTU; a keyframe request skips to the next keyframe
// without a gap in time, unless a keyframe was just sent.
func TestRTPLoop(t *testing.T) {
	sps, pps := []byte{0x67, 0x42, 0xe0, 0x1f, 1, 2}, []byte{0x68, 0xce, 0x3c, 0x80}
	idr := append([]byte{0x65}, bytes.Repeat([]byte{7}, 3000)...)
	p := func(b byte) []byte { return []byte{0x41, b, b, b} }
	// Two groups of pictures, 5 frames (1/6 s), and 7 packets of audio.
	m := Media{Frames: [][][]byte{{sps, pps, idr}, {p(1)}, {p(2)}, {sps, pps, idr}, {p(3)}}, Opus: make([][]byte, 7)}
	for i := range m.Opus {
		m.Opus[i] = []byte{byte(i)}
	}
	l := NewRTPLoop(m, 1200)
	if l.Duration() != 5*time.Second/30 {
		t.Fatalf("duration %v, want 1/6 s", l.Duration())
	}
	if n := len(l.VideoPayloads()); n != 2*(1+3)+3 {
		t.Fatalf("%d video payloads a loop, want 11 (STAP-A and 3 FU-A per keyframe, 3 frames)", n)
	}
	var last time.Duration
	var vseq, aseq uint16
	var frames []int
	var videoTS []uint32
	for len(frames) < 13 {
		switch len(frames) {
		case 1, 6: // just after a keyframe: nothing to do
			l.KeyframeNext()
		case 8: // after frame 2: frame 3 is next anyway
			l.KeyframeNext()
		case 12: // after frame 1: skips 2 for 3
			l.KeyframeNext()
		}
		u := l.Next()
		if u.At < last {
			t.Fatalf("unit at %v after one at %v", u.At, last)
		}
		last = u.At
		for j, pkt := range u.Packets {
			if len(pkt.Payload) > 1200 {
				t.Errorf("payload of %d bytes", len(pkt.Payload))
			}
			if !u.Video {
				if pkt.SequenceNumber != aseq || pkt.Timestamp != uint32(aseq)*960 || u.At != time.Duration(aseq)*20*time.Millisecond ||
					pkt.Payload[0] != byte(int(aseq)%7) {
					t.Errorf("audio packet %d at %v: seq %d ts %d payload %d", aseq, u.At, pkt.SequenceNumber, pkt.Timestamp, pkt.Payload[0])
				}
				aseq++
				continue
			}
			if pkt.SequenceNumber != vseq || pkt.Marker != (j == len(u.Packets)-1) {
				t.Errorf("video packet %d: seq %d marker %v", vseq, pkt.SequenceNumber, pkt.Marker)
			}
			if !bytes.Equal(pkt.Payload, l.VideoPayloads()[u.Index+j]) {
				t.Errorf("frame %d packet %d: not payload %d of the loop", u.Frame, j, u.Index+j)
			}
			vseq++
		}
		if u.Video {
			if u.At != time.Duration(len(frames))*time.Second/30 {
				t.Errorf("frame %d at %v", len(frames), u.At)
			}
			frames = append(frames, u.Frame)
			videoTS = append(videoTS, u.Packets[0].Timestamp)
		}
	}
	want := []int{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 3}
	for i := range want {
		if frames[i] != want[i] {
			t.Fatalf("frames %v, want %v", frames, want)
		}
	}
	for i, ts := range videoTS {
		if ts != uint32(i*3000) {
			t.Fatalf("video timestamps %v, want 3000 apart from 0", videoTS)
		}
	}
}
