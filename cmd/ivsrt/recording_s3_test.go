//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/recording"
)

// s3Server is an S3 service a test started, with the bucket "recs".
type s3Server struct{ url string }

func (s s3Server) client() *awss3.Client {
	return awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
}

// download copies the objects under prefix of the bucket "recs" to a
// folder, read through the S3 API, and returns the folder.
func (s s3Server) download(t *testing.T, prefix string) string {
	t.Helper()
	ctx := testContext(t)
	client := s.client()
	dir := t.TempDir()
	objects, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("recs"), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list the recording: %v", err)
	}
	for _, o := range objects.Contents {
		out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("recs"), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(aws.ToString(o.Key), prefix)))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startMoto starts the installed moto_server (another S3
// implementation than the in-process one) on a free port.
func startMoto(t *testing.T) s3Server {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer within 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := (s3Server{url}).client().CreateBucket(testContext(t), &awss3.CreateBucketInput{Bucket: aws.String("recs")}); err != nil {
		t.Fatalf("create the bucket: %v", err)
	}
	return s3Server{url}
}

// startGofakes3 starts an S3 server in the process.
func startGofakes3(t *testing.T) s3Server {
	backend := s3mem.New()
	if err := backend.CreateBucket("recs"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return s3Server{srv.URL}
}

// TestRecordToS3: the server started with --s3-endpoint-url records a
// publisher's H.264 and Opus into the S3 service, moto_server and an
// in-process gofakes3; the recording, read back from the service, plays
// with what was published.
func TestRecordToS3(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 4)
	for _, tc := range []struct {
		name  string
		start func(*testing.T) s3Server
	}{{"moto", startMoto}, {"gofakes3", startGofakes3}} {
		t.Run(tc.name, func(t *testing.T) {
			s3 := tc.start(t)
			_, c := startServer(t, func(c *Config) {
				c.S3EndpointURL, c.S3AccessKeyID, c.S3SecretAccessKey = s3.url, "AKIDTEST", "secret"
			})
			ctx := testContext(t)
			sc, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
				S3: &types.S3StorageConfiguration{BucketName: aws.String("recs")}})
			if err != nil {
				t.Fatalf("CreateStorageConfiguration: %v", err)
			}
			st, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
				StorageConfigurationArn: sc.StorageConfiguration.Arn,
				HlsConfiguration:        &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}})
			if err != nil {
				t.Fatalf("CreateStage: %v", err)
			}
			arn := aws.ToString(st.Stage.Arn)
			tok, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			pid := aws.ToString(tok.ParticipantToken.ParticipantId)
			pctx, stop := context.WithCancel(ctx)
			defer stop()
			whipH264(pctx, t, aws.ToString(tok.ParticipantToken.Token), m)
			p := waitRecording(t, c, arn, pid, types.ParticipantRecordingStateActive)
			time.Sleep(6 * time.Second)
			if _, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(arn), ParticipantId: aws.String(pid)}); err != nil {
				t.Fatal(err)
			}
			stop()
			p = waitRecording(t, c, arn, pid, types.ParticipantRecordingStateStopped)
			dir := s3.download(t, aws.ToString(p.RecordingS3Prefix))
			probe := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(recording.MultivariantKey)))
			if d := probe.Duration(t); d < 4*time.Second || d > 7*time.Second {
				t.Errorf("the recording in S3 plays %v, want about the 6 s published", d)
			}
			if len(probe.Streams) != 2 {
				t.Errorf("streams %+v, want H.264 and Opus", probe.Streams)
			}
			if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.EndedKey))); err != nil || !strings.Contains(string(b), `"RECORDING_ENDED"`) {
				t.Errorf("recording-ended.json: %s %v", b, err)
			}
		})
	}
}

// waitRecording waits for the participant's recording state to be want,
// and returns the participant.
func waitRecording(t *testing.T, c *ivsrealtime.Client, arn, pid string, want types.ParticipantRecordingState) *types.Participant {
	t.Helper()
	ctx := testContext(t)
	deadline := time.Now().Add(60 * time.Second)
	var p *types.Participant
	for {
		sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
		if err == nil && len(sessions.StageSessions) > 0 {
			if got, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn),
				SessionId: sessions.StageSessions[0].SessionId, ParticipantId: aws.String(pid)}); err == nil {
				p = got.Participant
				if p.RecordingState == want {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording state of %s: %+v, want %s", pid, p, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
