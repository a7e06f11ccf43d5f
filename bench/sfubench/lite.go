package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/fingerprint"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/deadline"

	"github.com/ivsrt/ivsrt/bench/internal/rtcpeer"
)

// liteSubscriber is a WHEP subscriber that does what a browser does on
// the wire — ICE connectivity checks (RFC 8445), a DTLS handshake with
// DTLS-SRTP keying (RFC 5764), SRTP decryption of every packet — with one
// goroutine per subscriber that reads the socket and decrypts in place.
// A pion PeerConnection hands each packet through several goroutines and
// buffers, which costs the load generator about as much as it costs the
// SFU to send the packet; on a 2-core machine this subscriber leaves the
// cores to the server. It sends no RTCP (no receiver reports, no NACKs).
type liteSubscriber struct {
	conn   *net.UDPConn
	bytes  atomic.Uint64
	tally  tally
	video  videoSpec
	start  time.Time
	ufrag  string
	pwd    string
	remote netip.AddrPort
	rUfrag string
	rPwd   string

	iceOK     chan struct{} // a check of ours succeeded
	iceOnce   sync.Once
	checked   chan struct{} // the server's check was answered
	checkOnce sync.Once
	dtlsIn    chan []byte
	dtlsRead  *deadline.Deadline
	srtp      atomic.Pointer[srtp.Context]
	closed    chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	dtls      *dtls.Conn
	dtlsMu    sync.Mutex
}

// liteCert is the certificate every lite subscriber presents, and its
// fingerprint for the offer.
var liteCert struct {
	once sync.Once
	cert tls.Certificate
	fp   string
	err  error
}

func liteCertificate() (tls.Certificate, string, error) {
	liteCert.once.Do(func() {
		liteCert.cert, liteCert.err = selfsign.GenerateSelfSigned()
		if liteCert.err != nil {
			return
		}
		var x *x509.Certificate
		if x, liteCert.err = x509.ParseCertificate(liteCert.cert.Certificate[0]); liteCert.err != nil {
			return
		}
		liteCert.fp, liteCert.err = fingerprint.Fingerprint(x, crypto.SHA256)
	})
	return liteCert.cert, liteCert.fp, liteCert.err
}

