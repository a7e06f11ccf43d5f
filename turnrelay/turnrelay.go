// Package turnrelay is the embedded TURN server (RFC 8656, on pion/turn)
// through which participants reach the media port when they cannot
// directly: behind a NAT that maps each destination differently, or a
// firewall that lets nothing out but TCP, or only TLS on 443. It listens
// for TURN over UDP and TCP on one port and over TLS on another.
//
// Credentials are short-lived and derived per participant from a shared
// secret, as the TURN REST API draft describes and coturn's
// use-auth-secret checks them: the username is "<expiry>:<participant
// id>", the password the base64 of its HMAC-SHA1 under the secret. So the
// same credentials work with an external coturn configured with the
// secret, and nothing is stored per credential.
//
// It relays only to this server's media addresses: a participant's
// credentials open no path to anywhere else (no open relay).
package turnrelay

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // TURN REST credentials are HMAC-SHA1 by definition
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"

	"github.com/ivsrt/ivsrt"
)

// Realm is the realm of the embedded server's credentials.
const Realm = "ivsrt"

// DefaultMaxAllocations bounds the allocations one participant holds at
// once: a browser makes one per peer connection and transport, and a
// participant has a publication and a subscription per publisher.
const DefaultMaxAllocations = 64

// Credentials returns the TURN credentials of participant id that are
// valid until expires.
func Credentials(secret []byte, id string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + id
	return username, password64(secret, username)
}

func password64(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Config is the embedded server's configuration.
type Config struct {
	Secret []byte // what credentials are derived from

	// Listen is the address of TURN over UDP and TCP (one port for
	// both); TLSListen, with TLS, that of TURN over TLS. Either may be
	// empty, not both.
	Listen    string
	TLSListen string
	TLS       *tls.Config

	// RelayIP is the address relayed candidates carry, which the media
	// server sends to; relay sockets are bound to RelayBind (an IP).
	RelayIP   net.IP
	RelayBind string

	// Peers reports whether an address may be relayed to: this server's
	// media addresses only.
	Peers func(net.IP) bool

	// MaxAllocations bounds each participant's allocations (0: the
	// default).
	MaxAllocations int

	Logger *slog.Logger
	Now    func() time.Time // the clock credentials expire by; time.Now if nil
}

// Server is a running embedded TURN server.
type Server struct {
	turn                *turn.Server
	udp                 net.PacketConn
	tcp, tls            net.Listener
	max                 int
	now                 func() time.Time
	logger              *slog.Logger
	mu                  sync.Mutex
	allocations         map[string]int // by participant id
	refusedAuth, quotas uint64
}

// Start listens and serves until Close.
func Start(cfg Config) (*Server, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("turn: no secret to derive credentials from")
	}
	if cfg.Listen == "" && cfg.TLSListen == "" {
		return nil, errors.New("turn: no address to listen on")
	}
	if cfg.RelayIP == nil || cfg.Peers == nil {
		return nil, errors.New("turn: the relay address and the peers relayed to are required")
	}
	s := &Server{max: cfg.MaxAllocations, now: cfg.Now, logger: cfg.Logger, allocations: map[string]int{}}
	if s.max <= 0 {
		s.max = DefaultMaxAllocations
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	relay := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorStatic{RelayAddress: cfg.RelayIP, Address: cfg.RelayBind}
	}
	permit := func(_ net.Addr, peer net.IP) bool { return cfg.Peers(peer) }
	sc := turn.ServerConfig{
		Realm:         Realm,
		AuthHandler:   s.authenticate(cfg.Secret),
		QuotaHandler:  s.withinQuota,
		LoggerFactory: loggerFactory{s.logger},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, userID, _ string, _ net.Addr, _ int) { s.count(userID, 1) },
			OnAllocationDeleted: func(_, _ net.Addr, _, userID, _ string) { s.count(userID, -1) },
		},
	}
	fail := func(err error) (*Server, error) {
		s.closeListeners()
		return nil, err
	}
	if cfg.Listen != "" {
		var err error
		if s.udp, s.tcp, err = listenPair(cfg.Listen); err != nil {
			return fail(err)
		}
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: s.udp,
			RelayAddressGenerator: relay(), PermissionHandler: permit})
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: s.tcp,
			RelayAddressGenerator: relay(), PermissionHandler: permit})
	}
	if cfg.TLSListen != "" {
		if cfg.TLS == nil {
			return fail(errors.New("turn: TURN over TLS needs a certificate"))
		}
		var err error
		if s.tls, err = tls.Listen("tcp", cfg.TLSListen, cfg.TLS); err != nil {
			return fail(fmt.Errorf("turn: listen on tls %s: %w", cfg.TLSListen, err))
		}
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: s.tls,
			RelayAddressGenerator: relay(), PermissionHandler: permit})
	}
	t, err := turn.NewServer(sc)
	if err != nil {
		return fail(fmt.Errorf("turn: %w", err))
	}
	s.turn = t
	return s, nil
}

