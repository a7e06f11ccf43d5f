package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
)

// The ingest configuration operations through the AWS SDK against the
// whole server, as in api_test.go; api/ingest_test.go checks each rule.

var ingestARNPattern = regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:ingest-configuration/[a-zA-Z0-9]{12}$`)

func TestIngestConfigurationServer(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	stage := createStage(t, c, "studio")

	created, err := c.CreateIngestConfiguration(ctx, &ivsrealtime.CreateIngestConfigurationInput{
		Name: aws.String("camera"), StageArn: aws.String(stage), UserId: aws.String("encoder-1"),
		Attributes: map[string]string{"role": "camera"}, IngestProtocol: types.IngestProtocolRtmps,
		Tags: map[string]string{"team": "video"},
	})
	if err != nil {
		t.Fatalf("CreateIngestConfiguration: %v", err)
	}
	ic := created.IngestConfiguration
	arn := aws.ToString(ic.Arn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	if !ingestARNPattern.MatchString(arn) || !participantIDPattern.MatchString(aws.ToString(ic.ParticipantId)) ||
		!strings.HasPrefix(aws.ToString(ic.StreamKey), "rt_123456789012_us-east-1_"+id+"_") {
		t.Errorf("CreateIngestConfiguration: got arn %s, participant %s, a key of another form", arn, aws.ToString(ic.ParticipantId))
	}
	got, err := c.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	if err != nil {
		t.Fatalf("GetIngestConfiguration: %v", err)
	}
	checkJSON(t, "GetIngestConfiguration", got.IngestConfiguration, ic)

	// The wire: a list has no keys.
	list := signedRequest(t, m, "POST", "/ListIngestConfigurations", `{}`)
	if body := string(list.Body); list.Status != http.StatusOK || strings.Contains(body, "streamKey") || !strings.Contains(body, arn) {
		t.Errorf("ListIngestConfigurations: got %d %s", list.Status, body)
	}
	checkWire(t, list)

	if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: ic.Arn, Tags: map[string]string{"more": "1"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	tags, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: ic.Arn})
	if err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	checkJSON(t, "ListTagsForResource", tags.Tags, map[string]string{"team": "video", "more": "1"})

	// The RTMP(S) server marks it publishing: it cannot change, and
	// deleting the stage takes the stage from it.
	if err := m.DB.SetIngestActive(ctx, ivsrt.IngestConfigurationARN(arn), ivsrt.ParticipantID(*ic.ParticipantId), true); err != nil {
		t.Fatalf("SetIngestActive: %v", err)
	}
	_, err = c.UpdateIngestConfiguration(ctx, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String("")})
	checkError(t, err, conflict(arn))
	_, err = c.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn})
	checkError(t, err, conflict(arn))
	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(stage)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	got, err = c.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	if err != nil {
		t.Fatalf("GetIngestConfiguration after DeleteStage: %v", err)
	}
	if aws.ToString(got.IngestConfiguration.StageArn) != "" || got.IngestConfiguration.State != types.IngestConfigurationStateActive {
		t.Errorf("after DeleteStage: got stage %q, state %s, want \"\", ACTIVE", aws.ToString(got.IngestConfiguration.StageArn), got.IngestConfiguration.State)
	}

	if _, err := c.DeleteIngestConfiguration(ctx, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true}); err != nil {
		t.Fatalf("DeleteIngestConfiguration with force: %v", err)
	}
	_, err = c.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	checkError(t, err, notFound("Ingest configuration not found", arn))
	if n := countRows(t, m, "ingest_credentials"); n != 0 {
		t.Errorf("credentials left after the delete: %d", n)
	}
}