func randomText(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// subscribeLite starts a WHEP session to the publisher's video.
func subscribeLite(ctx context.Context, client *http.Client, base, token, publisherID string, video videoSpec) (*liteSubscriber, error) {
	cert, fp, err := liteCertificate()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(socketBuffer)
	conn.SetWriteBuffer(socketBuffer)
	s := &liteSubscriber{conn: conn, video: video, ufrag: randomText(16), pwd: randomText(32),
		iceOK: make(chan struct{}), checked: make(chan struct{}), dtlsIn: make(chan []byte, 64), dtlsRead: deadline.New(),
		closed: make(chan struct{}), done: make(chan struct{})}
	go s.read()

	port := conn.LocalAddr().(*net.UDPAddr).Port
	c := video.codec
	pt := strconv.Itoa(int(c.PayloadType))
	fmtp := ""
	if c.SDPFmtpLine != "" {
		fmtp = "a=fmtp:" + pt + " " + c.SDPFmtpLine + "\r\n"
	}
	// A recvonly video section (RFC 8829 rules, as a browser writes it),
	// all candidates included; setup:active makes this side the DTLS
	// client.
	offer := strings.Join([]string{
		"v=0",
		fmt.Sprintf("o=- %d 2 IN IP4 127.0.0.1", rand.Uint32()),
		"s=-",
		"t=0 0",
		"a=group:BUNDLE 0",
		"a=fingerprint:sha-256 " + fp,
		"m=video 9 UDP/TLS/RTP/SAVPF " + pt,
		"c=IN IP4 0.0.0.0",
		"a=setup:active",
		"a=mid:0",
		"a=ice-ufrag:" + s.ufrag,
		"a=ice-pwd:" + s.pwd,
		"a=recvonly",
		"a=rtcp-mux",
		"a=rtpmap:" + pt + " " + strings.TrimPrefix(c.MimeType, "video/") + "/90000",
		fmtp + "a=rtcp-fb:" + pt + " nack",
		"a=rtcp-fb:" + pt + " nack pli",
		"a=rtcp-fb:" + pt + " ccm fir",
		fmt.Sprintf("a=candidate:1 1 udp 2130706431 127.0.0.1 %d typ host", port),
		"a=end-of-candidates",
		"",
	}, "\r\n")
	s.start = time.Now()
	answer, _, err := rtcpeer.PostOffer(ctx, client, base+"/whep/"+publisherID, token, offer)
	if err != nil {
		s.close()
		return nil, err
	}
	if err := s.applyAnswer(answer); err != nil {
		s.close()
		return nil, err
	}
	go s.check()
	go s.handshake(cert)
	return s, nil
}

// applyAnswer takes the server's ICE credentials and UDP candidate from
// its answer.
func (s *liteSubscriber) applyAnswer(answer string) error {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if len(d.MediaDescriptions) != 1 {
		return fmt.Errorf("answer has %d media sections, want 1", len(d.MediaDescriptions))
	}
	m := d.MediaDescriptions[0]
	get := func(key string) string {
		if v, ok := m.Attribute(key); ok {
			return v
		}
		v, _ := d.Attribute(key)
		return v
	}
	s.rUfrag, s.rPwd = get("ice-ufrag"), get("ice-pwd")
	if s.rUfrag == "" || s.rPwd == "" {
		return errors.New("answer without ICE credentials")
	}
	if setup := get("setup"); setup != "passive" {
		return fmt.Errorf("answer has setup:%s, want passive", setup)
	}
	for _, a := range m.Attributes {
		if a.Key != "candidate" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) < 8 || !strings.EqualFold(f[2], "udp") {
			continue
		}
		port, err := strconv.Atoi(f[5])
		addr, err2 := netip.ParseAddr(f[4])
		if err != nil || err2 != nil || !addr.Is4() {
			continue
		}
		s.remote = netip.AddrPortFrom(addr, uint16(port))
		return nil
	}
	return errors.New("answer without a UDP IPv4 candidate")
}

// read is the subscriber's only reader of its socket: STUN is answered,
// DTLS goes to the handshake, SRTP is decrypted and counted.
func (s *liteSubscriber) read() {
	defer close(s.done)
	buf := make([]byte, 2048)
	dec := make([]byte, 2048)
	var h rtp.Header
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.bytes.Add(uint64(n))
		b := buf[:n]
		// Demultiplexing by the first byte (RFC 7983, section 7).
		switch {
		case b[0] <= 3:
			s.stun(b, from)
		case b[0] >= 20 && b[0] <= 63:
			select {
			case s.dtlsIn <- append([]byte(nil), b...):
			default:
			}
		case b[0] >= 128 && b[0] <= 191:
			if n < 2 || (b[1] >= 192 && b[1] <= 223) {
				continue // RTCP (RFC 5761, section 4): sender reports
			}
			ctx := s.srtp.Load()
			if ctx == nil {
				continue // before the keys are known
			}
			out, err := ctx.DecryptRTP(dec, b, &h)
			if err != nil {
				continue
			}
			if p, err := rtpPayload(out); err == nil {
				s.video.note(&s.tally, p, time.Now(), false)
			}
		}
	}
}

// stun answers the server's connectivity checks and notes the success of
// ours.
func (s *liteSubscriber) stun(b []byte, from netip.AddrPort) {
	m := &stun.Message{Raw: b}
	if err := m.Decode(); err != nil {
		return
	}
	switch m.Type {
	case stun.BindingRequest:
		resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
			stun.NewShortTermIntegrity(s.pwd), stun.Fingerprint)
		if err == nil {
			s.conn.WriteToUDPAddrPort(resp.Raw, from)
			s.checkOnce.Do(func() { close(s.checked) })
		}
	case stun.BindingSuccess:
		s.iceOnce.Do(func() { close(s.iceOK) })
	}
}

