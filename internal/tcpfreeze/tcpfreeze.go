// Package tcpfreeze is a TCP proxy for tests whose network can vanish:
// once frozen it passes nothing more, and closes nothing, as a network
// that drops a connection without a word. The peers find out only by
// their own timeouts.
package tcpfreeze

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy passes TCP connections to a target until Freeze.
type Proxy struct {
	ln     net.Listener
	frozen atomic.Bool
	wake   chan struct{} // closed when the test ends

	mu    sync.Mutex
	conns []net.Conn
}

// Start starts a proxy to target (host:port) on a local port, closed
// with every connection when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, wake: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		close(p.wake)
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go p.pass(out, in)
			go p.pass(in, out)
		}
	}()
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops passing anything, leaving every connection open.
func (p *Proxy) Freeze() { p.frozen.Store(true) }

func (p *Proxy) pass(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.frozen.Load() {
			<-p.wake // hold everything until the test ends
			return
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}
