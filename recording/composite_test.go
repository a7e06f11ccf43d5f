package recording

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/objectstore/folder"
)

// TestComposite: the HLS an encoder writes into a folder is uploaded in
// IVS's composite layout as it comes — segments once listed, the playlist
// after them — with thumbnails, and the metadata of its start and end.
func TestComposite(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	ctx := context.Background()
	objects, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := objects.CheckBucket(ctx, "bucket"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := NewComposite(CompositeConfig{Store: objects, Bucket: "bucket", Prefix: "stage/comp/composite", Dir: dir,
		Rendition: "360p15", Width: 640, Height: 360, Bandwidth: 800000, StageARN: "arn:stage", CompositionID: "comp",
		Thumbnails: &ThumbnailConfig{Interval: 4 * time.Second, Sequential: true, Latest: true}, FFmpeg: "ffmpeg"})
	start := time.Unix(1_800_000_000, 0)
	if err := c.Start(ctx, start); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("Sync before any segment: %v", err)
	}
	// The encoder: 8 s in 2 s segments.
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=15",
		"-t", "8", "-c:v", "libx264", "-g", "30", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
		"-hls_segment_filename", filepath.Join(dir, "%d.ts"), filepath.Join(dir, "playlist.m3u8")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	if err := c.Finish(ctx, start.Add(8*time.Second)); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	get := func(key string) string {
		t.Helper()
		b, _, err := objects.GetObject(ctx, "bucket", "stage/comp/composite/"+key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return string(b)
	}
	if mv := get("media/hls/multivariant.m3u8"); !strings.Contains(mv, "RESOLUTION=640x360") || !strings.Contains(mv, "360p15/playlist.m3u8") {
		t.Errorf("multivariant playlist:\n%s", mv)
	}
	pl := get("media/hls/360p15/playlist.m3u8")
	if !strings.Contains(pl, "#EXT-X-ENDLIST") || strings.Count(pl, ".ts") != 4 {
		t.Errorf("playlist:\n%s", pl)
	}
	for _, seg := range []string{"0.ts", "1.ts", "2.ts", "3.ts"} {
		get("media/hls/360p15/" + seg)
	}
	// Every 4 s: the segments starting at 0 and 4 s.
	get("media/thumbnails/360p15/1.jpg")
	get("media/thumbnails/360p15/2.jpg")
	if _, _, err := objects.GetObject(ctx, "bucket", "stage/comp/composite/media/thumbnails/360p15/3.jpg"); err == nil {
		t.Errorf("a third thumbnail in 8 s at one every 4 s")
	}
	get("media/latest_thumbnail/360p15/thumb.jpg")
	var ended compositeMetadata
	if err := json.Unmarshal([]byte(get(EndedKey)), &ended); err != nil {
		t.Fatal(err)
	}
	if ended.RecordingStatus != "RECORDING_ENDED" || ended.Media.HLS.DurationMS < 7900 || ended.CompositionID != "comp" ||
		ended.Media.HLS.Renditions[0].Path != "360p15" {
		t.Errorf("recording-ended.json: %+v", ended)
	}
	get(StartedKey)
}

// TestCompositeFail: a failed recording says why in recording-failed.json.
func TestCompositeFail(t *testing.T) {
	ctx := context.Background()
	objects, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	objects.CheckBucket(ctx, "bucket")
	c := NewComposite(CompositeConfig{Store: objects, Bucket: "bucket", Prefix: "p", Dir: t.TempDir(), Rendition: "720p30"})
	if err := c.Start(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.Fail(ctx, errors.New("the encoder died"), time.Now())
	b, _, err := objects.GetObject(ctx, "bucket", "p/"+FailedKey)
	if err != nil {
		t.Fatal(err)
	}
	var m compositeMetadata
	json.Unmarshal(b, &m)
	if m.RecordingStatus != "RECORDING_ENDED_WITH_FAILURE" || m.StatusMessage != "the encoder died" {
		t.Errorf("recording-failed.json: %+v", m)
	}
}
