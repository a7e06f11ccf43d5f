package rtmpingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/ivsrt/ivsrt/transcode"
)

const (
	// tracksWait is how much of the stream may go by, on the encoder's
	// clock, before both tracks must have been announced. Encoders send
	// both sequence headers before their first frames, so this is
	// generous; it is also what a stream without audio (or video) costs
	// before it is refused with INVALID_INPUT.
	tracksWait = 3 * time.Second
	// tracksWaitWall is the same on the server's clock, for an encoder
	// that sends no media at all.
	tracksWaitWall = 5 * time.Second
	// trackGap: once the stream has begun, a track that is silent for
	// this long while the other goes on has stopped (INVALID_INPUT).
	trackGap = 5 * time.Second
	// bitrateWindow is what the bit rate is measured over, on the
	// encoder's clock: long enough for a keyframe not to count as a peak.
	bitrateWindow = 5 * time.Second
	// maxAACFrame is the largest AAC frame ADTS can carry (13 bits of
	// length, 7 of them the header's).
	maxAACFrame = 1<<13 - 1 - 7
)

// errUnpublished: the encoder said it stopped.
var errUnpublished = errors.New("rtmpingest: the encoder unpublished")

// audioEncoder turns AAC into Opus: a transcode.AACToOpus.
type audioEncoder interface {
	Write(pts time.Duration, frame []byte) error
	ReadPacket() (transcode.Packet, error)
	Close() error
}

func ffmpegAudio(path string) func(context.Context, []byte) (audioEncoder, error) {
	return func(ctx context.Context, asc []byte) (audioEncoder, error) {
		return transcode.NewAACToOpus(ctx, path, asc)
	}
}

type publisherConfig struct {
	maxWidth, maxHeight int
	maxBitrate          int64
	newAudio            func(ctx context.Context, asc []byte) (audioEncoder, error)
}

// publisher follows one published stream's messages: it checks them
// against IVS's rules and hands the media to a sink.
type publisher struct {
	cfg       publisherConfig
	ctx       context.Context
	out       *sink
	fail      context.CancelCauseFunc
	log       *slog.Logger
	startedAt time.Time

	// The video tracks, by id, in the order they were announced.
	video []*videoTrack
	// The audio's configuration.
	asc     []byte
	ascConf mpeg4audio.AudioSpecificConfig

	began     bool
	audio     audioEncoder
	audioDone chan struct{}
	closing   atomic.Bool // the audio encoder is being closed

	// Times on the encoder's clock: the first frame's, from which pts
	// count, the latest, and each track's latest once begun.
	haveOrigin           bool
	origin, latest       time.Duration
	lastVideo, lastAudio time.Duration
	meter                bitrateMeter
}

// videoTrack is one video track of the stream.
type videoTrack struct {
	id uint8
	// Its configuration: the latest SPS and PPS, and the size of the NAL
	// unit lengths in its frames (ISO 14496-15 5.3.3.1).
	sps, pps      []byte
	lengthSize    int
	width, height int
	// Whether it was announced in Begin, and whether its first keyframe
	// went: what comes before is dropped.
	begun, sentKeyframe bool
}

// track returns video track id, adding it if it is new.
func (p *publisher) track(id uint8) (*videoTrack, error) {
	for _, t := range p.video {
		if t.id == id {
			return t, nil
		}
	}
	if len(p.video) == MaxVideoTracks {
		return nil, refusef(CodeInvalidVideoCodec, "more than %d video tracks (enhanced RTMP multitrack): send %d at most", MaxVideoTracks, MaxVideoTracks)
	}
	t := &videoTrack{id: id}
	p.video = append(p.video, t)
	return t, nil
}

// mainTrack returns the video track that must be there for the stream to
// begin: the first one announced.
func (p *publisher) mainTrack() *videoTrack {
	if len(p.video) == 0 {
		return nil
	}
	return p.video[0]
}

