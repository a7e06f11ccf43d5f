package sfu

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/rtmpingest"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// RTMP(S) ingest. An encoder that publishes with a stream key of an
// ingest configuration is a participant of the configuration's stage,
// with the credential's participant id and the configuration's user id
// and attributes, and protocol RTMP or RTMPS: it joins when it starts
// publishing and leaves when it stops. Its H.264 video is forwarded as
// it comes, packetized for RTP (RFC 6184); its AAC audio arrives here
// transcoded to Opus (package rtmpingest). Refusals after the stage is
// known are recorded as PUBLISH_ERROR events with IVS's codes.

// rtpTime is pts in units of clockRate, wrapping as RTP times do; in
// two steps, so that a stream of days does not overflow.
func rtpTime(pts time.Duration, clockRate int64) uint32 {
	sec, rem := int64(pts/time.Second), int64(pts%time.Second)
	return uint32(sec*clockRate + rem*clockRate/int64(time.Second))
}

// absDiff is the distance between two RTP times, across a wrap.
func absDiff(a, b uint32) uint32 {
	if d := a - b; d < 1<<31 {
		return d
	}
	return b - a
}

const (
	// opusPacketTicks is one 20 ms Opus packet at 48 kHz.
	opusPacketTicks = 960
	// opusGapTicks is how far an Opus packet's time may be from where the
	// last one ended before it is taken as a gap in the stream (40 ms).
	opusGapTicks = 1920
)

// ingestMTU bounds the RTP payloads of ingested video: what fits a
// packet with the extensions forwarding adds, over any path.
const ingestMTU = 1200

// Payload types and clock rates of ingested media: the forward package
// rewrites payload types for each subscriber, so these only need to be
// consistent.
const (
	ingestVideoPT   = 102
	ingestAudioPT   = 111
	h264ClockRate   = 90000
	opusClockRate   = 48000
	ingestOpusFmtp  = "minptime=10;useinbandfec=1"
	ingestStoreWait = 5 * time.Second
	// ingestTakeoverSilence is how long an encoder's connection must have
	// brought nothing for a new connection with its key to take over: an
	// encoder sends audio every few tens of milliseconds, so its
	// connection is dead (a network that dropped it without a word, which
	// the read timeout would find only later) and the encoder is
	// reconnecting.
	ingestTakeoverSilence = 2 * time.Second
)

var _ rtmpingest.Handler = (*IngestHandler)(nil)

// IngestHandler admits RTMP(S) encoders to stages: the rtmpingest
// server's Handler.
type IngestHandler struct {
	s    *Server
	keys ivsrt.IngestKeys
}

// IngestHandler returns the handler of RTMP(S) streams, which finds the
// ingest configuration of a stream key in keys.
func (s *Server) IngestHandler(keys ivsrt.IngestKeys) *IngestHandler {
	return &IngestHandler{s: s, keys: keys}
}

// ingestStream is one encoder's stream in a stage.
type ingestStream struct {
	s        *Server
	st       *stage
	keys     ivsrt.IngestKeys
	arn      ivsrt.IngestConfigurationARN
	id       ivsrt.ParticipantID
	protocol string

	// stopped is set when the stage ends the stream (the participant
	// disconnected, the stage deleted, the server closing): the next
	// media fails, which disconnects the encoder.
	stopped atomic.Bool
	// heardAt is when the stream last brought media, or started (unix
	// nanoseconds).
	heardAt atomic.Int64

	// Guarded by st.mu.
	pub   *publication
	live  bool
	ended bool

	// Owned by the stream's goroutine (rtmpingest calls it in order).
	video        []*ingestVideo // by track, as rtmpingest announced them
	audio        *forward.Upstream
	audioSeq     uint16
	audioNext    uint32 // the RTP time the next Opus packet starts at
	audioStarted bool
	audioSSRC    uint32
}

