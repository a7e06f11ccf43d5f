package turnrelay_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/ivsrt/ivsrt/turnrelay"
)

var (
	secret     = []byte("0123456789abcdef0123456789abcdef")
	mediaIP    = net.IPv4(127, 0, 0, 2) // the only address relayed to
	strangerIP = net.IPv4(127, 0, 0, 3)
)

// selfSigned returns a TLS certificate for 127.0.0.1, and a pool that
// trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "turn"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

type fixture struct {
	srv   *turnrelay.Server
	now   atomic.Int64 // Unix seconds the server's clock says
	pool  *x509.CertPool
	media net.PacketConn // the media server's socket: a peer relayed to
}

func start(t testing.TB, maxAllocations int) *fixture {
	t.Helper()
	f := &fixture{}
	f.now.Store(time.Now().Unix())
	cert, pool := selfSigned(t)
	f.pool = pool
	var err error
	f.srv, err = turnrelay.Start(turnrelay.Config{
		Secret: secret, Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0",
		TLS:     &tls.Config{Certificates: []tls.Certificate{cert}},
		RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1",
		Peers:          func(ip net.IP) bool { return ip.Equal(mediaIP) },
		MaxAllocations: maxAllocations,
		Now:            func() time.Time { return time.Unix(f.now.Load(), 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.Close() })
	if f.media, err = net.ListenPacket("udp", mediaIP.String()+":0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.media.Close() })
	return f
}

// client connects a TURN client over transport ("udp", "tcp" or "tls").
func (f *fixture) client(t testing.TB, transport, username, password string) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	var server string
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, server = c, f.srv.UDPAddr().String()
	case "tcp":
		c, err := net.Dial("tcp", f.srv.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn, server = turn.NewSTUNConn(c), f.srv.TCPAddr().String()
	case "tls":
		c, err := tls.Dial("tcp", f.srv.TLSAddr().String(), &tls.Config{RootCAs: f.pool})
		if err != nil {
			t.Fatal(err)
		}
		conn, server = turn.NewSTUNConn(c), f.srv.TLSAddr().String()
	}
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server, STUNServerAddr: server, Conn: conn,
		Username: username, Password: password, Realm: turnrelay.Realm, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		conn.Close()
	})
	return c
}

// TestRelay: over UDP, TCP and TLS, a participant's credentials allocate a
// relay that carries packets both ways between it and the media address,
// and nowhere else.
func TestRelay(t *testing.T) {
	f := start(t, 0)
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			user, pass := turnrelay.Credentials(secret, "alice-"+transport, time.Now().Add(time.Hour))
			c := f.client(t, transport, user, pass)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			if st := f.srv.Stats(); st.Allocations < 1 || st.Participants < 1 {
				t.Errorf("stats after an allocation: %+v", st)
			}
			if ip := relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("relayed address %v, want the relay IP", relay.LocalAddr())
			}

			// To the media address and back.
			ping := []byte("ping " + transport)
			if _, err := relay.WriteTo(ping, f.media.LocalAddr()); err != nil {
				t.Fatalf("WriteTo the media address: %v", err)
			}
			buf := make([]byte, 1500)
			f.media.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := f.media.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:n], ping) {
				t.Fatalf("the media address read %q from %v, %v; want %q", buf[:n], from, err, ping)
			}
			if from.String() != relay.LocalAddr().String() {
				t.Errorf("it came from %v, want the relayed address %v", from, relay.LocalAddr())
			}
			// (Over 4 bytes: pion's STUNConn, which the TCP and TLS clients
			// read through, takes a ChannelData frame of 8 bytes for an
			// incomplete one. Media packets are longer.)
			if _, err := f.media.WriteTo([]byte("pong from the media"), from); err != nil {
				t.Fatal(err)
			}
			relay.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err = relay.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "pong from the media" || from.String() != f.media.LocalAddr().String() {
				t.Fatalf("the client read %q from %v, %v; want pong from the media address", buf[:n], from, err)
			}

			// Anywhere else is refused: no open relay.
			stranger, err := net.ListenPacket("udp", strangerIP.String()+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer stranger.Close()
			if err := c.CreatePermission(stranger.LocalAddr()); err == nil {
				t.Errorf("a permission to %v was granted", stranger.LocalAddr())
			}
			relay.WriteTo([]byte("leak"), stranger.LocalAddr())
			stranger.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, _, err := stranger.ReadFrom(buf); err == nil {
				t.Errorf("a stranger got %q through the relay", buf[:n])
			}
		})
	}
}

