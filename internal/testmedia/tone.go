package testmedia

import (
	"bytes"
	"encoding/binary"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// OpusPacket is one Opus packet and its time from the stream's start.
type OpusPacket struct {
	PTS  time.Duration
	Data []byte
}

// DecodeOpus decodes Opus packets (48 kHz) with ffmpeg into mono
// samples at 48 kHz.
func DecodeOpus(t testing.TB, pkts []OpusPacket) []int16 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audio.ogg")
	w, err := oggwriter.New(path, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		if err := w.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(p.PTS * 48000 / time.Second)},
			Payload: p.Data,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1")
	cmd.Stderr = &stderr
	pcm, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg decoding Opus: %v: %s", err, stderr.String())
	}
	samples := make([]int16, len(pcm)/2)
	binary.Read(bytes.NewReader(pcm), binary.LittleEndian, samples)
	return samples
}

// TonePower is the power of freq in 48 kHz samples (Goertzel), relative
// to the signal's whole power: near 1 for a pure tone of that frequency.
func TonePower(samples []int16, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/48000)
	var s1, s2, total float64
	for _, v := range samples {
		x := float64(v)
		s := x + coeff*s1 - s2
		s2, s1 = s1, s
		total += x * x
	}
	return (s1*s1 + s2*s2 - coeff*s1*s2) / (total * float64(len(samples)) / 2)
}
