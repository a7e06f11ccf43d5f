package main

import (
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt/internal/tcpfreeze"
	"github.com/ivsrt/ivsrt/internal/testmedia"
)

// TestKill9WhileIngesting: the server is killed (SIGKILL) while an RTMP
// encoder publishes; started again on the same data, the encoder's
// participant is DISCONNECTED and its session over, its configuration
// INACTIVE, and the encoder publishes again with the same key.
func TestKill9WhileIngesting(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	_, port, _ := net.SplitHostPort(durableFreeAddr(t))
	args := []string{"--rtmp-port", port}
	bin, data, srv := startBinary(t, args...)
	c := srv.client()
	ctx := testContext(t)
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("ingest-kill9")})
	if err != nil {
		t.Fatal(err)
	}
	stage := aws.ToString(out.Stage.Arn)
	ic := createIngest(t, c, stage, types.IngestProtocolRtmp, "obs")
	rtmpURL, _ := stageEndpoints(t, c, stage)
	enc := startEncoder(t, rtmpURL+aws.ToString(ic.StreamKey))
	id := aws.ToString(ic.ParticipantId)
	waitState(t, c, stage, id, "CONNECTED")
	if s := ingestState(t, c, ic.Arn); s != types.IngestConfigurationStateActive {
		t.Fatalf("configuration %s while its encoder publishes", s)
	}
	sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
	if err != nil || len(sessions.StageSessions) != 1 {
		t.Fatalf("ListStageSessions: %v %v", sessions, err)
	}
	first := aws.ToString(sessions.StageSessions[0].SessionId)

	srv.kill()
	enc.waitExit(t, 20*time.Second) // its connection is gone
	srv = durableStart(t, bin, data, srv.addr, args...)
	c = srv.client()
	got, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(first),
		ParticipantId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetParticipant: %v", err)
	}
	if got.Participant.State != types.ParticipantStateDisconnected {
		t.Errorf("after the restart the encoder is %s in the old session, want DISCONNECTED", got.Participant.State)
	}
	if s := ingestState(t, c, ic.Arn); s != types.IngestConfigurationStateInactive {
		t.Errorf("after the restart the configuration is %s, want INACTIVE", s)
	}

	// The encoder comes back: a new session, the configuration ACTIVE.
	startEncoder(t, rtmpURL+aws.ToString(ic.StreamKey))
	eventually(t, 20*time.Second, "the encoder in a new session", func() error {
		s, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
		if err != nil || len(s.StageSessions) != 2 || s.StageSessions[0].EndTime != nil {
			return fmt.Errorf("sessions %+v, %v", s, err)
		}
		p, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage),
			SessionId: s.StageSessions[0].SessionId, ParticipantId: aws.String(id)})
		if err != nil || p.Participant.State != types.ParticipantStateConnected || !p.Participant.Published {
			return fmt.Errorf("participant %+v, %v", p, err)
		}
		return nil
	})
	if s := ingestState(t, c, ic.Arn); s != types.IngestConfigurationStateActive {
		t.Errorf("the encoder back, the configuration is %s, want ACTIVE", s)
	}
}

// TestIngestRecorded: an RTMP encoder on a stage that records is recorded
// as any publisher: its recording goes ACTIVE then STOPPED, and its HLS
// plays in ffprobe with the encoder's H.264 at its size, and audio.
func TestIngestRecorded(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	stage := recordingStage(t, c, "recs")
	ic := createIngest(t, c, stage, types.IngestProtocolRtmp, "obs")
	rtmpURL, _ := stageEndpoints(t, c, stage)
	enc := startEncoder(t, rtmpURL+aws.ToString(ic.StreamKey))
	id := aws.ToString(ic.ParticipantId)
	p := waitRecording(t, c, stage, id, types.ParticipantRecordingStateActive)
	time.Sleep(5 * time.Second)
	enc.stop()
	waitRecording(t, c, stage, id, types.ParticipantRecordingStateStopped)

	var playlists []string
	root := filepath.Join(m.Config.DataDir, "s3", "recs", aws.ToString(p.RecordingS3Prefix))
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, "playlist.m3u8") {
			playlists = append(playlists, path)
		}
		return nil
	})
	if len(playlists) == 0 {
		t.Fatalf("no playlist.m3u8 under %s", root)
	}
	probe := testmedia.FFprobe(t, playlists[0])
	var video, audio bool
	for _, s := range probe.Streams {
		switch s.CodecType {
		case "video":
			video = s.CodecName == "h264" && s.Width == 640 && s.Height == 360
		case "audio":
			audio = true
		}
	}
	if d := probe.Duration(t); !video || !audio || d < 3*time.Second {
		t.Errorf("the recording %s: streams %+v, %v long; want the encoder's 640x360 H.264, audio, 3 s or more", playlists[0], probe.Streams, d)
	}
}

