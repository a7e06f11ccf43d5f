// Package transcode turns AAC audio into Opus through an ffmpeg subprocess.
//
// An RTMP encoder sends AAC, and WebRTC receivers need Opus; Go has neither
// an AAC decoder nor an Opus encoder, so ffmpeg (libopus) does the work: it
// reads ADTS frames on its standard input and writes Ogg Opus on its
// standard output, one 20 ms packet per Ogg page, flushed as soon as it is
// made.
package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Opus packets are 20 ms at 48 kHz, as WebRTC sends them.
const (
	opusRate          = 48000
	opusPacketSamples = opusRate / 50
	// OpusPacketDuration is the duration of every packet AACToOpus makes.
	OpusPacketDuration = 20 * time.Millisecond
)

// Bit rates of the Opus stream: what WebRTC encoders spend on music.
const (
	monoBitrate   = "48k"
	stereoBitrate = "96k"
)

const (
	// writeTimeout bounds a write to ffmpeg: its input pipe holds seconds of
	// AAC, so a write that waits this long means ffmpeg no longer reads.
	writeTimeout = 5 * time.Second
	// exitTimeout is how long Close waits for ffmpeg to finish once its
	// input is closed, before killing it.
	exitTimeout = 2 * time.Second
	// packetQueue is how many packets wait for ReadPacket before ffmpeg's
	// output is no longer read (and ffmpeg, then Write, wait in turn).
	packetQueue = 50
	// stderrTail is how much of ffmpeg's standard error is kept for the
	// error message: its last lines, which say why it stopped.
	stderrTail = 512
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("transcode: closed")

// Packet is one Opus packet of 20 ms at 48 kHz.
type Packet struct {
	// PTS is the presentation time of the packet's first sample, on the
	// clock of the pts given to Write.
	PTS  time.Duration
	Data []byte
}

// AACToOpus is one running ffmpeg that turns an AAC stream into Opus.
// Write and ReadPacket are meant to be called from two goroutines: Write
// from the one that receives AAC, ReadPacket from one that forwards Opus.
type AACToOpus struct {
	ctx    context.Context
	cmd    *exec.Cmd
	stdin  *os.File
	stderr *tailBuffer
	header mpeg4audio.ADTSPacket // all but the AU: the same for every frame

	// frameSamples and sampleRate give an AAC frame's duration: frame i
	// starts i*frameSamples/sampleRate seconds into the decoded audio.
	frameSamples, sampleRate int64
	started                  time.Time

	mu      sync.Mutex
	closed  bool
	first   int64           // index of pts[0] among the frames written
	pts     []time.Duration // pts of the frames written, from first on
	stopped chan struct{}   // closed when Close gives up on ffmpeg: its output is unwanted

	packets chan Packet
	done    chan struct{} // closed when ffmpeg has exited and err is set
	err     error         // why the output ended: io.EOF after Close
}

// NewAACToOpus starts ffmpeg (the program at ffmpeg) to turn AAC with the
// given AudioSpecificConfig (ISO 14496-3 1.6.2.1: AAC-LC, HE-AAC or
// HE-AACv2) into Opus: 48 kHz, mono for a mono source and stereo
// otherwise. ffmpeg ends with ctx.
func NewAACToOpus(ctx context.Context, ffmpeg string, asc []byte) (*AACToOpus, error) {
	var conf mpeg4audio.AudioSpecificConfig
	if err := conf.Unmarshal(asc); err != nil {
		return nil, fmt.Errorf("transcode: AudioSpecificConfig: %w", err)
	}
	t := &AACToOpus{
		ctx:          ctx,
		stderr:       &tailBuffer{max: stderrTail},
		frameSamples: 1024,
		sampleRate:   int64(conf.SampleRate),
		stopped:      make(chan struct{}),
		packets:      make(chan Packet, packetQueue),
		done:         make(chan struct{}),
	}
	if conf.FrameLengthFlag {
		t.frameSamples = 960
	}
	if t.sampleRate <= 0 {
		return nil, fmt.Errorf("transcode: AudioSpecificConfig: sample rate %d", conf.SampleRate)
	}
	// ADTS carries AAC-LC and its core sample rate only; a decoder finds
	// SBR and PS (HE-AAC) in the frames themselves (ISO 14496-3 1.6.5).
	t.header = mpeg4audio.ADTSPacket{
		Type:          mpeg4audio.ObjectTypeAACLC,
		SampleRate:    conf.SampleRate,
		ChannelConfig: conf.ChannelConfig,
	}
	if _, err := (mpeg4audio.ADTSPackets{&mpeg4audio.ADTSPacket{
		Type: t.header.Type, SampleRate: t.header.SampleRate, ChannelConfig: t.header.ChannelConfig, AU: []byte{0},
	}}).Marshal(); err != nil {
		return nil, fmt.Errorf("transcode: AAC with %d Hz, channel configuration %d: %w", conf.SampleRate, conf.ChannelConfig, err)
	}
	channels, bitrate := "2", stereoBitrate
	if conf.ChannelConfig == 1 && conf.ExtensionType != mpeg4audio.ObjectTypePS {
		channels, bitrate = "1", monoBitrate
	}

	t.cmd = exec.CommandContext(ctx, ffmpeg,
		"-hide_banner", "-loglevel", "error", "-nostdin",
		// Start on the first frame: the ADTS header says all there is to
		// know. (Measured: the first packet comes 0.2 s after the start
		// instead of 1.2 s. -fflags +nobuffer or a -probesize under a
		// frame would hold one more AAC frame, 23 ms, all along.)
		"-analyzeduration", "1",
		"-f", "aac", "-i", "pipe:0",
		"-vn", "-ac", channels, "-ar", "48000",
		"-c:a", "libopus", "-b:a", bitrate, "-frame_duration", "20", "-threads", "1",
		// One packet per Ogg page, each page written when made.
		"-page_duration", "20000", "-flush_packets", "1",
		"-f", "ogg", "pipe:1")
	t.cmd.Stderr = t.stderr
	// WaitDelay bounds Wait if ffmpeg's pipes outlive it.
	t.cmd.WaitDelay = exitTimeout

	// os.Pipe rather than cmd.StdinPipe: its write end takes deadlines.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("transcode: %w", err)
	}
	t.cmd.Stdin = inR
	t.stdin = inW
	stdout, err := t.cmd.StdoutPipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("transcode: %w", err)
	}
	if err := t.cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("transcode: starting ffmpeg: %w", err)
	}
	inR.Close() // ffmpeg has its own copy
	t.started = time.Now()
	go t.read(stdout)
	return t, nil
}

