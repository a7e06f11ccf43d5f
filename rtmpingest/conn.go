package rtmpingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"
)

const (
	// handshakeTimeout bounds the TLS and RTMP handshakes and the
	// commands up to publish.
	handshakeTimeout = 10 * time.Second
	// readTimeout is the silence that ends a connection; encoders send
	// media many times a second.
	readTimeout = 10 * time.Second
	// goodbyeTimeout bounds telling an encoder why it is refused and
	// waiting for it to hang up.
	goodbyeTimeout = 2 * time.Second
)

// conn is one encoder's connection.
type conn struct {
	srv      *Server
	nc       net.Conn
	sc       *gortmplib.ServerConn
	protocol Protocol
	log      *slog.Logger

	// ctx ends when the connection must stop: the Server closes, Serve's
	// context ends, the Stream fails or the audio transcoding does; its
	// cause says why. Then a read in progress is interrupted.
	ctx           context.Context
	cancel        context.CancelCauseFunc
	interrupted   chan struct{} // closed once ctx has interrupted nc's reads
	stopInterrupt func() bool
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn, protocol Protocol) {
	defer nc.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopClose := context.AfterFunc(s.ctx, func() { cancel(context.Cause(s.ctx)) })
	defer stopClose()
	c := &conn{
		srv:         s,
		nc:          nc,
		protocol:    protocol,
		log:         s.log.With("protocol", protocol, "remote", nc.RemoteAddr().String()),
		ctx:         ctx,
		cancel:      cancel,
		interrupted: make(chan struct{}),
	}
	// A deadline in the past ends a read at once, and leaves the
	// connection open to tell the encoder why.
	c.stopInterrupt = context.AfterFunc(ctx, func() {
		nc.SetDeadline(time.Unix(1, 0))
		close(c.interrupted)
	})
	c.run()
}

func (c *conn) run() {
	key, err := c.accept()
	if err != nil {
		c.log.Debug("connection ended before publishing", "err", err)
		return
	}
	if key == "" {
		c.goodbye(refusef(CodeInvalidStreamKey, "no stream key: publish to rtmp(s)://host/app/<stream key>"))
		return
	}
	if c.srv.cfg.FFmpeg == "" {
		c.log.Error("stream refused: no ffmpeg to turn AAC into Opus")
		c.goodbye(refusef(CodeInternalServerException, "ffmpeg is needed for AAC audio"))
		return
	}

	stream, err := c.srv.cfg.Handler.Start(c.ctx, key, c.protocol, c.nc.RemoteAddr())
	if err != nil {
		var r *Refusal
		if !errors.As(err, &r) {
			c.log.Error("stream refused: the stage failed", "err", err)
			r = refusef(CodeInternalServerException, "the stream could not be started")
		} else {
			c.log.Info("stream refused", "code", r.Code, "reason", r.Message)
		}
		c.goodbye(r)
		return
	}

	out := newSink(stream, c.cancel)
	go out.run()
	err = c.publish(out)
	out.end(err)

	var r *Refusal
	switch {
	case err == nil:
		c.log.Info("stream ended")
	case errors.As(err, &r):
		c.log.Info("stream refused", "code", r.Code, "reason", r.Message)
		c.goodbye(r)
	default:
		c.log.Info("stream ended", "err", err)
	}
	<-out.done
}

// accept does the handshakes and waits for the encoder to publish; it
// returns the stream key, or why there is none.
func (c *conn) accept() (key string, err error) {
	defer recoverPanic(c.log, &err)
	c.nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if tc, isTLS := c.nc.(*tls.Conn); isTLS {
		if err := tc.HandshakeContext(c.ctx); err != nil {
			return "", fmt.Errorf("TLS handshake: %w", err)
		}
	}
	c.sc = &gortmplib.ServerConn{RW: c.nc}
	if err := c.sc.Initialize(); err != nil {
		return "", fmt.Errorf("RTMP handshake: %w", err)
	}
	if err := c.sc.AcceptConn(); err != nil {
		return "", fmt.Errorf("waiting for publish: %w", err)
	}
	if !c.sc.Publish {
		c.say("NetStream.Play.Failed", "playing is not offered: this server takes published streams")
		c.hangUp()
		return "", errors.New("the client wants to play, not publish")
	}
	return streamKey(c.sc.URL), nil
}

// streamKey is the last element of the URL's path, after the
// application's.
func streamKey(u *url.URL) string {
	p := strings.Trim(u.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "" // the application alone
	}
	return p[i+1:]
}

// publish reads the stream until it ends, and returns why: nil when the
// encoder stopped, a *Refusal, or another error.
func (c *conn) publish(out *sink) (err error) {
	defer recoverPanic(c.log, &err)
	if err := c.readable(); err != nil { // Start may have taken a while
		return err
	}
	if err := c.sc.AcceptAction(); err != nil {
		return fmt.Errorf("rtmpingest: accepting publish: %w", err)
	}
	c.log.Info("stream started")
	p := newPublisher(c.ctx, publisherConfig{
		maxWidth:   c.srv.cfg.MaxWidth,
		maxHeight:  c.srv.cfg.MaxHeight,
		maxBitrate: c.srv.cfg.MaxBitrate,
		newAudio:   ffmpegAudio(c.srv.cfg.FFmpeg),
	}, out, c.cancel, c.log)
	defer p.close()
	for {
		if err := c.readable(); err != nil {
			return err
		}
		msg, err := c.sc.Read()
		if err != nil {
			return c.readError(err)
		}
		if err := p.handle(msg, time.Now()); err != nil {
			if errors.Is(err, errUnpublished) {
				return nil
			}
			return err
		}
	}
}

