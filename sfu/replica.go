package sfu

import (
	"context"
	"net/http"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// Participant replication. A replica is a participant of the destination
// stage, with the source participant's id, that publishes what a feed
// (feed.go) brings it of the source's publication. It lives on the node
// hosting the destination stage, wherever the source publishes: the feed
// is a bridge in process when the source stage is hosted here too, and a
// peer connection to the source's node otherwise (remote.go).
//
// The replica mirrors the source: when the source stops publishing it
// does too (PUBLISH_STOPPED), and its subscribers wait; when the source
// publishes again it does too. The replication ends when the source has
// been away for longer than its reconnect window (at once with a window
// of 0), when the source participant is disconnected or its stage
// deleted, when the replication is stopped, and when the replica leaves
// the destination for any reason (the stage deleted, the node shutting
// down). Whatever ends it, the replica leaves the destination and the
// replication is recorded as stopped.

// refeedInterval is how often a replica whose feed ended looks for the
// source publishing again, within its reconnect window.
const refeedInterval = 500 * time.Millisecond

var _ ivsrt.ReplicationPlane = (*Server)(nil)

// replica is one replication's replica, in the destination stage st.
type replica struct {
	st  *stage
	id  ivsrt.ParticipantID
	req ivsrt.ReplicationRequest

	// Guarded by st.mu.
	source   ivsrt.SessionID // the source stage's session
	pub      *publication
	sink     *replicaSink
	link     feedLink    // nil while no feed is open
	live     bool        // the source publishes now
	away     *time.Timer // runs while the source is away
	refeed   context.CancelFunc
	recorded bool // the start was recorded: the stop must be
	ended    bool
}

// StartReplication implements ivsrt.ReplicationPlane: the replica joins
// the destination stage, hosted here, and the feed of the source's
// publication is opened, here or on the source's node.
func (s *Server) StartReplication(ctx context.Context, req *ivsrt.ReplicationRequest) (*ivsrt.ParticipantReplication, error) {
	id, dest := req.ParticipantID, req.DestinationStageARN
	st, ref := s.lockStage(dest)
	if ref != nil {
		return nil, refusalError(ref)
	}
	switch {
	case st.parts[id] != nil || st.pubs[id] != nil || st.starting[id]:
		st.unlock()
		return nil, ivsrt.Errorf(ivsrt.ECONFLICT, "Participant %s is already in stage %s.", id, dest)
	case st.publishers("") >= s.cfg.MaxPublishers:
		st.unlock()
		return nil, ivsrt.Errorf(ivsrt.EQUOTA, "Stage %s already has the most publishers it may have (%d).", dest, s.cfg.MaxPublishers)
	}
	// Held until the replica joins, so that the stage stays and no other
	// start of the same participant comes in between.
	st.starting[id] = true
	st.unlock()

	r := &replica{st: st, id: id, req: *req}
	link, err := s.openFeed(ctx, req.SourceStageARN, id, true, r.onFeed)
	st.lock()
	delete(st.starting, id)
	if err != nil {
		st.unlock()
		return nil, err
	}
	if ref := r.join(ctx, link); ref != nil {
		st.unlock()
		link.close()
		return nil, refusalError(ref)
	}
	sink, session := r.sink, st.session
	st.unlock()
	link.attach(sink)

	rec := &ivsrt.ParticipantReplication{
		SourceStageARN:         req.SourceStageARN,
		ParticipantID:          id,
		DestinationStageARN:    dest,
		DestinationSessionID:   session,
		ReconnectWindowSeconds: req.ReconnectWindowSeconds,
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.storeTimeout)
	err = s.store.StartParticipantReplication(wctx, rec, req.Quota)
	cancel()
	st.lock()
	if err != nil {
		st.endReplica(context.Background(), r)
		st.unlock()
		return nil, err
	}
	r.recorded = true
	stop := func() {}
	if r.ended {
		// Ended while its start was being recorded: the stop is recorded
		// after it.
		stop = s.stopRecorder(r)
	}
	st.unlock()
	stop()
	link.release()
	return rec, nil
}

// refusalError turns a refusal of the media plane into a domain error.
func refusalError(ref *refusal) error {
	switch ref.status {
	case http.StatusNotFound:
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "%s", ref.message)
	case http.StatusServiceUnavailable:
		return ivsrt.Errorf(ivsrt.EINTERNAL, "%s", ref.message)
	}
	return ref
}

