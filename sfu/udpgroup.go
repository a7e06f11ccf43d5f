package sfu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"

	"github.com/ivsrt/ivsrt/sfu/forward"
)

// udpGroup is several UDP sockets bound to the same address with
// SO_REUSEPORT, used as one net.PacketConn by the ICE UDP mux. Go
// serializes the writes on one socket, so a single socket caps everything
// the server sends at what one core can push through sendto; with one
// socket per core, copies of a packet to different subscribers leave in
// parallel. A destination is always written from the same socket, so the
// packets to one peer keep their order. What arrives on any socket is read
// by one goroutine per socket and handed to ReadFrom in arrival order.
// Writes are queued and sent in batches by each socket's batchSender, which
// made several sockets unnecessary but past several hundred thousand
// datagrams a second; a group of one socket (the default, and the only
// kind without SO_REUSEPORT) is read without a goroutine in between.
type udpGroup struct {
	conns []*net.UDPConn
	outs  []*batchSender // outs[i] sends for conns[i]
	holds atomic.Int32   // see Hold
	in    chan datagram
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	bufs  sync.Pool

	// readDeadline is ReadFrom's deadline in Unix nanoseconds, 0 for none;
	// the sockets' own never expire, or their readers would spin.
	readDeadline atomic.Int64
}

type datagram struct {
	buf  *[]byte
	n    int
	from netip.AddrPort
	err  error
}

var (
	_ net.PacketConn           = (*udpGroup)(nil)
	_ ice.AddrPortReaderWriter = (*udpGroup)(nil)
	_ forward.Batcher          = (*udpGroup)(nil)
)

// listenUDPGroup binds n sockets to addr (n ≤ 1, or a system without
// SO_REUSEPORT: one). With port 0, the first socket picks the port and the
// others join it.
func listenUDPGroup(addr *net.UDPAddr, n int) (net.PacketConn, error) {
	if n <= 1 || !reusePortSupported {
		n = 1
	}
	lc := net.ListenConfig{}
	if n > 1 {
		lc.Control = reusePort
		// SO_REUSEPORT lets another process that sets it too, a second
		// server started by mistake, bind the same port and silently take
		// a share of the media. Binding once without it first fails if
		// anyone holds the port.
		if addr.Port != 0 {
			probe, err := net.ListenUDP("udp", addr)
			if err != nil {
				return nil, fmt.Errorf("UDP %s is taken (another server?): %w", addr, err)
			}
			probe.Close()
		}
	}
	g := &udpGroup{
		in:   make(chan datagram, 256),
		done: make(chan struct{}),
		bufs: sync.Pool{New: func() any { b := make([]byte, 1500); return &b }},
	}
	at := addr.String()
	for range n {
		c, err := lc.ListenPacket(context.Background(), "udp", at)
		if err != nil {
			for _, c := range g.conns {
				c.Close()
			}
			return nil, fmt.Errorf("socket %d of %d: %w", len(g.conns)+1, n, err)
		}
		g.conns = append(g.conns, c.(*net.UDPConn))
		at = c.LocalAddr().String()
	}
	for _, c := range g.conns {
		g.outs = append(g.outs, newBatchSender(c, &g.holds))
	}
	if len(g.conns) > 1 {
		for _, c := range g.conns {
			g.wg.Add(1)
			go g.read(c)
		}
	}
	return g, nil
}

