package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/ivsrt/ivsrt"
)

// State is a participant recording's state, as the API reports it.
type State string

// States of a recording.
const (
	Starting State = "STARTING"
	Active   State = "ACTIVE"
	Stopping State = "STOPPING"
	Stopped  State = "STOPPED"
	Failed   State = "FAILED"
)

// Metadata object names under a recording's prefix.
const (
	StartedKey = "events/recording-started.json"
	EndedKey   = "events/recording-ended.json"
	FailedKey  = "events/recording-failed.json"
)

// ParticipantConfig is one publisher's recording.
type ParticipantConfig struct {
	Store  ivsrt.ObjectStore
	Bucket string
	// Prefix is the recording's key prefix; see Prefix.
	Prefix                             string
	StageARN, SessionID, ParticipantID string
	TargetSegment                      time.Duration
	Video, Audio                       bool
	Thumbnails                         *ThumbnailConfig // nil for none
	// OnState is told of each change of state, with the duration stored
	// so far, from the recording's own goroutine; err is set with Failed.
	OnState func(state State, duration time.Duration, err error)
	// RequestKeyframe asks the publisher for a keyframe: after packets
	// were dropped, the recording waits for one.
	RequestKeyframe func()
	Logger          *slog.Logger
	// Now is the clock of the metadata's times (default time.Now).
	Now func() time.Time
}

// Prefix returns the key prefix IVS gives a participant's recording:
// <stageId>/<sessionId>/<participantId>/<start, Unix milliseconds>/.
func Prefix(stage ivsrt.StageARN, session ivsrt.SessionID, participant ivsrt.ParticipantID, started time.Time) string {
	id := string(stage)
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	return id + "/" + string(session) + "/" + string(participant) + "/" + strconv.FormatInt(started.UnixMilli(), 10) + "/"
}

// Participant records one publisher: packets pushed from the forwarding
// path are queued and muxed and uploaded on a goroutine of its own, so a
// slow or failing store never holds the forwarding path back.
type Participant struct {
	cfg     ParticipantConfig
	in      chan input
	done    chan struct{}
	started time.Time
	dropped atomic.Int64

	// inMu guards sending on in against its closing by Stop: pushes take
	// it shared, Stop exclusively.
	inMu     sync.RWMutex
	inClosed bool
	// breakPending: a Pause found the queue full; the break is queued
	// before the next packet that finds room.
	breakPending atomic.Bool

	mu       sync.Mutex
	state    State
	err      error
	duration time.Duration
}

type input struct {
	kind    Kind
	pkt     *rtp.Packet
	arrival time.Time
	fail    error // set: the recording fails with it
	brk     bool  // the publisher's stream ended here; see Pause
}

// queueLen bounds the packets waiting for the recording's goroutine:
// about two seconds of a 2.5 Mbps publisher.
const queueLen = 1024

// NewParticipant starts recording: the state is Starting until the
// metadata and the first media are stored.
func NewParticipant(cfg ParticipantConfig) (*Participant, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnState == nil {
		cfg.OnState = func(State, time.Duration, error) {}
	}
	if cfg.RequestKeyframe == nil {
		cfg.RequestKeyframe = func() {}
	}
	w, err := NewHLSWriter(HLSConfig{Store: cfg.Store, Bucket: cfg.Bucket, Prefix: cfg.Prefix,
		TargetSegment: cfg.TargetSegment, Video: cfg.Video, Audio: cfg.Audio, Thumbnails: cfg.Thumbnails})
	if err != nil {
		return nil, err
	}
	p := &Participant{cfg: cfg, in: make(chan input, queueLen), done: make(chan struct{}), started: cfg.Now(), state: Starting}
	cfg.OnState(Starting, 0, nil)
	go p.run(w)
	return p, nil
}

// Push queues a packet of the track kind. It never blocks: when the
// queue is full the packet is dropped, and the recording asks for a
// keyframe to start again from.
func (p *Participant) Push(kind Kind, pkt *rtp.Packet, arrival time.Time) {
	p.inMu.RLock()
	defer p.inMu.RUnlock()
	if p.inClosed {
		return
	}
	if p.breakPending.Load() {
		select {
		case p.in <- input{brk: true}:
			p.breakPending.Store(false)
		default:
		}
	}
	select {
	case p.in <- input{kind: kind, pkt: pkt, arrival: arrival}:
	default:
		if p.dropped.Add(1) == 1 || p.dropped.Load()%256 == 0 {
			p.cfg.RequestKeyframe()
		}
	}
}

// Pause tells the recording that the publisher's stream ended, and that
// the same participant may come back to continue it (the stage's
// recordingReconnectWindowSeconds): what was received is uploaded, and
// the packets pushed next, from the publisher's return, follow a
// discontinuity on the same timeline. Stop ends a recording nobody came
// back to. Pause never blocks.
func (p *Participant) Pause() {
	p.inMu.RLock()
	defer p.inMu.RUnlock()
	if p.inClosed {
		return
	}
	select {
	case p.in <- input{brk: true}:
	default:
		p.breakPending.Store(true)
	}
}

