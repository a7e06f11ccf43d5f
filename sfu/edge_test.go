package sfu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu"
)

// inProcessEdges is a cluster of two nodes in one process: the feeds of
// inProcessFeeds, and the origin's side of edge subscriptions reached by
// calls (a cluster reaches it over NATS).
type inProcessEdges struct {
	inProcessFeeds
	node      string
	startedAt time.Time
}

func (e inProcessEdges) AdmitSubscriber(ctx context.Context, stage ivsrt.StageARN, sub *ivsrt.EdgeSubscription, notify func(ivsrt.EdgeNotice)) (ivsrt.EdgeAdmission, error) {
	s := *sub
	s.Node, s.NodeStartedAt = e.node, e.startedAt
	return e.there.AdmitEdgeSubscription(ctx, stage, &s, notify)
}

func (e inProcessEdges) OpenEdgeFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, kinds []string, offer string,
	notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
	answer, info, feedID, err := e.there.AnswerEdgeFeed(ctx, stage, id, kinds, offer, notify)
	if err != nil {
		return "", ivsrt.FeedInfo{}, nil, err
	}
	return answer, info, func() { e.there.EndFeed(feedID) }, nil
}

func (e inProcessEdges) ForgetSubscriber(string) {}

func (e inProcessEdges) SubscriberLayer(ctx context.Context, stage ivsrt.StageARN, id, rid string) error {
	return e.there.EdgeSubscriptionLayer(ctx, stage, id, rid)
}

func (e inProcessEdges) SubscriberStarted(ctx context.Context, stage ivsrt.StageARN, id string) error {
	return e.there.EdgeSubscriptionStarted(ctx, stage, id)
}

func (e inProcessEdges) SubscriberEnded(ctx context.Context, stage ivsrt.StageARN, id string) error {
	return e.there.EndEdgeSubscription(ctx, stage, id)
}

// edgePeer is a second node serving as an edge of the stages the
// harness's node hosts.
func (h *harness) edgePeer(hostedThere func(ivsrt.StageARN) bool, startedAt time.Time) *harness {
	p := h.peer(hostedThere)
	p.sfu.SetRemoteFeeds(inProcessEdges{inProcessFeeds: inProcessFeeds{there: h.sfu, hostedThere: hostedThere},
		node: "edge", startedAt: startedAt})
	return p
}

// TestEdge serves the subscribers of a stage from a second node: each
// gets the publisher's media intact, through one pull from the origin
// whatever their number; the origin records their subscriptions; and a
// subscription ends whichever side ends it: the subscriber, the origin
// (a disconnected participant, an unpublished publisher), or the edge's
// death.
func TestEdge(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("edge")
	started := time.Now().UTC().Truncate(time.Millisecond)
	edge := h.edgePeer(func(s ivsrt.StageARN) bool { return s == ivsrt.StageARN(stage) }, started)

	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	pub := h.mustPublish(aws.ToString(alice.Token), h264, true)
	defer pub.halt()

	const viewers = 3
	var subs []*subscriber
	var ids []string
	for i := range viewers {
		tok := h.token(stage, fmt.Sprintf("viewer%d", i), types.ParticipantTokenCapabilitySubscribe)
		ids = append(ids, aws.ToString(tok.ParticipantId))
		subs = append(subs, edge.mustSubscribe(aws.ToString(tok.Token), aliceID))
	}
	for _, sub := range subs {
		checkMedia(t, sub, 90, 40)
	}
	origin, edgeStats := h.sfu.MediaStats(), edge.sfu.MediaStats()
	t.Logf("origin: %d subscriptions, %d feeds out, %d packets out; edge: %d pulls, %d subscriptions, %d packets in, %d out",
		origin.Subscriptions, origin.FeedsOut, origin.PacketsOut, edgeStats.EdgePulls, edgeStats.EdgeSubscriptions, edgeStats.PacketsIn, edgeStats.PacketsOut)
	// Audio and video: a pull of each, once.
	if origin.FeedsOut != 2 || edgeStats.EdgePulls != 2 || edgeStats.EdgePullsOpened != 2 {
		t.Errorf("the publication pulled: %d feeds out of the origin, %d pulls on the edge (%d opened), want 2",
			origin.FeedsOut, edgeStats.EdgePulls, edgeStats.EdgePullsOpened)
	}
	if edgeStats.EdgeSubscriptions != viewers || edgeStats.Subscriptions != viewers || origin.Subscriptions != 0 {
		t.Errorf("subscriptions: the edge serves %d (%d in all), the origin %d; want %d, %d, 0",
			edgeStats.EdgeSubscriptions, edgeStats.Subscriptions, origin.Subscriptions, viewers, viewers)
	}
	// The origin forwards the publication once, to the edge, not once per
	// subscriber: its packets out are about the edge's packets in.
	if origin.PacketsOut > edgeStats.PacketsIn*3/2 {
		t.Errorf("the origin sent %d packets for the edge's %d", origin.PacketsOut, edgeStats.PacketsIn)
	}

	// The subscriber ends its session: SUBSCRIBE_STOPPED at the origin;
	// the pull stays for the others.
	session := h.activeSession(stage)
	if code := edge.delete(subs[0].location); code != 200 {
		t.Fatalf("DELETE of an edge session: %d", code)
	}
	eventually(t, "SUBSCRIBE_STOPPED of the first viewer", func() error {
		if got := h.history(stage, session, ids[0]); !slices.Contains(got, "SUBSCRIBE_STOPPED remote="+aliceID) {
			return fmt.Errorf("events %q", got)
		}
		return nil
	})
	if st := edge.sfu.MediaStats(); st.EdgePulls != 2 || st.EdgeSubscriptions != viewers-1 {
		t.Errorf("after one left: %d pulls, %d subscriptions", st.EdgePulls, st.EdgeSubscriptions)
	}

	// The origin disconnects a participant: its edge session ends.
	if err := h.sfu.DisconnectParticipant(testContext(t), ivsrt.StageARN(stage), ivsrt.ParticipantID(ids[1]), "bye"); err != nil {
		t.Fatal(err)
	}
	wait(t, subs[1].gone, "the disconnected viewer's connection to close")

	// The edge dies: the origin ends what it served.
	h.sfu.PruneEdgeSubscriptions(testContext(t), ivsrt.EdgeNodes{"edge": started.Add(time.Second)})
	eventually(t, "SUBSCRIBE_STOPPED of the last viewer after its edge restarted", func() error {
		if got := h.history(stage, session, ids[2]); !slices.Contains(got, "SUBSCRIBE_STOPPED remote="+aliceID) {
			return fmt.Errorf("events %q", got)
		}
		return nil
	})
	wait(t, subs[2].gone, "the last viewer's connection to close")
	eventually(t, "the pull to close", func() error {
		if st, o := edge.sfu.MediaStats(), h.sfu.MediaStats(); st.EdgePulls != 0 || o.FeedsOut != 0 {
			return fmt.Errorf("%d pulls, %d feeds out", st.EdgePulls, o.FeedsOut)
		}
		return nil
	})
}

