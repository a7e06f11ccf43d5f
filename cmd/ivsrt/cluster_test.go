package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/events/eventstest"
	"github.com/ivsrt/ivsrt/internal/natstest"
	"github.com/ivsrt/ivsrt/store/postgres"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
)

// clusterNode is one ivsrt process of a test cluster.
type clusterNode struct {
	name string
	srv  *durableServer
	api  *ivsrealtime.Client
}

// runBot runs a bot until the returned stop is called or the server ends
// it; done receives how it ended.
func runBot(t *testing.T, cfg bot.Config) (b *bot.Bot, stop func(), done <-chan error) {
	t.Helper()
	cfg.HTTPClient = localHTTPClient(t)
	b, err := bot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Errorf("bot %s did not stop", b.ParticipantID())
			}
		})
	}
	t.Cleanup(stop)
	return b, stop, ch
}

// eventually retries check until it returns nil, failing after within.
func eventually(t *testing.T, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCluster runs three nodes on loopback sharing PostgreSQL and NATS:
// stages spread across them; participants joining through one node reach
// the stage's host; API calls through any node act on stages on every
// node; the event stream is delivered once; and when a node is killed the
// survivors end its sessions and its participants rejoin on a live node.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	// The nodes see each other within a heartbeat or two.
	tc := startTestCluster(t, rcv, "node-a", "node-b", "node-c")
	nodes := tc.nodes
	a := nodes[0]
	ctx := testContext(t)
	db, err := postgres.Open(ctx, tc.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Stages made through one node, each with a publisher joining through
	// another (the node that minted its token): they spread by load.
	const stageCount = 6
	var arns []string
	pubs := map[string]*bot.Bot{}
	tokens := map[string]string{}
	for i := range stageCount {
		entry := nodes[i%3] // API calls through every node
		out, err := entry.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("s%d", i))})
		if err != nil {
			t.Fatalf("CreateStage through %s: %v", entry.name, err)
		}
		arn := aws.ToString(out.Stage.Arn)
		arns = append(arns, arn)
		tok, err := a.api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String(fmt.Sprintf("pub%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		tokens[arn] = aws.ToString(tok.ParticipantToken.Token)
		b, _, _ := runBot(t, bot.Config{Token: tokens[arn], Video: true, Index: i})
		pubs[arn] = b
	}
	hosts := map[string]string{}
	eventually(t, 20*time.Second, "every publisher publishing", func() error {
		for _, arn := range arns {
			out, err := a.api.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arn),
				SessionId: aws.String(activeSession(t, a.api, arn)), FilterByPublished: true})
			if err != nil {
				return err
			}
			if len(out.Participants) != 1 {
				return fmt.Errorf("stage %s: %d publishing", arn, len(out.Participants))
			}
		}
		return nil
	})
	for _, arn := range arns {
		h, err := db.GetStageHost(ctx, ivsrt.StageARN(arn))
		if err != nil {
			t.Fatalf("host of %s: %v", arn, err)
		}
		hosts[arn] = h.NodeID
	}
	spread := map[string]int{}
	for _, h := range hosts {
		spread[h]++
	}
	t.Logf("placement: %v", spread)
	if len(spread) < 2 {
		t.Errorf("all %d stages on one node: %v", stageCount, spread)
	}

	// A subscriber joining through a node that does not host the stage gets
	// the publisher's media (signalling proxied, media straight to the host).
	target := arns[0]
	var via *clusterNode
	for _, n := range nodes {
		if n.name != hosts[target] {
			via = n
		}
	}
	subTok, err := via.api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(target), UserId: aws.String("viewer")})
	if err != nil {
		t.Fatal(err)
	}
	viewer, _, _ := runBot(t, bot.Config{Token: aws.ToString(subTok.ParticipantToken.Token), Subscribe: true})
	eventually(t, 20*time.Second, "the viewer receiving video through "+via.name, func() error {
		for _, r := range viewer.Stats().Received {
			if r.VideoFrames > 10 {
				return nil
			}
		}
		return fmt.Errorf("received %+v", viewer.Stats().Received)
	})

	// DisconnectParticipant through a node that does not host the stage
	// reaches the host over NATS.
	var other *clusterNode
	for _, n := range nodes {
		if n.name != hosts[target] && n != via {
			other = n
		}
	}
	if other == nil {
		other = via
	}
	sid := activeSession(t, a.api, target)
	if _, err := other.api.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{
		StageArn: aws.String(target), ParticipantId: aws.String(viewer.ParticipantID()), Reason: aws.String("bye")}); err != nil {
		t.Fatalf("DisconnectParticipant through %s: %v", other.name, err)
	}
	eventually(t, 10*time.Second, "the viewer disconnected", func() error {
		p, err := a.api.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(target), SessionId: aws.String(sid), ParticipantId: aws.String(viewer.ParticipantID())})
		if err != nil {
			return err
		}
		if p.Participant.State != types.ParticipantStateDisconnected {
			return fmt.Errorf("state %s", p.Participant.State)
		}
		return nil
	})

	// The header that marks a request one node routed to another grants
	// nothing: the node still checks the token.
	for _, path := range []string{"/whip", "/whep/" + viewer.ParticipantID()} {
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+via.srv.addr+path, strings.NewReader("v=0\r\n"))
		r.Header.Set(cluster.ForwardedHeader, "node-x")
		r.Header.Set("Authorization", "Bearer forged.token.here")
		r.Header.Set("Content-Type", "application/sdp")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s with %s and a forged token: status %d, want 401", path, cluster.ForwardedHeader, resp.StatusCode)
		}
	}

	// Kill a node hosting a stage (not a, which minted the tokens).
	var victim *clusterNode
	var victimStage string
	for _, arn := range arns {
		if hosts[arn] != a.name {
			victimStage = arn
			for _, n := range nodes {
				if n.name == hosts[arn] {
					victim = n
				}
			}
			break
		}
	}
	if victim == nil {
		t.Fatal("every stage is on node-a")
	}
	oldSession := activeSession(t, a.api, victimStage)
	victim.srv.kill()
	t.Logf("killed %s, host of %s", victim.name, victimStage)

	// The survivors end the dead node's sessions: everyone LEFT, endTime set.
	eventually(t, 20*time.Second, "the dead node's session ended", func() error {
		s, err := a.api.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(victimStage), SessionId: aws.String(oldSession)})
		if err != nil {
			return err
		}
		if s.StageSession.EndTime == nil {
			return errors.New("no endTime yet")
		}
		return nil
	})
	evs, err := a.api.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(victimStage),
		SessionId: aws.String(oldSession), ParticipantId: aws.String(pubs[victimStage].ParticipantID())})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs.Events {
		names = append(names, string(e.Name))
	}
	if names[len(names)-1] != string(types.EventNameLeft) {
		t.Errorf("publisher of the dead node's stage: events %v, want LEFT last", names)
	}

	// Its publisher joins again with the same token and lands on a live node.
	runBot(t, bot.Config{Token: tokens[victimStage], Video: true})
	eventually(t, 20*time.Second, "the publisher rejoined on a live node", func() error {
		h, err := db.GetStageHost(ctx, ivsrt.StageARN(victimStage))
		if err != nil {
			return err
		}
		if h.NodeID == victim.name {
			return fmt.Errorf("still placed on %s", h.NodeID)
		}
		s, err := a.api.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(victimStage)})
		if err != nil {
			return err
		}
		if len(s.StageSessions) != 2 {
			return fmt.Errorf("%d sessions", len(s.StageSessions))
		}
		return nil
	})

	// The stages on live nodes were not disturbed.
	for _, arn := range arns {
		if hosts[arn] == victim.name {
			continue
		}
		s, err := a.api.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.StageSessions) != 1 || s.StageSessions[0].EndTime != nil {
			t.Errorf("stage %s on %s: sessions %+v", arn, hosts[arn], s.StageSessions)
		}
	}

	// DeleteStage through any node kicks the participants on the host.
	live := arns[len(arns)-1]
	if hosts[live] == victim.name {
		live = arns[1]
	}
	for _, n := range nodes {
		if n != victim && n.name != hosts[live] {
			if _, err := n.api.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(live)}); err != nil {
				t.Fatalf("DeleteStage through %s: %v", n.name, err)
			}
			break
		}
	}
	eventually(t, 10*time.Second, "the deleted stage's publisher ended", func() error {
		if st := pubs[live].Stats().State; st != bot.StateLeft && st != bot.StateFailed {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})

	// Events written after the kill are delivered too, whichever node ran
	// the relay before (if it was the victim, another takes the lead).
	late, err := a.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("after-the-kill")})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the webhook got a stage created after the kill", func() error {
		got, _, _ := rcv.Snapshot()
		for _, e := range got {
			if e.Resources[0] == aws.ToString(late.Stage.Arn) {
				return nil
			}
		}
		return errors.New("not yet")
	})

	// The event stream reached the webhook once per event, from one relay,
	// in spite of three nodes with the same sink: every stage's creation,
	// each publisher's publication.
	eventually(t, 20*time.Second, "the webhook got every stage's events", func() error {
		got, _, _ := rcv.Snapshot()
		created, published := 0, 0
		for _, e := range got {
			switch e.Detail["event_name"] {
			case "Stage Created":
				created++
			case "Participant Published":
				published++
			}
		}
		if created != stageCount+1 || published < stageCount {
			return fmt.Errorf("%d created, %d published", created, published)
		}
		return nil
	})
	got, _, badSigs := rcv.Snapshot()
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Errorf("event %s (%v) delivered twice", e.ID, e.Detail["event_name"])
		}
		seen[e.ID] = true
	}
	if badSigs != 0 {
		t.Errorf("%d bad signatures", badSigs)
	}

	// The API answers through every live node with the same view.
	var views [][]string
	for _, n := range nodes {
		if n == victim {
			continue
		}

		out, err := n.api.ListStages(ctx, &ivsrealtime.ListStagesInput{})
		if err != nil {
			t.Fatal(err)
		}
		var v []string
		for _, s := range out.Stages {
			v = append(v, aws.ToString(s.Arn))
		}
		slices.Sort(v)
		views = append(views, v)
	}
	if !slices.Equal(views[0], views[1]) || len(views[0]) != stageCount {
		t.Errorf("ListStages through the live nodes: %v", views)
	}

	// Kill the node running the relay: another takes the lead, from the
	// queues in the database, and what is written next is delivered.
	dead := map[*clusterNode]bool{victim: true}
	leader := relayLeader(t, nodes, dead)
	leader.srv.kill()
	dead[leader] = true
	t.Logf("killed %s, which ran the relay", leader.name)
	var survivor *clusterNode
	for _, n := range nodes {
		if !dead[n] {
			survivor = n
		}
	}
	if next := relayLeader(t, nodes, dead); next != survivor {
		t.Errorf("relay on %s, want the survivor %s", next.name, survivor.name)
	}
	last, err := survivor.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("after-the-leader")})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the webhook got a stage created after the leader died", func() error {
		got, _, _ := rcv.Snapshot()
		for _, e := range got {
			if e.Resources[0] == aws.ToString(last.Stage.Arn) {
				return nil
			}
		}
		return errors.New("not yet")
	})
}

