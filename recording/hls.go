// Package recording writes what a publisher sends as IVS records it: an
// HLS rendition of fragmented MP4 segments (H.264 video, Opus audio, as
// they arrive: nothing is transcoded), uploaded to an object store as each
// segment completes, with a playlist that stays playable after every
// upload, so that a crash loses at most the segment in progress.
//
// It uses bluenviron/mediacommon's fMP4 muxer, gortsplib's RTP
// depacketizer for H.264 (RFC 6184) and gohlslib's playlist package.
package recording

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/codecparams"
	hlscodecs "github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/ivsrt/ivsrt"
)

// Object names under a recording's prefix, as IVS lays them out.
const (
	MultivariantKey = "media/hls/multivariant.m3u8"
	RenditionDir    = "media/hls/high/"
	PlaylistKey     = RenditionDir + "playlist.m3u8"
	InitKey         = RenditionDir + "init.mp4"
)

// DefaultTargetSegment is IVS's default hlsConfiguration.targetSegmentDurationSeconds.
const DefaultTargetSegment = 6 * time.Second

// Time scales of the tracks: RTP's clock rates for H.264 and Opus.
const (
	videoTimeScale = 90000
	audioTimeScale = 48000
)

// HLSConfig says where a rendition goes and what it holds.
type HLSConfig struct {
	Store  ivsrt.ObjectStore
	Bucket string
	Prefix string // the recording's prefix, ending in "/"
	// TargetSegment is the least duration of a segment: a segment ends at
	// the first keyframe after it (audio only: once it is reached).
	TargetSegment time.Duration
	Video, Audio  bool // the tracks recorded
	// Thumbnails, when set and video is recorded, makes JPEG thumbnails
	// with ffmpeg; without ffmpeg, NewHLSWriter returns ErrNoFFmpeg.
	Thumbnails *ThumbnailConfig
}

// HLSWriter muxes samples into segments and uploads them. It is not safe
// for concurrent use: one goroutine feeds it, and the uploads happen on
// that goroutine.
type HLSWriter struct {
	cfg HLSConfig

	sps, pps         []byte // the newest parameter sets seen
	initSPS, initPPS []byte // those of the current init segment
	inits            int    // init segments uploaded
	width            int
	height           int
	started          bool // the first init segment is uploaded
	// waitKey: the publisher went away (Pause); video resumes at its
	// next keyframe.
	waitKey bool
	// Set for the next segment: it follows a break (a discontinuity) or
	// a change of init segment (its map).
	nextDiscontinuity bool
	nextMap           string
	segStart          time.Duration
	segments          []segment
	maxSegment        time.Duration
	seq               uint32

	video, audio trackState
	bytes        int64 // of media uploaded, for the bandwidth
	variant      *playlist.MultivariantVariant
	thumbs       *thumbnailer
}

// segment is a media playlist entry.
type segment struct {
	duration      time.Duration
	uri           string
	discontinuity bool   // EXT-X-DISCONTINUITY before it
	mapURI        string // EXT-X-MAP before it, when the init segment changed
}

// trackState holds a track's samples of the segment in progress. The
// newest sample waits until the next gives its duration.
type trackState struct {
	samples   []*fmp4.Sample
	base      time.Duration // pts of samples[0]
	held      *fmp4.Sample
	heldPTS   time.Duration
	lastDur   uint32 // duration of the previous sample, for the last one
	timeScale uint32
}

// ErrNoKeyframe is returned for video before the first keyframe, which is
// where a recording starts.
var ErrNoKeyframe = errors.New("recording: waiting for a keyframe")

// NewHLSWriter returns a writer for cfg.
func NewHLSWriter(cfg HLSConfig) (*HLSWriter, error) {
	if cfg.Store == nil || cfg.Bucket == "" {
		return nil, errors.New("recording: no object store or bucket")
	}
	if !cfg.Video && !cfg.Audio {
		return nil, errors.New("recording: nothing to record")
	}
	if cfg.TargetSegment <= 0 {
		cfg.TargetSegment = DefaultTargetSegment
	}
	w := &HLSWriter{cfg: cfg,
		video: trackState{timeScale: videoTimeScale},
		audio: trackState{timeScale: audioTimeScale},
	}
	if cfg.Thumbnails != nil && cfg.Video {
		t, err := newThumbnailer(*cfg.Thumbnails, w.put)
		if err != nil {
			return nil, err
		}
		w.thumbs = t
	}
	return w, nil
}

