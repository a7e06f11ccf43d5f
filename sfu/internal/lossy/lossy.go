// Package lossy is a UDP proxy that stands between WebRTC clients and a
// media server on the loopback interface and makes the network between
// them bad: it drops, delays, jitters and reorders datagrams, and can cut
// everything for a while. Tests and benchmarks use it to see how the media
// plane recovers (NACK, PLI).
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
}

// Stats counts the datagrams of one direction.
type Stats struct {
	Datagrams int // received from the senders
	Dropped   int // not forwarded: lost at random, in a blackout, or lost for good
	RTP       int // RTP packets among the datagrams
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
func (p *Proxy) SetLink(d Direction, l Link) {
	p.mu.Lock()
	p.links[d] = l
	p.mu.Unlock()
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
	return p.stats[d]
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
	p.lines[d].push(now.Add(max(delay, 0)), !link.Reorder, send)
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

// line holds the datagrams of one direction until they are due.
type line struct {
	mu    sync.Mutex
	queue queue
	last  time.Time // when the latest datagram is due
	n     uint64
	wake  chan struct{}
}

func newLine() *line { return &line{wake: make(chan struct{}, 1)} }

// push schedules send at the time at, or, if inOrder, no sooner than the
// datagram before.
func (l *line) push(at time.Time, inOrder bool, send func()) {
	l.mu.Lock()
	if inOrder && at.Before(l.last) {
		at = l.last
	}
	if at.After(l.last) {
		l.last = at
	}
	l.n++
	heap.Push(&l.queue, item{at: at, n: l.n, send: send})
	first := l.queue[0].n == l.n
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// run sends datagrams as they fall due until done is closed.
func (l *line) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []func()
	for {
		l.mu.Lock()
		now := time.Now()
		for len(l.queue) > 0 && !l.queue[0].at.After(now) {
			due = append(due, heap.Pop(&l.queue).(item).send)
		}
		wait := time.Hour
		if len(l.queue) > 0 {
			wait = l.queue[0].at.Sub(now)
		}
		l.mu.Unlock()
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

// item is a datagram waiting in a line; n keeps equal times in order.
type item struct {
	at   time.Time
	n    uint64
	send func()
}

type queue []item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].n < q[j].n
	}
	return q[i].at.Before(q[j].at)
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(item)) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = item{}
	*q = old[:len(old)-1]
	return it
}