func newPublisher(ctx context.Context, cfg publisherConfig, out *sink, fail context.CancelCauseFunc, log *slog.Logger) *publisher {
	return &publisher{
		cfg:       cfg,
		ctx:       ctx,
		out:       out,
		fail:      fail,
		log:       log,
		startedAt: time.Now(),
		meter:     bitrateMeter{window: bitrateWindow},
	}
}

// close stops the audio transcoding and waits for its last packets.
func (p *publisher) close() {
	if p.audio == nil {
		return
	}
	p.closing.Store(true)
	if err := p.audio.Close(); err != nil {
		// ffmpeg stopped before its input ran out, or had too little to
		// start: either way the stream was over.
		p.log.Debug("audio transcoding ended with an error", "err", err)
	}
	<-p.audioDone
}

// handle takes one message of the stream, received at now. It returns
// errUnpublished when the encoder stops, a *Refusal when the stream
// breaks a rule, or the reason the stream must end.
func (p *publisher) handle(msg message.Message, now time.Time) error {
	if !p.began && now.Sub(p.startedAt) >= tracksWaitWall {
		return p.missingTracks()
	}
	switch m := msg.(type) {
	case *message.CommandAMF0:
		switch m.Name {
		case "FCUnpublish", "deleteStream", "closeStream":
			return errUnpublished
		}
	case *message.DataAMF0:
		return p.metadata(m.Payload)

	case *message.Video, *message.VideoExSequenceStart, *message.VideoExCodedFrames, *message.VideoExFramesX:
		return p.handleVideo(0, msg)
	case *message.VideoExMultitrack:
		return p.handleVideo(m.TrackID, m.Wrapped)

	case *message.Audio:
		if m.Codec != message.CodecMPEG4Audio {
			return refusef(CodeInvalidAudioCodec, "the audio is %s: IVS takes AAC", legacyAudioCodec(float64(m.Codec)))
		}
		if m.AACType == message.AudioAACTypeConfig {
			if m.AACConfig == nil {
				return nil
			}
			return p.audioConfig(m.AACConfig)
		}
		return p.audioFrame(m.DTS, m.AU)
	case *message.AudioExSequenceStart:
		if m.FourCC != message.FourCCMP4A {
			return audioFourCCRefusal(m.FourCC)
		}
		if m.AACConfig == nil {
			return refusef(CodeInvalidInput, "an AAC sequence start without its configuration")
		}
		return p.audioConfig(m.AACConfig)
	case *message.AudioExCodedFrames:
		if m.FourCC != message.FourCCMP4A {
			return audioFourCCRefusal(m.FourCC)
		}
		return p.audioFrame(m.DTS, m.Payload)
	case *message.AudioExMultitrack:
		if m.TrackID != 0 {
			return refusef(CodeInvalidAudioCodec, "more than one audio track (enhanced RTMP multitrack) is not supported: send one AAC track")
		}
		return p.handle(m.Wrapped, now)
	}
	return nil
}

// handleVideo takes a video message of track id.
func (p *publisher) handleVideo(id uint8, msg message.Message) error {
	switch m := msg.(type) {
	case *message.Video:
		if m.Codec != message.CodecH264 {
			return refusef(CodeInvalidVideoCodec, "the video is H.265: IVS takes H.264")
		}
		switch m.Type {
		case message.VideoTypeConfig:
			return p.videoConfig(id, m.AVCConfig)
		case message.VideoTypeAU:
			return p.videoFrame(id, m.DTS, m.PTSDelta, m.AU)
		}
	case *message.VideoExSequenceStart:
		if m.FourCC != message.FourCCAVC {
			return videoFourCCRefusal(m.FourCC)
		}
		return p.videoConfig(id, m.AVCConfig)
	case *message.VideoExCodedFrames:
		if m.FourCC != message.FourCCAVC {
			return videoFourCCRefusal(m.FourCC)
		}
		return p.videoFrame(id, m.DTS, m.PTSDelta, m.Payload)
	case *message.VideoExFramesX:
		if m.FourCC != message.FourCCAVC {
			return videoFourCCRefusal(m.FourCC)
		}
		return p.videoFrame(id, m.DTS, 0, m.Payload)
	}
	return nil
}

