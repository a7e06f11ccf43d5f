package sfu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/composition/engine"
	"github.com/ivsrt/ivsrt/composition/layout"
	"github.com/ivsrt/ivsrt/recording"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// Server-side composition. A composition subscribes to every publisher of
// its stage as a subscriber does (a DownTrack per track, so it starts at a
// keyframe and follows publishers that reconnect), and composes them with
// an engine per destination (package composition/engine: ffmpeg decodes
// and encodes, the layout is package composition/layout's). The stage
// tells its compositions when it changes (who publishes, mutes); the
// composition's goroutine then lays the picture out again without
// restarting its outputs. Its states and events go through the store.

// CompositionStore is what compositions read and write.
type CompositionStore interface {
	CreateComposition(ctx context.Context, c *ivsrt.Composition) error
	UpdateComposition(ctx context.Context, c *ivsrt.Composition, events ...*ivsrt.StreamEvent) error
	GetEncoderConfiguration(ctx context.Context, arn ivsrt.EncoderConfigurationARN) (*ivsrt.EncoderConfiguration, error)
	GetStorageConfiguration(ctx context.Context, arn ivsrt.StorageConfigurationARN) (*ivsrt.StorageConfiguration, error)
}

// CompositionConfig configures the compositions a server runs.
type CompositionConfig struct {
	Store CompositionStore
	// FFmpeg is the path of ffmpeg; "" runs no composition.
	FFmpeg string
	// Max is how many compositions may run at once (each encodes video:
	// a core or so at 720p30); 0 means 2.
	Max int
	// Channels maps IVS channel ARNs to the RTMP(S) URLs (with their
	// stream keys) a channel destination sends to: ivsrt has no channels.
	Channels map[string]string
	// WorkDir holds the HLS of S3 destinations before it is uploaded; ""
	// is the system's temporary folder.
	WorkDir string
	// IdleTimeout is how long a composition waits with nobody publishing
	// before it stops; 0 means ivsrt.CompositionIdleTimeout.
	IdleTimeout time.Duration
	// ReconnectWait and ReconnectAttempts: a channel destination whose
	// target drops is RECONNECTING, tried again this many times this far
	// apart, then FAILED. 0 means 5 s and 5.
	ReconnectWait     time.Duration
	ReconnectAttempts int
}

// WithCompositions makes the server run compositions as cfg says.
func WithCompositions(cfg CompositionConfig) Option {
	return func(s *Server) {
		if cfg.Max == 0 {
			cfg.Max = 2
		}
		if cfg.IdleTimeout == 0 {
			cfg.IdleTimeout = ivsrt.CompositionIdleTimeout
		}
		if cfg.ReconnectWait == 0 {
			cfg.ReconnectWait = 5 * time.Second
		}
		if cfg.ReconnectAttempts == 0 {
			cfg.ReconnectAttempts = 5
		}
		if cfg.WorkDir == "" {
			cfg.WorkDir = os.TempDir()
		}
		s.compCfg = &cfg
	}
}

var _ ivsrt.Compositor = (*Server)(nil)

// compositionRun is one running composition.
type compositionRun struct {
	s     *Server
	arn   ivsrt.CompositionARN
	stage ivsrt.StageARN

	changed chan struct{} // the stage changed; capacity 1
	stop    chan error    // the reason to stop (nil: StopComposition); capacity 1
	done    chan struct{}

	// Owned by the run's goroutine.
	c    *ivsrt.Composition
	outs []*compositionOutput
}