// Write gives ffmpeg one AAC frame (a raw_data_block, as RTMP and MP4 carry
// it) whose first sample is at pts. It fails once ffmpeg has failed, with
// ffmpeg's error message; Write is not for concurrent use.
func (t *AACToOpus) Write(pts time.Duration, frame []byte) error {
	// An ADTS frame length, header included, has 13 bits.
	if len(frame) == 0 || len(frame)+7 > 1<<13-1 {
		return fmt.Errorf("transcode: AAC frame of %d bytes", len(frame))
	}
	h := t.header
	h.AU = frame
	buf, err := mpeg4audio.ADTSPackets{&h}.Marshal()
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.pts = append(t.pts, pts)
	t.mu.Unlock()

	select {
	case <-t.done:
		return t.err
	default:
	}
	if err := t.stdin.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	if _, err := t.stdin.Write(buf); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.kill()
			<-t.done
			return fmt.Errorf("transcode: ffmpeg read no input for %v", writeTimeout)
		}
		// A broken pipe: ffmpeg has exited, and its exit tells why.
		select {
		case <-t.done:
			return t.err
		case <-time.After(exitTimeout):
			t.kill()
			return fmt.Errorf("transcode: writing to ffmpeg: %w", err)
		}
	}
	return nil
}

// ReadPacket returns the next Opus packet. After Close it returns io.EOF;
// when ffmpeg fails it returns an error with ffmpeg's message.
func (t *AACToOpus) ReadPacket() (Packet, error) {
	p, ok := <-t.packets
	if !ok {
		return Packet{}, t.err
	}
	return p, nil
}

// Close ends ffmpeg's input and waits for ffmpeg to turn what it still
// holds into packets, which ReadPacket goes on returning, and to exit; so a
// stream that ends cleanly keeps its last fraction of a second of audio.
// After exitTimeout the rest is dropped and ffmpeg killed: the packets must
// be read meanwhile. Close returns ffmpeg's error if it had failed.
func (t *AACToOpus) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.done
		return t.closeErr()
	}
	t.closed = true
	t.mu.Unlock()

	t.stdin.Close()
	select {
	case <-t.done:
	case <-time.After(exitTimeout):
		close(t.stopped)
		t.kill()
		<-t.done
	}
	return t.closeErr()
}

