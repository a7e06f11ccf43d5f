package main

import (
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/publish"
)

// sentClip is n frames sent one frameTime apart from t0, a keyframe
// every second.
func sentClip(t0 time.Time, n int) []publish.Sent {
	s := make([]publish.Sent, n)
	for i := range s {
		s[i] = publish.Sent{At: t0.Add(clip.FramePTS(i)), Key: i%clip.FPS == 0}
	}
	return s
}

// received is frames from..to-1 of sent as a subscriber gets them: each
// delay after its send, or at burst if it was sent before (the frames an
// SFU kept, given to the subscriber at once when it joins); its timestamp
// its pts × 90 kHz in whole milliseconds (as RTMP carries it) plus
// offset.
func received(sent []publish.Sent, from, to int, delay time.Duration, burst time.Time, offset uint32) []arrival {
	var got []arrival
	for i := from; i < to; i++ {
		pts := clip.FramePTS(i).Truncate(time.Millisecond)
		a := arrival{ts: offset + uint32(pts*90000/time.Second), at: sent[i].At.Add(delay), key: sent[i].Key}
		if sent[i].At.Before(burst) {
			a.at = burst
		}
		got = append(got, a)
	}
	return got
}

func TestVideoDelays(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sent := sentClip(t0, 10*clip.FPS)
	for _, tt := range []struct {
		name   string
		got    []arrival
		offset uint32
		want   time.Duration
		n      int
	}{
		{"starts at the latest keyframe", received(sent, 60, 150, 7*time.Millisecond, time.Time{}, 0), 0, 7 * time.Millisecond, 90},
		{"timestamps offset and wrapping", received(sent, 60, 150, 7*time.Millisecond, time.Time{}, 0xffff_0000), 0xffff_0000, 7 * time.Millisecond, 90},
		// Keyframe 30 and what followed it, kept by the server and given at
		// 2.2 s: after keyframe 60 was sent, at 2 s.
		{"starts at a kept keyframe", received(sent, 30, 150, 5*time.Millisecond, t0.Add(2200*time.Millisecond), 123), 123, 5 * time.Millisecond, 84},
	} {
		t.Run(tt.name, func(t *testing.T) {
			delays, off, err := videoDelays(sent, tt.got, t0, t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if off != tt.offset {
				t.Errorf("offset got %d, want %d", off, tt.offset)
			}
			if len(delays) != len(tt.got) {
				t.Errorf("got %d delays, want %d", len(delays), len(tt.got))
			}
			if n := countEqual(delays, tt.want); n != tt.n {
				t.Errorf("%d delays of %v, want %d", n, tt.want, tt.n)
			}
		})
	}
}

func countEqual(ds []time.Duration, want time.Duration) int {
	n := 0
	for _, d := range ds {
		if d == want {
			n++
		}
	}
	return n
}

func TestAudioDelays(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sent := make([]time.Time, 500)
	for j := range sent {
		sent[j] = t0.Add(time.Duration(j) * clip.AACFrameTime)
	}
	// Opus packets of 20 ms made from the AAC frames: packet k starts at
	// sample 960k, in AAC frame 960k/1024; the server's pts is that
	// frame's, in whole milliseconds, plus the packet's place in it.
	var got []arrival
	var want []time.Duration
	for k := 0; k < 400; k++ {
		frame := 960 * k / 1024
		pts := (time.Duration(frame) * clip.AACFrameTime).Truncate(time.Millisecond) +
			time.Duration(960*k-1024*frame)*time.Second/clip.SampleRate
		at := t0.Add(time.Duration(k)*clip.OpusPacket + 50*time.Millisecond)
		got = append(got, arrival{ts: uint32(pts * clip.SampleRate / time.Second), at: at})
		want = append(want, at.Sub(sent[frame]))
	}
	delays, err := audioDelays(sent, clip.AACFrameTime, got, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("packet %d: delay got %v, want %v", i, delays[i], want[i])
		}
	}
}