func videoFourCCRefusal(cc message.FourCC) *Refusal {
	return refusef(CodeInvalidVideoCodec, "the video is %s: IVS takes H.264", fourCCName(cc))
}

func audioFourCCRefusal(cc message.FourCC) *Refusal {
	return refusef(CodeInvalidAudioCodec, "the audio is %s: IVS takes AAC", fourCCName(cc))
}

func fourCCName(cc message.FourCC) string {
	return fmt.Sprintf("%q", []byte{byte(cc >> 24), byte(cc >> 16), byte(cc >> 8), byte(cc)})
}

// metadata checks the codecs onMetaData announces, so that a stream in
// another codec is refused before its first frame.
func (p *publisher) metadata(payload amf0.Data) error {
	isMeta := false
	for _, v := range payload {
		if s, ok := v.(string); ok && s == "onMetaData" {
			isMeta = true
		}
		var obj amf0.Object
		switch o := v.(type) {
		case amf0.Object:
			obj = o
		case amf0.ECMAArray:
			obj = amf0.Object(o)
		default:
			continue
		}
		if !isMeta {
			continue
		}
		if id, ok := obj.Get("videocodecid"); ok {
			if name := metaVideoCodec(id); name != "" {
				return refusef(CodeInvalidVideoCodec, "the video is %s: IVS takes H.264", name)
			}
		}
		if id, ok := obj.Get("audiocodecid"); ok {
			if name := metaAudioCodec(id); name != "" {
				return refusef(CodeInvalidAudioCodec, "the audio is %s: IVS takes AAC", name)
			}
		}
	}
	return nil
}

// metaVideoCodec names a video codec onMetaData announces, or is "" for
// H.264 or a value it cannot tell: a legacy FLV codec id, or an enhanced
// RTMP FourCC as a number or a string.
func metaVideoCodec(id any) string {
	switch v := id.(type) {
	case float64:
		switch v {
		case 0, 7, float64(message.FourCCAVC):
			return ""
		case 2:
			return "Sorenson H.263"
		case 3, 6:
			return "Screen Video"
		case 4, 5:
			return "On2 VP6"
		case 12:
			return "H.265"
		}
		if v >= 1<<24 && v < 1<<32 {
			return fourCCName(message.FourCC(uint32(v)))
		}
		return fmt.Sprintf("codec %v", v)
	case string:
		if v == "" || v == "avc1" {
			return ""
		}
		return fmt.Sprintf("%q", v)
	}
	return ""
}

// metaAudioCodec is metaVideoCodec for audio, "" for AAC.
func metaAudioCodec(id any) string {
	switch v := id.(type) {
	case float64:
		switch v {
		case 10, float64(message.FourCCMP4A):
			return ""
		}
		if v >= 1<<24 && v < 1<<32 {
			return fourCCName(message.FourCC(uint32(v)))
		}
		return legacyAudioCodec(v)
	case string:
		if v == "" || v == "mp4a" {
			return ""
		}
		return fmt.Sprintf("%q", v)
	}
	return ""
}

// legacyAudioCodec names an FLV audio codec id (FLV specification,
// AUDIODATA).
func legacyAudioCodec(id float64) string {
	switch id {
	case 0, 3:
		return "PCM"
	case 1:
		return "ADPCM"
	case 2, 14:
		return "MP3"
	case 4, 5, 6:
		return "Nellymoser"
	case 7:
		return "G.711 A-law"
	case 8:
		return "G.711 µ-law"
	case 11:
		return "Speex"
	}
	return fmt.Sprintf("codec %v", id)
}

