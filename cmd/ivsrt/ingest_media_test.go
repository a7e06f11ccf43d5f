package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// encoder is ffmpeg publishing a test pattern and a tone over RTMP(S),
// as OBS would.
type encoder struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// startEncoder publishes to url (the stage's endpoint and the key) with
// ffmpeg; video are ffmpeg's output options for the video, by default
// H.264 baseline 640×360 without B-frames.
func startEncoder(t *testing.T, url string, video ...string) *encoder {
	t.Helper()
	size := "640x360"
	if len(video) == 0 {
		video = []string{"-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30", "-tune", "zerolatency", "-pix_fmt", "yuv420p"}
	}
	for i, a := range video {
		if a == "-s" && i+1 < len(video) {
			size = video[i+1]
		}
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	args = append(args, video...)
	args = append(args, "-c:a", "aac", "-b:a", "128k", "-tls_verify", "0", "-f", "flv", url)
	e := &encoder{out: &bytes.Buffer{}, done: make(chan struct{})}
	e.cmd = exec.Command("ffmpeg", args...)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	go func() {
		err := e.cmd.Wait()
		e.mu.Lock()
		e.err = err
		e.mu.Unlock()
		close(e.done)
	}()
	t.Cleanup(e.stop)
	return e
}

func (e *encoder) stop() {
	e.cmd.Process.Kill()
	<-e.done
}

// waitExit waits for ffmpeg to end by itself, and returns what it said.
func (e *encoder) waitExit(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case <-e.done:
	case <-time.After(within):
		t.Fatalf("ffmpeg still runs after %v", within)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.String()
}

func (e *encoder) running() bool {
	select {
	case <-e.done:
		return false
	default:
		return true
	}
}

// withRTMPS serves RTMPS with a self-signed certificate, on any free port.
func withRTMPS(t *testing.T) serverOption {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return func(c *Config) { c.RTMPSPort, c.RTMPSCert, c.RTMPSKey = 0, certFile, keyFile }
}

// createIngest creates an ingest configuration of stage and returns it.
func createIngest(t *testing.T, c *ivsrealtime.Client, stage string, protocol types.IngestProtocol, user string) *types.IngestConfiguration {
	t.Helper()
	out, err := c.CreateIngestConfiguration(testContext(t), &ivsrealtime.CreateIngestConfigurationInput{
		StageArn: aws.String(stage), IngestProtocol: protocol, InsecureIngest: protocol == types.IngestProtocolRtmp,
		UserId: aws.String(user), Attributes: map[string]string{"source": "ffmpeg"},
	})
	if err != nil {
		t.Fatalf("CreateIngestConfiguration: %v", err)
	}
	return out.IngestConfiguration
}

// stageEndpoints returns the RTMP and RTMPS endpoints the stage shows.
func stageEndpoints(t *testing.T, c *ivsrealtime.Client, stage string) (rtmp, rtmps string) {
	t.Helper()
	out, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	e := out.Stage.Endpoints
	return aws.ToString(e.Rtmp), aws.ToString(e.Rtmps)
}

// ingestState returns the state GetIngestConfiguration tells.
func ingestState(t *testing.T, c *ivsrealtime.Client, arn *string) types.IngestConfigurationState {
	t.Helper()
	out, err := c.GetIngestConfiguration(testContext(t), &ivsrealtime.GetIngestConfigurationInput{Arn: arn})
	if err != nil {
		t.Fatalf("GetIngestConfiguration: %v", err)
	}
	return out.IngestConfiguration.State
}

// participantEvents returns a participant's events of the stage's
// latest session, as "NAME" or "NAME CODE".
func participantEvents(t *testing.T, c *ivsrealtime.Client, stage, id string) []string {
	t.Helper()
	sessions, err := c.ListStageSessions(testContext(t), &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage), MaxResults: aws.Int32(1)})
	if err != nil || len(sessions.StageSessions) == 0 {
		return nil
	}
	return participantEventsIn(t, c, stage, aws.ToString(sessions.StageSessions[0].SessionId), id)
}

// participantEventsIn is participantEvents of a given session.
func participantEventsIn(t *testing.T, c *ivsrealtime.Client, stage, session, id string) []string {
	t.Helper()
	out, err := c.ListParticipantEvents(testContext(t), &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage),
		SessionId: aws.String(session), ParticipantId: aws.String(id), MaxResults: aws.Int32(100)})
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range out.Events {
		s := string(e.Name)
		if e.ErrorCode != "" {
			s += " " + string(e.ErrorCode)
		}
		names = append(names, s)
	}
	return names
}

