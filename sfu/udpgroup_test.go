package sfu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestUDPGroup(t *testing.T) {
	before := runtime.NumGoroutine()
	pc, err := listenUDPGroup(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := pc.(*udpGroup)
	if !ok {
		if reusePortSupported {
			t.Fatalf("listenUDPGroup got %T, want a group", pc)
		}
		pc.Close()
		t.Skip("no SO_REUSEPORT")
	}
	for _, c := range g.conns {
		if c.LocalAddr().String() != g.LocalAddr().String() {
			t.Errorf("socket bound to %s, want %s", c.LocalAddr(), g.LocalAddr())
		}
	}

	// Peers write to the group; it answers each from its address.
	const peers = 16
	var clients []*net.UDPConn
	for i := range peers {
		c, err := net.DialUDP("udp", nil, g.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		if _, err := c.Write([]byte(fmt.Sprint("hello ", i))); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	used := map[*net.UDPConn]bool{}
	for range peers {
		g.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := g.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		to := from.(*net.UDPAddr)
		used[g.conn(to.AddrPort())] = true
		if g.conn(to.AddrPort()) != g.conn(to.AddrPort()) {
			t.Errorf("%s is written from different sockets", to)
		}
		if _, err := g.WriteTo(append([]byte("re: "), buf[:n]...), from); err != nil {
			t.Fatal(err)
		}
	}
	if len(used) < 2 {
		t.Errorf("%d peers written from %d socket(s), want them spread", peers, len(used))
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if want := fmt.Sprint("re: hello ", i); err != nil || string(buf[:n]) != want {
			t.Errorf("peer %d got %q, %v; want %q", i, buf[:n], err, want)
		}
	}

	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, _, err := g.ReadFrom(buf); err == nil {
		t.Error("ReadFrom after Close succeeded")
	}
	// A reader may still be returning, past its wg.Done.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestUDPGroupReadDeadline(t *testing.T) {
	pc, err := listenUDPGroup(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := pc.ReadFrom(make([]byte, 100)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom past the deadline got %v, want os.ErrDeadlineExceeded", err)
	}
	pc.SetReadDeadline(time.Time{})
	c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	if n, _, err := pc.ReadFrom(make([]byte, 100)); n != 1 || err != nil {
		t.Errorf("ReadFrom got %d, %v; want 1, nil", n, err)
	}
}

// TestUDPGroupPortTaken: a second group on the port of a first one is
// refused, although both would set SO_REUSEPORT; so is one on a port a
// plain socket holds.
func TestUDPGroupPortTaken(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT")
	}
	first, err := listenUDPGroup(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	at := first.LocalAddr().(*net.UDPAddr)
	for _, n := range []int{1, 2} {
		if second, err := listenUDPGroup(at, n); err == nil {
			second.Close()
			t.Errorf("a group of %d on %s, taken by another: bound", n, at)
		}
	}
	plain, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if g, err := listenUDPGroup(plain.LocalAddr().(*net.UDPAddr), 2); err == nil {
		g.Close()
		t.Errorf("a group on %s, held by a plain socket: bound", plain.LocalAddr())
	}
}