// relayLeader returns the live node whose relay runs: the one whose
// delivery API shows the sinks.
func relayLeader(t *testing.T, nodes []*clusterNode, dead map[*clusterNode]bool) *clusterNode {
	t.Helper()
	var leader *clusterNode
	eventually(t, 10*time.Second, "a node leading the relay", func() error {
		leader = nil
		for _, n := range nodes {
			if dead[n] {
				continue
			}
			var st struct {
				Sinks []struct{ Name string } `json:"sinks"`
			}
			if err := clusterGet(t, n.srv.addr, "/v1/events/sinks", &st); err != nil {
				return err
			}
			if len(st.Sinks) > 0 {
				if leader != nil {
					return fmt.Errorf("two nodes run the relay: %s and %s", leader.name, n.name)
				}
				leader = n
			}
		}
		if leader == nil {
			return errors.New("no node runs the relay")
		}
		return nil
	})
	return leader
}

// clusterGet sends a signed GET to a node and decodes its JSON answer.
func clusterGet(t *testing.T, addr, path string, v any) error {
	r, err := http.NewRequestWithContext(testContext(t), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: durableKeyID, SecretAccessKey: durableSecret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, r, hex.EncodeToString(sum[:]), "ivs", durableRegion, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// activeSession returns the stage's active session id.
func activeSession(t *testing.T, c *ivsrealtime.Client, arn string) string {
	t.Helper()
	out, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Stage.ActiveSessionId)
}

// testCluster is ivsrt serve processes on loopback forming one cluster on
// a throwaway PostgreSQL and NATS, with short cluster timings so that a
// dead node is noticed within seconds — not so short that a node starved
// of CPU a moment by the race detector and the tests beside it counts as
// dead.
type testCluster struct {
	dsn, nats, bin, dir string
	webhook             *eventstest.Receiver // nil: no sink
	extra               []string             // more flags of every node
	nodes               []*clusterNode
}

// startTestCluster starts a node of each name (as its --node-id) and
// waits until every one sees them all. With webhook, every node delivers
// the event stream to it.
func startTestCluster(t *testing.T, webhook *eventstest.Receiver, names ...string) *testCluster {
	t.Helper()
	return startTestClusterWith(t, webhook, nil, names...)
}

// startTestClusterWith is startTestCluster with more flags for every node.
func startTestClusterWith(t *testing.T, webhook *eventstest.Receiver, extra []string, names ...string) *testCluster {
	t.Helper()
	c := &testCluster{dsn: pgtest.Start(t), nats: natstest.Start(t), bin: durableBuild(t), dir: t.TempDir(), webhook: webhook,
		extra: extra}
	for _, name := range names {
		srv := durableStart(t, c.bin, filepath.Join(c.dir, name), durableFreeAddr(t), c.args(name)...)
		c.nodes = append(c.nodes, &clusterNode{name: name, srv: srv, api: srv.client()})
	}
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, n.name+" seeing the cluster", func() error {
			var st struct {
				Self  string `json:"self"`
				Nodes []struct {
					ID string `json:"id"`
				} `json:"nodes"`
			}
			if err := clusterGet(t, n.srv.addr, cluster.StatusPath, &st); err != nil {
				return err
			}
			if st.Self != n.name || len(st.Nodes) != len(names) {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
	}
	return c
}

// args are the flags of the cluster's node id.
func (c *testCluster) args(id string) []string {
	args := []string{"--store", c.dsn, "--cluster-nats", c.nats, "--node-id", id,
		"--cluster-lease", "4s", "--cluster-heartbeat", "400ms", "--cluster-dead-after", "3s", "--log-level", "info"}
	if c.webhook != nil {
		args = append(args, "--webhook-url", c.webhook.URL(), "--webhook-secret", webhookSecret)
	}
	return append(args, c.extra...)
}

// node returns the node of that name.
func (c *testCluster) node(name string) *clusterNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}
