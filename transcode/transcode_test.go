package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// aacClip is AAC made by ffmpeg: its AudioSpecificConfig and frames.
type aacClip struct {
	asc        []byte
	frames     [][]byte
	sampleRate int
}

func (c aacClip) frameDuration() time.Duration {
	return samplesToDuration(1024, int64(c.sampleRate))
}

// encodeAAC encodes seconds of a sine tone with ffmpeg's AAC encoder.
func encodeAAC(t *testing.T, seconds float64, freq, rate, channels int) aacClip {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.aac")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=%d", freq, rate),
		"-t", fmt.Sprint(seconds), "-ac", fmt.Sprint(channels), "-c:a", "aac", "-b:a", "128k", "-f", "adts", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	asc, err := (&mpeg4audio.AudioSpecificConfig{
		Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig,
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c := aacClip{asc: asc, sampleRate: pkts[0].SampleRate}
	for _, p := range pkts {
		c.frames = append(c.frames, p.AU)
	}
	return c
}

// received is a packet and when it came.
type received struct {
	Packet
	at time.Time
}

// collector reads packets until ReadPacket fails.
type collector struct {
	mu   sync.Mutex
	got  []received
	err  error
	done chan struct{}
}

func collect(tr *AACToOpus) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			p, err := tr.ReadPacket()
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.got = append(c.got, received{p, time.Now()})
			c.mu.Unlock()
		}
	}()
	return c
}

// wait waits for ReadPacket to fail, and returns the packets and the error.
func (c *collector) wait(t *testing.T) ([]received, error) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("ReadPacket did not return")
	}
	return c.got, c.err
}

func TestAACToOpus(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	for _, tc := range []struct {
		name           string
		rate, channels int
	}{
		{"44.1kHz stereo", 44100, 2},
		{"48kHz mono", 48000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clip := encodeAAC(t, 2, 440, tc.rate, tc.channels)
			tr, err := NewAACToOpus(context.Background(), "ffmpeg", clip.asc)
			if err != nil {
				t.Fatal(err)
			}
			c := collect(tr)
			// The pts start at 10 s: they are the stream's, not ffmpeg's.
			const base = 10 * time.Second
			for i, f := range clip.frames {
				if err := tr.Write(base+time.Duration(i)*clip.frameDuration(), f); err != nil {
					t.Fatal(err)
				}
			}
			// Close at once: what ffmpeg still holds comes out before
			// ReadPacket's io.EOF.
			want := int(time.Duration(len(clip.frames)) * clip.frameDuration() / OpusPacketDuration)
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := c.wait(t)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("ReadPacket after Close: got %v, want io.EOF", err)
			}
			if len(got) < want-3 || len(got) > want+2 {
				t.Fatalf("got %d packets, want %d", len(got), want)
			}
			for i, p := range got {
				// The first packet holds the encoder's 6.5 ms lookahead
				// before the first sample.
				wantPTS := base + time.Duration(i)*OpusPacketDuration - 312*time.Second/48000
				if d := p.PTS - wantPTS; d < -time.Millisecond || d > time.Millisecond {
					t.Fatalf("packet %d: pts %v, want %v", i, p.PTS, wantPTS)
				}
			}
			pkts := make([]testmedia.OpusPacket, len(got))
			for i, p := range got {
				pkts[i] = testmedia.OpusPacket{PTS: p.PTS, Data: p.Data}
			}
			samples := testmedia.DecodeOpus(t, pkts)
			if got, want := len(samples), len(got)*opusPacketSamples; got < want-5*opusPacketSamples {
				t.Fatalf("decoded %d samples, want %d", got, want)
			}
			tone, other := testmedia.TonePower(samples, 440), testmedia.TonePower(samples, 1000)
			t.Logf("%d packets; power at 440 Hz %.2f, at 1000 Hz %.4f", len(got), tone, other)
			if tone < 0.5 || other > 0.01 {
				t.Fatalf("the 440 Hz tone is not there: power at 440 Hz %.2f, at 1000 Hz %.4f", tone, other)
			}
		})
	}
}