// Fail makes the recording fail with err (after what is queued): for a
// failure seen outside it, such as media it cannot record.
func (p *Participant) Fail(err error) {
	p.inMu.RLock()
	defer p.inMu.RUnlock()
	if p.inClosed {
		return
	}
	select {
	case <-p.done:
	case p.in <- input{fail: err}:
	}
}

// Stop ends the recording once what is queued is stored, and returns its
// final state: Stopped, or Failed with why.
func (p *Participant) Stop(ctx context.Context) (State, error) {
	p.inMu.Lock()
	if !p.inClosed {
		p.inClosed = true
		close(p.in)
	}
	p.inMu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		return Failed, context.Cause(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.err
}

// Done is closed once the recording has ended.
func (p *Participant) Done() <-chan struct{} { return p.done }

// Duration returns the duration recorded so far.
func (p *Participant) Duration() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.duration
}

func (p *Participant) setState(s State, err error) {
	p.mu.Lock()
	p.state, p.err = s, err
	d := p.duration
	p.mu.Unlock()
	p.cfg.OnState(s, d, err)
}

func (p *Participant) run(w *HLSWriter) {
	defer close(p.done)
	ctx := context.Background()
	cfg := p.cfg
	if err := p.putMetadata(ctx, StartedKey, "RECORDING_STARTED", w, nil); err != nil {
		p.fail(ctx, w, err)
		return
	}
	r := NewRTPRecorder(w)
	for in := range p.in {
		if in.fail != nil {
			p.fail(ctx, w, in.fail)
			return
		}
		if in.brk {
			if err := r.Break(ctx); err != nil {
				p.fail(ctx, w, err)
				return
			}
			p.mu.Lock()
			p.duration = w.Duration()
			p.mu.Unlock()
			continue
		}
		if err := r.WriteRTP(ctx, in.kind, in.pkt, in.arrival); err != nil {
			p.fail(ctx, w, err)
			return
		}
		p.mu.Lock()
		p.duration = w.Duration()
		activate := p.state == Starting && w.Started()
		p.mu.Unlock()
		if activate {
			p.setState(Active, nil)
		}
	}
	p.setState(Stopping, nil)
	if err := r.Close(ctx); err != nil {
		p.fail(ctx, w, err)
		return
	}
	if err := p.putMetadata(ctx, EndedKey, "RECORDING_ENDED", w, nil); err != nil {
		p.fail(ctx, w, err)
		return
	}
	p.mu.Lock()
	p.duration = w.Duration()
	p.mu.Unlock()
	cfg.Logger.Info("recording ended", "participant", cfg.ParticipantID, "prefix", cfg.Prefix, "duration", w.Duration(), "dropped", p.dropped.Load())
	p.setState(Stopped, nil)
}

// fail records the failure (recording-failed.json, if the store takes
// it), then drops whatever comes until Stop.
func (p *Participant) fail(ctx context.Context, w *HLSWriter, err error) {
	p.cfg.Logger.Warn("recording failed", "participant", p.cfg.ParticipantID, "prefix", p.cfg.Prefix, "err", err)
	if merr := p.putMetadata(ctx, FailedKey, "RECORDING_ENDED_WITH_FAILURE", w, err); merr != nil {
		p.cfg.Logger.Warn("recording failed: its metadata could not be stored either", "err", merr)
	}
	p.mu.Lock()
	p.duration = w.Duration()
	p.mu.Unlock()
	p.setState(Failed, err)
	for range p.in {
	}
}

// metadata is the v1 recording metadata file, in the shape IVS gives it.
type metadata struct {
	Version            string    `json:"version"`
	RecordingStartedAt string    `json:"recording_started_at"`
	RecordingEndedAt   string    `json:"recording_ended_at,omitempty"`
	StageARN           string    `json:"stage_arn"`
	SessionID          string    `json:"session_id"`
	ParticipantID      string    `json:"participant_id"`
	RecordingStatus    string    `json:"recording_status"`
	StatusMessage      string    `json:"recording_status_message,omitempty"`
	Media              mediaMeta `json:"media"`
}

type mediaMeta struct {
	HLS hlsMeta `json:"hls"`
}

type hlsMeta struct {
	DurationMS int64           `json:"duration_ms,omitempty"`
	Path       string          `json:"path"`
	Playlist   string          `json:"playlist"`
	Renditions []renditionMeta `json:"renditions"`
}

type renditionMeta struct {
	Path     string `json:"path"`
	Playlist string `json:"playlist"`
	Width    int    `json:"resolution_width,omitempty"`
	Height   int    `json:"resolution_height,omitempty"`
}

