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
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
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
		pay := &codecs.H264Payloader{}
		start := time.Now()
		var vseq, aseq uint16
		for loop := 0; ; loop++ {
			base := time.Duration(loop) * time.Duration(len(m.Frames)) * time.Second / 30
			fi, ai := 0, 0
			for fi < len(m.Frames) || ai < len(m.Opus) {
				vAt, aAt := base+time.Duration(fi)*time.Second/30, base+time.Duration(ai)*20*time.Millisecond
				next := vAt
				if fi >= len(m.Frames) || ai < len(m.Opus) && aAt < vAt {
					next = aAt
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(start.Add(next))):
				}
				if fi < len(m.Frames) && vAt == next {
					var pkts [][]byte
					for _, nalu := range m.Frames[fi] {
						pkts = append(pkts, pay.Payload(1200, append([]byte{0, 0, 0, 1}, nalu...))...)
					}
					ts := uint32((time.Duration(loop*len(m.Frames)+fi) * time.Second / 30) * 90000 / time.Second)
					for j, b := range pkts {
						video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq, Timestamp: ts, Marker: j == len(pkts)-1}, Payload: b})
						vseq++
					}
					fi++
				} else {
					ts := uint32((loop*len(m.Opus) + ai) * 960)
					audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: ts}, Payload: m.Opus[ai]})
					aseq++
					ai++
				}
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
	if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.FailedKey))); err != nil || !strings.Contains(string(b), "RECORDING_ENDED_WITH_FAILURE") {
		t.Errorf("recording-failed.json: %s %v", b, err)
	}
	live, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.PlaylistKey)))
	if err != nil {
		t.Fatal(err)
	}
	// A copy that says it ended, beside the segments it names.
	copyAt := filepath.Join(dir, filepath.FromSlash(recording.RenditionDir), "ended.m3u8")
	os.WriteFile(copyAt, append(live, "#EXT-X-ENDLIST\n"...), 0o644)
	if d := testmedia.FFprobe(t, copyAt).Duration(t); d < 5*time.Second {
		t.Errorf("what was uploaded before the kill plays %v, want at least the first segment (6 s)", d)
	}
}
