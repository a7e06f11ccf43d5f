package main

import (
	"fmt"
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

// TestBrowserConsoleCompositions checks the console's compositions tab
// through the whole server: its start form offers the stages, storage and
// encoder configurations; a composition to a channel the server does not
// map goes through its states and FAILS; one recording to S3 (and to that
// channel) runs, shows its destinations and its recording prefix; the
// server's refusal of a third (--max-compositions) shows; the list filters
// by stage; Stop stops one, whose recording ends in the bucket.
func TestBrowserConsoleCompositions(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m, c := startServer(t, withDev(), func(c *Config) { c.MaxCompositions = 1 })
	withTestStorage(t, m)
	ctx := testContext(t)
	studio, backstage := createStage(t, c, "studio"), createStage(t, c, "backstage")
	small := createEncoder(t, c, "small",
		&types.Video{Width: aws.Int32(640), Height: aws.Int32(360), Framerate: aws.Float32(15), Bitrate: aws.Int32(800000)}, nil)
	const channel = "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234"

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console#tab=compositions")
	console.WaitFor("the compositions tab, its form filled in", `(() => {
		const options = (id) => [...document.getElementById(id).options].map((o) => o.textContent);
		return document.getElementById("live").dataset.state === "ok" &&
			!document.getElementById("compositions-view").hidden && document.getElementById("stages-view").hidden &&
			document.getElementById("encoders-view").hidden && document.querySelector("#tabs [aria-current]")?.dataset.tab === "compositions" &&
			!document.getElementById("no-compositions").hidden && document.getElementById("composition-card").hidden &&
			options("new-composition-stage").join() === "backstage,studio" &&
			options("new-composition-storage").join() === "test-recordings (test-recordings)" &&
			options("new-composition-s3-encoder").join() === "small · 640×360, 15 fps, 800 kbps" &&
			options("new-composition-channel-encoder").join("|") === "Default · 1280×720, 30 fps, 2.5 Mbps|small · 640×360, 15 fps, 800 kbps" &&
			options("composition-stage").join() === "All stages,backstage,studio" &&
			document.getElementById("new-composition-s3-missing").hidden &&
			document.getElementById("new-composition-pip").hidden && document.getElementById("new-composition-channel-fields").disabled;
	})()`, 10*time.Second)

	// fill sets the start form's fields by id, as a person would: the
	// change of each is announced.
	fill := func(fields map[string]any) {
		t.Helper()
		webtest.Eval[chromedp.Void](console, `(() => {
			for (const [id, value] of Object.entries(`+jsonOf(fields)+`)) {
				const e = document.getElementById(id);
				if (typeof value === "boolean") e.checked = value;
				else e.value = value;
				e.dispatchEvent(new Event("change", { bubbles: true }));
			}
		})()`)
	}
	start := func() { t.Helper(); console.Do("start", chromedp.Click(chromedp.ID("start-composition-submit"))) }
	list := func() []types.CompositionSummary {
		t.Helper()
		out, err := c.ListCompositions(ctx, &ivsrealtime.ListCompositionsInput{})
		if err != nil {
			t.Fatalf("ListCompositions: %v", err)
		}
		return out.Compositions
	}

	// Without a destination the form says so, and starts nothing.
	fill(map[string]any{"new-composition-s3": false})
	start()
	console.WaitFor("no destination", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("Choose where the composition goes")`, 10*time.Second)
	if n := len(list()); n != 0 {
		t.Fatalf("compositions after a start without a destination: %d, want none", n)
	}

	// To a channel the server does not map: the destination fails at once,
	// and the composition with it.
	fill(map[string]any{
		"new-composition-stage":       studio,
		"new-composition-featured":    "featured",
		"new-composition-channel":     true,
		"new-composition-channel-arn": channel,
	})
	start()
	console.WaitFor("the composition FAILED", `(() => {
		const card = document.getElementById("composition-card");
		const row = document.querySelector("#compositions tr.selected");
		return !card.hidden && !!row && row.dataset.compositionArn === card.dataset.arn && row.dataset.state === "FAILED" &&
			row.cells[1].textContent === "studio" && row.cells[3].textContent === "channel FAILED" &&
			!row.querySelector("[data-action=stop-composition]") && document.getElementById("composition-stop").hidden &&
			document.getElementById("composition-state").textContent === "FAILED" && document.getElementById("error").hidden;
	})()`, 20*time.Second)
	failed := webtest.Eval[string](console, `document.getElementById("composition-card").dataset.arn`)
	if h := webtest.Eval[string](console, `location.hash`); h != "#tab=compositions&composition="+resourceID(failed) {
		t.Errorf("the URL of the composition shown: %q", h)
	}
	got, err := c.GetComposition(ctx, &ivsrealtime.GetCompositionInput{Arn: aws.String(failed)})
	if err != nil {
		t.Fatalf("GetComposition: %v", err)
	}
	comp := got.Composition
	if aws.ToString(comp.StageArn) != studio || comp.State != types.CompositionStateFailed || comp.Layout == nil || comp.Layout.Grid == nil ||
		aws.ToString(comp.Layout.Grid.FeaturedParticipantAttribute) != "featured" || len(comp.Destinations) != 1 ||
		comp.Destinations[0].Configuration.Channel == nil || aws.ToString(comp.Destinations[0].Configuration.Channel.ChannelArn) != channel ||
		comp.Destinations[0].Configuration.Channel.EncoderConfigurationArn != nil || comp.Destinations[0].State != types.DestinationStateFailed {
		t.Fatalf("the composition the console started: %s", jsonOf(comp))
	}
	shownFacts := func() map[string]string {
		return webtest.Eval[map[string]string](console, `Object.fromEntries([...document.querySelectorAll("#composition-facts dt")].map((dt) =>
			[dt.textContent, dt.nextElementSibling.textContent]))`)
	}
	if f := shownFacts(); f["ARN"] != failed || f["Stage"] != "studio" || f["Layout"] != "Grid, featured participant attribute featured" {
		t.Errorf("the failed composition's facts: %v", f)
	}
	destination := func() []string {
		return webtest.Eval[[]string](console, `[...document.querySelectorAll("#composition-destinations tbody tr")].map((r) =>
			[...r.cells].slice(1, 4).map((c) => c.textContent).join(" | "))`)
	}
	if d := destination(); len(d) != 1 || d[0] != "channel "+channel+" | default · 1280×720, 30 fps, 2.5 Mbps | FAILED" {
		t.Errorf("the failed composition's destination: %q", d)
	}

	// Recording to S3, and to that channel with the encoder configuration:
	// it runs, and its channel destination fails.
	fill(map[string]any{
		"new-composition-stage":           backstage,
		"new-composition-layout":          "pip",
		"new-composition-featured":        "host",
		"new-composition-pip-attribute":   "guest",
		"new-composition-pip-position":    "TOP_LEFT",
		"new-composition-omit-stopped":    true,
		"new-composition-s3":              true,
		"new-composition-channel-encoder": small,
	})
	if webtest.Eval[bool](console, `document.getElementById("new-composition-pip").hidden`) {
		t.Errorf("a PiP layout chosen: its options are hidden")
	}
	start()
	console.WaitFor("the composition ACTIVE", `(() => {
		const card = document.getElementById("composition-card");
		const row = document.querySelector("#compositions tr.selected");
		return !card.hidden && card.dataset.arn !== `+jsonOf(failed)+` && !!row && row.dataset.state === "ACTIVE" &&
			row.cells[3].textContent === "S3 ACTIVEchannel FAILED" && !!row.querySelector("[data-action=stop-composition]") &&
			!document.getElementById("composition-stop").hidden && !!document.querySelector("#composition-destinations .recording-prefix") &&
			document.querySelectorAll("#compositions tbody tr").length === 2 &&
			document.querySelector("#compositions tbody tr").dataset.compositionArn === card.dataset.arn;
	})()`, 30*time.Second)
	running := webtest.Eval[string](console, `document.getElementById("composition-card").dataset.arn`)
	got, err = c.GetComposition(ctx, &ivsrealtime.GetCompositionInput{Arn: aws.String(running)})
	if err != nil {
		t.Fatalf("GetComposition: %v", err)
	}
	comp = got.Composition
	pip := comp.Layout.Pip
	if aws.ToString(comp.StageArn) != backstage || pip == nil || aws.ToString(pip.FeaturedParticipantAttribute) != "host" ||
		aws.ToString(pip.PipParticipantAttribute) != "guest" || pip.PipPosition != types.PipPositionTopLeft || !pip.OmitStoppedVideo ||
		len(comp.Destinations) != 2 || comp.Destinations[0].Configuration.S3 == nil || comp.Destinations[1].Configuration.Channel == nil {
		t.Fatalf("the composition the console started: %s", jsonOf(comp))
	}
	s3, ch := comp.Destinations[0], comp.Destinations[1]
	if aws.ToString(s3.Configuration.S3.StorageConfigurationArn) != storageARN || fmt.Sprint(s3.Configuration.S3.EncoderConfigurationArns) != fmt.Sprint([]string{small}) ||
		aws.ToString(ch.Configuration.Channel.EncoderConfigurationArn) != small || s3.State != types.DestinationStateActive || ch.State != types.DestinationStateFailed {
		t.Fatalf("the composition's destinations: %s", jsonOf(comp.Destinations))
	}
	prefix := aws.ToString(s3.Detail.S3.RecordingPrefix)
	if want := resourceID(backstage) + "/" + resourceID(running) + "/composite"; prefix != want {
		t.Errorf("the recording prefix: %q, want %q", prefix, want)
	}
	if f := shownFacts(); f["Stage"] != "backstage" || f["Ended"] != "running" ||
		f["Layout"] != "Picture-in-picture at the top left, featured participant attribute host, PiP participant attribute guest, stopped video left out" {
		t.Errorf("the running composition's facts: %v", f)
	}
	wantDestinations := []string{
		"S3 test-recordings (test-recordings)prefix " + prefix + " | small · 640×360, 15 fps, 800 kbps | ACTIVE",
		"channel " + channel + " | small · 640×360, 15 fps, 800 kbps | FAILED",
	}
	if d := destination(); fmt.Sprint(d) != fmt.Sprint(wantDestinations) {
		t.Errorf("the running composition's destinations:\n%q\nwant\n%q", d, wantDestinations)
	}
	console.FullScreenshot("console-compositions")

	// One more is one too many for this server: its refusal shows.
	fill(map[string]any{"new-composition-stage": studio, "new-composition-layout": "grid", "new-composition-s3": false})
	start()
	console.WaitFor("the refusal", `!document.getElementById("error").hidden &&
		document.getElementById("error").textContent.includes("the most it may (--max-compositions)")`, 10*time.Second)
	if n := len(list()); n != 2 {
		t.Errorf("compositions after the refusal: %d, want 2", n)
	}
	if a := webtest.Eval[string](console, `document.getElementById("composition-card").dataset.arn`); a != running {
		t.Errorf("after the refusal the console shows %s, want %s", a, running)
	}

	// The filter by stage.
	filter := func(stage string, want ...string) {
		t.Helper()
		webtest.Eval[chromedp.Void](console, `(() => {
			const e = document.getElementById("composition-stage");
			e.value = `+jsonOf(stage)+`;
			e.dispatchEvent(new Event("change"));
		})()`)
		console.WaitFor("the compositions of "+stage, `[...document.querySelectorAll("#compositions tbody tr")].map((r) => r.dataset.compositionArn).join() === `+
			jsonOf(strings.Join(want, ","))+` && document.getElementById("composition-stage").value === `+jsonOf(stage), 10*time.Second)
	}
	filter(studio, failed)
	if !webtest.Eval[bool](console, `document.getElementById("composition-card").hidden`) {
		t.Errorf("filtered by another stage, the console still shows the composition of backstage")
	}
	filter(backstage, running)
	filter("", running, failed)

	// Stop it from its card.
	console.Do("show it", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#compositions tr[data-composition-arn=%q] td:first-child`, running))))
	console.WaitFor("its card", `document.getElementById("composition-card").dataset.arn === `+jsonOf(running)+` &&
		!document.getElementById("composition-card").hidden`, 10*time.Second)
	console.Do("stop", chromedp.Click(chromedp.ID("composition-stop")))
	console.WaitFor("the confirmation", `document.getElementById("confirm").open`, 5*time.Second)
	console.Do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	console.WaitFor("the composition STOPPED", `(() => {
		const row = document.querySelector('#compositions tr[data-composition-arn=`+jsonOf(running)+`]');
		return !!row && row.dataset.state === "STOPPED" && row.cells[3].textContent === "S3 STOPPEDchannel FAILED" && row.cells[5].textContent !== "" &&
			!row.querySelector("[data-action=stop-composition]") && document.getElementById("composition-stop").hidden &&
			document.getElementById("composition-state").textContent === "STOPPED" && document.getElementById("error").hidden;
	})()`, 30*time.Second)
	if s, _ := compositionState(t, c, aws.String(running)); s != types.CompositionStateStopped {
		t.Errorf("the composition the console stopped: %s", s)
	}
	if _, _, err := m.Objects.GetObject(ctx, "test-recordings", prefix+"/"+recording.EndedKey); err != nil {
		t.Errorf("the stopped composition's recording has not ended: %v", err)
	}
	console.FullScreenshot("console-compositions-stopped")

	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}
