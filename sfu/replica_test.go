package sfu_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu"
)

// replicate starts replicating participant id of source into dest
// through the API.
func (h *harness) replicate(source, dest, id string, window int32, attrs map[string]string) error {
	h.t.Helper()
	_, err := h.client.StartParticipantReplication(testContext(h.t), &ivsrealtime.StartParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(id),
		ReconnectWindowSeconds: aws.Int32(window), Attributes: attrs})
	return err
}

// replicas lists the replications of a participant of a source stage as
// "destination-id STATE".
func (h *harness) replicas(source, id string) []string {
	h.t.Helper()
	out, err := h.client.ListParticipantReplicas(testContext(h.t), &ivsrealtime.ListParticipantReplicasInput{
		SourceStageArn: aws.String(source), ParticipantId: aws.String(id)})
	if err != nil {
		h.t.Fatalf("ListParticipantReplicas: %v", err)
	}
	var got []string
	for _, r := range out.Replicas {
		got = append(got, ivsrt.StageARN(aws.ToString(r.DestinationStageArn)).ID()+" "+string(r.ReplicationState))
	}
	return got
}

// participant returns a participant as GetParticipant has it.
func (h *harness) participant(stage, session, id string) *types.Participant {
	h.t.Helper()
	out, err := h.client.GetParticipant(testContext(h.t), &ivsrealtime.GetParticipantInput{
		StageArn: aws.String(stage), SessionId: aws.String(session), ParticipantId: aws.String(id)})
	if err != nil {
		h.t.Fatalf("GetParticipant %s: %v", id, err)
	}
	return out.Participant
}

// events returns a participant's events as the API lists them.
func (h *harness) events(stage, session, id string) []types.Event {
	h.t.Helper()
	out, err := h.client.ListParticipantEvents(testContext(h.t), &ivsrealtime.ListParticipantEventsInput{
		StageArn: aws.String(stage), SessionId: aws.String(session), ParticipantId: aws.String(id), MaxResults: aws.Int32(100)})
	if err != nil {
		h.t.Fatalf("ListParticipantEvents: %v", err)
	}
	return out.Events
}

// waitReplicas waits until the participant's replications are want.
func (h *harness) waitReplicas(source, id string, want ...string) {
	h.t.Helper()
	eventually(h.t, "replicas of "+id, func() error {
		if got := h.replicas(source, id); !slices.Equal(got, want) {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	})
}

// checkMedia waits until what the subscriber received of both kinds
// checks out: every payload as the publisher sent it, one stream.
func checkMedia(t *testing.T, sub *subscriber, video, audio int) {
	t.Helper()
	sub.waitFor(webrtc.RTPCodecTypeVideo, video)
	sub.waitFor(webrtc.RTPCodecTypeAudio, audio)
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		eventually(t, "the "+kind.String()+" to check out", func() error { return sub.check(kind) })
	}
}

func errorCode(err error) string {
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	return ""
}