// ingestVideo is one video track of an encoder: its only one, or a
// simulcast layer of an enhanced RTMP multitrack stream.
type ingestVideo struct {
	track uint8
	out   interface{ WriteRTP(*rtp.Packet) error } // the upstream, or its layer
	h264  codecs.H264Payloader
	seq   uint16
	ssrc  uint32
}

// ingestRID is the simulcast layer name of multitrack track id: its
// order does not matter, the forward package ranks layers by picture
// size.
func ingestRID(id uint8) string { return fmt.Sprint("t", id) }

// randomSSRC picks the SSRC of an ingested stream: any will do, the
// forward package gives each subscriber its own.
func randomSSRC() uint32 { return rand.Uint32() }

// ingestRefusal is a refusal of rtmpingest's kind.
func ingestRefusal(code, format string, args ...any) *rtmpingest.Refusal {
	return &rtmpingest.Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Start admits an encoder publishing with key: the key must be an
// ingest configuration's, the protocol one it allows, its stage must
// exist and the credential must not be in use.
func (h *IngestHandler) Start(ctx context.Context, key string, protocol rtmpingest.Protocol, remote net.Addr) (rtmpingest.Stream, error) {
	s := h.s
	lctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	ic, cred, err := h.keys.IngestByStreamKey(lctx, key)
	cancel()
	switch {
	case ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND:
		// Not recorded: there is no stage to record it in.
		return nil, ingestRefusal(ivsrt.ErrInvalidStreamKey, "the stream key is not one of an ingest configuration")
	case err != nil:
		s.logger.Warn("ingest: stream key lookup failed", "remote", remote, "error", err)
		return nil, ingestRefusal(ivsrt.ErrInternalServer, "the stream key could not be checked")
	case ic.StageARN == "":
		return nil, ingestRefusal(ivsrt.ErrInvalidStreamKey, "the ingest configuration %s is not attached to a stage", ic.ARN)
	}
	st, ref := s.lockStage(ic.StageARN)
	if ref != nil {
		if ref.code == codeStageNotFound {
			return nil, ingestRefusal(ivsrt.ErrInvalidStreamKey, "the stage %s of the ingest configuration does not exist", ic.StageARN)
		}
		return nil, ingestRefusal(ivsrt.ErrInternalServer, "%s", ref.message)
	}
	defer st.unlock()
	is := &ingestStream{s: s, st: st, keys: h.keys, arn: ic.ARN, id: cred.ParticipantID, protocol: string(protocol),
		audioSSRC: randomSSRC()}
	is.heard()
	if protocol == rtmpingest.ProtocolRTMP && !ic.InsecureIngest {
		return nil, st.refuseIngest(ctx, is, ic, ingestRefusal(ivsrt.ErrInvalidProtocol,
			"the ingest configuration takes RTMPS only (insecureIngest is false)"))
	}
	if p := st.parts[cred.ParticipantID]; p != nil {
		old := p.ingest
		if old == nil || old.silence() < ingestTakeoverSilence {
			return nil, st.refuseIngest(ctx, is, ic, ingestRefusal(ivsrt.ErrReuseOfStreamKey,
				"the stream key is in use: another encoder publishes with it"))
		}
		// The connection publishing with the key has gone silent: the
		// encoder lost it and reconnects. The old stream ends (its
		// participant leaves) and the new one joins.
		s.logger.Info("ingest: a silent stream's key reconnects; the old stream ends", "stage", st.arn,
			"participant", cred.ParticipantID, "silent", old.silence().Round(time.Millisecond), "remote", remote)
		st.endIngest(ctx, old)
	}
	if st.publishers("") >= s.cfg.MaxPublishers {
		return nil, st.refuseIngest(ctx, is, ic, ingestRefusal(ivsrt.ErrQuotaExceeded,
			"the stage has the most publishers it may have (%d)", s.cfg.MaxPublishers))
	}
	p, jref := st.join(ctx, ingestToken(ic, cred), ivsrt.ClientDetails{}, is.protocol, joinedWith(ic))
	if jref != nil {
		if jref.code == codeStageNotFound {
			return nil, ingestRefusal(ivsrt.ErrInvalidStreamKey, "the stage %s of the ingest configuration does not exist", ic.StageARN)
		}
		return nil, ingestRefusal(ivsrt.ErrInternalServer, "%s", jref.message)
	}
	p.ingest = is
	is.pub = st.publication(is.id)
	is.pub.ingest = is
	s.addIngest(is)
	st.later(is.syncActive)
	s.logger.Info("ingest: encoder joined", "stage", st.arn, "participant", is.id, "protocol", is.protocol, "remote", remote)
	return is, nil
}

// ingestToken is what an encoder of ic publishing with cred is in its
// stage, as a token would say.
func ingestToken(ic *ivsrt.IngestConfiguration, cred ivsrt.IngestCredential) *ivsrt.ParticipantToken {
	return &ivsrt.ParticipantToken{ParticipantID: cred.ParticipantID, StageARN: ic.StageARN, UserID: ic.UserID,
		Attributes: ic.Attributes, Capabilities: []ivsrt.Capability{ivsrt.CapabilityPublish}}
}

// joinedWith adds to an encoder's JOINED the ingest configuration ic it
// publishes with and whether ic has redundant ingest (the configuration's
// setting, the same for both of its encoders), which GetParticipant shows.
func joinedWith(ic *ivsrt.IngestConfiguration) joinOption {
	return func(ev *ivsrt.Event) {
		ev.IngestConfigurationARN, ev.RedundantIngest = ic.ARN, ic.RedundantIngest()
	}
}

// refuseIngest records the refusal of an encoder whose stage is known:
// as the error of the participant it is, if it is in the stage; else as
// its join, the error and its leave, as for a refused WHIP request. The
// stage is locked.
func (st *stage) refuseIngest(ctx context.Context, is *ingestStream, ic *ivsrt.IngestConfiguration, ref *rtmpingest.Refusal) error {
	ev := &ivsrt.Event{Name: ivsrt.EventPublishError, ParticipantID: is.id, ErrorCode: ref.Code}
	if st.parts[is.id] != nil {
		st.record(ctx, ev)
		return ref
	}
	p, jref := st.join(ctx, ingestToken(ic, ivsrt.IngestCredential{ParticipantID: is.id}), ivsrt.ClientDetails{}, is.protocol, joinedWith(ic))
	if jref != nil {
		return ref
	}
	st.record(ctx, ev)
	st.leaveIfGone(ctx, p)
	return ref
}

// Begin starts publishing the encoder's tracks.
func (is *ingestStream) Begin(info rtmpingest.StreamInfo) error {
	st := is.st
	st.lock()
	defer st.unlock()
	if is.ended {
		return errIngestEnded
	}
	if len(info.Video) == 0 {
		return ingestRefusal(ivsrt.ErrInvalidInput, "the stream has no video")
	}
	// The tracks of a multitrack stream share a codec (subscribers
	// negotiate one): its profile is the first track's.
	video := webrtc.RTPCodecParameters{PayloadType: ingestVideoPT, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: h264ClockRate, SDPFmtpLine: h264Fmtp(info.Video[0].SPS)}}
	audio := webrtc.RTPCodecParameters{PayloadType: ingestAudioPT, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: opusClockRate, Channels: 2, SDPFmtpLine: ingestOpusFmtp}}
	// An encoder cannot be asked for a keyframe (nor to pause a layer):
	// its keyframe interval is what a new subscriber, or one switching
	// layers, waits for at most.
	noKeyframe := func() {}
	src := st.source(is.pub, webrtc.RTPCodecTypeVideo)
	if len(info.Video) == 1 {
		is.video = []*ingestVideo{{track: info.Video[0].ID, out: src.Attach(video, noKeyframe), ssrc: randomSSRC()}}
	} else {
		rids := make([]string, len(info.Video))
		for i, v := range info.Video {
			rids[i] = ingestRID(v.ID)
		}
		up := src.AttachSimulcast(video, rids)
		for _, v := range info.Video {
			layer, err := up.AddLayer(ingestRID(v.ID), noKeyframe)
			if err != nil {
				up.Detach()
				return ingestRefusal(ivsrt.ErrInvalidInput, "video track %d: %v", v.ID, err)
			}
			is.video = append(is.video, &ingestVideo{track: v.ID, out: layer, ssrc: randomSSRC()})
		}
	}
	is.audio = st.source(is.pub, webrtc.RTPCodecTypeAudio).Attach(audio, noKeyframe)
	is.live = true
	ctx := context.Background()
	st.record(ctx, &ivsrt.Event{Name: ivsrt.EventPublishStarted, ParticipantID: is.id})
	is.pub.notifyFeeds(ivsrt.FeedResumed)
	st.changed = true
	s := is.s
	s.goClose(func() { s.startIngestRecording(is) })
	return nil
}

