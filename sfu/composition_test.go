package sfu_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/smithy-go"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/sfu"
)

const testChannel = "arn:aws:ivs:us-east-1:123456789012:channel/abcdEFGH1234"

// compositionHarness is a harness whose server runs compositions with a
// short idle timeout, sending channel testChannel to target, and a small
// encoder configuration for them.
func compositionHarness(t *testing.T, target string, idle time.Duration) (*harness, string) {
	t.Helper()
	testmedia.NeedFFmpeg(t)
	var h *harness
	// The media plane's clock is the harness's, once there is one.
	var clk atomic.Pointer[clock]
	now := func() time.Time {
		if c := clk.Load(); c != nil {
			return c.Now()
		}
		return time.Now()
	}
	h = newHarness(t, sfu.WithClock(now), sfu.WithCompositions(sfu.CompositionConfig{
		Store: lazyStore{func() sfu.CompositionStore { return h.db }}, FFmpeg: "ffmpeg",
		Channels: map[string]string{testChannel: target}, WorkDir: t.TempDir(),
		IdleTimeout: idle, ReconnectWait: 200 * time.Millisecond, ReconnectAttempts: 2,
	}))
	clk.Store(h.clock)
	out, err := h.client.CreateEncoderConfiguration(testContext(t), &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(10), Bitrate: aws.Int32(300000)}})
	if err != nil {
		t.Fatalf("CreateEncoderConfiguration: %v", err)
	}
	return h, aws.ToString(out.EncoderConfiguration.Arn)
}

// lazyStore is the harness's store, which exists only once the harness
// is made, after its options.
type lazyStore struct{ get func() sfu.CompositionStore }

func (l lazyStore) CreateComposition(ctx context.Context, c *ivsrt.Composition) error {
	return l.get().CreateComposition(ctx, c)
}
func (l lazyStore) UpdateComposition(ctx context.Context, c *ivsrt.Composition, evs ...*ivsrt.StreamEvent) error {
	return l.get().UpdateComposition(ctx, c, evs...)
}
func (l lazyStore) GetEncoderConfiguration(ctx context.Context, arn ivsrt.EncoderConfigurationARN) (*ivsrt.EncoderConfiguration, error) {
	return l.get().GetEncoderConfiguration(ctx, arn)
}
func (l lazyStore) GetStorageConfiguration(ctx context.Context, arn ivsrt.StorageConfigurationARN) (*ivsrt.StorageConfiguration, error) {
	return l.get().GetStorageConfiguration(ctx, arn)
}

// startChannelComposition starts a composition of stage to channel.
func startChannelComposition(t *testing.T, h *harness, stage, encoder, channel string) *types.Composition {
	t.Helper()
	out, err := h.client.StartComposition(testContext(t), &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage),
		Destinations: []types.DestinationConfiguration{{Channel: &types.ChannelDestinationConfiguration{
			ChannelArn: aws.String(channel), EncoderConfigurationArn: aws.String(encoder)}}}})
	if err != nil {
		t.Fatalf("StartComposition: %v", err)
	}
	return out.Composition
}