// WriteH264 adds a video access unit (NAL units without start codes) with
// its presentation time since the recording's start.
func (w *HLSWriter) WriteH264(ctx context.Context, pts time.Duration, au [][]byte) error {
	if !w.cfg.Video {
		return nil
	}
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			w.sps = append([]byte(nil), nalu...)
		case h264.NALUTypePPS:
			w.pps = append([]byte(nil), nalu...)
		}
	}
	key := h264.IsRandomAccess(au)
	switch {
	case !w.started:
		if !key || w.sps == nil || w.pps == nil {
			return ErrNoKeyframe
		}
		if err := w.start(ctx, pts); err != nil {
			return err
		}
	case w.waitKey:
		// Back after a break: the next segment starts at this keyframe,
		// with a new init segment if the parameter sets changed.
		if !key || w.sps == nil || w.pps == nil {
			return ErrNoKeyframe
		}
		w.waitKey, w.segStart = false, pts
		if w.paramsChanged() {
			if err := w.putInit(ctx); err != nil {
				return err
			}
		}
	case key && w.paramsChanged():
		// The encoder changed its parameter sets (a new resolution, as
		// WebRTC senders do when bandwidth drops): the segment in
		// progress ends, and the next has an init segment of its own.
		w.video.hold(pts)
		if err := w.cut(ctx, pts); err != nil {
			return err
		}
		if err := w.putInit(ctx); err != nil {
			return err
		}
		w.nextDiscontinuity = true
	case key && pts-w.segStart >= w.cfg.TargetSegment:
		w.video.hold(pts) // the previous sample ends where this one starts
		if err := w.cut(ctx, pts); err != nil {
			return err
		}
	}
	sample := &fmp4.Sample{}
	if err := sample.FillH264(0, au); err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	w.video.add(sample, pts)
	if key && w.thumbs != nil {
		return w.thumbs.keyframe(ctx, pts, au, w.sps, w.pps)
	}
	return nil
}

// WriteOpus adds an Opus packet with its presentation time since the
// recording's start.
func (w *HLSWriter) WriteOpus(ctx context.Context, pts time.Duration, packet []byte) error {
	if !w.cfg.Audio {
		return nil
	}
	if w.waitKey {
		return nil // video resumes first, at its keyframe
	}
	if !w.started {
		if w.cfg.Video {
			return nil // the recording starts at the first keyframe
		}
		if err := w.start(ctx, pts); err != nil {
			return err
		}
	}
	if pts < w.segStart && len(w.audio.samples) == 0 && w.audio.held == nil {
		return nil // before the start
	}
	if !w.cfg.Video && pts-w.segStart >= w.cfg.TargetSegment {
		w.audio.hold(pts)
		if err := w.cut(ctx, pts); err != nil {
			return err
		}
	}
	w.audio.add(&fmp4.Sample{Payload: append([]byte(nil), packet...)}, pts)
	return nil
}

// add appends the held sample (its duration now known) and holds s.
func (t *trackState) add(s *fmp4.Sample, pts time.Duration) {
	t.hold(pts)
	t.held, t.heldPTS = s, pts
}

// hold closes the held sample at pts: it gets its duration and joins the
// segment's samples.
func (t *trackState) hold(pts time.Duration) {
	if t.held == nil {
		return
	}
	d := t.ticks(pts) - t.ticks(t.heldPTS)
	if d <= 0 {
		d = max(1, int64(t.lastDur))
	}
	t.held.Duration = uint32(d)
	t.lastDur = t.held.Duration
	if len(t.samples) == 0 {
		t.base = t.heldPTS
	}
	t.samples = append(t.samples, t.held)
	t.held = nil
}

func (t *trackState) ticks(d time.Duration) int64 {
	return int64(d) * int64(t.timeScale) / int64(time.Second)
}