// TestReplication replicates a publisher into another stage on the same
// node: a subscriber of the destination gets the publisher's media as it
// was sent, the API shows both ends of the replication, and the stop
// takes the replica out.
func TestReplication(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	source, dest := h.createStage("source"), h.createStage("destination")
	alice := h.token(source, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	pub := h.mustPublish(aws.ToString(alice.Token), vp8, true)
	defer pub.halt()
	wait(t, pub.connected, "alice to publish")
	eventually(t, "alice publishing", func() error {
		if !slices.Contains(h.history(source, h.activeSession(source), aliceID), "PUBLISH_STARTED") {
			return errors.New("not yet")
		}
		return nil
	})
	sa := h.activeSession(source)

	if err := h.replicate(source, dest, aliceID, 0, map[string]string{"role": "guest", "team": "red"}); err != nil {
		t.Fatalf("StartParticipantReplication: %v", err)
	}
	sb := h.activeSession(dest)
	if sb == "" {
		t.Fatal("no session in the destination: the replica did not join")
	}

	// A viewer of the destination subscribes to the replica, by the
	// source participant's id, and gets the source's media.
	viewer := h.token(dest, "viewer", types.ParticipantTokenCapabilitySubscribe)
	viewerID := aws.ToString(viewer.ParticipantId)
	sub := h.mustSubscribe(aws.ToString(viewer.Token), aliceID)
	checkMedia(t, sub, 60, 30)

	// Both ends, as the API shows them.
	src := h.participant(source, sa, aliceID)
	if src.ReplicationType != types.ReplicationTypeSource || src.ReplicationState != types.ReplicationStateActive ||
		src.SourceStageArn != nil || src.SourceSessionId != nil {
		t.Errorf("source participant: got %s %s %v %v, want SOURCE ACTIVE", src.ReplicationType, src.ReplicationState,
			aws.ToString(src.SourceStageArn), aws.ToString(src.SourceSessionId))
	}
	rep := h.participant(dest, sb, aliceID)
	wantAttrs := map[string]string{"role": "guest", "team": "red"} // the token's role replaced
	if rep.ReplicationType != types.ReplicationTypeReplica || rep.ReplicationState != types.ReplicationStateActive ||
		aws.ToString(rep.SourceStageArn) != source || aws.ToString(rep.SourceSessionId) != sa ||
		aws.ToString(rep.UserId) != "alice" || !maps.Equal(rep.Attributes, wantAttrs) || !rep.Published ||
		rep.State != types.ParticipantStateConnected {
		t.Errorf("replica: got %s %s from %s %s, user %s, attributes %v, published %v, %s; want REPLICA ACTIVE from %s %s, alice, %v, published, CONNECTED",
			rep.ReplicationType, rep.ReplicationState, aws.ToString(rep.SourceStageArn), aws.ToString(rep.SourceSessionId),
			aws.ToString(rep.UserId), rep.Attributes, rep.Published, rep.State, source, sa, wantAttrs)
	}
	summary := h.participants(dest, sb)[aliceID]
	if summary.ReplicationType != types.ReplicationTypeReplica || summary.ReplicationState != types.ReplicationStateActive ||
		aws.ToString(summary.SourceStageArn) != source {
		t.Errorf("replica in ListParticipants: got %s %s %s", summary.ReplicationType, summary.ReplicationState, aws.ToString(summary.SourceStageArn))
	}
	if v := h.participants(dest, sb)[viewerID]; v.ReplicationType != types.ReplicationTypeNone {
		t.Errorf("viewer: replicationType %s, want NONE", v.ReplicationType)
	}
	h.waitReplicas(source, aliceID, ivsrt.StageARN(dest).ID()+" ACTIVE")

	// Starting it again, into the stage it publishes in, or of the
	// replica, conflicts; a participant that does not publish is not
	// found.
	other := h.createStage("other")
	for _, c := range []struct {
		what                 string
		source, dest, id     string
		code                 string
		messageHasSubstrings string
	}{
		{"again", source, dest, aliceID, "ConflictException", "already"},
		{"same stage", source, source, aliceID, "ConflictException", "cannot be replicated into the stage"},
		{"a replica", dest, other, aliceID, "ConflictException", "replica"},
		{"a subscriber", dest, other, viewerID, "ResourceNotFoundException", "not publishing"},
		{"unknown stage", source, "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD0000", aliceID, "ResourceNotFoundException", "not found"},
	} {
		err := h.replicate(c.source, c.dest, c.id, 0, nil)
		if errorCode(err) != c.code {
			t.Errorf("%s: got %v, want %s", c.what, err, c.code)
		}
	}

	// The events: the source's tell of the replication; the replica's,
	// and the viewer's subscription to it, say replica.
	var started *types.Event
	for _, e := range h.events(source, sa, aliceID) {
		if e.Name == types.EventNameReplicationStarted {
			started = &e
		}
	}
	if started == nil || aws.ToString(started.DestinationStageArn) != dest || aws.ToString(started.DestinationSessionId) != sb {
		t.Errorf("REPLICATION_STARTED: got %+v, want destination %s %s", started, dest, sb)
	}
	for _, e := range h.events(dest, sb, aliceID) {
		if !e.Replica {
			t.Errorf("replica's %s: replica false", e.Name)
		}
	}
	for _, e := range h.events(dest, sb, viewerID) {
		if want := e.Name == types.EventNameSubscribeStarted; e.Replica != want {
			t.Errorf("viewer's %s: replica %v, want %v", e.Name, e.Replica, want)
		}
	}

	// The stop: the replica leaves, its subscriber with it.
	if _, err := h.client.StopParticipantReplication(testContext(t), &ivsrealtime.StopParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID)}); err != nil {
		t.Fatalf("StopParticipantReplication: %v", err)
	}
	if got := h.replicas(source, aliceID); !slices.Equal(got, []string{ivsrt.StageARN(dest).ID() + " STOPPED"}) {
		t.Errorf("replicas right after the stop: %v", got)
	}
	wait(t, sub.gone, "the replica's subscriber to be dropped")
	h.waitHistory(dest, sb, aliceID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
	src = h.participant(source, sa, aliceID)
	if src.ReplicationType != types.ReplicationTypeSource || src.ReplicationState != types.ReplicationStateStopped {
		t.Errorf("source after the stop: %s %s, want SOURCE STOPPED", src.ReplicationType, src.ReplicationState)
	}
	if rep := h.participant(dest, sb, aliceID); rep.ReplicationState != types.ReplicationStateStopped || rep.State != types.ParticipantStateDisconnected {
		t.Errorf("replica after the stop: %s %s, want STOPPED DISCONNECTED", rep.ReplicationState, rep.State)
	}
	_, err := h.client.StopParticipantReplication(testContext(t), &ivsrealtime.StopParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID)})
	if errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("stop again: got %v, want ResourceNotFoundException", err)
	}
	// Alice publishes on in her stage.
	if got := h.history(source, sa, aliceID); got[len(got)-1] != "REPLICATION_STOPPED" {
		t.Errorf("source events: %v, want REPLICATION_STOPPED last", got)
	}
}

