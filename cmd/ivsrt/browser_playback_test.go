//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/recording"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// The size of testmedia's video.
const (
	playbackWidth  = 640
	playbackHeight = 360
)

// TestBrowserPlayRecording records a publisher of H.264 and Opus over
// WHIP for 9 seconds, disconnects it and waits for its recording to be
// STOPPED; then the console, in Chromium, shows the recording's state and
// where it is, and its Play button plays it in the page: the video runs
// past 3 seconds at the size published, every segment is appended, and
// the media element reports no error.
func TestBrowserPlayRecording(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t)
	ctx := testContext(t)
	media := testmedia.Encode(t, 3) // looped
	const bucket = "recs"
	arn := recordingStage(t, c, bucket)
	stageID := arn[strings.LastIndex(arn, "/")+1:]
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("alice")})
	pid := aws.ToString(tok.ParticipantId)

	pctx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	whipH264(pctx, t, aws.ToString(tok.Token), media)
	var sid string
	p := playbackWaitRecording(t, c, arn, &sid, pid, func(p *types.Participant) bool {
		return p.RecordingState == types.ParticipantRecordingStateActive
	}, "ACTIVE")
	time.Sleep(9 * time.Second)
	if _, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(arn), ParticipantId: aws.String(pid)}); err != nil {
		t.Fatalf("DisconnectParticipant: %v", err)
	}
	stopPublishing()
	p = playbackWaitRecording(t, c, arn, &sid, pid, func(p *types.Participant) bool {
		return p.RecordingState == types.ParticipantRecordingStateStopped || p.RecordingState == types.ParticipantRecordingStateFailed
	}, "STOPPED")
	if p.RecordingState != types.ParticipantRecordingStateStopped {
		t.Fatalf("recording %s, want STOPPED", p.RecordingState)
	}
	prefix := aws.ToString(p.RecordingS3Prefix)
	dir := filepath.Join(m.Config.DataDir, "s3", bucket, filepath.FromSlash(prefix))
	multivariant, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.MultivariantKey)))
	if err != nil {
		t.Fatal(err)
	}
	codecs := regexp.MustCompile(`CODECS="([^"]+)"`).FindSubmatch(multivariant)
	if codecs == nil || !strings.Contains(string(codecs[1]), "avc1.") || !strings.Contains(string(codecs[1]), "opus") {
		t.Fatalf("multivariant playlist %s: want CODECS of H.264 and Opus", multivariant)
	}
	mime := fmt.Sprintf("video/mp4; codecs=%q", codecs[1])
	playlist, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.PlaylistKey)))
	if err != nil {
		t.Fatal(err)
	}
	segments := strings.Count(string(playlist), "#EXTINF:")
	if segments < 2 || !strings.Contains(string(playlist), "#EXT-X-ENDLIST") {
		t.Fatalf("playlist %s: want 2 segments or more, and its end", playlist)
	}

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	base := "http://" + m.Addr()
	console.Navigate(base + "/console#stage=" + stageID + "&session=" + sid)
	// Debian's Chromium decodes H.264; a build without it cannot pass.
	if !webtest.Eval[bool](console, `MediaSource.isTypeSupported(`+strconv.Quote(mime)+`)`) {
		version := webtest.Eval[string](console, `navigator.userAgent`)
		t.Skipf("this Chromium (%s) cannot play the recording: MediaSource.isTypeSupported(%q) is false", version, mime)
	}
	console.WaitFor("the sign-in form", `!document.getElementById("sign-in").hidden`, 10*time.Second)
	console.Do("sign in",
		chromedp.SetValue(chromedp.ID("access-key-id"), testAccessKeyID),
		chromedp.SetValue(chromedp.ID("secret-access-key"), testSecretAccessKey),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)),
	)
	row := fmt.Sprintf(`#participants tr[data-participant-id=%q]`, pid)
	console.WaitFor("alice's recording STOPPED, with its Play button",
		`document.querySelector('`+row+`')?.dataset.recordingState === "STOPPED" && !!document.querySelector('`+row+` [data-action=play]')`,
		15*time.Second)
	where := webtest.Eval[string](console, `document.querySelector('`+row+` .recording-where')?.textContent || ""`)
	if want := "s3://" + bucket + "/" + prefix; where != want {
		t.Errorf("the row says the recording is at %q, want %q", where, want)
	}

	console.Do("play", chromedp.Click(chromedp.CSS(row+` [data-action=play]`)))
	console.WaitFor("the video past 3 s", `(() => {
		const v = document.getElementById("player");
		if (v.error) throw new Error("MediaError " + v.error.code + ": " + v.error.message);
		return v.currentTime > 3;
	})()`, 30*time.Second)
	console.WaitFor("every segment appended", `document.getElementById("player-status").dataset.state === "done"`, 10*time.Second)
	type state struct {
		Width, Height int
		CurrentTime   float64
		Duration      float64
		Error         string
		Status        string
		StatusText    string
		ReadyState    int
		Paused        bool
	}
	got := webtest.Eval[state](console, `(() => {
		const v = document.getElementById("player");
		const s = document.getElementById("player-status");
		return { width: v.videoWidth, height: v.videoHeight, currentTime: v.currentTime, duration: v.duration,
			error: v.error ? v.error.code + ": " + v.error.message : "", status: s.dataset.state, statusText: s.textContent,
			readyState: v.readyState, paused: v.paused };
	})()`)
	t.Logf("player: %+v", got)
	if got.Width != playbackWidth || got.Height != playbackHeight {
		t.Errorf("video size got %dx%d, want %dx%d", got.Width, got.Height, playbackWidth, playbackHeight)
	}
	if got.Error != "" {
		t.Errorf("MediaError %s", got.Error)
	}
	// The media's time starts at 0, where its first keyframe is, and
	// lasts what was published, give or take the keyframe interval (2 s).
	if got.Duration < 8.5 || got.Duration > 10.5 {
		t.Errorf("duration got %.2f s, want about the 9 s published", got.Duration)
	}
	if want := strconv.Itoa(segments) + " segments"; !strings.Contains(got.StatusText, want) {
		t.Errorf("status got %q, want it to say %q", got.StatusText, want)
	}
	console.FullScreenshot("console-player")
	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// playbackWaitRecording polls GetParticipant of participant in the stage's
// first session (its id stored in *sid) until done says so, for 30 s.
func playbackWaitRecording(t *testing.T, c *ivsrealtime.Client, arn string, sid *string, participant string,
	done func(*types.Participant) bool, what string) *types.Participant {
	t.Helper()
	ctx := testContext(t)
	deadline := time.Now().Add(30 * time.Second)
	var p *types.Participant
	for {
		if *sid == "" {
			if sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)}); err == nil && len(sessions.StageSessions) > 0 {
				*sid = aws.ToString(sessions.StageSessions[0].SessionId)
			}
		}
		if *sid != "" {
			out, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn), SessionId: aws.String(*sid), ParticipantId: aws.String(participant)})
			if err == nil {
				p = out.Participant
				if done(p) {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			state := "unknown"
			if p != nil {
				state = string(p.RecordingState)
			}
			t.Fatalf("recording of %s not %s within 30 s: %s", participant, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
