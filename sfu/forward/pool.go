package forward

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The writers. A goroutine per subscriber, woken for every packet, spends
// more on the scheduler than on forwarding once a publisher has a hundred
// subscribers. Instead a subscriber with something queued is put on one
// run queue, shared by every source, and a few worker goroutines — as many
// as the Go scheduler runs at once — each take a subscriber and handle all
// it has queued. A subscriber is on the run queue at most once and handled
// by one worker at a time, so its stream state needs no lock.
//
// Writes to a subscriber do not block on UDP (the sockets queue and drop),
// but a write may stall on another transport (ICE over TCP to a peer that
// stopped reading). So that such a subscriber holds back nobody else, a
// worker busy with one subscriber for longer than stuckAfter no longer
// counts: while work waits, it is checked every stuckAfter, and another
// worker woken or started in place of those stuck. Idle workers end after
// idleFor.

const (
	stuckAfter = 20 * time.Millisecond
	idleFor    = time.Second
	maxWorkers = 256
)

type pool struct {
	mu      sync.Mutex
	ready   []*DownTrack // subscribers with work, in the order they got it
	readyAt []int64      // when each was put there, from epoch
	head    int          // ready[head:] is the queue
	idle    []*worker    // waiting for work, the latest last
	all     []*worker
	base    int         // workers to keep when none is stuck
	watch   *time.Timer // checks for stuck workers while work waits; nil when not armed

	epoch time.Time
}

type worker struct {
	wake  chan struct{} // capacity 1
	since atomic.Int64  // when its current subscriber was taken, from epoch; 0 when it has none
	held  []Batcher     // held since the worker last ran out of work
}

// hold holds b until the worker runs out of work, if it does not already.
func (w *worker) hold(b Batcher) {
	for _, h := range w.held {
		if h == b {
			return
		}
	}
	b.Hold()
	w.held = append(w.held, b)
}

// release lets go of what the worker holds: what it wrote leaves now.
func (w *worker) release() {
	for i, b := range w.held {
		b.Release()
		w.held[i] = nil
	}
	w.held = w.held[:0]
}

// writers is the pool every source's subscribers are written by.
var writers = &pool{base: runtime.GOMAXPROCS(0), epoch: time.Now()}

func (p *pool) now() int64 { return int64(time.Since(p.epoch)) + 1 }

// wakePer is how many waiting subscribers call for one more worker. A
// worker writes a copy in a few microseconds, and every wake-up of a
// goroutine costs about as much as several copies: a packet for a hundred
// subscribers is cheaper written by one worker (while the sockets' senders
// send on the other cores) than split between two.
const wakePer = 128

// lagAfter is how long a subscriber may wait on the run queue before every
// worker is put to work, whatever their number: on a busy machine one
// worker gets too small a share of a core to keep up alone.
const lagAfter = 5 * time.Millisecond

// schedule puts subscribers that got work on the run queue and wakes or
// starts workers for them.
func (p *pool) schedule(ds ...*DownTrack) {
	p.mu.Lock()
	p.ready = append(p.ready, ds...)
	now := p.now()
	for range ds {
		p.readyAt = append(p.readyAt, now)
	}
	wake := p.dispatch()
	p.mu.Unlock()
	for _, w := range wake {
		w.wake <- struct{}{}
	}
}

// dispatch wakes (returning them, for the caller to wake once p.mu is
// released) or starts workers for what waits on the run queue: one for
// every wakePer subscribers, not counting workers stuck on one. While
// work waits, a timer calls it again every stuckAfter, so that a worker
// that gets stuck meanwhile is replaced. p.mu is held.
func (p *pool) dispatch() []*worker {
	queued := len(p.ready) - p.head
	if queued == 0 {
		return nil
	}
	now := p.now()
	stuck := 0
	for _, w := range p.all {
		if since := w.since.Load(); since != 0 && time.Duration(now-since) >= stuckAfter {
			stuck++
		}
	}
	active := len(p.all) - len(p.idle) - stuck
	wanted := (queued + wakePer - 1) / wakePer
	if time.Duration(now-p.readyAt[p.head]) > lagAfter {
		wanted = max(wanted, p.base)
	}
	var wake []*worker
	for active < wanted && len(p.idle) > 0 {
		wake = append(wake, p.idle[len(p.idle)-1])
		p.idle = p.idle[:len(p.idle)-1]
		active++
	}
	if active < wanted && (len(p.all)-stuck < p.base || active == 0) {
		p.start()
	}
	if p.watch == nil {
		p.watch = time.AfterFunc(stuckAfter, p.check)
	}
	return wake
}

// start starts a worker. p.mu is held.
func (p *pool) start() {
	if len(p.all) >= maxWorkers {
		return
	}
	w := &worker{wake: make(chan struct{}, 1)}
	p.all = append(p.all, w)
	go p.work(w)
}

// check is dispatch again, stuckAfter after work was left waiting.
func (p *pool) check() {
	p.mu.Lock()
	p.watch = nil
	wake := p.dispatch()
	p.mu.Unlock()
	for _, w := range wake {
		w.wake <- struct{}{}
	}
}

// next returns the next subscriber to handle, waiting for one; false when
// the worker has been idle long enough to end. Before waiting, the worker
// releases what it holds.
func (p *pool) next(w *worker, idle *time.Timer) (*DownTrack, bool) {
	p.mu.Lock()
	for len(p.ready) == p.head {
		if len(w.held) > 0 {
			p.mu.Unlock()
			w.release()
			p.mu.Lock()
			continue
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		idle.Reset(idleFor)
		select {
		case <-w.wake:
			idle.Stop()
			p.mu.Lock()
			continue
		case <-idle.C:
		}
		p.mu.Lock()
		if i := indexOf(p.idle, w); i >= 0 {
			// Nobody woke it: it ends.
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.all = deleteWorker(p.all, w)
			p.mu.Unlock()
			return nil, false
		}
		// Woken just as it timed out: the token is on its way.
		p.mu.Unlock()
		<-w.wake
		p.mu.Lock()
	}
	d := p.ready[p.head]
	p.ready[p.head] = nil
	p.head++
	switch {
	case p.head == len(p.ready):
		p.ready, p.readyAt, p.head = p.ready[:0], p.readyAt[:0], 0
	case p.head >= 1024 && 2*p.head >= len(p.ready):
		// Never empty under load: move the queue down rather than grow.
		n := copy(p.ready, p.ready[p.head:])
		copy(p.readyAt, p.readyAt[p.head:])
		clear(p.ready[n:])
		p.ready, p.readyAt, p.head = p.ready[:n], p.readyAt[:n], 0
	}
	w.since.Store(p.now())
	p.mu.Unlock()
	return d, true
}

// work handles subscribers until the worker has been idle for idleFor.
func (p *pool) work(w *worker) {
	idle := time.NewTimer(idleFor)
	idle.Stop()
	for {
		d, ok := p.next(w, idle)
		if !ok {
			return
		}
		if b := d.src.batcher; b != nil {
			w.hold(b)
		}
		more := d.drain()
		w.since.Store(0)
		if more {
			p.schedule(d) // to the back of the queue: others go first
		}
	}
}

func indexOf(ws []*worker, w *worker) int {
	for i, x := range ws {
		if x == w {
			return i
		}
	}
	return -1
}

func deleteWorker(ws []*worker, w *worker) []*worker {
	if i := indexOf(ws, w); i >= 0 {
		ws[i] = ws[len(ws)-1]
		ws[len(ws)-1] = nil
		return ws[:len(ws)-1]
	}
	return ws
}
