//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// TestBrowserPlayRecording records a publisher of H.264 and Opus over
// WHIP for 9 seconds, disconnects it and waits for its recording to be
// STOPPED; then the console, in Chromium, shows the recording's state and
// where it is, and its Play button plays it in the page: the video runs
// past 3 seconds at the size published, every segment is appended, the
// media's time is the recording's, and the media element reports no
// error.
func TestBrowserPlayRecording(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	rec := playbackRecord(t, testmedia.Encode(t, 3)) // 640x360, looped
	if rec.maps != 1 {
		t.Errorf("playlist %s: %d init segments, want 1", rec.playlist, rec.maps)
	}
	console, got := playbackPlay(t, rec, 3)
	if got.Width != 640 || got.Height != 360 {
		t.Errorf("video size got %dx%d, want 640x360", got.Width, got.Height)
	}
	console.FullScreenshot("console-player")

	// Close stops it; so does leaving for another tab.
	stopped := `document.getElementById("player-card").hidden && !document.getElementById("player").hasAttribute("src")`
	console.Do("close the player", chromedp.Click(chromedp.ID("player-close")))
	console.WaitFor("the player closed", stopped, 5*time.Second)
	console.Do("play again", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#participants tr[data-participant-id=%q] [data-action=play]`, rec.participantID))))
	console.WaitFor("playing again", `document.getElementById("player").currentTime > 0.5`, 15*time.Second)
	console.Do("open the storage tab", chromedp.Click(chromedp.CSS(`#tabs [data-tab=storage]`)))
	console.WaitFor("the player stopped", stopped, 5*time.Second)
}

// TestBrowserPlayRecordingSizeChanges: the publisher's video changes size
// every 3 seconds (640x360, then 320x180, then 640x360 again), so its
// recording has an init segment per size, after a discontinuity; the
// player appends each before the segments that map it, plays through the
// changes without an error, and shows both sizes.
func TestBrowserPlayRecordingSizeChanges(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	large, small := testmedia.EncodeSize(t, 3, 640, 360), testmedia.EncodeSize(t, 3, 320, 180)
	media := testmedia.Media{Frames: slices.Concat(large.Frames, small.Frames), Opus: slices.Concat(large.Opus, small.Opus)}
	rec := playbackRecord(t, media)
	if rec.maps < 2 || !strings.Contains(rec.playlist, "#EXT-X-DISCONTINUITY") {
		t.Fatalf("playlist %s: want an init segment per size, after a discontinuity", rec.playlist)
	}
	console, _ := playbackPlay(t, rec, 7)
	// Chromium takes parameter sets sent in the media too, so the
	// pictures alone cannot tell whether each init segment was appended:
	// the requests do.
	read := webtest.Eval[[]string](console, `performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname)`)
	for _, m := range regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindAllStringSubmatch(rec.playlist, -1) {
		want := "/v1/recordings/" + rec.bucket + "/" + rec.prefix + recording.RenditionDir + m[1]
		if !slices.Contains(read, want) {
			t.Errorf("the player did not read %s; it read %v", want, read)
		}
	}
	sizes := webtest.Eval[[]string](console, `window.__playerSizes`)
	for _, want := range []string{"640x360", "320x180"} {
		if !slices.Contains(sizes, want) {
			t.Errorf("sizes the video had got %v, want %s among them", sizes, want)
		}
	}
}

// playbackRecording is a participant's recording, STOPPED.
type playbackRecording struct {
	m                      *Main
	stageID, sessionID     string
	participantID          string
	bucket, prefix         string
	mime                   string // of the SourceBuffer, from the multivariant playlist
	playlist               string // the media playlist
	segments, maps         int    // how many the playlist lists
	playlistDuration       float64
	publishedFor, duration time.Duration
}

// playbackRecord publishes media over WHIP (looped) to a stage that
// records for 9 seconds from the recording's start, disconnects the
// publisher, and returns its recording once it is STOPPED.
func playbackRecord(t *testing.T, media testmedia.Media) playbackRecording {
	t.Helper()
	m, c := startServer(t)
	ctx := testContext(t)
	const bucket = "recs"
	arn := recordingStage(t, c, bucket)
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("alice")})
	pid := aws.ToString(tok.ParticipantId)

	pctx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	whipH264(pctx, t, aws.ToString(tok.Token), media)
	var sid string
	playbackWaitRecording(t, c, arn, &sid, pid, func(p *types.Participant) bool {
		return p.RecordingState == types.ParticipantRecordingStateActive
	}, "ACTIVE")
	const publishFor = 9 * time.Second
	time.Sleep(publishFor)
	if _, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(arn), ParticipantId: aws.String(pid)}); err != nil {
		t.Fatalf("DisconnectParticipant: %v", err)
	}
	stopPublishing()
	p := playbackWaitRecording(t, c, arn, &sid, pid, func(p *types.Participant) bool {
		return p.RecordingState == types.ParticipantRecordingStateStopped || p.RecordingState == types.ParticipantRecordingStateFailed
	}, "STOPPED")
	if p.RecordingState != types.ParticipantRecordingStateStopped {
		t.Fatalf("recording %s, want STOPPED", p.RecordingState)
	}
	rec := playbackRecording{m: m, stageID: arn[strings.LastIndex(arn, "/")+1:], sessionID: sid, participantID: pid,
		bucket: bucket, prefix: aws.ToString(p.RecordingS3Prefix), publishedFor: publishFor}
	dir := filepath.Join(m.Config.DataDir, "s3", bucket, filepath.FromSlash(rec.prefix))
	multivariant, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.MultivariantKey)))
	if err != nil {
		t.Fatal(err)
	}
	codecs := regexp.MustCompile(`CODECS="([^"]+)"`).FindSubmatch(multivariant)
	if codecs == nil || !strings.Contains(string(codecs[1]), "avc1.") || !strings.Contains(string(codecs[1]), "opus") {
		t.Fatalf("multivariant playlist %s: want CODECS of H.264 and Opus", multivariant)
	}
	rec.mime = fmt.Sprintf("video/mp4; codecs=%q", codecs[1])
	playlist, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.PlaylistKey)))
	if err != nil {
		t.Fatal(err)
	}
	rec.playlist = string(playlist)
	rec.segments = strings.Count(rec.playlist, "#EXTINF:")
	rec.maps = strings.Count(rec.playlist, "#EXT-X-MAP:")
	for _, m := range regexp.MustCompile(`#EXTINF:([0-9.]+),`).FindAllStringSubmatch(rec.playlist, -1) {
		d, _ := strconv.ParseFloat(m[1], 64)
		rec.playlistDuration += d
	}
	if rec.segments < 2 || !strings.Contains(rec.playlist, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist %s: want 2 segments or more, and its end", rec.playlist)
	}
	return rec
}

