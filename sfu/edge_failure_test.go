package sfu_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
)

// hookedEdges is inProcessEdges with hooks where the cluster does
// network I/O: after the origin admits, before it answers a pull, and
// when the edge tells it a subscription ended.
type hookedEdges struct {
	inProcessEdges
	afterAdmit func(ivsrt.EdgeAdmission, error) (ivsrt.EdgeAdmission, error)
	beforeFeed func(kinds []string)
	ended      func(id string)
	// lost: what the edge tells of the subscriptions it ends never
	// reaches the origin.
	lost bool

	mu    *sync.Mutex
	feeds map[string]string // feed id at the origin, by kind pulled
}

func (e hookedEdges) AdmitSubscriber(ctx context.Context, stage ivsrt.StageARN, sub *ivsrt.EdgeSubscription, notify func(ivsrt.EdgeNotice)) (ivsrt.EdgeAdmission, error) {
	adm, err := e.inProcessEdges.AdmitSubscriber(ctx, stage, sub, notify)
	if e.afterAdmit != nil {
		return e.afterAdmit(adm, err)
	}
	return adm, err
}

func (e hookedEdges) OpenEdgeFeed(ctx context.Context, stage ivsrt.StageARN, id ivsrt.ParticipantID, kinds []string, offer string,
	notify func(ivsrt.FeedEvent)) (string, ivsrt.FeedInfo, func(), error) {
	if e.beforeFeed != nil {
		e.beforeFeed(kinds)
	}
	answer, info, feedID, err := e.there.AnswerEdgeFeed(ctx, stage, id, kinds, offer, notify)
	if err != nil {
		return "", ivsrt.FeedInfo{}, nil, err
	}
	e.mu.Lock()
	e.feeds[kinds[0]] = feedID
	e.mu.Unlock()
	return answer, info, func() { e.there.EndFeed(feedID) }, nil
}

func (e hookedEdges) SubscriberEnded(ctx context.Context, stage ivsrt.StageARN, id string) error {
	if e.ended != nil {
		e.ended(id)
	}
	if e.lost {
		return context.DeadlineExceeded
	}
	return e.inProcessEdges.SubscriberEnded(ctx, stage, id)
}

func (h *harness) hookedEdgePeer(stage string, hooks hookedEdges) (*harness, hookedEdges) {
	hosted := func(s ivsrt.StageARN) bool { return s == ivsrt.StageARN(stage) }
	p := h.peer(hosted)
	hooks.inProcessEdges = inProcessEdges{inProcessFeeds: inProcessFeeds{there: h.sfu, hostedThere: hosted},
		node: "edge", startedAt: time.Now().UTC().Truncate(time.Millisecond)}
	hooks.mu, hooks.feeds = &sync.Mutex{}, map[string]string{}
	p.sfu.SetRemoteFeeds(hooks)
	return p, hooks
}

