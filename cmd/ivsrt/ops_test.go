package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/events/eventstest"
	"github.com/ivsrt/ivsrt/health"
	"github.com/ivsrt/ivsrt/internal/natstest"
	"github.com/ivsrt/ivsrt/secrets"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// runBot starts a bot with a new token of the stage; stop ends it and
// returns what Run returned.
func startBot(t *testing.T, c *ivsrealtime.Client, arn, user string, cfg bot.Config) (b *bot.Bot, stop func() error) {
	t.Helper()
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(user)})
	cfg.Token, cfg.HTTPClient = aws.ToString(tok.Token), localHTTPClient(t)
	b, err := bot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return b, stop
}

// scrape reads the server's /metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value is the value of the series of the family with the given labels
// (name=value pairs), summed over the series that match; histograms give
// their count. -1 if the family is absent.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
	for _, m := range f.Metric {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestMetricsDuringCall: /metrics, scraped while bots publish and
// subscribe, moves as the call does.
func TestMetricsDuringCall(t *testing.T) {
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	m, c := startServer(t, withWebhook(rcv.URL(), 0))
	url := "http://" + m.Addr() + "/metrics"
	arn := createStage(t, c, "measured")
	if _, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(arn + "x")}); err == nil {
		t.Fatal("GetStage of a stage that does not exist succeeded")
	}

	before := scrape(t, url)
	if v := value(before, "ivsrt_participants_connected"); v != 0 {
		t.Errorf("participants before anyone joined: %v", v)
	}
	_, stopAlice := startBot(t, c, arn, "alice", bot.Config{Video: true, Audio: true})
	_, stopBob := startBot(t, c, arn, "bob", bot.Config{Subscribe: true})

	// Wait for the call to be up and for receiver reports (sent about
	// once a second) to come in.
	var during map[string]*dto.MetricFamily
	deadline := time.Now().Add(30 * time.Second)
	for {
		during = scrape(t, url)
		if value(during, "ivsrt_subscriptions") >= 1 && value(during, "ivsrt_media_forwarded_packets_total") > 100 &&
			value(during, "ivsrt_subscriber_loss_ratio") > 0 && value(during, "ivsrt_event_sink_delivered_total") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 30 s: subscriptions %v, forwarded %v, loss reports %v, events delivered %v",
				value(during, "ivsrt_subscriptions"), value(during, "ivsrt_media_forwarded_packets_total"),
				value(during, "ivsrt_subscriber_loss_ratio"), value(during, "ivsrt_event_sink_delivered_total"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	checks := []struct {
		name   string
		labels []string
		want   func(float64) bool
		says   string
	}{
		{"ivsrt_stages_active", nil, eq(1), "1"},
		{"ivsrt_participants_connected", nil, eq(2), "2"},
		{"ivsrt_publishers", nil, eq(1), "1"},
		{"ivsrt_subscriptions", nil, eq(1), "1"},
		{"ivsrt_media_received_packets_total", nil, gt(100), "> 100"},
		{"ivsrt_media_forwarded_bytes_total", nil, gt(10000), "> 10000"},
		{"ivsrt_media_dropped_packets_total", []string{"reason", "queue_full"}, eq(0), "0"},
		{"ivsrt_api_requests_total", []string{"operation", "CreateStage", "error", ""}, eq(1), "1"},
		{"ivsrt_api_requests_total", []string{"operation", "GetStage", "error", "ResourceNotFoundException"}, eq(1), "1"},
		{"ivsrt_api_requests_total", []string{"operation", "CreateParticipantToken"}, eq(2), "2"},
		{"ivsrt_api_request_duration_seconds", []string{"operation", "CreateStage"}, eq(1), "1 observation"},
		{"ivsrt_store_write_duration_seconds", []string{"outcome", "commit"}, gt(0), "observations"},
		{"ivsrt_event_delivery_lag_seconds", nil, gt(0), "observations"},
		{"ivsrt_event_sink_pending", nil, ge(0), "present"},
		{"ivsrt_subscriber_jitter_seconds", nil, gt(0), "observations"},
		{"go_goroutines", nil, gt(0), "present"},
		{"process_resident_memory_bytes", nil, gt(0), "present"},
	}
	for _, ck := range checks {
		if v := value(during, ck.name, ck.labels...); !ck.want(v) {
			t.Errorf("%s%v = %v during the call, want %s", ck.name, ck.labels, v, ck.says)
		}
	}

	// Forwarding goes on: the counters grow between scrapes.
	time.Sleep(500 * time.Millisecond)
	later := scrape(t, url)
	if a, b := value(during, "ivsrt_media_forwarded_packets_total"), value(later, "ivsrt_media_forwarded_packets_total"); b <= a {
		t.Errorf("forwarded packets went from %v to %v in half a second of a call", a, b)
	}

	if err := stopBob(); err != nil {
		t.Errorf("bob: %v", err)
	}
	if err := stopAlice(); err != nil {
		t.Errorf("alice: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		after := scrape(t, url)
		if value(after, "ivsrt_participants_connected") == 0 && value(after, "ivsrt_stages_active") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after everyone left: participants %v, stages %v", value(after, "ivsrt_participants_connected"), value(after, "ivsrt_stages_active"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func gt(than float64) func(float64) bool { return func(v float64) bool { return v > than } }
func ge(than float64) func(float64) bool { return func(v float64) bool { return v >= than } }

// readiness returns /readyz's status and report.
func readiness(t *testing.T, base string) (int, health.Report) {
	t.Helper()
	resp, err := http.Get(base + health.ReadyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep health.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("readyz body: %v", err)
	}
	return resp.StatusCode, rep
}

// waitReadiness waits up to within for /readyz to answer as ok says.
func waitReadiness(t *testing.T, base string, within time.Duration, when string, ok func(int, health.Report) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, rep := readiness(t, base)
		if ok(code, rep) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz %s: %d %+v", when, code, rep)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// draining is readiness while draining: 503, saying so.
func draining(code int, rep health.Report) bool {
	return code == http.StatusServiceUnavailable && rep.Draining
}

// TestDrain: while the server drains, it is not ready and refuses new
// participants; the call in progress goes on until the drain timeout;
// then everyone has left and the session has ended.
func TestDrain(t *testing.T) {
	m, c := startServer(t, func(c *Config) { c.DrainTimeout = 3 * time.Second })
	base := "http://" + m.Addr()
	if resp, err := http.Get(base + health.LivePath); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	if code, rep := readiness(t, base); code != http.StatusOK || rep.Checks["store"] != "ok" || rep.Checks["media"] != "ok" {
		t.Fatalf("readyz before draining: %d %+v", code, rep)
	}
	arn := createStage(t, c, "drained")
	alice, stopAlice := startBot(t, c, arn, "alice", bot.Config{Video: true})
	waitState(t, c, arn, alice.ParticipantID(), "CONNECTED")

	drained := make(chan struct{})
	start := time.Now()
	go func() { m.Drain(context.Background()); close(drained) }()
	waitReadiness(t, base, 2*time.Second, "while draining", draining)

	// A newcomer is refused; alice carries on.
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("bob")})
	bob, err := bot.New(bot.Config{Token: aws.ToString(tok.Token), HTTPClient: localHTTPClient(t), Subscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(testContext(t), 10*time.Second)
	err = bob.Run(bctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "draining") {
		t.Errorf("a participant joining a draining server: %v, want refused as draining", err)
	}
	select {
	case <-drained:
		t.Fatalf("Drain returned after %v with alice still connected", time.Since(start))
	case <-time.After(time.Second):
	}
	waitState(t, c, arn, alice.ParticipantID(), "CONNECTED")

	<-drained
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("Drain returned after %v, before its 3 s timeout, with alice connected", took)
	}
	// What Close does first: the media plane disconnects whoever is left.
	if err := m.SFU.Close(); err != nil {
		t.Fatal(err)
	}
	stopAlice()
	waitState(t, c, arn, alice.ParticipantID(), "DISCONNECTED")
	sessions, err := c.ListStageSessions(testContext(t), &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
	if err != nil || len(sessions.StageSessions) != 1 || sessions.StageSessions[0].EndTime == nil {
		t.Errorf("sessions after the drain: %+v, %v: want one, ended", sessions, err)
	}
}

// TestDrainEndsEarly: a drain returns as soon as the last participant has
// left.
func TestDrainEndsEarly(t *testing.T) {
	m, c := startServer(t, func(c *Config) { c.DrainTimeout = time.Minute })
	arn := createStage(t, c, "drained-early")
	alice, stopAlice := startBot(t, c, arn, "alice", bot.Config{Video: true})
	waitState(t, c, arn, alice.ParticipantID(), "CONNECTED")
	drained := make(chan struct{})
	go func() { m.Drain(context.Background()); close(drained) }()
	time.Sleep(200 * time.Millisecond)
	stopAlice()
	select {
	case <-drained:
	case <-time.After(20 * time.Second):
		t.Fatal("Drain still waiting 20 s after the last participant left")
	}
}

// waitState waits for the participant's state in the API.
func waitState(t *testing.T, c *ivsrealtime.Client, arn, participant, want string) {
	t.Helper()
	ctx := testContext(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
		if err == nil && len(sessions.StageSessions) > 0 {
			out, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn),
				SessionId: sessions.StageSessions[0].SessionId, ParticipantId: aws.String(participant)})
			if err == nil && string(out.Participant.State) == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("participant %s not %s within 20 s", participant, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadinessFollowsPostgres: a server on PostgreSQL is not ready while
// its database refuses connections, and ready again once it takes them.
func TestReadinessFollowsPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	m, _ := startServer(t, func(c *Config) { c.Store = dsn })
	base := "http://" + m.Addr()
	if code, rep := readiness(t, base); code != http.StatusOK {
		t.Fatalf("readyz: %d %+v", code, rep)
	}
	name := databaseName(t, dsn)
	admin := pgtest.Admin(t)
	admin(`ALTER DATABASE "` + name + `" ALLOW_CONNECTIONS false`)
	admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + name + `' AND pid <> pg_backend_pid()`)
	waitReadiness(t, base, 10*time.Second, "with the database refusing connections", func(code int, rep health.Report) bool {
		return code == http.StatusServiceUnavailable && rep.Checks["store"] != "ok"
	})
	admin(`ALTER DATABASE "` + name + `" ALLOW_CONNECTIONS true`)
	waitReadiness(t, base, 10*time.Second, "once the database is back", func(code int, _ health.Report) bool { return code == http.StatusOK })
}

// databaseName returns the database a DSN names.
func databaseName(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// TestGeneratedCredentialsShownWhenServing: a start that fails after the
// credentials were generated neither keeps nor shows them; the next start
// that serves does both.
func TestGeneratedCredentialsShownWhenServing(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	m := NewMain()
	m.Config.Listen, m.Config.DataDir = busy.Addr().String(), dir
	m.Logger = slog.New(slog.DiscardHandler)
	if err := m.Run(testContext(t)); err == nil {
		t.Fatal("Run on a port in use succeeded")
	}
	m.Close()
	if _, err := os.Stat(filepath.Join(dir, secrets.CredentialsFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("credentials kept by a start that failed: %v", err)
	}
	m2, _ := startServer(t, withDataDir(dir), withoutKeys())
	if _, err := os.Stat(filepath.Join(dir, secrets.CredentialsFile)); err != nil {
		t.Errorf("credentials of a start that serves: %v", err)
	}
	_ = m2
}

// TestReadOnlyDataFolder: a data folder the server cannot write is named,
// with the reason, instead of SQLite's "unable to open database file".
func TestReadOnlyDataFolder(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// Permissions do not stop root: make the folder a read-only mount.
		if out, err := exec.Command("mount", "--bind", "-o", "ro", dir, dir).CombinedOutput(); err != nil {
			t.Skipf("cannot make a read-only folder as root: mount: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
	} else if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	m := NewMain()
	m.Config.Listen, m.Config.DataDir = "127.0.0.1:0", dir
	m.Logger = slog.New(slog.DiscardHandler)
	err := m.Run(testContext(t))
	m.Close()
	if err == nil || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), "read-only file system") && !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Run on a read-only data folder: %v; want the folder named, and why", err)
	}
}

// TestListenOnEveryInterface: a server listening on 0.0.0.0 without
// --public-url hands out URLs clients can connect to, not 0.0.0.0 or [::].
func TestListenOnEveryInterface(t *testing.T) {
	m, c := startServer(t, func(c *Config) { c.Listen = "0.0.0.0:0" })
	arn := createStage(t, c, "everywhere")
	tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn)})
	parts := strings.Split(aws.ToString(tok.Token), ".")
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(claims), "whip_url") {
		t.Fatalf("token claims %s: %v", claims, err)
	}
	for _, u := range []string{m.Config.PublicURL, string(claims)} {
		if strings.Contains(u, "0.0.0.0") || strings.Contains(u, "[::]") {
			t.Errorf("handed out %q", u)
		}
	}
	// The URL works: its /healthz answers.
	resp, err := http.Get(m.Config.PublicURL + health.LivePath)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s%s: %v %v", m.Config.PublicURL, health.LivePath, resp, err)
	}
}

