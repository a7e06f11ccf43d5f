package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// rtmpPublisher publishes H.264 and AAC over RTMP with gortmplib, as an
// encoder does: a publish.Writer.
type rtmpPublisher struct {
	client       *gortmplib.Client
	w            *gortmplib.Writer
	video, audio *gortmplib.Track
}

// dialRTMP connects to the stage's RTMP endpoint (rtmp://host:port/app/)
// and starts publishing with the stream key.
func dialRTMP(ctx context.Context, endpoint, key string, c *clip.Clip) (*rtmpPublisher, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("RTMP endpoint %q: %w", endpoint, err)
	}
	// gortmplib takes the application from the path and the stream key
	// from the fragment.
	u.Path, u.Fragment = strings.TrimSuffix(u.Path, "/"), key
	p := &rtmpPublisher{client: &gortmplib.Client{URL: u, Publish: true}}
	if err := p.client.Initialize(ctx); err != nil {
		return nil, fmt.Errorf("RTMP connect: %w", err)
	}
	asc := c.ASC
	p.video = &gortmplib.Track{Codec: &codecs.H264{SPS: c.SPS, PPS: c.PPS}}
	p.audio = &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: &asc}}
	p.w = &gortmplib.Writer{Conn: p.client, Tracks: []*gortmplib.Track{p.video, p.audio}}
	if err := p.w.Initialize(); err != nil {
		p.client.Close()
		return nil, fmt.Errorf("RTMP tracks: %w", err)
	}
	return p, nil
}

func (p *rtmpPublisher) WriteVideo(pts time.Duration, f clip.Frame) error {
	return p.w.WriteH264(p.video, pts, pts, f.NALUs)
}

func (p *rtmpPublisher) WriteAudio(pts time.Duration, data []byte) error {
	return p.w.WriteMPEG4Audio(p.audio, pts, data)
}

func (p *rtmpPublisher) close() { p.client.Close() }

// encoder is ffmpeg publishing the clip's FLV over RTMP without
// re-encoding (-re -c copy, looping), as OBS would publish a live
// picture; its CPU is not the server's.
type encoder struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

func startEncoder(flv, rtmpURL string) (*encoder, error) {
	e := &encoder{done: make(chan struct{}), out: &bytes.Buffer{}}
	e.cmd = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", flv, "-c", "copy", "-f", "flv", rtmpURL)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := serverproc.Start(e.cmd); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	go func() { e.cmd.Wait(); close(e.done) }()
	return e, nil
}

// cpu is the encoder's CPU time so far.
func (e *encoder) cpu() (time.Duration, error) { return procstat.ProcessCPU(e.cmd.Process.Pid) }

// exited returns what ffmpeg said if it has exited.
func (e *encoder) exited() (string, bool) {
	select {
	case <-e.done:
		return strings.TrimSpace(e.out.String()), true
	default:
		return "", false
	}
}

func (e *encoder) stop() { serverproc.Stop(e.cmd, e.done, 2*time.Second) }
