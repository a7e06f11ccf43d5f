package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The relay is the ceiling the SFU is compared with: a process that copies
// every datagram it receives to each of its receivers over UDP on
// 127.0.0.1, one send per copy as the SFU makes them, with no encryption
// and no RTP logic. A receiver joins by sending it joinMessage, which it
// answers with joinedMessage.
const (
	joinMessage   = "JOIN"
	joinedMessage = "OK"
)

// socketBuffer is the send and receive buffer asked for on the bench's
// UDP sockets; Linux grants at most net.core.rmem_max / wmem_max.
var socketBuffer = 4 << 20

// runRelay is the relay process: it prints the address it receives on
// and relays until its standard input closes (the bench ended it or died).
func runRelay() error {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	conn.SetReadBuffer(socketBuffer)
	conn.SetWriteBuffer(socketBuffer)
	fmt.Printf("relay %s\n", conn.LocalAddr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	var targets []netip.AddrPort
	known := map[netip.AddrPort]bool{}
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue // an ICMP error of an earlier send to a receiver gone
		}
		if string(buf[:n]) == joinMessage {
			if !known[from] {
				known[from] = true
				targets = append(targets, from)
			}
			conn.WriteToUDPAddrPort([]byte(joinedMessage), from)
			continue
		}
		for _, t := range targets {
			conn.WriteToUDPAddrPort(buf[:n], t)
		}
	}
}

// relayReceiver is one receiver of the relay: a UDP socket of its own.
type relayReceiver struct {
	conn  *net.UDPConn
	bytes atomic.Uint64
	tally tally
	done  chan struct{}
}

// joinRelay opens n receivers and has the relay add them.
func joinRelay(relay *net.UDPAddr, n int) ([]*relayReceiver, error) {
	rs := make([]*relayReceiver, 0, n)
	fail := func(err error) ([]*relayReceiver, error) {
		closeReceivers(rs)
		return nil, err
	}
	for range n {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fail(err)
		}
		conn.SetReadBuffer(socketBuffer)
		r := &relayReceiver{conn: conn, done: make(chan struct{})}
		rs = append(rs, r)
		if err := r.join(relay); err != nil {
			close(r.done)
			return fail(err)
		}
		go r.read()
	}
	return rs, nil
}

func (r *relayReceiver) join(relay *net.UDPAddr) error {
	buf := make([]byte, 64)
	for range 50 {
		if _, err := r.conn.WriteToUDP([]byte(joinMessage), relay); err != nil {
			return err
		}
		r.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := r.conn.ReadFromUDP(buf)
		if err == nil && string(buf[:n]) == joinedMessage {
			r.conn.SetReadDeadline(time.Time{})
			return nil
		}
	}
	return errors.New("the relay did not answer a receiver's join")
}

func (r *relayReceiver) read() {
	defer close(r.done)
	buf := make([]byte, 2048)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.bytes.Add(uint64(n))
		if c, sent, err := parseRTP(buf[:n]); err == nil {
			r.tally.add(c, sent, time.Now())
		}
	}
}

func closeReceivers(rs []*relayReceiver) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			r.conn.Close()
			<-r.done
		})
	}
	wg.Wait()
}