// readable sets the deadline of the next read, unless ctx has ended.
func (c *conn) readable() error {
	if c.ctx.Err() != nil {
		return context.Cause(c.ctx)
	}
	c.nc.SetDeadline(time.Now().Add(readTimeout))
	// ctx may have ended, and its deadline been set, just before this
	// one replaced it.
	if c.ctx.Err() != nil {
		return context.Cause(c.ctx)
	}
	return nil
}

// readError is why reading failed: the end of the stream, a broken
// connection, or a stream gortmplib cannot read, which is the encoder's
// fault (a codec it does not know, or bad data).
func (c *conn) readError(err error) error {
	if c.ctx.Err() != nil {
		return context.Cause(c.ctx)
	}
	var opErr *net.OpError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case err == io.EOF:
		// The encoder hung up between messages. (Only the bare io.EOF:
		// gortmplib wraps it in its errors for a truncated message.)
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("rtmpingest: nothing received for %v: %w", readTimeout, err)
	case errors.As(err, &opErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.As(err, &recErr), errors.As(err, &alert):
		return fmt.Errorf("rtmpingest: reading: %w", err)
	}
	return parseRefusal(err)
}

// parseRefusal is the refusal for a message gortmplib could not read. Its
// errors have no types, so their text tells what was wrong.
func parseRefusal(err error) *Refusal {
	s := err.Error()
	switch {
	case strings.Contains(s, "unsupported video codec"):
		// Legacy FLV codec ids (FLV specification, VIDEODATA).
		return refusef(CodeInvalidVideoCodec, "the video is not H.264 (%s)", s)
	case strings.Contains(s, "H265"), strings.Contains(s, "AV1 configuration"), strings.Contains(s, "VP9 configuration"):
		return refusef(CodeInvalidVideoCodec, "the video is not H.264 (%s)", s)
	case strings.Contains(s, "unsupported audio codec"):
		return refusef(CodeInvalidAudioCodec, "the audio is not AAC (%s)", s)
	case strings.Contains(s, "Opus ID header"), strings.Contains(s, "FLAC STREAMINFO"):
		return refusef(CodeInvalidAudioCodec, "the audio is not AAC (%s)", s)
	case strings.Contains(s, "MPEG4 audio config"), strings.Contains(s, "MPEG-4 audio config"):
		return refusef(CodeInvalidAudioCodec, "the audio is not AAC-LC or HE-AAC (%s)", s)
	case strings.Contains(s, "unsupported multitrack type"), strings.Contains(s, "video multitrack"):
		return refusef(CodeInvalidVideoCodec, "more than one track (enhanced RTMP multitrack) is not supported: send one H.264 video track")
	case strings.Contains(s, "unsupported fourCC"):
		return fourCCRefusal(s)
	}
	return refusef(CodeInvalidInput, "the RTMP stream could not be read: %s", s)
}

// fourCCRefusal refuses an enhanced RTMP codec gortmplib does not know,
// from its error "unsupported fourCC: <number>".
func fourCCRefusal(s string) *Refusal {
	var n uint32
	if i := strings.LastIndexByte(s, ' '); i >= 0 {
		fmt.Sscan(s[i+1:], &n)
	}
	cc := string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	switch cc {
	case "ac-3", "ec-3", "Opus", "fLaC", ".mp3", "mp4a", "ipcm", "fpcm":
		return refusef(CodeInvalidAudioCodec, "the audio is %q, not AAC", cc)
	}
	return refusef(CodeInvalidVideoCodec, "the codec %q is not H.264 video", cc)
}

// say tells the encoder a status, as an RTMP server does (onStatus on the
// stream, level error).
func (c *conn) say(code, description string) error {
	c.nc.SetWriteDeadline(time.Now().Add(goodbyeTimeout))
	return c.sc.Write(&message.CommandAMF0{
		ChunkStreamID: 5,
		// Stream 1, the one createStream made, as gortmplib writes it.
		MessageStreamID: 0x1000000,
		Name:            "onStatus",
		Arguments: []any{
			nil,
			amf0.Object{
				{Key: "level", Value: "error"},
				{Key: "code", Value: code},
				{Key: "description", Value: description},
			},
		},
	})
}

// goodbye tells the encoder why its stream is refused and hangs up.
func (c *conn) goodbye(r *Refusal) {
	if c.srv.ctx.Err() != nil {
		return // closing: no time for it
	}
	// The deadline that ended a read must not end these writes.
	if !c.stopInterrupt() && c.ctx.Err() != nil {
		<-c.interrupted
	}
	code := "NetStream.Publish.Rejected"
	if r.Code == CodeReuseOfStreamKey {
		code = "NetStream.Publish.BadName" // the name is being published
	}
	if err := c.say(code, r.Error()); err != nil {
		c.log.Debug("telling the encoder failed", "err", err)
		return
	}
	c.hangUp()
}

// hangUp closes the connection cleanly: our side first, then what the
// encoder still sends is read until it hangs up too, so that the status
// just written reaches it rather than a reset.
func (c *conn) hangUp() {
	switch nc := c.nc.(type) {
	case *net.TCPConn:
		nc.CloseWrite()
	case *tls.Conn:
		nc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(goodbyeTimeout))
	io.Copy(io.Discard, c.nc)
}

// recoverPanic turns a panic while reading the encoder's bytes into an
// error: hostile input must not bring down the server.
func recoverPanic(log *slog.Logger, err *error) {
	if v := recover(); v != nil {
		log.Error("panic reading a stream", "panic", v, "stack", string(debug.Stack()))
		*err = refusef(CodeInternalServerException, "the stream could not be read")
	}
}
