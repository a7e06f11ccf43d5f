package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// TestBrowserConsoleIngest checks the console's ingest tab: it lists
// ingest configurations with their stages, creates one from its form and
// shows its stream keys with the stage's endpoint (never in the URL or the
// page's markup), shows the key of another, changes a stage, shows the
// conflict while an encoder publishes, links to the stage where the
// encoder shows its protocol, and deletes, with force while active.
func TestBrowserConsoleIngest(t *testing.T) {
	m, c := startServer(t, withDev(), withRTMPS(t))
	ctx := testContext(t)
	studio, backstage := createStage(t, c, "studio"), createStage(t, c, "backstage")
	rtmp, rtmps := stageEndpoints(t, c, studio)
	if rtmp == "" || rtmps == "" {
		t.Fatalf("stage endpoints: rtmp %q, rtmps %q, want both", rtmp, rtmps)
	}
	existing := createIngest(t, c, studio, types.IngestProtocolRtmp, "encoder-1")
	existingARN := aws.ToString(existing.Arn)

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console#tab=ingest")
	console.WaitFor("the ingest tab", `document.getElementById("live").dataset.state === "ok" &&
		!document.getElementById("ingest-view").hidden && document.getElementById("stages-view").hidden &&
		document.getElementById("storage-view").hidden && document.getElementById("keys-view").hidden &&
		document.querySelector("#tabs [aria-current]")?.dataset.tab === "ingest"`, 10*time.Second)
	row := func(arn string) string { return fmt.Sprintf(`#ingest tr[data-ingest-arn=%q]`, arn) }
	console.WaitFor("the existing configuration, its stage linked", `(() => {
		const row = document.querySelector('`+row(existingARN)+`');
		if (!row) return false;
		const cells = [...row.cells].map((c) => c.textContent);
		const link = row.cells[1].querySelector("a.stage-link");
		return cells[0] === "(no name)" && cells[1] === "studio" && cells[2] === "RTMP" && cells[3] === "INACTIVE" &&
			cells[4] === "encoder-1" && cells[5] === "`+aws.ToString(existing.ParticipantId)+`" &&
			!!link && link.getAttribute("href") === "#stage=`+resourceID(studio)+`" &&
			row.cells[3].querySelector(".badge.off") !== null;
	})()`, 10*time.Second)
	if n := webtest.Eval[int](console, `document.querySelectorAll("#new-ingest-stage option").length`); n != 3 {
		t.Errorf("the form's stage choices: got %d, want the two stages and none", n)
	}

	// RTMP says that it is not encrypted.
	webtest.Eval[chromedp.Void](console, `(() => {
		const p = document.getElementById("new-ingest-protocol");
		p.value = "RTMP";
		p.dispatchEvent(new Event("change"));
	})()`)
	if webtest.Eval[bool](console, `document.getElementById("new-ingest-insecure").hidden`) {
		t.Errorf("RTMP chosen: the form does not say that it is insecure")
	}

	// Create one through the form, RTMPS to backstage with redundant
	// ingest.
	webtest.Eval[chromedp.Void](console, `(() => {
		for (const [id, value] of [["new-ingest-protocol", "RTMPS"], ["new-ingest-stage", `+jsonOf(backstage)+`]]) {
			const e = document.getElementById(id);
			e.value = value;
			e.dispatchEvent(new Event("change"));
		}
	})()`)
	console.Do("create one",
		chromedp.SetValue(chromedp.ID("new-ingest-name"), "from-console"),
		chromedp.SetValue(chromedp.ID("new-ingest-user"), "obs"),
		chromedp.SetValue(chromedp.ID("new-ingest-attributes"), "role=camera, room=a=b"),
		chromedp.Click(chromedp.ID("new-ingest-redundant")),
		chromedp.Click(chromedp.CSS(`#create-ingest button[type=submit]`)),
	)
	console.WaitFor("its keys", `!document.getElementById("ingest-key").hidden && !!document.getElementById("ingest-stream-key") &&
		document.querySelectorAll("#ingest tbody tr").length === 2 && document.getElementById("error").hidden`, 10*time.Second)
	list, err := c.ListIngestConfigurations(ctx, &ivsrealtime.ListIngestConfigurationsInput{})
	if err != nil {
		t.Fatalf("ListIngestConfigurations: %v", err)
	}
	if n := len(list.IngestConfigurations); n != 2 || aws.ToString(list.IngestConfigurations[1].Name) != "from-console" {
		t.Fatalf("ingest configurations after the console created one: %s", jsonOf(list.IngestConfigurations))
	}
	createdARN := aws.ToString(list.IngestConfigurations[1].Arn)
	got, err := c.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: aws.String(createdARN)})
	if err != nil {
		t.Fatalf("GetIngestConfiguration: %v", err)
	}
	created := got.IngestConfiguration
	if aws.ToString(created.StageArn) != backstage || created.IngestProtocol != types.IngestProtocolRtmps || aws.ToString(created.UserId) != "obs" ||
		fmt.Sprint(created.Attributes) != fmt.Sprint(map[string]string{"role": "camera", "room": "a=b"}) {
		t.Fatalf("the configuration the console created: %s", jsonOf(created))
	}
	redundant := redundantIngestOf(t, m, createdARN)
	if !redundant.RedundantIngest || len(redundant.RedundantIngestCredentials) != 1 {
		t.Fatalf("the configuration the console created: redundant ingest %+v, want one more credential", redundant)
	}
	key, redundantKey := aws.ToString(created.StreamKey), redundant.RedundantIngestCredentials[0].StreamKey
	shown := func() map[string]string {
		return webtest.Eval[map[string]string](console, `Object.fromEntries([...document.querySelectorAll("#ingest-key input")].map((i) => [i.id, i.value]))`)
	}
	checkShown := func(what string, want map[string]string) {
		t.Helper()
		if got := shown(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: #ingest-key shows %v, want %v", what, got, want)
		}
	}
	checkShown("after the creation", map[string]string{
		"ingest-server":               rtmps,
		"ingest-stream-key":           key,
		"ingest-url":                  rtmps + key,
		"ingest-stream-key-redundant": redundantKey,
		"ingest-url-redundant":        rtmps + redundantKey,
	})
	// The keys are in the fields only: not in the URL, the rows, or the
	// page's markup.
	if leak := webtest.Eval[string](console, `(() => {
		const keys = [`+jsonOf(key)+`, `+jsonOf(redundantKey)+`];
		const where = { url: location.href, markup: document.documentElement.outerHTML, rows: document.querySelector("#ingest tbody").textContent };
		return Object.entries(where).filter(([, s]) => keys.some((k) => s.includes(k))).map(([w]) => w).join(", ");
	})()`); leak != "" {
		t.Errorf("a stream key is in the %s", leak)
	}
	console.FullScreenshot("console-ingest")

	// Change its stage: the keys shown follow.
	changeStage := func(arn, stage string) {
		t.Helper()
		console.Do("change the stage", chromedp.Click(chromedp.CSS(row(arn)+` [data-action=change-ingest-stage]`)))
		console.WaitFor("the stage choice", `document.getElementById("confirm").open && !document.getElementById("confirm-choice-label").hidden`, 5*time.Second)
		webtest.Eval[chromedp.Void](console, `document.getElementById("confirm-choice").value = `+jsonOf(stage))
		console.Screenshot("console-ingest-change-stage")
		console.Do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	}
	changeStage(createdARN, studio)
	console.WaitFor("the new stage", `document.querySelector('`+row(createdARN)+`').cells[1].textContent === "studio"`, 10*time.Second)
	got, err = c.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: aws.String(createdARN)})
	if err != nil {
		t.Fatalf("GetIngestConfiguration: %v", err)
	}
	if s, r := aws.ToString(got.IngestConfiguration.StageArn), redundantIngestOf(t, m, createdARN); s != studio || !r.RedundantIngest ||
		len(r.RedundantIngestCredentials) != 1 || r.RedundantIngestCredentials[0].StreamKey != redundantKey {
		t.Errorf("after the console changed its stage: stage %s, redundant ingest %+v; want %s, the same", s, r, studio)
	}
	if shown()["ingest-stream-key"] != key {
		t.Errorf("after the change of stage, #ingest-key no longer shows the key")
	}

	// Show key of the other: GetIngestConfiguration's key, with the RTMP
	// endpoint, no redundant one.
	console.Do("show the other's key", chromedp.Click(chromedp.CSS(row(existingARN)+` [data-action=show-ingest-key]`)))
	console.WaitFor("the other's key", `document.getElementById("ingest-key").dataset.arn === `+jsonOf(existingARN), 10*time.Second)
	existingKey := aws.ToString(existing.StreamKey)
	checkShown("Show key", map[string]string{"ingest-server": rtmp, "ingest-stream-key": existingKey, "ingest-url": rtmp + existingKey})

	// An encoder publishes with it: it is ACTIVE, cannot change stage,
	// and its participant shows its protocol in the stage.
	pid := ivsrt.ParticipantID(aws.ToString(existing.ParticipantId))
	if err := m.DB.SetIngestActive(ctx, ivsrt.IngestConfigurationARN(existingARN), pid, true); err != nil {
		t.Fatalf("SetIngestActive: %v", err)
	}
	record(t, m, &ivsrt.Event{StageARN: ivsrt.StageARN(studio), Name: ivsrt.EventJoined, ParticipantID: pid, UserID: "encoder-1",
		Protocol: "RTMPS", IngestConfigurationARN: ivsrt.IngestConfigurationARN(existingARN)})
	console.WaitFor("ACTIVE", `document.querySelector('`+row(existingARN)+` td:nth-child(4) .badge.ok')?.textContent === "ACTIVE"`, 10*time.Second)
	changeStage(existingARN, backstage)
	console.WaitFor("the conflict", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("is active")`, 10*time.Second)
	if s := webtest.Eval[string](console, `document.querySelector('`+row(existingARN)+`').cells[1].textContent`); s != "studio" {
		t.Errorf("the active configuration's stage: got %q, want studio", s)
	}
	console.Do("follow the stage link", chromedp.Click(chromedp.CSS(row(existingARN)+` a.stage-link`)))
	console.WaitFor("the encoder in the stage, with its protocol", `!document.getElementById("stages-view").hidden &&
		document.getElementById("ingest-key").hidden &&
		document.querySelector('#participants tr[data-participant-id="`+string(pid)+`"] .badge.protocol')?.textContent === "RTMPS"`, 10*time.Second)
	if s := webtest.Eval[string](console, `location.hash`); s != "#stage="+resourceID(studio)+"&session="+sessionOf(t, c, studio) {
		t.Errorf("the stage link led to %q", s)
	}
	console.FullScreenshot("console-ingest-encoder")
	console.Do("back to the ingest tab", chromedp.Click(chromedp.CSS(`#tabs [data-tab=ingest]`)))
	console.WaitFor("the ingest tab", `!document.getElementById("ingest-view").hidden && !!document.querySelector('`+row(existingARN)+`')`, 10*time.Second)

	// Deleting the active one needs force, which the dialog offers.
	deleteRow := func(arn string, force bool) {
		t.Helper()
		console.Do("delete", chromedp.Click(chromedp.CSS(row(arn)+` [data-action=delete-ingest]`)))
		console.WaitFor("the confirmation", `document.getElementById("confirm").open`, 5*time.Second)
		if force {
			console.Do("force", chromedp.Click(chromedp.ID("confirm-check")))
			console.Screenshot("console-ingest-delete-force")
		}
		console.Do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	}
	deleteRow(existingARN, false)
	console.WaitFor("the conflict", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("is active")`, 10*time.Second)
	if webtest.Eval[bool](console, `document.getElementById("confirm-check-label").hidden`) {
		t.Errorf("the dialog deleting an active configuration does not offer force")
	}
	deleteRow(existingARN, true)
	console.WaitFor("one left", `!document.querySelector('`+row(existingARN)+`') && !!document.querySelector('`+row(createdARN)+`') &&
		document.getElementById("error").hidden`, 10*time.Second)
	if _, err := c.GetIngestConfiguration(ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: aws.String(existingARN)}); err == nil {
		t.Errorf("GetIngestConfiguration after the console deleted it with force: got it, want ResourceNotFoundException")
	}

	// The other is inactive: no force offered. Its shown key goes with it.
	console.Do("show its key", chromedp.Click(chromedp.CSS(row(createdARN)+` [data-action=show-ingest-key]`)))
	console.WaitFor("its key", `document.getElementById("ingest-key").dataset.arn === `+jsonOf(createdARN), 10*time.Second)
	deleteRow(createdARN, false)
	console.WaitFor("the empty state", `!document.getElementById("no-ingest").hidden && !document.querySelector("#ingest tbody tr") &&
		document.getElementById("ingest-key").hidden && !document.querySelector("#ingest-key input")`, 10*time.Second)
	if !webtest.Eval[bool](console, `document.getElementById("confirm-check-label").hidden`) {
		t.Errorf("the dialog deleting an inactive configuration offers force")
	}

	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// redundantIngest is what GetIngestConfiguration says of redundant
// ingest, which the SDK of go.mod does not know yet.
type redundantIngest struct {
	RedundantIngest            bool `json:"redundantIngest"`
	RedundantIngestCredentials []struct {
		ParticipantID string `json:"participantId"`
		StreamKey     string `json:"streamKey"`
	} `json:"redundantIngestCredentials"`
}

func redundantIngestOf(t *testing.T, m *Main, arn string) redundantIngest {
	t.Helper()
	ex := signedRequest(t, m, "POST", "/GetIngestConfiguration", jsonOf(map[string]string{"arn": arn}))
	if ex.Status != http.StatusOK {
		t.Fatalf("GetIngestConfiguration: %d %s", ex.Status, ex.Body)
	}
	var out struct{ IngestConfiguration redundantIngest }
	ex.decode(t, &out)
	return out.IngestConfiguration
}

// resourceID is the id at the end of an ARN.
func resourceID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// sessionOf returns the active session of a stage.
func sessionOf(t *testing.T, c *ivsrealtime.Client, stage string) string {
	t.Helper()
	out, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	return aws.ToString(out.Stage.ActiveSessionId)
}
