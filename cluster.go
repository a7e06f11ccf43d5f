package ivsrt

import (
	"context"
	"time"
)

// Node is one ivsrt process of a cluster: every node serves the API, and
// each stage's media lives on one node, its host.
type Node struct {
	ID  string
	URL string // where other nodes reach its HTTP listener (media paths are proxied there)

	// Load, as the node last reported it.
	Participants  int     // connected participants
	Subscriptions int     // subscriptions served, as an edge too
	CPU           float64 // share of one core used, 0..cores

	// Draining: it takes no new stages, and lets those it hosts end.
	Draining bool

	StartedAt   time.Time
	HeartbeatAt time.Time // when it last reported; set by the store's clock
}

// StageHost is a stage's media placement: the node hosting it, until the
// lease runs out unless renewed.
type StageHost struct {
	StageARN   StageARN
	NodeID     string
	LeaseUntil time.Time
}

// ClusterStore is what the nodes of a cluster share besides the Store:
// who is alive with what load, where each stage's media lives, and the
// secrets every node must hold alike. Times are the store's clock.
type ClusterStore interface {
	// Heartbeat records node as alive now, with its URL and load.
	Heartbeat(ctx context.Context, node *Node) error

	// ListNodes returns the nodes that have sent a heartbeat since
	// aliveSince, by ID.
	ListNodes(ctx context.Context, aliveSince time.Time) ([]*Node, error)

	// ClaimStageHost makes nodeID the stage's host until leaseUntil if the
	// stage has no host or its host's lease has run out (or the host is
	// nodeID already, whose lease it then extends), and returns the host
	// after the call: nodeID, or the other node holding a live lease.
	ClaimStageHost(ctx context.Context, stage StageARN, nodeID string, leaseUntil time.Time) (*StageHost, error)

	// GetStageHost returns the stage's host, ENOTFOUND if it has none
	// (never placed, released, or taken over as orphaned). The lease may
	// have run out.
	GetStageHost(ctx context.Context, stage StageARN) (*StageHost, error)

	// RenewStageHosts extends to leaseUntil the leases nodeID holds on
	// stages, and returns the stages among them it no longer hosts.
	RenewStageHosts(ctx context.Context, nodeID string, stages []StageARN, leaseUntil time.Time) (lost []StageARN, err error)

	// ReleaseStageHost gives up nodeID's hosting of the stage, if it has it.
	ReleaseStageHost(ctx context.Context, stage StageARN, nodeID string) error

	// TakeOrphanedStages removes and returns the placements whose lease ran
	// out before now and whose node has sent no heartbeat since
	// deadBefore: stages whose host died. Each is returned to one caller
	// only, so one survivor cleans up after it.
	TakeOrphanedStages(ctx context.Context, now, deadBefore time.Time) ([]*StageHost, error)

	// TakeNodeStages removes and returns the placements nodeID holds,
	// whatever their leases: a node that starts takes back those its
	// previous run left (its media plane is empty), to end their sessions.
	TakeNodeStages(ctx context.Context, nodeID string) ([]*StageHost, error)

	// SharedSecret returns the secret kept under name, storing create()'s
	// the first time, so that every node gets the same one.
	SharedSecret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)

	// TryLead makes the caller the holder of the lock named name, for as
	// long as it keeps its connection to the store, if nobody holds it.
	// ok reports whether it does; lost is closed if it stops holding it
	// (the connection broke); release gives it up.
	TryLead(ctx context.Context, name string) (ok bool, lost <-chan struct{}, release func(), err error)
}
