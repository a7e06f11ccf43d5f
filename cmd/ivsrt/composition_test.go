package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// compositionState returns a composition's state and its destinations'.
func compositionState(t *testing.T, c *ivsrealtime.Client, arn *string) (types.CompositionState, *types.Composition) {
	t.Helper()
	out, err := c.GetComposition(testContext(t), &ivsrealtime.GetCompositionInput{Arn: arn})
	if err != nil {
		t.Fatalf("GetComposition: %v", err)
	}
	return out.Composition.State, out.Composition
}

// waitCompositionState waits up to within for the composition to be in
// state, and returns it.
func waitCompositionState(t *testing.T, c *ivsrealtime.Client, arn *string, state types.CompositionState, within time.Duration) *types.Composition {
	t.Helper()
	var got *types.Composition
	eventually(t, within, "the composition "+string(state), func() error {
		s, comp := compositionState(t, c, arn)
		if s != state {
			return fmt.Errorf("state %s", s)
		}
		got = comp
		return nil
	})
	return got
}

// startS3Composition starts a composition of stage into the bucket of
// storage in 2 s segments, encoded as encoder says, and waits until it is
// ACTIVE.
func startS3Composition(t *testing.T, c *ivsrealtime.Client, stage, storage, encoder string, layout *types.LayoutConfiguration) *types.Composition {
	t.Helper()
	out, err := c.StartComposition(testContext(t), &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Layout: layout,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: aws.String(storage), EncoderConfigurationArns: []string{encoder},
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
		}}}})
	if err != nil {
		t.Fatalf("StartComposition: %v", err)
	}
	return waitCompositionState(t, c, out.Composition.Arn, types.CompositionStateActive, 30*time.Second)
}

// stopComposition stops comp, waits until it is STOPPED, and returns it.
func stopComposition(t *testing.T, c *ivsrealtime.Client, comp *types.Composition) *types.Composition {
	t.Helper()
	if _, err := c.StopComposition(testContext(t), &ivsrealtime.StopCompositionInput{Arn: comp.Arn}); err != nil {
		t.Fatalf("StopComposition: %v", err)
	}
	return waitCompositionState(t, c, comp.Arn, types.CompositionStateStopped, 30*time.Second)
}

// recordingOf downloads the recording of a stopped composition's S3
// destination from the test bucket, and returns its playlist's path.
func recordingOf(t *testing.T, m *Main, comp *types.Composition) string {
	t.Helper()
	return downloadHLS(t, m, "test-recordings", aws.ToString(comp.Destinations[0].Detail.S3.RecordingPrefix))
}

// downloadHLS copies a recording's HLS (multivariant playlist, its
// rendition's playlist and segments) from the object store to a folder,
// and returns the rendition playlist's path there.
func downloadHLS(t *testing.T, m *Main, bucket, prefix string) string {
	t.Helper()
	ctx := testContext(t)
	dir := t.TempDir()
	get := func(key string) []byte {
		t.Helper()
		body, _, err := m.Objects.GetObject(ctx, bucket, prefix+"/"+key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		local := filepath.Join(dir, filepath.FromSlash(key))
		os.MkdirAll(filepath.Dir(local), 0o755)
		if err := os.WriteFile(local, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return body
	}
	multivariant := get("media/hls/multivariant.m3u8")
	var rendition string
	for _, line := range strings.Split(string(multivariant), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			rendition = strings.TrimSpace(line)
		}
	}
	if rendition == "" {
		t.Fatalf("the multivariant playlist names no rendition:\n%s", multivariant)
	}
	playlist := get("media/hls/" + rendition)
	for _, line := range strings.Split(string(playlist), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			get("media/hls/" + path.Dir(rendition) + "/" + line)
		}
	}
	if !strings.Contains(string(playlist), "#EXT-X-ENDLIST") {
		t.Errorf("the playlist of a stopped composition has no end:\n%s", playlist)
	}
	return filepath.Join(dir, "media", "hls", filepath.FromSlash(rendition))
}

// frameAt returns the picture of a video at t, as RGB.
func frameAt(t *testing.T, video string, at time.Duration, width, height int) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", fmt.Sprintf("%.2f", at.Seconds()),
		"-i", video, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	if err != nil || len(out) != width*height*3 {
		t.Fatalf("frame at %v: %v (%d bytes)", at, err, len(out))
	}
	return out
}

// pixel is the colour at x, y of an RGB picture width wide.
func pixel(rgb []byte, width, x, y int) [3]int {
	i := (y*width + x) * 3
	return [3]int{int(rgb[i]), int(rgb[i+1]), int(rgb[i+2])}
}