// TestReplicationEnds checks that the replica goes wherever the end
// comes from: its source stops publishing (no reconnect window), its
// source participant is disconnected, either stage is deleted, the
// replica is disconnected.
func TestReplicationEnds(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"unpublished", "source disconnected", "replica disconnected", "source deleted", "destination deleted"} {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			source, dest := h.createStage("source"), h.createStage("destination")
			alice := h.token(source, "alice")
			aliceID := aws.ToString(alice.ParticipantId)
			pub := h.mustPublish(aws.ToString(alice.Token), vp8, true)
			defer pub.halt()
			eventually(t, "alice publishing", func() error {
				s := h.activeSession(source)
				if s == "" || !slices.Contains(h.history(source, s, aliceID), "PUBLISH_STARTED") {
					return errors.New("not yet")
				}
				return nil
			})
			window := int32(0)
			if c != "unpublished" {
				window = 300 // none of these ends waits for it
			}
			if err := h.replicate(source, dest, aliceID, window, nil); err != nil {
				t.Fatalf("StartParticipantReplication: %v", err)
			}
			sb := h.activeSession(dest)
			viewer := h.token(dest, "viewer", types.ParticipantTokenCapabilitySubscribe)
			sub := h.mustSubscribe(aws.ToString(viewer.Token), aliceID)
			sub.waitFor(webrtc.RTPCodecTypeVideo, 20)

			ctx := testContext(t)
			var err error
			switch c {
			case "unpublished":
				if got := h.delete(pub.location); got != http.StatusOK {
					t.Fatalf("DELETE WHIP session: %d", got)
				}
			case "source disconnected":
				_, err = h.client.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{
					StageArn: aws.String(source), ParticipantId: aws.String(aliceID)})
			case "replica disconnected":
				_, err = h.client.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{
					StageArn: aws.String(dest), ParticipantId: aws.String(aliceID)})
			case "source deleted":
				_, err = h.client.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(source)})
			case "destination deleted":
				_, err = h.client.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(dest)})
			}
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			wait(t, sub.gone, "the replica's subscriber to be dropped")
			switch c {
			case "source deleted":
				// The replications went with their source stage; the
				// replica has left the destination.
				h.waitHistory(dest, sb, aliceID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
				if got := h.replicas(source, aliceID); len(got) != 0 {
					t.Errorf("replicas of a deleted stage: %v", got)
				}
			case "destination deleted":
				h.waitReplicas(source, aliceID, ivsrt.StageARN(dest).ID()+" STOPPED")
			default:
				h.waitReplicas(source, aliceID, ivsrt.StageARN(dest).ID()+" STOPPED")
				h.waitHistory(dest, sb, aliceID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
			}
			if c == "replica disconnected" {
				// The source goes on publishing in its own stage.
				if _, ok := h.participants(source, h.activeSession(source))[aliceID]; !ok {
					t.Errorf("alice not in her stage any more")
				}
			}
		})
	}
}

