package rtmpingest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// handler is the stage side of the tests: it takes one stream key and
// records what its streams receive.
type handler struct {
	key     string
	streams chan *recorder
	// stream, if set, makes the Stream for a key.
	stream  func(key string) *recorder
	started atomic.Int32
}

func newHandler(key string) *handler {
	return &handler{key: key, streams: make(chan *recorder, 10)}
}

func (h *handler) Start(ctx context.Context, key string, protocol Protocol, remote net.Addr) (Stream, error) {
	h.started.Add(1)
	if key != h.key {
		return nil, &Refusal{Code: CodeInvalidStreamKey, Message: "no such stream key"}
	}
	r := newRecorder(protocol)
	if h.stream != nil {
		r = h.stream(key)
	}
	h.streams <- r
	return r, nil
}

type videoAU struct {
	pts      time.Duration
	nalus    [][]byte
	keyframe bool
	track    uint8
}

type opusPacket struct {
	pts  time.Duration
	data []byte
}

// recorder is a Stream that keeps what it is given, and checks that its
// calls do not overlap and come in the documented order.
type recorder struct {
	protocol Protocol
	inCall   atomic.Int32
	mu       sync.Mutex
	begins   int
	info     StreamInfo
	video    []videoAU
	audio    []opusPacket
	errs     []string // broken promises
	endErr   error
	ended    chan struct{}
	// failWith, if set, makes WriteVideo fail with it after failAfter
	// frames.
	failAfter int
	failWith  error
	// gate, if set, holds WriteVideo until it is closed.
	gate chan struct{}
}

func newRecorder(protocol Protocol) *recorder {
	return &recorder{protocol: protocol, ended: make(chan struct{})}
}

func (r *recorder) enter() func() {
	if r.inCall.Add(1) != 1 {
		r.broken("calls overlap")
	}
	return func() { r.inCall.Add(-1) }
}

func (r *recorder) broken(s string) {
	r.mu.Lock()
	r.errs = append(r.errs, s)
	r.mu.Unlock()
}

func (r *recorder) Begin(info StreamInfo) error {
	defer r.enter()()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.begins++
	r.info = info
	if len(r.video)+len(r.audio) > 0 {
		r.errs = append(r.errs, "media before Begin")
	}
	return nil
}

func (r *recorder) WriteVideo(track uint8, pts time.Duration, nalus [][]byte, keyframe bool) error {
	defer r.enter()()
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.begins == 0 {
		r.errs = append(r.errs, "video before Begin")
	}
	if !slices.ContainsFunc(r.info.Video, func(v VideoTrack) bool { return v.ID == track }) {
		r.errs = append(r.errs, fmt.Sprintf("video of track %d, not in Begin", track))
	}
	r.video = append(r.video, videoAU{pts, nalus, keyframe, track})
	if r.failWith != nil && len(r.video) >= r.failAfter {
		return r.failWith
	}
	return nil
}

func (r *recorder) WriteAudio(pts time.Duration, opus []byte) error {
	defer r.enter()()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.begins == 0 {
		r.errs = append(r.errs, "audio before Begin")
	}
	r.audio = append(r.audio, opusPacket{pts, opus})
	return nil
}

func (r *recorder) End(err error) {
	defer r.enter()()
	r.mu.Lock()
	r.endErr = err
	r.mu.Unlock()
	close(r.ended)
}

// wait waits for End and returns its error.
func (r *recorder) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.ended:
	case <-time.After(15 * time.Second):
		t.Fatal("the stream did not end")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 0 {
		t.Errorf("the Stream's calls: %v", r.errs)
	}
	return r.endErr
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// serve starts a Server on a local port, plain or with TLS, and returns
// the URL to publish to, without the key.
func serve(t *testing.T, cfg Config, protocol Protocol) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "rtmp"
	if protocol == ProtocolRTMPS {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
		scheme = "rtmps"
	}
	s := NewServer(cfg)
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), ln, protocol) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: got %v, want ErrClosed", err)
		}
	})
	return s, fmt.Sprintf("%s://%s/app/", scheme, ln.Addr())
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// encoder is how ffmpeg publishes in a test.
type encoder struct {
	seconds float64
	size    string   // of the picture, 640x360 by default
	video   []string // video codec options, H.264 baseline without B-frames by default
	audio   []string // audio codec options, AAC by default; nil for none
	noAudio bool
}

