// Package lossy is a UDP proxy that stands between WebRTC clients and a
// media server on the loopback interface and makes the network between
// them bad: it drops, delays, jitters and reorders datagrams, and can cut
// everything for a while. Tests and benchmarks use it to see how the media
// plane recovers (NACK, PLI).
//
// It can also make a direction a bottleneck, as a slow access link is
// (Link.Rate): datagrams leave it one after another at the link's rate and
// wait their turn in a buffer of bounded depth (Link.Queue), which drops
// what arrives when it is full. A sender over the rate sees its datagrams
// delayed by the queue and then lost, as congestion control expects of a
// real link; the loopback interface has no such limit, and no netem here to
// impose one.
//
// A client is pointed at the proxy's address instead of the server's (its
// ICE candidate rewritten in the SDP answer); the proxy forwards each
// client's datagrams to the server from a socket of its own for that client,
// so the server sees one address per client and its replies come back to
// the right one.
//
// RTP and RTCP are told apart by their first bytes (RFC 7983, RFC 5761).
// SRTP leaves the RTP header and the first RTCP header in the clear, so the
// proxy can count retransmissions (an SSRC and sequence number seen before)
// and NACK and PLI requests without the keys.
package lossy

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Direction is one way through the proxy.
type Direction int

const (
	// Up is from the clients to the server.
	Up Direction = iota
	// Down is from the server to the clients.
	Down
)

func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// Link is what the network does to the datagrams of one direction.
type Link struct {
	// Loss is the fraction of datagrams dropped at random, from 0 to 1.
	Loss float64
	// Delay is added to every datagram.
	Delay time.Duration
	// Jitter varies each datagram's delay uniformly within ±Jitter.
	Jitter time.Duration
	// Reorder lets a datagram overtake the ones before it when its delay is
	// shorter. Without it the order is kept: a datagram leaves no sooner
	// than the one before.
	Reorder bool
	// Rate caps the direction at this many bits a second, all clients
	// together, as one access link does; 0 leaves it uncapped. After its
	// Delay and Jitter, a datagram waits for the ones before it and then
	// takes its serialization time to leave: its size plus 28 bytes of IPv4
	// and UDP headers, in bits, over Rate. Link-layer framing is not counted.
	Rate int
	// Queue is the depth of the link's buffer, in time: the longest a
	// datagram may wait at Rate for the ones before it to leave. One that
	// would wait longer is dropped (drop-tail). 0 means DefaultQueue; it has
	// no use without Rate.
	Queue time.Duration
}

// DefaultQueue is the buffer of a link with a Rate and no Queue: deep
// enough to smooth the bursts of a video frame's packets, shallow enough
// that a sender over the rate soon sees losses as well as delay.
const DefaultQueue = 200 * time.Millisecond

// Stats counts the datagrams of one direction.
type Stats struct {
	Datagrams int // received from the senders
	// Dropped are the datagrams not forwarded: lost at random, in a
	// blackout or for good, or at a full queue.
	Dropped int
	// QueueDropped are the datagrams dropped at the tail of a full queue
	// (Link.Queue), counted in Dropped as well.
	QueueDropped int
	// MaxQueueDelay is the longest a datagram waited at the bottleneck for
	// the ones before it to leave, without its own serialization time. It
	// exceeds Link.Queue only when the rate was lowered with a queue
	// already full, as the datagrams in it stay.
	MaxQueueDelay time.Duration
	Forwarded     int // sent on to the receivers
	// Bytes are the UDP payloads of the datagrams forwarded, without the 28
	// bytes of headers that Rate counts as well.
	Bytes int
	RTP   int // RTP packets among the datagrams
	// Repeats are RTP packets whose SSRC and sequence number came before:
	// retransmissions on the same SSRC.
	Repeats int
	NACKs   int // RTCP generic NACKs (RFC 4585, section 6.2.1)
	PLIs    int // RTCP picture loss indications (RFC 4585, section 6.3.1)
	FIRs    int // RTCP full intra requests (RFC 5104, section 4.3.1)
}

// Proxy forwards datagrams between clients and one server address. It is
// safe for concurrent use.
type Proxy struct {
	conn   *net.UDPConn // the clients' side
	target *net.UDPAddr
	done   chan struct{}
	wg     sync.WaitGroup
	lines  [2]*line

	mu       sync.Mutex
	rng      *rand.Rand
	links    [2]Link
	stats    [2]Stats
	seen     [2]map[uint64]struct{} // SSRC<<16 | sequence number of RTP packets received
	gone     [2]map[uint64]struct{} // RTP packets lost for good
	until    time.Time              // end of the blackout
	forGood  bool                   // the blackout's RTP packets are lost for good
	flows    map[string]*flow
	closed   bool
	closeErr error
}

