// Package testmedia makes real media for tests, with ffmpeg: H.264 and
// Opus as a browser would send them, and reads back what a recording
// holds with ffprobe.
package testmedia

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// NeedFFmpeg skips the test without ffmpeg, unless CI is set: CI installs it.
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (CI installs it: apt-get install ffmpeg)", bin)
			}
			t.Skipf("%s is missing", bin)
		}
	}
}

// Media is a publisher's test media, encoded by ffmpeg as a browser would
// send it: H.264 constrained baseline, a keyframe every 2 s, 30 fps,
// 640x360, and Opus in 20 ms packets.
type Media struct {
	Frames [][][]byte // access units, 30 a second
	Opus   [][]byte   // 20 ms packets
}

// Encode returns seconds of media, the video 640x360.
func Encode(t testing.TB, seconds int) Media {
	t.Helper()
	return EncodeSize(t, seconds, 640, 360)
}

// EncodeSize returns seconds of media, the video width x height.
func EncodeSize(t testing.TB, seconds, width, height int) Media {
	t.Helper()
	return encode(t, seconds, "testsrc=size="+strconv.Itoa(width)+"x"+strconv.Itoa(height)+":rate=30", 440)
}

// EncodeColor returns seconds of media whose video is a plain picture of
// color (an ffmpeg colour name or 0xRRGGBB), width x height, and whose
// audio is a tone of toneHz: publishers told apart in a composition by
// where their colour is and which tones are heard.
func EncodeColor(t testing.TB, seconds, width, height int, color string, toneHz int) Media {
	t.Helper()
	return encode(t, seconds, "color=c="+color+":size="+strconv.Itoa(width)+"x"+strconv.Itoa(height)+":rate=30", toneHz)
}

// encode encodes seconds of the lavfi video source and a tone.
func encode(t testing.TB, seconds int, source string, toneHz int) Media {
	t.Helper()
	dir := t.TempDir()
	video, audio := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	d := strconv.Itoa(seconds)
	run("-f", "lavfi", "-i", source, "-t", d, "-c:v", "libx264", "-profile:v", "baseline",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", "60", "-x264-params", "keyint=60:min-keyint=60:scenecut=0", "-f", "h264", video)
	run("-f", "lavfi", "-i", "sine=frequency="+strconv.Itoa(toneHz)+":sample_rate=48000", "-t", d, "-c:a", "libopus", "-b:a", "64k",
		"-frame_duration", "20", "-page_duration", "20000", audio)

	vf, err := os.Open(video)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	nals, err := h264reader.NewReader(vf)
	if err != nil {
		t.Fatal(err)
	}
	var m Media
	var au [][]byte
	for {
		nal, err := nals.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		au = append(au, nal.Data)
		if typ := h264.NALUType(nal.Data[0] & 0x1f); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			m.Frames = append(m.Frames, au) // one slice per picture
			au = nil
		}
	}

	f, err := os.Open(audio)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		m.Opus = append(m.Opus, page)
	}
	return m
}

// Probe is what ffprobe says of a file or URL.
type Probe struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		// FrameRate is the stream's frame rate as ffprobe finds it,
		// "30/1" say.
		FrameRate string `json:"r_frame_rate"`
	} `json:"streams"`
}

// FFprobe probes path.
func FFprobe(t testing.TB, path string) Probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v\n%s", path, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Duration is the format's duration.
func (p Probe) Duration(t testing.TB) time.Duration {
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("duration %q: %v", p.Format.Duration, err)
	}
	return time.Duration(d * float64(time.Second))
}