// videoConfig takes the H.264 decoder configuration (the sequence
// header) of video track id.
func (p *publisher) videoConfig(id uint8, conf *mp4.AVCDecoderConfiguration) error {
	t, err := p.track(id)
	if err != nil {
		return err
	}
	if p.began && !t.begun {
		return refusef(CodeInvalidInput, "video track %d was announced after the stream began: announce every track before the first frame", id)
	}
	if conf == nil || len(conf.SequenceParameterSets) == 0 || len(conf.PictureParameterSets) == 0 {
		return refusef(CodeInvalidInput, "the H.264 configuration has no SPS or PPS")
	}
	sps, pps := conf.SequenceParameterSets[0].NALUnit, conf.PictureParameterSets[0].NALUnit
	if len(sps) == 0 || len(pps) == 0 {
		return refusef(CodeInvalidInput, "the H.264 configuration has an empty SPS or PPS")
	}
	if err := p.takeSPS(t, sps); err != nil {
		return err
	}
	t.pps = pps
	t.lengthSize = int(conf.LengthSizeMinusOne) + 1
	return nil
}

// takeSPS checks an SPS's picture size and makes it track t's current
// one.
func (p *publisher) takeSPS(t *videoTrack, sps []byte) error {
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return refusef(CodeInvalidInput, "the H.264 SPS could not be read: %v", err)
	}
	w, h := s.Width(), s.Height()
	if w <= 0 || h <= 0 || w > 1<<14 || h > 1<<14 {
		return refusef(CodeInvalidInput, "the H.264 SPS gives a picture of %dx%d", w, h)
	}
	maxLong, maxShort := max(p.cfg.maxWidth, p.cfg.maxHeight), min(p.cfg.maxWidth, p.cfg.maxHeight)
	if max(w, h) > maxLong || min(w, h) > maxShort {
		return refusef(CodeResolutionExceeded, "the video is %dx%d, over the maximum %dx%d (or %dx%d)",
			w, h, maxLong, maxShort, maxShort, maxLong)
	}
	t.sps, t.width, t.height = sps, w, h
	return nil
}

// audioConfig takes the AAC AudioSpecificConfig (the sequence header).
func (p *publisher) audioConfig(conf *mpeg4audio.AudioSpecificConfig) error {
	asc, err := conf.Marshal()
	if err != nil {
		return refusef(CodeInvalidAudioCodec, "the AAC configuration is not supported: %v", err)
	}
	if p.began {
		if !bytes.Equal(asc, p.asc) {
			return refusef(CodeInvalidInput, "the AAC configuration changed during the stream")
		}
		return nil
	}
	p.asc, p.ascConf = asc, *conf
	return nil
}

// maybeBegin begins the stream at its first frame once the first video
// track and the audio are known: encoders announce every track before
// their first frame, so all are known then.
func (p *publisher) maybeBegin() error {
	if main := p.mainTrack(); p.began || main == nil || main.sps == nil || p.asc == nil {
		return nil
	}
	enc, err := p.cfg.newAudio(p.ctx, p.asc)
	if err != nil {
		if p.ctx.Err() != nil {
			return context.Cause(p.ctx)
		}
		p.log.Error("audio transcoding could not start", "err", err)
		return refusef(CodeInternalServerException, "audio transcoding could not start")
	}
	rate, channels := p.ascConf.SampleRate, p.ascConf.ChannelCount
	if p.ascConf.ExtensionSampleRate > 0 {
		rate = p.ascConf.ExtensionSampleRate // HE-AAC: SBR doubles the rate
	}
	if p.ascConf.ExtensionType == mpeg4audio.ObjectTypePS || channels == 0 {
		channels = 2
	}
	info := StreamInfo{AudioSampleRate: rate, AudioChannels: channels}
	for _, t := range p.video {
		if t.sps == nil {
			continue // frames before its configuration: never begun
		}
		t.begun = true
		info.Video = append(info.Video, VideoTrack{ID: t.id, Width: t.width, Height: t.height, SPS: t.sps, PPS: t.pps})
	}
	p.began = true
	p.lastVideo, p.lastAudio = p.latest, p.latest
	err = p.out.send(p.ctx, call{kind: callBegin, info: info})
	// Opus is sent after Begin, and close waits for the forwarding to end.
	p.audio = enc
	p.audioDone = make(chan struct{})
	go p.forwardAudio(enc)
	return err
}