// flow is one client's path through the proxy.
type flow struct {
	client *net.UDPAddr
	conn   *net.UDPConn // connected to the server
}

// New starts a proxy on 127.0.0.1 to target, a UDP address. seed makes
// the random losses and delays repeatable for the same sequence of
// datagrams.
func New(target string, seed uint64) (*Proxy, error) {
	addr, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		return nil, fmt.Errorf("lossy: target %q: %w", target, err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("lossy: listen: %w", err)
	}
	p := &Proxy{
		conn:   conn,
		target: addr,
		done:   make(chan struct{}),
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		flows:  map[string]*flow{},
	}
	for d := range p.lines {
		p.lines[d] = newLine()
		p.seen[d] = map[uint64]struct{}{}
		p.gone[d] = map[uint64]struct{}{}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.lines[d].run(p.done)
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.readClients()
	}()
	return p, nil
}

// Addr returns the address clients send to.
func (p *Proxy) Addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

// SetLink sets what happens to the datagrams of direction d from now on.
// A new Rate applies at once to the datagrams already queued, the one
// leaving included; a new Queue only to the datagrams that come after.
func (p *Proxy) SetLink(d Direction, l Link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.links[d] = l
	// Under p.mu, so that the line keeps the rate of the last link set.
	p.lines[d].setRate(l.Rate, l.Queue)
}

// SetLinks sets both directions to l.
func (p *Proxy) SetLinks(l Link) {
	p.SetLink(Up, l)
	p.SetLink(Down, l)
}

// Blackout drops every datagram, both ways, for d from now. With forGood,
// the RTP packets dropped are also dropped whenever they are sent again, as
// if the sender no longer had them: only a keyframe can repair the stream.
func (p *Proxy) Blackout(d time.Duration, forGood bool) {
	p.mu.Lock()
	p.until = time.Now().Add(d)
	p.forGood = forGood
	p.mu.Unlock()
}

// Stats returns the counts of direction d so far.
func (p *Proxy) Stats(d Direction) Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats[d]
	// Under p.mu as well, so that no datagram is forwarded that was not
	// received.
	p.lines[d].count(&st)
	return st
}

// Close stops the proxy and closes its sockets; datagrams still delayed are
// dropped.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return p.closeErr
	}
	p.closed = true
	close(p.done)
	errs := []error{p.conn.Close()}
	for _, f := range p.flows {
		errs = append(errs, f.conn.Close())
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	p.closeErr = errors.Join(errs...)
	p.mu.Unlock()
	return p.closeErr
}

// readClients forwards what clients send until the proxy closes.
func (p *Proxy) readClients() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f := p.flow(from)
		if f == nil {
			return // closed
		}
		data := append([]byte(nil), buf[:n]...)
		p.pass(Up, data, func() { f.conn.Write(data) })
	}
}

// flow returns the client's flow, opening its socket to the server the
// first time; nil once the proxy is closed.
func (p *Proxy) flow(client *net.UDPAddr) *flow {
	key := client.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if f := p.flows[key]; f != nil {
		return f
	}
	conn, err := net.DialUDP("udp4", nil, p.target)
	if err != nil {
		return nil
	}
	f := &flow{client: client, conn: conn}
	p.flows[key] = f
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.readServer(f)
	}()
	return f
}

// readServer forwards what the server sends to f's client until the proxy
// closes.
func (p *Proxy) readServer(f *flow) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error of an earlier send
		}
		data := append([]byte(nil), buf[:n]...)
		p.pass(Down, data, func() { p.conn.WriteToUDP(data, f.client) })
	}
}