func TestVersionString(t *testing.T) {
	v := versionString()
	if !strings.HasSuffix(v, runtime.Version()) || strings.HasPrefix(v, " ") {
		t.Errorf("version %q: want the module's version or dev, then the Go version", v)
	}
}

// startBinary builds ivsrt and runs `ivsrt serve` with args on a new data
// folder; tests that do are skipped with -short.
func startBinary(t *testing.T, args ...string) (bin, data string, srv *durableServer) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin = durableBuild(t)
	data = filepath.Join(t.TempDir(), "data")
	return bin, data, durableStart(t, bin, data, durableFreeAddr(t), args...)
}

// TestSIGTERMDrains: SIGTERM during a call makes the process unready and
// lets the call go on until the drain timeout; then it exits cleanly,
// having recorded the participant's departure and the session's end, so
// nothing stays CONNECTED.
func TestSIGTERMDrains(t *testing.T) {
	_, data, srv := startBinary(t, "--drain-timeout", "3s")
	addr := srv.addr
	c := srv.client()
	ctx := testContext(t)
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("sigterm")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Stage.Arn)
	tok, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := bot.New(bot.Config{Token: aws.ToString(tok.ParticipantToken.Token), HTTPClient: localHTTPClient(t), Video: true})
	if err != nil {
		t.Fatal(err)
	}
	bctx, stopAlice := context.WithCancel(ctx)
	defer stopAlice()
	go alice.Run(bctx)
	waitState(t, c, arn, alice.ParticipantID(), "CONNECTED")

	signalled := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	waitReadiness(t, base, 2*time.Second, "after SIGTERM", draining)
	waitState(t, c, arn, alice.ParticipantID(), "CONNECTED") // the call goes on
	select {
	case <-srv.exited:
		t.Fatalf("exited %v after SIGTERM, before its 3 s drain timeout, with a call going on", time.Since(signalled))
	case <-time.After(2 * time.Second):
	}
	select {
	case <-srv.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20 s after SIGTERM with a 3 s drain timeout")
	}
	if srv.waitErr != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", srv.waitErr)
	}
	var names []string
	for _, ev := range kill9Committed(t, data) {
		if string(ev.StageARN) == arn {
			names = append(names, ev.EventName())
		}
	}
	if len(names) < 2 || names[len(names)-2] != "Participant Left" || names[len(names)-1] != "Session Ended" {
		t.Errorf("the stage's events after the drain: %v; want it to end with Participant Left, Session Ended", names)
	}
}

