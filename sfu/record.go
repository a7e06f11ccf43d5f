package sfu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/recording"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// Individual participant recording: when a participant starts publishing
// on a stage whose autoParticipantRecordingConfiguration names a storage
// configuration, its media is recorded to that configuration's bucket.
// The recording subscribes to the publication's tracks as a subscriber
// does (a DownTrack each, so it starts at a keyframe and follows a
// publisher that reconnects), and muxes and uploads on goroutines of its
// own: the forwarding path only queues packets for it.

// RecordingObserver is told of each change of a participant recording's
// state: what the API reports and the recording state change events say.
type RecordingObserver interface {
	RecordingStateChanged(ctx context.Context, rec RecordingInfo)
}

// RecordingInfo is a participant recording's state.
type RecordingInfo struct {
	StageARN      ivsrt.StageARN
	SessionID     ivsrt.SessionID
	ParticipantID ivsrt.ParticipantID
	Bucket        string
	Prefix        string
	State         recording.State
	Duration      time.Duration // with Stopped and Failed
	Err           error         // with Failed
}

// WithRecording makes the server record publishers of stages configured
// to: recordings go to objects (a folder per bucket, or S3), and o (which
// may be nil) is told of their states.
func WithRecording(objects ivsrt.ObjectStore, o RecordingObserver) Option {
	return func(s *Server) { s.objects, s.recObserver = objects, o }
}

// participantRecording is a publication's recording. It follows the
// publication's tracks, so a publisher that comes back within the
// stage's reconnect window (in the same stage session) continues it.
type participantRecording struct {
	rec     *recording.Participant
	downs   []*forward.DownTrack
	session ivsrt.SessionID // the stage session it belongs to (its prefix's)
	window  time.Duration   // recordingReconnectWindowSeconds; 0: no continuing
	// parked is set while the publisher is away: when it fires, the
	// publisher did not come back in time and the recording ends.
	parked *time.Timer
}

// recordingPlan is what a publisher's recording is to be, read from the
// store before the stage is locked.
type recordingPlan struct {
	bucket          string
	video, audio    bool
	targetSegment   time.Duration
	thumbnails      *recording.ThumbnailConfig
	reconnectWindow time.Duration
	replicas        bool // recordParticipantReplicas: replicas are recorded too
}

// planRecording returns the stage's recording plan, nil when the stage
// does not record.
func (s *Server) planRecording(ctx context.Context, arn ivsrt.StageARN) (*recordingPlan, error) {
	if s.objects == nil {
		return nil, nil
	}
	stage, err := s.store.GetStage(ctx, arn)
	if err != nil {
		return nil, fmt.Errorf("read the stage's recording configuration: %w", err)
	}
	cfg := stage.AutoParticipantRecording
	if cfg == nil || cfg.StorageConfigurationARN == "" {
		return nil, nil
	}
	plan := &recordingPlan{video: true, audio: true, targetSegment: time.Duration(cfg.HLSTargetSegmentDurationSeconds) * time.Second,
		reconnectWindow: time.Duration(cfg.RecordingReconnectWindowSeconds) * time.Second, replicas: cfg.RecordParticipantReplicas}
	if len(cfg.MediaTypes) > 0 {
		switch cfg.MediaTypes[0] {
		case "AUDIO_ONLY":
			plan.video = false
		case "NONE":
			return nil, nil
		}
	}
	if th := cfg.Thumbnail; th != nil && th.RecordingMode != "DISABLED" && plan.video {
		tc := &recording.ThumbnailConfig{Interval: time.Duration(th.TargetIntervalSeconds) * time.Second}
		for _, where := range th.Storage {
			switch where {
			case "SEQUENTIAL":
				tc.Sequential = true
			case "LATEST":
				tc.Latest = true
			}
		}
		// Without ffmpeg (said at start) the media is still recorded.
		if _, err := recording.FFmpegPath(); err == nil && (tc.Sequential || tc.Latest) {
			plan.thumbnails = tc
		}
	}
	sc, err := s.store.GetStorageConfiguration(ctx, ivsrt.StorageConfigurationARN(cfg.StorageConfigurationARN))
	if err != nil {
		return nil, fmt.Errorf("read the storage configuration: %w", err)
	}
	if sc.S3BucketName == "" {
		return nil, errors.New("the storage configuration names no bucket")
	}
	plan.bucket = sc.S3BucketName
	return plan, nil
}

// readRecordingPlan reads the stage's recording plan, within the store
// timeout, when a publisher negotiates: the answer prefers H.264 when
// video is recorded, and the recording starts from the same plan once the
// publisher is connected.
func (s *Server) readRecordingPlan(ctx context.Context, arn ivsrt.StageARN) (*recordingPlan, error) {
	ctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	defer cancel()
	return s.planRecording(ctx, arn)
}

