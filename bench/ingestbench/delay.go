package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/publish"
)

// Delay is counted from a publisher's write of a unit of media to the
// arrival of what the subscriber gets of it, on one clock (both are in
// the bench's process).

// videoDelays maps the frames a subscriber received (got, in order of
// arrival) to the frames their publisher sent (sent[i] has pts
// clip.FramePTS(i)), and returns the delay of each frame that arrived in
// [from, to), and the offset of the subscriber's timestamps from the
// publisher's pts × 90 kHz.
//
// The server may offset a subscriber's timestamps, but keeps their
// differences: a frame is the sent frame whose pts is that of the first
// received frame plus the difference of their timestamps. The first
// received frame is a keyframe (a subscriber starts at one), and the
// latest keyframe sent before it arrived, unless that would have some
// frame arrive before it was sent: then the keyframe before (an SFU may
// start a subscriber with a keyframe it kept).
func videoDelays(sent []publish.Sent, got []arrival, from, to time.Time) ([]time.Duration, uint32, error) {
	k := slices.IndexFunc(got, func(a arrival) bool { return a.key })
	if k < 0 {
		return nil, 0, errors.New("no keyframe arrived")
	}
	got = got[k:]
	first := got[0]
	var tried int
	for c := len(sent) - 1; c >= 0 && tried < 4; c-- {
		if !sent[c].Key || !sent[c].At.Before(first.at) {
			continue
		}
		tried++
		delays, err := mapFrames(sent, got, c, from, to)
		if err == nil {
			return delays, first.ts - uint32(clip.FramePTS(c)*90000/time.Second), nil
		}
		if !errors.Is(err, errEarly) {
			return nil, 0, err
		}
	}
	return nil, 0, errors.New("the first frame received is none of the keyframes sent before it arrived")
}

// errEarly: a mapping that has a frame arrive before it was sent.
var errEarly = errors.New("a frame arrived before it was sent")

// mapFrames maps got, whose first frame is sent[c], by timestamp
// differences.
func mapFrames(sent []publish.Sent, got []arrival, c int, from, to time.Time) ([]time.Duration, error) {
	var delays []time.Duration
	base := got[0].ts
	for _, g := range got {
		pts := clip.FramePTS(c) + time.Duration(int64(g.ts-base)*int64(time.Second)/90000)
		// RTMP carries times in whole milliseconds: a frame's pts may be
		// up to one off.
		i := int((pts*clip.FPS + time.Second/2) / time.Second)
		if d := pts - clip.FramePTS(i); d > 3*time.Millisecond || d < -3*time.Millisecond {
			return nil, fmt.Errorf("a frame's timestamp is %v from the nearest frame's pts", d)
		}
		if i >= len(sent) {
			return nil, fmt.Errorf("frame %d arrived, but %d were sent", i, len(sent))
		}
		d := g.at.Sub(sent[i].At)
		if d < 0 {
			return nil, errEarly
		}
		if !g.at.Before(from) && g.at.Before(to) {
			delays = append(delays, d)
		}
	}
	return delays, nil
}

// audioDelays maps the audio packets a subscriber received to the audio
// units their publisher sent (sent[j] has pts j×unit: an AAC frame, or an
// Opus packet), and returns the delay of each packet that arrived in
// [from, to).
//
// Audio has no keyframe to anchor a mapping to. The server stamps both
// tracks of a publication with its pts × the clock rate from the same
// origin, and starts a subscriber's mapping without an offset; when the
// video's mapping finds no offset (videoDelays), the audio's timestamps
// are the pts of the packets. An Opus packet made from AAC counts from
// the send of the AAC frame that holds its first sample.
func audioDelays(sent []time.Time, unit time.Duration, got []arrival, from, to time.Time) ([]time.Duration, error) {
	var delays []time.Duration
	for _, g := range got {
		pts := time.Duration(int64(g.ts) * int64(time.Second) / clip.SampleRate)
		j := int((pts + time.Millisecond) / unit) // a millisecond of RTMP's rounding
		if j >= len(sent) {
			return nil, fmt.Errorf("an audio packet of pts %v arrived, but %d units were sent", pts, len(sent))
		}
		d := g.at.Sub(sent[j])
		if d < 0 {
			return nil, fmt.Errorf("an audio packet of pts %v arrived %v before it was sent", pts, -d)
		}
		if !g.at.Before(from) && g.at.Before(to) {
			delays = append(delays, d)
		}
	}
	return delays, nil
}