// StartComposition implements ivsrt.Compositor.
func (s *Server) StartComposition(ctx context.Context, c *ivsrt.Composition) error {
	cfg := s.compCfg
	if cfg == nil || cfg.FFmpeg == "" {
		return ivsrt.Errorf(ivsrt.EQUOTA, "This server runs no compositions: it needs ffmpeg.")
	}
	s.compMu.Lock()
	if len(s.comps) >= cfg.Max {
		s.compMu.Unlock()
		return ivsrt.Errorf(ivsrt.EQUOTA, "This server runs %d compositions, the most it may (--max-compositions).", cfg.Max)
	}
	r := &compositionRun{s: s, arn: c.ARN, stage: c.StageARN, changed: make(chan struct{}, 1),
		stop: make(chan error, 1), done: make(chan struct{})}
	if s.comps == nil {
		s.comps = map[ivsrt.CompositionARN]*compositionRun{}
	}
	s.comps[c.ARN] = r // holds the place while the store writes
	s.compMu.Unlock()
	if err := cfg.Store.CreateComposition(ctx, c); err != nil {
		s.compMu.Lock()
		delete(s.comps, c.ARN)
		s.compMu.Unlock()
		return err
	}
	cp := *c
	cp.Destinations = slices.Clone(c.Destinations)
	r.c = &cp
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.compMu.Lock()
			delete(s.comps, r.arn)
			s.compMu.Unlock()
		}()
		r.run()
	}()
	r.notify()
	return nil
}

// StopComposition implements ivsrt.Compositor.
func (s *Server) StopComposition(ctx context.Context, arn ivsrt.CompositionARN) error {
	s.compMu.Lock()
	r := s.comps[arn]
	s.compMu.Unlock()
	if r == nil {
		return nil // ended already, or never ran here
	}
	r.requestStop(nil)
	select {
	case <-r.done:
	case <-ctx.Done():
	}
	return nil
}

// compositionsOf returns the compositions running on stage arn.
func (s *Server) compositionsOf(arn ivsrt.StageARN) []*compositionRun {
	s.compMu.Lock()
	defer s.compMu.Unlock()
	var out []*compositionRun
	for _, r := range s.comps {
		if r.stage == arn {
			out = append(out, r)
		}
	}
	return out
}

// stageChangedForCompositions tells the compositions of stage arn that it
// changed. It never blocks.
func (s *Server) stageChangedForCompositions(arn ivsrt.StageARN) {
	for _, r := range s.compositionsOf(arn) {
		r.notify()
	}
}

// errServerClosing stops the compositions of a server that shuts down.
var errServerClosing = errors.New("the server shut down")

// stopCompositions stops every composition for reason, and waits for
// them: the server is closing.
func (s *Server) stopCompositions(reason error) {
	s.compMu.Lock()
	runs := make([]*compositionRun, 0, len(s.comps))
	for _, r := range s.comps {
		runs = append(runs, r)
	}
	s.compMu.Unlock()
	for _, r := range runs {
		r.requestStop(reason)
	}
	for _, r := range runs {
		<-r.done
	}
}

func (r *compositionRun) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *compositionRun) requestStop(reason error) {
	select {
	case r.stop <- reason:
	default:
	}
}

// compositionOutput is one destination's engine.
type compositionOutput struct {
	// mu guards inputs between the run's goroutine, which changes it,
	// and the engine's callbacks, which read it. A leaf, never held
	// across I/O.
	mu     sync.Mutex
	i      int // the destination's index
	video  ivsrt.Video
	eng    *engine.Engine
	inputs map[ivsrt.ParticipantID]*compositionInput
	upload *hlsUpload // S3 destinations
	rtmp   string     // channel destinations: the target
	tries  int        // reconnections since it last ran well
	failed bool
}

// compositionInput is one publisher in an output.
type compositionInput struct {
	in    *engine.Input
	downs []*forward.DownTrack
	video *forward.Source // nil without video
}

// publisherSnapshot is what a composition needs of a publisher, read
// under the stage's lock.
type publisherSnapshot struct {
	id           ivsrt.ParticipantID
	attributes   map[string]string
	joined       time.Time
	videoStopped bool
	sources      map[webrtc.RTPCodecType]*forward.Source
}

// compositionSnapshot returns the stage's publishers now, and whether the
// stage is live here.
func (s *Server) compositionSnapshot(arn ivsrt.StageARN) []publisherSnapshot {
	s.mu.Lock()
	st := s.stages[arn]
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	st.lock()
	defer st.mu.Unlock() // not unlock: nothing changes here, and unlock may notify us
	var out []publisherSnapshot
	for id, pub := range st.pubs {
		p := st.parts[id]
		if p == nil || !pub.live() {
			continue
		}
		ps := publisherSnapshot{id: id, joined: p.joinedAt, videoStopped: p.muted["video"],
			sources: map[webrtc.RTPCodecType]*forward.Source{}}
		if p.tok != nil {
			ps.attributes = p.tok.Attributes
		}
		for kind, src := range pub.sources {
			ps.sources[kind] = src
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b publisherSnapshot) int { return a.joined.Compare(b.joined) })
	return out
}

