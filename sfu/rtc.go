package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/sfu/bwe"
)

// Codecs a publisher may send: Opus, VP8 and H.264 constrained baseline
// (and baseline) in packetization mode 1, what browsers and OBS offer.
// srtpReplayWindow is how far behind the newest packet an SRTP packet may
// come and still be taken: as far as the retransmission buffer reaches
// (1024 packets, see forward), so that a retransmission arriving a round
// trip late still counts.
const srtpReplayWindow = 1024

var (
	codecOpus = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111,
	}
	videoFeedback = []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}}
	codecVP8      = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: videoFeedback},
		PayloadType: 96,
	}
	codecH264ConstrainedBaseline = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			RTCPFeedback: videoFeedback},
		PayloadType: 102,
	}
	codecH264Baseline = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
			RTCPFeedback: videoFeedback},
		PayloadType: 104,
	}
)

// listen binds the media sockets and builds the WebRTC API all peer
// connections are made with.
func (s *Server) listen() error {
	host, portText, err := net.SplitHostPort(s.cfg.UDPAddr)
	if err != nil {
		return fmt.Errorf("sfu: UDP address %q: %w", s.cfg.UDPAddr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("sfu: UDP address %q: bad port", s.cfg.UDPAddr)
	}
	ip := net.ParseIP(host)
	if host != "" && ip == nil {
		return fmt.Errorf("sfu: UDP address %q: want an IP address, not a name", s.cfg.UDPAddr)
	}
	specific := ip != nil && !ip.IsUnspecified()
	logs := pionLoggerFactory{s.logger}

	if specific {
		sockets := max(s.cfg.UDPSockets, 1)
		conn, err := listenUDPGroup(&net.UDPAddr{IP: ip, Port: port}, sockets)
		if err != nil {
			return fmt.Errorf("sfu: listen on UDP %s: %w", s.cfg.UDPAddr, err)
		}
		s.udpConn = conn
		s.udpMux = webrtc.NewICEUDPMux(logs.NewLogger("ice"), conn)
	} else {
		// One socket per local address, all on the same port: replies
		// leave from the address the client wrote to.
		mux, err := ice.NewMultiUDPMuxFromPort(port, ice.UDPMuxFromPortWithLogger(logs.NewLogger("ice")))
		if err != nil {
			return fmt.Errorf("sfu: listen on UDP port %d: %w", port, err)
		}
		s.udpMux = mux
	}
	if s.cfg.TCPAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.TCPAddr)
		if err != nil {
			return fmt.Errorf("sfu: listen on TCP %s: %w", s.cfg.TCPAddr, err)
		}
		s.tcpLn = ln
		s.tcpMux = webrtc.NewICETCPMux(logs.NewLogger("ice"), ln, 64)
	}

	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcpMux != nil {
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(s.iceDisconnected, s.iceFailed, s.iceKA)
	// A retransmission the server asked for comes after every packet sent
	// since the loss: with pion's default SRTP replay window (64 packets,
	// under 200 ms of video) those that come later are dropped as replays.
	se.SetSRTPReplayProtectionWindow(srtpReplayWindow)
	if specific {
		// Offer only the address the media socket is bound to.
		se.SetIPFilter(func(candidate net.IP) bool { return candidate.Equal(ip) })
		se.SetIncludeLoopbackCandidate(ip.IsLoopback())
	}
	if len(s.cfg.PublicIPs) > 0 {
		for _, p := range s.cfg.PublicIPs {
			if net.ParseIP(p) == nil {
				return fmt.Errorf("sfu: public IP %q is not an IP address", p)
			}
		}
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        s.cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return fmt.Errorf("sfu: public IPs: %w", err)
		}
	}

	var me webrtc.MediaEngine
	if err := me.RegisterCodec(codecOpus, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("sfu: register codec: %w", err)
	}
	for _, c := range []webrtc.RTPCodecParameters{codecVP8, codecH264ConstrainedBaseline, codecH264Baseline} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("sfu: register codec: %w", err)
		}
		// Retransmissions in their own stream (RFC 4588), for those who
		// negotiate them: publishers' are repaired into their stream, and
		// subscribers' NACKs are answered in theirs.
		rtx := webrtc.RTPCodecParameters{PayloadType: c.PayloadType + 1, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", c.PayloadType)}}
		if err := me.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("sfu: register codec: %w", err)
		}
	}
	// Audio levels: for the active speakers, and forwarded to
	// subscribers that negotiate them.
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("sfu: register the audio level extension: %w", err)
	}
	// Simulcast publishers tell their layers apart by rid (RFC 8852),
	// which needs the MID too.
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("sfu: register the %s extension: %w", uri, err)
		}
	}
	// Publishers get NACKs for what they lose and TWCC feedback for their
	// bandwidth estimate; both get sender and receiver reports.
	// Subscribers' NACKs are answered by the forward package from one
	// buffer per published track, not by pion's NACK responder, which
	// would copy every packet into a buffer of each subscriber; their
	// bandwidth is estimated per connection (see subscriberAPI).
	generator, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return fmt.Errorf("sfu: configure NACK: %w", err)
	}
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	receiverReports, err := report.NewReceiverInterceptor()
	if err != nil {
		return fmt.Errorf("sfu: configure RTCP reports: %w", err)
	}
	senderReports, err := report.NewSenderInterceptor()
	if err != nil {
		return fmt.Errorf("sfu: configure RTCP reports: %w", err)
	}
	// Registers the TWCC header extension and feedback with me; the
	// registry it fills is not used: the factory list below is.
	var unused interceptor.Registry
	if err := webrtc.ConfigureTWCCSender(&me, &unused); err != nil {
		return fmt.Errorf("sfu: configure TWCC: %w", err)
	}
	feedback, err := twcc.NewSenderInterceptor()
	if err != nil {
		return fmt.Errorf("sfu: configure TWCC: %w", err)
	}
	s.mediaEngine, s.settings = &me, se
	s.interceptors = []interceptor.Factory{generator, receiverReports, senderReports, feedback}
	s.api = s.newAPI(nil)
	return nil
}