func (t *AACToOpus) closeErr() error {
	if errors.Is(t.err, io.EOF) {
		return nil
	}
	return t.err
}

func (t *AACToOpus) kill() {
	if t.cmd.Process != nil {
		t.cmd.Process.Kill() // it may have exited already
	}
}

// read turns ffmpeg's Ogg output into packets until ffmpeg exits, then
// records why it did.
func (t *AACToOpus) read(stdout io.Reader) {
	readErr := t.readOgg(stdout)
	if readErr != nil {
		// Broken output: ffmpeg is no use any more, and it must not
		// block on a full pipe.
		t.kill()
		io.Copy(io.Discard, stdout)
	}
	waitErr := t.cmd.Wait()
	t.stdin.Close()

	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	switch {
	case readErr != nil:
		t.err = fmt.Errorf("transcode: reading ffmpeg's output: %w", readErr)
	case closed && waitErr == nil:
		t.err = io.EOF
	case t.ctx.Err() != nil:
		t.err = fmt.Errorf("transcode: ffmpeg stopped: %w", context.Cause(t.ctx))
	case waitErr != nil:
		t.err = fmt.Errorf("transcode: ffmpeg: %w: %s", waitErr, t.stderr.String())
	default:
		t.err = fmt.Errorf("transcode: ffmpeg ended before its input did: %s", t.stderr.String())
	}
	close(t.done)
	close(t.packets)
}

// readOgg reads Ogg Opus (RFC 7845) until the end of stdout. ffmpeg puts
// one packet in each page, so a page's payload is a packet.
func (t *AACToOpus) readOgg(stdout io.Reader) error {
	r, head, err := oggreader.NewWith(stdout)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil // ffmpeg ended before its first packet; Wait says why
	} else if err != nil {
		return err
	}
	var granule uint64
	for {
		payload, page, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if _, ok := page.HeaderType(payload); ok {
			continue // OpusTags
		}
		// The granule position counts the samples decoded to the end
		// of the page, pre-skip included (RFC 7845 section 4).
		n := page.GranulePosition - granule
		if n > opusPacketSamples || page.GranulePosition < granule {
			return fmt.Errorf("an Ogg page of %d samples: one 20 ms packet a page was expected", int64(n))
		}
		start := int64(granule) - int64(head.PreSkip)
		granule = page.GranulePosition
		if len(payload) == 0 {
			continue
		}
		p := Packet{PTS: t.ptsAt(start), Data: payload}
		select {
		case <-t.stopped:
			continue // drained, so that ffmpeg may end
		default:
		}
		select {
		case t.packets <- p:
		case <-t.stopped:
		}
	}
}

// ptsAt is the pts of the AAC sample at the Opus stream's sample start
// (48 kHz): ffmpeg decodes the frames one after the other, so the sample
// falls in frame start*rate/48000/frameSamples, and takes that frame's pts.
// Timestamps of the frames need not be regular: a gap in them is kept.
func (t *AACToOpus) ptsAt(start int64) time.Duration {
	num := start * t.sampleRate
	den := int64(opusRate) * t.frameSamples
	i := num / den
	if num < 0 && num%den != 0 {
		i-- // floor
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pts) == 0 {
		return 0
	}
	if i < t.first {
		i = t.first
	}
	if last := t.first + int64(len(t.pts)) - 1; i > last {
		i = last
	}
	pts := t.pts[i-t.first] + samplesToDuration(start, opusRate) - t.frameStart(i)
	t.pts = t.pts[i-t.first:] // later packets start later
	t.first = i
	return pts
}

// frameStart is where frame i starts in the decoded audio.
func (t *AACToOpus) frameStart(i int64) time.Duration {
	return samplesToDuration(i*t.frameSamples, t.sampleRate)
}

// samplesToDuration is n samples at rate, without overflow for any
// stream's length.
func samplesToDuration(n, rate int64) time.Duration {
	sec, rem := n/rate, n%rate
	return time.Duration(sec)*time.Second + time.Duration(rem*int64(time.Second)/rate)
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool // the start was dropped
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

// String is the whole lines kept, on one line.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.buf)
	if i := strings.IndexByte(s, '\n'); b.cut && i >= 0 {
		s = s[i+1:]
	}
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "no message"
	}
	return strings.Join(lines, "; ")
}