// start uploads the init segment and the multivariant playlist.
func (w *HLSWriter) start(ctx context.Context, pts time.Duration) error {
	if err := w.putInit(ctx); err != nil {
		return err
	}
	var hlsCodecs []string
	if w.cfg.Video {
		hlsCodecs = append(hlsCodecs, codecparams.Marshal(&hlscodecs.H264{SPS: w.sps, PPS: w.pps}))
	}
	if w.cfg.Audio {
		hlsCodecs = append(hlsCodecs, codecparams.Marshal(&hlscodecs.Opus{ChannelCount: 2}))
	}
	variant := &playlist.MultivariantVariant{
		// A first guess, refined when the recording ends.
		Bandwidth: 2_500_000,
		Codecs:    hlsCodecs,
		URI:       "high/playlist.m3u8",
	}
	if w.cfg.Video {
		variant.Resolution = strconv.Itoa(w.width) + "x" + strconv.Itoa(w.height)
	}
	w.variant = variant
	if err := w.putMultivariant(ctx); err != nil {
		return err
	}
	w.started, w.segStart = true, pts
	return nil
}

// paramsChanged reports whether the newest parameter sets differ from
// those of the current init segment.
func (w *HLSWriter) paramsChanged() bool {
	return !bytes.Equal(w.sps, w.initSPS) || !bytes.Equal(w.pps, w.initPPS)
}

// putInit uploads an init segment for the current parameter sets: the
// first is init.mp4, and the segments after a change of parameter sets
// map init-2.mp4, init-3.mp4...
func (w *HLSWriter) putInit(ctx context.Context) error {
	init := fmp4.Init{}
	if w.cfg.Video {
		var sps h264.SPS
		if err := sps.Unmarshal(w.sps); err != nil {
			return fmt.Errorf("recording: H.264 SPS: %w", err)
		}
		if w.inits == 0 {
			// The rendition's resolution is the one it starts with.
			w.width, w.height = sps.Width(), sps.Height()
		}
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: 1, TimeScale: videoTimeScale, Codec: &codecs.H264{SPS: w.sps, PPS: w.pps}})
	}
	if w.cfg.Audio {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: 2, TimeScale: audioTimeScale, Codec: &codecs.Opus{ChannelCount: 2}})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return fmt.Errorf("recording: init segment: %w", err)
	}
	name := "init.mp4"
	if w.inits > 0 {
		name = "init-" + strconv.Itoa(w.inits+1) + ".mp4"
	}
	if err := w.put(ctx, RenditionDir+name, buf.Bytes(), "video/mp4"); err != nil {
		return err
	}
	w.inits++
	w.initSPS, w.initPPS = w.sps, w.pps
	if w.inits > 1 {
		w.nextMap = name
	}
	return nil
}

// Pause marks a break: the publisher went away, and may come back (the
// stage's recordingReconnectWindowSeconds) to continue this recording.
// What was received is uploaded as a segment; the next segment, which
// starts at the returning publisher's first keyframe, follows a
// discontinuity. The timeline goes on from End.
func (w *HLSWriter) Pause(ctx context.Context) error {
	if !w.started {
		return nil
	}
	end := max(w.video.endPTS(), w.audio.endPTS())
	w.video.hold(w.video.heldPTS + w.video.duration(w.video.lastDur))
	w.audio.hold(w.audio.heldPTS + w.audio.duration(w.audio.lastDur))
	if end > w.segStart {
		if err := w.cut(ctx, end); err != nil {
			return err
		}
	}
	w.nextDiscontinuity = true
	w.waitKey = w.cfg.Video
	return nil
}

// End returns where the segments uploaded so far end on the timeline:
// where a recording that resumes after a break continues.
func (w *HLSWriter) End() time.Duration { return w.segStart }

// cut ends the segment in progress at end: it uploads it, then the
// playlist naming it.
func (w *HLSWriter) cut(ctx context.Context, end time.Duration) error {
	part := fmp4.Part{SequenceNumber: w.seq + 1}
	if len(w.video.samples) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: 1, BaseTime: uint64(w.video.ticks(w.video.base)), Samples: w.video.samples})
	}
	if len(w.audio.samples) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: 2, BaseTime: uint64(w.audio.ticks(w.audio.base)), Samples: w.audio.samples})
	}
	if len(part.Tracks) == 0 {
		return nil
	}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return fmt.Errorf("recording: segment: %w", err)
	}
	w.seq++
	name := strconv.Itoa(int(w.seq)) + ".mp4"
	if err := w.put(ctx, RenditionDir+name, buf.Bytes(), "video/mp4"); err != nil {
		return err
	}
	w.bytes += int64(buf.Len())
	d := end - w.segStart
	w.segments = append(w.segments, segment{duration: d, uri: name, discontinuity: w.nextDiscontinuity, mapURI: w.nextMap})
	w.nextDiscontinuity, w.nextMap = false, ""
	w.maxSegment = max(w.maxSegment, d)
	w.video.samples, w.audio.samples = nil, nil
	w.segStart = end
	return w.putPlaylist(ctx, false)
}

