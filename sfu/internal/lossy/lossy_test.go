package lossy

import (
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// echo is a server that sends every datagram back to its sender.
func echo(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			conn.WriteToUDP(buf[:n], from)
		}
	}()
	return conn.LocalAddr().String()
}

// client is a socket sending to the proxy.
func client(t *testing.T, p *Proxy) *net.UDPConn {
	t.Helper()
	conn, err := net.DialUDP("udp4", nil, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func newProxy(t *testing.T, seed uint64) *Proxy {
	t.Helper()
	p, err := New(echo(t), seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// rtpPacket is a bare RTP header with the sequence number n.
func rtpPacket(n uint16) []byte {
	b := make([]byte, 12)
	b[0], b[1] = 0x80, 96
	binary.BigEndian.PutUint16(b[2:], n)
	binary.BigEndian.PutUint32(b[8:], 0x1234)
	return b
}

// receiver collects the sequence numbers of the RTP packets a client
// gets back, in arrival order, reading as they come so that its socket
// buffer never overflows.
type receiver struct {
	mu  sync.Mutex
	got []uint16
}

func receive(t *testing.T, conn *net.UDPConn) *receiver {
	r := &receiver{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if n >= 12 {
				r.mu.Lock()
				r.got = append(r.got, binary.BigEndian.Uint16(buf[2:]))
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return r
}

// wait returns what was received once n packets have come, or once
// nothing has come for quiet.
func (r *receiver) wait(n int, quiet time.Duration) []uint16 {
	last, since := -1, time.Now()
	for {
		r.mu.Lock()
		got := slices.Clone(r.got)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if len(got) != last {
			last, since = len(got), time.Now()
		} else if time.Since(since) > quiet {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reset forgets what was received.
func (r *receiver) reset() {
	r.mu.Lock()
	r.got = nil
	r.mu.Unlock()
}

// quiet is how long without a datagram ends a wait for more.
const quiet = time.Second

func TestForwardsBothWays(t *testing.T) {
	p := newProxy(t, 1)
	c := client(t, p)
	r := receive(t, c)
	for i := range 50 {
		c.Write(rtpPacket(uint16(i)))
	}
	got := r.wait(50, quiet)
	if len(got) != 50 {
		t.Fatalf("got %d datagrams back, want 50", len(got))
	}
	for i, n := range got {
		if n != uint16(i) {
			t.Fatalf("datagram %d is packet %d, want in order", i, n)
		}
	}
	for _, d := range []Direction{Up, Down} {
		if st := p.Stats(d); st.Datagrams != 50 || st.RTP != 50 || st.Dropped != 0 || st.Repeats != 0 {
			t.Errorf("%s stats got %+v, want 50 RTP datagrams, none dropped or repeated", d, st)
		}
	}
}

func TestLoss(t *testing.T) {
	p := newProxy(t, 2)
	p.SetLink(Up, Link{Loss: 0.2})
	c := client(t, p)
	r := receive(t, c)
	const n = 2000
	for i := range n {
		c.Write(rtpPacket(uint16(i)))
		if i%10 == 9 {
			time.Sleep(time.Millisecond) // keep the socket buffers from overflowing
		}
	}
	r.wait(n, 300*time.Millisecond)
	up := p.Stats(Up)
	if up.Datagrams != n {
		t.Fatalf("proxy received %d datagrams, want %d", up.Datagrams, n)
	}
	if frac := float64(up.Dropped) / n; frac < 0.15 || frac > 0.25 {
		t.Errorf("dropped %.3f of the datagrams, want about 0.2", frac)
	}
	if got := r.wait(n-up.Dropped, quiet); len(got) != n-up.Dropped {
		t.Errorf("got %d datagrams back, want the %d not dropped", len(got), n-up.Dropped)
	}
}

func TestDelayKeepsOrder(t *testing.T) {
	p := newProxy(t, 3)
	p.SetLinks(Link{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond})
	c := client(t, p)
	r := receive(t, c)
	start := time.Now()
	c.Write(rtpPacket(0))
	if got := r.wait(1, 5*time.Second); len(got) != 1 {
		t.Fatal("nothing came back")
	}
	if rtt := time.Since(start); rtt < 40*time.Millisecond {
		t.Errorf("round trip took %v, want at least 2×(30-10) ms", rtt)
	}
	r.reset()
	for i := range 200 {
		c.Write(rtpPacket(uint16(i)))
		time.Sleep(200 * time.Microsecond)
	}
	got := r.wait(200, quiet)
	if len(got) != 200 {
		t.Fatalf("got %d datagrams back, want 200", len(got))
	}
	for i, n := range got {
		if n != uint16(i) {
			t.Fatalf("datagram %d is packet %d: reordered without Reorder", i, n)
		}
	}
}

func TestReorder(t *testing.T) {
	p := newProxy(t, 4)
	p.SetLink(Up, Link{Delay: 20 * time.Millisecond, Jitter: 15 * time.Millisecond, Reorder: true})
	c := client(t, p)
	r := receive(t, c)
	for i := range 200 {
		c.Write(rtpPacket(uint16(i)))
		time.Sleep(200 * time.Microsecond)
	}
	got := r.wait(200, quiet)
	if len(got) != 200 {
		t.Fatalf("got %d datagrams back, want 200", len(got))
	}
	overtaken := 0
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			overtaken++
		}
	}
	if overtaken == 0 {
		t.Error("no datagram overtook another with Reorder")
	}
}

func TestBlackoutForGood(t *testing.T) {
	p := newProxy(t, 5)
	c := client(t, p)
	r := receive(t, c)
	p.Blackout(200*time.Millisecond, true)
	for i := range 10 {
		c.Write(rtpPacket(uint16(i)))
	}
	time.Sleep(300 * time.Millisecond)
	if got := r.wait(1, 0); len(got) != 0 {
		t.Fatalf("got %d datagrams back during the blackout, want none", len(got))
	}
	// After it, packets sent again stay lost; new ones pass.
	for i := range 20 {
		c.Write(rtpPacket(uint16(i)))
	}
	got := r.wait(10, quiet)
	if len(got) != 10 || got[0] != 10 {
		t.Errorf("got packets %v back, want 10 to 19", got)
	}
	if st := p.Stats(Up); st.Repeats != 10 || st.Dropped != 20 {
		t.Errorf("up stats got %+v, want 10 repeats and 20 dropped", st)
	}
}

func TestCountsFeedback(t *testing.T) {
	p := newProxy(t, 6)
	c := client(t, p)
	r := receive(t, c)
	header := func(pt, format byte) []byte {
		b := make([]byte, 12)
		b[0], b[1] = 0x80|format, pt
		return b
	}
	c.Write([]byte{0, 1, 0, 0}) // STUN, read before what follows
	c.Write(header(205, 1))     // generic NACK
	c.Write(header(206, 1))     // PLI
	c.Write(header(206, 4))     // FIR
	c.Write(header(201, 0))     // receiver report
	r.wait(4, quiet)
	if st := p.Stats(Up); st.NACKs != 1 || st.PLIs != 1 || st.FIRs != 1 || st.RTP != 0 || st.Datagrams != 5 {
		t.Errorf("up stats got %+v, want one NACK, PLI and FIR, no RTP, 5 datagrams", st)
	}
}

func TestClientsKeepApart(t *testing.T) {
	p := newProxy(t, 7)
	a, b := client(t, p), client(t, p)
	ra, rb := receive(t, a), receive(t, b)
	a.Write(rtpPacket(1))
	b.Write(rtpPacket(2))
	if got := ra.wait(1, quiet); len(got) != 1 || got[0] != 1 {
		t.Errorf("first client got %v, want its packet 1", got)
	}
	if got := rb.wait(1, quiet); len(got) != 1 || got[0] != 2 {
		t.Errorf("second client got %v, want its packet 2", got)
	}
	if got := ra.wait(2, 100*time.Millisecond); len(got) != 1 {
		t.Errorf("first client got %v, want only its own packet", got)
	}
}

func TestBottleneckSchedule(t *testing.T) {
	// A line driven by hand, without its goroutine, so that the times are
	// exact: 972 bytes and 28 of headers take 100 ms at 80 kb/s.
	l := newLine()
	l.setRate(80_000, 250*time.Millisecond)
	t0 := time.Now()
	sent := 0
	for range 5 {
		l.push(t0, true, 972, func() { sent++ })
	}
	take := func(at time.Duration) int {
		due, _ := l.take(t0.Add(at), nil)
		for _, send := range due {
			send()
		}
		return len(due)
	}
	// The first leaves at once, the second and third wait 100 and 200 ms,
	// the others would wait more than 250 ms.
	if n := take(99 * time.Millisecond); n != 0 {
		t.Fatalf("%d datagrams left before the first had taken 100 ms", n)
	}
	if n := take(100 * time.Millisecond); n != 1 {
		t.Fatalf("%d datagrams left after 100 ms, want 1", n)
	}
	if n := take(199 * time.Millisecond); n != 0 {
		t.Fatalf("%d more datagrams left before 200 ms", n)
	}
	// Twice the rate, with the second leaving: it has done so at 150 ms,
	// and the third has only 50 ms to take.
	l.setRate(160_000, 250*time.Millisecond)
	if n := take(150 * time.Millisecond); n != 1 {
		t.Fatalf("%d datagrams left at 150 ms at twice the rate, want 1", n)
	}
	// Uncapped, the third leaves at once.
	l.setRate(0, 0)
	if n := take(160 * time.Millisecond); n != 1 {
		t.Fatalf("%d datagrams left once uncapped, want 1", n)
	}
	var st Stats
	l.count(&st)
	want := Stats{Dropped: 2, QueueDropped: 2, MaxQueueDelay: 150 * time.Millisecond, Forwarded: 3, Bytes: 3 * 972}
	if st != want || sent != 3 {
		t.Errorf("stats got %+v after %d sent, want %+v after 3", st, sent, want)
	}
	// Uncapped, nothing waits.
	l.push(t0.Add(time.Second), true, 100, func() {})
	l.push(t0.Add(time.Second), true, 100, func() {})
	if n := take(time.Second); n != 2 {
		t.Fatalf("%d datagrams left uncapped, want 2", n)
	}
	if l.count(&st); st.MaxQueueDelay != 150*time.Millisecond {
		t.Errorf("max queue delay got %v, want still 150ms", st.MaxQueueDelay)
	}
}

// The rate tests send datagrams of this size, RTP packets that carry when
// they were sent.
const rateSize = 1000

// wireBits is what a datagram of rateSize counts for against a Rate.
const wireBits = (rateSize + 28) * 8

// arrival is an RTP packet a client got back.
type arrival struct {
	sent, got time.Duration // since the test's start
}

// timedReceiver collects when the datagrams a client gets back were sent
// and came.
type timedReceiver struct {
	mu  sync.Mutex
	got []arrival
}

func receiveTimed(t *testing.T, conn *net.UDPConn, start time.Time) *timedReceiver {
	r := &timedReceiver{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got := time.Since(start)
			if n == rateSize {
				sent := time.Duration(binary.BigEndian.Uint64(buf[12:]))
				r.mu.Lock()
				r.got = append(r.got, arrival{sent: sent, got: got})
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return r
}

// arrivals returns what came so far.
func (r *timedReceiver) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// settle waits until nothing has come for quiet and returns what came.
func (r *timedReceiver) settle() []arrival {
	last, since := -1, time.Now()
	for {
		got := r.arrivals()
		if len(got) != last {
			last, since = len(got), time.Now()
		} else if time.Since(since) > quiet {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// send writes a datagram of rateSize on the SSRC ssrc every interval from
// start until end and returns how many it wrote. Behind time, it catches
// up, so that a busy machine does not lower the rate sent.
func send(conn *net.UDPConn, ssrc uint32, start time.Time, interval, end time.Duration) int {
	b := make([]byte, rateSize)
	copy(b, rtpPacket(0))
	binary.BigEndian.PutUint32(b[8:], ssrc)
	n := 0
	for ; time.Duration(n)*interval < end; n++ {
		time.Sleep(time.Until(start.Add(time.Duration(n) * interval)))
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		binary.BigEndian.PutUint64(b[12:], uint64(time.Since(start)))
		conn.Write(b)
	}
	return n
}

// rate returns the bits a second on the link, at wireBits a datagram, of
// the datagrams that came from from to to.
func rate(got []arrival, from, to time.Duration) float64 {
	n := 0
	for _, a := range got {
		if a.got >= from && a.got < to {
			n++
		}
	}
	return float64(n*wireBits) / (to - from).Seconds()
}

// median returns the median of ds.
func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func TestRateCapsAllClients(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	const capped = 400_000
	p := newProxy(t, 8)
	p.SetLink(Up, Link{Rate: capped})
	// Two clients, 1 Mbit/s each, share the 400 kb/s.
	a, b := client(t, p), client(t, p)
	start := time.Now()
	ra, rb := receiveTimed(t, a, start), receiveTimed(t, b, start)
	const sending = 3 * time.Second
	var wg sync.WaitGroup
	var sent [2]int
	for i, c := range []*net.UDPConn{a, b} {
		wg.Go(func() { sent[i] = send(c, uint32(i+1), start, 8*time.Millisecond, sending) })
	}
	wg.Wait()
	got := append(ra.settle(), rb.settle()...)

	// The queue fills within 200 ms; measure well after, and before the
	// senders stop.
	if r := rate(got, 500*time.Millisecond, 2500*time.Millisecond); r < 0.85*capped || r > 1.15*capped {
		t.Errorf("%.0f bit/s came through, want about %d", r, capped)
	}
	var delays []time.Duration
	for _, a := range got {
		if a.got >= 500*time.Millisecond && a.got < 2500*time.Millisecond {
			delays = append(delays, a.got-a.sent)
		}
	}
	// A full queue delays a datagram by about its depth.
	serialization := time.Duration(wireBits * int64(time.Second) / capped)
	if d := median(delays); d < DefaultQueue/2 || d > DefaultQueue+serialization+100*time.Millisecond {
		t.Errorf("median round trip of a full queue got %v, want about %v", d, DefaultQueue+serialization)
	}
	up := p.Stats(Up)
	if up.Datagrams != sent[0]+sent[1] {
		t.Fatalf("proxy received %d datagrams, want the %d sent", up.Datagrams, sent[0]+sent[1])
	}
	if up.QueueDropped == 0 || up.Dropped != up.QueueDropped {
		t.Errorf("up stats got %+v, want all drops at the tail of the queue", up)
	}
	if up.Forwarded+up.Dropped != up.Datagrams || up.Bytes != up.Forwarded*rateSize || len(got) != up.Forwarded {
		t.Errorf("up stats got %+v and %d came back, want every datagram forwarded or dropped, and back", up, len(got))
	}
	if up.MaxQueueDelay > DefaultQueue || up.MaxQueueDelay < DefaultQueue-serialization {
		t.Errorf("max queue delay got %v, want the queue of %v full", up.MaxQueueDelay, DefaultQueue)
	}
	if down := p.Stats(Down); down.Dropped != 0 || down.MaxQueueDelay != 0 {
		t.Errorf("down stats got %+v, want uncapped", down)
	}
}

func TestRateUnderCap(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	const capped = 400_000
	p := newProxy(t, 9)
	p.SetLink(Up, Link{Rate: capped})
	c := client(t, p)
	start := time.Now()
	r := receiveTimed(t, c, start)
	// About 200 kb/s, half the rate.
	sent := send(c, 1, start, 40*time.Millisecond, 2*time.Second)
	got := r.settle()
	if up := p.Stats(Up); len(got) != sent || up.Dropped != 0 || up.Forwarded != sent {
		t.Fatalf("%d of %d datagrams came back, up stats %+v: want all, none dropped", len(got), sent, up)
	}
	// Every datagram takes its serialization time, and most no more than
	// that and the machine's scheduling.
	serialization := time.Duration(wireBits * int64(time.Second) / capped)
	var delays []time.Duration
	for _, a := range got {
		if d := a.got - a.sent; d < serialization {
			t.Fatalf("a round trip took %v, less than the %v to send a datagram at %d bit/s", d, serialization, capped)
		} else {
			delays = append(delays, d)
		}
	}
	if d := median(delays); d > serialization+30*time.Millisecond {
		t.Errorf("median round trip got %v, want about the %v to send a datagram", d, serialization)
	}
}

func TestRateLifted(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	const capped = 400_000
	// A deep queue, whose last datagram would wait a second.
	p := newProxy(t, 10)
	p.SetLink(Up, Link{Rate: capped, Queue: time.Second})
	c := client(t, p)
	start := time.Now()
	r := receiveTimed(t, c, start)
	// 2 Mbit/s, five times the rate, capped for 1.5 s and then not for 2.5.
	done := make(chan int)
	go func() { done <- send(c, 1, start, 4*time.Millisecond, 4*time.Second) }()
	time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
	lifted := time.Since(start)
	p.SetLink(Up, Link{})
	dropped := p.Stats(Up).QueueDropped
	sent := <-done
	got := r.settle()

	// What was queued leaves at once, not over the second it would take.
	var drained time.Duration
	for _, a := range got {
		if a.sent < lifted {
			drained = max(drained, a.got-lifted)
		}
	}
	if drained > 400*time.Millisecond {
		t.Errorf("the queue drained %v after the cap was lifted, want at once", drained)
	}
	if r := rate(got, lifted+500*time.Millisecond, lifted+2500*time.Millisecond); r < 3*capped {
		t.Errorf("%.0f bit/s came through once uncapped, want the 2 Mbit/s sent", r)
	}
	up := p.Stats(Up)
	if dropped == 0 || up.QueueDropped != dropped || up.Forwarded+up.Dropped != sent || len(got) != up.Forwarded {
		t.Errorf("up stats got %+v, %d dropped when lifted, %d came back of %d: want drops only when capped, and the rest back",
			up, dropped, len(got), sent)
	}
	if up.MaxQueueDelay < 800*time.Millisecond || up.MaxQueueDelay > time.Second {
		t.Errorf("max queue delay got %v, want the queue of 1s full", up.MaxQueueDelay)
	}
}