// TestAACToOpusDelay feeds AAC in real time, as an encoder sends it, and
// measures how long after the AAC frame that completes a packet the packet
// comes out, and what ffmpeg costs in CPU.
func TestAACToOpusDelay(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	if testing.Short() {
		t.Skip("real time")
	}
	clip := encodeAAC(t, 3, 440, 44100, 2)
	start := time.Now()
	tr, err := NewAACToOpus(context.Background(), "ffmpeg", clip.asc)
	if err != nil {
		t.Fatal(err)
	}
	c := collect(tr)
	fd := clip.frameDuration()
	written := make([]time.Time, len(clip.frames))
	var cpuFrom time.Duration
	var cpuFromAt time.Time
	for i, f := range clip.frames {
		// A live encoder sends a frame once its last sample is in.
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * fd)))
		written[i] = time.Now()
		if cpuFromAt.IsZero() && time.Since(start) > time.Second {
			cpuFrom, cpuFromAt = processCPU(tr.cmd.Process.Pid), time.Now()
		}
		if err := tr.Write(time.Duration(i)*fd, f); err != nil {
			t.Fatal(err)
		}
	}
	steady := processCPU(tr.cmd.Process.Pid) - cpuFrom
	steadyWall := time.Since(cpuFromAt)
	time.Sleep(200 * time.Millisecond)
	wall := time.Since(start)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := c.wait(t)
	var delays []time.Duration
	for _, p := range got {
		// The frame that holds the packet's last sample.
		end := p.PTS + OpusPacketDuration - time.Nanosecond
		j := int(end / fd)
		if end < time.Second || j >= len(written)-3 {
			continue // ffmpeg's start, and the end it holds until Close
		}
		delays = append(delays, p.at.Sub(written[j]))
	}
	slices.Sort(delays)
	if len(delays) < 50 {
		t.Fatalf("got %d packets", len(delays))
	}
	median, p95, worst := delays[len(delays)/2], delays[len(delays)*95/100], delays[len(delays)-1]
	first := got[0].at.Sub(start)
	cpu := tr.cmd.ProcessState.UserTime() + tr.cmd.ProcessState.SystemTime()
	t.Logf("%d packets; added delay: median %v, 95th percentile %v, worst %v; first packet %v after start; "+
		"ffmpeg CPU %v in %v (%.1f%% of a core), %.1f%% of a core after the first second",
		len(got), median.Round(time.Millisecond), p95.Round(time.Millisecond), worst.Round(time.Millisecond),
		first.Round(time.Millisecond), cpu.Round(time.Millisecond), wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(),
		100*steady.Seconds()/steadyWall.Seconds())
	// Generous bounds for a loaded test machine: what is measured is far
	// below.
	if median > 150*time.Millisecond {
		t.Errorf("median added delay %v, want at most 150 ms", median)
	}
}

