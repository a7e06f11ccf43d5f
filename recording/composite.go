package recording

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt"
)

// Composite uploads a composition's HLS, which its encoder writes into a
// local folder (an MPEG-TS media playlist and its segments), to a bucket
// in the layout of an IVS composite recording:
//
//	<prefix>/events/recording-started.json, recording-ended.json or recording-failed.json
//	<prefix>/media/hls/multivariant.m3u8
//	<prefix>/media/hls/<rendition>/playlist.m3u8 and its segments
//
// A segment is uploaded once its encoder has listed it in the playlist
// (it is complete then), and the playlist after its segments, so that
// what is in the bucket always plays.
type Composite struct {
	cfg CompositeConfig

	mu       sync.Mutex // one sync at a time
	uploaded map[string]bool
	started  time.Time
	duration time.Duration
	// The thumbnails: how many were taken, and the recording time the
	// next is due at.
	thumbs    int
	nextThumb time.Duration
}

// CompositeConfig is a composite recording.
type CompositeConfig struct {
	Store  ivsrt.ObjectStore
	Bucket string
	Prefix string // without a trailing slash
	// Dir is the local folder the encoder writes Playlist and its
	// segments to.
	Dir, Playlist string
	// Rendition names the rendition's folder, e.g. 720p30.
	Rendition     string
	Width, Height int
	Bandwidth     int // bits per second, for the multivariant playlist
	StageARN      string
	CompositionID string
	// Thumbnails, if set, are taken from the first picture of a segment
	// every Interval of the recording (each segment's at most), as
	// media/thumbnails/<rendition>/<n>.jpg (Sequential) and
	// media/latest_thumbnail/<rendition>/thumb.jpg (Latest).
	Thumbnails *ThumbnailConfig
	// FFmpeg decodes the thumbnails' pictures.
	FFmpeg string
	Logger *slog.Logger
}

// compositeMetadata is the metadata of a composite recording.
type compositeMetadata struct {
	Version            string    `json:"version"`
	RecordingStartedAt string    `json:"recording_started_at"`
	RecordingEndedAt   string    `json:"recording_ended_at,omitempty"`
	StageARN           string    `json:"stage_arn"`
	CompositionID      string    `json:"composition_id"`
	RecordingStatus    string    `json:"recording_status"`
	StatusMessage      string    `json:"recording_status_message,omitempty"`
	Media              mediaMeta `json:"media"`
}

// NewComposite returns the upload of a composite recording.
func NewComposite(cfg CompositeConfig) *Composite {
	if cfg.Playlist == "" {
		cfg.Playlist = "playlist.m3u8"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Composite{cfg: cfg, uploaded: map[string]bool{}}
}

func (c *Composite) key(rel string) string { return c.cfg.Prefix + "/" + rel }

func (c *Composite) renditionKey(name string) string {
	return c.key("media/hls/" + c.cfg.Rendition + "/" + name)
}

// Start writes recording-started.json and the multivariant playlist.
func (c *Composite) Start(ctx context.Context, now time.Time) error {
	c.started = now
	if err := c.putMetadata(ctx, StartedKey, "RECORDING_STARTED", "", now); err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d,CODECS=\"avc1.640028,mp4a.40.2\"\n%s/%s\n",
		c.cfg.Bandwidth+128000, c.cfg.Width, c.cfg.Height, c.cfg.Rendition, c.cfg.Playlist)
	if err := c.cfg.Store.PutObject(ctx, c.cfg.Bucket, c.key(MultivariantKeyName), b.Bytes(), "application/vnd.apple.mpegurl"); err != nil {
		return fmt.Errorf("recording: multivariant playlist: %w", err)
	}
	return nil
}

// MultivariantKeyName is the multivariant playlist under a recording's
// prefix.
const MultivariantKeyName = "media/hls/multivariant.m3u8"