// run is the composition's life: its outputs start, it follows its stage
// until it is stopped, its stage is deleted, nobody publishes for the idle
// timeout, or every output failed.
func (r *compositionRun) run() {
	defer close(r.done)
	s, cfg := r.s, r.s.compCfg
	var (
		events  []*ivsrt.StreamEvent
		running int
	)
	now := s.now()
	for i := range r.c.Destinations {
		out, err := r.startOutput(i)
		d := &r.c.Destinations[i]
		if err != nil {
			s.logger.Warn("composition: destination failed", "composition", r.arn, "destination", d.ID, "err", err)
			d.State, d.EndTime = ivsrt.DestinationFailed, now
			events = append(events, ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionDestinationFailure, d.ID, trimReason(err.Error()), now))
			continue
		}
		r.outs = append(r.outs, out)
		running++
		d.State, d.StartTime = ivsrt.DestinationActive, now
		events = append(events, ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionDestinationStart, d.ID, "", now))
	}
	if running == 0 {
		r.c.State, r.c.EndTime = ivsrt.CompositionFailed, now
		events = append(events, ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionSessionFailure, "", "every destination failed", now))
		r.save(events...)
		return
	}
	r.c.State, r.c.StartTime = ivsrt.CompositionActive, now
	events = append([]*ivsrt.StreamEvent{ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionSessionStart, "", "", now)}, events...)
	r.save(events...)
	s.logger.Info("composition started", "composition", r.arn, "stage", r.stage)

	// The idle timeout runs on the server's clock, checked each second,
	// so that a test can move the clock rather than wait a minute.
	idleSince := now // zero while someone publishes
	check := time.NewTicker(time.Second)
	defer check.Stop()
	var stopReason error
loop:
	for {
		select {
		case <-r.changed:
			pubs := s.compositionSnapshot(r.stage)
			r.reconcile(pubs)
			switch {
			case len(pubs) > 0:
				idleSince = time.Time{}
			case idleSince.IsZero():
				idleSince = s.now()
			}
		case stopReason = <-r.stop:
			break loop
		case <-check.C:
			if !idleSince.IsZero() && s.now().Sub(idleSince) >= cfg.IdleTimeout {
				s.logger.Info("composition: nobody published for the idle timeout", "composition", r.arn)
				break loop
			}
			if !r.checkOutputs() {
				stopReason = errors.New("every destination failed")
				break loop
			}
		}
	}
	r.finish(stopReason)
}

// save stores the composition's state with events; a store failure is
// logged (the state is written again at the next change).
func (r *compositionRun) save(events ...*ivsrt.StreamEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), r.s.storeTimeout)
	defer cancel()
	if err := r.s.compCfg.Store.UpdateComposition(ctx, r.c, events...); err != nil {
		r.s.logger.Warn("composition: state not stored", "composition", r.arn, "state", r.c.State, "err", err)
	}
}

