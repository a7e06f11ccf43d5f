package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// TestBrowserTokenExchange: a page of the browser client joins with a
// self-signed subscribe-only token and watches a bot; exchangeToken
// promotes it, and it publishes its camera, which the bot receives;
// demoted, it stops publishing at once and keeps watching. Tokens that may
// not be exchanged are refused, by the client or by the server, and the
// stage goes on. The API lists each exchange with both tokens as the
// model shapes them, and both CLIs print them alike.
func TestBrowserTokenExchange(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	base := "http://" + m.Addr()
	stage := createStage(t, c, "browser-exchange")
	key, material := newKeyPair(t)
	keyARN := importKey(t, c, "customer", material, nil)

	hostTok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String("host")})
	host, _, _ := runBot(t, bot.Config{Token: aws.ToString(hostTok.Token), Video: true, Audio: true, Subscribe: true})
	hostID := aws.ToString(hostTok.ParticipantId)
	session := waitPublishing(t, c, stage, hostID)

	// Tokens issued a second apart, the way a customer's server would
	// issue them as the guest is promoted and demoted.
	issued := time.Now().Add(-time.Minute)
	sign := func(at time.Duration, user string, publish bool, attrs map[string]string) string {
		return selfSignEdited(t, c, key, keyARN, stage, "guest-1", user, publish, true, func(claims jwt.MapClaims) {
			claims["iat"] = issued.Add(at).Unix()
			claims["attributes"] = attrs
		})
	}
	guestTok := sign(0, "carol", false, map[string]string{"role": "guest"})
	promoteTok := sign(time.Second, "carol-host", true, map[string]string{"role": "cohost"})
	demoteTok := sign(2*time.Second, "carol", false, map[string]string{"role": "guest"})
	olderTok := sign(time.Second, "carol", true, map[string]string{"role": "guest"})

	b := webtest.NewBrowser(t)
	tab := b.NewTab("guest")
	tab.Navigate(base + "/join")
	webtest.Eval[bool](tab, `(async () => {
		const { Stage } = await import("/client/ivsrt.js");
		const stage = new Stage(`+strconv.Quote(guestTok)+`);
		window.stage = stage;
		window.errors = [];
		window.exchanged = [];
		stage.on("error", ({ error }) => window.errors.push(error.code + ": " + error.message));
		stage.on("tokenexchanged", (d) => window.exchanged.push(d));
		await stage.join();
		return true;
	})()`)
	watching := `(() => {
		const p = window.stage.participants.find((p) => p.id === ` + strconv.Quote(hostID) + `);
		return !!(p && p.stream && p.stream.getVideoTracks().length > 0);
	})()`
	tab.WaitFor("the guest watches the host", watching, 20*time.Second)
	if got := webtest.Eval[bool](tab, `window.stage.canPublish || !!window.stage.localStream`); got {
		t.Fatal("a subscribe-only guest took its camera")
	}

	// Promoted: it takes its camera and publishes; the host receives it.
	type exchangedState struct {
		UserID       string            `json:"userId"`
		Attributes   map[string]string `json:"attributes"`
		Capabilities []string          `json:"capabilities"`
	}
	exchange := func(tok string) exchangedState {
		t.Helper()
		return webtest.Eval[exchangedState](tab, `window.stage.exchangeToken(`+strconv.Quote(tok)+`)`)
	}
	if got := exchange(promoteTok); got.UserID != "carol-host" || got.Attributes["role"] != "cohost" || len(got.Capabilities) != 2 {
		t.Fatalf("promotion: got %+v", got)
	}
	waitPublishing(t, c, stage, "guest-1")
	eventually(t, 20*time.Second, "the host receives the promoted guest's video and audio", func() error {
		for _, r := range host.Stats().Received {
			if r.ParticipantID == "guest-1" && r.VideoFrames >= 20 && r.AudioPackets >= 20 {
				return nil
			}
		}
		return fmt.Errorf("received %+v", host.Stats().Received)
	})
	got, err := c.GetParticipant(testContext(t), &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(session),
		ParticipantId: aws.String("guest-1")})
	if err != nil {
		t.Fatalf("GetParticipant: %v", err)
	}
	if p := got.Participant; aws.ToString(p.UserId) != "carol-host" || p.Attributes["role"] != "cohost" {
		t.Errorf("GetParticipant after the promotion: got %s %v, want carol-host, a cohost", aws.ToString(p.UserId), p.Attributes)
	}

	// Demoted: the publication ends at once; watching goes on.
	if got := exchange(demoteTok); len(got.Capabilities) != 1 || got.Capabilities[0] != "SUBSCRIBE" {
		t.Fatalf("demotion: got %+v", got)
	}
	eventually(t, 10*time.Second, "the demoted guest's publication to end", func() error {
		if names := participantEventNames(t, c, stage, session, "guest-1"); !slices.Contains(names, "PUBLISH_STOPPED") {
			return fmt.Errorf("events %v", names)
		}
		return nil
	})
	tab.WaitFor("the guest still watches", watching, 10*time.Second)
	tab.WaitFor("the guest knows it no longer publishes", `!window.stage.localParticipant.publishing && !window.stage.canPublish`, 10*time.Second)

	// Refusals: by the client (another jti), by the server (issued
	// before the current token). The stage goes on.
	otherJTI := selfSign(t, c, key, keyARN, stage, "guest-2", "dave", true, true)
	for _, tt := range []struct{ name, tok, code string }{
		{"another jti", otherJTI, "TOKEN_EXCHANGE_REFUSED"},
		{"an older token", olderTok, "TOKEN_EXCHANGE_REFUSED"},
		{"a token of CreateParticipantToken", aws.ToString(hostTok.Token), "TOKEN_EXCHANGE_REFUSED"},
	} {
		code := webtest.Eval[string](tab, `window.stage.exchangeToken(`+strconv.Quote(tt.tok)+`).then(() => "exchanged", (err) => err.code)`)
		if code != tt.code {
			t.Errorf("exchange for %s: got %s, want %s", tt.name, code, tt.code)
		}
	}
	if state := webtest.Eval[string](tab, `window.stage.connectionState`); state != "connected" {
		t.Errorf("after the refusals the stage is %s", state)
	}
	// Nothing retried publishing with a token the exchanges replaced.
	if errs := webtest.Eval[[]string](tab, `window.errors`); len(errs) > 0 {
		t.Errorf("client errors: %q", errs)
	}
	if n := webtest.Eval[int](tab, `window.exchanged.length`); n != 2 {
		t.Errorf("tokenexchanged events: %d, want 2", n)
	}

	// The API lists both exchanges with both tokens.
	ex := signedRequest(t, m, "POST", "/ListParticipantEvents",
		fmt.Sprintf(`{"stageArn":%q,"sessionId":%q,"participantId":"guest-1"}`, stage, session))
	if ex.Status != 200 {
		t.Fatalf("ListParticipantEvents: %d %s", ex.Status, ex.Body)
	}
	var out struct {
		Events []struct {
			Name          string         `json:"name"`
			PreviousToken map[string]any `json:"previousToken"`
			NewToken      map[string]any `json:"newToken"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(ex.Body), &out); err != nil {
		t.Fatal(err)
	}
	var exchanges []string
	for _, e := range out.Events {
		if e.Name != "TOKEN_EXCHANGED" {
			if e.PreviousToken != nil || e.NewToken != nil {
				t.Errorf("%s has tokens: %v %v", e.Name, e.PreviousToken, e.NewToken)
			}
			continue
		}
		exchanges = append(exchanges, fmt.Sprintf("%v %v %v -> %v %v %v", e.PreviousToken["userId"], e.PreviousToken["capabilities"],
			e.PreviousToken["attributes"], e.NewToken["userId"], e.NewToken["capabilities"], e.NewToken["attributes"]))
		for _, tok := range []map[string]any{e.PreviousToken, e.NewToken} {
			if exp, _ := tok["expirationTime"].(string); exp == "" {
				t.Errorf("an exchanged token without its expirationTime: %v", tok)
			} else if _, err := time.Parse(time.RFC3339, exp); err != nil {
				t.Errorf("expirationTime %q: %v", exp, err)
			}
		}
	}
	checkJSON(t, "the exchanges", exchanges, []string{
		"carol [SUBSCRIBE] map[role:guest] -> carol-host [PUBLISH SUBSCRIBE] map[role:cohost]",
		"carol-host [PUBLISH SUBSCRIBE] map[role:cohost] -> carol [SUBSCRIBE] map[role:guest]",
	})
	cliCompare(t, m, 0, nil, "list-participant-events", "--stage-arn", stage, "--session-id", session, "--participant-id", "guest-1")
}

// participantEventNames lists the names of a participant's events.
func participantEventNames(t *testing.T, c *ivsrealtime.Client, stage, session, id string) []string {
	t.Helper()
	out, err := c.ListParticipantEvents(testContext(t), &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage),
		SessionId: aws.String(session), ParticipantId: aws.String(id), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatalf("ListParticipantEvents: %v", err)
	}
	var names []string
	for _, e := range out.Events {
		names = append(names, string(e.Name))
	}
	return names
}
