package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/store/postgres"
)

// TestClusterRestartSameID kills a node hosting a stage and starts it again
// at once with the same --node-id and address, as a supervisor does after a
// crash. The node ends the sessions of its last run before it serves: the
// stage's old session ends with everyone LEFT, and the participants, joining
// again, are in a new session, never the old one. A second process started
// with the id of a live node is refused.
func TestClusterRestartSameID(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	tc := startTestCluster(t, nil, "node-a", "node-b", "node-c")
	nodes, bin, dir, args, dsn := tc.nodes, tc.bin, tc.dir, tc.args, tc.dsn
	a := nodes[0] // takes the API calls and mints the tokens
	ctx := testContext(t)
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Stages with a publisher each, until one is placed on a node other
	// than a (placement goes by load: the second stage at the latest).
	var (
		stage, pubToken string
		pub             *bot.Bot
		stopPub         func()
		victim          *clusterNode
	)
	for i := 0; i < 6 && victim == nil; i++ {
		out, err := a.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("s%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		arn := aws.ToString(out.Stage.Arn)
		tok := tokenFor(t, a.api, arn, fmt.Sprintf("pub%d", i))
		b, stop, _ := runBot(t, bot.Config{Token: tok, Video: true, Index: i})
		eventually(t, 20*time.Second, "the publisher of "+arn+" publishing", func() error {
			return wantPublishing(t, a.api, arn, activeSession(t, a.api, arn), 1)
		})
		h, err := db.GetStageHost(ctx, ivsrt.StageARN(arn))
		if err != nil {
			t.Fatalf("host of %s: %v", arn, err)
		}
		for _, n := range nodes[1:] {
			if n.name == h.NodeID {
				stage, pubToken, pub, stopPub, victim = arn, tok, b, stop, n
			}
		}
	}
	if victim == nil {
		t.Fatal("every stage placed on node-a")
	}
	subToken := tokenFor(t, a.api, stage, "viewer")
	viewer, stopViewer, _ := runBot(t, bot.Config{Token: subToken, Subscribe: true})
	eventually(t, 20*time.Second, "the viewer receiving video", func() error { return receivingVideo(viewer) })
	oldSession := activeSession(t, a.api, stage)
	pubID, viewerID := pub.ParticipantID(), viewer.ParticipantID()

	// Kill the host, and start it again at once with the same id and
	// address. It answers HTTP only once it has joined the cluster.
	victim.srv.kill()
	killed := time.Now()
	victim.srv = durableStart(t, bin, filepath.Join(dir, victim.name), victim.srv.addr, args(victim.name)...)
	victim.api = victim.srv.client()
	t.Logf("killed %s, host of %s, and started it again in %v", victim.name, stage, time.Since(killed).Round(time.Millisecond))
	stopPub()
	stopViewer()

	// The old session has ended, everyone in it LEFT.
	eventually(t, 5*time.Second, "the old session ended", func() error {
		s, err := a.api.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(stage), SessionId: aws.String(oldSession)})
		if err != nil {
			return err
		}
		if s.StageSession.EndTime == nil {
			return errors.New("no endTime")
		}
		return nil
	})
	checkLeft := func() {
		t.Helper()
		out, err := a.api.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(oldSession)})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range out.Participants {
			ids = append(ids, aws.ToString(p.ParticipantId))
			if p.State != types.ParticipantStateDisconnected {
				t.Errorf("participant %s of the old session: state %s, want DISCONNECTED", aws.ToString(p.ParticipantId), p.State)
			}
			if names := sessionEventNames(t, a.api, stage, oldSession, aws.ToString(p.ParticipantId)); len(names) == 0 || names[len(names)-1] != string(types.EventNameLeft) {
				t.Errorf("participant %s of the old session: events %v, want LEFT last", aws.ToString(p.ParticipantId), names)
			}
		}
		slices.Sort(ids)
		if want := sorted(pubID, viewerID); !slices.Equal(ids, want) {
			t.Errorf("participants of the old session: got %v, want %v", ids, want)
		}
	}
	checkLeft()

	// The participants join again with their tokens: a new session.
	pub, _, _ = runBot(t, bot.Config{Token: pubToken, Video: true})
	viewer, _, _ = runBot(t, bot.Config{Token: subToken, Subscribe: true})
	var newSession string
	eventually(t, 20*time.Second, "the participants in a new session", func() error {
		out, err := a.api.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
		if err != nil {
			return err
		}
		if len(out.StageSessions) != 2 {
			return fmt.Errorf("%d sessions", len(out.StageSessions))
		}
		if newSession = activeSession(t, a.api, stage); newSession == "" || newSession == oldSession {
			return fmt.Errorf("active session %q (old %s)", newSession, oldSession)
		}
		if err := wantPublishing(t, a.api, stage, newSession, 1); err != nil {
			return err
		}
		return receivingVideo(viewer)
	})
	out, err := a.api.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(newSession)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range out.Participants {
		ids = append(ids, aws.ToString(p.ParticipantId))
		if p.State != types.ParticipantStateConnected {
			t.Errorf("participant %s of the new session: state %s, want CONNECTED", aws.ToString(p.ParticipantId), p.State)
		}
	}
	slices.Sort(ids)
	if want := sorted(pubID, viewerID); !slices.Equal(ids, want) {
		t.Errorf("participants of the new session: got %v, want %v", ids, want)
	}
	checkLeft() // nobody was filed under the old session meanwhile

	// Every node tells where the stage and its participants are.
	h, err := db.GetStageHost(ctx, ivsrt.StageARN(stage))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the new session is on %s", h.NodeID)
	for _, n := range nodes {
		var got cluster.StageView
		if err := clusterGet(t, n.srv.addr, cluster.StagesPath+"?arn="+url.QueryEscape(stage), &got); err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		var where []string
		for _, p := range got.Participants {
			where = append(where, string(p.ID)+"@"+p.Node)
		}
		slices.Sort(where)
		want := sorted(pubID+"@"+h.NodeID, viewerID+"@"+h.NodeID)
		if string(got.Stage) != stage || got.Host != h.NodeID || got.LeaseUntil.IsZero() || !slices.Equal(where, want) {
			t.Errorf("%s %s: got %+v (participants %v); want host %s, participants %v", n.name, cluster.StagesPath, got, where, h.NodeID, want)
		}
	}

	// A second process with the id of a live node is refused, and the
	// node keeps its stage, whose media goes on.
	frames := videoFrames(viewer)
	log := startRefused(t, bin, filepath.Join(dir, "impostor"), durableFreeAddr(t), args(h.NodeID)...)
	if !strings.Contains(log, "node id "+h.NodeID+" is in use") {
		t.Errorf("log of the refused process: want %q, got:\n%s", "node id "+h.NodeID+" is in use", log)
	}
	if got, err := db.GetStageHost(ctx, ivsrt.StageARN(stage)); err != nil || got.NodeID != h.NodeID {
		t.Errorf("host of the stage after the refused start: got %+v, %v; want %s", got, err, h.NodeID)
	}
	if s := activeSession(t, a.api, stage); s != newSession {
		t.Errorf("active session after the refused start: got %s, want %s", s, newSession)
	}
	eventually(t, 10*time.Second, "the viewer receiving video after the refused start", func() error {
		if got := videoFrames(viewer); got < frames+10 {
			return fmt.Errorf("%d frames, %d before", got, frames)
		}
		return nil
	})
}

