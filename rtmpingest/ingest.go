// Package rtmpingest is the RTMP and RTMPS ingest of IVS real-time stages:
// an encoder (OBS, ffmpeg, a phone app) publishes to
// rtmp(s)://host/app/<stream key>, and its H.264 video and AAC audio,
// turned into Opus, go to a Stream the stage gives for the key.
//
// It enforces IVS's rules for RTMP ingest and tells the encoder, and the
// stage, which one a stream broke with IVS's error code: H.264 video and
// one AAC audio track, no B-frames, 720p at most, 8.5 Mbps at most. An
// enhanced RTMP encoder may send up to MaxVideoTracks video tracks
// (multitrack: the same picture at several sizes), which the stage takes
// as simulcast layers.
//
// RTMP itself is github.com/bluenviron/gortmplib; AAC to Opus is an ffmpeg
// subprocess per stream (package transcode).
package rtmpingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Protocol is how an encoder connects.
type Protocol string

// Protocols, as IVS names them in its events.
const (
	ProtocolRTMP  Protocol = "RTMP"
	ProtocolRTMPS Protocol = "RTMPS"
)

// IVS's error codes for a refused or ended RTMP stream.
const (
	CodeInvalidStreamKey        = "INVALID_STREAM_KEY"
	CodeReuseOfStreamKey        = "REUSE_OF_STREAM_KEY"
	CodeInvalidProtocol         = "INVALID_PROTOCOL"
	CodeBFramePresent           = "B_FRAME_PRESENT"
	CodeInvalidVideoCodec       = "INVALID_VIDEO_CODEC"
	CodeInvalidAudioCodec       = "INVALID_AUDIO_CODEC"
	CodeResolutionExceeded      = "RESOLUTION_EXCEEDED"
	CodeBitrateExceeded         = "BITRATE_EXCEEDED"
	CodeInvalidInput            = "INVALID_INPUT"
	CodeInternalServerException = "INTERNAL_SERVER_EXCEPTION"
)

// Refusal is why a stream is refused or ended, with IVS's error code:
// INVALID_STREAM_KEY, REUSE_OF_STREAM_KEY, INVALID_PROTOCOL,
// B_FRAME_PRESENT, INVALID_VIDEO_CODEC, INVALID_AUDIO_CODEC,
// RESOLUTION_EXCEEDED, BITRATE_EXCEEDED, INVALID_INPUT,
// INTERNAL_SERVER_EXCEPTION. The encoder is told both.
type Refusal struct{ Code, Message string }

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

func refusef(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrClosed ends the streams of a Server that is closed.
var ErrClosed = errors.New("rtmpingest: server closed")

// Handler is the stage side.
type Handler interface {
	// Start is called when an encoder publishes with a stream key (the
	// last element of the URL path: rtmp(s)://host/app/<key>); it returns
	// where the stream goes, or an error (a *Refusal, which the encoder is
	// told before a clean disconnect; any other error is logged and told
	// as INTERNAL_SERVER_EXCEPTION). ctx ends with the connection.
	Start(ctx context.Context, key string, protocol Protocol, remote net.Addr) (Stream, error)
}

// Stream receives one encoder's media. Calls come from one goroutine, in
// order. A call that waits holds up this encoder only (2 s of media are
// queued, then its connection is no longer read), but one that never
// returns holds up Server.Close too. An error from Begin, WriteVideo or
// WriteAudio ends the stream: the encoder is disconnected (told the
// Refusal if the error is one) and End gets that error.
type Stream interface {
	// Begin: the tracks are known and valid (H.264 video, one AAC audio
	// transcoded to Opus).
	Begin(info StreamInfo) error
	// WriteVideo: one H.264 access unit of video track track (an id of
	// StreamInfo.Video), NAL units without start codes; SPS and PPS are
	// put before every IDR picture's NAL units. pts from the stream's
	// start. The first access unit of each track is a keyframe.
	WriteVideo(track uint8, pts time.Duration, nalus [][]byte, keyframe bool) error
	// WriteAudio: one 20 ms Opus packet (48 kHz, 2 channels signalled as
	// in WebRTC), pts from the start.
	WriteAudio(pts time.Duration, opus []byte) error
	// End: the stream is over: nil when the encoder stopped; a *Refusal
	// when the stream broke a rule (then Begin may never have been
	// called); another error when the connection failed.
	End(err error)
}

// MaxVideoTracks is how many video tracks an enhanced RTMP multitrack
// stream may have: as many as a stage's simulcast has layers.
const MaxVideoTracks = 3

// StreamInfo describes a stream's tracks when it begins.
type StreamInfo struct {
	// Video is the video tracks, by track id: one, or several of an
	// enhanced RTMP multitrack encoder, each the same picture at its own
	// size and bit rate.
	Video []VideoTrack
	// AudioSampleRate and AudioChannels are the encoder's AAC; the Opus
	// packets are 48 kHz, mono for mono AAC and stereo otherwise.
	AudioSampleRate, AudioChannels int
}

// VideoTrack describes one video track.
type VideoTrack struct {
	// ID is the track's id in the stream: 0 for a stream of one track
	// (and for the first of an enhanced RTMP multitrack stream).
	ID uint8
	// Width and Height are the track's, from its SPS.
	Width, Height int
	SPS, PPS      []byte
}

// Config configures a Server.
type Config struct {
	Handler Handler
	Logger  *slog.Logger
	// FFmpeg is the path of ffmpeg, for AAC→Opus; "" = not available:
	// every stream is refused with INTERNAL_SERVER_EXCEPTION "ffmpeg is
	// needed for AAC audio", before Handler.Start.
	FFmpeg string
	// MaxWidth and MaxHeight are 1280x720 by default (IVS: over 720p is
	// RESOLUTION_EXCEEDED). A portrait picture is fine too: the longer
	// side is compared to the larger of the two, the shorter to the other.
	MaxWidth, MaxHeight int
	// MaxBitrate is 8_500_000 bits/s by default, measured over 5 s of the
	// stream (video and audio payload); BITRATE_EXCEEDED beyond.
	MaxBitrate int64
}

// Server accepts encoders' connections.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // ends with Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // connections

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
}

// NewServer returns a Server; cfg.Handler must be set.
func NewServer(cfg Config) *Server {
	if cfg.Handler == nil {
		panic("rtmpingest: Config.Handler is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxWidth <= 0 || cfg.MaxHeight <= 0 {
		cfg.MaxWidth, cfg.MaxHeight = 1280, 720
	}
	if cfg.MaxBitrate <= 0 {
		cfg.MaxBitrate = 8_500_000
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "rtmpingest"),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
	}
}

// Serve accepts connections on ln (plain RTMP, or a tls.Listener for
// RTMPS: the protocol is told by the argument) until ln is closed or ctx
// ends, which ends its connections too; each connection has its own
// goroutine. It returns nil then, or ErrClosed once the Server is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener, protocol Protocol) error {
	if protocol != ProtocolRTMP && protocol != ProtocolRTMPS {
		return fmt.Errorf("rtmpingest: protocol %q: want %s or %s", protocol, ProtocolRTMP, ProtocolRTMPS)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	log := s.log.With("protocol", protocol, "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			switch {
			case s.ctx.Err() != nil:
				return ErrClosed
			case ctx.Err() != nil || errors.Is(err, net.ErrClosed):
				return nil
			}
			// Out of file descriptors and the like: wait for some to
			// be freed, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			case <-s.ctx.Done():
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, nc, protocol)
		}()
	}
}

// Close ends every connection (their streams End with an error wrapping
// ErrClosed) and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.cancel(ErrClosed)
		for ln := range s.listeners {
			ln.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
