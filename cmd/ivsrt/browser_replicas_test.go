package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/chromedp/chromedp"

	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// TestBrowserConsoleReplicas: in the console, a publishing participant is
// replicated to another stage from its details, the replica shows there
// as a replica of the first stage, and Stop ends the replication; the
// API agrees at each step.
func TestBrowserConsoleReplicas(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	source, dest := createStage(t, c, "show-a"), createStage(t, c, "show-b")
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("guest")})
	id := aws.ToString(tok.ParticipantId)
	runBot(t, bot.Config{Token: aws.ToString(tok.Token), Video: true, Audio: true})
	session := waitPublishing(t, c, source, id)
	stageID := func(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console#stage=" + stageID(source) + "&session=" + session + "&participant=" + id)
	console.WaitFor("the sign-in form", `!document.getElementById("sign-in").hidden`, 10*time.Second)
	console.Do("sign in",
		chromedp.SetValue(chromedp.ID("access-key-id"), testAccessKeyID),
		chromedp.SetValue(chromedp.ID("secret-access-key"), testSecretAccessKey),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)),
	)
	console.WaitFor("the replicate form", `!document.getElementById("replicate").hidden &&
		!!document.querySelector('#replicate-to option[value="`+dest+`"]')`, 15*time.Second)
	console.Do("replicate to show-b",
		chromedp.SetValue(chromedp.ID("replicate-to"), dest),
		chromedp.SetValue(chromedp.ID("replicate-window"), "30"),
		chromedp.Click(chromedp.CSS(`#replicate button[type=submit]`)),
	)
	activeRow := fmt.Sprintf(`#replicas tr[data-destination-arn=%q][data-state=ACTIVE]`, dest)
	console.WaitFor("the replica listed ACTIVE", `!!document.querySelector('`+activeRow+`')`, 15*time.Second)
	if got := webtest.Eval[string](console, `document.querySelector('`+activeRow+` td').textContent`); got != "show-b" {
		t.Errorf("the replica's stage shown as %q, want show-b", got)
	}
	out, err := c.ListParticipantReplicas(testContext(t), &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(source),
		ParticipantId: aws.String(id)})
	if err != nil {
		t.Fatalf("ListParticipantReplicas: %v", err)
	}
	if len(out.Replicas) != 1 || aws.ToString(out.Replicas[0].DestinationStageArn) != dest || out.Replicas[0].ReplicationState != "ACTIVE" {
		t.Fatalf("ListParticipantReplicas: got %+v, want one ACTIVE to show-b", out.Replicas)
	}
	row := fmt.Sprintf(`#participants tr[data-participant-id=%q]`, id)
	console.WaitFor("the source marked replicated", `document.querySelector('`+row+` .replication')?.textContent === "replicated"`, 15*time.Second)
	console.FullScreenshot("console-replicas-source")

	// In the destination, the replica is a participant of its own.
	destStage, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(dest)})
	if err != nil {
		t.Fatal(err)
	}
	destSession := aws.ToString(destStage.Stage.ActiveSessionId)
	webtest.Eval[bool](console, `(() => { location.hash = "stage=`+stageID(dest)+`&session=`+destSession+`&participant=`+id+`"; return true; })()`)
	console.WaitFor("the replica in show-b", `document.querySelector('`+row+` .replication')?.textContent === "replica of show-a"`, 15*time.Second)
	console.WaitFor("the replica's facts", `document.getElementById("participant-facts").textContent.includes("Replica ofshow-a")`, 15*time.Second)
	if webtest.Eval[bool](console, `!document.getElementById("replicate").hidden`) {
		t.Error("a replica may be replicated from the console")
	}
	console.FullScreenshot("console-replicas-destination")

	// Back in the source, Stop ends it.
	webtest.Eval[bool](console, `(() => { location.hash = "stage=`+stageID(source)+`&session=`+session+`&participant=`+id+`"; return true; })()`)
	defer func() {
		if t.Failed() {
			t.Logf("debug: %s", webtest.Eval[string](console, `JSON.stringify({hash: location.hash, err: document.getElementById("error").textContent, sec: document.getElementById("replicas-section").hidden, rows: document.getElementById("replicas").tBodies[0].innerHTML, events: document.getElementById("events-card").hidden, facts: document.getElementById("participant-facts").textContent})`))
		}
	}()
	console.WaitFor("the Stop button", `!!document.querySelector('`+activeRow+` [data-action=stop-replication]')`, 15*time.Second)
	console.Do("stop", chromedp.Click(chromedp.CSS(activeRow+` [data-action=stop-replication]`)))
	stoppedRow := fmt.Sprintf(`#replicas tr[data-destination-arn=%q][data-state=STOPPED]`, dest)
	console.WaitFor("the replica listed STOPPED", `!!document.querySelector('`+stoppedRow+`')`, 15*time.Second)
	out, err = c.ListParticipantReplicas(testContext(t), &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(source),
		ParticipantId: aws.String(id)})
	if err != nil {
		t.Fatalf("ListParticipantReplicas: %v", err)
	}
	if len(out.Replicas) != 1 || out.Replicas[0].ReplicationState != "STOPPED" {
		t.Errorf("ListParticipantReplicas after Stop: got %+v, want one STOPPED", out.Replicas)
	}
	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("CSP violations: %v", v)
	}
}