// TestDrainCommand: `ivsrt drain` makes a running server drain and stop,
// as SIGTERM does; unsigned, or signed with other keys, it is refused.
func TestDrainCommand(t *testing.T) {
	bin, _, srv := startBinary(t, "--drain-timeout", "2s")
	addr := srv.addr
	drain := func(key, secret string) (string, error) {
		cmd := exec.Command(bin, "drain", "--endpoint-url", "http://"+addr)
		cmd.Env = []string{"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret, "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := drain(durableKeyID, "wrong"); err == nil || !strings.Contains(out, "SignatureDoesNotMatch") && !strings.Contains(out, "InvalidSignature") {
		t.Errorf("drain signed with a wrong secret: %v\n%s", err, out)
	}
	if resp, err := http.Post("http://"+addr+DrainPath, "application/json", nil); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned drain: %v %v, want 403", resp, err)
	}
	select {
	case <-srv.exited:
		t.Fatal("the server stopped after refused drain requests")
	case <-time.After(200 * time.Millisecond):
	}
	out, err := drain(durableKeyID, durableSecret)
	if err != nil || !strings.Contains(out, `"draining":true`) {
		t.Fatalf("ivsrt drain: %v\n%s", err, out)
	}
	// Nobody is connected: it stops at once.
	select {
	case <-srv.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after ivsrt drain")
	}
	if srv.waitErr != nil {
		t.Errorf("exit after drain: %v, want status 0", srv.waitErr)
	}
}

// TestBackupCommand: ivsrt backup copies a running server's database; a
// server started on the copy has the stages.
func TestBackupCommand(t *testing.T) {
	m, c := startServer(t)
	arn := createStage(t, c, "kept")
	copyDir := t.TempDir()
	var out strings.Builder
	if err := backup(testContext(t), []string{"--data", m.Config.DataDir, filepath.Join(copyDir, "ivsrt.db")}, &out); err != nil {
		t.Fatalf("backup: %v\n%s", err, out.String())
	}
	if err := backup(testContext(t), []string{"--data", m.Config.DataDir, filepath.Join(copyDir, "ivsrt.db")}, &out); err == nil {
		t.Error("a backup over an existing file succeeded")
	}
	_, c2 := startServer(t, withDataDir(copyDir))
	if _, err := c2.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(arn)}); err != nil {
		t.Errorf("GetStage on a server started from the backup: %v", err)
	}
}

