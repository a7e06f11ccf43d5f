package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// The listener's pictures in the delay phase: the composite scaled down
// to this, as raw RGB.
const (
	pictureWidth  = 64
	pictureHeight = 36
	pictureBytes  = pictureWidth * pictureHeight * 3
)

// listener is an ffmpeg that listens for the composite's RTMP (-listen
// 1), as a channel's ingest would, in one of two modes:
//
//   - counting: it remuxes what it receives to FLV in /dev/null without
//     decoding, and reports its progress (frames and bytes so far) every
//     half second;
//   - pictures: it decodes the video with the least buffering ffmpeg
//     allows (one decoder thread, no frame reordering, no input
//     buffering), scales each frame to 64×36 RGB on its standard output,
//     and the bench notes when each arrives and its mean colour over a
//     region.
type listener struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	errs *syncBuffer
	// first is closed at the first frame: a progress report that counts
	// one, or a picture.
	first     chan struct{}
	firstOnce sync.Once

	mu       sync.Mutex
	progress []progress
	pictures []picture
}

// progress is one of ffmpeg's progress reports, with when it was read.
type progress struct {
	at     time.Time
	frames int64 // video frames muxed so far
	bytes  int64 // FLV written so far (video and audio)
}

// picture is one frame of the decoded composite: when it arrived and its
// mean colour over the region watched.
type picture struct {
	at  time.Time
	rgb [3]float64
}

// rect is a region of the 64×36 pictures.
type rect struct{ x, y, w, h int }

// startCounting starts a listener in counting mode on url.
func startCounting(url string) (*listener, error) {
	l := newListener(url)
	l.cmd = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-listen", "1", "-i", url, "-map", "0", "-c", "copy", "-f", "flv", "-y", "/dev/null",
		"-progress", "pipe:1", "-stats_period", "0.5")
	out, err := l.start()
	if err != nil {
		return nil, err
	}
	go l.readProgress(out)
	return l, nil
}

// startPictures starts a listener in pictures mode on url, watching
// region.
func startPictures(url string, region rect) (*listener, error) {
	l := newListener(url)
	l.cmd = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-fflags", "nobuffer", "-flags", "low_delay", "-threads", "1",
		"-listen", "1", "-i", url, "-map", "0:v",
		"-vf", fmt.Sprintf("scale=%d:%d:flags=area", pictureWidth, pictureHeight), "-fps_mode", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-flush_packets", "1", "pipe:1")
	out, err := l.start()
	if err != nil {
		return nil, err
	}
	go l.readPictures(out, region)
	return l, nil
}

func newListener(url string) *listener {
	return &listener{URL: url, done: make(chan struct{}), errs: &syncBuffer{}, first: make(chan struct{})}
}

// start starts ffmpeg and returns its standard output, which the caller
// reads to its end (a pipe of the bench's, so that Wait does not close
// it under the reader).
func (l *listener) start() (io.ReadCloser, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	l.cmd.Stdout, l.cmd.Stderr = w, l.errs
	err = serverproc.Start(l.cmd)
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	go func() { l.cmd.Wait(); close(l.done) }()
	return r, nil
}

func (l *listener) readProgress(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	var p progress
	for sc.Scan() {
		key, value, ok := parseProgressLine(sc.Text())
		if !ok {
			continue
		}
		switch key {
		case "frame":
			p.frames, _ = strconv.ParseInt(value, 10, 64)
		case "total_size":
			p.bytes, _ = strconv.ParseInt(value, 10, 64)
		case "progress":
			p.at = time.Now()
			l.mu.Lock()
			l.progress = append(l.progress, p)
			l.mu.Unlock()
			if p.frames > 0 {
				l.firstOnce.Do(func() { close(l.first) })
			}
		}
	}
}

// parseProgressLine splits a line of ffmpeg's -progress output, key=value.
func parseProgressLine(line string) (key, value string, ok bool) {
	key, value, ok = strings.Cut(strings.TrimSpace(line), "=")
	if !ok || key == "" {
		return "", "", false
	}
	return key, strings.TrimSpace(value), true
}

func (l *listener) readPictures(r io.ReadCloser, region rect) {
	defer r.Close()
	buf := make([]byte, pictureBytes)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		p := picture{at: time.Now(), rgb: meanColour(buf, pictureWidth, region)}
		l.mu.Lock()
		l.pictures = append(l.pictures, p)
		l.mu.Unlock()
		l.firstOnce.Do(func() { close(l.first) })
	}
}

// waitListening waits until ffmpeg listens on port of 127.0.0.1, as
// /proc/net/tcp shows it: the server's encoder connects at once, and a
// refused connection would have it retry only 5 s later. (Connecting to
// find out would take the one connection ffmpeg accepts.)
func (l *listener) waitListening(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			return err
		}
		if listening(string(data), port) {
			return nil
		}
		select {
		case <-l.done:
			return fmt.Errorf("the RTMP listener exited at start: %s", l.errs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the RTMP listener does not listen on port %d after %v", port, timeout)
		}
	}
}

// listening reports whether /proc/net/tcp's table shows a socket
// listening on port of 127.0.0.1.
func listening(table string, port int) bool {
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		// sl, local_address, rem_address, st (0A: LISTEN).
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

// waitFirst waits for the first frame.
func (l *listener) waitFirst(timeout time.Duration) error {
	select {
	case <-l.first:
		return nil
	case <-l.done:
		return fmt.Errorf("the RTMP listener exited before a frame: %s", l.errs.String())
	case <-time.After(timeout):
		return fmt.Errorf("no frame reached the RTMP listener within %v", timeout)
	}
}

// latest returns the last progress report.
func (l *listener) latest() (progress, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.progress) == 0 {
		return progress{}, errors.New("the RTMP listener reported no progress")
	}
	return l.progress[len(l.progress)-1], nil
}

// received returns the pictures so far.
func (l *listener) received() []picture {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]picture(nil), l.pictures...)
}

// exited reports whether ffmpeg has exited, and what it said.
func (l *listener) exited() (string, bool) {
	select {
	case <-l.done:
		return strings.TrimSpace(l.errs.String()), true
	default:
		return "", false
	}
}

// cpu is the listener's CPU time so far.
func (l *listener) cpu() (time.Duration, error) { return procstat.ProcessCPU(l.cmd.Process.Pid) }

// stop waits a moment for ffmpeg to end with its input (the composition
// stopped), then ends it.
func (l *listener) stop() {
	select {
	case <-l.done:
	case <-time.After(2 * time.Second):
	}
	serverproc.Stop(l.cmd, l.done, 2*time.Second)
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the
// bench's reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<16 {
		return len(p), nil // enough to say what went wrong
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