// startOutput starts destination i's engine.
func (r *compositionRun) startOutput(i int) (*compositionOutput, error) {
	s, cfg := r.s, r.s.compCfg
	d := &r.c.Destinations[i]
	out := &compositionOutput{i: i, video: ivsrt.DefaultVideo(), inputs: map[ivsrt.ParticipantID]*compositionInput{}}
	ctx, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
	defer cancel()
	var encoder ivsrt.EncoderConfigurationARN
	switch {
	case d.Configuration.Channel != nil:
		ch := d.Configuration.Channel
		encoder = ch.EncoderConfigurationARN
		out.rtmp = cfg.Channels[ch.ChannelARN]
		if out.rtmp == "" {
			return nil, fmt.Errorf("no RTMP target is configured for channel %s (--composition-channel ARN=URL)", ch.ChannelARN)
		}
	case d.Configuration.S3 != nil:
		s3 := d.Configuration.S3
		if len(s3.EncoderConfigurationARNs) > 0 {
			encoder = s3.EncoderConfigurationARNs[0]
		}
		if s.objects == nil {
			return nil, errors.New("this server has no object store for recordings")
		}
		sc, err := cfg.Store.GetStorageConfiguration(ctx, s3.StorageConfigurationARN)
		if err != nil {
			return nil, fmt.Errorf("read the storage configuration: %w", err)
		}
		if err := s.objects.CheckBucket(ctx, sc.S3BucketName); err != nil {
			return nil, fmt.Errorf("the bucket %s cannot be written: %w", sc.S3BucketName, err)
		}
		segment := time.Duration(s3.TargetSegmentDurationSeconds) * time.Second
		if segment == 0 {
			segment = ivsrt.DefaultTargetSegmentSeconds * time.Second
		}
		out.upload = &hlsUpload{bucket: sc.S3BucketName, prefix: d.RecordingPrefix, segment: segment,
			dir: filepath.Join(cfg.WorkDir, "ivsrt-composition-"+r.arn.ID()+"-"+d.ID), ffmpeg: cfg.FFmpeg}
		for _, th := range s3.Thumbnails {
			tc := &recording.ThumbnailConfig{Interval: time.Duration(th.TargetIntervalSeconds) * time.Second}
			if tc.Interval == 0 {
				tc.Interval = ivsrt.DefaultThumbnailIntervalSecs * time.Second
			}
			for _, where := range th.Storage {
				tc.Sequential = tc.Sequential || where == "SEQUENTIAL"
				tc.Latest = tc.Latest || where == "LATEST"
			}
			if len(th.Storage) == 0 {
				tc.Sequential = true // the model's default storage
			}
			out.upload.thumbnails = tc
		}
	}
	if encoder != "" {
		ec, err := cfg.Store.GetEncoderConfiguration(ctx, encoder)
		if err != nil {
			return nil, fmt.Errorf("read the encoder configuration: %w", err)
		}
		out.video = ec.Video
	}
	if out.upload != nil {
		if err := out.upload.start(ctx, s, out.video, r.c); err != nil {
			return nil, err
		}
	}
	if err := r.startEngine(out); err != nil {
		if out.upload != nil {
			out.upload.fail(err, s.now())
		}
		return nil, err
	}
	return out, nil
}

// startEngine starts out's engine, and feeds it the stage's publishers.
func (r *compositionRun) startEngine(out *compositionOutput) error {
	s, cfg := r.s, r.s.compCfg
	eo := engine.Output{RTMP: out.rtmp}
	if out.upload != nil {
		eo.HLS = out.upload.engineOutput()
	}
	fps := int(out.video.Framerate + 0.5)
	eng, err := engine.New(context.Background(), engine.Config{
		FFmpeg: cfg.FFmpeg, Width: out.video.Width, Height: out.video.Height, FPS: max(fps, 1), Bitrate: out.video.Bitrate,
		Outputs: []engine.Output{eo}, Logger: s.logger,
		OnKeyframeNeeded: func(id string) { r.askKeyframe(out, ivsrt.ParticipantID(id)) },
		OnVideoSize:      func(string, int, int) { r.notify() },
	})
	if err != nil {
		return fmt.Errorf("start the composition's encoding: %w", err)
	}
	out.mu.Lock()
	out.eng = eng
	out.inputs = map[ivsrt.ParticipantID]*compositionInput{}
	out.mu.Unlock()
	return nil
}

// askKeyframe asks publisher id for a keyframe of its video: the engine
// calls it from its own goroutines.
func (r *compositionRun) askKeyframe(out *compositionOutput, id ivsrt.ParticipantID) {
	out.mu.Lock()
	ci := out.inputs[id]
	out.mu.Unlock()
	if ci != nil && ci.video != nil {
		ci.video.RequestKeyframe()
	}
}

// reconcile makes every running output compose pubs: inputs for new
// publishers, none for those gone, and the layout of who is there now.
func (r *compositionRun) reconcile(pubs []publisherSnapshot) {
	for _, out := range r.outs {
		if out.failed || out.eng == nil {
			continue
		}
		r.reconcileOutput(out, pubs)
	}
}