// forwardAudio sends the transcoder's Opus to the sink until it ends.
func (p *publisher) forwardAudio(enc audioEncoder) {
	defer close(p.audioDone)
	var sendErr error
	for {
		pkt, err := enc.ReadPacket()
		if err != nil {
			if !errors.Is(err, io.EOF) && p.ctx.Err() == nil && !p.closing.Load() {
				p.log.Error("audio transcoding failed", "err", err)
				p.fail(refusef(CodeInternalServerException, "audio transcoding failed"))
			}
			return
		}
		if pkt.PTS < 0 {
			continue // the encoder's lookahead, before the first sample
		}
		if sendErr != nil {
			continue // read to the end, so that Close need not wait
		}
		sendErr = p.out.send(p.ctx, call{kind: callAudio, pts: pkt.PTS, opus: pkt.Data})
	}
}

// missingTracks is the refusal of a stream that lacks a track.
func (p *publisher) missingTracks() error {
	noVideo := p.mainTrack() == nil || p.mainTrack().sps == nil
	switch {
	case noVideo && p.asc == nil:
		return refusef(CodeInvalidInput, "no H.264 video or AAC audio after %v: IVS takes one of each", tracksWaitWall)
	case p.asc == nil:
		return refusef(CodeInvalidInput, "the stream has no audio: IVS takes one H.264 video track and one AAC audio track")
	case noVideo:
		return refusef(CodeInvalidInput, "the stream has no video: IVS takes one H.264 video track and one AAC audio track")
	}
	return nil
}

// media accounts for a frame of size bytes at dts: the bit rate, and
// whether both tracks are there.
func (p *publisher) media(video bool, dts time.Duration, size int) error {
	if !p.haveOrigin {
		p.haveOrigin, p.origin, p.latest = true, dts, dts
	}
	p.latest = max(p.latest, dts)
	if video {
		p.lastVideo = dts
	} else {
		p.lastAudio = dts
	}
	if bps, ok := p.meter.add(dts, size); ok && bps > p.cfg.maxBitrate {
		return refusef(CodeBitrateExceeded, "the stream is %.2f Mbps over %v, over the maximum %.2f Mbps",
			float64(bps)/1e6, bitrateWindow, float64(p.cfg.maxBitrate)/1e6)
	}
	if !p.began {
		if p.latest-p.origin >= tracksWait {
			return p.missingTracks()
		}
		return p.maybeBegin()
	}
	if gap := p.latest - p.lastVideo; gap > trackGap {
		return refusef(CodeInvalidInput, "no video for %v while the audio goes on", gap.Round(time.Second))
	}
	if gap := p.latest - p.lastAudio; gap > trackGap {
		return refusef(CodeInvalidInput, "no audio for %v while the video goes on", gap.Round(time.Second))
	}
	return nil
}

