//go:build unix

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/recording"
)

// whipH264 publishes m (H.264 and Opus) in real time to the WHIP URL of
// token, looping, until ctx ends.
func whipH264(ctx context.Context, t *testing.T, token string, m testmedia.Media) {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		WHIPURL string `json:"whip_url"`
	}
	json.Unmarshal(raw, &claims)
	var me webrtc.MediaEngine
	h264 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	opus := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: h264, PayloadType: 102}, webrtc.RTPCodecTypeVideo)
	me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opus, PayloadType: 111}, webrtc.RTPCodecTypeAudio)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	video, _ := webrtc.NewTrackLocalStaticRTP(h264, "video", "publisher")
	audio, _ := webrtc.NewTrackLocalStaticRTP(opus, "audio", "publisher")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	pc.SetLocalDescription(offer)
	<-gathered
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, claims.WHIPURL, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := localHTTPClient(t).Do(req)
	if err != nil {
		t.Fatalf("WHIP: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP: %s %s", resp.Status, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	go func() {
		l := testmedia.NewRTPLoop(m, 1200)
		start := time.Now()
		for {
			u := l.Next()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(u.At))):
			}
			track := audio
			if u.Video {
				track = video
			}
			for _, p := range u.Packets {
				track.WriteRTP(p)
			}
		}
	}()
}

// TestKill9WhileRecording: the server is killed (SIGKILL) while it records
// a publisher; started again on the same data, it says the recording
// FAILED in the API, in the event stream and in recording-failed.json, and
// what was uploaded before the kill plays.
func TestKill9WhileRecording(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	bin, data, srv := startBinary(t)
	m := testmedia.Encode(t, 4)
	c := srv.client()
	ctx := testContext(t)
	arn := recordingStage(t, c, "recs")
	out, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	whipH264(pctx, t, aws.ToString(out.ParticipantToken.Token), m)
	pid := aws.ToString(out.ParticipantToken.ParticipantId)

	// Recording, and a few segments (of 6 s by default: wait for the
	// first) uploaded.
	var sid *string
	var p *types.Participant
	deadline := time.Now().Add(60 * time.Second)
	for {
		sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
		if err == nil && len(sessions.StageSessions) > 0 {
			sid = sessions.StageSessions[0].SessionId
			if got, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn), SessionId: sid, ParticipantId: aws.String(pid)}); err == nil {
				p = got.Participant
			}
		}
		if p != nil && p.RecordingState == types.ParticipantRecordingStateActive {
			playlist := filepath.Join(data, "s3", "recs", filepath.FromSlash(aws.ToString(p.RecordingS3Prefix)), filepath.FromSlash(recording.PlaylistKey))
			if b, err := os.ReadFile(playlist); err == nil && strings.Contains(string(b), "1.mp4") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment recorded within 60 s: participant %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	prefix := aws.ToString(p.RecordingS3Prefix)
	srv.kill()
	stopPublishing()

	srv = durableStart(t, bin, data, srv.addr)
	c = srv.client()
	got, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn), SessionId: sid, ParticipantId: aws.String(pid)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Participant.RecordingState != types.ParticipantRecordingStateFailed || aws.ToString(got.Participant.RecordingS3Prefix) != prefix {
		t.Errorf("after the restart: recording %s at %q, want FAILED at %q", got.Participant.RecordingState, aws.ToString(got.Participant.RecordingS3Prefix), prefix)
	}
	var last string
	for _, ev := range kill9Committed(t, data) {
		if ev.DetailType == "IVS Participant Recording State Change" {
			last = ev.EventName()
		}
	}
	if last != "Recording End Failure" {
		t.Errorf("last recording event %q, want Recording End Failure", last)
	}
	dir := filepath.Join(data, "s3", "recs", filepath.FromSlash(prefix))
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.FailedKey)))
	var meta struct {
		Status    string `json:"recording_status"`
		StartedAt string `json:"recording_started_at"`
		Media     struct {
			HLS struct {
				DurationMS int64 `json:"duration_ms"`
			} `json:"hls"`
		} `json:"media"`
	}
	if err != nil || json.Unmarshal(b, &meta) != nil || meta.Status != "RECORDING_ENDED_WITH_FAILURE" || meta.StartedAt == "" {
		t.Errorf("recording-failed.json: %s %v", b, err)
	}
	// The playlist the killed server left was closed after the restart:
	// it plays as a finished recording, as long as the metadata says.
	playlist := filepath.Join(dir, filepath.FromSlash(recording.MultivariantKey))
	pl, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.PlaylistKey)))
	if !strings.Contains(string(pl), "#EXT-X-ENDLIST") || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Errorf("playlist after the restart:\n%s", pl)
	}
	d := testmedia.FFprobe(t, playlist).Duration(t)
	if d < 5*time.Second {
		t.Errorf("what was uploaded before the kill plays %v, want at least the first segment (6 s)", d)
	}
	if diff := d - time.Duration(meta.Media.HLS.DurationMS)*time.Millisecond; diff < -100*time.Millisecond || diff > 100*time.Millisecond {
		t.Errorf("the playlist plays %v, and recording-failed.json says %d ms", d, meta.Media.HLS.DurationMS)
	}
}