// startRecording starts recording ps's publication if its stage records,
// from the plan read at negotiation. It runs on a goroutine of its own
// once the publisher is connected.
func (s *Server) startRecording(ps *publishSession) {
	st := ps.st
	st.lock()
	defer st.unlock()
	plan, err := ps.recPlan, ps.recPlanErr
	if plan == nil && err == nil {
		return
	}
	pub := st.pubs[ps.pid]
	if ps.ended || pub == nil || pub.session != ps {
		return
	}
	if pr := pub.recording; pr != nil {
		// The publisher came back within the reconnect window: its
		// recording goes on, if what it sends now can be recorded.
		if plan != nil && plan.video && ps.videoCodec != "" && !strings.EqualFold(ps.videoCodec, "H264") {
			pr.rec.Fail(fmt.Errorf("the publisher came back sending %s video, and recordings are of H.264", ps.videoCodec))
		}
		return
	}
	s.recordPublication(st, pub, plan, err, ps.videoCodec)
}

// startReplicaRecording starts recording a replica that publishes, if
// its stage records replicas (recordParticipantReplicas). It reads the
// plan from the store, then locks the stage. Call it on a goroutine of
// its own.
func (s *Server) startReplicaRecording(r *replica) {
	ctx, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
	plan, err := s.planRecording(ctx, r.st.arn)
	cancel()
	st := r.st
	st.lock()
	defer st.unlock()
	if r.ended || !r.live || r.pub.recording != nil || st.pubs[r.id] != r.pub {
		return
	}
	if (plan == nil && err == nil) || (plan != nil && !plan.replicas) {
		return
	}
	s.recordPublication(st, r.pub, plan, err, "") // the codec is told by the feed's first packets
}

// recordPublication starts recording pub from plan (or, with planErr,
// says the recording failed to start). videoCodec is what the publisher
// negotiated, "" if not known yet. The stage is locked.
func (s *Server) recordPublication(st *stage, pub *publication, plan *recordingPlan, planErr error, videoCodec string) {
	pid, err := pub.owner, planErr
	info := RecordingInfo{StageARN: st.arn, SessionID: st.session, ParticipantID: pid}
	states := s.newRecordingStates()
	if err != nil {
		s.logger.Warn("recording: cannot start", "stage", st.arn, "participant", pid, "err", err)
		info.State, info.Err = recording.Failed, err
		states.tell(info)
		return
	}
	info.Bucket = plan.bucket
	info.Prefix = recording.Prefix(st.arn, st.session, pid, s.now())
	if plan.video && videoCodec != "" && !strings.EqualFold(videoCodec, "H264") {
		// HLS fMP4 recordings hold H.264: VP8 would need transcoding,
		// which this server does not do. The answer offered H.264 first:
		// this publisher offered no H.264.
		info.State, info.Err = recording.Failed, fmt.Errorf("the publisher sends %s video, and recordings are of H.264: publish H.264 to be recorded", videoCodec)
		s.logger.Warn("recording: cannot record", "stage", st.arn, "participant", pid, "err", info.Err)
		states.tell(info)
		return
	}
	pr := &participantRecording{session: st.session, window: plan.reconnectWindow}
	video := pub.sources[webrtc.RTPCodecTypeVideo]
	rec, err := recording.NewParticipant(recording.ParticipantConfig{
		Store: s.objects, Bucket: plan.bucket, Prefix: info.Prefix,
		StageARN: string(st.arn), SessionID: string(st.session), ParticipantID: string(pid),
		TargetSegment: plan.targetSegment, Video: plan.video, Audio: plan.audio, Thumbnails: plan.thumbnails,
		Logger: s.logger,
		OnState: func(state recording.State, d time.Duration, err error) {
			i := info
			i.State, i.Duration, i.Err = state, d, err
			states.tell(i)
		},
		RequestKeyframe: func() {
			if video != nil {
				video.RequestKeyframe()
			}
		},
	})
	if err != nil {
		s.logger.Warn("recording: cannot start", "stage", st.arn, "participant", pid, "err", err)
		info.State, info.Err = recording.Failed, err
		states.tell(info)
		return
	}
	pr.rec = rec
	for kind, src := range pub.sources {
		if kind == webrtc.RTPCodecTypeVideo && !plan.video {
			continue
		}
		d, err := src.NewDownTrack()
		if err != nil {
			continue
		}
		k := recording.Audio
		if kind == webrtc.RTPCodecTypeVideo {
			k = recording.Video
		}
		if _, err := d.Bind(recorderTrack{kind: k, rec: rec}); err != nil {
			d.Close()
			s.logger.Warn("recording: a track cannot be recorded", "participant", pid, "kind", kind, "err", err)
			continue
		}
		d.Start()
		pr.downs = append(pr.downs, d)
	}
	pub.recording = pr
	s.logger.Info("recording", "stage", st.arn, "participant", pid, "bucket", plan.bucket, "prefix", info.Prefix)
	if plan.video && video != nil {
		// A client may send another codec than the answer's first: the
		// upstream says which once its first packets arrive.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.checkRecordedCodec(rec, video)
		}()
	}
}