// videoFrame takes one H.264 access unit of video track id in AVCC form,
// decoded at dts and shown ptsDelta later.
func (p *publisher) videoFrame(id uint8, dts, ptsDelta time.Duration, payload []byte) error {
	if ptsDelta != 0 {
		return refusef(CodeBFramePresent, "the video has B-frames (a frame is shown %v after it is decoded): encode without them", ptsDelta)
	}
	t, err := p.track(id)
	if err != nil {
		return err
	}
	if err := p.media(true, dts, len(payload)); err != nil {
		return err
	}
	if t.lengthSize == 0 {
		return nil // before the configuration: it cannot be read
	}
	nalus, err := splitAVCC(payload, t.lengthSize)
	if err != nil {
		return refusef(CodeInvalidInput, "an H.264 frame could not be read: %v", err)
	}
	au := make([][]byte, 2, len(nalus)+2) // room for SPS and PPS
	keyframe := false
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			// In-band parameter sets replace the configuration's.
			if err := p.takeSPS(t, n); err != nil {
				return err
			}
			continue
		case h264.NALUTypePPS:
			t.pps = n
			continue
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
			continue
		case h264.NALUTypeIDR:
			keyframe = true
		}
		au = append(au, n)
	}
	if !t.begun || len(au) == 2 {
		return nil
	}
	// A decoder can start at a keyframe only, and RTMP has no way to ask
	// for one: what comes before the first is dropped.
	if !keyframe && !t.sentKeyframe {
		return nil
	}
	t.sentKeyframe = true
	if keyframe {
		au[0], au[1] = t.sps, t.pps
	} else {
		au = au[2:]
	}
	pts := max(dts-p.origin, 0)
	return p.out.send(p.ctx, call{kind: callVideo, track: id, pts: pts, nalus: au, keyframe: keyframe})
}

// audioFrame takes one AAC frame (raw_data_block) at dts.
func (p *publisher) audioFrame(dts time.Duration, frame []byte) error {
	if err := p.media(false, dts, len(frame)); err != nil {
		return err
	}
	if len(frame) > maxAACFrame {
		return refusef(CodeInvalidInput, "an AAC frame of %d bytes", len(frame))
	}
	if !p.began || len(frame) == 0 {
		return nil
	}
	if err := p.audio.Write(dts-p.origin, frame); err != nil {
		if p.ctx.Err() != nil {
			return context.Cause(p.ctx)
		}
		p.log.Error("audio transcoding failed", "err", err)
		return refusef(CodeInternalServerException, "audio transcoding failed")
	}
	return nil
}

// splitAVCC splits an access unit into its NAL units, each after its
// length in lengthSize bytes (ISO 14496-15 5.3.4.2.1). Empty ones are
// left out.
func splitAVCC(buf []byte, lengthSize int) ([][]byte, error) {
	if lengthSize < 1 || lengthSize > 4 {
		return nil, fmt.Errorf("NAL unit lengths of %d bytes", lengthSize)
	}
	var nalus [][]byte
	for len(buf) > 0 {
		if len(buf) < lengthSize {
			return nil, fmt.Errorf("%d bytes left, less than a NAL unit length", len(buf))
		}
		n := 0
		for _, b := range buf[:lengthSize] {
			n = n<<8 | int(b)
		}
		buf = buf[lengthSize:]
		if n > len(buf) {
			return nil, fmt.Errorf("a NAL unit of %d bytes in %d", n, len(buf))
		}
		if n > 0 {
			nalus = append(nalus, buf[:n:n])
		}
		buf = buf[n:]
	}
	return nalus, nil
}

// bitrateMeter measures a stream's bit rate over a window of its own
// clock.
type bitrateMeter struct {
	window  time.Duration
	samples []meterSample
	sum     int64
	started bool
	first   time.Duration // when measuring started
	last    time.Duration // the latest time seen
}

type meterSample struct {
	t time.Duration
	n int
}

// add counts n bytes at t, and returns the bit rate over the window
// before, once the stream is as long as the window.
func (m *bitrateMeter) add(t time.Duration, n int) (bps int64, ok bool) {
	if !m.started || t < m.last-time.Second {
		// The start, or a clock that went back: measure anew.
		m.samples, m.sum, m.started, m.first, m.last = m.samples[:0], 0, true, t, t
	}
	m.last = max(m.last, t)
	m.samples = append(m.samples, meterSample{t, n})
	m.sum += int64(n)
	for len(m.samples) > 0 && m.samples[0].t <= m.last-m.window {
		m.sum -= int64(m.samples[0].n)
		m.samples = m.samples[1:]
	}
	if m.last-m.first < m.window {
		return 0, false
	}
	return m.sum * 8 * 1000 / m.window.Milliseconds(), true
}
