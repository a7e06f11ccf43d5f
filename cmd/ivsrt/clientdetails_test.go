package main

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
)

// TestParticipantClientDetails: GetParticipant shows what a bot said of
// itself when it joined, and nothing it did not say (no operating
// system, no ISP).
func TestParticipantClientDetails(t *testing.T) {
	_, c := startServer(t)
	ctx := testContext(t)
	st, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("clients")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(st.Stage.Arn)
	b, stop := startBot(t, c, arn, "alice", bot.Config{})
	defer stop()
	waitState(t, c, arn, b.ParticipantID(), "CONNECTED")
	sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn),
		SessionId: sessions.StageSessions[0].SessionId, ParticipantId: aws.String(b.ParticipantID())})
	if err != nil {
		t.Fatal(err)
	}
	p := out.Participant
	if aws.ToString(p.BrowserName) != "ivsrt-bot" || aws.ToString(p.BrowserVersion) != ivsrt.ClientVersion ||
		aws.ToString(p.SdkVersion) != ivsrt.ClientVersion || p.OsName != nil || p.OsVersion != nil || p.IspName != nil {
		t.Errorf("the bot's client details: browser %v %v, SDK %v, OS %v %v, ISP %v",
			aws.ToString(p.BrowserName), aws.ToString(p.BrowserVersion), aws.ToString(p.SdkVersion), p.OsName, p.OsVersion, p.IspName)
	}
}