func (r *compositionRun) reconcileOutput(out *compositionOutput, pubs []publisherSnapshot) {
	s := r.s
	present := map[ivsrt.ParticipantID]bool{}
	for _, p := range pubs {
		present[p.id] = true
		if out.inputs[p.id] != nil {
			continue
		}
		in, err := out.eng.AddInput(string(p.id))
		if err != nil {
			s.logger.Warn("composition: publisher not added", "composition", r.arn, "participant", p.id, "err", err)
			continue
		}
		ci := &compositionInput{in: in, video: p.sources[webrtc.RTPCodecTypeVideo]}
		for kind, src := range p.sources {
			d, err := src.NewDownTrack()
			if err != nil {
				continue
			}
			if _, err := d.Bind(composerTrack{kind: kind, in: in}); err != nil {
				d.Close()
				continue
			}
			d.Start()
			ci.downs = append(ci.downs, d)
		}
		out.mu.Lock()
		out.inputs[p.id] = ci
		out.mu.Unlock()
	}
	for id, ci := range out.inputs {
		if present[id] {
			continue
		}
		for _, d := range ci.downs {
			d.Close()
		}
		out.eng.RemoveInput(string(id))
		out.mu.Lock()
		delete(out.inputs, id)
		out.mu.Unlock()
	}
	parts := make([]layout.Participant, 0, len(pubs))
	for i, p := range pubs {
		lp := layout.Participant{ID: string(p.id), Attributes: p.attributes, JoinOrder: int64(i),
			PublishesVideo: p.sources[webrtc.RTPCodecTypeVideo] != nil, VideoStopped: p.videoStopped}
		if ci := out.inputs[p.id]; ci != nil {
			if w, h, ok := ci.in.VideoSize(); ok {
				lp.VideoWidth, lp.VideoHeight = w, h
			}
		}
		parts = append(parts, lp)
	}
	scene, err := layout.Arrange(r.c.Layout, layout.Size{Width: out.video.Width, Height: out.video.Height}, parts)
	if err != nil {
		s.logger.Warn("composition: layout failed", "composition", r.arn, "err", err)
		return
	}
	if err := out.eng.SetLayout(scene.Tiles); err != nil {
		s.logger.Warn("composition: layout not applied", "composition", r.arn, "err", err)
	}
}

// checkOutputs looks at the outputs' engines: a channel destination whose
// engine ended is RECONNECTING, then tried again, and FAILED after its
// attempts; an S3 destination whose engine ended is FAILED. It reports
// whether any output still runs.
func (r *compositionRun) checkOutputs() bool {
	s, cfg := r.s, r.s.compCfg
	alive := false
	for _, out := range r.outs {
		if out.failed {
			continue
		}
		var err error
		select {
		case <-out.eng.Done():
			if err = out.eng.Err(); err == nil {
				err = errors.New("the encoding ended")
			}
		default:
			if out.upload != nil {
				err = out.upload.err()
			}
		}
		if err == nil {
			alive = true
			if out.tries > 0 && r.c.Destinations[out.i].State == ivsrt.DestinationReconnecting {
				r.c.Destinations[out.i].State = ivsrt.DestinationActive
				r.save(ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionDestinationStart, r.c.Destinations[out.i].ID, "", s.now()))
			}
			continue
		}
		out.eng.Close()
		r.dropInputs(out)
		err = redactTarget(err, out.rtmp)
		d := &r.c.Destinations[out.i]
		if out.rtmp != "" && out.tries < cfg.ReconnectAttempts {
			out.tries++
			if d.State != ivsrt.DestinationReconnecting {
				d.State = ivsrt.DestinationReconnecting
				r.save(ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionDestinationReconnecting, d.ID, trimReason(err.Error()), s.now()))
			}
			s.logger.Warn("composition: channel destination dropped, reconnecting", "composition", r.arn, "destination", d.ID, "try", out.tries, "err", err)
			select {
			case <-time.After(cfg.ReconnectWait):
			case reason := <-r.stop:
				r.requestStop(reason) // seen again by the loop
				out.failed = true
				return true
			}
			if err := r.startEngine(out); err == nil {
				r.reconcileOutput(out, s.compositionSnapshot(r.stage))
				alive = true
				continue
			}
		}
		out.failed = true
		now := s.now()
		d.State, d.EndTime = ivsrt.DestinationFailed, now
		reason := trimReason(err.Error())
		if out.upload != nil {
			out.upload.fail(err, now)
		}
		r.save(ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionDestinationFailure, d.ID, reason, now))
		s.logger.Warn("composition: destination failed", "composition", r.arn, "destination", d.ID, "err", err)
	}
	return alive
}