var errIngestEnded = errors.New("sfu: the stream was ended by the stage")

// h264Fmtp is the format of a stream whose sequence parameter set is
// sps: its profile and level, packetization mode 1.
func h264Fmtp(sps []byte) string {
	profile := "42e01f"
	if len(sps) >= 4 {
		profile = hex.EncodeToString(sps[1:4])
	}
	return "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile
}

// WriteVideo forwards one access unit of a video track.
func (is *ingestStream) WriteVideo(track uint8, pts time.Duration, nalus [][]byte, keyframe bool) error {
	if is.video == nil || is.stopped.Load() {
		return errIngestEnded
	}
	var v *ingestVideo
	for _, t := range is.video {
		if t.track == track {
			v = t
		}
	}
	if v == nil {
		return nil // not announced in Begin: rtmpingest sends none
	}
	ts := rtpTime(pts, h264ClockRate)
	var payloads [][]byte
	for _, n := range nalus {
		payloads = append(payloads, v.h264.Payload(ingestMTU, n)...)
	}
	is.heard()
	for i, payload := range payloads {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: ingestVideoPT, SequenceNumber: v.seq,
			Timestamp: ts, SSRC: v.ssrc, Marker: i == len(payloads)-1}, Payload: payload}
		v.seq++
		if err := v.out.WriteRTP(p); errors.Is(err, forward.ErrDetached) {
			return errIngestEnded
		}
	}
	return nil
}

