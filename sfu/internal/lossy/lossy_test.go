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