// within polls f for d.
func within(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEdgePullEndedWhileJoined: the origin's end of a pull's feed ends
// (as when the connection between the nodes fails) while the publisher
// goes on. A subscriber arriving while the edge is still ending the
// pull's subscribers (each ending waits on the origin) gets a new pull,
// not the dead one.
func TestEdgePullEndedWhileJoined(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("edge-dead-pull")
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	edge, hooks := h.hookedEdgePeer(stage, hookedEdges{ended: func(string) {
		entered <- struct{}{}
		<-release // the origin is slow to answer (NATS request, up to 10 s)
	}})

	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	pub := h.mustPublish(aws.ToString(alice.Token), h264, true)
	defer pub.halt()
	var olds []*subscriber
	for i := range 2 {
		tok := h.token(stage, fmt.Sprintf("viewer%d", i), types.ParticipantTokenCapabilitySubscribe)
		olds = append(olds, edge.mustSubscribe(aws.ToString(tok.Token), aliceID))
	}
	for _, s := range olds {
		s.waitFor(webrtc.RTPCodecTypeVideo, 30)
	}

	// The origin's end of the video feed ends (as when the connection
	// between the nodes fails): the edge's pull gets FeedEnded.
	hooks.mu.Lock()
	videoFeed := hooks.feeds["video"]
	hooks.mu.Unlock()
	h.sfu.EndFeed(videoFeed)
	select {
	case <-entered:
	case <-time.After(testTimeout):
		t.Fatal("the edge did not start ending the dead pull's subscribers")
	}

	// A new subscriber arrives meanwhile.
	tok := h.token(stage, "late", types.ParticipantTokenCapabilitySubscribe)
	late := edge.mustSubscribe(aws.ToString(tok.Token), aliceID)
	// What it got so far may be the source's cached keyframe: count
	// what arrives from now on.
	before := len(late.packets(webrtc.RTPCodecTypeVideo))
	close(release)
	for _, s := range olds {
		wait(t, s.gone, "an old subscriber of the dead pull to be dropped")
	}

	err := within(10*time.Second, func() error {
		if n := len(late.packets(webrtc.RTPCodecTypeVideo)) - before; n < 60 {
			return fmt.Errorf("%d new video packets", n)
		}
		return nil
	})
	st := edge.sfu.MediaStats()
	t.Logf("edge: %d pulls (%d opened), %d subscriptions; late subscriber: %d audio, %d video packets",
		st.EdgePulls, st.EdgePullsOpened, st.EdgeSubscriptions,
		len(late.packets(webrtc.RTPCodecTypeAudio)), len(late.packets(webrtc.RTPCodecTypeVideo)))
	if err != nil {
		t.Errorf("a subscriber that joined while the pull's feed was ending gets no new video (%v): it was given the dead pull", err)
	}
}

// TestEdgePullOpenedForNobody: the origin ends a subscription (its
// participant is disconnected) while the edge opens the pull for it: the
// subscriber is told its session ended, and the pull and the origin's
// feed close rather than run for nobody.
func TestEdgePullOpenedForNobody(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("edge-opener")
	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	var edge *harness
	var once sync.Once
	edge, _ = h.hookedEdgePeer(stage, hookedEdges{beforeFeed: func([]string) {
		once.Do(func() {
			// The participant is disconnected at the origin meanwhile.
			if err := h.sfu.DisconnectParticipant(context.Background(), ivsrt.StageARN(stage),
				ivsrt.ParticipantID(aws.ToString(viewer.ParticipantId)), "bye"); err != nil {
				t.Error(err)
			}
			// Its end notice reaches the edge before the pull is open.
			if err := within(5*time.Second, func() error {
				if st := edge.sfu.MediaStats(); st.EdgeSubscriptions != 0 {
					return fmt.Errorf("%d edge subscriptions", st.EdgeSubscriptions)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}})
	pub := h.mustPublish(aws.ToString(alice.Token), h264, true)
	defer pub.halt()

	_, err := edge.subscribe(aws.ToString(viewer.Token), aliceID)
	t.Logf("subscribe: %v", err)

	err = within(10*time.Second, func() error {
		if st, o := edge.sfu.MediaStats(), h.sfu.MediaStats(); st.EdgePulls != 0 || o.FeedsOut != 0 {
			return fmt.Errorf("%d pulls on the edge, %d subscriptions; %d feeds out of the origin",
				st.EdgePulls, st.EdgeSubscriptions, o.FeedsOut)
		}
		return nil
	})
	if err != nil {
		t.Errorf("a pull whose only subscriber ended while it opened stays open: %v", err)
	}
}

// TestEdgeAdmissionLost: the origin admits a subscriber but its answer
// does not reach the edge in time. The edge refuses the subscriber and
// tells the origin it ended, which leaves no subscription, nor
// participant, at the origin for nobody.
func TestEdgeAdmissionLost(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("edge-ghost")
	edge, _ := h.hookedEdgePeer(stage, hookedEdges{afterAdmit: func(adm ivsrt.EdgeAdmission, err error) (ivsrt.EdgeAdmission, error) {
		if err != nil {
			return adm, err
		}
		return ivsrt.EdgeAdmission{}, fmt.Errorf("cluster: edgeAdmit on node origin: %w", context.DeadlineExceeded)
	}})
	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	pub := h.mustPublish(aws.ToString(alice.Token), h264, true)
	defer pub.halt()

	viewer := h.token(stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
	viewerID := aws.ToString(viewer.ParticipantId)
	if _, err := edge.subscribe(aws.ToString(viewer.Token), aliceID); err == nil {
		t.Fatal("subscribe succeeded")
	} else {
		t.Logf("subscribe: %v", err)
	}
	session := h.activeSession(stage)
	err := within(10*time.Second, func() error {
		places := h.sfu.SubscriptionPlaces(ivsrt.StageARN(stage), "origin")
		if i := slices.IndexFunc(places, func(p ivsrt.SubscriptionPlace) bool { return string(p.Subscriber) == viewerID }); i >= 0 {
			return fmt.Errorf("the origin still has the subscription, served by %q; events %q", places[i].Node,
				h.history(stage, session, viewerID))
		}
		return nil
	})
	if err != nil {
		t.Errorf("an admission whose reply was lost is never ended: %v", err)
	}
}

// TestEdgeReconcile: when an end is lost on the way between origin and
// edge (NATS delivers at most once), the origin's list of what the edge
// serves and the edge's answer mend it either way: a subscription the
// edge dropped is ended at the origin, one the origin ended is dropped at
// the edge.
func TestEdgeReconcile(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("edge-reconcile")
	edge, _ := h.hookedEdgePeer(stage, hookedEdges{lost: true})
	alice := h.token(stage, "alice")
	aliceID := aws.ToString(alice.ParticipantId)
	pub := h.mustPublish(aws.ToString(alice.Token), h264, true)
	defer pub.halt()
	var subs []*subscriber
	var ids []string
	for i := range 2 {
		tok := h.token(stage, fmt.Sprintf("viewer%d", i), types.ParticipantTokenCapabilitySubscribe)
		ids = append(ids, aws.ToString(tok.ParticipantId))
		subs = append(subs, edge.mustSubscribe(aws.ToString(tok.Token), aliceID))
	}
	sessionID := func(s *subscriber) string { return s.location[strings.LastIndex(s.location, "/")+1:] }
	session := h.activeSession(stage)
	// Past any grace: the edge's subscriptions were all admitted long
	// enough ago.
	later := time.Now().Add(time.Hour)

	// The first ends at the edge, the origin not hearing of it.
	if code := edge.delete(subs[0].location); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
	// The origin ends the second without the edge hearing of it.
	if err := h.sfu.EndEdgeSubscription(testContext(t), ivsrt.StageARN(stage), sessionID(subs[1])); err != nil {
		t.Fatal(err)
	}
	listed := h.sfu.EdgeSubscriptionsOf("edge", later)
	if got := listed[ivsrt.StageARN(stage)]; !slices.Equal(got, []string{sessionID(subs[0])}) {
		t.Fatalf("the origin lists %v for the edge, want the first viewer's session", got)
	}
	missing := edge.sfu.ConfirmEdgeSubscriptions(listed, later)
	if !slices.Equal(missing, []string{sessionID(subs[0])}) {
		t.Fatalf("the edge says it misses %v, want the first viewer's session", missing)
	}
	for _, id := range missing {
		if err := h.sfu.EndEdgeSubscription(testContext(t), ivsrt.StageARN(stage), id); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range subs {
		wait(t, s.gone, fmt.Sprintf("viewer %d's connection to close", i))
		eventually(t, fmt.Sprintf("SUBSCRIBE_STOPPED of viewer %d", i), func() error {
			if got := h.history(stage, session, ids[i]); !slices.Contains(got, "SUBSCRIBE_STOPPED remote="+aliceID) {
				return fmt.Errorf("events %q", got)
			}
			return nil
		})
	}
	if st := edge.sfu.MediaStats(); st.EdgeSubscriptions != 0 {
		t.Errorf("%d edge subscriptions left", st.EdgeSubscriptions)
	}
}