// WriteAudio forwards one Opus packet.
func (is *ingestStream) WriteAudio(pts time.Duration, opus []byte) error {
	if is.audio == nil || is.stopped.Load() {
		return errIngestEnded
	}
	is.heard()
	// Each packet starts where the one before ended: the encoder's times
	// come in whole milliseconds, and a receiver takes a packet a few
	// samples early for a late one. A real gap is followed.
	want := rtpTime(pts, opusClockRate)
	if !is.audioStarted || absDiff(want, is.audioNext) > opusGapTicks {
		is.audioNext, is.audioStarted = want, true
	}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: ingestAudioPT, SequenceNumber: is.audioSeq,
		Timestamp: is.audioNext, SSRC: is.audioSSRC}, Payload: opus}
	is.audioNext += opusPacketTicks
	is.audioSeq++
	if err := is.audio.WriteRTP(p); errors.Is(err, forward.ErrDetached) {
		return errIngestEnded
	}
	return nil
}

// heard notes that the stream brought something now.
func (is *ingestStream) heard() { is.heardAt.Store(time.Now().UnixNano()) }

// silence is how long the stream has brought nothing.
func (is *ingestStream) silence() time.Duration {
	return time.Duration(time.Now().UnixNano() - is.heardAt.Load())
}

// End is the encoder's stream over: a refusal is recorded with its code.
func (is *ingestStream) End(err error) {
	st := is.st
	st.lock()
	defer st.unlock()
	var ref *rtmpingest.Refusal
	errors.As(err, &ref)
	if ref != nil && !is.ended {
		st.record(context.Background(), &ivsrt.Event{Name: ivsrt.EventPublishError, ParticipantID: is.id, ErrorCode: ref.Code})
	}
	st.endIngest(context.Background(), is)
}