// TestIngestRTMP: ffmpeg publishes H.264 and AAC over RTMP with an
// ingest configuration's stream key; a browser in the stage sees the
// encoder as a participant and plays its video and its audio (AAC made
// Opus); the API lists it with protocol RTMP, the configuration ACTIVE.
// A second encoder with the same key, B-frames, 1080p, RTMP against an
// RTMPS-only configuration are refused with IVS's codes, recorded in the
// stage; a key of nobody is refused. RTMPS publishes too.
// DisconnectParticipant ends the encoder's stream.
func TestIngestRTMP(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t, withRTMPS(t))
	b := webtest.NewBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b.Deadline = ctx
	stage := createStage(t, c, "ingest")
	rtmpURL, rtmpsURL := stageEndpoints(t, c, stage)
	if !strings.HasPrefix(rtmpURL, "rtmp://") || !strings.HasSuffix(rtmpURL, "/app/") || !strings.HasPrefix(rtmpsURL, "rtmps://") {
		t.Fatalf("stage endpoints rtmp %q, rtmps %q", rtmpURL, rtmpsURL)
	}
	ic := createIngest(t, c, stage, types.IngestProtocolRtmp, "obs")
	encID := aws.ToString(ic.ParticipantId)

	start := time.Now()
	enc := startEncoder(t, rtmpURL+aws.ToString(ic.StreamKey))
	session := waitPublishing(t, c, stage, encID)
	t.Logf("the encoder publishes %v after ffmpeg started", time.Since(start).Round(time.Millisecond))

	viewer := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String("viewer")})
	tab := b.NewTab("viewer")
	tab.Navigate("http://" + m.Addr() + "/join?token=" + url.QueryEscape(aws.ToString(viewer.Token)))
	browserCheckVideo(t, tab, encID)
	level := webtest.Eval[float64](tab, `(async () => {
		const v = `+browserTile(encID)+`.querySelector("video");
		const ac = new AudioContext();
		await ac.resume();
		const an = ac.createAnalyser();
		an.fftSize = 2048;
		ac.createMediaStreamSource(new MediaStream(v.srcObject.getAudioTracks())).connect(an);
		const buf = new Float32Array(an.fftSize);
		let level = 0;
		for (let i = 0; i < 25; i++) {
			await new Promise((r) => setTimeout(r, 20));
			an.getFloatTimeDomainData(buf);
			for (const s of buf) level = Math.max(level, Math.abs(s));
		}
		ac.close();
		return level;
	})()`)
	t.Logf("the encoder's tone, heard in the browser: peak %.3f", level)
	if level < 0.05 {
		t.Errorf("audio peak %.3f: want the encoder's tone (AAC made Opus)", level)
	}
	if got := webtest.Eval[string](tab, browserTile(encID)+`.querySelector(".name").textContent`); got != "obs" {
		t.Errorf("the encoder's tile is named %q, want its userId obs", got)
	}

	ps, err := c.ListParticipants(testContext(t), &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(session)})
	if err != nil {
		t.Fatalf("ListParticipants: %v", err)
	}
	found := false
	for _, p := range ps.Participants {
		if aws.ToString(p.ParticipantId) == encID {
			found = true
			got, err := c.GetParticipant(testContext(t), &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(session), ParticipantId: p.ParticipantId})
			if err != nil {
				t.Fatalf("GetParticipant: %v", err)
			}
			if pp := got.Participant; pp.Protocol != types.ParticipantProtocolRtmp || aws.ToString(pp.UserId) != "obs" || pp.Attributes["source"] != "ffmpeg" || !pp.Published {
				t.Errorf("GetParticipant of the encoder: protocol %s, user %s, attributes %v, published %v", pp.Protocol, aws.ToString(pp.UserId), pp.Attributes, pp.Published)
			}
			// The SDK of this module predates ingestConfigurationArn: read it from the body.
			var raw struct {
				Participant struct{ IngestConfigurationArn string }
			}
			signedRequest(t, m, "POST", "/GetParticipant", fmt.Sprintf(`{"stageArn":%q,"sessionId":%q,"participantId":%q}`, stage, session, encID)).decode(t, &raw)
			if got, want := raw.Participant.IngestConfigurationArn, aws.ToString(ic.Arn); got != want {
				t.Errorf("GetParticipant of the encoder: ingestConfigurationArn got %q, want %q", got, want)
			}
		}
	}
	if !found {
		t.Errorf("ListParticipants lacks the encoder %s", encID)
	}
	if s := ingestState(t, c, ic.Arn); s != types.IngestConfigurationStateActive {
		t.Errorf("the ingest configuration is %s while its encoder publishes, want ACTIVE", s)
	}

	// The same key again while in use.
	again := startEncoder(t, rtmpURL+aws.ToString(ic.StreamKey))
	if out := again.waitExit(t, 20*time.Second); !strings.Contains(out, "REUSE_OF_STREAM_KEY") {
		t.Errorf("a second encoder with the key: ffmpeg said %q, want REUSE_OF_STREAM_KEY", out)
	}
	if !enc.running() {
		t.Fatalf("the first encoder stopped: %s", enc.waitExit(t, time.Second))
	}

	// The stage ends the encoder: DisconnectParticipant.
	if _, err := c.DisconnectParticipant(testContext(t), &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage),
		ParticipantId: aws.String(encID), Reason: aws.String("off air")}); err != nil {
		t.Fatalf("DisconnectParticipant: %v", err)
	}
	enc.waitExit(t, 15*time.Second)
	tab.WaitFor("the encoder's tile gone", `!`+browserTile(encID), 15*time.Second)
	eventually(t, 10*time.Second, "the configuration inactive", func() error {
		if s := ingestState(t, c, ic.Arn); s != types.IngestConfigurationStateInactive {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	want := []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_ERROR REUSE_OF_STREAM_KEY", "PUBLISH_STOPPED", "LEFT"}
	if got := participantEvents(t, c, stage, encID); !slices.Equal(got, want) {
		t.Errorf("the encoder's events: got %v, want %v", got, want)
	}

	// Refusals of real streams, each recorded as the participant's join,
	// its error and its leave.
	rtmpsOnly := createIngest(t, c, stage, types.IngestProtocolRtmps, "secure")
	for _, tt := range []struct {
		name  string
		ic    *types.IngestConfiguration
		base  string
		video []string
		code  string
	}{
		{"B-frames", createIngest(t, c, stage, types.IngestProtocolRtmp, "bframes"), rtmpURL,
			[]string{"-c:v", "libx264", "-profile:v", "main", "-bf", "2", "-g", "30", "-pix_fmt", "yuv420p"}, "B_FRAME_PRESENT"},
		{"1080p", createIngest(t, c, stage, types.IngestProtocolRtmp, "big"), rtmpURL,
			[]string{"-s", "1920x1080", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p"}, "RESOLUTION_EXCEEDED"},
		{"RTMP to an RTMPS-only configuration", rtmpsOnly, rtmpURL, nil, "INVALID_PROTOCOL"},
	} {
		e := startEncoder(t, tt.base+aws.ToString(tt.ic.StreamKey), tt.video...)
		// A stream refused while the encoder writes: on a busy machine
		// ffmpeg may find the connection closed before it reads the
		// status it was sent. The refusal recorded below is the server's.
		if out := e.waitExit(t, 30*time.Second); !strings.Contains(out, tt.code) && !strings.Contains(out, "Broken pipe") {
			t.Errorf("%s: ffmpeg said %q, want %s", tt.name, out, tt.code)
		} else if !strings.Contains(out, tt.code) {
			t.Logf("%s: ffmpeg found the connection closed before it read the status (%q)", tt.name, out)
		}
		id := aws.ToString(tt.ic.ParticipantId)
		eventually(t, 10*time.Second, tt.name+": the refusal recorded", func() error {
			if got := participantEvents(t, c, stage, id); !slices.Contains(got, "PUBLISH_ERROR "+tt.code) || got[len(got)-1] != "LEFT" {
				return fmt.Errorf("events %v", got)
			}
			return nil
		})
	}
	bad := startEncoder(t, rtmpURL+"rt_123456789012_us-east-1_nobody_x")
	if out := bad.waitExit(t, 20*time.Second); !strings.Contains(out, "INVALID_STREAM_KEY") {
		t.Errorf("a key of nobody: ffmpeg said %q, want INVALID_STREAM_KEY", out)
	}

	// RTMPS, with the RTMPS-only configuration.
	secure := startEncoder(t, rtmpsURL+aws.ToString(rtmpsOnly.StreamKey))
	waitPublishing(t, c, stage, aws.ToString(rtmpsOnly.ParticipantId))
	browserCheckVideo(t, tab, aws.ToString(rtmpsOnly.ParticipantId))
	secure.stop()
	eventually(t, 10*time.Second, "the RTMPS encoder's leave", func() error {
		if got := participantEvents(t, c, stage, aws.ToString(rtmpsOnly.ParticipantId)); len(got) == 0 || got[len(got)-1] != "LEFT" {
			return fmt.Errorf("events %v", got)
		}
		return nil
	})
}