// TestEdgeRefusals: the origin's refusals reach the edge's subscriber as
// the origin words them, and a publisher that stops ends the edge's
// subscriptions and its pull.
func TestEdgeRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("edge")
	edge := h.edgePeer(func(s ivsrt.StageARN) bool { return s == ivsrt.StageARN(stage) }, time.Now().UTC())
	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)

	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	_, err := edge.subscribe(aws.ToString(viewer.Token), aliceID)
	var he *httpError
	if !errors.As(err, &he) || he.Status != 404 || he.Code != ivsrt.ErrPublisherNotFound {
		t.Fatalf("subscribing to nobody through the edge: got %v, want 404 %s", err, ivsrt.ErrPublisherNotFound)
	}
	pub := h.mustPublish(aws.ToString(alice.Token), h264, true)
	publishOnly := h.token(stage, "publisher-only", types.ParticipantTokenCapabilityPublish)
	_, err = edge.subscribe(aws.ToString(publishOnly.Token), aliceID)
	if !errors.As(err, &he) || he.Status != 403 || he.Code != ivsrt.ErrInsufficientCapabilities {
		t.Fatalf("subscribing without the capability: got %v, want 403 %s", err, ivsrt.ErrInsufficientCapabilities)
	}

	// Two at once: one pull.
	var wg sync.WaitGroup
	subs := make([]*subscriber, 2)
	for i := range subs {
		tok := h.token(stage, fmt.Sprintf("v%d", i), types.ParticipantTokenCapabilitySubscribe)
		wg.Go(func() {
			s, err := edge.subscribe(aws.ToString(tok.Token), aliceID)
			if err != nil {
				t.Errorf("subscribe %d: %v", i, err)
				return
			}
			subs[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, s := range subs {
		s.waitFor(webrtc.RTPCodecTypeVideo, 30)
	}
	if st := edge.sfu.MediaStats(); st.EdgePullsOpened != 2 {
		t.Errorf("two subscribers at once opened %d pulls, want 2: audio and video", st.EdgePullsOpened)
	}
	// The publisher stops for good: the edge's subscribers are dropped once
	// the republish grace period is over, and the pull closes.
	pub.halt()
	for _, s := range subs {
		wait(t, s.gone, "an edge subscriber to be dropped")
	}
	eventually(t, "the pull to close", func() error {
		if st := edge.sfu.MediaStats(); st.EdgePulls != 0 {
			return fmt.Errorf("%d pulls", st.EdgePulls)
		}
		return nil
	})
}

var _ sfu.EdgeOrigins = inProcessEdges{}

// TestEdgeSimulcast: an edge pulls every layer of a simulcast publisher
// and chooses among them for each of its subscribers as the origin
// would: the highest by default, the one the subscriber's tile needs or
// it prefers, as its events WebSocket (on the origin) tells; and the
// subscriber is told there which layer it gets.
func TestEdgeSimulcast(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("edge-simulcast")
	edge := h.edgePeer(func(s ivsrt.StageARN) bool { return s == ivsrt.StageARN(stage) }, time.Now().UTC())
	pubTok, subTok := h.token(stage, "camera"), h.token(stage, "viewer")
	pubEvents := h.dialEvents(*pubTok.Token)
	pubEvents.next("joined")
	startSimulcastPublisher(t, h, *pubTok.Token)

	subEvents := h.dialEvents(*subTok.Token)
	subEvents.next("joined")
	w := watchLayers(edge, *pubTok.ParticipantId, *subTok.Token, "")
	wantLayer := func(what string, layer byte) {
		t.Helper()
		eventually(t, what, func() error {
			if got := w.last(10); len(got) < 10 || slices.ContainsFunc(got, func(l byte) bool { return l != layer }) {
				return fmt.Errorf("last layers %v, want %d", got, layer)
			}
			return nil
		})
	}
	wantLayer("the edge's subscriber gets the highest layer", 3)
	// One that asks to start low does, through the edge too.
	low := watchLayers(edge, *pubTok.ParticipantId, *h.token(stage, "low").Token, "?initialLayer=lowest")
	wantFirstLayer(t, low, "through the edge, initialLayer=lowest", 1)
	// The subscriber receives video only: nothing else is pulled.
	if st, e := h.sfu.MediaStats(), edge.sfu.MediaStats(); st.FeedsOut != 1 || e.EdgePulls != 1 {
		t.Errorf("%d feeds out of the origin, %d pulls on the edge; want 1, of the video", st.FeedsOut, e.EdgePulls)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	send := func(m map[string]any) {
		t.Helper()
		msg, _ := json.Marshal(m)
		if err := subEvents.conn.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "videoSize", "participantId": *pubTok.ParticipantId, "width": 320, "height": 180})
	wantLayer("the edge's subscriber of a 320×180 tile gets the lowest layer", 1)
	layers := nextLayers(t, subEvents, func(m map[string]any) bool { return m["selected"] == "q" })
	if ls := layers["layers"].([]any); len(ls) != 3 {
		t.Errorf("layers message %v: want the publisher's 3 layers", layers)
	}
	send(map[string]any{"type": "preferLayer", "participantId": *pubTok.ParticipantId, "rid": "h"})
	wantLayer("the edge's subscriber gets the layer it prefers", 2)
	nextLayers(t, subEvents, func(m map[string]any) bool { return m["preferred"] == "h" && m["selected"] == "h" })
}

// TestSubscriberQuota: the stage's subscriber quota counts participants
// subscribing to anyone, as IVS counts subscribers, not their
// subscriptions, and counts those edges serve too.
func TestSubscriberQuota(t *testing.T) {
	t.Parallel()
	h := newHarnessConfig(t, sfu.Config{UDPAddr: "127.0.0.1:0", MaxSubscribers: 2})
	stage := h.createStage("quota")
	edge := h.edgePeer(func(s ivsrt.StageARN) bool { return s == ivsrt.StageARN(stage) }, time.Now().UTC())
	var pubIDs []string
	for i := range 2 {
		tok := h.token(stage, fmt.Sprintf("pub%d", i))
		p := h.mustPublish(aws.ToString(tok.Token), h264, true)
		defer p.halt()
		pubIDs = append(pubIDs, aws.ToString(tok.ParticipantId))
	}
	// Two subscribers, each of both publishers, one of them through the
	// edge: four subscriptions, two subscribers.
	for i, via := range []*harness{h, edge} {
		tok := aws.ToString(h.token(stage, fmt.Sprintf("viewer%d", i), types.ParticipantTokenCapabilitySubscribe).Token)
		for _, pub := range pubIDs {
			via.mustSubscribe(tok, pub)
		}
	}
	third := aws.ToString(h.token(stage, "viewer2", types.ParticipantTokenCapabilitySubscribe).Token)
	for _, via := range []*harness{h, edge} {
		_, err := via.subscribe(third, pubIDs[0])
		var he *httpError
		if !errors.As(err, &he) || he.Status != 403 || he.Code != ivsrt.ErrQuotaExceeded {
			t.Errorf("a third subscriber through %s: got %v, want 403 %s", via.url, err, ivsrt.ErrQuotaExceeded)
		}
	}
}
