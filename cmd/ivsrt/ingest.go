package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/recording"
	"github.com/ivsrt/ivsrt/rtmpingest"
)

// defaultRTMPPort is where encoders publish over RTMP, as everywhere.
const defaultRTMPPort = 1935

// validateIngest checks the RTMP(S) ingest settings.
func (c *Config) validateIngest() error {
	for _, p := range []struct {
		flag string
		port int
	}{{"--rtmp-port", c.RTMPPort}, {"--rtmps-port", c.RTMPSPort}} {
		if p.port < -1 || p.port > 65535 {
			return fmt.Errorf("%s %d: want a port number, 0 for any free port, or -1 to disable", p.flag, p.port)
		}
	}
	if c.RTMPSPort >= 0 && (c.RTMPSCert == "" || c.RTMPSKey == "") {
		return errors.New("--rtmps-port needs --rtmps-cert and --rtmps-key")
	}
	if (c.RTMPSCert == "") != (c.RTMPSKey == "") {
		return errors.New("--rtmps-cert and --rtmps-key go together")
	}
	return nil
}

// startIngest starts the RTMP(S) server encoders publish to with the
// stream keys of ingest configurations, on host (the address the API
// listens on), and returns the endpoints stages show: "" for a protocol
// that is off.
func (m *Main) startIngest(ctx context.Context, publicURL, host string, keys ivsrt.IngestKeys) (rtmpURL, rtmpsURL string, err error) {
	c := m.Config
	rtmpPort, rtmpsPort := c.RTMPPort, c.RTMPSPort
	if _, port, _ := net.SplitHostPort(c.Listen); port == "0" && !m.ingestPortsGiven {
		rtmpPort, rtmpsPort = min(rtmpPort, 0), min(rtmpsPort, 0) // side by side (tests): any free ports
	}
	if rtmpPort < 0 && rtmpsPort < 0 {
		return "", "", nil
	}
	if m.Node != nil {
		// An encoder would join the stage on whichever node it reached,
		// splitting a stage hosted elsewhere: RTMP is not proxied to the
		// host yet.
		m.Logger.Warn("RTMP(S) ingest is not served in a cluster yet: encoders publish to single servers only")
		return "", "", nil
	}
	ffmpeg, ferr := recording.FFmpegPath()
	if ferr != nil {
		m.Logger.Warn("ffmpeg is not installed: RTMP(S) encoders are refused, their AAC audio cannot be made Opus (Debian: apt-get install ffmpeg)")
	}
	srv := rtmpingest.NewServer(rtmpingest.Config{
		Handler: m.SFU.IngestHandler(keys),
		Logger:  m.Logger.With("component", "rtmp"),
		FFmpeg:  ffmpeg,
	})
	m.ingest = srv
	ingestHost := c.IngestHost
	if ingestHost == "" {
		if u, err := url.Parse(publicURL); err == nil {
			ingestHost = u.Hostname()
		}
	}
	serve := func(port int, protocol rtmpingest.Protocol, cfg *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return "", fmt.Errorf("%s: %w", protocol, err)
		}
		if cfg != nil {
			ln = tls.NewListener(ln, cfg)
		}
		go srv.Serve(ctx, ln, protocol)
		scheme := "rtmp"
		if protocol == rtmpingest.ProtocolRTMPS {
			scheme = "rtmps"
		}
		// The key goes after app/, as with IVS.
		return scheme + "://" + net.JoinHostPort(ingestHost, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + "/app/", nil
	}
	if rtmpPort >= 0 {
		if rtmpURL, err = serve(rtmpPort, rtmpingest.ProtocolRTMP, nil); err != nil {
			return "", "", err
		}
	}
	if rtmpsPort >= 0 {
		cert, err := tls.LoadX509KeyPair(c.RTMPSCert, c.RTMPSKey)
		if err != nil {
			return "", "", fmt.Errorf("--rtmps-cert, --rtmps-key: %w", err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if rtmpsURL, err = serve(rtmpsPort, rtmpingest.ProtocolRTMPS, cfg); err != nil {
			return "", "", err
		}
	}
	m.Logger.Info("RTMP(S) ingest", "rtmp", rtmpURL, "rtmps", rtmpsURL)
	return rtmpURL, rtmpsURL, nil
}

// resetIngestStates marks inactive the ingest configurations the store
// still has active: on a single server that starts, no encoder publishes
// yet (the last run may have ended with kill -9).
func resetIngestStates(ctx context.Context, db ivsrt.IngestConfigurationStore) (int, error) {
	active := ivsrt.IngestActive
	n := 0
	page := ivsrt.Page{Limit: 100}
	for {
		ics, next, err := db.ListIngestConfigurations(ctx, ivsrt.IngestFilter{State: &active}, page)
		if err != nil {
			return n, err
		}
		for _, ic := range ics {
			for _, cred := range ic.Credentials {
				if cred.Active {
					if err := db.SetIngestActive(ctx, ic.ARN, cred.ParticipantID, false); err != nil && ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
						return n, err
					}
					n++
				}
			}
		}
		if next == "" {
			return n, nil
		}
		page.After = next
	}
}
