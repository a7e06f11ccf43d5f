package testmedia

import (
	"bytes"
	"testing"
	"time"
)

// TestRTPLoop: the stream goes on from one loop to the next, sequence
// numbers and timestamps continuing, the audio cut to the video's length
// and in step with it, and large NAL units cut to the MTU.
func TestRTPLoop(t *testing.T) {
	sps, pps := []byte{0x67, 0x42, 0xe0, 0x1f, 1, 2}, []byte{0x68, 0xce, 0x3c, 0x80}
	idr := append([]byte{0x65}, bytes.Repeat([]byte{7}, 3000)...)
	p := []byte{0x41, 9, 9, 9}
	m := Media{Frames: [][][]byte{{sps, pps, idr}, {p}, {p}}, Opus: make([][]byte, 7)} // 100 ms of video, 140 ms of audio
	for i := range m.Opus {
		m.Opus[i] = []byte{byte(i)}
	}
	l := NewRTPLoop(m, 1200)
	if l.Duration() != 100*time.Millisecond {
		t.Fatalf("duration %v, want 100ms", l.Duration())
	}
	var last time.Duration
	var vseq, aseq uint16
	var videoTS, audioTS []uint32
	audio := 0
	for range 2 * (3 + 5) {
		u := l.Next()
		if u.At < last {
			t.Fatalf("unit at %v after one at %v", u.At, last)
		}
		last = u.At
		for j, pkt := range u.Packets {
			if len(pkt.Payload) > 1200 {
				t.Errorf("payload of %d bytes", len(pkt.Payload))
			}
			if u.Video {
				if pkt.SequenceNumber != vseq || pkt.Marker != (j == len(u.Packets)-1) {
					t.Errorf("video packet %d: seq %d marker %v", vseq, pkt.SequenceNumber, pkt.Marker)
				}
				vseq++
				if j == 0 {
					videoTS = append(videoTS, pkt.Timestamp)
				}
			} else {
				if pkt.SequenceNumber != aseq {
					t.Errorf("audio packet %d: seq %d", aseq, pkt.SequenceNumber)
				}
				aseq++
				audio++
				audioTS = append(audioTS, pkt.Timestamp)
			}
		}
	}
	// The IDR frame: STAP-A (SPS, PPS) and three FU-A; then two frames.
	if perLoop := len(l.VideoPayloads()); perLoop != 6 || int(vseq) != 2*perLoop {
		t.Errorf("%d video payloads a loop, %d packets in two loops; want 6 and 12", perLoop, vseq)
	}
	if audio != 10 {
		t.Errorf("%d audio packets in two loops, want 10 (5 of 20 ms in 100 ms)", audio)
	}
	wantV := []uint32{0, 3000, 6000, 9000, 12000, 15000}
	for i, ts := range videoTS {
		if ts != wantV[i] {
			t.Errorf("video timestamps %v, want %v", videoTS, wantV)
			break
		}
	}
	for i, ts := range audioTS {
		if ts != uint32(i*960) {
			t.Errorf("audio timestamps %v, want 960 apart from 0", audioTS)
			break
		}
	}
}