// pass counts a datagram and sends it, after its delay, unless the link
// drops it.
func (p *Proxy) pass(d Direction, data []byte, send func()) {
	now := time.Now()
	p.mu.Lock()
	st := &p.stats[d]
	st.Datagrams++
	key, isRTP := classify(data, st)
	if isRTP {
		st.RTP++
		if _, ok := p.seen[d][key]; ok {
			st.Repeats++
		}
		p.seen[d][key] = struct{}{}
	}
	link := p.links[d]
	drop := false
	switch {
	case now.Before(p.until):
		drop = true
		if isRTP && p.forGood {
			p.gone[d][key] = struct{}{}
		}
	case isRTP && has(p.gone[d], key):
		drop = true
	case link.Loss > 0 && p.rng.Float64() < link.Loss:
		drop = true
	}
	if drop {
		st.Dropped++
		p.mu.Unlock()
		return
	}
	delay := link.Delay
	if link.Jitter > 0 {
		delay += time.Duration(p.rng.Int64N(int64(2*link.Jitter)+1)) - link.Jitter
	}
	p.mu.Unlock()
	p.lines[d].push(now.Add(max(delay, 0)), !link.Reorder, len(data), send)
}

func has(m map[uint64]struct{}, k uint64) bool {
	_, ok := m[k]
	return ok
}

// classify tells RTP from RTCP (RFC 5761, section 4: RTCP packet types
// 192 to 223 where RTP has its marker bit and payload type) and counts
// feedback requests; for RTP it returns SSRC<<16 | sequence number.
func classify(b []byte, st *Stats) (uint64, bool) {
	if len(b) < 12 || b[0]&0xc0 != 0x80 { // not version 2: STUN, DTLS
		return 0, false
	}
	if pt := b[1]; pt >= 192 && pt <= 223 {
		switch format := b[0] & 0x1f; {
		case pt == 205 && format == 1:
			st.NACKs++
		case pt == 206 && format == 1:
			st.PLIs++
		case pt == 206 && format == 4:
			st.FIRs++
		}
		return 0, false
	}
	seq := uint64(b[2])<<8 | uint64(b[3])
	ssrc := uint64(b[8])<<24 | uint64(b[9])<<16 | uint64(b[10])<<8 | uint64(b[11])
	return ssrc<<16 | seq, true
}

// line holds the datagrams of one direction until they are due, and then,
// if the direction has a rate, until the bottleneck has sent them.
type line struct {
	mu      sync.Mutex
	delayed schedule  // on their way to the bottleneck, by when they reach it
	last    time.Time // when the latest datagram is due
	n       uint64
	wake    chan struct{}

	rate  int           // of the bottleneck, in bits a second; 0 for none
	limit time.Duration // the longest a datagram may wait at the bottleneck
	// waiting are at the bottleneck. The first one is leaving, unless its
	// start is still to come.
	waiting fifo
	// free is when the bottleneck ended sending the latest datagram to
	// leave. The times of the bottleneck follow from the datagrams' rather
	// than from when run wakes, so that a late wake-up sends a burst that
	// keeps the rate instead of lowering it.
	free time.Time

	// Counted here as the bottleneck decides; Proxy.Stats adds them up.
	queueDropped  int
	maxQueueDelay time.Duration
	forwarded     int
	bytes         int
}

// waiting is a datagram at the bottleneck.
type waiting struct {
	arrival time.Time // when it reached the bottleneck
	start   time.Time // when it begins to leave, at the rate of now
	finish  time.Time // when it has left and is sent on
	size    int       // bytes of UDP payload
	send    func()
}

// fifo is a queue of datagrams that reuses its array, as a datagram passes
// through it on every link, capped or not.
type fifo struct {
	items []waiting
	head  int // the first of items still queued
}

func (f *fifo) front() *waiting {
	if f.head == len(f.items) {
		return nil
	}
	return &f.items[f.head]
}

func (f *fifo) back() *waiting {
	if f.head == len(f.items) {
		return nil
	}
	return &f.items[len(f.items)-1]
}

// queued returns the datagrams in the queue, first first.
func (f *fifo) queued() []waiting { return f.items[f.head:] }

func (f *fifo) push(w waiting) { f.items = append(f.items, w) }