// waitComposition waits for the composition to reach state, and returns it.
func waitComposition(t *testing.T, h *harness, arn *string, state types.CompositionState, within time.Duration) *types.Composition {
	t.Helper()
	var c *types.Composition
	deadline := time.Now().Add(within)
	for {
		out, err := h.client.GetComposition(testContext(t), &ivsrealtime.GetCompositionInput{Arn: arn})
		if err != nil {
			t.Fatalf("GetComposition: %v", err)
		}
		c = out.Composition
		if c.State == state {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("composition %s after %v, want %s", c.State, within, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamEvents returns the names of the composition's stream events with
// their destination ids and reasons.
func streamEvents(t *testing.T, h *harness, arn string) []string {
	t.Helper()
	evs, err := h.db.ReadEvents(testContext(t), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.DetailType == ivsrt.DetailTypeCompositionStateChange && ev.Detail["composition_arn"] == arn {
			s := ev.EventName()
			if d, ok := ev.Detail["destination_id"].(string); ok && d != "" {
				s += " (destination)"
			}
			if r, ok := ev.Detail["reason"].(string); ok {
				s += ": " + r
			}
			out = append(out, s)
		}
	}
	return out
}

// freePort returns a TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestCompositionToChannel: a composition of a stage sends its stream to
// the RTMP target its channel is mapped to (ffmpeg listening receives it,
// at the encoder configuration's size); with nobody publishing it stops
// after IVS's idle timeout, a minute on the server's clock, with IVS's
// events; its GetComposition answers until 5 minutes after it ended, then
// not.
func TestCompositionToChannel(t *testing.T) {
	port := freePort(t)
	target := fmt.Sprintf("rtmp://127.0.0.1:%d/live/key", port)
	h, encoder := compositionHarness(t, target, 0)
	received := filepath.Join(t.TempDir(), "received.flv")
	listener := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-listen", "1", "-timeout", "20",
		"-i", target, "-c", "copy", received)
	var stderr strings.Builder
	listener.Stderr = &stderr
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	listened := make(chan error, 1)
	go func() { listened <- listener.Wait() }()
	t.Cleanup(func() { listener.Process.Kill() })
	time.Sleep(500 * time.Millisecond) // ffmpeg listens

	stage := h.createStage("to-channel")
	c := startChannelComposition(t, h, stage, encoder, testChannel)
	waitComposition(t, h, c.Arn, types.CompositionStateActive, 20*time.Second)
	// Nobody publishes: it goes on until a minute has passed, then stops.
	time.Sleep(3 * time.Second)
	h.clock.Advance(50 * time.Second)
	time.Sleep(2 * time.Second)
	if got := waitComposition(t, h, c.Arn, types.CompositionStateActive, 0); got.EndTime != nil {
		t.Errorf("ended at %v, before the idle timeout", got.EndTime)
	}
	h.clock.Advance(10 * time.Second)
	ended := waitComposition(t, h, c.Arn, types.CompositionStateStopped, 10*time.Second)
	if ended.EndTime == nil || ended.StartTime == nil || ended.EndTime.Sub(*ended.StartTime) < ivsrt.CompositionIdleTimeout {
		t.Errorf("the composition ran from %v to %v: want the idle timeout, a minute", ended.StartTime, ended.EndTime)
	}
	if d := ended.Destinations[0]; d.State != types.DestinationStateStopped {
		t.Errorf("its destination is %s, want STOPPED", d.State)
	}
	want := []string{"Session Start", "Destination Start (destination)", "Destination End (destination)", "Session End"}
	if got := streamEvents(t, h, aws.ToString(c.Arn)); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	select {
	case err := <-listened:
		if err != nil {
			t.Fatalf("the RTMP listener: %v: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the RTMP listener did not end with the stream")
	}
	p := testmedia.FFprobe(t, received)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 180 {
		t.Errorf("the channel received %+v: want H.264 320x180 and audio", p.Streams)
	}

	// Visible for 5 minutes after it ended, then gone.
	h.clock.Advance(4 * time.Minute)
	if _, err := h.client.GetComposition(testContext(t), &ivsrealtime.GetCompositionInput{Arn: c.Arn}); err != nil {
		t.Errorf("GetComposition 4 minutes after the end: %v", err)
	}
	h.clock.Advance(2 * time.Minute)
	_, err := h.client.GetComposition(testContext(t), &ivsrealtime.GetCompositionInput{Arn: c.Arn})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("GetComposition 6 minutes after the end: %v, want ResourceNotFoundException", err)
	}
	list, err := h.client.ListCompositions(testContext(t), &ivsrealtime.ListCompositionsInput{FilterByStageArn: aws.String(stage)})
	if err != nil || len(list.Compositions) != 0 {
		t.Errorf("ListCompositions 6 minutes after the end: %+v, %v; want none", list, err)
	}
}

// TestCompositionFailures: a channel without a target fails the
// destination and, alone, the composition; a target that cannot be
// reached is RECONNECTING, then FAILED; a deleted stage stops its
// compositions; all with their events, none stuck.
func TestCompositionFailures(t *testing.T) {
	unreachable := fmt.Sprintf("rtmp://127.0.0.1:%d/live/key", freePort(t))
	h, encoder := compositionHarness(t, unreachable, time.Minute)
	stage := h.createStage("failures")

	unmapped := "arn:aws:ivs:us-east-1:123456789012:channel/notMapped123"
	c := startChannelComposition(t, h, stage, encoder, unmapped)
	got := waitComposition(t, h, c.Arn, types.CompositionStateFailed, 20*time.Second)
	if d := got.Destinations[0]; d.State != types.DestinationStateFailed {
		t.Errorf("the unmapped channel's destination is %s, want FAILED", d.State)
	}
	evs := streamEvents(t, h, aws.ToString(c.Arn))
	if len(evs) != 2 || !strings.HasPrefix(evs[0], "Destination Failure (destination): no RTMP target") || !strings.HasPrefix(evs[1], "Session Failure") {
		t.Errorf("events of the unmapped channel %v: want its Destination Failure, then Session Failure", evs)
	}

	c = startChannelComposition(t, h, stage, encoder, testChannel)
	got = waitComposition(t, h, c.Arn, types.CompositionStateFailed, 40*time.Second)
	evs = streamEvents(t, h, aws.ToString(c.Arn))
	t.Logf("events of the unreachable channel: %v", evs)
	if !slices.ContainsFunc(evs, func(e string) bool { return strings.HasPrefix(e, "Destination Reconnecting") }) ||
		!strings.HasPrefix(evs[len(evs)-1], "Session Failure") {
		t.Errorf("events of the unreachable channel %v: want Destination Reconnecting, then the failures", evs)
	}

	// A deleted stage stops its compositions.
	port := freePort(t)
	target := fmt.Sprintf("rtmp://127.0.0.1:%d/live/key", port)
	h2, encoder2 := compositionHarness(t, target, time.Minute)
	listener := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-listen", "1", "-timeout", "30",
		"-i", target, "-f", "null", "-")
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Process.Kill(); listener.Wait() })
	time.Sleep(500 * time.Millisecond)
	stage2 := h2.createStage("deleted")
	c = startChannelComposition(t, h2, stage2, encoder2, testChannel)
	waitComposition(t, h2, c.Arn, types.CompositionStateActive, 20*time.Second)
	if _, err := h2.client.DeleteStage(testContext(t), &ivsrealtime.DeleteStageInput{Arn: aws.String(stage2)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	// Deleting the stage stops its composition, as StopComposition.
	waitComposition(t, h2, c.Arn, types.CompositionStateStopped, 20*time.Second)
	evs = streamEvents(t, h2, aws.ToString(c.Arn))
	if want := []string{"Session Start", "Destination Start (destination)", "Destination End (destination)", "Session End"}; !slices.Equal(evs, want) {
		t.Errorf("events after DeleteStage %v, want %v", evs, want)
	}

	// Bad input gets the AWS errors, and starts nothing.
	_, err := h2.client.StartComposition(testContext(t), &ivsrealtime.StartCompositionInput{StageArn: aws.String(stage2),
		Destinations: []types.DestinationConfiguration{{}}})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Errorf("a destination with neither channel nor s3: %v, want ValidationException", err)
	}
}
