// Package clip encodes the media the benchmarks' publishers send, once,
// with ffmpeg, and reads it back into frames and packets: H.264
// constrained baseline at 30 fps without B-frames, a 440 Hz tone as Opus
// in 20 ms packets and, for RTMP encoders, as AAC-LC with an FLV of the
// H.264 and the AAC. The picture is a test pattern with moving noise, so
// that x264 spends the bit rate as on a camera's picture, or a plain
// colour. It serves bench/ingestbench and bench/compositionbench.
package clip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The clips' fixed parameters. Opus is asked for the bit rate the
// server's transcoder gives stereo AAC (package transcode), so that
// media published over RTMP and over WHIP reaches subscribers alike.
const (
	FPS        = 30
	FrameTime  = time.Second / FPS
	SampleRate = 48000
	AACKbps    = 128
	AACSamples = 1024 // an AAC-LC frame
	OpusKbps   = 96
	OpusPacket = 20 * time.Millisecond
	ToneHz     = 440
)

// AACFrameTime is the duration of one AAC frame, 21.33 ms.
const AACFrameTime = time.Duration(AACSamples) * time.Second / SampleRate

// FramePTS is the pts of video frame i: whole seconds at keyframes.
func FramePTS(i int) time.Duration { return time.Duration(i) * time.Second / FPS }

// Spec is what to encode.
type Spec struct {
	// Name is the files' name in the folder (NAME.h264, NAME.ogg ...);
	// "clip" if empty.
	Name string
	// Length is a whole number of KeyInterval.
	Length        time.Duration
	Width, Height int
	Kbps          int // the bit rate asked of x264
	KeyInterval   time.Duration
	// Color makes the picture a plain colour of ffmpeg's (red, 0x2040ff);
	// "" is testsrc2 with moving noise.
	Color string
	// AAC also encodes the tone as AAC-LC and muxes it with the H.264
	// into an FLV file, as RTMP encoders send them.
	AAC bool
}

// Clip is the encoded media, read back into frames and packets.
type Clip struct {
	Spec

	Frames   []Frame
	SPS, PPS []byte
	AAC      [][]byte // raw AAC frames (raw_data_block), AACSamples each
	ASC      mpeg4audio.AudioSpecificConfig
	Opus     [][]byte // OpusPacket each
	FLV      string   // the FLV file's path, with AAC

	videoBytes, aacBytes, opusBytes int
}

// Frame is one access unit: its NAL units, without start codes.
type Frame struct {
	NALUs [][]byte
	Key   bool
}

