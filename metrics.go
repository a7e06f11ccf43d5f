package ivsrt

import "time"

// MediaStats is what a media plane is doing now and has done since it
// started: what its metrics report. Counters only grow.
type MediaStats struct {
	// Now.
	Stages        int // stages with a live session here
	Participants  int // connected participants
	Publishers    int // participants publishing
	Subscriptions int // served here: one per subscriber and publisher it receives

	// A stage across nodes (edge.go): publications pulled here from the
	// nodes hosting their stages, with the subscriptions served from them
	// (counted in Subscriptions too); and feeds of publications here
	// that other nodes pull.
	EdgePulls, EdgeSubscriptions, FeedsOut int
	EdgePullsOpened                        uint64 // since start

	// Since start. Out counts every copy sent to a subscriber,
	// retransmissions included.
	PacketsIn, BytesIn     uint64
	PacketsOut, BytesOut   uint64
	Retransmitted          uint64 // packets sent again for subscribers' NACKs
	ResendRepeated         uint64 // not sent again: it was, less than a round trip before
	ResendOverBudget       uint64 // not sent again: the subscriber's retransmission budget was spent
	NACKs                  uint64 // NACK messages from subscribers
	KeyframeRequestsIn     uint64 // PLIs and FIRs from subscribers
	KeyframeRequestsOut    uint64 // PLIs sent to publishers
	DroppedQueueFull       uint64 // not sent: the subscriber had fallen behind
	DroppedWaitingKeyframe uint64 // not sent: the subscriber waited for a keyframe
	DroppedSocket          uint64 // not sent: the socket's send queue was full
	Padding                uint64 // packets sent to probe subscribers' bandwidth
	LayerSwitches          uint64 // subscribers moved to another simulcast layer
}

// Reception is what one receiver report of a subscriber says of one track
// (RFC 3550, section 6.4.2).
type Reception struct {
	Kind         string        // "audio" or "video"
	FractionLost float64       // of the packets expected since its last report, 0 to 1
	Jitter       time.Duration // interarrival jitter
	RTT          time.Duration // round-trip time; 0 when the report cannot tell
}

// ReceptionObserver is told of every receiver report subscribers send. It
// must not block.
type ReceptionObserver interface {
	ObserveReception(Reception)
}

// StoreObserver is told how long each write transaction of a store took
// and how it ended: "commit", "rollback" (it found it had nothing to write,
// a stage not found say) or "error". It must not block.
type StoreObserver interface {
	ObserveStoreWrite(took time.Duration, outcome string)
}