// TestReplicationReconnectWindow has the source go away and come back
// within the reconnect window, first within the republish grace period
// (the same tracks go on), then after it (the replica opens a new feed):
// the replica stays, its subscriber gets one stream across both; then it
// goes for longer than the window and the replication stops.
func TestReplicationReconnectWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	source, dest := h.createStage("source"), h.createStage("destination")
	alice := h.token(source, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	// Alice also has the events WebSocket open: her session outlives her
	// WHIP sessions.
	ws := h.dialEvents(aws.ToString(alice.Token))
	ws.next("joined")
	pub := h.mustPublish(aws.ToString(alice.Token), vp8, true, run(1))
	sa := h.activeSession(source)
	h.waitHistory(source, sa, aliceID, "JOINED", "PUBLISH_STARTED")
	const window = 8
	if err := h.replicate(source, dest, aliceID, window, nil); err != nil {
		t.Fatalf("StartParticipantReplication: %v", err)
	}
	sb := h.activeSession(dest)
	viewer := h.token(dest, "viewer", types.ParticipantTokenCapabilitySubscribe)
	sub := h.mustSubscribe(aws.ToString(viewer.Token), aliceID)
	sub.waitFor(webrtc.RTPCodecTypeVideo, 30)

	replicaPublishing := func(want bool) {
		t.Helper()
		eventually(t, fmt.Sprintf("the replica publishing %v", want), func() error {
			got := h.history(dest, sb, aliceID)
			if last := got[len(got)-1]; (last == "PUBLISH_STARTED") != want {
				return fmt.Errorf("events %v", got)
			}
			return nil
		})
	}
	active := []string{ivsrt.StageARN(dest).ID() + " ACTIVE"}

	// Back within the republish grace period (3 s here): the same tracks
	// go on.
	pub.halt()
	replicaPublishing(false)
	time.Sleep(500 * time.Millisecond)
	pub = h.mustPublish(aws.ToString(alice.Token), vp8, true, run(2))
	replicaPublishing(true)
	before := len(sub.packets(webrtc.RTPCodecTypeVideo))
	sub.waitFor(webrtc.RTPCodecTypeVideo, before+60)
	if got := h.replicas(source, aliceID); !slices.Equal(got, active) {
		t.Fatalf("replicas after the first return: %v", got)
	}

	// Back after it, within the window: the replica opens a new feed.
	pub.halt()
	replicaPublishing(false)
	time.Sleep(4 * time.Second)
	if got := h.replicas(source, aliceID); !slices.Equal(got, active) {
		t.Fatalf("replicas with the source away 4 s: %v", got)
	}
	pub = h.mustPublish(aws.ToString(alice.Token), vp8, true, run(3))
	replicaPublishing(true)
	before = len(sub.packets(webrtc.RTPCodecTypeVideo))
	sub.waitFor(webrtc.RTPCodecTypeVideo, before+60)
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		eventually(t, "the "+kind.String()+" across the returns to check out", func() error { return sub.check(kind) })
	}
	runs := map[uint8]bool{}
	for _, p := range sub.packets(webrtc.RTPCodecTypeVideo) {
		runs[p.m.Run] = true
	}
	if !runs[1] || !runs[2] || !runs[3] {
		t.Errorf("the subscriber got the runs %v, want 1, 2 and 3", runs)
	}
	h.waitReplicas(source, aliceID, ivsrt.StageARN(dest).ID()+" ACTIVE")

	// Away for longer than the window: the replication stops.
	pub.halt()
	gone := time.Now()
	h.waitReplicas(source, aliceID, ivsrt.StageARN(dest).ID()+" STOPPED")
	if waited := time.Since(gone); waited < window*time.Second-time.Second {
		t.Errorf("stopped %v after the source went, want about the window, %ds", waited, window)
	}
	wait(t, sub.gone, "the replica's subscriber to be dropped")
	got := h.history(dest, sb, aliceID)
	if got[len(got)-1] != "LEFT" {
		t.Errorf("replica's events: %v, want LEFT last", got)
	}
}