// listenPair listens on addr over UDP and TCP, on one port, as clients
// expect of TURN's. With port 0, the free UDP port found may be taken over
// TCP: another is tried.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("turn: address %q: %w", addr, err)
	}
	lc := net.ListenConfig{}
	for try := 0; ; try++ {
		udp, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("turn: listen on udp %s: %w", addr, err)
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
		tcp, err := lc.Listen(context.Background(), "tcp", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" || try == 20 {
			return nil, nil, fmt.Errorf("turn: listen on tcp %s: %w", tcpAddr, err)
		}
	}
}

// authenticate checks a request's credentials: a username of an
// unexpired credential, and the password derived from it. The user id is
// the participant id, which quotas count by.
func (s *Server) authenticate(secret []byte) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		expiry, id, ok := strings.Cut(ra.Username, ":")
		at, err := strconv.ParseInt(expiry, 10, 64)
		if !ok || err != nil || id == "" || s.now().Unix() > at {
			s.mu.Lock()
			s.refusedAuth++
			s.mu.Unlock()
			return "", nil, false
		}
		return id, turn.GenerateAuthKey(ra.Username, ra.Realm, password64(secret, ra.Username)), true
	}
}

func (s *Server) withinQuota(id, _ string, _ net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allocations[id] >= s.max {
		s.quotas++
		return false
	}
	return true
}

func (s *Server) count(id string, delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.allocations[id] + delta; n > 0 {
		s.allocations[id] = n
	} else {
		delete(s.allocations, id)
	}
}

// Stats is what the server has done, for metrics.
type Stats struct {
	Allocations   int    // held now
	Participants  int    // holding allocations now
	RefusedAuth   uint64 // requests whose credentials were refused, since the start
	QuotaRefusals uint64 // allocations refused by the per-participant quota
}

// Stats returns the server's counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Participants: len(s.allocations), RefusedAuth: s.refusedAuth, QuotaRefusals: s.quotas}
	for _, n := range s.allocations {
		st.Allocations += n
	}
	return st
}

// UDPAddr, TCPAddr and TLSAddr are where the server listens (nil for what
// it does not serve).
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// Close stops the server and ends every allocation.
func (s *Server) Close() error {
	if s.turn != nil {
		return s.turn.Close()
	}
	s.closeListeners()
	return nil
}

func (s *Server) closeListeners() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tls != nil {
		s.tls.Close()
	}
}

// loggerFactory sends pion/turn's logging to slog, at debug level but
// for its errors and warnings.
type loggerFactory struct{ l *slog.Logger }

func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return leveled{f.l.With("component", "turn", "scope", scope)}
}

type leveled struct{ l *slog.Logger }

func (l leveled) Trace(string)                   {}
func (l leveled) Tracef(string, ...any)          {}
func (l leveled) Debug(msg string)               { l.l.Debug(msg) }
func (l leveled) Debugf(format string, a ...any) { l.l.Debug(fmt.Sprintf(format, a...)) }
func (l leveled) Info(msg string)                { l.l.Debug(msg) }
func (l leveled) Infof(format string, a ...any)  { l.l.Debug(fmt.Sprintf(format, a...)) }
func (l leveled) Warn(msg string)                { l.l.Warn(msg) }
func (l leveled) Warnf(format string, a ...any)  { l.l.Warn(fmt.Sprintf(format, a...)) }
func (l leveled) Error(msg string)               { l.l.Warn(msg) }
func (l leveled) Errorf(format string, a ...any) { l.l.Warn(fmt.Sprintf(format, a...)) }

// MinCredentialLifetime is how long credentials last at the least: a
// participant may stay in its stage past its token's expiry, and its
// allocations are refreshed every few minutes.
const MinCredentialLifetime = 10 * time.Minute

// Directory hands out TURN servers with credentials of each participant:
// the embedded server's URLs, or an external server's (coturn with
// use-auth-secret and the same secret).
type Directory struct {
	URLs   []string
	Secret []byte
	Now    func() time.Time // time.Now if nil
}

var _ ivsrt.ICEServerSource = (*Directory)(nil)

// ICEServers implements ivsrt.ICEServerSource: credentials that expire
// with the participant's token, or MinCredentialLifetime from now if that
// is later.
func (d *Directory) ICEServers(id ivsrt.ParticipantID, tokenExpiry time.Time) []ivsrt.ICEServer {
	if len(d.URLs) == 0 {
		return nil
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	expires := tokenExpiry
	if floor := now().Add(MinCredentialLifetime); expires.Before(floor) {
		expires = floor
	}
	user, pass := Credentials(d.Secret, string(id), expires)
	return []ivsrt.ICEServer{{URLs: d.URLs, Username: user, Credential: pass}}
}

// URLs returns the URLs of a TURN server at host: over UDP and TCP on
// port, over TLS on tlsPort; a port below 1 is left out.
func URLs(host string, port, tlsPort int) []string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // IPv6
	}
	var urls []string
	if port > 0 {
		hp := host + ":" + strconv.Itoa(port)
		urls = append(urls, "turn:"+hp+"?transport=udp", "turn:"+hp+"?transport=tcp")
	}
	if tlsPort > 0 {
		urls = append(urls, "turns:"+host+":"+strconv.Itoa(tlsPort)+"?transport=tcp")
	}
	return urls
}