// TestClusterDrainPlacesElsewhere: once a node drains, a stage first
// joined through it is placed on another node.
func TestClusterDrainPlacesElsewhere(t *testing.T) {
	dsn := pgtest.Start(t)
	natsURL := natstest.Start(t)
	node := func(id string) (*Main, *ivsrealtime.Client) {
		return startServer(t, func(c *Config) {
			c.Store, c.ClusterNATS, c.NodeID = dsn, natsURL, id
		})
	}
	a, ca := node("a")
	b, _ := node("b")
	if err := a.Node.SetDraining(testContext(t)); err != nil {
		t.Fatal(err)
	}
	nodes, err := a.Node.Nodes(testContext(t))
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	for _, n := range nodes {
		if n.Draining != (n.ID == "a") {
			t.Errorf("node %s draining %v", n.ID, n.Draining)
		}
	}
	for i := range 3 {
		arn := createStage(t, ca, fmt.Sprintf("placed-%d", i))
		alice, stop := startBot(t, ca, arn, "alice", bot.Config{Video: true})
		waitState(t, ca, arn, alice.ParticipantID(), "CONNECTED")
		h, err := a.DB.(ivsrt.ClusterStore).GetStageHost(testContext(t), ivsrt.StageARN(arn))
		if err != nil || h.NodeID != "b" {
			t.Errorf("stage %d placed on %+v (%v), want b: a drains", i, h, err)
		}
		stop()
	}
	_ = b
}