// dropInputs closes out's subscriptions.
func (r *compositionRun) dropInputs(out *compositionOutput) {
	out.mu.Lock()
	inputs := out.inputs
	out.inputs = map[ivsrt.ParticipantID]*compositionInput{}
	out.mu.Unlock()
	for _, ci := range inputs {
		for _, d := range ci.downs {
			d.Close()
		}
	}
}

// finish ends the composition: STOPPING, its outputs closed and their
// last segments uploaded, then STOPPED, or FAILED when reason says why
// (every output failed).
func (r *compositionRun) finish(reason error) {
	s := r.s
	r.c.State = ivsrt.CompositionStopping
	for _, out := range r.outs {
		if !out.failed {
			r.c.Destinations[out.i].State = ivsrt.DestinationStopping
		}
	}
	r.save()
	var events []*ivsrt.StreamEvent
	for _, out := range r.outs {
		r.dropInputs(out)
		if out.eng != nil {
			out.eng.Close()
		}
		if out.failed {
			continue
		}
		d := &r.c.Destinations[out.i]
		now := s.now()
		if out.upload != nil {
			ctx, cancel := context.WithTimeout(context.Background(), recordingStopTimeout)
			err := out.upload.finish(ctx, now)
			cancel()
			if err != nil {
				d.State, d.EndTime = ivsrt.DestinationFailed, now
				events = append(events, ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionDestinationFailure, d.ID, trimReason(err.Error()), now))
				continue
			}
		}
		d.State, d.EndTime = ivsrt.DestinationStopped, now
		events = append(events, ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionDestinationEnd, d.ID, "", now))
	}
	now := s.now()
	r.c.EndTime = now
	if reason != nil {
		r.c.State = ivsrt.CompositionFailed
		events = append(events, ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionSessionFailure, "", reason.Error(), now))
	} else {
		r.c.State = ivsrt.CompositionStopped
		events = append(events, ivsrt.NewCompositionStreamEvent(r.c, ivsrt.StreamCompositionSessionEnd, "", "", now))
	}
	r.save(events...)
	s.logger.Info("composition ended", "composition", r.arn, "state", r.c.State)
}

// composerTrack is the TrackLocalContext a composition's DownTracks bind
// to: their packets go to an engine input.
type composerTrack struct {
	kind webrtc.RTPCodecType
	in   *engine.Input
}

var (
	_ webrtc.TrackLocalContext = composerTrack{}
	_ webrtc.TrackLocalWriter  = composerTrack{}
)

func (t composerTrack) CodecParameters() []webrtc.RTPCodecParameters {
	if t.kind == webrtc.RTPCodecTypeAudio {
		return []webrtc.RTPCodecParameters{codecOpus}
	}
	return []webrtc.RTPCodecParameters{codecH264ConstrainedBaseline, codecH264Baseline, codecVP8}
}
func (composerTrack) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (composerTrack) SSRC() webrtc.SSRC                                      { return 1 }
func (composerTrack) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (composerTrack) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (t composerTrack) WriteStream() webrtc.TrackLocalWriter                 { return t }
func (composerTrack) ID() string                                             { return "composition" }
func (composerTrack) RTCPReader() interceptor.RTCPReader                     { return noRTCP{} }