// checkRecordedCodec fails rec if the video its publisher sends is not
// H.264, once the first packets tell.
func (s *Server) checkRecordedCodec(rec *recording.Participant, video *forward.Source) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(codecCheckTimeout)
	for {
		if c, ok := video.Codec(); ok {
			if !strings.EqualFold(c.MimeType, webrtc.MimeTypeH264) {
				rec.Fail(fmt.Errorf("the publisher sends %s video, and recordings are of H.264: publish H.264 to be recorded", c.MimeType))
			}
			return
		}
		select {
		case <-t.C:
		case <-deadline:
			return
		case <-rec.Done():
			return
		}
	}
}

// codecCheckTimeout bounds the wait for a recorded publisher's first
// video packet.
const codecCheckTimeout = 30 * time.Second

// stopRecording ends pub's recording, if any; the upload of what is
// queued finishes in the background. Call with the stage locked.
func (st *stage) stopRecording(pub *publication) {
	pr := pub.recording
	if pr == nil {
		return
	}
	pub.recording = nil
	if pr.parked != nil {
		pr.parked.Stop()
		pr.parked = nil
	}
	for _, d := range pr.downs {
		d.Close()
	}
	s := st.s
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), recordingStopTimeout)
		defer cancel()
		pr.rec.Stop(ctx)
	}()
}

// parkRecording is called when pub's publisher goes away. With a
// reconnect window, the recording waits that long for the publisher to
// come back (see resumeRecording), keeping the publication's tracks;
// then it ends, and with it the publication if nobody else holds it.
// Without, it ends now. Call with the stage locked.
func (st *stage) parkRecording(pub *publication) {
	pr := pub.recording
	if pr == nil {
		return
	}
	if pr.window <= 0 {
		st.stopRecording(pub)
		return
	}
	pr.rec.Pause()
	if pr.parked != nil {
		return
	}
	pr.parked = time.AfterFunc(pr.window, func() {
		st.lock()
		defer st.unlock()
		if pub.recording != pr || pr.parked == nil {
			return
		}
		st.stopRecording(pub)
		// A publication that only waited for its recording ends with it;
		// a replica's lasts as long as its replication.
		if st.pubs[pub.owner] == pub && pub.session == nil && pub.replica == nil && len(pub.subs) == 0 {
			st.endPublication(context.Background(), pub)
		}
	})
}

// resumeRecording is called when a new WHIP session of pub's publisher
// takes over: the recording goes on if the stage's reconnect window
// allows (a publisher back in time, in the same stage session; the
// prefix names the session), and ends otherwise, a new one starting once
// the publisher is connected. Call with the stage locked.
func (st *stage) resumeRecording(pub *publication) {
	pr := pub.recording
	if pr == nil {
		return
	}
	if pr.window <= 0 || pr.session != st.session {
		st.stopRecording(pub)
		return
	}
	if pr.parked != nil {
		pr.parked.Stop()
		pr.parked = nil
		return // the break was marked when the publisher went away
	}
	// A session that replaces one still there: the old stream ends here.
	pr.rec.Pause()
}

// FailInterruptedRecordings ends, as failed, the recordings a crashed run
// (this server's last, or a dead node's) left in progress in the session: their metadata says so (when the
// object store takes it), and so do the participant's state and the
// stream's Recording End (or Start) Failure event.
func (s *Server) FailInterruptedRecordings(ctx context.Context, stage ivsrt.StageARN, session ivsrt.SessionID) error {
	for _, state := range []ivsrt.ParticipantRecordingState{ivsrt.RecordingStarting, ivsrt.RecordingActive, ivsrt.RecordingStopping} {
		st := string(state)
		page := ivsrt.Page{Limit: 100}
		for {
			ps, next, err := s.store.ListParticipants(ctx, stage, session, ivsrt.ParticipantFilter{RecordingState: &st}, page)
			if err != nil {
				return fmt.Errorf("list recorded participants: %w", err)
			}
			for _, p := range ps {
				if s.objects != nil && p.RecordingBucket != "" {
					if err := recording.FailInterrupted(ctx, s.objects, recording.Interrupted{Bucket: p.RecordingBucket, Prefix: p.RecordingPrefix,
						StageARN: string(stage), SessionID: string(session), ParticipantID: string(p.ID)}, s.now()); err != nil {
						s.logger.Warn("recording: cannot store the failure of an interrupted recording", "participant", p.ID, "err", err)
					}
				}
				event := ivsrt.StreamRecordingEndFailure
				if state == ivsrt.RecordingStarting {
					event = ivsrt.StreamRecordingStartFailure
				}
				if err := s.store.SetParticipantRecording(ctx, &ivsrt.ParticipantRecording{StageARN: stage, SessionID: session, ParticipantID: p.ID,
					Bucket: p.RecordingBucket, Prefix: p.RecordingPrefix, State: ivsrt.RecordingFailed, StreamEvent: event}); err != nil {
					return fmt.Errorf("end an interrupted recording: %w", err)
				}
			}
			if next == "" {
				break
			}
			page.After = next
		}
	}
	return nil
}

