package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/composition/layout"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// TestAudioMix: the tones of two inputs are both in the output's AAC.
func TestAudioMix(t *testing.T) {
	checkNoLeak(t)
	low := colorClip(t, "red", 440, 160, 90)
	high := colorClip(t, "blue", 1000, 160, 90)
	out, playlist := hlsOutput(t)
	e := newEngine(t, Config{Width: 320, Height: 180, Outputs: []Output{out}})
	for id, m := range map[string]testmedia.Media{"low": low, "high": high} {
		in, err := e.AddInput(id)
		if err != nil {
			t.Fatal(err)
		}
		defer sender(in, m)()
	}
	// Each input's audio decoder takes seconds to start on a loaded
	// machine: the mix is measured from when both have given half a
	// second of sound.
	const halfSecond = 48000 * 4 / 2
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		s := e.Stats().Inputs
		if s["low"].PCMDecoded >= halfSecond && s["high"].PCMDecoded >= halfSecond {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	from := max(time.Second, outputPos(e)+500*time.Millisecond)
	waitOutput(t, e, from+2500*time.Millisecond)
	t.Logf("%+v; measured from %v", e.Stats(), from)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	pcm := ffmpeg(t, "-ss", fmt.Sprintf("%.2f", from.Seconds()), "-i", playlist, "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1")
	samples := make([]int16, len(pcm)/2)
	binary.Read(bytes.NewReader(pcm), binary.LittleEndian, samples)
	if len(samples) < 48000*2 {
		t.Fatalf("%d samples after %v, want 2 s or more", len(samples), from)
	}
	// Measured over 100 ms windows: the clips loop every second, and a
	// tone's phase jump at the loop would cancel a longer measure.
	var p440, p1000 float64
	n := 0
	for i := 0; i+4800 <= len(samples); i += 4800 {
		p440 += testmedia.TonePower(samples[i:i+4800], 440)
		p1000 += testmedia.TonePower(samples[i:i+4800], 1000)
		n++
	}
	p440, p1000 = p440/float64(n), p1000/float64(n)
	if p440 < 0.2 || p1000 < 0.2 || p440+p1000 < 0.8 {
		t.Errorf("power at 440 Hz %.2f, at 1000 Hz %.2f: want both tones, about half each", p440, p1000)
	}
}

// TestRTMPAndHLS: one encode goes to an RTMP server (ffmpeg listening)
// and to HLS at once, both playable.
func TestRTMPAndHLS(t *testing.T) {
	checkNoLeak(t)
	red := colorClip(t, "red", 440, 320, 180)
	testmedia.NeedFFmpeg(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	flv := filepath.Join(t.TempDir(), "received.flv")
	var stderr bytes.Buffer
	server := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-listen", "1", "-f", "flv",
		"-i", fmt.Sprintf("rtmp://127.0.0.1:%d/app/key", port), "-c", "copy", "-f", "flv", flv)
	server.Stderr = &stderr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	var serverErr error
	served := make(chan struct{})
	go func() {
		serverErr = server.Wait()
		close(served)
	}()
	defer func() {
		server.Process.Kill()
		<-served
	}()
	waitListening(t, port)

	out, playlist := hlsOutput(t)
	e := newEngine(t, Config{Width: 640, Height: 360, Outputs: []Output{
		{RTMP: fmt.Sprintf("rtmp://127.0.0.1:%d/app/key", port)}, out}})
	in, err := e.AddInput("a")
	if err != nil {
		t.Fatal(err)
	}
	e.SetLayout([]layout.Tile{tile("a", layout.Rect{Width: 640, Height: 360})})
	stop := sender(in, red)
	shown := waitDecoded(t, e, 5, "a") + 500*time.Millisecond
	waitOutput(t, e, max(shown+time.Second, 3*time.Second))
	stop()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
		if serverErr != nil {
			t.Fatalf("RTMP server: %v: %s", serverErr, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the RTMP server did not see the stream end")
	}
	for _, path := range []string{flv, playlist} {
		p := testmedia.FFprobe(t, path)
		var codecs []string
		for _, s := range p.Streams {
			codecs = append(codecs, s.CodecName)
		}
		if strings.Join(codecs, ",") != "h264,aac" && strings.Join(codecs, ",") != "aac,h264" {
			t.Errorf("%s: codecs %v, want h264 and aac", filepath.Base(path), codecs)
		}
		if d := p.Duration(t); d < shown+500*time.Millisecond {
			t.Errorf("%s: %v long, want %v or more", filepath.Base(path), d, shown+500*time.Millisecond)
		}
	}
	wantColors(t, frameAt(t, flv, shown.Seconds(), 640, 360), 640, fmt.Sprintf("RTMP at %.2f s", shown.Seconds()),
		map[layout.Rect]string{{Width: 640, Height: 360}: "red"})
}

// waitListening waits until something listens on the local TCP port,
// reading /proc rather than connecting: ffmpeg's RTMP server takes one
// connection only.
func waitListening(t *testing.T, port int) {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f, err := os.Open("/proc/net/tcp")
		if err != nil {
			t.Skipf("no /proc/net/tcp: %v", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 3 && strings.HasSuffix(fields[1]+" ", want) && fields[3] == "0A" {
				f.Close()
				return
			}
		}
		f.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

// TestDecoderKilled: a killed video decoder is reported, restarted, and
// its picture comes back, while the output goes on.
func TestDecoderKilled(t *testing.T) {
	checkNoLeak(t)
	red := colorClip(t, "red", 440, 320, 180)
	out, playlist := hlsOutput(t)
	var reported atomic.Int64
	e := newEngine(t, Config{Width: 320, Height: 180, Outputs: []Output{out},
		OnInputError: func(id string, err error) {
			t.Logf("input %s: %v", id, err)
			reported.Add(1)
		}})
	in, err := e.AddInput("a")
	if err != nil {
		t.Fatal(err)
	}
	full := layout.Rect{Width: 320, Height: 180}
	e.SetLayout([]layout.Tile{tile("a", full)})
	defer sender(in, red)()
	waitDecoded(t, e, 5, "a")
	pid := in.videoPID.Load()
	if pid == 0 {
		t.Fatal("no video decoder running")
	}
	syscall.Kill(int(pid), syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for (reported.Load() == 0 || in.videoPID.Load() == pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if reported.Load() == 0 || in.videoPID.Load() == pid {
		t.Fatalf("after the kill: %d errors reported, decoder pid %d (was %d)", reported.Load(), in.videoPID.Load(), pid)
	}
	// The new decoder takes seconds to start on a loaded machine: the
	// picture is checked once it has given pictures again.
	back := waitDecoded(t, e, e.Stats().Inputs["a"].Frames+5, "a") + 500*time.Millisecond
	waitOutput(t, e, back+time.Second)
	t.Logf("%+v; checked at %v", e.Stats(), back)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	d, ok := playlistDuration(t, playlist)
	if !ok || d < back+500*time.Millisecond {
		t.Errorf("playlist %v long, continuous and ended %v; want one stream past %v", d, ok, back)
	}
	wantColors(t, frameAt(t, playlist, back.Seconds(), 320, 180), 320, fmt.Sprintf("at %.2f s", back.Seconds()), map[layout.Rect]string{full: "red"})
}

// TestEncoderKilled: a killed encoder ends the engine with an error.
func TestEncoderKilled(t *testing.T) {
	checkNoLeak(t)
	out, _ := hlsOutput(t)
	e := newEngine(t, Config{Width: 320, Height: 180, Outputs: []Output{out}})
	in, err := e.AddInput("a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go send(ctx, in, colorClip(t, "red", 440, 160, 90), true)
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(e.enc.pid(), syscall.SIGKILL)
	select {
	case <-e.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the engine did not end")
	}
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "encoder") {
		t.Errorf("error %v, want the encoder's", err)
	}
	if err := e.Close(); err == nil {
		t.Error("Close after a failure returned nil")
	}
	if _, err := e.AddInput("b"); err == nil {
		t.Error("AddInput after the end succeeded")
	}
}

// TestNoFFmpeg: a missing ffmpeg is named in the error.
func TestNoFFmpeg(t *testing.T) {
	_, err := New(context.Background(), Config{FFmpeg: "/nonexistent/ffmpeg", Outputs: []Output{{RTMP: "rtmp://x/y"}}})
	if err == nil || !strings.Contains(err.Error(), "Config.FFmpeg") {
		t.Fatalf("error %v, want one naming Config.FFmpeg", err)
	}
}
