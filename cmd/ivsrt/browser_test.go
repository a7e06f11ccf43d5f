package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// TestBrowserCall runs a call in real browsers: two participants join one
// stage from the join page with fake cameras and each sees the other's
// video play; the console, signed in with the server's keys, shows the
// stage with its live count, the session, both participants and their
// events; the console disconnects one with a reason, which its page shows,
// while the other's page sees it leave.
func TestBrowserCall(t *testing.T) {
	start := time.Now()
	m, c := startServer(t)
	b := webtest.NewBrowser(t)
	base := "http://" + m.Addr()

	arn := createStage(t, c, "browser-call")
	stageID := arn[strings.LastIndex(arn, "/")+1:]
	alice := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("alice")})
	bob := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("bob")})
	aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)

	aliceTab := b.NewTab("alice")
	bobTab := b.NewTab("bob")
	aliceTab.Navigate(base + "/join?token=" + url.QueryEscape(aws.ToString(alice.Token)))
	bobTab.Navigate(base + "/join?token=" + url.QueryEscape(aws.ToString(bob.Token)))

	for _, tt := range []struct {
		tab         *webtest.Tab
		other, name string
	}{{aliceTab, bobID, "bob"}, {bobTab, aliceID, "alice"}} {
		tt.tab.WaitFor("connected", `document.getElementById("state").dataset.state === "connected"`, 20*time.Second)
		browserCheckVideo(t, tt.tab, tt.other)
		if got := webtest.Eval[string](tt.tab, browserTile(tt.other)+`.querySelector(".name").textContent`); got != tt.name {
			t.Errorf("%s: name on the tile of %s got %q, want %q", tt.tab.Name, tt.other, got, tt.name)
		}
		if got := webtest.Eval[int](tt.tab, `document.querySelectorAll(".tile").length`); got != 2 {
			t.Errorf("%s: tiles got %d, want 2", tt.tab.Name, got)
		}
	}
	t.Logf("both see each other's video after %v", time.Since(start).Round(time.Millisecond))

	// Mute buttons act on the published tracks.
	aliceTab.Do("mute", chromedp.Click(chromedp.ID("mic")))
	aliceTab.WaitFor("muted microphone",
		`document.getElementById("mic").getAttribute("aria-pressed") === "true" && document.querySelector(".tile[data-local] .status").textContent.includes("muted")`,
		5*time.Second)
	aliceTab.Do("unmute", chromedp.Click(chromedp.ID("mic")))
	aliceTab.WaitFor("unmuted microphone", `document.getElementById("mic").getAttribute("aria-pressed") === "false"`, 5*time.Second)
	aliceTab.Screenshot("join-page")

	// Who speaks is outlined: the fake microphone beeps. With bob muted,
	// alice is the speaker on both pages; then the other way round.
	speaking := func(id string) string {
		return `!!` + browserTile(id) + `?.classList.contains("speaking")`
	}
	bobTab.Do("bob mutes", chromedp.Click(chromedp.ID("mic")))
	bobTab.WaitFor("alice outlined as the speaker", speaking(aliceID)+` && !`+speaking(bobID), 15*time.Second)
	aliceTab.WaitFor("alice outlined on her own page", speaking(aliceID), 15*time.Second)
	aliceTab.Do("alice mutes", chromedp.Click(chromedp.ID("mic")))
	bobTab.Do("bob unmutes", chromedp.Click(chromedp.ID("mic")))
	aliceTab.WaitFor("bob outlined instead", speaking(bobID)+` && !`+speaking(aliceID), 15*time.Second)
	aliceTab.Do("alice unmutes", chromedp.Click(chromedp.ID("mic")))

	// The console, signed in with the server's keys, follows the stage live.
	console := b.NewTab("console")
	console.Navigate(base + "/console")
	console.WaitFor("the sign-in form", `!document.getElementById("sign-in").hidden`, 10*time.Second)
	console.Do("sign in with a wrong secret",
		chromedp.SetValue(chromedp.ID("access-key-id"), testAccessKeyID),
		chromedp.SetValue(chromedp.ID("secret-access-key"), "not-the-secret"),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)),
	)
	console.WaitFor("the server's refusal", `!document.getElementById("sign-in").hidden &&
		document.getElementById("sign-in-error").textContent.includes("signature")`, 10*time.Second)
	console.Do("sign in",
		chromedp.SetValue(chromedp.ID("access-key-id"), testAccessKeyID),
		chromedp.SetValue(chromedp.ID("secret-access-key"), testSecretAccessKey),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)),
	)
	stageRow := fmt.Sprintf(`tr[data-stage-id=%q]`, stageID)
	console.WaitFor("the stage with 2 live participants",
		`document.querySelector('`+stageRow+` .live-count')?.textContent === "2"`, 15*time.Second)
	console.Do("open the stage", chromedp.Click(chromedp.CSS(stageRow)))

	got, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	sessionID := aws.ToString(got.Stage.ActiveSessionId)
	if sessionID == "" {
		t.Fatalf("stage has no active session with two participants in it")
	}
	console.WaitFor("the session", fmt.Sprintf(`!!document.querySelector('#sessions tr[data-session-id=%q].selected')`, sessionID), 10*time.Second)
	for _, id := range []string{aliceID, bobID} {
		console.WaitFor("participant "+id+" connected",
			fmt.Sprintf(`document.querySelector('#participants tr[data-participant-id=%q]')?.dataset.state === "CONNECTED"`, id), 10*time.Second)
	}
	console.Do("open alice's events", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#participants tr[data-participant-id=%q]`, aliceID))))
	for _, name := range []string{"JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED"} {
		console.WaitFor("alice's "+name+" event", fmt.Sprintf(`!!document.querySelector('#events li[data-event=%q]')`, name), 10*time.Second)
	}

	// Mint a token for someone else: the join link carries it.
	console.Do("mint a token",
		chromedp.SetValue(chromedp.ID("mint-user"), "carol"),
		chromedp.SetValue(chromedp.ID("mint-attributes"), "role=guest"),
		chromedp.Click(chromedp.CSS(`#mint button[type=submit]`)),
	)
	console.WaitFor("the minted token", `!document.getElementById("minted").hidden`, 10*time.Second)
	link := webtest.Eval[string](console, `document.getElementById("join-link").value`)
	token, ok := strings.CutPrefix(link, base+"/join?token=")
	if !ok {
		t.Fatalf("join link got %q, want %s/join?token=...", link, base)
	}
	if token, err := url.QueryUnescape(token); err != nil {
		t.Errorf("join link %q: %v", link, err)
	} else if claims := browserClaims(t, token); claims["user_id"] != "carol" || claims["resource"] != arn ||
		fmt.Sprint(claims["attributes"]) != "map[role:guest]" {
		t.Errorf("minted token's claims got %v, want user_id carol, resource %s, attributes role=guest", claims, arn)
	}
	console.FullScreenshot("console")

	// Disconnect bob from the console, with a reason.
	const reason = "the meeting is over"
	console.Do("disconnect bob",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#participants tr[data-participant-id=%q] [data-action=disconnect]`, bobID))),
		chromedp.WaitVisible(chromedp.ID("confirm-reason")),
		chromedp.SetValue(chromedp.ID("confirm-reason"), reason),
		chromedp.Click(chromedp.ID("confirm-ok")),
	)
	bobTab.WaitFor("the reason on bob's page",
		`!document.getElementById("notice").hidden && document.getElementById("notice").textContent.includes(`+strconv.Quote(reason)+`)`,
		10*time.Second)
	if got := webtest.Eval[string](bobTab, `document.getElementById("state").dataset.state`); got != "disconnected" {
		t.Errorf("bob's connection state got %q, want disconnected", got)
	}
	bobTab.Screenshot("join-page-disconnected")
	// The token was revoked with the disconnection: opening the page again
	// is refused, and the page says so.
	bobTab.Do("reload", chromedp.Reload())
	bobTab.WaitFor("the refusal on bob's page", `document.getElementById("notice").textContent.includes("TOKEN_REVOKED")`, 10*time.Second)
	aliceTab.WaitFor("bob gone from alice's page", `!document.querySelector(`+strconv.Quote(browserTileSelector(bobID))+`)`, 10*time.Second)
	console.WaitFor("bob disconnected in the console, without a reload",
		fmt.Sprintf(`document.querySelector('#participants tr[data-participant-id=%q]')?.dataset.state === "DISCONNECTED"`, bobID), 10*time.Second)
	console.WaitFor("the live count down to 1", `document.querySelector('`+stageRow+` .live-count')?.textContent === "1"`, 10*time.Second)
	if webtest.Eval[bool](console, `performance.getEntriesByType("navigation").length !== 1`) {
		t.Errorf("the console reloaded")
	}

	p, err := c.GetParticipant(testContext(t), &ivsrealtime.GetParticipantInput{
		StageArn: aws.String(arn), SessionId: aws.String(sessionID), ParticipantId: aws.String(bobID)})
	if err != nil {
		t.Fatalf("GetParticipant: %v", err)
	}
	if p.Participant.State != types.ParticipantStateDisconnected {
		t.Errorf("bob's state got %v, want %v", p.Participant.State, types.ParticipantStateDisconnected)
	}
	// What bob's browser and client said of themselves.
	if got := p.Participant; aws.ToString(got.BrowserName) != "Chrome" || aws.ToString(got.BrowserVersion) == "" ||
		aws.ToString(got.OsName) != "Linux" || aws.ToString(got.SdkVersion) != ivsrt.ClientVersion || got.IspName != nil {
		t.Errorf("bob's client: browser %q %q, OS %q %q, SDK %q, ISP %v", aws.ToString(got.BrowserName), aws.ToString(got.BrowserVersion),
			aws.ToString(got.OsName), aws.ToString(got.OsVersion), aws.ToString(got.SdkVersion), got.IspName)
	}

	for _, tab := range []*webtest.Tab{aliceTab, bobTab, console} {
		if v := tab.CSPViolations(); len(v) > 0 {
			t.Errorf("%s: Content Security Policy violations: %v", tab.Name, v)
		}
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// browserClaims decodes the claims of a participant token.
func browserClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("token claims: %v", err)
	}
	return claims
}