// TestCredentials: wrong, forged, expired and malformed credentials
// allocate nothing; credentials expire by the server's clock.
func TestCredentials(t *testing.T) {
	f := start(t, 0)
	good, pass := turnrelay.Credentials(secret, "bob", time.Now().Add(time.Minute))
	forgedUser, forgedPass := turnrelay.Credentials([]byte("another secret"), "bob", time.Now().Add(time.Minute))
	expiredUser, expiredPass := turnrelay.Credentials(secret, "bob", time.Now().Add(-time.Second))
	for _, tt := range []struct{ name, user, pass string }{
		{"wrong password", good, pass + "x"},
		{"another secret's", forgedUser, forgedPass},
		{"expired", expiredUser, expiredPass},
		{"no expiry", "bob", pass},
		{"no participant", strings.TrimSuffix(good, "bob"), pass},
		{"not a number", "soon:bob", pass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t, "udp", tt.user, tt.pass)
			if relay, err := c.Allocate(); err == nil {
				relay.Close()
				t.Fatalf("allocated with %s credentials", tt.name)
			}
		})
	}
	if got := f.srv.Stats().RefusedAuth; got < 4 {
		t.Errorf("refused authentications counted %d, want at least 4", got)
	}
	// Good now; refused once the server's clock passes their expiry.
	c := f.client(t, "udp", good, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate with good credentials: %v", err)
	}
	relay.Close()
	f.now.Add(120)
	if relay, err := f.client(t, "udp", good, pass).Allocate(); err == nil {
		relay.Close()
		t.Error("allocated with credentials past their expiry")
	}
}

// TestQuota: a participant holds at most MaxAllocations at once; one
// released makes room; others are not counted against it.
func TestQuota(t *testing.T) {
	f := start(t, 2)
	user, pass := turnrelay.Credentials(secret, "carol", time.Now().Add(time.Hour))
	var relays []net.PacketConn
	for i := range 2 {
		relay, err := f.client(t, "udp", user, pass).Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		relays = append(relays, relay)
	}
	if st := f.srv.Stats(); st.Allocations != 2 || st.Participants != 1 {
		t.Errorf("stats with two allocations: %+v", st)
	}
	if relay, err := f.client(t, "udp", user, pass).Allocate(); err == nil {
		relay.Close()
		t.Fatal("a third allocation was granted over the quota of 2")
	}
	other, otherPass := turnrelay.Credentials(secret, "dave", time.Now().Add(time.Hour))
	relay, err := f.client(t, "udp", other, otherPass).Allocate()
	if err != nil {
		t.Fatalf("another participant's allocation: %v", err)
	}
	relay.Close()
	relays[0].Close() // deallocates
	deadline := time.Now().Add(5 * time.Second)
	for {
		relay, err := f.client(t, "udp", user, pass).Allocate()
		if err == nil {
			relay.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after an allocation was released: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := f.srv.Stats(); st.QuotaRefusals == 0 {
		t.Errorf("quota refusals not counted: %+v", st)
	}
}

func TestDirectory(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	d := &turnrelay.Directory{URLs: turnrelay.URLs("media.example.com", 3478, 443), Secret: secret, Now: func() time.Time { return now }}
	got := d.ICEServers("p1", now.Add(2*time.Hour))
	if len(got) != 1 || strings.Join(got[0].URLs, " ") !=
		"turn:media.example.com:3478?transport=udp turn:media.example.com:3478?transport=tcp turns:media.example.com:443?transport=tcp" {
		t.Fatalf("ICE servers %+v", got)
	}
	if want := strconv.FormatInt(now.Add(2*time.Hour).Unix(), 10) + ":p1"; got[0].Username != want {
		t.Errorf("username %q, want %q (the token's expiry)", got[0].Username, want)
	}
	if user, pass := turnrelay.Credentials(secret, "p1", now.Add(2*time.Hour)); got[0].Credential != pass || got[0].Username != user {
		t.Errorf("credential does not match Credentials")
	}
	// An expired token's participant still gets credentials for a while.
	if got := d.ICEServers("p1", now.Add(-time.Hour)); got[0].Username != strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)+":p1" {
		t.Errorf("username for an expired token %q, want ten minutes from now", got[0].Username)
	}
	if got := turnrelay.URLs("::1", 3478, 0); strings.Join(got, " ") != "turn:[::1]:3478?transport=udp turn:[::1]:3478?transport=tcp" {
		t.Errorf("IPv6 URLs %v", got)
	}
	if got := (&turnrelay.Directory{Secret: secret}).ICEServers("p1", now); got != nil {
		t.Errorf("no URLs, got %v", got)
	}
}
