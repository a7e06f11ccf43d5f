// Package natssink delivers the event stream to NATS: each event's
// envelope is published on a subject of its own,
//
//	<prefix>.<stage resource id>.<event token>
//
// for example ivs.AbCdEf123456.participant_published, so that subscribers
// pick the stages and events they want with NATS wildcards
// (ivs.*.stage_created, ivs.AbCdEf123456.>).
//
// In core mode a publish counts as delivered once the server has it: the
// sender flushes and waits for the server's answer. Core NATS does not
// keep messages, so a subscriber that is away misses them.
//
// In JetStream mode a publish counts as delivered once a stream has stored
// it and acknowledged it. The sender does not create streams: the operator
// owns them, and one must cover "<prefix>.>" (with the default prefix,
// "ivs.>"); until one does, every publish fails and the relay retries it.
// Each message carries the envelope's id as Nats-Msg-Id, so the stream
// drops a retry of an event it already stored, provided the retry comes
// within the stream's duplicate window (two minutes by default): a window
// at least as long as the sink's longest backoff drops them all.
package natssink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
)

// Defaults of Config.
const (
	DefaultSubjectPrefix = "ivs"
	DefaultName          = "ivsrt"
	DefaultReconnectWait = 2 * time.Second
)

// Headers of a published message, besides Nats-Msg-Id (the envelope's id)
// and Content-Type.
const (
	// AttemptHeader carries the try's number, from 1.
	AttemptHeader = events.AttemptHeader
	// DetailTypeHeader carries the envelope's detail-type.
	DetailTypeHeader = "Ivsrt-Detail-Type"
)

// Config configures a Sender.
type Config struct {
	// URL of the server: nats://host:port, or several separated by commas.
	// It may carry credentials (nats://user:password@host, nats://token@host).
	URL string
	// SubjectPrefix is the subjects' first token or tokens
	// (default DefaultSubjectPrefix).
	SubjectPrefix string
	// JetStream publishes to a stream and waits for its acknowledgement
	// instead of publishing on core NATS.
	JetStream bool
	// Name is the connection's name, as the server shows it
	// (default DefaultName).
	Name string
	// ReconnectWait is the pause between attempts to reach the server
	// (default DefaultReconnectWait).
	ReconnectWait time.Duration
}

// Sender publishes events to NATS. It implements events.Sender.
type Sender struct {
	prefix string
	target string
	nc     *nats.Conn
	js     jetstream.JetStream // nil in core mode
	log    *slog.Logger
}

var _ events.Sender = (*Sender)(nil)

// New connects to the server of cfg. A server that cannot be reached is
// not an error: the sender keeps trying to connect, and its sends fail (to
// be retried by the relay) until it has. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Sender, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, errors.New("nats sink: a server URL is required")
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if err := validPrefix(cfg.SubjectPrefix); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.ReconnectWait <= 0 {
		cfg.ReconnectWait = DefaultReconnectWait
	}
	s := &Sender{prefix: cfg.SubjectPrefix, target: redactURLs(cfg.URL)}
	s.log = logger.With("component", "natssink", "target", s.target)

	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.RetryOnFailedConnect(true),
		// No buffering while disconnected: a publish then fails at once,
		// and the relay, which keeps the event, tries it again later.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(30*time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			s.log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			s.log.Info("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.log.Error("NATS error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats sink %s: %w", s.target, err)
	}
	s.nc = nc
	if cfg.JetStream {
		if s.js, err = jetstream.New(nc); err != nil {
			nc.Close()
			return nil, fmt.Errorf("nats sink %s: %w", s.target, err)
		}
	}
	if !nc.IsConnected() {
		s.log.Warn("NATS server unreachable: will keep trying")
	}
	return s, nil
}

// validPrefix checks that prefix is one or more literal subject tokens.
func validPrefix(prefix string) error {
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("nats sink: subject prefix %q: want dot-separated tokens, none empty, without wildcards or spaces", prefix)
		}
	}
	return nil
}

// Target returns the server URL(s) without credentials, for logs and
// status pages.
func (s *Sender) Target() string { return s.target }

// Close closes the connection. Sends fail afterwards.
func (s *Sender) Close() { s.nc.Close() }

// Send implements events.Sender: it publishes a's envelope on its subject
// and returns once the server (core mode) or a stream (JetStream mode)
// has it.
func (s *Sender) Send(ctx context.Context, a *events.Attempt) error {
	if !s.nc.IsConnected() {
		return fmt.Errorf("NATS %s: not connected (%s)", s.target, strings.ToLower(s.nc.Status().String()))
	}
	msg := s.message(a)
	if _, ok := ctx.Deadline(); !ok {
		// Flushing needs a deadline; the relay always gives one.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, events.DefaultTimeout)
		defer cancel()
	}
	if s.js != nil {
		ack, err := s.js.PublishMsg(ctx, msg)
		if err != nil {
			return fmt.Errorf("NATS %s: publish %s to JetStream: %w", s.target, msg.Subject, err)
		}
		if ack.Duplicate {
			s.log.Debug("event already in stream", "id", a.Envelope.ID, "stream", ack.Stream, "seq", ack.Sequence)
		}
		return nil
	}
	if err := s.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("NATS %s: publish %s: %w", s.target, msg.Subject, err)
	}
	// The server answers the flush's PING after it has handled the publish
	// sent before it.
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("NATS %s: publish %s: flush: %w", s.target, msg.Subject, err)
	}
	return nil
}

func (s *Sender) message(a *events.Attempt) *nats.Msg {
	msg := nats.NewMsg(Subject(s.prefix, a.Event))
	msg.Data = a.Body
	if a.Envelope.ID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, a.Envelope.ID)
	}
	msg.Header.Set("Content-Type", "application/json")
	msg.Header.Set(AttemptHeader, strconv.Itoa(a.Number))
	msg.Header.Set(DetailTypeHeader, a.Envelope.DetailType)
	return msg
}

// Subject returns the subject of ev under prefix:
// <prefix>.<stage resource id>.<event token>, where the stage resource id
// is the last path element of the stage's ARN and the event token is the
// event's name in lower case with spaces as underscores ("Participant
// Published" is participant_published). Every character of the two but
// ASCII letters, digits, '_' and '-' becomes '_', so that they stay one
// token each and never a wildcard. prefix is taken as it is.
func Subject(prefix string, ev *ivsrt.StreamEvent) string {
	arn := string(ev.StageARN)
	id := arn[strings.LastIndexByte(arn, '/')+1:]
	name := strings.ReplaceAll(strings.ToLower(ev.EventName()), " ", "_")
	return prefix + "." + token(id) + "." + token(name)
}

// token returns s with every character outside [A-Za-z0-9_-] replaced by
// '_'; "_" if s is empty.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// redactURLs returns the comma-separated server URLs of rawURLs without
// user information (user, password or token).
func redactURLs(rawURLs string) string {
	var out []string
	for u := range strings.SplitSeq(rawURLs, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		out = append(out, events.Redact(u))
	}
	return strings.Join(out, ",")
}
