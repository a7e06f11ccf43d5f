package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// fakeMedia is a media plane serving a set number of subscriptions.
type fakeMedia struct{ subscriptions int }

func (fakeMedia) DisconnectParticipant(context.Context, ivsrt.StageARN, ivsrt.ParticipantID, string) error {
	return nil
}
func (fakeMedia) CloseStage(context.Context, ivsrt.StageARN) error   { return nil }
func (fakeMedia) HostedStages() []ivsrt.StageARN                     { return nil }
func (fakeMedia) ParticipantCount() int                              { return 0 }
func (fakeMedia) EvictStage(context.Context, ivsrt.StageARN, string) {}
func (m fakeMedia) SubscriptionCount() int                           { return m.subscriptions }
func (fakeMedia) FailInterruptedRecordings(context.Context, ivsrt.StageARN, ivsrt.SessionID) error {
	return nil
}

// TestPlaceSubscriber: a node serves subscribers while it has room, then
// sends them to the stage's host, then to the node with the fewest
// subscriptions that has room, counting each placement at once; draining
// nodes take none; a full cluster refuses.
func TestPlaceSubscriber(t *testing.T) {
	now := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	node := func(limit, local int, draining bool, others ...*ivsrt.Node) *Node {
		n := &Node{cfg: Config{NodeID: "self", MaxSubscriptions: limit, HeartbeatInterval: time.Second},
			now: func() time.Time { return now }, local: fakeMedia{local}, nodesAt: now,
			nodes: map[string]*ivsrt.Node{"self": {ID: "self", Subscriptions: local, Draining: draining}}}
		n.draining.Store(draining)
		for _, o := range others {
			n.nodes[o.ID] = o
		}
		return n
	}
	ctx := context.Background()
	place := func(n *Node, host string) string {
		t.Helper()
		got, err := n.placeSubscriber(ctx, host)
		if err != nil {
			t.Fatalf("placeSubscriber: %v", err)
		}
		return got
	}

	if got := place(node(0, 5000, false, &ivsrt.Node{ID: "host"}), "host"); got != "self" {
		t.Errorf("no limit: placed on %s, want self", got)
	}
	if got := place(node(2, 1, false, &ivsrt.Node{ID: "host"}), "host"); got != "self" {
		t.Errorf("room here: placed on %s, want self", got)
	}

	n := node(2, 2, false, &ivsrt.Node{ID: "host", Subscriptions: 1}, &ivsrt.Node{ID: "c", Subscriptions: 1},
		&ivsrt.Node{ID: "d", Subscriptions: 0, Draining: true})
	for i, want := range []string{"host", "c"} {
		if got := place(n, "host"); got != want {
			t.Errorf("placement %d: %s, want %s", i, got, want)
		}
	}
	_, err := n.placeSubscriber(ctx, "host")
	var unavailable *unavailableError
	if !errors.As(err, &unavailable) {
		t.Errorf("a full cluster: got %v, want unavailable", err)
	}

	// A draining node with room still sends new subscribers away.
	if got := place(node(10, 0, true, &ivsrt.Node{ID: "host", Subscriptions: 3}), "host"); got != "host" {
		t.Errorf("draining: placed on %s, want host", got)
	}
	// The host draining, the least loaded of the others.
	n = node(3, 3, false, &ivsrt.Node{ID: "host", Draining: true}, &ivsrt.Node{ID: "b", Subscriptions: 5},
		&ivsrt.Node{ID: "c", Subscriptions: 2})
	if got := place(n, "host"); got != "c" {
		t.Errorf("host draining: placed on %s, want c", got)
	}
}
