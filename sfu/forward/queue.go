package forward

import (
	"sync"
	"sync/atomic"
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
	itemPad                     // send padding for a bandwidth probe
)

// item is one entry of a subscriber's queue.
type item struct {
	kind   itemKind
	resync bool // packets were dropped just before this one
	p      *rtp.Packet
	l      *Layer // of the packet
	at     time.Time
	nack   *rtcp.TransportLayerNack
	pad    int // bytes of padding to send
	done   chan struct{}
}

// queue is a subscriber's bounded queue: many goroutines push, the
// worker handling the subscriber takes everything queued at once. A push
// never waits: what does not fit is dropped, and the next item that does
// is marked to start the stream again. The mutex is a leaf and is never
// held across a write.
type queue struct {
	mu        sync.Mutex
	items     []item
	limit     int
	dropped   bool // an item was dropped since the last one queued
	closed    bool
	scheduled bool           // on the run queue or being handled
	drops     uint64         // items dropped for want of room, ever
	full      *atomic.Uint64 // the server's count of such drops
}

func newQueue(limit int, full *atomic.Uint64) *queue {
	return &queue{limit: limit, full: full}
}

// push queues it. taken is false if the queue is full or closed (barriers
// and starts always fit); schedule is true if the subscriber must be put
// on the run queue, which the caller then does.
func (q *queue) push(it item) (taken, schedule bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false, false
	}
	if len(q.items) >= q.limit && (it.kind == itemPacket || it.kind == itemNACK) {
		q.drops++
		q.full.Add(1)
		if it.kind == itemPacket {
			q.dropped = true
		}
		return false, false
	}
	if q.dropped && it.kind == itemPacket {
		it.resync, q.dropped = true, false
	}
	q.items = append(q.items, it)
	if q.scheduled {
		return true, false
	}
	q.scheduled = true
	return true, true
}

// take returns everything queued, leaving spare (emptied) as the queue's
// next buffer; false once the queue is closed.
func (q *queue) take(spare []item) ([]item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.scheduled = false
		return nil, false
	}
	out := q.items
	q.items = spare[:0]
	return out, true
}

// finish ends a turn of the worker: it reports whether more was queued
// meanwhile, in which case the subscriber stays scheduled.
func (q *queue) finish() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || len(q.items) == 0 {
		q.scheduled = false
		return false
	}
	return true
}

// close stops the queue: what is queued is dropped, pushes are refused.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	for i := range q.items {
		if q.items[i].done != nil {
			close(q.items[i].done)
		}
	}
	q.items = nil
}

// dropCount returns how many items were dropped for want of room.
func (q *queue) dropCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.drops
}