// read passes what arrives on c to ReadFromAddrPort until the group is
// closed.
func (g *udpGroup) read(c *net.UDPConn) {
	defer g.wg.Done()
	for {
		buf := g.bufs.Get().(*[]byte)
		n, from, err := c.ReadFromUDPAddrPort(*buf)
		select {
		case g.in <- datagram{buf, n, from, err}:
		case <-g.done:
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		// Other errors (an ICMP error reported on the socket) are passed on
		// and reading goes on, as on a single socket.
	}
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter. A group of one
// socket reads it directly: a goroutine between the socket and the reader
// would cost a wake-up per datagram.
func (g *udpGroup) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if len(g.conns) == 1 {
		return g.conns[0].ReadFromUDPAddrPort(b)
	}
	var expired <-chan time.Time
	if dl := g.readDeadline.Load(); dl != 0 {
		wait := time.Until(time.Unix(0, dl))
		if wait <= 0 {
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case d := <-g.in:
		n := copy(b, (*d.buf)[:d.n])
		g.bufs.Put(d.buf)
		return n, d.from, d.err
	case <-g.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	case <-expired:
		return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
	}
}

// WriteToAddrPort implements ice.AddrPortReaderWriter. It queues the
// datagram for its socket's sender and returns without waiting.
func (g *udpGroup) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return g.outs[g.socket(to)].write(b, to)
}

// dropped returns how many datagrams the sockets' send queues dropped.
func (g *udpGroup) dropped() uint64 {
	var n uint64
	for _, o := range g.outs {
		n += o.dropped.Load()
	}
	return n
}

// Hold implements forward.Batcher: until the matching Release, datagrams
// written to the group may wait (at most maxLinger) to leave in batches.
func (g *udpGroup) Hold() { g.holds.Add(1) }

// Release implements forward.Batcher: once nothing holds the group, the
// caller sends what waits.
func (g *udpGroup) Release() {
	if g.holds.Add(-1) <= 0 {
		for _, o := range g.outs {
			o.sendQueued()
		}
	}
}

// conn returns the socket that writes to the destination.
func (g *udpGroup) conn(to netip.AddrPort) *net.UDPConn { return g.conns[g.socket(to)] }

// socket returns the index of the socket that writes to the destination.
func (g *udpGroup) socket(to netip.AddrPort) int {
	if len(g.conns) == 1 {
		return 0
	}
	a := to.Addr().As16()
	h := uint32(to.Port())
	for _, x := range a[8:] {
		h = h*31 + uint32(x)
	}
	h *= 2654435761 // Knuth's multiplicative hash spreads neighbouring ports
	return int((h >> 16) % uint32(len(g.conns)))
}

// ReadFrom implements net.PacketConn.
func (g *udpGroup) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := g.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteTo implements net.PacketConn.
func (g *udpGroup) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("not a UDP address")}
	}
	return g.WriteToAddrPort(b, ua.AddrPort())
}

// Close implements net.PacketConn.
func (g *udpGroup) Close() error {
	var errs []error
	g.once.Do(func() {
		close(g.done)
		for _, o := range g.outs {
			o.close()
		}
		for _, c := range g.conns {
			errs = append(errs, c.Close())
		}
		g.wg.Wait()
	})
	return errors.Join(errs...)
}

// LocalAddr implements net.PacketConn: the address every socket is bound to.
func (g *udpGroup) LocalAddr() net.Addr { return g.conns[0].LocalAddr() }

// SetDeadline implements net.PacketConn.
func (g *udpGroup) SetDeadline(t time.Time) error {
	g.SetReadDeadline(t)
	return g.SetWriteDeadline(t)
}

// SetReadDeadline implements net.PacketConn.
func (g *udpGroup) SetReadDeadline(t time.Time) error {
	if len(g.conns) == 1 {
		return g.conns[0].SetReadDeadline(t)
	}
	var dl int64
	if !t.IsZero() {
		dl = max(t.UnixNano(), 1)
	}
	g.readDeadline.Store(dl)
	return nil
}

// SetWriteDeadline implements net.PacketConn.
func (g *udpGroup) SetWriteDeadline(t time.Time) error {
	return g.each(func(c *net.UDPConn) error { return c.SetWriteDeadline(t) })
}

func (g *udpGroup) each(f func(*net.UDPConn) error) error {
	var errs []error
	for _, c := range g.conns {
		errs = append(errs, f(c))
	}
	return errors.Join(errs...)
}