// Sync uploads the segments the local playlist lists that are not in the
// bucket yet, then the playlist.
func (c *Composite) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	pl, err := os.ReadFile(filepath.Join(c.cfg.Dir, c.cfg.Playlist))
	if errors.Is(err, os.ErrNotExist) {
		return nil // no segment yet
	} else if err != nil {
		return fmt.Errorf("recording: read the playlist: %w", err)
	}
	var d, segStart time.Duration
	sc := bufio.NewScanner(bytes.NewReader(pl))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			var secs float64
			fmt.Sscanf(strings.TrimSuffix(rest, ","), "%g", &secs)
			segStart = d
			d += time.Duration(secs * float64(time.Second))
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") || c.uploaded[line] {
			continue
		}
		if strings.Contains(line, "/") || strings.Contains(line, "..") {
			return fmt.Errorf("recording: the playlist names %q, outside its folder", line)
		}
		seg, err := os.ReadFile(filepath.Join(c.cfg.Dir, line))
		if err != nil {
			return fmt.Errorf("recording: read segment %s: %w", line, err)
		}
		if err := c.cfg.Store.PutObject(ctx, c.cfg.Bucket, c.renditionKey(line), seg, "video/mp2t"); err != nil {
			return fmt.Errorf("recording: segment %s: %w", line, err)
		}
		c.uploaded[line] = true
		if th := c.cfg.Thumbnails; th != nil && segStart >= c.nextThumb {
			if err := c.thumbnail(ctx, filepath.Join(c.cfg.Dir, line)); err != nil {
				// A thumbnail lost is not the recording lost.
				c.cfg.Logger.Warn("composite recording: thumbnail not made", "prefix", c.cfg.Prefix, "err", err)
			}
			for c.nextThumb <= segStart {
				c.nextThumb += max(th.Interval, time.Second)
			}
		}
		os.Remove(filepath.Join(c.cfg.Dir, line)) // uploaded: the folder keeps only what is pending
	}
	if err := c.cfg.Store.PutObject(ctx, c.cfg.Bucket, c.renditionKey(c.cfg.Playlist), pl, "application/vnd.apple.mpegurl"); err != nil {
		return fmt.Errorf("recording: playlist: %w", err)
	}
	c.duration = d
	return nil
}

// thumbnail makes a JPEG of the first picture of segment and uploads it
// where the configuration says.
func (c *Composite) thumbnail(ctx context.Context, segment string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.cfg.FFmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", segment,
		"-frames:v", "1", "-q:v", "3", "-f", "image2", "-c:v", "mjpeg", "pipe:1")
	cmd.Stderr = &stderr
	jpeg, err := cmd.Output()
	if err != nil || len(jpeg) == 0 {
		return fmt.Errorf("decode a picture: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	c.thumbs++
	if c.cfg.Thumbnails.Sequential {
		key := c.key(fmt.Sprintf("media/thumbnails/%s/%d.jpg", c.cfg.Rendition, c.thumbs))
		if err := c.cfg.Store.PutObject(ctx, c.cfg.Bucket, key, jpeg, "image/jpeg"); err != nil {
			return err
		}
	}
	if c.cfg.Thumbnails.Latest {
		key := c.key("media/latest_thumbnail/" + c.cfg.Rendition + "/thumb.jpg")
		if err := c.cfg.Store.PutObject(ctx, c.cfg.Bucket, key, jpeg, "image/jpeg"); err != nil {
			return err
		}
	}
	return nil
}

// Finish uploads what is left (the encoder has ended its playlist) and
// writes recording-ended.json, or recording-failed.json if the upload
// failed; the local folder is removed.
func (c *Composite) Finish(ctx context.Context, now time.Time) error {
	defer os.RemoveAll(c.cfg.Dir)
	if err := c.Sync(ctx); err != nil {
		c.putMetadata(ctx, FailedKey, "RECORDING_ENDED_WITH_FAILURE", err.Error(), now)
		return err
	}
	return c.putMetadata(ctx, EndedKey, "RECORDING_ENDED", "", now)
}

// Fail uploads what it can and writes recording-failed.json with why.
func (c *Composite) Fail(ctx context.Context, cause error, now time.Time) {
	defer os.RemoveAll(c.cfg.Dir)
	if err := c.Sync(ctx); err != nil {
		c.cfg.Logger.Warn("composite recording: last upload failed", "prefix", c.cfg.Prefix, "err", err)
	}
	if err := c.putMetadata(ctx, FailedKey, "RECORDING_ENDED_WITH_FAILURE", cause.Error(), now); err != nil {
		c.cfg.Logger.Warn("composite recording: metadata not stored", "prefix", c.cfg.Prefix, "err", err)
	}
}

func (c *Composite) putMetadata(ctx context.Context, key, status, message string, now time.Time) error {
	m := compositeMetadata{
		Version:            "v1",
		RecordingStartedAt: c.started.UTC().Format(time.RFC3339),
		StageARN:           c.cfg.StageARN,
		CompositionID:      c.cfg.CompositionID,
		RecordingStatus:    status,
		StatusMessage:      message,
		Media: mediaMeta{HLS: hlsMeta{Path: "media/hls", Playlist: "multivariant.m3u8",
			Renditions: []renditionMeta{{Path: c.cfg.Rendition, Playlist: c.cfg.Playlist, Width: c.cfg.Width, Height: c.cfg.Height}}}},
	}
	if key != StartedKey {
		m.RecordingEndedAt = now.UTC().Format(time.RFC3339)
		c.mu.Lock()
		m.Media.HLS.DurationMS = c.duration.Milliseconds()
		c.mu.Unlock()
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := c.cfg.Store.PutObject(ctx, c.cfg.Bucket, c.key(key), body, "application/json"); err != nil {
		return fmt.Errorf("recording: metadata: %w", err)
	}
	return nil
}
