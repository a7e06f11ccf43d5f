package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events/eventstest"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// TestBrowserConsoleDeadLetters checks the console's event delivery tab:
// an event the webhook keeps refusing shows as a dead letter, with its
// event name, stage (a link to it) and error, beside the sink's counts;
// once the receiver accepts again, Redrive delivers it, and the console
// shows no dead letter and the delivery.
func TestBrowserConsoleDeadLetters(t *testing.T) {
	start := time.Now()
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	var refuse atomic.Bool
	refuse.Store(true)
	rcv.SetAnswer(func(*ivsrt.Envelope) int {
		if refuse.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	m, c := startServer(t, withWebhook(rcv.URL(), 500*time.Millisecond))
	arn := createStage(t, c, "dead-lettered")
	stageID := arn[strings.LastIndex(arn, "/")+1:]

	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console")
	// Signed in with the server's keys, so that the delivery API checks
	// the console's signatures (of queries too).
	console.WaitFor("the sign-in form", `!document.getElementById("sign-in").hidden`, 10*time.Second)
	console.Do("sign in",
		chromedp.SetValue(chromedp.ID("access-key-id"), testAccessKeyID),
		chromedp.SetValue(chromedp.ID("secret-access-key"), testSecretAccessKey),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)),
	)
	console.WaitFor("the console", `!document.getElementById("app").hidden && document.getElementById("live").dataset.state === "ok"`, 10*time.Second)
	console.Do("open the event delivery tab", chromedp.Click(chromedp.CSS(`#tabs [data-tab=delivery]`)))
	console.WaitFor("the delivery tab", `!document.getElementById("delivery-view").hidden && document.getElementById("stages-view").hidden &&
		location.hash === "#tab=delivery"`, 5*time.Second)

	row := `#dead-letters tr[data-sink="webhook"]`
	console.WaitFor("the dead letter", `(() => {
		const row = document.querySelector('`+row+`');
		return !!row && row.querySelector(".event-name").textContent === "Stage Created" &&
			row.querySelector(".last-error").textContent.includes("HTTP 500");
	})()`, 20*time.Second)
	if got := webtest.Eval[int](console, `document.querySelectorAll("#dead-letters tbody tr").length`); got != 1 {
		t.Errorf("dead letters shown: got %d, want 1", got)
	}
	if got := webtest.Eval[string](console, `document.querySelector('`+row+` .stage-link').textContent`); got != stageID {
		t.Errorf("dead letter's stage: got %q, want %q", got, stageID)
	}
	if got := webtest.Eval[string](console, `document.querySelector('`+row+` .stage-link').title`); got != arn {
		t.Errorf("dead letter's stage link title: got %q, want %q", got, arn)
	}
	sink := `#sinks tr[data-sink="webhook"]`
	console.WaitFor("the sink, failing, with its dead letter", `(() => {
		const row = document.querySelector('`+sink+`');
		return !!row && row.querySelector("[data-field=deadLettered]").textContent === "1" &&
			row.querySelector(".sink-health")?.textContent === "failing" && row.textContent.includes(`+strconv.Quote(rcv.URL())+`);
	})()`, 10*time.Second)
	if !webtest.Eval[bool](console, `document.getElementById("no-sinks").hidden && document.getElementById("no-dead-letters").hidden`) {
		t.Errorf("an empty state shows beside a sink and a dead letter")
	}
	console.FullScreenshot("console-dead-letters")

	// The dead letter's stage links to the stage, in the stages tab.
	console.Do("open the stage", chromedp.Click(chromedp.CSS(row+` .stage-link`)))
	console.WaitFor("the stage, selected", fmt.Sprintf(`!document.getElementById("stages-view").hidden &&
		document.getElementById("delivery-view").hidden && document.querySelector("#stages tr.selected")?.dataset.stageId === %q`, stageID), 10*time.Second)
	console.Do("back to event delivery", chromedp.Click(chromedp.CSS(`#tabs [data-tab=delivery]`)))
	console.WaitFor("the dead letter again", `!!document.querySelector('`+row+` [data-action=redrive]')`, 10*time.Second)

	eventID := webtest.Eval[string](console, `document.querySelector('`+row+`').dataset.eventId`)
	refuse.Store(false)
	console.Do("redrive", chromedp.Click(chromedp.CSS(row+` [data-action=redrive]`)))
	got := rcv.WaitAccepted(1, 10*time.Second)
	if got[0].ID != eventID || got[0].Detail["event_name"] != "Stage Created" {
		t.Errorf("after redrive the receiver got %s (%v), want %s (Stage Created)", got[0].ID, got[0].Detail["event_name"], eventID)
	}
	console.WaitFor("no dead letters, one delivery", `!document.getElementById("no-dead-letters").hidden &&
		!document.querySelector("#dead-letters tbody tr") &&
		document.querySelector('`+sink+` [data-field=delivered]')?.textContent === "1" &&
		document.querySelector('`+sink+` .sink-health')?.textContent === "delivering"`, 10*time.Second)
	if msg := webtest.Eval[string](console, `document.getElementById("error").hidden ? "" : document.getElementById("error").textContent`); msg != "" {
		t.Errorf("the console shows an error: %s", msg)
	}
	console.FullScreenshot("console-delivered")

	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// TestBrowserConsoleNoSinks opens the console's event delivery tab by its
// link on a server without sinks: it says so, and that there are no dead
// letters.
func TestBrowserConsoleNoSinks(t *testing.T) {
	m, _ := startServer(t, withDev())
	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console#tab=delivery")
	console.WaitFor("the empty states", `document.getElementById("live").dataset.state === "ok" &&
		!document.getElementById("delivery-view").hidden && document.getElementById("stages-view").hidden &&
		document.querySelector("#tabs [aria-current]")?.dataset.tab === "delivery" &&
		!document.getElementById("no-sinks").hidden && document.getElementById("no-sinks").textContent.includes("No event sinks are configured") &&
		!document.getElementById("no-dead-letters").hidden && document.getElementById("sinks").hidden`, 10*time.Second)
	console.Screenshot("console-no-sinks")
	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}