// Encode has ffmpeg encode s in dir and reads it back.
func Encode(dir string, s Spec) (*Clip, error) {
	switch {
	case s.KeyInterval < FrameTime || s.Length < s.KeyInterval || s.Length%s.KeyInterval != 0:
		return nil, fmt.Errorf("clip: length %v: want a whole number of key intervals (%v)", s.Length, s.KeyInterval)
	case s.Width < 16 || s.Height < 16 || s.Width%2 != 0 || s.Height%2 != 0:
		return nil, fmt.Errorf("clip: size %dx%d: want even sides of 16 or more", s.Width, s.Height)
	case s.Kbps < 1:
		return nil, errors.New("clip: no bit rate")
	}
	if s.Name == "" {
		s.Name = "clip"
	}
	c := &Clip{Spec: s}
	secs := strconv.FormatFloat(s.Length.Seconds(), 'f', -1, 64)
	gop := strconv.Itoa(int(s.KeyInterval / FrameTime))
	rate := strconv.Itoa(s.Kbps) + "k"
	base := filepath.Join(dir, s.Name)
	video, aac, opus := base+".h264", base+".aac", base+".ogg"
	source := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", s.Width, s.Height, FPS), "-t", secs,
		"-vf", "noise=alls=8:allf=t"}
	if s.Color != "" {
		source = []string{"-f", "lavfi", "-i", fmt.Sprintf("color=c=%s:size=%dx%d:rate=%d", s.Color, s.Width, s.Height, FPS), "-t", secs}
	}
	tone := []string{"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=%d", ToneHz, SampleRate), "-t", secs, "-ac", "2"}
	jobs := [][]string{
		append(source, "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
			"-pix_fmt", "yuv420p", "-bf", "0", "-g", gop, "-x264-params", "keyint="+gop+":min-keyint="+gop+":scenecut=0",
			"-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-f", "h264", video),
		append(tone, "-c:a", "libopus", "-b:a", strconv.Itoa(OpusKbps)+"k", "-frame_duration", "20", "-page_duration", "20000", opus),
	}
	if s.AAC {
		c.FLV = base + ".flv"
		jobs = append(jobs,
			append(tone, "-c:a", "aac", "-b:a", strconv.Itoa(AACKbps)+"k", "-f", "adts", aac),
			[]string{"-framerate", strconv.Itoa(FPS), "-i", video, "-i", aac, "-c", "copy", "-f", "flv", c.FLV})
	}
	for _, args := range jobs {
		out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("ffmpeg %v: %w: %s", args, err, bytes.TrimSpace(out))
		}
	}
	if err := c.readVideo(video); err != nil {
		return nil, err
	}
	if err := c.readOpus(opus); err != nil {
		return nil, err
	}
	if s.AAC {
		if err := c.readAAC(aac); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readVideo reads an H.264 byte stream of one slice per picture.
func (c *Clip) readVideo(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		return err
	}
	var cur Frame
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		typ := h264.NALUType(nal.Data[0] & 0x1f)
		switch typ {
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeSPS:
			if c.SPS == nil {
				c.SPS = nal.Data
			}
		case h264.NALUTypePPS:
			if c.PPS == nil {
				c.PPS = nal.Data
			}
		case h264.NALUTypeIDR:
			cur.Key = true
		}
		cur.NALUs = append(cur.NALUs, nal.Data)
		c.videoBytes += len(nal.Data)
		if typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			c.Frames = append(c.Frames, cur)
			cur = Frame{}
		}
	}
	if len(c.Frames) == 0 || !c.Frames[0].Key || c.SPS == nil || c.PPS == nil {
		return errors.New("clip: the video does not start with parameter sets and a keyframe")
	}
	return nil
}

// readAAC reads ADTS.
func (c *Clip) readAAC(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(data); err != nil {
		return fmt.Errorf("clip: the AAC: %w", err)
	}
	if len(pkts) == 0 {
		return errors.New("clip: no AAC")
	}
	p := pkts[0]
	if p.SampleRate != SampleRate {
		return fmt.Errorf("clip: the AAC is at %d Hz, want %d", p.SampleRate, SampleRate)
	}
	c.ASC = mpeg4audio.AudioSpecificConfig{Type: p.Type, SampleRate: p.SampleRate, ChannelConfig: p.ChannelConfig}
	for _, p := range pkts {
		c.AAC = append(c.AAC, p.AU)
		c.aacBytes += len(p.AU)
	}
	return nil
}

// readOpus reads Ogg Opus of one packet per page.
func (c *Clip) readOpus(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return err
	}
	for {
		payload, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		if bytes.HasPrefix(payload, []byte("OpusTags")) {
			continue
		}
		c.Opus = append(c.Opus, payload)
		c.opusBytes += len(payload)
	}
	if len(c.Opus) == 0 {
		return errors.New("clip: no Opus")
	}
	return nil
}

// VideoKbps is the H.264's bit rate, measured on what the clip holds.
func (c *Clip) VideoKbps() float64 {
	return float64(c.videoBytes) * 8 / (time.Duration(len(c.Frames)) * FrameTime).Seconds() / 1000
}

// AACKbps is the AAC's bit rate, 0 without.
func (c *Clip) AACKbps() float64 {
	if len(c.AAC) == 0 {
		return 0
	}
	return float64(c.aacBytes) * 8 / (time.Duration(len(c.AAC)) * AACFrameTime).Seconds() / 1000
}

// OpusKbps is the Opus's bit rate.
func (c *Clip) OpusKbps() float64 {
	return float64(c.opusBytes) * 8 / (time.Duration(len(c.Opus)) * OpusPacket).Seconds() / 1000
}

// AnnexB returns a frame's NAL units with start codes, as the H.264 RTP
// payloader takes them.
func AnnexB(nalus [][]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}