// join puts the replica in its stage, fed by link: JOINED, and
// PUBLISH_STARTED when the source publishes. The stage is locked.
func (r *replica) join(ctx context.Context, link feedLink) *refusal {
	st, info := r.st, link.info()
	err := st.recordJoin(ctx, &ivsrt.Event{
		Name:            ivsrt.EventJoined,
		ParticipantID:   r.id,
		UserID:          r.req.UserID,
		Attributes:      r.req.Attributes,
		Protocol:        protocolUnknown,
		Replica:         true,
		SourceStageARN:  r.req.SourceStageARN,
		SourceSessionID: info.SessionID,
	})
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return &refusal{http.StatusNotFound, codeStageNotFound, "stage " + string(st.arn) + " no longer exists"}
	} else if err != nil {
		return errInternal
	}
	r.source = info.SessionID
	p := &participant{
		id: r.id,
		tok: &ivsrt.ParticipantToken{ParticipantID: r.id, StageARN: st.arn, UserID: r.req.UserID, Attributes: r.req.Attributes,
			Capabilities: []ivsrt.Capability{ivsrt.CapabilityPublish}},
		protocol: protocolUnknown,
		joinedAt: st.s.now().UTC(),
		subs:     map[ivsrt.ParticipantID]*subscribeSession{},
		replica:  r,
	}
	st.parts[r.id] = p
	pub := st.publication(r.id)
	pub.replica = r
	r.pub = pub
	r.sink = &replicaSink{sources: map[webrtc.RTPCodecType]*forward.Source{}}
	for _, k := range info.Kinds {
		kind := webrtc.NewRTPCodecType(k)
		if kind == 0 {
			continue
		}
		r.sink.sources[kind] = st.source(pub, kind)
	}
	r.link = link
	st.changed = true
	if info.Live {
		r.setLive(ctx, true)
	}
	return nil
}

// setLive records the replica starting or stopping to publish. The stage
// is locked.
func (r *replica) setLive(ctx context.Context, live bool) {
	if r.live == live {
		return
	}
	r.live = live
	name := ivsrt.EventPublishStopped
	if live {
		name = ivsrt.EventPublishStarted
	}
	r.st.record(ctx, &ivsrt.Event{Name: name, ParticipantID: r.id, Replica: true})
	r.st.changed = true
	// The replica is recorded as a publisher of its stage is: while the
	// source is away, its recording waits for the stage's recording
	// reconnect window.
	switch {
	case !live:
		r.st.parkRecording(r.pub)
	case r.pub.recording != nil:
		r.st.resumeRecording(r.pub)
	default:
		s := r.st.s
		s.goClose(func() { s.startReplicaRecording(r) })
	}
}

// onFeed handles what a feed tells the replica.
func (r *replica) onFeed(link feedLink, ev ivsrt.FeedEvent) {
	st := r.st
	ctx := context.Background()
	st.lock()
	defer st.unlock()
	if r.ended || r.link != link {
		return // a feed the replica is done with
	}
	switch ev {
	case ivsrt.FeedResumed:
		r.back(ctx)
	case ivsrt.FeedPaused:
		r.gone(ctx)
	case ivsrt.FeedEndedFinal:
		r.link = nil
		st.endReplica(ctx, r)
	case ivsrt.FeedEnded:
		r.link = nil
		r.gone(ctx)
		if !r.ended {
			r.lookForSource()
		}
	}
}

// back is the source publishing again. The stage is locked.
func (r *replica) back(ctx context.Context) {
	if r.away != nil {
		r.away.Stop()
		r.away = nil
	}
	r.setLive(ctx, true)
}