// WriteRTP gives the engine a copy of the header with the payload, which
// the forwarding path never modifies; the payload type says the codec.
func (t composerTrack) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	p := &rtp.Packet{Header: *h, Payload: payload}
	if t.kind == webrtc.RTPCodecTypeAudio {
		t.in.WriteAudioRTP(p)
	} else {
		codec := engine.CodecH264
		if h.PayloadType == uint8(codecVP8.PayloadType) {
			codec = engine.CodecVP8
		}
		t.in.WriteVideoRTP(codec, p)
	}
	return h.MarshalSize() + len(payload), nil
}

func (composerTrack) Write(b []byte) (int, error) { return len(b), nil }

// rendition is the name of an S3 destination's rendition folder: its
// height and frame rate, as 720p30.
func rendition(v ivsrt.Video) string {
	return fmt.Sprintf("%dp%d", v.Height, int(v.Framerate+0.5))
}

// redactTarget is err with target (an RTMP URL, whose last path element
// is a stream key) shown without its key: errors go to logs and events.
func redactTarget(err error, target string) error {
	if err == nil || target == "" {
		return err
	}
	shown := target
	if i := strings.LastIndex(target, "/"); i > len("rtmps://") {
		shown = target[:i+1] + "<stream key>"
	}
	msg := err.Error()
	if !strings.Contains(msg, target) {
		return err
	}
	return errors.New(strings.ReplaceAll(msg, target, shown))
}

// trimReason shortens an error for an event's reason: its first line, at
// most 256 bytes.
func trimReason(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

// hlsUpload is an S3 destination's upload: the engine writes HLS into dir,
// and a goroutine uploads it every second (recording.Composite).
type hlsUpload struct {
	bucket, prefix, dir string
	segment             time.Duration
	thumbnails          *recording.ThumbnailConfig // nil for none
	ffmpeg              string

	comp    *recording.Composite
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
	mu      sync.Mutex
	failed  error // set after uploads kept failing
}

// uploadFailuresAllowed is how many syncs in a row may fail (the store is
// down) before the destination fails.
const uploadFailuresAllowed = 10

func (u *hlsUpload) start(ctx context.Context, s *Server, video ivsrt.Video, c *ivsrt.Composition) error {
	if err := os.MkdirAll(u.dir, 0o755); err != nil {
		return fmt.Errorf("composition: local folder: %w", err)
	}
	u.comp = recording.NewComposite(recording.CompositeConfig{
		Store: s.objects, Bucket: u.bucket, Prefix: u.prefix, Dir: u.dir, Rendition: rendition(video),
		Width: video.Width, Height: video.Height, Bandwidth: video.Bitrate,
		StageARN: string(c.StageARN), CompositionID: c.ARN.ID(), Logger: s.logger,
		Thumbnails: u.thumbnails, FFmpeg: u.ffmpeg,
	})
	if err := u.comp.Start(ctx, s.now()); err != nil {
		os.RemoveAll(u.dir)
		return err
	}
	u.stop, u.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(u.stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		fails := 0
		for {
			select {
			case <-u.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := u.comp.Sync(ctx)
			cancel()
			if err == nil {
				fails = 0
				continue
			}
			fails++
			s.logger.Warn("composition: upload failed", "prefix", u.prefix, "err", err)
			if fails >= uploadFailuresAllowed {
				u.mu.Lock()
				u.failed = err
				u.mu.Unlock()
				return
			}
		}
	}()
	return nil
}

func (u *hlsUpload) engineOutput() *engine.HLS {
	return &engine.HLS{Dir: u.dir, SegmentDuration: u.segment}
}

// err is why the upload gave up, nil while it goes on.
func (u *hlsUpload) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.failed
}

func (u *hlsUpload) halt() {
	u.once.Do(func() {
		if u.stop != nil {
			close(u.stop)
			<-u.stopped
		}
	})
}

// finish uploads the rest once the engine has ended.
func (u *hlsUpload) finish(ctx context.Context, now time.Time) error {
	u.halt()
	if err := u.err(); err != nil {
		u.comp.Fail(ctx, err, now)
		return err
	}
	return u.comp.Finish(ctx, now)
}

// fail ends the recording as failed for cause.
func (u *hlsUpload) fail(cause error, now time.Time) {
	u.halt()
	if u.comp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordingStopTimeout)
	defer cancel()
	u.comp.Fail(ctx, cause, now)
}
