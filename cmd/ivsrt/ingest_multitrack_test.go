package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// multitrackEncoder publishes, over RTMP with enhanced RTMP multitrack
// video, the same test pattern at two sizes (two H.264 tracks) and a
// tone in AAC, in real time, until stopped: what OBS's multitrack video
// sends. ffmpeg 5.1 cannot send multitrack, so the encoding is ffmpeg's
// and the RTMP is gortmplib's client.
type multitrackEncoder struct {
	cancel context.CancelFunc
	done   chan error
}

// aacClip encodes seconds of a 440 Hz tone in AAC (48 kHz mono) and
// returns its configuration and frames.
func aacClip(t *testing.T, seconds int) (*mpeg4audio.AudioSpecificConfig, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tone.aac")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
		"-i", "sine=frequency=440:sample_rate=48000", "-t", fmt.Sprint(seconds), "-ac", "1", "-c:a", "aac", "-b:a", "96k",
		"-f", "adts", path).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(b); err != nil {
		t.Fatalf("ADTS: %v", err)
	}
	frames := make([][]byte, len(pkts))
	for i, p := range pkts {
		frames[i] = p.AU
	}
	return &mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}, frames
}

// parameterSets returns the SPS and PPS at the start of a clip.
func parameterSets(t *testing.T, m testmedia.Media) (sps, pps []byte) {
	t.Helper()
	for _, n := range m.Frames[0] {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	if sps == nil || pps == nil {
		t.Fatal("the clip does not start with its SPS and PPS")
	}
	return sps, pps
}

func startMultitrackEncoder(t *testing.T, endpoint, key string) *multitrackEncoder {
	t.Helper()
	const seconds = 4
	high, low := testmedia.EncodeSize(t, seconds, 640, 360), testmedia.EncodeSize(t, seconds, 320, 180)
	asc, aac := aacClip(t, seconds)
	highSPS, highPPS := parameterSets(t, high)
	lowSPS, lowPPS := parameterSets(t, low)

	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	u.Fragment = key // gortmplib: rtmp://host/app#key
	ctx, cancel := context.WithCancel(context.Background())
	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(ctx); err != nil {
		cancel()
		t.Fatalf("RTMP connect: %v", err)
	}
	highTrack := &gortmplib.Track{Codec: &rtmpcodecs.H264{SPS: highSPS, PPS: highPPS}}
	lowTrack := &gortmplib.Track{Codec: &rtmpcodecs.H264{SPS: lowSPS, PPS: lowPPS}}
	audioTrack := &gortmplib.Track{Codec: &rtmpcodecs.MPEG4Audio{Config: asc}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{highTrack, lowTrack, audioTrack}}
	if err := w.Initialize(); err != nil {
		c.Close()
		cancel()
		t.Fatalf("RTMP tracks: %v", err)
	}
	e := &multitrackEncoder{cancel: cancel, done: make(chan error, 1)}
	go func() {
		defer c.Close()
		frame := time.Second / 30
		audioFrame := time.Duration(1024) * time.Second / time.Duration(asc.SampleRate)
		clip := time.Duration(len(high.Frames)) * frame
		start := time.Now()
		var v, a int // frames sent, over all loops
		for {
			vpts := time.Duration(v/len(high.Frames))*clip + time.Duration(v%len(high.Frames))*frame
			apts := time.Duration(a) * audioFrame
			next := min(vpts, apts)
			select {
			case <-ctx.Done():
				e.done <- nil
				return
			case <-time.After(time.Until(start.Add(next))):
			}
			var err error
			if vpts <= apts {
				i := v % len(high.Frames)
				if err = w.WriteH264(highTrack, vpts, vpts, high.Frames[i]); err == nil && i < len(low.Frames) {
					err = w.WriteH264(lowTrack, vpts, vpts, low.Frames[i])
				}
				v++
			} else {
				err = w.WriteMPEG4Audio(audioTrack, apts, aac[a%len(aac)])
				a++
			}
			if err != nil {
				e.done <- err
				return
			}
		}
	}()
	t.Cleanup(e.stop)
	return e
}

func (e *multitrackEncoder) stop() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
	}
}

// TestIngestMultitrack: an encoder that sends two video tracks (enhanced
// RTMP multitrack) publishes one video in two simulcast layers: a page
// written against the IVS Stage API is told both layers with their sizes,
// hears the audio, and gets each layer when it asks for it.
func TestIngestMultitrack(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	c, b, base, stage := startIVSTest(t, "ingest-multitrack", 3*time.Minute)
	rtmpURL, _ := stageEndpoints(t, c, stage)
	ic := createIngest(t, c, stage, types.IngestProtocolRtmp, "obs")
	encID := aws.ToString(ic.ParticipantId)
	startMultitrackEncoder(t, rtmpURL, aws.ToString(ic.StreamKey))
	waitPublishing(t, c, stage, encID)

	viewer := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String("viewer")})
	page := openIVSPage(t, b, base, "viewer", aws.ToString(viewer.Token))
	page.waitPlays("obs", true)
	i := page.waitEvent("the encoder's layers", 0, func(e ivsEvent) bool {
		return e.Name == "layers" && e.User == "obs" && strings.Count(e.Types, ",") == 1
	})
	got := page.log()[i].Types
	t.Logf("the encoder's layers: %s", got)
	if !strings.HasSuffix(got, " 640x360") || !strings.Contains(got, " 320x180,") {
		t.Fatalf("the encoder's layers %q: want 320x180 then 640x360", got)
	}
	low, _, _ := strings.Cut(got, " ")
	high, _, _ := strings.Cut(got[strings.Index(got, ",")+1:], " ")

	// Each layer when asked for: the large one, then the small one.
	for _, c := range []struct {
		label string
		width int
	}{{high, 640}, {low, 320}} {
		skip := len(page.log())
		webtest.Eval[bool](page.tab, `app.layers.obs = `+fmt.Sprintf("%q", c.label)+`, app.stage.refreshStrategy(), true`)
		page.waitEvent("the layer "+c.label+" selected", skip, func(e ivsEvent) bool {
			return e.Name == "layerSelected" && e.User == "obs" && e.Type == c.label
		})
		page.tab.WaitFor(fmt.Sprintf("the encoder's video %d wide", c.width), fmt.Sprintf("app.videos.obs.videoWidth === %d", c.width), 20*time.Second)
	}
	page.waitPlays("obs", true)
}