// newAPI returns an API whose peer connections have the server's
// interceptors, then extra.
func (s *Server) newAPI(extra []interceptor.Factory) *webrtc.API {
	var ir interceptor.Registry
	for _, f := range s.interceptors {
		ir.Add(f)
	}
	for _, f := range extra {
		ir.Add(f)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(s.mediaEngine), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(s.settings))
}

// subscriberAPI returns an API for one subscriber's connection, whose
// bandwidth est estimates.
func (s *Server) subscriberAPI(est *bwe.Estimator) (*webrtc.API, error) {
	extra, err := est.Interceptors()
	if err != nil {
		return nil, fmt.Errorf("sfu: bandwidth estimator: %w", err)
	}
	return s.newAPI(extra), nil
}

// closeSockets releases the media sockets.
func (s *Server) closeSockets() error {
	var errs []error
	if s.udpMux != nil {
		errs = append(errs, s.udpMux.Close())
	}
	if s.tcpMux != nil {
		errs = append(errs, s.tcpMux.Close())
	}
	if s.tcpLn != nil {
		if err := s.tcpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if s.udpConn != nil {
		if err := s.udpConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pionLoggerFactory sends pion's errors and warnings to the server's
// logger, a level lower: pion reports as errors what a network causes.
type pionLoggerFactory struct{ logger *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.logger.With("scope", scope)}
}

type pionLogger struct{ logger *slog.Logger }

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(string)          {}
func (l pionLogger) Debugf(string, ...any) {}
func (l pionLogger) Info(string)           {}
func (l pionLogger) Infof(string, ...any)  {}
func (l pionLogger) Warn(msg string)       { l.logger.Debug("pion", "msg", msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.logger.Debug("pion", "msg", fmt.Sprintf(format, args...))
}
func (l pionLogger) Error(msg string) { l.logger.Warn("pion", "msg", msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.logger.Warn("pion", "msg", fmt.Sprintf(format, args...))
}