// putPlaylist uploads the rendition's playlist: an EVENT playlist while
// recording, so that what is there plays; VOD with its end once done.
func (w *HLSWriter) putPlaylist(ctx context.Context, ended bool) error {
	return w.put(ctx, PlaylistKey, mediaPlaylist(w.segments, w.maxSegment, ended), "application/x-mpegURL")
}

// mediaPlaylist writes the rendition's media playlist (RFC 8216). It is
// written here rather than with gohlslib's playlist package, which has
// one EXT-X-MAP for a whole playlist: a recording whose publisher changed
// its parameter sets has an init segment for each run of segments.
func mediaPlaylist(segments []segment, maxSegment time.Duration, ended bool) []byte {
	var b bytes.Buffer
	kind := "EVENT"
	if ended {
		kind = "VOD"
	}
	target := max(1, int((maxSegment+time.Second-1)/time.Second)) // rounded up, as HLS wants
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:%s\n", target, kind)
	b.WriteString("#EXT-X-MAP:URI=\"init.mp4\"\n")
	for _, s := range segments {
		if s.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.mapURI != "" {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", s.mapURI)
		}
		fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n", strconv.FormatFloat(s.duration.Seconds(), 'f', 5, 64), s.uri)
	}
	if ended {
		b.WriteString(endList + "\n")
	}
	return b.Bytes()
}

// endList ends a media playlist that will not grow.
const endList = "#EXT-X-ENDLIST"

func (w *HLSWriter) putMultivariant(ctx context.Context) error {
	m := playlist.Multivariant{Version: 7, IndependentSegments: true, Variants: []*playlist.MultivariantVariant{w.variant}}
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("recording: multivariant playlist: %w", err)
	}
	return w.put(ctx, MultivariantKey, b, "application/x-mpegURL")
}

func (w *HLSWriter) put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := w.cfg.Store.PutObject(ctx, w.cfg.Bucket, w.cfg.Prefix+key, body, contentType); err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	return nil
}

// Started reports whether the recording has begun: the init segment is
// uploaded (for video, once a keyframe came).
func (w *HLSWriter) Started() bool { return w.started }

// Duration returns the duration of the uploaded segments.
func (w *HLSWriter) Duration() time.Duration {
	var d time.Duration
	for _, s := range w.segments {
		d += s.duration
	}
	return d
}

// Size returns the video's width and height, 0 without video.
func (w *HLSWriter) Size() (width, height int) { return w.width, w.height }

// Close ends the recording at end (the time of the last sample, plus its
// duration if known): the segment in progress is uploaded, then the
// playlist as VOD, and the multivariant playlist with the real bandwidth.
func (w *HLSWriter) Close(ctx context.Context) error {
	if !w.started {
		return nil
	}
	if w.thumbs != nil {
		if err := w.thumbs.wait(); err != nil {
			return err
		}
	}
	end := max(w.video.endPTS(), w.audio.endPTS())
	w.video.hold(w.video.heldPTS + w.video.duration(w.video.lastDur))
	w.audio.hold(w.audio.heldPTS + w.audio.duration(w.audio.lastDur))
	if end > w.segStart {
		if err := w.cut(ctx, end); err != nil {
			return err
		}
	}
	if d := w.Duration(); d > 0 {
		w.variant.Bandwidth = max(1, int(float64(w.bytes*8)/d.Seconds()))
		if err := w.putMultivariant(ctx); err != nil {
			return err
		}
	}
	return w.putPlaylist(ctx, true)
}

// endPTS is when the track's last sample ends, its duration guessed from
// the one before.
func (t *trackState) endPTS() time.Duration {
	if t.held == nil {
		return 0
	}
	return t.heldPTS + t.duration(t.lastDur)
}

func (t *trackState) duration(ticks uint32) time.Duration {
	return time.Duration(int64(ticks) * int64(time.Second) / int64(t.timeScale))
}