// peer is a second node over the harness's store: its own media plane and
// HTTP listener, the same token issuer, and feeds to and from the
// harness's node carried in process (a cluster carries them over NATS).
func (h *harness) peer(hostedThere func(ivsrt.StageARN) bool) *harness {
	t := h.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	base := "http://" + ln.Addr().String()
	media, err := sfu.New(h.db, h.issuer, sfu.Config{UDPAddr: "127.0.0.1:0", PublicURL: base},
		append([]sfu.Option{sfu.WithLogger(testLogger(t))}, fastOptions...)...)
	if err != nil {
		t.Fatalf("start the second media plane: %v", err)
	}
	media.SetRemoteFeeds(inProcessFeeds{there: h.sfu, hostedThere: hostedThere})
	srv := httptest.NewUnstartedServer(media)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		media.Close()
		srv.Close()
	})
	p := *h
	p.url, p.sfu = base, media
	return &p
}

// inProcessFeeds reaches the media plane there for the stages it hosts.
type inProcessFeeds struct {
	there       *sfu.Server
	hostedThere func(ivsrt.StageARN) bool
}

func (f inProcessFeeds) Remote(_ context.Context, stage ivsrt.StageARN) (bool, error) {
	return f.hostedThere(stage), nil
}

func (f inProcessFeeds) OpenFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, live bool, offer string,
	notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
	answer, info, feedID, err := f.there.AnswerFeed(ctx, stage, id, live, offer, notify)
	if err != nil {
		return "", ivsrt.FeedInfo{}, nil, err
	}
	return answer, info, func() { f.there.EndFeed(feedID) }, nil
}

// TestReplicationAcrossNodes replicates a publisher of a stage hosted on
// one node into a stage hosted on another: the destination's node
// subscribes to the source's over a peer connection, and its subscriber
// gets the media as it was sent. The source then stops publishing, and
// the replication stops.
func TestReplicationAcrossNodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	source, dest := h.createStage("source"), h.createStage("destination")
	there := h.peer(func(stage ivsrt.StageARN) bool { return stage == ivsrt.StageARN(source) })
	alice := h.token(source, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	pub := h.mustPublish(aws.ToString(alice.Token), h264, true)
	defer pub.halt()
	eventually(t, "alice publishing", func() error {
		s := h.activeSession(source)
		if s == "" || !slices.Contains(h.history(source, s, aliceID), "PUBLISH_STARTED") {
			return errors.New("not yet")
		}
		return nil
	})
	r, err := there.sfu.StartReplication(testContext(t), &ivsrt.ReplicationRequest{
		SourceStageARN: ivsrt.StageARN(source), DestinationStageARN: ivsrt.StageARN(dest), ParticipantID: ivsrt.ParticipantID(aliceID),
		UserID: "alice", Attributes: map[string]string{"role": "alice"}, Quota: ivsrt.ReplicationQuota{MaxReplicasPerParticipant: 1}})
	if err != nil {
		t.Fatalf("StartReplication on the destination's node: %v", err)
	}
	if r.State != ivsrt.ReplicationActive || r.SourceSessionID != ivsrt.SessionID(h.activeSession(source)) {
		t.Errorf("replication: got %+v", r)
	}
	viewer := h.token(dest, "viewer", types.ParticipantTokenCapabilitySubscribe)
	sub := there.mustSubscribe(aws.ToString(viewer.Token), aliceID)
	checkMedia(t, sub, 90, 40)
	// A keyframe asked for in the destination reaches the publisher.
	plis := pub.plis.Load()
	late := h.token(dest, "late", types.ParticipantTokenCapabilitySubscribe)
	lateSub := there.mustSubscribe(aws.ToString(late.Token), aliceID)
	lateSub.waitFor(webrtc.RTPCodecTypeVideo, 30)
	eventually(t, "the late subscriber's video to check out", func() error { return lateSub.check(webrtc.RTPCodecTypeVideo) })
	t.Logf("keyframe requests reaching the publisher: %d before the late subscriber, %d after", plis, pub.plis.Load())

	pub.halt()
	wait(t, sub.gone, "the replica's subscriber to be dropped")
	h.waitReplicas(source, aliceID, ivsrt.StageARN(dest).ID()+" STOPPED")
}