// startRefused runs `ivsrt serve` with args, which must fail to start: it
// returns the process's log once it has exited with an error.
func startRefused(t *testing.T, bin, data, addr string, extraArgs ...string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", data,
		"--rtc-udp-port", "0", "--rtc-tcp-port", "-1", "--turn-udp-port", "-1", "--rtmp-port", "0",
		"--access-key-id", durableKeyID, "--secret-access-key", durableSecret, "--log-level", "warn")
	cmd.Args = append(cmd.Args, extraArgs...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IVSRT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("process with the id of a live node: exited with status 0, want a failure")
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Errorf("process with the id of a live node still running after 20s:\n%s", log.String())
	}
	return log.String()
}

func tokenFor(t *testing.T, c *ivsrealtime.Client, arn, user string) string {
	t.Helper()
	return aws.ToString(createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(user)}).Token)
}

// wantPublishing checks that n participants publish in the session.
func wantPublishing(t *testing.T, c *ivsrealtime.Client, arn, session string, n int) error {
	if session == "" {
		return errors.New("no active session")
	}
	out, err := c.ListParticipants(testContext(t), &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arn),
		SessionId: aws.String(session), FilterByPublished: true})
	if err != nil {
		return err
	}
	if len(out.Participants) != n {
		return fmt.Errorf("session %s: %d publishing, want %d", session, len(out.Participants), n)
	}
	return nil
}

func receivingVideo(b *bot.Bot) error {
	if videoFrames(b) > 10 {
		return nil
	}
	return fmt.Errorf("received %+v", b.Stats().Received)
}

// videoFrames returns how many video frames the bot has received.
func videoFrames(b *bot.Bot) int {
	n := 0
	for _, r := range b.Stats().Received {
		n += int(r.VideoFrames)
	}
	return n
}

func sessionEventNames(t *testing.T, c *ivsrealtime.Client, arn, session, id string) []string {
	t.Helper()
	out, err := c.ListParticipantEvents(testContext(t), &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(arn),
		SessionId: aws.String(session), ParticipantId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	return eventNames(out.Events)
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}
