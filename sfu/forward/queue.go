package forward

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// itemKind is what a subscriber's writer is asked to do.
type itemKind uint8

const (
	itemPacket  itemKind = iota // forward an upstream packet
	itemStart                   // start the stream: Start was called
	itemNACK                    // retransmit what the subscriber lost
	itemBarrier                 // close done once everything before is handled
)

// item is one entry of a subscriber's queue.
type item struct {
	kind   itemKind
	resync bool // packets were dropped just before this one
	p      *rtp.Packet
	u      *Upstream
	at     time.Time
	nack   *rtcp.TransportLayerNack
	done   chan struct{}
}

// queue is a subscriber's bounded queue: many goroutines push, one writer
// takes everything queued at once. A push never waits: what does not fit
// is dropped, and the next item that does is marked to start the stream
// again. The mutex is a leaf and is never held across a write.
type queue struct {
	mu      sync.Mutex
	items   []item
	limit   int
	dropped bool // an item was dropped since the last one queued
	closed  bool
	waiting bool          // the writer waits on wake
	wake    chan struct{} // capacity 1
	drops   uint64        // items dropped for want of room, ever
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, wake: make(chan struct{}, 1)}
}

// push queues it and reports whether it was taken: false if the queue is
// full or closed. Barriers and starts are always taken.
func (q *queue) push(it item) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if len(q.items) >= q.limit && (it.kind == itemPacket || it.kind == itemNACK) {
		q.drops++
		if it.kind == itemPacket {
			q.dropped = true
		}
		q.mu.Unlock()
		return false
	}
	if q.dropped && it.kind == itemPacket {
		it.resync, q.dropped = true, false
	}
	q.items = append(q.items, it)
	wake := q.waiting
	q.waiting = false
	q.mu.Unlock()
	if wake {
		q.wake <- struct{}{} // cannot block: only one waiter, one token
	}
	return true
}

// take waits for items and returns all of them, leaving spare (emptied)
// as the queue's next buffer. It returns false once the queue is closed;
// what was still queued is dropped then.
func (q *queue) take(spare []item) ([]item, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.items) > 0 {
			out := q.items
			q.items = spare[:0]
			q.mu.Unlock()
			return out, true
		}
		q.waiting = true
		q.mu.Unlock()
		<-q.wake
	}
}

// close stops the queue: the writer returns, pushes are refused.
func (q *queue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	for i := range q.items {
		if q.items[i].done != nil {
			close(q.items[i].done)
		}
	}
	q.items = nil
	wake := q.waiting
	q.waiting = false
	q.mu.Unlock()
	if wake {
		q.wake <- struct{}{}
	}
}

// dropCount returns how many items were dropped for want of room.
func (q *queue) dropCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.drops
}
