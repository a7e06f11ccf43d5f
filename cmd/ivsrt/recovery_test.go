package main

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/ivsrt/ivsrt"
)

// A run that ends without its participants leaving (a crash, kill -9)
// leaves them CONNECTED in the store; the next start ends their session
// as if each had left, so the API never shows a ghost stage forever live.
func TestStartEndsSessionsLeftOpen(t *testing.T) {
	m, c := startServer(t)
	ctx := testContext(t)
	arn := createStage(t, c, "left-open")
	stage := ivsrt.StageARN(arn)
	record(t, m,
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: "aliceAAAAAAA", UserID: "alice"},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: "bobBBBBBBBBB", UserID: "bob"},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventPublishStarted, ParticipantID: "aliceAAAAAAA"},
	)
	got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	session := aws.ToString(got.Stage.ActiveSessionId)
	if session == "" {
		t.Fatal("got no active session after joins, want one")
	}

	// The media plane never heard of these participants, so a clean
	// close leaves them CONNECTED in the store, as a crash would.
	m, c = restartServer(t, m)

	got, err = c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if id := aws.ToString(got.Stage.ActiveSessionId); id != "" {
		t.Errorf("got activeSessionId %q after restart, want none", id)
	}
	sess, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(arn), SessionId: aws.String(session)})
	if err != nil {
		t.Fatal(err)
	}
	if sess.StageSession.EndTime == nil {
		t.Error("got no endTime for the session after restart, want one")
	}
	for _, id := range []string{"aliceAAAAAAA", "bobBBBBBBBBB"} {
		p, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn), SessionId: aws.String(session), ParticipantId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if p.Participant.State != types.ParticipantStateDisconnected {
			t.Errorf("%s: got state %s, want DISCONNECTED", id, p.Participant.State)
		}
		ev, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(arn), SessionId: aws.String(session), ParticipantId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ev.Events); n == 0 || ev.Events[n-1].Name != types.EventNameLeft {
			t.Errorf("%s: got events %v, want LEFT last", id, eventNames(ev.Events))
		}
	}
}

func eventNames(events []types.Event) []string {
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = string(e.Name)
	}
	return names
}
