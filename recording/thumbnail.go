package recording

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Thumbnail object names under a recording's prefix.
const (
	ThumbnailDir = "media/thumbnails/high/"                // SEQUENTIAL: 1.jpg, 2.jpg, ...
	LatestKey    = "media/latest_thumbnail/high/thumb.jpg" // LATEST: replaced each time
)

// ThumbnailConfig is thumbnailConfiguration: a JPEG of the video every
// Interval (from the first keyframe at or after each interval), kept in
// sequence and/or as the latest.
type ThumbnailConfig struct {
	Interval   time.Duration
	Sequential bool
	Latest     bool
}

// ErrNoFFmpeg is returned when thumbnails are asked for and ffmpeg, which
// decodes the video for them, is not installed.
var ErrNoFFmpeg = errors.New("recording: thumbnails need ffmpeg, which is not installed")

// FFmpegPath returns ffmpeg's path, or ErrNoFFmpeg.
func FFmpegPath() (string, error) {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", ErrNoFFmpeg
	}
	return p, nil
}

// thumbnailer makes the thumbnails of a recording on a goroutine of its
// own, so that the recording never waits for ffmpeg. One keyframe waits
// while another is decoded; a newer one replaces it.
type thumbnailer struct {
	cfg    ThumbnailConfig
	put    func(ctx context.Context, key string, body []byte, contentType string) error
	ffmpeg string

	last  time.Duration // pts of the last keyframe taken
	taken bool

	mu      sync.Mutex
	pending []byte // Annex B of the keyframe waiting, nil if none
	running bool
	n       int   // thumbnails made
	err     error // the first failure
	idle    *sync.Cond
}

func newThumbnailer(cfg ThumbnailConfig, put func(context.Context, string, []byte, string) error) (*thumbnailer, error) {
	path, err := FFmpegPath()
	if err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	t := &thumbnailer{cfg: cfg, put: put, ffmpeg: path}
	t.idle = sync.NewCond(&t.mu)
	return t, nil
}

// keyframe considers the keyframe au (with the stream's SPS and PPS) at
// pts for a thumbnail. It returns the failure of an earlier one, if any.
func (t *thumbnailer) keyframe(ctx context.Context, pts time.Duration, au [][]byte, sps, pps []byte) error {
	t.mu.Lock()
	err := t.err
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if t.taken && pts-t.last < t.cfg.Interval {
		return nil
	}
	t.taken, t.last = true, pts
	annexb, err := h264.AnnexB(withParameterSets(au, sps, pps)).Marshal()
	if err != nil {
		return fmt.Errorf("recording: thumbnail: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = annexb
	if !t.running {
		t.running = true
		go t.run(context.WithoutCancel(ctx))
	}
	return nil
}

// run makes thumbnails while keyframes wait.
func (t *thumbnailer) run(ctx context.Context) {
	t.mu.Lock()
	for t.pending != nil && t.err == nil {
		job := t.pending
		t.pending = nil
		t.n++
		n := t.n
		t.mu.Unlock()
		err := t.make(ctx, n, job)
		t.mu.Lock()
		if err != nil && t.err == nil {
			t.err = err
		}
	}
	t.running = false
	t.idle.Broadcast()
	t.mu.Unlock()
}

// wait waits until the keyframes taken have their thumbnails, and returns
// the first failure, if any.
func (t *thumbnailer) wait() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.running {
		t.idle.Wait()
	}
	return t.err
}

// make decodes the keyframe to a JPEG and stores it.
func (t *thumbnailer) make(ctx context.Context, n int, annexb []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "h264", "-i", "pipe:0",
		"-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-q:v", "3", "pipe:1")
	cmd.Stdin = bytes.NewReader(annexb)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("recording: thumbnail: ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if out.Len() == 0 {
		return errors.New("recording: thumbnail: ffmpeg made no picture")
	}
	if t.cfg.Sequential {
		if err := t.put(ctx, ThumbnailDir+strconv.Itoa(n)+".jpg", out.Bytes(), "image/jpeg"); err != nil {
			return err
		}
	}
	if t.cfg.Latest {
		if err := t.put(ctx, LatestKey, out.Bytes(), "image/jpeg"); err != nil {
			return err
		}
	}
	return nil
}

// withParameterSets puts sps and pps before au's pictures unless au holds
// its own, so that a decoder can start from it.
func withParameterSets(au [][]byte, sps, pps []byte) [][]byte {
	for _, nalu := range au {
		if len(nalu) > 0 && h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeSPS {
			return au
		}
	}
	return append([][]byte{sps, pps}, au...)
}
