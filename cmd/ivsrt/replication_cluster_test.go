package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/events/eventstest"
	"github.com/ivsrt/ivsrt/store/postgres"
)

// TestClusterReplication replicates a publisher of a stage hosted on one
// node into a stage hosted on the other, the API call going through the
// source's node: the destination's node subscribes to the source's over a
// peer connection between the nodes, and a subscriber of the destination
// gets the source's media as it was sent. The stop, and then the source
// leaving, take the replica out; the event stream tells of each start and
// stop once.
func TestClusterReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	tc := startTestCluster(t, rcv, "node-a", "node-b")
	nodes := map[string]*clusterNode{}
	for _, n := range tc.nodes {
		nodes[n.name] = n
	}
	ctx := testContext(t)
	db, err := postgres.Open(ctx, tc.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	host := func(stage string) string {
		h, err := db.GetStageHost(ctx, ivsrt.StageARN(stage))
		if err != nil {
			t.Fatalf("host of %s: %v", stage, err)
		}
		return h.NodeID
	}

	c := nodes["node-a"].api
	source := createStage(t, c, "vs-source")
	alice := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("alice")})
	aliceID := aws.ToString(alice.ParticipantId)
	pub := synthPublish(t, "http://"+nodes["node-a"].srv.addr, aws.ToString(alice.Token))
	sa := waitPublishing(t, c, source, aliceID)
	sourceHost := host(source)
	var destHost string
	for _, n := range nodes {
		if n.name != sourceHost {
			destHost = n.name
		}
	}

	// A destination stage placed on the other node: a watcher joins it
	// once the nodes know the source's node has someone, and stages go to
	// the node with the fewest participants.
	time.Sleep(time.Second)
	var dest string
	for i := 0; dest == ""; i++ {
		if i == 5 {
			t.Fatalf("no destination stage landed on %s", destHost)
		}
		arn := createStage(t, c, fmt.Sprintf("vs-destination-%d", i))
		w := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("watcher"),
			Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
		runBot(t, bot.Config{Token: aws.ToString(w.Token), Subscribe: true})
		eventually(t, 10*time.Second, "the watcher in "+arn, func() error {
			if activeSession(t, c, arn) == "" {
				return errors.New("no session")
			}
			return nil
		})
		if host(arn) == destHost {
			dest = arn
		}
	}
	t.Logf("source on %s, destination on %s", sourceHost, destHost)

	// Through the source's node, which is not the destination's.
	entry := nodes[sourceHost].api
	if _, err := entry.StartParticipantReplication(ctx, &ivsrealtime.StartParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID)}); err != nil {
		t.Fatalf("StartParticipantReplication through %s: %v", sourceHost, err)
	}
	sb := activeSession(t, c, dest)
	rep, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(dest), SessionId: aws.String(sb),
		ParticipantId: aws.String(aliceID)})
	if err != nil {
		t.Fatalf("GetParticipant of the replica: %v", err)
	}
	if p := rep.Participant; p.ReplicationType != types.ReplicationTypeReplica || p.ReplicationState != types.ReplicationStateActive ||
		aws.ToString(p.SourceStageArn) != source || aws.ToString(p.SourceSessionId) != sa {
		t.Errorf("replica: %s %s from %s %s", p.ReplicationType, p.ReplicationState, aws.ToString(p.SourceStageArn), aws.ToString(p.SourceSessionId))
	}

	// A viewer subscribes through the source's node (routed to the
	// destination's) and gets alice's media, as she sent it.
	viewer := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(dest), UserId: aws.String("viewer"),
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	sub, err := synthSubscribe(t, "http://"+nodes[sourceHost].srv.addr, aws.ToString(viewer.Token), aliceID)
	if err != nil {
		t.Fatalf("subscribe to the replica: %v", err)
	}
	sub.waitMedia(t, 150, 30*time.Second)
	v, a := sub.counts()
	t.Logf("the viewer on %s got %d video and %d audio packets of alice's, each as she sent it", destHost, v, a)

	// The stop, through the destination's node.
	if _, err := nodes[destHost].api.StopParticipantReplication(ctx, &ivsrealtime.StopParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID)}); err != nil {
		t.Fatalf("StopParticipantReplication: %v", err)
	}
	sub.waitGone(t, 10*time.Second)
	if got := listReplicas(t, c, source, aliceID, 0); len(got) != 1 || got[0].ReplicationState != types.ReplicationStateStopped {
		t.Errorf("replicas after the stop: %+v", got)
	}

	// Again; then alice stops publishing, and with no reconnect window
	// the replica leaves at once.
	if _, err := entry.StartParticipantReplication(ctx, &ivsrealtime.StartParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID)}); err != nil {
		t.Fatalf("StartParticipantReplication again: %v", err)
	}
	sub2, err := synthSubscribe(t, "http://"+nodes[destHost].srv.addr, aws.ToString(viewer.Token), aliceID)
	if err != nil {
		t.Fatalf("subscribe again: %v", err)
	}
	sub2.waitMedia(t, 50, 30*time.Second)
	pub.halt()
	sub2.waitGone(t, 15*time.Second)
	eventually(t, 15*time.Second, "the replication stopped", func() error {
		got := listReplicas(t, c, source, aliceID, 0)
		if len(got) != 2 || got[1].ReplicationState != types.ReplicationStateStopped {
			return fmt.Errorf("%+v", got)
		}
		return nil
	})
	if _, ok := sessionParticipants(t, c, dest)[aliceID]; ok {
		if p := sessionParticipants(t, c, dest)[aliceID]; p.State != types.ParticipantStateDisconnected {
			t.Errorf("the replica is still %s in the destination", p.State)
		}
	}

	// The event stream told of two starts and two stops, each once.
	eventually(t, 20*time.Second, "the replication events delivered", func() error {
		accepted, _, _ := rcv.Snapshot()
		count := map[any]int{}
		ids := map[string]bool{}
		for _, env := range accepted {
			if ids[env.ID] {
				continue // a redelivery
			}
			ids[env.ID] = true
			count[env.Detail["event_name"]]++
		}
		if count[ivsrt.StreamReplicationStarted] != 2 || count[ivsrt.StreamReplicationStopped] != 2 {
			return fmt.Errorf("%d started, %d stopped", count[ivsrt.StreamReplicationStarted], count[ivsrt.StreamReplicationStopped])
		}
		return nil
	})
}