// gone is the source not publishing: the replica waits for it through
// the reconnect window, or ends. The stage is locked.
func (r *replica) gone(ctx context.Context) {
	r.setLive(ctx, false)
	window := time.Duration(r.req.ReconnectWindowSeconds) * time.Second
	if window <= 0 {
		r.st.endReplica(ctx, r)
		return
	}
	if r.away != nil {
		return // the window runs from when the source first went away
	}
	r.away = time.AfterFunc(window, func() {
		st := r.st
		st.lock()
		defer st.unlock()
		if !r.ended && !r.live {
			st.endReplica(context.Background(), r)
		}
	})
}

// lookForSource opens a new feed, again and again, until the source
// publishes again or the replica ends (its window runs out). The stage is
// locked.
func (r *replica) lookForSource() {
	if r.refeed != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.refeed = cancel
	s := r.st.s
	if !s.track() {
		cancel()
		return
	}
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(refeedInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			link, err := s.openFeed(ctx, r.req.SourceStageARN, r.id, false, r.onFeed)
			if err != nil {
				continue // not publishing again yet
			}
			st := r.st
			st.lock()
			if r.ended || ctx.Err() != nil {
				st.unlock()
				link.close()
				return
			}
			r.refeed = nil
			r.link = link
			sink := r.sink
			if link.info().Live {
				r.back(context.Background())
			}
			st.unlock()
			link.attach(sink)
			link.release()
			cancel()
			return
		}
	}()
}

// endReplica ends the replica: its feed closes, its publication ends
// (and the subscriptions to it), it leaves the stage, and the stop of its
// replication is recorded once the stage is unlocked. The stage is
// locked.
func (st *stage) endReplica(ctx context.Context, r *replica) {
	if r.ended {
		return
	}
	r.ended = true
	if r.away != nil {
		r.away.Stop()
		r.away = nil
	}
	if r.refeed != nil {
		r.refeed()
		r.refeed = nil
	}
	if link := r.link; link != nil {
		r.link = nil
		st.later(link.close)
	}
	r.setLive(ctx, false)
	if pub := r.pub; pub != nil && st.pubs[r.id] == pub {
		st.endPublication(ctx, pub)
	}
	if p := st.parts[r.id]; p != nil && p.replica == r {
		p.replica = nil
		st.leaveIfGone(ctx, p)
	}
	if r.recorded {
		st.later(st.s.stopRecorder(r))
	}
}

// stopRecorder returns what records the stop of r's replication: the
// store is asked until it takes the stop, or says there is nothing to
// stop.
func (s *Server) stopRecorder(r *replica) func() {
	return func() {
		backoff := minBackoff
		for {
			ctx, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
			_, err := s.store.StopParticipantReplication(ctx, r.req.SourceStageARN, r.id, r.req.DestinationStageARN)
			cancel()
			if err == nil || !retryable(err) {
				if err != nil && ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
					s.logger.Warn("replication stop refused by the store", "participant", r.id, "error", err)
				}
				return
			}
			s.logger.Warn("record replication stop failed, will retry", "participant", r.id, "error", err)
			select {
			case <-s.backlog.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// StopReplication implements ivsrt.ReplicationPlane.
func (s *Server) StopReplication(ctx context.Context, source ivsrt.StageARN, id ivsrt.ParticipantID, dest ivsrt.StageARN) error {
	st := s.existingStage(dest)
	if st == nil {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "No replica of participant %s is live in stage %s.", id, dest)
	}
	p := st.parts[id]
	if p == nil || p.replica == nil || p.replica.req.SourceStageARN != source || !p.replica.recorded {
		st.unlock()
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "No replica of participant %s is live in stage %s.", id, dest)
	}
	r := p.replica
	r.recorded = false // recorded here, not later
	st.endReplica(ctx, r)
	st.unlock()
	_, err := s.store.StopParticipantReplication(ctx, source, id, dest)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil // stopped meanwhile
	}
	return err
}