func (p *Participant) putMetadata(ctx context.Context, key, status string, w *HLSWriter, failure error) error {
	cfg := p.cfg
	m := metadata{
		Version:            "v1",
		RecordingStartedAt: p.started.UTC().Format(time.RFC3339),
		StageARN:           cfg.StageARN,
		SessionID:          cfg.SessionID,
		ParticipantID:      cfg.ParticipantID,
		RecordingStatus:    status,
		Media: mediaMeta{HLS: hlsMeta{Path: "media/hls", Playlist: "multivariant.m3u8",
			Renditions: []renditionMeta{{Path: "high", Playlist: "playlist.m3u8"}}}},
	}
	if key != StartedKey {
		m.RecordingEndedAt = cfg.Now().UTC().Format(time.RFC3339)
		m.Media.HLS.DurationMS = w.Duration().Milliseconds()
		m.Media.HLS.Renditions[0].Width, m.Media.HLS.Renditions[0].Height = w.Size()
	}
	if failure != nil {
		m.StatusMessage = failure.Error()
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := cfg.Store.PutObject(ctx, cfg.Bucket, cfg.Prefix+key, body, "application/json"); err != nil {
		return fmt.Errorf("recording: metadata: %w", err)
	}
	return nil
}

// Interrupted is what is known of a recording the server stopped without
// ending (a crash, kill -9): its prefix and whose it was.
type Interrupted struct {
	Bucket, Prefix                     string
	StageARN, SessionID, ParticipantID string
}

// FailInterrupted ends a recording that was in progress when the server
// stopped without ending it: the playlist it uploaded (which names only
// complete segments) is closed as VOD, so that players see a finished
// recording rather than a live one that never grows, and
// recording-failed.json says it ended with a failure, and why, with the
// start, duration and resolution of what was kept.
func FailInterrupted(ctx context.Context, store ivsrt.ObjectStore, r Interrupted, now time.Time) error {
	m := metadata{
		Version:          "v1",
		RecordingEndedAt: now.UTC().Format(time.RFC3339),
		StageARN:         r.StageARN,
		SessionID:        r.SessionID,
		ParticipantID:    r.ParticipantID,
		RecordingStatus:  "RECORDING_ENDED_WITH_FAILURE",
		StatusMessage:    "the server stopped while recording",
		Media: mediaMeta{HLS: hlsMeta{Path: "media/hls", Playlist: "multivariant.m3u8",
			Renditions: []renditionMeta{{Path: "high", Playlist: "playlist.m3u8"}}}},
	}
	if body, _, err := store.GetObject(ctx, r.Bucket, r.Prefix+StartedKey); err == nil {
		var started metadata
		if json.Unmarshal(body, &started) == nil {
			m.RecordingStartedAt = started.RecordingStartedAt
		}
	}
	if body, _, err := store.GetObject(ctx, r.Bucket, r.Prefix+MultivariantKey); err == nil {
		m.Media.HLS.Renditions[0].Width, m.Media.HLS.Renditions[0].Height = resolutionOf(body)
	}
	// The metadata is stored even if the playlist cannot be closed.
	var playlistErr error
	pl, contentType, err := store.GetObject(ctx, r.Bucket, r.Prefix+PlaylistKey)
	switch {
	case err == nil:
		closed, d := closePlaylist(pl)
		m.Media.HLS.DurationMS = d.Milliseconds()
		if !bytes.Equal(closed, pl) {
			if err := store.PutObject(ctx, r.Bucket, r.Prefix+PlaylistKey, closed, contentType); err != nil {
				playlistErr = fmt.Errorf("recording: close the playlist: %w", err)
			}
		}
	case ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND:
		playlistErr = fmt.Errorf("recording: read the playlist: %w", err)
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := store.PutObject(ctx, r.Bucket, r.Prefix+FailedKey, body, "application/json"); err != nil {
		return errors.Join(fmt.Errorf("recording: metadata: %w", err), playlistErr)
	}
	return playlistErr
}

// closePlaylist returns the media playlist pl ended (VOD, with its end
// list), and the duration of its segments.
func closePlaylist(pl []byte) ([]byte, time.Duration) {
	var d time.Duration
	ended := false
	lines := strings.Split(strings.TrimRight(string(pl), "\n"), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				d += time.Duration(f * float64(time.Second))
			}
		case l == "#EXT-X-PLAYLIST-TYPE:EVENT":
			lines[i] = "#EXT-X-PLAYLIST-TYPE:VOD"
		case l == endList:
			ended = true
		}
	}
	if ended {
		return pl, d
	}
	return []byte(strings.Join(append(lines, endList), "\n") + "\n"), d
}

// resolutionOf returns the RESOLUTION a multivariant playlist gives its
// first variant, 0 if none.
func resolutionOf(multivariant []byte) (width, height int) {
	_, after, ok := strings.Cut(string(multivariant), "RESOLUTION=")
	if !ok {
		return 0, 0
	}
	after, _, _ = strings.Cut(after, ",")
	after, _, _ = strings.Cut(after, "\n")
	w, h, _ := strings.Cut(after, "x")
	width, _ = strconv.Atoi(w)
	height, _ = strconv.Atoi(h)
	return width, height
}
