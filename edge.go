package ivsrt

import (
	"context"
	"time"
)

// A stage across nodes: the stage's host is its origin, which receives its
// publishers' media and keeps its story (sessions, participants, events);
// any other node may serve subscribers as an edge. An edge pulls each
// publication it needs from the origin once, over a node-to-node feed,
// and fans it out to its own subscribers. The origin admits each edge
// subscription as it would one of its own, records its events, and ends
// it when the participant, the publication or the stage ends; the edge
// carries its media.

// EdgeSubscription is a WHEP subscription an edge serves, as its origin
// admits it.
type EdgeSubscription struct {
	// ID is the WHEP session's id, which names the edge node.
	ID string
	// Token is the participant token the subscriber presented, checked
	// again by the origin, which alone knows the stage's participants.
	Token  string
	Remote ParticipantID // the publisher subscribed to
	Client ClientDetails
	// Kinds the subscriber's offer receives: "audio", "video"; none
	// said, both.
	Kinds []string

	// The edge node, and when it started: a subscription of an edge that
	// died, or restarted, is ended by the origin.
	Node          string
	NodeStartedAt time.Time
}

// EdgeAdmission is what the origin tells an edge of a subscription it
// admitted.
type EdgeAdmission struct {
	Kinds   []string  // of the publication: "audio", "video"
	Replica bool      // the publisher is a replica
	Video   VideoWish // what the subscriber asked of the video so far
}

// VideoWish is what a subscriber asks of a publisher's video through its
// events WebSocket, which the origin serves: the size it shows it at
// (0×0: no limit), and the simulcast layer it prefers ("": none).
type VideoWish struct {
	Width          int    `json:"width,omitempty"`
	Height         int    `json:"height,omitempty"`
	PreferredLayer string `json:"preferredLayer,omitempty"`
}

// EdgeNotice is what the origin tells the edge serving one of its
// subscriptions: that it ended, or what the subscriber now asks of the
// video.
type EdgeNotice struct {
	Ended bool       `json:"ended,omitempty"`
	Video *VideoWish `json:"video,omitempty"`
}

// EdgeRefusal is the origin's refusal of an edge subscription: the WHEP
// status, code and message the subscriber gets, as it would have from the
// origin itself.
type EdgeRefusal struct {
	Status  int
	Code    string
	Message string
}

func (e *EdgeRefusal) Error() string { return e.Code + ": " + e.Message }

// EdgeNodes tells which edge nodes are alive, by id with the time each
// started, so that an origin ends the subscriptions of edges that are
// gone.
type EdgeNodes map[string]time.Time

// EdgeOrigin is the origin's side of edge subscriptions: what the media
// plane hosting a stage does for the edges serving its subscribers.
type EdgeOrigin interface {
	// AdmitEdgeSubscription admits sub to the stage as a subscription of
	// the token's participant to sub.Remote, registered under sub.ID, or
	// refuses it with an *EdgeRefusal. notify is told, in order and
	// without a lock held, what the subscriber asks of the video, and
	// when the origin ends the subscription (the participant left or lost
	// the capability, the publication ended, the stage closed).
	AdmitEdgeSubscription(ctx context.Context, stage StageARN, sub *EdgeSubscription, notify func(EdgeNotice)) (EdgeAdmission, error)

	// EdgeSubscriptionStarted records that the edge's subscriber is
	// connected: SUBSCRIBE_STARTED.
	EdgeSubscriptionStarted(ctx context.Context, stage StageARN, id string) error

	// EdgeSubscriptionLayer records the simulcast layer the edge sends
	// the subscriber ("" none), which the origin reports to the
	// subscriber's events WebSocket.
	EdgeSubscriptionLayer(ctx context.Context, stage StageARN, id, rid string) error

	// EndEdgeSubscription ends a subscription the edge no longer serves.
	EndEdgeSubscription(ctx context.Context, stage StageARN, id string) error

	// PruneEdgeSubscriptions ends the edge subscriptions whose node is not
	// among alive, or started at another time than alive says.
	PruneEdgeSubscriptions(ctx context.Context, alive EdgeNodes)

	// EdgeSubscriptionsOf returns the ids of the subscriptions node
	// serves, by stage, of those admitted before admittedBefore: what the
	// origin asks node to confirm, so that the two agree again after a
	// notice lost on the way.
	EdgeSubscriptionsOf(node string, admittedBefore time.Time) map[StageARN][]string
}

// SubscriptionPlace is a live subscription of a stage and the node
// serving its media: the stage's host, or an edge.
type SubscriptionPlace struct {
	Subscriber ParticipantID `json:"subscriber"`
	Publisher  ParticipantID `json:"publisher"`
	Node       string        `json:"node"`
}