// near reports whether colour c is within 40 of want in each channel.
func near(c, want [3]int) bool {
	for i := range c {
		if d := c[i] - want[i]; d < -40 || d > 40 {
			return false
		}
	}
	return true
}

// audioAt decodes d of a recording's audio from at, mono 48 kHz.
func audioAt(t *testing.T, video string, at, d time.Duration) []int16 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", fmt.Sprintf("%.2f", at.Seconds()),
		"-t", fmt.Sprintf("%.2f", d.Seconds()), "-i", video, "-vn", "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1").Output()
	if err != nil {
		t.Fatalf("audio at %v: %v", at, err)
	}
	samples := make([]int16, len(out)/2)
	binary.Read(bytes.NewReader(out), binary.LittleEndian, samples)
	return samples
}

// compositionEvents returns the names of composition's stream events, in
// order, with the destination they are of ("Destination Start d1").
func compositionEvents(t *testing.T, m *Main, arn string) []string {
	t.Helper()
	evs, err := m.DB.ReadEvents(testContext(t), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.DetailType != ivsrt.DetailTypeCompositionStateChange || ev.Detail["composition_arn"] != arn {
			continue
		}
		name := ev.EventName()
		if d, ok := ev.Detail["destination_id"].(string); ok {
			name += " " + d
		}
		out = append(out, name)
	}
	return out
}