// browserTileSelector selects the join page's tile of a participant.
func browserTileSelector(participantID string) string {
	return fmt.Sprintf(`.tile[data-participant-id=%q]`, participantID)
}

// browserTile is a JavaScript expression for the tile of a participant.
func browserTile(participantID string) string {
	return "document.querySelector(" + strconv.Quote(browserTileSelector(participantID)) + ")"
}

// browserCheckVideo waits for the video of a participant to play on the
// tab's join page, then checks that it has a size and moves on: its time
// and its decoded frames advance.
func browserCheckVideo(t *testing.T, tab *webtest.Tab, participantID string) {
	t.Helper()
	video := browserTile(participantID) + `?.querySelector("video")`
	tab.WaitFor("the video of "+participantID, `(() => { const v = `+video+`;
		return !!v && v.videoWidth > 0 && v.readyState >= 2 && !v.paused && v.currentTime > 0; })()`, 30*time.Second)
	type sample struct {
		Width   int     `json:"width"`
		Height  int     `json:"height"`
		T0      float64 `json:"t0"`
		T1      float64 `json:"t1"`
		Frames0 int     `json:"frames0"`
		Frames1 int     `json:"frames1"`
	}
	// Over 1.5 s at least, and on until the picture moves (up to 10 s): a
	// busy machine may hold a stream back for a moment.
	s := webtest.Eval[sample](tab, `(async () => {
		const v = `+video+`;
		const t0 = v.currentTime, f0 = v.getVideoPlaybackQuality().totalVideoFrames;
		await new Promise((r) => setTimeout(r, 1500));
		for (let i = 0; i < 34 && (v.currentTime <= t0 || v.getVideoPlaybackQuality().totalVideoFrames <= f0); i++) {
			await new Promise((r) => setTimeout(r, 250));
		}
		return { width: v.videoWidth, height: v.videoHeight, t0, t1: v.currentTime,
			frames0: f0, frames1: v.getVideoPlaybackQuality().totalVideoFrames };
	})()`)
	t.Logf("%s: video of %s: %dx%d, time %.2f→%.2f s, frames %d→%d", tab.Name, participantID, s.Width, s.Height, s.T0, s.T1, s.Frames0, s.Frames1)
	if s.Width <= 0 || s.Height <= 0 {
		t.Errorf("%s: video of %s is %dx%d, want a size", tab.Name, participantID, s.Width, s.Height)
	}
	if s.T1 <= s.T0 {
		t.Errorf("%s: video of %s: currentTime got %v then %v, want it to advance", tab.Name, participantID, s.T0, s.T1)
	}
	if s.Frames1 <= s.Frames0 {
		t.Errorf("%s: video of %s: decoded frames got %d then %d, want more", tab.Name, participantID, s.Frames0, s.Frames1)
	}
}

