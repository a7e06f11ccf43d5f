package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/events/eventstest"
)

const webhookSecret = "whsec-e2e-secret"

// withWebhook delivers the event stream to url.
func withWebhook(url string, retryFor time.Duration) serverOption {
	return func(c *Config) {
		c.WebhookURLs, c.WebhookSecret = []string{url}, webhookSecret
		if retryFor > 0 {
			c.EventRetryFor = retryFor
		}
	}
}

// stageEnvelopes keeps the envelopes of one stage.
func stageEnvelopes(envs []*ivsrt.Envelope, arn string) []*ivsrt.Envelope {
	var out []*ivsrt.Envelope
	for _, e := range envs {
		if e.Resources[0] == arn {
			out = append(out, e)
		}
	}
	return out
}

func envelopeNames(envs []*ivsrt.Envelope) []string {
	var names []string
	for _, e := range envs {
		names = append(names, e.Detail["event_name"].(string))
	}
	return names
}

// TestWebhookEndToEnd: two participants really join, one publishes, the
// other subscribes, both leave; the webhook gets every event of the stage,
// signed, once each, in the order the server wrote them, and they agree
// with what the API's ListParticipantEvents says.
func TestWebhookEndToEnd(t *testing.T) {
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	m, c := startServer(t, withWebhook(rcv.URL(), 0))
	ctx := testContext(t)
	arn := createStage(t, c, "webhooked")

	run := func(user string, cfg bot.Config) (*bot.Bot, func()) {
		tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(user)})
		cfg.Token, cfg.HTTPClient = aws.ToString(tok.Token), localHTTPClient(t)
		b, err := bot.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		bctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- b.Run(bctx) }()
		return b, func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", user, err)
			}
		}
	}
	alice, stopAlice := run("alice", bot.Config{Video: true})
	waitFor := func(what string, ok func([]*ivsrt.Envelope) bool) []*ivsrt.Envelope {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, _, _ := rcv.Snapshot()
			got = stageEnvelopes(got, arn)
			if ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("webhook: no %s within 20 s; got %v", what, envelopeNames(got))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	has := func(name, participant string) func([]*ivsrt.Envelope) bool {
		return func(envs []*ivsrt.Envelope) bool {
			return slices.ContainsFunc(envs, func(e *ivsrt.Envelope) bool {
				return e.Detail["event_name"] == name && (participant == "" || e.Detail["participant_id"] == participant)
			})
		}
	}
	waitFor("Participant Published", has("Participant Published", alice.ParticipantID()))
	bob, stopBob := run("bob", bot.Config{Subscribe: true})
	waitFor("Participant Subscribed", has("Participant Subscribed", bob.ParticipantID()))
	stopBob()
	stopAlice()
	got := waitFor("Session Ended", has("Session Ended", ""))

	// Everything the server wrote for the stage, in its order.
	written, err := m.DB.ReadEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ev := range written {
		if string(ev.StageARN) == arn {
			want = append(want, ev.ID)
		}
	}
	time.Sleep(300 * time.Millisecond) // anything sent twice would show now
	got, _, badSigs := rcv.Snapshot()
	got = stageEnvelopes(got, arn)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, want) || badSigs != 0 {
		t.Errorf("webhook got %v\n(%d bad signatures), want the server's order %v", envelopeNames(got), badSigs, want)
	}
	names := envelopeNames(got)
	for _, n := range []string{"Stage Created", "Session Started", "Participant Joined", "Participant Published",
		"Participant Subscribed", "Participant Unsubscribed", "Participant Unpublished", "Participant Left", "Session Ended"} {
		if !slices.Contains(names, n) {
			t.Errorf("webhook: no %q in %v", n, names)
		}
	}
	if names[0] != "Stage Created" || names[1] != "Session Started" || names[len(names)-1] != "Session Ended" {
		t.Errorf("webhook order: %v", names)
	}

	// The webhook tells what the API tells.
	sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
	if err != nil || len(sessions.StageSessions) != 1 {
		t.Fatalf("ListStageSessions: %v, %v", sessions, err)
	}
	sid := aws.ToString(sessions.StageSessions[0].SessionId)
	for _, p := range []*bot.Bot{alice, bob} {
		evs, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{
			StageArn: aws.String(arn), SessionId: aws.String(sid), ParticipantId: aws.String(p.ParticipantID())})
		if err != nil {
			t.Fatal(err)
		}
		var apiNames, hookNames []string
		for _, e := range evs.Events {
			apiNames = append(apiNames, string(e.Name))
		}
		for _, e := range got {
			if e.Detail["participant_id"] == p.ParticipantID() {
				if e.Detail["session_id"] != sid {
					t.Errorf("webhook event %v: session %v, want %s", e.Detail["event_name"], e.Detail["session_id"], sid)
				}
				hookNames = append(hookNames, streamToAPIName[e.Detail["event_name"].(string)])
			}
		}
		if !slices.Equal(apiNames, hookNames) {
			t.Errorf("participant %s: API events %v, webhook %v", p.ParticipantID(), apiNames, hookNames)
		}
	}
}

var streamToAPIName = map[string]string{
	"Participant Joined":       string(types.EventNameJoined),
	"Participant Left":         string(types.EventNameLeft),
	"Participant Published":    string(types.EventNamePublishStarted),
	"Participant Unpublished":  string(types.EventNamePublishStopped),
	"Participant Subscribed":   string(types.EventNameSubscribeStarted),
	"Participant Unsubscribed": string(types.EventNameSubscribeStopped),
}