// publish runs ffmpeg as an encoder publishing a test pattern and a tone
// in real time to url, and returns its error and standard error.
func publish(t *testing.T, url string, e encoder) (string, error) {
	t.Helper()
	if e.seconds == 0 {
		e.seconds = 3
	}
	if e.size == "" {
		e.size = "640x360"
	}
	if e.video == nil {
		e.video = []string{"-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	}
	if e.audio == nil {
		e.audio = []string{"-c:a", "aac"}
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=" + e.size + ":rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", fmt.Sprint(e.seconds)}
	args = append(args, e.video...)
	if e.noAudio {
		args = append(args, "-an")
	} else {
		args = append(args, e.audio...)
	}
	args = append(args, "-f", "flv", url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(e.seconds*float64(time.Second))+20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	return strings.TrimSpace(stderr.String()), err
}

func TestPublish(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	for _, protocol := range []Protocol{ProtocolRTMP, ProtocolRTMPS} {
		t.Run(string(protocol), func(t *testing.T) {
			t.Parallel()
			h := newHandler("sk_test")
			_, url := serve(t, Config{Handler: h, FFmpeg: "ffmpeg"}, protocol)
			start := time.Now()
			if out, err := publish(t, url+"sk_test", encoder{seconds: 3}); err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, out)
			}
			elapsed := time.Since(start)
			r := <-h.streams
			if err := r.wait(t); err != nil {
				t.Fatalf("End: got %v, want nil", err)
			}
			if r.protocol != protocol {
				t.Errorf("protocol: got %s, want %s", r.protocol, protocol)
			}
			checkMedia(t, r, 3*time.Second, 640, 360)
			t.Logf("%d video frames, %d Opus packets in %v", len(r.video), len(r.audio), elapsed.Round(time.Millisecond))
		})
	}
}

// checkMedia checks a stream of d of the test pattern and the tone.
func checkMedia(t *testing.T, r *recorder, d time.Duration, width, height int) {
	t.Helper()
	if r.begins != 1 {
		t.Fatalf("Begin called %d times, want 1", r.begins)
	}
	info := r.info
	if len(info.Video) != 1 {
		t.Fatalf("StreamInfo: %d video tracks, want 1", len(info.Video))
	}
	v := info.Video[0]
	if v.ID != 0 || v.Width != width || v.Height != height || len(v.SPS) == 0 || len(v.PPS) == 0 ||
		info.AudioSampleRate != 44100 || info.AudioChannels != 1 {
		t.Errorf("StreamInfo: got track %d %dx%d, SPS %d bytes, PPS %d bytes, %d Hz, %d channels; want track 0 %dx%d, 44100 Hz, 1 channel",
			v.ID, v.Width, v.Height, len(v.SPS), len(v.PPS), info.AudioSampleRate, info.AudioChannels, width, height)
	}

	// Video: 30 frames a second, a keyframe each second with its
	// parameter sets, pts rising.
	frames := int(d.Seconds() * 30)
	if n := len(r.video); n < frames-5 || n > frames+1 {
		t.Errorf("got %d video frames, want %d", n, frames)
	}
	keyframes := 0
	var annexB bytes.Buffer
	for i, au := range r.video {
		if i == 0 && !au.keyframe {
			t.Errorf("the first frame is not a keyframe")
		}
		if i > 0 && au.pts <= r.video[i-1].pts {
			t.Errorf("frame %d: pts %v after %v", i, au.pts, r.video[i-1].pts)
		}
		hasIDR := false
		for _, n := range au.nalus {
			if h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
				hasIDR = true
			}
			annexB.Write([]byte{0, 0, 0, 1})
			annexB.Write(n)
		}
		if hasIDR != au.keyframe {
			t.Errorf("frame %d: keyframe %v, IDR %v", i, au.keyframe, hasIDR)
		}
		if au.keyframe {
			keyframes++
			if len(au.nalus) < 3 || h264.NALUType(au.nalus[0][0]&0x1f) != h264.NALUTypeSPS ||
				h264.NALUType(au.nalus[1][0]&0x1f) != h264.NALUTypePPS {
				t.Errorf("keyframe %d does not start with SPS and PPS", i)
			}
		}
	}
	if want := int(d.Seconds()); keyframes < want {
		t.Errorf("got %d keyframes, want %d", keyframes, want)
	}
	if last := r.video[len(r.video)-1].pts; last < d-200*time.Millisecond || last > d {
		t.Errorf("the last frame's pts is %v, want about %v", last, d)
	}
	// The access units decode to the picture the encoder sent.
	path := filepath.Join(t.TempDir(), "video.h264")
	if err := os.WriteFile(path, annexB.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testmedia.FFprobe(t, path)
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != width || p.Streams[0].Height != height {
		t.Errorf("ffprobe: %+v, want H.264 %dx%d", p.Streams, width, height)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("decoding the video: %v: %s", err, out)
	}

	// Audio: 20 ms packets all along, with the tone.
	packets := int(d / (20 * time.Millisecond))
	if n := len(r.audio); n < packets-15 || n > packets+5 {
		t.Errorf("got %d Opus packets, want %d", n, packets)
	}
	for i, a := range r.audio {
		if i > 0 && a.pts != r.audio[i-1].pts+20*time.Millisecond {
			d := a.pts - r.audio[i-1].pts
			// AAC frames of 1024 samples hold 23.2 ms; their 1 ms
			// timestamps on RTMP may move a packet by a millisecond.
			if d < 19*time.Millisecond || d > 21*time.Millisecond {
				t.Errorf("packet %d: pts %v after %v", i, a.pts, r.audio[i-1].pts)
			}
		}
	}
	if first := r.audio[0].pts; first > 50*time.Millisecond {
		t.Errorf("the first Opus packet's pts is %v, want about 0", first)
	}
	pkts := make([]testmedia.OpusPacket, len(r.audio))
	for i, p := range r.audio {
		pkts[i] = testmedia.OpusPacket{PTS: p.pts, Data: p.data}
	}
	samples := testmedia.DecodeOpus(t, pkts)
	tone, other := testmedia.TonePower(samples, 440), testmedia.TonePower(samples, 1000)
	if tone < 0.5 || other > 0.01 {
		t.Errorf("the 440 Hz tone is not there: power at 440 Hz %.2f, at 1000 Hz %.4f", tone, other)
	}
}

// TestRefusals publishes streams that break IVS's rules: the encoder is
// told why, and so is the Stream.
func TestRefusals(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	h264Main := []string{"-c:v", "libx264", "-profile:v", "main", "-bf", "2", "-g", "30", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	for _, tc := range []struct {
		name    string
		key     string
		cfg     Config
		enc     encoder
		code    string
		started bool // whether Start is called
	}{
		{name: "wrong key", key: "sk_wrong", enc: encoder{seconds: 2}, code: CodeInvalidStreamKey, started: true},
		{name: "no key", key: "", enc: encoder{seconds: 2}, code: CodeInvalidStreamKey},
		{name: "no ffmpeg", key: "sk_test", cfg: Config{FFmpeg: ""}, enc: encoder{seconds: 2}, code: CodeInternalServerException},
		{name: "B-frames", key: "sk_test", enc: encoder{seconds: 3, video: h264Main}, code: CodeBFramePresent, started: true},
		{name: "1080p", key: "sk_test", enc: encoder{seconds: 2, size: "1920x1080"}, code: CodeResolutionExceeded, started: true},
		{name: "no audio", key: "sk_test", enc: encoder{seconds: 5, noAudio: true}, code: CodeInvalidInput, started: true},
		{name: "Sorenson H.263", key: "sk_test", enc: encoder{seconds: 2, video: []string{"-c:v", "flv1"}}, code: CodeInvalidVideoCodec, started: true},
		{name: "MP3", key: "sk_test", enc: encoder{seconds: 2, audio: []string{"-c:a", "libmp3lame"}}, code: CodeInvalidAudioCodec, started: true},
		{name: "PCM", key: "sk_test", enc: encoder{seconds: 2, audio: []string{"-c:a", "pcm_s16le"}}, code: CodeInvalidAudioCodec, started: true},
		{name: "bitrate", key: "sk_test", cfg: Config{MaxBitrate: 300_000},
			enc:  encoder{seconds: 8, video: []string{"-c:v", "libx264", "-bf", "0", "-b:v", "1M", "-minrate", "1M", "-maxrate", "1M", "-bufsize", "500k", "-x264-params", "nal-hrd=cbr", "-preset", "veryfast"}},
			code: CodeBitrateExceeded, started: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHandler("sk_test")
			cfg := tc.cfg
			cfg.Handler = h
			if tc.name != "no ffmpeg" {
				cfg.FFmpeg = "ffmpeg"
			}
			_, url := serve(t, cfg, ProtocolRTMP)
			out, err := publish(t, url+tc.key, tc.enc)
			if err == nil {
				t.Fatalf("ffmpeg published without an error: %s", out)
			}
			if !strings.Contains(out, tc.code) {
				t.Errorf("ffmpeg's error: got %q, want %s", out, tc.code)
			}
			if tc.started != (h.started.Load() > 0) {
				t.Errorf("Start called: got %v, want %v", h.started.Load() > 0, tc.started)
			}
			if !tc.started || tc.key != "sk_test" {
				return
			}
			r := <-h.streams
			var refusal *Refusal
			if err := r.wait(t); !errors.As(err, &refusal) || refusal.Code != tc.code {
				t.Fatalf("End: got %v, want a refusal with %s", err, tc.code)
			}
			t.Logf("%s; ffmpeg said: %s", refusal, out)
		})
	}
}

func TestPortrait(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	h := newHandler("sk_test")
	_, url := serve(t, Config{Handler: h, FFmpeg: "ffmpeg"}, ProtocolRTMP)
	if out, err := publish(t, url+"sk_test", encoder{seconds: 2, size: "720x1280"}); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	r := <-h.streams
	if err := r.wait(t); err != nil {
		t.Fatalf("End: got %v, want nil", err)
	}
	checkMedia(t, r, 2*time.Second, 720, 1280)
}

// TestServerClose closes the server during a stream: the stream ends with
// ErrClosed, the encoder is disconnected, and Close does not wait long.
func TestServerClose(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	h := newHandler("sk_test")
	s, url := serve(t, Config{Handler: h, FFmpeg: "ffmpeg"}, ProtocolRTMP)
	published := make(chan error, 1)
	go func() {
		_, err := publish(t, url+"sk_test", encoder{seconds: 30})
		published <- err
	}()
	r := <-h.streams
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.video) > 10 && len(r.audio) > 10 })
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := r.wait(t); !errors.Is(err, ErrClosed) {
		t.Errorf("End: got %v, want ErrClosed", err)
	}
	select {
	case err := <-published:
		if err == nil {
			t.Error("ffmpeg: got nil error, want a disconnection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ffmpeg went on after Close")
	}
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStreamFails: the stage ends a stream by an error from WriteVideo; a
// *Refusal is told to the encoder.
func TestStreamFails(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"refusal", &Refusal{Code: CodeInternalServerException, Message: "the stage is gone"}},
		{"error", errors.New("the participant was disconnected")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHandler("sk_test")
			h.stream = func(string) *recorder {
				r := newRecorder(ProtocolRTMP)
				r.failAfter, r.failWith = 30, tc.err
				return r
			}
			_, url := serve(t, Config{Handler: h, FFmpeg: "ffmpeg"}, ProtocolRTMP)
			out, err := publish(t, url+"sk_test", encoder{seconds: 5})
			if err == nil {
				t.Fatalf("ffmpeg published without an error: %s", out)
			}
			r := <-h.streams
			if err := r.wait(t); err != tc.err {
				t.Errorf("End: got %v, want %v", err, tc.err)
			}
			if n := len(r.video); n != 30 {
				t.Errorf("WriteVideo called %d times after it failed", n-30)
			}
			var refusal *Refusal
			if errors.As(tc.err, &refusal) && !strings.Contains(out, refusal.Code) {
				t.Errorf("ffmpeg's error: got %q, want %s", out, refusal.Code)
			}
		})
	}
}

