package sfu

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Sending in batches. Every copy of a forwarded packet used to cost a
// sendto: on a loopback or virtualized machine the system call, not the
// copy, is most of the cost of forwarding. A batchSender takes the
// datagrams written to one socket, copies them into its queue and returns
// at once; its goroutine sends what has queued with one sendmmsg (through
// golang.org/x/net's WriteBatch) per up to sendBatch datagrams. While one
// batch is in the kernel the next fills, so under load a system call
// carries many datagrams, and when idle each leaves at once.
//
// Writers never wait for the socket: when the queue holds sendQueue
// datagrams, more are dropped (and counted), as the kernel drops what
// does not fit in a socket's buffer.
//
// Waking the sender for each datagram would make it and the forwarding
// worker take turns, a wake-up per copy. So while the forwarding path
// holds the group (udpGroup.Hold, a worker writing the copies of a
// packet), the sender is woken only once a full batch waits, at the
// latest after maxLinger; at the release, the releasing worker sends what
// is left itself (a packet's copies to a hundred subscribers then leave
// in two system calls, and wake nobody).

const (
	sendBatch = 64 // datagrams per system call at most
	// sendQueue is how many datagrams may wait: about 150 ms of what one
	// socket sends for a publisher with 400 subscribers, so that a sender
	// descheduled on a busy machine does not drop. Buffers kept for reuse
	// are fewer, keepBuffers.
	sendQueue   = 16384
	keepBuffers = 4096
	maxLinger   = time.Millisecond
)

// batchWriter is what ipv4.PacketConn and ipv6.PacketConn have in common.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type batchSender struct {
	bw    batchWriter
	holds *atomic.Int32 // the group's: while positive, datagrams may wait for more

	mu      sync.Mutex
	queue   []outgoing
	free    [][]byte
	waiting bool
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	linger  *time.Timer // wakes the sender for datagrams held back; armed while lingering
	lingers bool

	// Guarded by sendMu: what a sending call uses.
	sendMu sync.Mutex
	spare  []outgoing
	msgs   []ipv4.Message
	addrs  []net.UDPAddr
	ips    [][16]byte

	dropped atomic.Uint64 // datagrams dropped, for the metrics
}

type outgoing struct {
	buf []byte
	to  netip.AddrPort
}

func newBatchSender(c *net.UDPConn, holds *atomic.Int32) *batchSender {
	s := &batchSender{holds: holds, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.linger = time.AfterFunc(time.Hour, s.flush)
	s.linger.Stop()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		s.bw = ipv6.NewPacketConn(c)
	} else {
		s.bw = ipv4.NewPacketConn(c)
	}
	go s.run()
	return s
}

// write queues a copy of b for to. It never blocks.
func (s *batchSender) write(b []byte, to netip.AddrPort) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(s.queue) >= sendQueue {
		s.mu.Unlock()
		s.dropped.Add(1)
		return len(b), nil
	}
	var buf []byte
	if n := len(s.free); n > 0 && cap(s.free[n-1]) >= len(b) {
		buf = s.free[n-1][:len(b)]
		s.free = s.free[:n-1]
	} else {
		buf = make([]byte, len(b), max(len(b), 1500))
	}
	copy(buf, b)
	s.queue = append(s.queue, outgoing{buf, to})
	wake := false
	if s.waiting {
		// Read under s.mu, after queueing: a release that follows sees
		// this datagram (see flush).
		if s.holds.Load() <= 0 || len(s.queue) >= sendBatch {
			wake = true
			s.waiting = false
		} else if !s.lingers {
			s.lingers = true
			s.linger.Reset(maxLinger)
		}
	}
	s.mu.Unlock()
	if wake {
		s.wake <- struct{}{} // one waiter, one token: never blocks
	}
	return len(b), nil
}

// flush wakes the sender if datagrams wait: when the linger timer fires.
func (s *batchSender) flush() {
	s.mu.Lock()
	s.lingers = false
	wake := s.waiting && len(s.queue) > 0
	if wake {
		s.waiting = false
	}
	s.mu.Unlock()
	if wake {
		s.wake <- struct{}{}
	}
}

// run sends what is queued, when woken, until the sender is closed.
func (s *batchSender) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.waiting = true
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		s.sendQueued()
	}
}

// sendQueued sends what is queued, sendBatch datagrams per system call.
// One caller at a time takes and sends (sendMu), so datagrams to a peer
// leave in the order they were written.
func (s *batchSender) sendQueued() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	taken := s.queue
	s.queue = s.spare[:0]
	s.spare = nil
	s.mu.Unlock()
	if len(taken) == 0 {
		s.spare = taken
		return
	}
	if s.msgs == nil {
		s.msgs = make([]ipv4.Message, sendBatch)
		s.addrs = make([]net.UDPAddr, sendBatch)
		s.ips = make([][16]byte, sendBatch)
		for i := range s.msgs {
			s.msgs[i].Buffers = make([][]byte, 1)
		}
	}
	msgs, addrs, ips := s.msgs, s.addrs, s.ips
	for off := 0; off < len(taken); {
		n := min(len(taken)-off, sendBatch)
		for i, o := range taken[off : off+n] {
			addr := o.to.Addr()
			if addr.Is4() {
				a := addr.As4()
				copy(ips[i][:4], a[:])
				addrs[i].IP = ips[i][:4]
			} else {
				ips[i] = addr.As16()
				addrs[i].IP = ips[i][:]
			}
			addrs[i].Port = int(o.to.Port())
			addrs[i].Zone = addr.Zone()
			msgs[i].Buffers[0] = o.buf
			msgs[i].Addr = &addrs[i]
		}
		sent, err := s.bw.WriteBatch(msgs[:n], 0)
		if sent <= 0 {
			// The first datagram was refused (an unreachable or invalid
			// destination, err says which): drop it and go on with the
			// rest, as a lone sendto would have.
			_ = err
			sent = 1
			s.dropped.Add(1)
		}
		off += sent
	}
	s.recycle(taken)
	s.spare = taken[:0]
}

// recycle gives the buffers of sent datagrams back for reuse.
func (s *batchSender) recycle(sent []outgoing) {
	s.mu.Lock()
	for i := range sent {
		if len(s.free) < keepBuffers && sent[i].buf != nil {
			s.free = append(s.free, sent[i].buf)
		}
		sent[i] = outgoing{}
	}
	s.mu.Unlock()
}

// close stops the sender; what is still queued is dropped.
func (s *batchSender) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.linger.Stop()
	wake := s.waiting
	s.waiting = false
	s.queue = nil
	s.mu.Unlock()
	if wake {
		s.wake <- struct{}{}
	}
	<-s.done
}