// playbackState is what the console's player shows.
type playbackState struct {
	Width, Height int
	CurrentTime   float64
	Duration      float64
	Error         string
	Status        string
	StatusText    string
	ReadyState    int
	Paused        bool
	Buffered      string
}

// playbackPlay opens the console in Chromium on the recording's session,
// signs in, checks the participant's row says where the recording is,
// plays it with its Play button, and waits until the video's time passed
// seconds and every segment was appended. It checks what must hold of
// any recording played: no MediaError, nor a Content Security Policy
// violation, the playlist's duration, its segments counted. The test is
// skipped, saying why, if this Chromium cannot decode the recording's
// codecs with Media Source Extensions.
func playbackPlay(t *testing.T, rec playbackRecording, seconds float64) (*webtest.Tab, playbackState) {
	t.Helper()
	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + rec.m.Addr() + "/console#stage=" + rec.stageID + "&session=" + rec.sessionID)
	// Debian's Chromium decodes H.264; a build without it cannot pass.
	if !webtest.Eval[bool](console, `MediaSource.isTypeSupported(`+strconv.Quote(rec.mime)+`)`) {
		t.Skipf("this Chromium (%s) cannot play the recording: MediaSource.isTypeSupported(%q) is false",
			webtest.Eval[string](console, `navigator.userAgent`), rec.mime)
	}
	console.WaitFor("the sign-in form", `!document.getElementById("sign-in").hidden`, 10*time.Second)
	console.Do("sign in",
		chromedp.SetValue(chromedp.ID("access-key-id"), testAccessKeyID),
		chromedp.SetValue(chromedp.ID("secret-access-key"), testSecretAccessKey),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)),
	)
	row := fmt.Sprintf(`#participants tr[data-participant-id=%q]`, rec.participantID)
	console.WaitFor("the recording STOPPED, with its Play button",
		`document.querySelector('`+row+`')?.dataset.recordingState === "STOPPED" && !!document.querySelector('`+row+` [data-action=play]')`,
		15*time.Second)
	where := webtest.Eval[string](console, `document.querySelector('`+row+` .recording-where')?.textContent || ""`)
	if want := "s3://" + rec.bucket + "/" + rec.prefix; where != want {
		t.Errorf("the row says the recording is at %q, want %q", where, want)
	}

	// The sizes the video takes, as it plays.
	webtest.Eval[bool](console, `(() => {
		window.__playerSizes = [];
		document.getElementById("player").addEventListener("resize", (e) =>
			window.__playerSizes.push(e.target.videoWidth + "x" + e.target.videoHeight));
		return true;
	})()`)
	console.Do("play", chromedp.Click(chromedp.CSS(row+` [data-action=play]`)))
	// Past seconds, or else say where it stopped and what it held.
	deadline := time.Now().Add(time.Duration(seconds+20) * time.Second)
	for {
		v := webtest.Eval[struct {
			CurrentTime float64
			Error       string
			Buffered    string
			ReadyState  int
			Paused      bool
			Status      string
		}](console, `(() => {
			const v = document.getElementById("player");
			const b = [];
			for (let i = 0; i < v.buffered.length; i++) b.push(v.buffered.start(i).toFixed(3) + "-" + v.buffered.end(i).toFixed(3));
			return { currentTime: v.currentTime, error: v.error ? v.error.code + ": " + v.error.message : "", buffered: b.join(" "),
				readyState: v.readyState, paused: v.paused, status: document.getElementById("player-status").textContent };
		})()`)
		if v.Error != "" {
			t.Fatalf("MediaError %s; player %+v", v.Error, v)
		}
		if v.CurrentTime > seconds {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the video not past %g s: %+v", seconds, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	console.WaitFor("every segment appended", `document.getElementById("player-status").dataset.state === "done"`, 10*time.Second)
	got := webtest.Eval[playbackState](console, `(() => {
		const v = document.getElementById("player");
		const s = document.getElementById("player-status");
		return { width: v.videoWidth, height: v.videoHeight, currentTime: v.currentTime, duration: v.duration,
			error: v.error ? v.error.code + ": " + v.error.message : "", status: s.dataset.state, statusText: s.textContent,
			readyState: v.readyState, paused: v.paused,
			buffered: Array.from({ length: v.buffered.length }, (_, i) => v.buffered.start(i).toFixed(3) + "-" + v.buffered.end(i).toFixed(3)).join(" ") };
	})()`)
	t.Logf("player: %+v", got)
	if got.Error != "" {
		t.Errorf("MediaError %s", got.Error)
	}
	// The media's time starts at 0, where its first keyframe is, and
	// ends where the playlist's durations do.
	if got.Duration < rec.playlistDuration-0.5 || got.Duration > rec.playlistDuration+0.5 {
		t.Errorf("duration got %.2f s, want the playlist's %.2f s", got.Duration, rec.playlistDuration)
	}
	if got.Duration < rec.publishedFor.Seconds()-0.5 {
		t.Errorf("duration got %.2f s, want at least the %v published", got.Duration, rec.publishedFor)
	}
	if want := strconv.Itoa(rec.segments) + " segments"; !strings.Contains(got.StatusText, want) {
		t.Errorf("status got %q, want it to say %q", got.StatusText, want)
	}
	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
	return console, got
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