// TestIngestRedundant: a configuration with redundant ingest has two
// stream keys; two encoders publish the same content with them at once,
// each a participant of its own; the configuration is ACTIVE while
// either publishes.
func TestIngestRedundant(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	stage := createStage(t, c, "redundant")
	// The SDK of go.mod predates redundantIngest: a signed request.
	res := signedRequest(t, m, "POST", "/CreateIngestConfiguration",
		`{"stageArn":"`+stage+`","ingestProtocol":"RTMP","insecureIngest":true,"redundantIngest":true,"userId":"main"}`)
	var created struct {
		IngestConfiguration struct {
			Arn                        string
			ParticipantID              string `json:"participantId"`
			StreamKey                  string `json:"streamKey"`
			RedundantIngestCredentials []struct {
				ParticipantID string `json:"participantId"`
				StreamKey     string `json:"streamKey"`
			} `json:"redundantIngestCredentials"`
		} `json:"ingestConfiguration"`
	}
	res.decode(t, &created)
	ic := created.IngestConfiguration
	if len(ic.RedundantIngestCredentials) != 1 {
		t.Fatalf("CreateIngestConfiguration with redundantIngest: %s", res.Body)
	}
	backup := ic.RedundantIngestCredentials[0]
	rtmpURL, _ := stageEndpoints(t, c, stage)
	primary := startEncoder(t, rtmpURL+ic.StreamKey)
	startEncoder(t, rtmpURL+backup.StreamKey)
	waitState(t, c, stage, ic.ParticipantID, "CONNECTED")
	waitState(t, c, stage, backup.ParticipantID, "CONNECTED")

	primary.stop()
	waitState(t, c, stage, ic.ParticipantID, "DISCONNECTED")
	if s := ingestState(t, c, aws.String(ic.Arn)); s != types.IngestConfigurationStateActive {
		t.Errorf("the backup still publishing, the configuration is %s, want ACTIVE", s)
	}
}

// TestIngestReconnectAfterSilentDrop: an encoder's connection goes
// silent without closing (a network that dropped it); the encoder
// reconnects with its key before the server could find the old
// connection dead: the new stream takes over (the old one ends and its
// participant leaves; the new one joins) rather than being refused as a
// reuse of the key.
func TestIngestReconnectAfterSilentDrop(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	_, c := startServer(t)
	stage := createStage(t, c, "reconnect")
	ic := createIngest(t, c, stage, types.IngestProtocolRtmp, "camera")
	id := aws.ToString(ic.ParticipantId)
	rtmpURL, _ := stageEndpoints(t, c, stage)
	u, err := url.Parse(rtmpURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpfreeze.Start(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.Addr()
	startEncoder(t, viaProxy.String()+aws.ToString(ic.StreamKey))
	waitPublishing(t, c, stage, id)

	proxy.Freeze()
	time.Sleep(3 * time.Second)
	second := startEncoder(t, rtmpURL+aws.ToString(ic.StreamKey))
	// The old stream's leave emptied the stage, which ended its session:
	// the new one publishes in a session of its own.
	eventually(t, 20*time.Second, "the reconnected encoder publishing", func() error {
		sessions, err := c.ListStageSessions(testContext(t), &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
		if err != nil || len(sessions.StageSessions) != 2 {
			return fmt.Errorf("sessions %+v, %v; want 2", sessions, err)
		}
		newer, older := aws.ToString(sessions.StageSessions[0].SessionId), aws.ToString(sessions.StageSessions[1].SessionId)
		for _, w := range []struct{ session, want string }{
			{older, "JOINED PUBLISH_STARTED PUBLISH_STOPPED LEFT"},
			{newer, "JOINED PUBLISH_STARTED"},
		} {
			if got := strings.Join(participantEventsIn(t, c, stage, w.session, id), " "); got != w.want {
				return fmt.Errorf("session %s: events %q, want %q", w.session, got, w.want)
			}
		}
		return nil
	})
	time.Sleep(time.Second)
	if !second.running() {
		t.Errorf("the reconnected encoder stopped: %s", second.waitExit(t, time.Second))
	}
	if s := ingestState(t, c, ic.Arn); s != types.IngestConfigurationStateActive {
		t.Errorf("the configuration is %s, want ACTIVE", s)
	}
}

// TestIngestDeleteWhileStreaming: with an encoder publishing, deleting
// its configuration is a conflict unless forced, and forced it
// disconnects the encoder; deleting its stage disconnects it too and
// leaves the configuration without a stage.
func TestIngestDeleteWhileStreaming(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	_, c := startServer(t)
	ctx := testContext(t)
	publish := func(name string) (stage string, ic *types.IngestConfiguration, e *encoder) {
		t.Helper()
		stage = createStage(t, c, name)
		ic = createIngest(t, c, stage, types.IngestProtocolRtmp, name)
		rtmpURL, _ := stageEndpoints(t, c, stage)
		e = startEncoder(t, rtmpURL+aws.ToString(ic.StreamKey))
		waitPublishing(t, c, stage, aws.ToString(ic.ParticipantId))
		return stage, ic, e
	}

	stage, ic, e := publish("forced")
	_, err := c.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn})
	checkError(t, err, conflict(aws.ToString(ic.Arn)))
	if !e.running() {
		t.Fatalf("the encoder stopped after a refused delete: %s", e.waitExit(t, time.Second))
	}
	if _, err := c.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true}); err != nil {
		t.Fatalf("DeleteIngestConfiguration with force: %v", err)
	}
	e.waitExit(t, 15*time.Second)
	waitState(t, c, stage, aws.ToString(ic.ParticipantId), "DISCONNECTED")

	stage, ic, e = publish("deleted")
	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(stage)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	e.waitExit(t, 15*time.Second)
	eventually(t, 10*time.Second, "the configuration without a stage, inactive", func() error {
		out, err := c.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
		if err != nil {
			return err
		}
		if got := out.IngestConfiguration; aws.ToString(got.StageArn) != "" || got.State != types.IngestConfigurationStateInactive {
			return fmt.Errorf("stage %q, state %s; want \"\", INACTIVE", aws.ToString(got.StageArn), got.State)
		}
		return nil
	})
}
