package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivsrt/ivsrt/bot"
)

// recordingStage creates a storage configuration of bucket and a stage
// recording to it.
func recordingStage(t *testing.T, c *ivsrealtime.Client, bucket string) string {
	t.Helper()
	ctx := testContext(t)
	sc, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		Name: aws.String("recordings"), S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
	if err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}
	st, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("recorded"),
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: sc.StorageConfiguration.Arn, MediaTypes: []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioVideo}}})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	return aws.ToString(st.Stage.Arn)
}

// TestRecordingStateThroughAPI: a bot, which publishes VP8, on a stage
// that records: the API shows its recording FAILED with the bucket and
// prefix, and filterByRecordingState finds it.
func TestRecordingStateThroughAPI(t *testing.T) {
	_, c := startServer(t)
	ctx := testContext(t)
	arn := recordingStage(t, c, "recs")
	b, stop := startBot(t, c, arn, "alice", bot.Config{Video: true, Audio: true})
	defer stop()
	waitState(t, c, arn, b.ParticipantID(), "CONNECTED")
	sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	sid := sessions.StageSessions[0].SessionId
	deadline := time.Now().Add(20 * time.Second)
	var p *types.Participant
	for {
		out, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn), SessionId: sid, ParticipantId: aws.String(b.ParticipantID())})
		if err != nil {
			t.Fatal(err)
		}
		p = out.Participant
		if p.RecordingState == types.ParticipantRecordingStateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording state %s, want FAILED (the bot publishes VP8)", p.RecordingState)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if aws.ToString(p.RecordingS3BucketName) != "recs" || aws.ToString(p.RecordingS3Prefix) == "" {
		t.Errorf("bucket %q, prefix %q", aws.ToString(p.RecordingS3BucketName), aws.ToString(p.RecordingS3Prefix))
	}
	list, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arn), SessionId: sid,
		FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateFailed})
	if err != nil || len(list.Participants) != 1 {
		t.Errorf("ListParticipants FAILED: %+v, %v", list, err)
	}
}

// TestStorageConfigurationChecksS3Bucket: with an S3 endpoint, a storage
// configuration of a bucket that does not exist is refused, as AWS does;
// one of an existing bucket is taken.
func TestStorageConfigurationChecksS3Bucket(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("there"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	defer s3.Close()
	_, c := startServer(t, func(c *Config) {
		c.S3EndpointURL, c.S3AccessKeyID, c.S3SecretAccessKey = s3.URL, "AKIDTEST", "secret"
	})
	ctx := testContext(t)
	_, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String("missing")}})
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Errorf("a missing bucket: %v, want ValidationException", err)
	}
	if _, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String("there")}}); err != nil {
		t.Errorf("an existing bucket: %v", err)
	}
	_ = context.Background
}