// TestBrowserConsoleDev checks the console of a server in --dev mode: it
// signs in by itself, creates a stage and deletes it.
func TestBrowserConsoleDev(t *testing.T) {
	m, c := startServer(t, withDev())
	b := webtest.NewBrowser(t)
	console := b.NewTab("console")
	console.Navigate("http://" + m.Addr() + "/console")
	console.WaitFor("the console, without signing in", `!document.getElementById("app").hidden &&
		!document.getElementById("dev-badge").hidden && document.getElementById("live").dataset.state === "ok"`, 10*time.Second)

	console.Do("create a stage",
		chromedp.SetValue(chromedp.ID("new-stage-name"), "from-the-console"),
		chromedp.Click(chromedp.CSS(`#create-stage button[type=submit]`)),
	)
	console.WaitFor("the new stage, selected", `document.querySelector("#stages tr.selected td")?.textContent === "from-the-console" &&
		!document.getElementById("stage-card").hidden`, 10*time.Second)
	list, err := c.ListStages(testContext(t), &ivsrealtime.ListStagesInput{})
	if err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	if len(list.Stages) != 1 || aws.ToString(list.Stages[0].Name) != "from-the-console" {
		t.Fatalf("stages got %v, want the one the console created", list.Stages)
	}
	id := aws.ToString(list.Stages[0].Arn)
	id = id[strings.LastIndex(id, "/")+1:]

	console.Do("delete it",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-stage-id=%q] [data-action=delete-stage]`, id))),
		chromedp.WaitVisible(chromedp.ID("confirm-ok")),
		chromedp.Click(chromedp.ID("confirm-ok")),
	)
	console.WaitFor("no stages", `!document.getElementById("no-stages").hidden && !document.querySelector("#stages tbody tr")`, 10*time.Second)
	if list, err := c.ListStages(testContext(t), &ivsrealtime.ListStagesInput{}); err != nil {
		t.Fatalf("ListStages: %v", err)
	} else if len(list.Stages) != 0 {
		t.Errorf("stages got %v, want none", list.Stages)
	}
	if v := console.CSPViolations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %v", v)
	}
}

// TestBrowserReconnect cuts the connections of two participants in a call
// (as a network that drops would) and checks that their pages reconnect
// by themselves, that their videos play on, and that the server saw no
// departure: media kept them in the stage meanwhile.
func TestBrowserReconnect(t *testing.T) {
	start := time.Now()
	proxy := browserStartProxy(t)
	m, c := startServer(t, func(cfg *Config) { cfg.PublicURL = "http://" + proxy.addr() })
	proxy.target.Store(m.Addr())
	b := webtest.NewBrowser(t)
	base := "http://" + proxy.addr()

	arn := createStage(t, c, "browser-reconnect")
	alice := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("alice")})
	bob := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("bob")})
	aliceID, bobID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId)

	aliceTab, bobTab := b.NewTab("alice"), b.NewTab("bob")
	aliceTab.Navigate(base + "/join?token=" + url.QueryEscape(aws.ToString(alice.Token)))
	bobTab.Navigate(base + "/join?token=" + url.QueryEscape(aws.ToString(bob.Token)))
	tabs := []struct {
		tab   *webtest.Tab
		other string
	}{{aliceTab, bobID}, {bobTab, aliceID}}
	for _, tt := range tabs {
		tt.tab.WaitFor("connected", `document.getElementById("state").dataset.state === "connected"`, 20*time.Second)
		browserCheckVideo(t, tt.tab, tt.other)
		webtest.Eval[chromedp.Void](tt.tab, `(() => {
			const el = document.getElementById("state");
			window.__states = [];
			new MutationObserver(() => window.__states.push(el.dataset.state)).observe(el, { attributes: true });
		})()`)
	}

	dropped := proxy.cut()
	t.Logf("cut %d connections", dropped)
	for _, tt := range tabs {
		tt.tab.WaitFor("reconnected", `window.__states.includes("reconnecting") && document.getElementById("state").dataset.state === "connected"`, 20*time.Second)
		browserCheckVideo(t, tt.tab, tt.other)
	}

	got, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	for _, id := range []string{aliceID, bobID} {
		out, err := c.ListParticipantEvents(testContext(t), &ivsrealtime.ListParticipantEventsInput{
			StageArn: aws.String(arn), SessionId: got.Stage.ActiveSessionId, ParticipantId: aws.String(id)})
		if err != nil {
			t.Fatalf("ListParticipantEvents: %v", err)
		}
		var names []string
		for _, ev := range out.Events {
			names = append(names, string(ev.Name))
		}
		if strings.Count(strings.Join(names, " "), "JOINED") != 1 || strings.Contains(strings.Join(names, " "), "LEFT") {
			t.Errorf("events of %s got %v, want one JOINED and no LEFT", id, names)
		}
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// browserProxy forwards TCP connections to the server and can cut them
// all at once, as a network that drops would.
type browserProxy struct {
	ln     net.Listener
	target atomic.Value // the server's address

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func browserStartProxy(t *testing.T) *browserProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &browserProxy{ln: ln, conns: make(map[net.Conn]struct{})}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *browserProxy) addr() string { return p.ln.Addr().String() }

func (p *browserProxy) serve() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(conn)
	}
}

func (p *browserProxy) forward(conn net.Conn) {
	target, _ := p.target.Load().(string)
	up, err := net.Dial("tcp", target)
	if err != nil {
		conn.Close()
		return
	}
	p.mu.Lock()
	p.conns[conn], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		io.Copy(up, conn)
		up.Close()
		close(done)
	}()
	io.Copy(conn, up)
	conn.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, conn)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes every connection open through the proxy and returns how many
// there were.
func (p *browserProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for conn := range p.conns {
		conn.Close()
	}
	return n
}