// check sends connectivity checks as the controlling agent, nominating
// the pair at once (aggressive nomination), often until one succeeds, and
// then every second as keepalives (consent freshness, RFC 7675).
func (s *liteSubscriber) check() {
	tiebreaker := rand.Uint64()
	interval := 50 * time.Millisecond
	for {
		req, err := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername(s.rUfrag+":"+s.ufrag), ice.PriorityAttr(2130706431),
			ice.AttrControlling(tiebreaker), ice.UseCandidate(),
			stun.NewShortTermIntegrity(s.rPwd), stun.Fingerprint)
		if err == nil {
			s.conn.WriteToUDPAddrPort(req.Raw, s.remote)
		}
		select {
		case <-s.iceOK:
			interval = time.Second
		default:
		}
		select {
		case <-s.closed:
			return
		case <-time.After(interval):
		}
	}
}

// handshake runs DTLS as the client once ICE works both ways (the
// server's check answered: its nomination of the pair follows at once)
// and installs the SRTP keys it yields. A ClientHello that comes before
// the server has started DTLS is lost; it is sent again after 50 ms, the
// first retransmission time browsers use.
func (s *liteSubscriber) handshake(cert tls.Certificate) {
	timeout := time.After(10 * time.Second)
	for _, ch := range []chan struct{}{s.iceOK, s.checked} {
		select {
		case <-ch:
		case <-s.closed:
			return
		case <-timeout:
			return
		}
	}
	c, err := dtls.Client(liteDTLSConn{s}, net.UDPAddrFromAddrPort(s.remote), &dtls.Config{
		Certificates:           []tls.Certificate{cert},
		InsecureSkipVerify:     true,
		SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		FlightInterval:         50 * time.Millisecond,
		LoggerFactory:          rtcpeer.QuietLogs,
	})
	if err != nil {
		return
	}
	s.dtlsMu.Lock()
	s.dtls = c
	s.dtlsMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := c.HandshakeContext(ctx); err != nil {
		return
	}
	profile, ok := c.SelectedSRTPProtectionProfile()
	state, ok2 := c.ConnectionState()
	if !ok || !ok2 {
		return
	}
	cfg := srtp.Config{Profile: srtp.ProtectionProfile(profile)}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, true); err != nil {
		return
	}
	ctxSRTP, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
	if err != nil {
		return
	}
	s.srtp.Store(ctxSRTP)
}

func (s *liteSubscriber) close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.conn.Close()
		<-s.done
		s.dtlsMu.Lock()
		if s.dtls != nil {
			s.dtls.Close()
		}
		s.dtlsMu.Unlock()
	})
}

// liteDTLSConn is the DTLS side of a lite subscriber's socket: it reads
// the DTLS records the reader passes on and writes to the server.
type liteDTLSConn struct{ s *liteSubscriber }

func (c liteDTLSConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case b := <-c.s.dtlsIn:
		return copy(p, b), net.UDPAddrFromAddrPort(c.s.remote), nil
	case <-c.s.closed:
		return 0, nil, net.ErrClosed
	case <-c.s.dtlsRead.Done():
		return 0, nil, timeoutError{}
	}
}

func (c liteDTLSConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	return c.s.conn.WriteToUDPAddrPort(p, c.s.remote)
}

func (c liteDTLSConn) Close() error                      { return nil }
func (c liteDTLSConn) LocalAddr() net.Addr               { return c.s.conn.LocalAddr() }
func (c liteDTLSConn) SetDeadline(t time.Time) error     { c.s.dtlsRead.Set(t); return nil }
func (c liteDTLSConn) SetReadDeadline(t time.Time) error { c.s.dtlsRead.Set(t); return nil }
func (c liteDTLSConn) SetWriteDeadline(time.Time) error  { return nil }

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