// TestSlowStream: a Stream that does not return holds up its own encoder
// only.
func TestSlowStream(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	gate := make(chan struct{})
	h := newHandler("")
	h.stream = func(key string) *recorder {
		r := newRecorder(ProtocolRTMP)
		if key == "slow" {
			r.gate = gate
		}
		return r
	}
	s, url := serve(t, Config{Handler: anyKey{h}, FFmpeg: "ffmpeg"}, ProtocolRTMP)
	slowDone := make(chan error, 1)
	go func() {
		_, err := publish(t, url+"slow", encoder{seconds: 20})
		slowDone <- err
	}()
	slow := <-h.streams
	if out, err := publish(t, url+"fast", encoder{seconds: 3}); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	fast := <-h.streams
	if err := fast.wait(t); err != nil {
		t.Fatalf("End: got %v, want nil", err)
	}
	checkMedia(t, fast, 3*time.Second, 640, 360)
	close(gate)
	s.Close()
	slow.wait(t)
	<-slowDone
}

// anyKey takes every key.
type anyKey struct{ *handler }

func (a anyKey) Start(ctx context.Context, key string, protocol Protocol, remote net.Addr) (Stream, error) {
	a.handler.key = key
	return a.handler.Start(ctx, key, protocol, remote)
}

// TestTranscoderDies: ffmpeg turning AAC into Opus dies during the stream,
// which ends with INTERNAL_SERVER_EXCEPTION.
func TestTranscoderDies(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	script := filepath.Join(t.TempDir(), "ffmpeg")
	// Killed 3 s in: a loaded machine's ffmpeg takes a second or more to
	// give its first packet.
	if err := os.WriteFile(script, []byte("#!/bin/sh\n(sleep 3; kill -9 $$) </dev/null >/dev/null 2>&1 &\nexec ffmpeg \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHandler("sk_test")
	_, url := serve(t, Config{Handler: h, FFmpeg: script}, ProtocolRTMP)
	out, err := publish(t, url+"sk_test", encoder{seconds: 8})
	if err == nil || !strings.Contains(out, CodeInternalServerException) {
		t.Errorf("ffmpeg: got %v: %q, want %s", err, out, CodeInternalServerException)
	}
	r := <-h.streams
	var refusal *Refusal
	if err := r.wait(t); !errors.As(err, &refusal) || refusal.Code != CodeInternalServerException {
		t.Fatalf("End: got %v, want %s", err, CodeInternalServerException)
	}
	if len(r.audio) == 0 {
		t.Error("no audio before ffmpeg died")
	}
}

// TestPlayRefused: players are turned away.
func TestPlayRefused(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	t.Parallel()
	h := newHandler("sk_test")
	_, url := serve(t, Config{Handler: h, FFmpeg: "ffmpeg"}, ProtocolRTMP)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", url+"sk_test", "-t", "1", "-f", "null", "-").CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("ffmpeg played: %v: %s", err, out)
	}
	if h.started.Load() != 0 {
		t.Error("Start was called for a player")
	}
}
