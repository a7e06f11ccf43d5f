package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/metrics"
	"github.com/ivsrt/ivsrt/turnrelay"
)

// validateTURN checks the TURN settings.
func (c *Config) validateTURN() error {
	for _, p := range []struct {
		flag string
		port int
	}{{"--turn-udp-port", c.TURNUDPPort}, {"--turn-tls-port", c.TURNTLSPort}} {
		if p.port < -1 || p.port > 65535 {
			return fmt.Errorf("%s %d: want a port number, 0 for any free port, or -1 to disable", p.flag, p.port)
		}
	}
	if c.TURNTLSPort >= 0 && (c.TURNCert == "" || c.TURNKey == "") && len(c.TURNURLs) == 0 {
		return errors.New("--turn-tls-port needs --turn-cert and --turn-key")
	}
	if (c.TURNCert == "") != (c.TURNKey == "") {
		return errors.New("--turn-cert and --turn-key go together")
	}
	for _, u := range c.TURNURLs {
		scheme, _, _ := strings.Cut(u, ":")
		if scheme != "turn" && scheme != "turns" && scheme != "stun" {
			return fmt.Errorf("--turn-urls %q: want turn:, turns: or stun: URLs (RFC 7065)", u)
		}
	}
	if len(c.TURNURLs) > 0 && c.TURNSecret == "" {
		return errors.New("--turn-urls needs --turn-secret: the external server's static-auth-secret, which credentials are derived from")
	}
	if c.TURNMaxAllocations < 1 {
		return fmt.Errorf("--turn-max-allocations %d: want 1 or more", c.TURNMaxAllocations)
	}
	return nil
}

// startTURN starts the embedded TURN server on host (the address the API
// listens on), or points participants at the external one, and returns
// where participants find TURN: nil if nowhere. generated is the secret
// kept in the data folder (or the cluster's store), used unless
// --turn-secret is given.
func (m *Main) startTURN(publicURL, host string, generated []byte) (ivsrt.ICEServerSource, error) {
	c := m.Config
	secret := generated
	if c.TURNSecret != "" {
		secret = []byte(c.TURNSecret)
	}
	if len(c.TURNURLs) > 0 {
		return &turnrelay.Directory{URLs: c.TURNURLs, Secret: secret}, nil
	}
	udpPort, tlsPort := c.TURNUDPPort, c.TURNTLSPort
	if _, port, _ := net.SplitHostPort(c.Listen); port == "0" && !m.turnPortsGiven {
		udpPort, tlsPort = min(udpPort, 0), min(tlsPort, 0) // side by side (tests): any free ports
	}
	if udpPort < 0 && tlsPort < 0 {
		return nil, nil
	}
	cfg := turnrelay.Config{
		Secret: secret, MaxAllocations: c.TURNMaxAllocations,
		Logger: m.Logger.With("component", "turn"),
	}
	if udpPort >= 0 {
		cfg.Listen = net.JoinHostPort(host, strconv.Itoa(udpPort))
	}
	if tlsPort >= 0 {
		cert, err := tls.LoadX509KeyPair(c.TURNCert, c.TURNKey)
		if err != nil {
			return nil, fmt.Errorf("--turn-cert, --turn-key: %w", err)
		}
		cfg.TLSListen = net.JoinHostPort(host, strconv.Itoa(tlsPort))
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// Relays are bound where the media is, and carry its address: the
	// media server, on this host, sends to them there. They relay to the
	// media addresses alone.
	media, err := mediaIPs(host, publicIPs(c.RTCPublicIPs))
	if err != nil {
		return nil, err
	}
	cfg.RelayIP, cfg.RelayBind = media[0], host
	cfg.Peers = func(ip net.IP) bool {
		for _, m := range media {
			if m.Equal(ip) {
				return true
			}
		}
		return false
	}
	srv, err := turnrelay.Start(cfg)
	if err != nil {
		return nil, err
	}
	m.turn = srv
	m.Metrics.SetTURN(turnStats{srv})
	turnHost := c.TURNHost
	if turnHost == "" {
		if u, err := url.Parse(publicURL); err == nil {
			turnHost = u.Hostname()
		}
	}
	return &turnrelay.Directory{URLs: turnrelay.URLs(turnHost, portOf(srv.UDPAddr()), portOf(srv.TLSAddr())), Secret: secret}, nil
}

// mediaIPs returns the addresses media is reached at on this host: host's,
// or every interface's when host is unspecified; the first is the one
// relays carry. The public addresses of a 1:1 NAT (which hairpins to
// this host) come too.
func mediaIPs(host string, public []string) ([]net.IP, error) {
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		ips = append(ips, ip)
	} else {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("turn: list the media addresses: %w", err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				if n.IP.IsLoopback() {
					ips = append(ips, n.IP) // last resort
				} else {
					ips = append([]net.IP{n.IP}, ips...)
				}
			}
		}
	}
	for _, p := range public {
		if ip := net.ParseIP(p); ip != nil {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, errors.New("turn: no media address to relay to")
	}
	return ips, nil
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.Port
	case *net.TCPAddr:
		return a.Port
	}
	return 0
}

// turnSummary says where TURN is, for the serving log line.
func (m *Main) turnSummary() string {
	switch {
	case len(m.Config.TURNURLs) > 0:
		return "external " + strings.Join(m.Config.TURNURLs, " ")
	case m.turn == nil:
		return "off"
	}
	s := "udp+tcp " + addrString(m.turn.UDPAddr())
	if a := m.turn.TLSAddr(); a != nil {
		s += ", tls " + a.String()
	}
	return s
}

// turnStats reports the embedded TURN server to the metrics.
type turnStats struct{ srv *turnrelay.Server }

func (t turnStats) TURNStats() metrics.TURNStats {
	st := t.srv.Stats()
	return metrics.TURNStats{Allocations: st.Allocations, Participants: st.Participants, RefusedAuth: st.RefusedAuth,
		QuotaRefusals: st.QuotaRefusals}
}