// TestComposition: two publishers of distinct colours and tones composed
// into HLS in a bucket by StartComposition: the recording plays in ffprobe
// at the encoder configuration's size and frame rate; at first the one
// publisher fills the picture, and once the second joins (without the
// output restarting) they are side by side as the grid puts them, and
// both tones are heard; a publisher that stops its video leaves its tile
// empty; StopComposition ends it with IVS's events.
func TestComposition(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	withTestStorage(t, m)
	ctx := testContext(t)
	stage := createStage(t, c, "composition")

	enc, err := c.CreateEncoderConfiguration(ctx, &ivsrealtime.CreateEncoderConfigurationInput{Name: aws.String("small"),
		Video: &types.Video{Width: aws.Int32(640), Height: aws.Int32(360), Framerate: aws.Float32(15), Bitrate: aws.Int32(800000)}})
	if err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	encARN := aws.ToString(enc.EncoderConfiguration.Arn)
	red, blue := testmedia.EncodeColor(t, 4, 640, 360, "red", 440), testmedia.EncodeColor(t, 4, 640, 360, "blue", 1000)
	pubCtx, stopPublishing := context.WithCancel(context.Background())
	defer stopPublishing()
	redTok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String("red")})
	whipH264(pubCtx, t, aws.ToString(redTok.Token), red)
	waitPublishing(t, c, stage, aws.ToString(redTok.ParticipantId))

	// Refusals first: nothing is started by them.
	start := func(in *ivsrealtime.StartCompositionInput) (*types.Composition, error) {
		out, err := c.StartComposition(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Composition, nil
	}
	s3 := func() types.DestinationConfiguration {
		return types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn:  aws.String(storageARN),
			EncoderConfigurationArns: []string{encARN},
			RecordingConfiguration:   &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
		}}
	}
	_, err = start(&ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{s3(), s3()}})
	checkError(t, err, validation("at most one"))
	_, err = start(&ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{s3()},
		Layout: &types.LayoutConfiguration{Pip: &types.PipConfiguration{PipWidth: aws.Int32(0)}}})
	checkError(t, err, validation("pipWidth"))
	missing := s3()
	missing.S3.StorageConfigurationArn = aws.String("arn:aws:ivs:us-east-1:123456789012:storage-configuration/nothere12345")
	_, err = start(&ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), Destinations: []types.DestinationConfiguration{missing}})
	checkError(t, err, notFound())

	comp, err := start(&ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), IdempotencyToken: aws.String("first-try"),
		Destinations: []types.DestinationConfiguration{s3()}, Tags: map[string]string{"team": "video"}})
	if err != nil {
		t.Fatalf("StartComposition: %v", err)
	}
	again, err := start(&ivsrealtime.StartCompositionInput{StageArn: aws.String(stage), IdempotencyToken: aws.String("first-try"),
		Destinations: []types.DestinationConfiguration{s3()}})
	if err != nil || aws.ToString(again.Arn) != aws.ToString(comp.Arn) {
		t.Errorf("StartComposition with the same idempotencyToken: %v, %v; want the same composition", again, err)
	}
	got := waitCompositionState(t, c, comp.Arn, types.CompositionStateActive, 30*time.Second)
	d := got.Destinations[0]
	if d.State != types.DestinationStateActive || d.Detail == nil || d.Detail.S3 == nil || aws.ToString(d.Detail.S3.RecordingPrefix) == "" {
		t.Fatalf("the destination: %+v", d)
	}
	prefix := aws.ToString(d.Detail.S3.RecordingPrefix)
	if got.Layout == nil || got.Layout.Grid == nil || got.Layout.Grid.GridGap != 2 || got.Tags["team"] != "video" {
		t.Errorf("the composition's layout %+v and tags %v: want the default grid and the tags", got.Layout, got.Tags)
	}
	list, err := c.ListCompositions(ctx, &ivsrealtime.ListCompositionsInput{FilterByEncoderConfigurationArn: aws.String(encARN)})
	if err != nil || len(list.Compositions) != 1 {
		t.Errorf("ListCompositions by encoder configuration: %v, %v", list, err)
	}
	_, err = c.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(encARN)})
	checkError(t, err, wantError{code: "ConflictException", status: 409})

	time.Sleep(6 * time.Second) // red alone
	blueTok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String("blue")})
	whipH264(pubCtx, t, aws.ToString(blueTok.Token), blue)
	waitPublishing(t, c, stage, aws.ToString(blueTok.ParticipantId))
	time.Sleep(8 * time.Second) // side by side
	// Red stops its camera (the events WebSocket's mute): its tile is
	// left empty, blue stays where it was.
	_, events := dialEvents(t, m, aws.ToString(redTok.Token))
	if err := events.Write(ctx, websocket.MessageText, []byte(`{"type":"mute","kind":"video","muted":true}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)

	stopComposition(t, c, comp)
	id := d.Id
	want := []string{"Session Start", "Destination Start " + aws.ToString(id), "Destination End " + aws.ToString(id), "Session End"}
	if got := compositionEvents(t, m, aws.ToString(comp.Arn)); !slices.Equal(got, want) {
		t.Errorf("the composition's events: %v, want %v", got, want)
	}

	video := downloadHLS(t, m, "test-recordings", prefix)
	p := testmedia.FFprobe(t, video)
	dur := p.Duration(t)
	t.Logf("the composite recording: %v, %+v", dur, p.Streams)
	var sawVideo, sawAudio bool
	for _, s := range p.Streams {
		switch s.CodecType {
		case "video":
			sawVideo = s.CodecName == "h264" && s.Width == 640 && s.Height == 360 && s.FrameRate == "15/1"
		case "audio":
			sawAudio = s.CodecName == "aac"
		}
	}
	if !sawVideo || !sawAudio {
		t.Errorf("the recording's streams %+v: want H.264 640x360 at 15 fps, as its encoder configuration says, and AAC", p.Streams)
	}
	if dur < 10*time.Second {
		t.Errorf("the recording lasts %v: want the whole composition, one recording", dur)
	}
	redRGB, blueRGB := [3]int{255, 0, 0}, [3]int{0, 0, 255}
	first := frameAt(t, video, 4*time.Second, 640, 360)
	if c := pixel(first, 640, 320, 180); !near(c, redRGB) {
		t.Errorf("at 4 s the middle of the picture is %v: want the red publisher alone, full size", c)
	}
	both := frameAt(t, video, dur-7*time.Second, 640, 360)
	if l, r := pixel(both, 640, 160, 180), pixel(both, 640, 480, 180); !near(l, redRGB) || !near(r, blueRGB) {
		t.Errorf("7 s before the end the left is %v and the right %v: want red then blue, side by side", l, r)
	}
	last := frameAt(t, video, dur-1500*time.Millisecond, 640, 360)
	if l, r := pixel(last, 640, 160, 180), pixel(last, 640, 480, 180); !near(l, [3]int{0, 0, 0}) || !near(r, blueRGB) {
		t.Errorf("at the end the left is %v and the right %v: want red's tile empty once it stopped its video, blue still there", l, r)
	}
	samples := audioAt(t, video, dur-9*time.Second, 2*time.Second)
	p440, p1000 := testmedia.TonePower(samples, 440), testmedia.TonePower(samples, 1000)
	t.Logf("the end's audio: 440 Hz %.2f, 1000 Hz %.2f of its power", p440, p1000)
	if p440 < 0.1 || p1000 < 0.1 {
		t.Errorf("the end's audio has 440 Hz at %.2f and 1000 Hz at %.2f of its power: want both publishers heard", p440, p1000)
	}

	// Once stopped, the encoder configuration is free again.
	if _, err := c.DeleteEncoderConfiguration(ctx, &ivsrealtime.DeleteEncoderConfigurationInput{Arn: aws.String(encARN)}); err != nil {
		t.Errorf("DeleteEncoderConfiguration after the composition: %v", err)
	}
}

// TestCompositionVP8: a publisher of VP8 (a bot's test pattern: colour
// bars over a dark band) and Opus is composed: the picture shows its bars.
func TestCompositionVP8(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	withTestStorage(t, m)
	ctx := testContext(t)
	stage := createStage(t, c, "composition-vp8")
	enc, err := c.CreateEncoderConfiguration(ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(240), Framerate: aws.Float32(15), Bitrate: aws.Int32(500000)}})
	if err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String("bot")})
	runBot(t, bot.Config{Token: aws.ToString(tok.Token), Video: true, Audio: true, Width: 320, Height: 240})
	waitPublishing(t, c, stage, aws.ToString(tok.ParticipantId))
	comp := startS3Composition(t, c, stage, storageARN, aws.ToString(enc.EncoderConfiguration.Arn), nil)
	time.Sleep(6 * time.Second)
	video := recordingOf(t, m, stopComposition(t, c, comp))
	dur := testmedia.FFprobe(t, video).Duration(t)
	frame := frameAt(t, video, dur-time.Second, 320, 240)
	// The bars fill the top two thirds: the first is light grey.
	if c := pixel(frame, 320, 10, 40); !near(c, [3]int{191, 191, 191}) {
		t.Errorf("the top left of the picture is %v: want the bot's first bar, light grey (its VP8 decoded)", c)
	}
}

// TestCompositionLayouts: two compositions of one stage at once, a PiP
// and a grid of four, each laid out as its layout says: the featured
// publisher behind a window in the corner asked for, with the window's
// publisher in it; four publishers in the quarters, in the order they
// joined.
func TestCompositionLayouts(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	withTestStorage(t, m)
	ctx := testContext(t)
	stage := createStage(t, c, "composition-layouts")
	enc, err := c.CreateEncoderConfiguration(ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(640), Height: aws.Int32(360), Framerate: aws.Float32(10), Bitrate: aws.Int32(600000)}})
	if err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	pubCtx, stopPublishing := context.WithCancel(context.Background())
	defer stopPublishing()
	publish := func(color string, attrs map[string]string) {
		t.Helper()
		tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String(color), Attributes: attrs})
		whipH264(pubCtx, t, aws.ToString(tok.Token), testmedia.EncodeColor(t, 4, 320, 180, color, 440))
		waitPublishing(t, c, stage, aws.ToString(tok.ParticipantId))
	}
	encoder := aws.ToString(enc.EncoderConfiguration.Arn)
	start := func(layout *types.LayoutConfiguration) *types.Composition {
		t.Helper()
		return startS3Composition(t, c, stage, storageARN, encoder, layout)
	}
	stop := func(comp *types.Composition) string {
		t.Helper()
		return recordingOf(t, m, stopComposition(t, c, comp))
	}

	publish("red", map[string]string{"featured": "true"})
	publish("blue", map[string]string{"pip": "true"})
	pip := start(&types.LayoutConfiguration{Pip: &types.PipConfiguration{FeaturedParticipantAttribute: aws.String("featured"),
		PipParticipantAttribute: aws.String("pip"), PipPosition: types.PipPositionTopLeft, PipOffset: 10,
		PipWidth: aws.Int32(160), PipHeight: aws.Int32(90)}})
	time.Sleep(6 * time.Second)
	publish("green", nil)
	publish("yellow", nil)
	grid := start(nil)
	time.Sleep(6 * time.Second)
	pipVideo, gridVideo := stop(pip), stop(grid)

	red, blue, green, yellow := [3]int{255, 0, 0}, [3]int{0, 0, 255}, [3]int{0, 128, 0}, [3]int{255, 255, 0}
	frame := frameAt(t, pipVideo, 4*time.Second, 640, 360)
	if got := pixel(frame, 640, 400, 250); !near(got, red) {
		t.Errorf("PiP: the picture behind the window is %v, want the featured publisher, red", got)
	}
	if got := pixel(frame, 640, 90, 55); !near(got, blue) {
		t.Errorf("PiP: the window's middle, top left (10 px in, 160x90), is %v, want the window's publisher, blue", got)
	}
	if got := pixel(frame, 640, 200, 55); near(got, blue) {
		t.Errorf("PiP: right of the window is %v: the window is wider than asked", got)
	}
	d := testmedia.FFprobe(t, gridVideo).Duration(t)
	frame = frameAt(t, gridVideo, d-1500*time.Millisecond, 640, 360)
	for i, q := range []struct {
		x, y int
		want [3]int
	}{{160, 90, red}, {480, 90, blue}, {160, 270, green}, {480, 270, yellow}} {
		if got := pixel(frame, 640, q.x, q.y); !near(got, q.want) {
			t.Errorf("grid: quarter %d (%d,%d) is %v, want %v", i+1, q.x, q.y, got, q.want)
		}
	}
}

// TestCompositionS3Down: the bucket's S3 service starts failing every
// request while a composition records to it: the destination, and with it
// the composition, ends FAILED with its events, not stuck ACTIVE.
func TestCompositionS3Down(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	var down atomic.Bool
	backend := s3mem.New()
	fake := gofakes3.New(backend).Server()
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>", http.StatusServiceUnavailable)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s3.Close)
	if err := backend.CreateBucket("recs"); err != nil {
		t.Fatal(err)
	}
	m, c := startServer(t, func(c *Config) {
		c.S3EndpointURL, c.S3AccessKeyID, c.S3SecretAccessKey = s3.URL, "AKIDTEST", "secret"
	})
	sc, err := c.CreateStorageConfiguration(testContext(t), &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String("recs")}})
	if err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}
	stage, encoder := redStage(t, c, "composition-s3-down")
	arn := startS3Composition(t, c, stage, aws.ToString(sc.StorageConfiguration.Arn), encoder, nil).Arn
	time.Sleep(3 * time.Second) // a segment or so uploaded
	down.Store(true)
	got := waitCompositionState(t, c, arn, types.CompositionStateFailed, 60*time.Second)
	if d := got.Destinations[0]; d.State != types.DestinationStateFailed || d.EndTime == nil {
		t.Errorf("the destination: %s, ended %v; want FAILED with its end", d.State, d.EndTime)
	}
	evs := compositionEvents(t, m, aws.ToString(arn))
	id := aws.ToString(got.Destinations[0].Id)
	want := []string{"Session Start", "Destination Start " + id, "Destination Failure " + id, "Session Failure"}
	if !slices.Equal(evs, want) {
		t.Errorf("events %v, want %v", evs, want)
	}
}

// TestCompositionEncoderKilled: the encoder of a composition's S3
// destination dies (kill -9): the destination and the composition are
// FAILED with their events, not left ACTIVE, and the server goes on.
func TestCompositionEncoderKilled(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	withTestStorage(t, m)
	stage, encoder := redStage(t, c, "composition-encoder-killed")
	arn := startS3Composition(t, c, stage, storageARN, encoder, nil).Arn
	waitCompositionState(t, c, arn, types.CompositionStateActive, 30*time.Second)

	// The composite's encoder: the one ffmpeg of this process reading
	// raw pictures (decoders read the publishers' streams).
	pid := childProcess(t, "-video_size")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := waitCompositionState(t, c, arn, types.CompositionStateFailed, 30*time.Second)
	id := aws.ToString(got.Destinations[0].Id)
	if d := got.Destinations[0]; d.State != types.DestinationStateFailed || d.EndTime == nil {
		t.Errorf("the destination: %s, ended %v; want FAILED with its end", d.State, d.EndTime)
	}
	evs := compositionEvents(t, m, aws.ToString(arn))
	want := []string{"Session Start", "Destination Start " + id, "Destination Failure " + id, "Session Failure"}
	if !slices.Equal(evs, want) {
		t.Errorf("events %v, want %v", evs, want)
	}
	// The server goes on: another composition of the stage starts.
	again := startS3Composition(t, c, stage, storageARN, encoder, nil)
	waitCompositionState(t, c, again.Arn, types.CompositionStateActive, 30*time.Second)
	stopComposition(t, c, again)
}

// redStage creates a stage where a red WHIP publisher publishes until
// the test ends, and a small encoder configuration to compose it with.
func redStage(t *testing.T, c *ivsrealtime.Client, name string) (stage, encoder string) {
	t.Helper()
	enc, err := c.CreateEncoderConfiguration(testContext(t), &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(10), Bitrate: aws.Int32(300000)}})
	if err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	stage = createStage(t, c, name)
	pubCtx, stopPublishing := context.WithCancel(context.Background())
	t.Cleanup(stopPublishing)
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String("red")})
	whipH264(pubCtx, t, aws.ToString(tok.Token), testmedia.EncodeColor(t, 4, 320, 180, "red", 440))
	waitPublishing(t, c, stage, aws.ToString(tok.ParticipantId))
	return stage, aws.ToString(enc.EncoderConfiguration.Arn)
}

// childProcess returns the pid of the only child of this process whose
// command line has arg.
func childProcess(t *testing.T, arg string) int {
	t.Helper()
	var found []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ")".
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		if slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("children of this process with %s: %v, want one", arg, found)
	}
	return found[0]
}