func TestAACToOpusFFmpegDies(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	clip := encodeAAC(t, 1, 440, 44100, 2)
	tr, err := NewAACToOpus(context.Background(), "ffmpeg", clip.asc)
	if err != nil {
		t.Fatal(err)
	}
	c := collect(tr)
	for _, f := range clip.frames[:10] {
		if err := tr.Write(0, f); err != nil {
			t.Fatal(err)
		}
	}
	tr.cmd.Process.Kill()
	if _, err := c.wait(t); err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("ReadPacket: got %v, want ffmpeg's death", err)
	}
	// Writes fail from then on, without waiting.
	done := make(chan error, 1)
	go func() {
		var err error
		for _, f := range clip.frames {
			if err = tr.Write(0, f); err != nil {
				break
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("Write: got %v, want ffmpeg's death", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write did not return after ffmpeg died")
	}
	if err := tr.Close(); err == nil {
		t.Fatal("Close: got nil, want ffmpeg's death")
	}
}

// TestAACToOpusBadInput: frames that are not AAC make ffmpeg complain, not
// hang.
func TestAACToOpusBadInput(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	clip := encodeAAC(t, 1, 440, 44100, 2)
	tr, err := NewAACToOpus(context.Background(), "ffmpeg", clip.asc)
	if err != nil {
		t.Fatal(err)
	}
	c := collect(tr)
	junk := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 100)
	for range 50 {
		if err := tr.Write(0, junk); err != nil {
			break // ffmpeg may give up: that is fine too
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- tr.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := c.wait(t); err == nil {
		t.Fatal("ReadPacket: got nil error at the end")
	}
	if tr.cmd.ProcessState == nil {
		t.Fatal("ffmpeg was not waited for")
	}
}

func TestAACToOpusContext(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	clip := encodeAAC(t, 1, 440, 44100, 2)
	ctx, cancel := context.WithCancel(context.Background())
	tr, err := NewAACToOpus(ctx, "ffmpeg", clip.asc)
	if err != nil {
		t.Fatal(err)
	}
	c := collect(tr)
	for _, f := range clip.frames[:5] {
		tr.Write(0, f)
	}
	cancel()
	if _, err := c.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadPacket: got %v, want context.Canceled", err)
	}
	tr.Close()
}

func TestNewAACToOpusErrors(t *testing.T) {
	good, _ := (&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}).Marshal()
	for _, tc := range []struct {
		name   string
		ffmpeg string
		asc    []byte
	}{
		{"no ffmpeg", "/nonexistent/ffmpeg", good},
		{"empty config", "ffmpeg", nil},
		{"AAC Main", "ffmpeg", []byte{0x0a, 0x10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewAACToOpus(context.Background(), tc.ffmpeg, tc.asc)
			if err == nil {
				tr.Close()
				t.Fatal("got nil error")
			}
		})
	}
}

func TestPTSAt(t *testing.T) {
	// 48 kHz AAC: a frame is 1024 samples, 21.333 ms.
	tr := &AACToOpus{frameSamples: 1024, sampleRate: 48000}
	ms := time.Millisecond
	// Frames at 0, 21.333 ms, then a gap of 1 s, then regular again.
	fd := samplesToDuration(1024, 48000)
	tr.pts = []time.Duration{0, fd, time.Second + 2*fd, time.Second + 3*fd, time.Second + 4*fd}
	for _, tc := range []struct {
		start int64
		want  time.Duration
	}{
		{-312, -6500 * time.Microsecond}, // before the first frame
		{0, 0},
		{960, 20 * ms},
		{1920, 40 * ms}, // in frame 1
		{2880, time.Second + 2*fd + 60*ms - 2*fd},  // in frame 2, after the gap
		{6000, time.Second + 4*fd + 125*ms - 4*fd}, // beyond frame 4, the last written
	} {
		if got := tr.ptsAt(tc.start); got-tc.want > time.Microsecond || tc.want-got > time.Microsecond {
			t.Errorf("ptsAt(%d): got %v, want %v", tc.start, got, tc.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		want   string
	}{
		{nil, "no message"},
		{[]string{"one\n", "two\n"}, "one; two"},
		{[]string{"a long first line\n", "second\nthird"}, "second; third"},
		{[]string{"0123456789012345678901234567890"}, "0123456789012345678901234567890"[11:]},
	} {
		b := &tailBuffer{max: 20}
		for _, w := range tc.writes {
			b.Write([]byte(w))
		}
		if got := b.String(); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.writes, got, tc.want)
		}
	}
}

// processCPU is the CPU time a running process has used, from Linux's
// /proc (0 elsewhere).
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command's name, which is in parentheses: utime
	// and stime are the 12th and 13th, in clock ticks of 1/100 s.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