// TestWebhookDeadLettersAPI: an event the receiver keeps refusing becomes a
// dead letter, shown by the signed API, and is delivered once redriven.
func TestWebhookDeadLettersAPI(t *testing.T) {
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	refuse := make(chan bool, 1)
	refuse <- true
	rcv.SetAnswer(func(*ivsrt.Envelope) int {
		r := <-refuse
		refuse <- r
		if r {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	m, c := startServer(t, withWebhook(rcv.URL(), 500*time.Millisecond))
	arn := createStage(t, c, "refused")

	if ex := send(t, newRequest(t, m, http.MethodGet, events.DeadLettersPath, "")); ex.Status != http.StatusForbidden {
		t.Errorf("unsigned GET dead letters: status %d, want 403", ex.Status)
	}
	var list struct {
		DeadLetters []events.DeadLetterView `json:"deadLetters"`
		NextToken   string                  `json:"nextToken"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(list.DeadLetters) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
		ex := signedRequest(t, m, http.MethodGet, events.DeadLettersPath+"?sink=webhook", "")
		if ex.Status != http.StatusOK {
			t.Fatalf("GET dead letters: %d %s", ex.Status, ex.Body)
		}
		ex.decode(t, &list)
	}
	l := list.DeadLetters[0]
	if l.Sink != "webhook" || l.Event.Resources[0] != arn || l.Event.Detail["event_name"] != "Stage Created" ||
		l.Attempts < 2 || l.LastError == "" || l.Event.Region != testRegion {
		t.Errorf("dead letter: %+v", l)
	}

	var sinks struct {
		Sinks []events.SinkStatus `json:"sinks"`
	}
	ex := signedRequest(t, m, http.MethodGet, events.SinksPath, "")
	ex.decode(t, &sinks)
	if len(sinks.Sinks) != 1 || sinks.Sinks[0].Name != "webhook" || sinks.Sinks[0].Kind != "webhook" ||
		sinks.Sinks[0].Target != rcv.URL() || sinks.Sinks[0].DeadLettered != 1 {
		t.Errorf("sinks: %+v", sinks.Sinks)
	}

	for _, bad := range []struct{ body string }{{`{}`}, {`{"sink":"webhook"}`}, {`not json`}} {
		if ex := signedRequest(t, m, http.MethodPost, events.RedrivePath, bad.body); ex.Status != http.StatusBadRequest {
			t.Errorf("redrive %s: status %d, want 400", bad.body, ex.Status)
		}
	}
	if ex := signedRequest(t, m, http.MethodPost, events.RedrivePath, `{"sink":"webhook","eventId":"`+ivsrt.NewEventID()+`"}`); ex.Status != http.StatusNotFound {
		t.Errorf("redrive of an unknown event: status %d, want 404", ex.Status)
	}
	<-refuse
	refuse <- false
	body, _ := json.Marshal(map[string]string{"sink": "webhook", "eventId": l.Event.ID})
	if ex := signedRequest(t, m, http.MethodPost, events.RedrivePath, string(body)); ex.Status != http.StatusOK {
		t.Fatalf("redrive: status %d %s", ex.Status, ex.Body)
	}
	got := rcv.WaitAccepted(1, 10*time.Second)
	if got[0].ID != l.Event.ID {
		t.Errorf("after redrive: got %s, want %s", got[0].ID, l.Event.ID)
	}
	ex = signedRequest(t, m, http.MethodGet, events.DeadLettersPath, "")
	list.DeadLetters = nil
	ex.decode(t, &list)
	if len(list.DeadLetters) != 0 {
		t.Errorf("dead letters after redrive: %d", len(list.DeadLetters))
	}
}

// TestWebhookKill9: the server is killed with events it could not deliver
// (the receiver is down); after a restart they all arrive, once each, in
// order per stage.
func TestWebhookKill9(t *testing.T) {
	bin := durableBuild(t)
	rcv := eventstest.NewReceiver(t, webhookSecret)
	data := filepath.Join(t.TempDir(), "data")
	addr := durableFreeAddr(t)
	args := []string{"--webhook-url", rcv.URL(), "--webhook-secret", webhookSecret}
	srv := durableStart(t, bin, data, addr, args...)
	c := srv.client()
	ctx := testContext(t)

	var stages []string
	for i := range 3 {
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("v0")})
		if err != nil {
			t.Fatal(err)
		}
		stages = append(stages, aws.ToString(out.Stage.Arn))
		_ = i
	}
	for v := 1; v <= 3; v++ {
		for _, arn := range stages {
			if _, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: aws.String(arn), Name: aws.String("v" + strconv.Itoa(v))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(1500 * time.Millisecond) // tried, refused, waiting for the next try
	srv.kill()

	rcv.Up()
	durableStart(t, bin, data, addr, args...)
	got := rcv.WaitAccepted(12, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	got, _, badSigs := rcv.Snapshot()
	if len(got) != 12 || badSigs != 0 {
		t.Errorf("after restart: %d accepted (want 12), %d bad signatures", len(got), badSigs)
	}
	seen := map[string]bool{}
	next := map[string]int{}
	for _, e := range got {
		if seen[e.ID] {
			t.Errorf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		arn := e.Resources[0]
		if want := "v" + strconv.Itoa(next[arn]); e.Detail["stage_name"] != want {
			t.Errorf("stage %s: got %v, want %s", arn, e.Detail["stage_name"], want)
		}
		next[arn]++
	}
	if first := rcv.Attempt(got[0].ID); first < 2 {
		t.Errorf("first event delivered at try %d, want > 1 (tried before the kill)", first)
	}
}