// endIngest ends an ingest participant: its publication, its presence,
// its connection; the configuration is told inactive once the stage is
// unlocked. The stage is locked.
func (st *stage) endIngest(ctx context.Context, is *ingestStream) {
	if is.ended {
		return
	}
	is.ended = true
	is.stopped.Store(true)
	if is.live {
		is.live = false
		st.record(ctx, &ivsrt.Event{Name: ivsrt.EventPublishStopped, ParticipantID: is.id})
	}
	if pub := is.pub; pub != nil && st.pubs[is.id] == pub {
		st.endPublication(ctx, pub)
	}
	if p := st.parts[is.id]; p != nil && p.ingest == is {
		p.ingest = nil
		st.leaveIfGone(ctx, p)
	}
	st.changed = true
	st.s.removeIngest(is)
	st.later(is.syncActive)
}

// syncActive tells the store whether the stream's credential publishes:
// whether a stream of it is here now. The writes of all streams are made
// one at a time and say what is true when they are made, so that the
// store ends with the truth whichever order streams start and end in
// (a stream that ends at once, a credential that reconnects). A failed
// write is tried again a few times; a configuration deleted meanwhile
// (with force) is not an error.
func (is *ingestStream) syncActive() {
	s := is.s
	s.ingestStateMu.Lock()
	defer s.ingestStateMu.Unlock()
	for attempt := 0; ; attempt++ {
		active := s.ingestActive(is.arn, is.id)
		ctx, cancel := context.WithTimeout(context.Background(), ingestStoreWait)
		err := is.keys.SetIngestActive(ctx, is.arn, is.id, active)
		cancel()
		if err == nil || ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
			return
		}
		if attempt == 4 {
			s.logger.Warn("ingest: state not stored", "ingest", is.arn, "participant", is.id, "active", active, "error", err)
			return
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// ingestActive reports whether a stream of credential id of arn is here.
func (s *Server) ingestActive(arn ivsrt.IngestConfigurationARN, id ivsrt.ParticipantID) bool {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	for is := range s.ingests {
		if is.arn == arn && is.id == id {
			return true
		}
	}
	return false
}

// startIngestRecording starts recording an ingest participant that
// publishes, if its stage records participants. Call it on a goroutine
// of its own.
func (s *Server) startIngestRecording(is *ingestStream) {
	ctx, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
	plan, err := s.planRecording(ctx, is.st.arn)
	cancel()
	st := is.st
	st.lock()
	defer st.unlock()
	if is.ended || !is.live || is.pub.recording != nil || st.pubs[is.id] != is.pub || (plan == nil && err == nil) {
		return
	}
	s.recordPublication(st, is.pub, plan, err, "H264")
}

// addIngest and removeIngest keep the streams of the server, for
// DisconnectIngest.
func (s *Server) addIngest(is *ingestStream) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	if s.ingests == nil {
		s.ingests = map[*ingestStream]struct{}{}
	}
	s.ingests[is] = struct{}{}
}

func (s *Server) removeIngest(is *ingestStream) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	delete(s.ingests, is)
}

var _ ivsrt.IngestDisconnector = (*Server)(nil)

// DisconnectIngest implements ivsrt.IngestDisconnector: the encoders
// publishing with the configuration's credentials are disconnected.
func (s *Server) DisconnectIngest(ctx context.Context, arn ivsrt.IngestConfigurationARN) error {
	s.ingestMu.Lock()
	var streams []*ingestStream
	for is := range s.ingests {
		if is.arn == arn {
			streams = append(streams, is)
		}
	}
	s.ingestMu.Unlock()
	for _, is := range streams {
		st := is.st
		st.lock()
		st.disconnect(ctx, is.id, closeDisconnected, "the ingest configuration was deleted")
		st.unlock()
	}
	return nil
}