// recordingStopTimeout bounds the upload of a recording's last segment
// and metadata.
const recordingStopTimeout = 30 * time.Second

// recordingStates writes a recording's states, in order, on a goroutine
// of its own: to the store (the participant's recording fields, and the
// recording state change events), then to the observer. The recording
// and the stage lock never wait for the store.
type recordingStates struct {
	s      *Server
	ch     chan RecordingInfo
	active bool // a Recording Start was told: a failure is then an end failure
}

func (s *Server) newRecordingStates() *recordingStates {
	rs := &recordingStates{s: s, ch: make(chan RecordingInfo, 8)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for info := range rs.ch {
			rs.write(info)
			if info.State == recording.Stopped || info.State == recording.Failed {
				return
			}
		}
	}()
	return rs
}

// tell queues a state change. A recording has a handful of them, and the
// queue room for all; tell never blocks the recording.
func (rs *recordingStates) tell(info RecordingInfo) {
	select {
	case rs.ch <- info:
	default:
		rs.s.logger.Warn("recording: state change not written: too many pending", "participant", info.ParticipantID, "state", info.State)
	}
}

func (rs *recordingStates) write(info RecordingInfo) {
	s := rs.s
	r := &ivsrt.ParticipantRecording{StageARN: info.StageARN, SessionID: info.SessionID, ParticipantID: info.ParticipantID,
		Bucket: info.Bucket, Prefix: info.Prefix, State: ivsrt.ParticipantRecordingState(info.State), Duration: info.Duration}
	switch info.State {
	case recording.Active:
		r.StreamEvent, rs.active = ivsrt.StreamRecordingStart, true
	case recording.Stopped:
		r.StreamEvent = ivsrt.StreamRecordingEnd
	case recording.Failed:
		r.StreamEvent = ivsrt.StreamRecordingStartFailure
		if rs.active {
			r.StreamEvent = ivsrt.StreamRecordingEndFailure
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
	err := s.store.SetParticipantRecording(ctx, r)
	cancel()
	if err != nil {
		s.logger.Warn("recording: state not stored", "participant", info.ParticipantID, "state", info.State, "err", err)
	}
	if s.recObserver != nil {
		s.recObserver.RecordingStateChanged(context.Background(), info)
	}
}

// recorderTrack is the "connection" a recording's DownTrack is bound to:
// what it writes is queued for the recording.
type recorderTrack struct {
	kind recording.Kind
	rec  *recording.Participant
}

var (
	_ webrtc.TrackLocalContext = recorderTrack{}
	_ webrtc.TrackLocalWriter  = recorderTrack{}
)

func (t recorderTrack) CodecParameters() []webrtc.RTPCodecParameters {
	if t.kind == recording.Audio {
		return []webrtc.RTPCodecParameters{codecOpus}
	}
	return []webrtc.RTPCodecParameters{codecH264ConstrainedBaseline, codecH264Baseline}
}
func (recorderTrack) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (recorderTrack) SSRC() webrtc.SSRC                                      { return 1 }
func (recorderTrack) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (recorderTrack) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (t recorderTrack) WriteStream() webrtc.TrackLocalWriter                 { return t }
func (recorderTrack) ID() string                                             { return "recording" }
func (recorderTrack) RTCPReader() interceptor.RTCPReader                     { return noRTCP{} }

// WriteRTP queues a copy of the header with the payload, which the
// forwarding path never modifies.
func (t recorderTrack) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	t.rec.Push(t.kind, &rtp.Packet{Header: *h, Payload: payload}, time.Now())
	return h.MarshalSize() + len(payload), nil
}

func (recorderTrack) Write(b []byte) (int, error) { return len(b), nil }

// noRTCP is a recording's RTCP: none.
type noRTCP struct{}

func (noRTCP) Read([]byte, interceptor.Attributes) (int, interceptor.Attributes, error) {
	return 0, nil, io.EOF
}