func (f *fifo) pop() waiting {
	w := f.items[f.head]
	f.items[f.head] = waiting{} // let the datagram go
	f.head++
	switch {
	case f.head == len(f.items):
		f.items, f.head = f.items[:0], 0
	case f.head >= 64 && 2*f.head >= len(f.items):
		// A queue that never empties moves to the front of its array
		// rather than growing it without end.
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return w
}

// headers is the bytes that a datagram takes on the link besides its
// payload: an IPv4 header without options and a UDP header.
const headers = 20 + 8

func newLine() *line { return &line{wake: make(chan struct{}, 1)} }

// push schedules send, for a datagram of size bytes, to reach the
// bottleneck at the time at, or, if inOrder, no sooner than the datagram
// before.
func (l *line) push(at time.Time, inOrder bool, size int, send func()) {
	l.mu.Lock()
	if inOrder && at.Before(l.last) {
		at = l.last
	}
	if at.After(l.last) {
		l.last = at
	}
	l.n++
	heap.Push(&l.delayed, item{at: at, n: l.n, size: size, send: send})
	first := l.delayed[0].n == l.n
	l.mu.Unlock()
	if first {
		l.poke()
	}
}

// poke wakes run to look at the line again.
func (l *line) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// setRate sets the bottleneck's rate and queue (see Link) and reschedules
// the datagrams waiting at it.
func (l *line) setRate(rate int, queue time.Duration) {
	rate = max(rate, 0)
	if queue <= 0 {
		queue = DefaultQueue
	}
	l.mu.Lock()
	l.limit = queue
	changed := rate != l.rate
	if changed {
		l.rate = rate
		// The datagram leaving takes its whole time at the new rate, as
		// if it had been sent at it from the start: close enough, and the
		// same for every datagram behind it.
		queued := l.waiting.queued()
		t := l.free
		for i := range queued {
			l.place(&queued[i], t)
			t = queued[i].finish
		}
	}
	l.mu.Unlock()
	if changed {
		l.poke()
	}
}

// place sets when w leaves the bottleneck, which is free from the time
// free on.
func (l *line) place(w *waiting, free time.Time) {
	w.start = w.arrival
	if free.After(w.start) {
		w.start = free
	}
	w.finish = w.start
	if l.rate > 0 {
		bits := int64(w.size+headers) * 8
		w.finish = w.start.Add(time.Duration(bits * int64(time.Second) / int64(l.rate)))
	}
}

// admit queues a datagram that has reached the bottleneck, unless it would
// wait there longer than the limit.
func (l *line) admit(it item) {
	w := waiting{arrival: it.at, size: it.size, send: it.send}
	var free time.Time // an uncapped link is always free...
	if l.rate > 0 {
		free = l.free
	}
	if last := l.waiting.back(); last != nil {
		free = last.finish // ...but for what it has still to send
	}
	l.place(&w, free)
	if l.rate > 0 && w.start.Sub(w.arrival) > l.limit {
		l.queueDropped++
		return
	}
	l.waiting.push(w)
}

// take moves the datagrams due by now to the bottleneck and appends to due
// the sends of those that have left it. It returns due and how long until
// the next datagram is due or leaves.
func (l *line) take(now time.Time, due []func()) ([]func(), time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.delayed) > 0 && !l.delayed[0].at.After(now) {
		l.admit(heap.Pop(&l.delayed).(item))
	}
	for first := l.waiting.front(); first != nil && !first.finish.After(now); first = l.waiting.front() {
		w := l.waiting.pop()
		l.free = w.finish
		l.maxQueueDelay = max(l.maxQueueDelay, w.start.Sub(w.arrival))
		l.forwarded++
		l.bytes += w.size
		due = append(due, w.send)
	}
	wait := time.Hour
	if len(l.delayed) > 0 {
		wait = l.delayed[0].at.Sub(now)
	}
	if first := l.waiting.front(); first != nil {
		wait = min(wait, first.finish.Sub(now))
	}
	return due, wait
}

// count adds the bottleneck's counts to st.
func (l *line) count(st *Stats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st.Dropped += l.queueDropped
	st.QueueDropped = l.queueDropped
	st.MaxQueueDelay = l.maxQueueDelay
	st.Forwarded = l.forwarded
	st.Bytes = l.bytes
}

// run sends datagrams as they leave until done is closed.
func (l *line) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []func()
	for {
		var wait time.Duration
		due, wait = l.take(time.Now(), due)
		for i, send := range due {
			send()
			due[i] = nil
		}
		due = due[:0]
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-l.wake:
		case <-done:
			return
		}
	}
}

// item is a datagram on its way to the bottleneck; n keeps equal times in
// order.
type item struct {
	at   time.Time
	n    uint64
	size int
	send func()
}

// schedule is a heap of items by time.
type schedule []item

func (q schedule) Len() int { return len(q) }
func (q schedule) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].n < q[j].n
	}
	return q[i].at.Before(q[j].at)
}
func (q schedule) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *schedule) Push(x any)   { *q = append(*q, x.(item)) }
func (q *schedule) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = item{}
	*q = old[:len(old)-1]
	return it
}
