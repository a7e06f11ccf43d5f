package sfu

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// Protocols recorded on JOINED: a participant whose first connection is a
// WHIP session joined over WHIP; the events WebSocket and WHEP are this
// server's own client protocol, which the API's enum knows as UNKNOWN.
const (
	protocolWHIP    = "WHIP"
	protocolUnknown = "UNKNOWN"
)

// stage is the live state of one stage: who is in it, who publishes, who
// subscribes to whom. Everything that changes it, and the events that
// record the change, happen with mu held, so that the store sees events in
// the order they happened. Closing connections, which may take time, is
// queued with later and done after mu is released.
type stage struct {
	s   *Server
	arn ivsrt.StageARN

	mu      sync.Mutex
	dead    bool // forgotten by the server; lock a fresh stage instead
	session ivsrt.SessionID
	version uint64
	changed bool
	after   []func()
	parts   map[ivsrt.ParticipantID]*participant
	pubs    map[ivsrt.ParticipantID]*publication

	// starting holds the participants whose replica is joining (see
	// StartReplication).
	starting map[ivsrt.ParticipantID]bool

	speakers speakers // who speaks (speakers.go); locked on its own
}

func newStage(s *Server, arn ivsrt.StageARN) *stage {
	return &stage{
		s:        s,
		arn:      arn,
		parts:    map[ivsrt.ParticipantID]*participant{},
		pubs:     map[ivsrt.ParticipantID]*publication{},
		starting: map[ivsrt.ParticipantID]bool{},
	}
}

// participant is someone in the stage: it has the events WebSocket open,
// or a WHIP session, or WHEP sessions, or several of these.
type participant struct {
	id       ivsrt.ParticipantID
	tok      *ivsrt.ParticipantToken // as stored
	protocol string
	joinedAt time.Time
	events   *eventsConn
	pub      *publishSession
	subs     map[ivsrt.ParticipantID]*subscribeSession // by publisher
	replica  *replica                                  // set while it is a replica (replica.go)
	ingest   *ingestStream                             // set while it is an RTMP(S) encoder (ingest.go)

	// videoSizes is the size it shows each publisher's video at, as its
	// client said (videoSize messages): it gets no larger a layer.
	videoSizes map[ivsrt.ParticipantID]videoSize
	// layersNeeded is what it was last told of the simulcast layers of
	// its video that are needed: told again on a new events WebSocket.
	layersNeeded []string
	// preferredLayers is the simulcast layer (rid) it asked for of each
	// publisher's video (preferLayer messages), whatever the size and
	// bandwidth.
	preferredLayers map[ivsrt.ParticipantID]string
	// muted holds the kinds of media ("audio", "video") its client says
	// it has muted (mute messages): subscribers see it in the state.
	muted map[string]bool
}

type videoSize struct{ width, height int }

// present reports whether the participant still has a connection, or is
// a replica.
func (p *participant) present() bool {
	return p.events != nil || p.pub != nil || len(p.subs) > 0 || p.replica != nil || p.ingest != nil
}

// publication is what a participant publishes, as subscribers see it. It
// outlives one WHIP session: when the publisher stops, subscribers wait
// for the republish grace period before their subscriptions end, so that
// a publisher that reconnects keeps its audience and their streams stay
// continuous.
type publication struct {
	owner   ivsrt.ParticipantID
	sources map[webrtc.RTPCodecType]*forward.Source
	session *publishSession // nil while waiting for the publisher to return
	subs    map[*subscribeSession]struct{}
	grace   *time.Timer

	recording *participantRecording // nil when not recorded

	// A replica's publication is fed by its source's (replica.go); a
	// publication feeds the replicas of its publisher (feed.go). final
	// is set when the publisher is disconnected for good or its stage
	// deleted: its replicas end at once.
	replica *replica
	feeds   map[*feed]struct{}
	final   bool

	// An RTMP(S) encoder's publication is fed by its stream (ingest.go).
	ingest *ingestStream
}

// live reports whether the publisher is publishing now.
func (pub *publication) live() bool {
	if pub.replica != nil {
		return pub.replica.live
	}
	if pub.ingest != nil {
		return pub.ingest.live
	}
	return pub.session != nil && pub.session.started
}

func (st *stage) lock() { st.mu.Lock() }

// unlock publishes the stage state if it changed, forgets the stage if
// nobody is left, releases the lock and starts the queued closings.
func (st *stage) unlock() {
	changed := st.changed
	if !st.dead && st.changed {
		st.changed = false
		st.broadcast()
	}
	if !st.dead && len(st.parts) == 0 && len(st.pubs) == 0 && len(st.starting) == 0 {
		st.dead = true
		st.s.forget(st)
		changed = true
	}
	if changed {
		st.s.stageChangedForCompositions(st.arn)
	}
	after := st.after
	st.after = nil
	st.mu.Unlock()
	for _, f := range after {
		st.s.goClose(f)
	}
}

// later queues f to run once the stage is unlocked.
func (st *stage) later(f func()) { st.after = append(st.after, f) }

// record writes ev through the store. If the store fails, ev joins the
// stage's backlog, written in order as soon as the store recovers (see
// backlog.go), and record returns nil: the fact will be recorded. It
// returns the store's refusal of ev (a deleted stage, a participant not
// in it), which no retry would change.
func (st *stage) record(ctx context.Context, ev *ivsrt.Event) error {
	ev.StageARN = st.arn
	b := st.s.backlog
	if b.pending(st.arn) {
		b.add(ev)
		return nil
	}
	err := b.write(ctx, ev)
	switch {
	case err == nil:
		if ev.SessionID != "" {
			st.session = ev.SessionID
		}
		return nil
	case retryable(err):
		st.s.logger.Warn("record event failed, will retry", "stage", st.arn, "participant", ev.ParticipantID,
			"event", ev.Name, "error", err)
		b.add(ev)
		return nil
	default:
		st.s.logger.Warn("event refused by the store", "stage", st.arn, "participant", ev.ParticipantID,
			"event", ev.Name, "error", err)
		return err
	}
}

// recordJoin writes a JOINED event, which cannot wait: the join needs the
// session it starts. The stage's backlog is written first, so that order
// holds; if it cannot be, or the join cannot, the error is returned and
// the join refused. A join the store may have taken before failing to
// answer gets a departure in the backlog, so that it does not stay
// CONNECTED.
func (st *stage) recordJoin(ctx context.Context, ev *ivsrt.Event) error {
	ev.StageARN = st.arn
	b := st.s.backlog
	if err := b.flush(ctx, st.arn); err != nil {
		st.s.logger.Warn("join refused: earlier events still unwritten", "stage", st.arn,
			"participant", ev.ParticipantID, "error", err)
		return err
	}
	err := b.write(ctx, ev)
	if err == nil {
		st.session = ev.SessionID
		return nil
	}
	if retryable(err) {
		st.s.logger.Warn("record join failed", "stage", st.arn, "participant", ev.ParticipantID, "error", err)
		b.add(&ivsrt.Event{StageARN: st.arn, Name: ivsrt.EventLeft, ParticipantID: ev.ParticipantID})
	}
	return err
}

// claims is what a presented token says: checked by the issuer, or known
// to be genuinely signed but expired.
type claims struct {
	tok     *ivsrt.ParticipantToken
	expired bool
	client  ivsrt.ClientDetails // what the presenting client says of itself
}

// admit checks the stored side of a token: that it is still known (its
// stage exists), matches, is not revoked, and is unexpired unless its
// participant is already in the stage (a joined participant may stay past
// its token's expiry, as in IVS). A self-signed token is stored the first
// time it is presented (see storeSelfSigned). Refusals of a known
// participant are recorded as JOIN_ERROR.
func (st *stage) admit(ctx context.Context, c claims) (*ivsrt.ParticipantToken, *refusal) {
	id := c.tok.ParticipantID
	readCtx, cancel := context.WithTimeout(ctx, st.s.storeTimeout)
	tok, err := st.s.store.GetParticipantToken(readCtx, id)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND && c.tok.PublicKeyARN != "" {
		if c.expired { // nobody to let stay: not worth storing
			cancel()
			return nil, &refusal{http.StatusUnauthorized, codeTokenExpired, "token expired"}
		}
		tok, err = st.storeSelfSigned(readCtx, c.tok)
	}
	cancel()
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil, &refusal{http.StatusNotFound, codeStageNotFound, "the stage of this participant token no longer exists"}
	} else if err != nil {
		if ctx.Err() == nil { // else the client gave up: nothing went wrong here
			st.s.logger.Error("read participant token failed", "participant", id, "error", err)
		}
		return nil, errInternal
	}
	switch {
	case tok.StageARN != c.tok.StageARN:
		return nil, &refusal{http.StatusUnauthorized, codeTokenInvalid, "invalid token"}
	case (tok.PublicKeyARN == "") != (c.tok.PublicKeyARN == ""):
		return nil, errParticipantIDTaken
	case tok.Revoked():
		msg := "the participant was disconnected"
		if tok.RevokeReason != "" {
			msg += ": " + tok.RevokeReason
		}
		if st.parts[id] != nil || st.pubs[id] != nil {
			// DisconnectParticipant revokes the token before it reaches the
			// media plane: a request of the participant in between finishes
			// the disconnection rather than being a failed join.
			st.disconnect(ctx, id, closeDisconnected, tok.RevokeReason)
		} else {
			st.record(ctx, &ivsrt.Event{Name: ivsrt.EventJoinError, ParticipantID: id})
		}
		return nil, &refusal{http.StatusUnauthorized, codeTokenRevoked, msg}
	case c.expired && st.parts[id] == nil:
		st.record(ctx, &ivsrt.Event{Name: ivsrt.EventJoinError, ParticipantID: id})
		return nil, &refusal{http.StatusUnauthorized, codeTokenExpired, "token expired"}
	case c.tok.PublicKeyARN != "" && st.superseded(tok, c.tok):
		// A token exchange replaced it: a downgrade must not be undone by
		// presenting the token it replaced.
		if st.parts[id] == nil {
			st.record(ctx, &ivsrt.Event{Name: ivsrt.EventJoinError, ParticipantID: id})
		}
		return nil, errTokenSuperseded
	}
	if c.tok.PublicKeyARN != "" {
		return selfSignedAdmitted(tok, c.tok), nil
	}
	return tok, nil
}

// joinOption adds to a JOINED event what only some joins know.
type joinOption func(*ivsrt.Event)

// join puts tok's participant in the stage if it is not in it yet,
// recording JOINED, which starts a session if the stage was idle.
func (st *stage) join(ctx context.Context, tok *ivsrt.ParticipantToken, client ivsrt.ClientDetails, protocol string, opts ...joinOption) (*participant, *refusal) {
	if p := st.parts[tok.ParticipantID]; p != nil {
		return p, nil
	}
	if st.s.draining.Load() {
		return nil, errDraining
	}
	ev := &ivsrt.Event{
		Name:          ivsrt.EventJoined,
		ParticipantID: tok.ParticipantID,
		UserID:        tok.UserID,
		Attributes:    tok.Attributes,
		Protocol:      protocol,
		Client:        client,
	}
	for _, o := range opts {
		o(ev)
	}
	err := st.recordJoin(ctx, ev)
	if ivsrt.ErrorCode(err) == ivsrt.ENOTFOUND {
		return nil, &refusal{http.StatusNotFound, codeStageNotFound, "the stage no longer exists"}
	} else if err != nil {
		return nil, errInternal
	}
	p := &participant{
		id:       tok.ParticipantID,
		tok:      tok,
		protocol: protocol,
		joinedAt: st.s.now().UTC(),
		subs:     map[ivsrt.ParticipantID]*subscribeSession{},
	}
	st.parts[p.id] = p
	st.changed = true
	return p, nil
}

// leaveIfGone records the departure of a participant that has no
// connection left; the last one out ends the session.
func (st *stage) leaveIfGone(ctx context.Context, p *participant) {
	if p == nil || p.present() || st.parts[p.id] != p {
		return
	}
	delete(st.parts, p.id)
	st.changed = true
	st.record(ctx, &ivsrt.Event{Name: ivsrt.EventLeft, ParticipantID: p.id})
	if len(st.parts) == 0 {
		st.session = ""
	}
}

// refuseAction records a publish or subscribe that was refused: an error
// event if the participant is in the stage; otherwise the request was its
// join, so it joins, fails and leaves.
func (st *stage) refuseAction(ctx context.Context, tok *ivsrt.ParticipantToken, client ivsrt.ClientDetails, protocol string, name ivsrt.EventName, code string, remote ivsrt.ParticipantID) {
	ev := &ivsrt.Event{Name: name, ParticipantID: tok.ParticipantID, ErrorCode: code, RemoteParticipantID: remote}
	if p := st.parts[remote]; remote != "" && p != nil && p.replica != nil {
		ev.Replica = true
	}
	if st.parts[tok.ParticipantID] != nil {
		st.record(ctx, ev)
		return
	}
	p, ref := st.join(ctx, tok, client, protocol)
	if ref != nil {
		return
	}
	st.record(ctx, ev)
	st.leaveIfGone(ctx, p)
}

// publishers counts the participants other than except that publish or
// are setting up a publication.
func (st *stage) publishers(except ivsrt.ParticipantID) int {
	n := 0
	for id, pub := range st.pubs {
		if id != except && (pub.session != nil || pub.replica != nil || pub.ingest != nil) {
			n++
		}
	}
	return n
}

// subscriptions counts the subscriptions in the stage.
// subscribers counts the participants subscribing to anyone: the stage's
// subscribers, as IVS counts them against its quota.
func (st *stage) subscribers() int {
	n := 0
	for _, p := range st.parts {
		if len(p.subs) > 0 {
			n++
		}
	}
	return n
}

// publication returns the participant's publication, created if needed.
func (st *stage) publication(id ivsrt.ParticipantID) *publication {
	pub := st.pubs[id]
	if pub == nil {
		pub = &publication{
			owner:   id,
			sources: map[webrtc.RTPCodecType]*forward.Source{},
			subs:    map[*subscribeSession]struct{}{},
		}
		st.pubs[id] = pub
	}
	if pub.grace != nil {
		pub.grace.Stop()
		pub.grace = nil
	}
	return pub
}

// source returns the publication's track of kind, created if needed.
func (st *stage) source(pub *publication, kind webrtc.RTPCodecType) *forward.Source {
	src := pub.sources[kind]
	if src == nil {
		opts := st.s.sourceOptions()
		if kind == webrtc.RTPCodecTypeVideo && pub.replica == nil {
			owner := pub.owner
			opts = append(opts, forward.WithLayersNeeded(func(rids []string) { st.tellLayersNeeded(owner, rids) }))
		}
		src = forward.NewSource(kind, kind.String(), string(pub.owner), opts...)
		pub.sources[kind] = src
	}
	return src
}

// sourceOptions are the options of every source of this server: its
// keyframe interval, its socket's batching, its counters.
func (s *Server) sourceOptions() []forward.Option {
	var opts []forward.Option
	if s.keyframeInterval > 0 {
		opts = append(opts, forward.WithKeyframeInterval(s.keyframeInterval))
	}
	if g, ok := s.udpConn.(*udpGroup); ok {
		opts = append(opts, forward.WithBatcher(g))
	}
	return append(opts, forward.WithCounters(s.counters))
}

// endPublish ends a WHIP session: PUBLISH_STOPPED if it had started, and
// its connection closed. Unless another session of the same participant
// took over, its subscribers wait for the republish grace period.
func (st *stage) endPublish(ctx context.Context, ps *publishSession) {
	if ps.ended {
		return
	}
	ps.ended = true
	st.s.removeResource(ps.id)
	for _, u := range ps.ups {
		u.Detach()
	}
	p := st.parts[ps.pid]
	if p != nil && p.pub == ps {
		p.pub = nil
	}
	if pub := st.pubs[ps.pid]; pub != nil && pub.session == ps {
		// A recording waits for the publisher through the stage's
		// reconnect window, keeping the publication's tracks; without
		// one it ends, and one that comes back starts another.
		st.parkRecording(pub)
		pub.session = nil
		pub.notifyFeeds(ivsrt.FeedPaused)
		switch {
		case len(pub.subs) > 0 || len(pub.feeds) > 0:
			pub.grace = time.AfterFunc(st.s.grace, func() {
				st.lock()
				defer st.unlock()
				if st.pubs[pub.owner] == pub && pub.session == nil {
					st.retirePublication(context.Background(), pub)
				}
			})
		case pub.recording == nil:
			st.endPublication(ctx, pub)
		}
	}
	if ps.started {
		st.record(ctx, &ivsrt.Event{Name: ivsrt.EventPublishStopped, ParticipantID: ps.pid})
	}
	st.changed = true
	if pc := ps.pc; pc != nil {
		st.later(func() { pc.Close() })
	}
	st.leaveIfGone(ctx, p)
}

// retirePublication ends a publication whose publisher did not come back
// within the republish grace period: its subscriptions end; the
// publication itself, unless its recording still waits for the
// publisher (a longer reconnect window).
func (st *stage) retirePublication(ctx context.Context, pub *publication) {
	pub.grace = nil
	if pub.recording == nil {
		st.endPublication(ctx, pub)
		return
	}
	for ss := range pub.subs {
		st.endSubscribe(ctx, ss)
	}
	st.endFeeds(pub, false)
}

// endPublication ends a publication for good: its session, its
// subscriptions, its recording and its tracks.
func (st *stage) endPublication(ctx context.Context, pub *publication) {
	if st.pubs[pub.owner] != pub {
		return
	}
	if r := pub.replica; r != nil && !r.ended {
		st.endReplica(ctx, r) // which ends the publication
		return
	}
	if pub.grace != nil {
		pub.grace.Stop()
		pub.grace = nil
	}
	if ps := pub.session; ps != nil {
		pub.session = nil
		st.endPublish(ctx, ps)
	}
	delete(st.pubs, pub.owner)
	st.speakers.drop(pub.owner)
	for ss := range pub.subs {
		st.endSubscribe(ctx, ss)
	}
	st.endFeeds(pub, pub.final)
	st.stopRecording(pub)
	for _, src := range pub.sources {
		src.Close()
	}
	st.changed = true
}

// endSubscribe ends a WHEP session: SUBSCRIBE_STOPPED if it had started,
// and its connection closed.
func (st *stage) endSubscribe(ctx context.Context, ss *subscribeSession) {
	if ss.ended {
		return
	}
	ss.ended = true
	close(ss.done)
	if ss.edge != nil {
		st.s.removeEdgeSubscription(ss)
		if out := ss.edge.out; out != nil {
			out.post(ivsrt.EdgeNotice{Ended: true})
		}
	} else {
		st.s.removeResource(ss.id)
	}
	for _, d := range ss.downs {
		d.Close()
	}
	p := st.parts[ss.pid]
	if p != nil && p.subs[ss.remote] == ss {
		delete(p.subs, ss.remote)
	}
	if pub := st.pubs[ss.remote]; pub != nil {
		delete(pub.subs, ss)
	}
	if ss.started {
		st.record(ctx, &ivsrt.Event{Name: ivsrt.EventSubscribeStopped, ParticipantID: ss.pid, RemoteParticipantID: ss.remote,
			Replica: ss.replica})
	}
	st.changed = true
	if pc := ss.pc; pc != nil {
		st.later(func() { pc.Close() })
	}
	st.leaveIfGone(ctx, p)
}

// disconnect ends everything of one participant, telling its WebSocket
// why, and records its departure.
func (st *stage) disconnect(ctx context.Context, id ivsrt.ParticipantID, code int, reason string) {
	if p := st.parts[id]; p != nil && p.replica != nil {
		st.endReplica(ctx, p.replica)
	}
	if pub := st.pubs[id]; pub != nil && pub.ingest != nil {
		pub.final = code == closeDisconnected || code == closeStageDeleted
	}
	if p := st.parts[id]; p != nil && p.ingest != nil {
		st.endIngest(ctx, p.ingest)
	}
	if pub := st.pubs[id]; pub != nil {
		// Disconnected for good, or its stage deleted: its replicas end
		// now, whatever their reconnect window.
		pub.final = code == closeDisconnected || code == closeStageDeleted
		st.endPublication(ctx, pub)
	}
	p := st.parts[id]
	if p == nil {
		return
	}
	if ec := p.events; ec != nil {
		p.events = nil
		ec.kick(code, reason)
	}
	if p.pub != nil {
		st.endPublish(ctx, p.pub)
	}
	for _, ss := range p.subs {
		st.endSubscribe(ctx, ss)
	}
	st.leaveIfGone(ctx, p)
}

// closeAll disconnects everyone.
func (st *stage) closeAll(ctx context.Context, code int, reason string) {
	ids := make([]ivsrt.ParticipantID, 0, len(st.parts)+len(st.pubs))
	for id := range st.pubs {
		ids = append(ids, id)
	}
	for id := range st.parts {
		ids = append(ids, id)
	}
	for _, id := range ids {
		st.disconnect(ctx, id, code, reason)
	}
}

// stateMessage is the stage state pushed on the events WebSocket.
type stateMessage struct {
	Type         string             `json:"type"`
	Version      uint64             `json:"version"`
	StageARN     ivsrt.StageARN     `json:"stageArn"`
	SessionID    ivsrt.SessionID    `json:"sessionId,omitempty"`
	Participants []participantState `json:"participants"`
}

type participantState struct {
	ParticipantID ivsrt.ParticipantID `json:"participantId"`
	UserID        string              `json:"userId,omitempty"`
	Attributes    map[string]string   `json:"attributes"`
	Protocol      string              `json:"protocol"`
	JoinedAt      time.Time           `json:"joinedAt"`
	Capabilities  []ivsrt.Capability  `json:"capabilities"`
	Publishing    bool                `json:"publishing"`
	Tracks        []trackState        `json:"tracks,omitempty"`
	Replica       bool                `json:"replica,omitempty"` // a replica from another stage
}

type trackState struct {
	Kind  string `json:"kind"`
	Codec string `json:"codec,omitempty"`
	Muted bool   `json:"muted,omitempty"`
}

// broadcast pushes the stage state to every events WebSocket.
func (st *stage) broadcast() {
	st.version++
	msg := stateMessage{Type: "state", Version: st.version, StageARN: st.arn, SessionID: st.session,
		Participants: make([]participantState, 0, len(st.parts))}
	for _, p := range st.parts {
		ps := participantState{
			ParticipantID: p.id,
			UserID:        p.tok.UserID,
			Attributes:    p.tok.Attributes,
			Protocol:      p.protocol,
			JoinedAt:      p.joinedAt.Truncate(time.Millisecond),
			Capabilities:  p.tok.Capabilities,
			Replica:       p.replica != nil,
		}
		if ps.Attributes == nil {
			ps.Attributes = map[string]string{}
		}
		if ps.Capabilities == nil {
			ps.Capabilities = []ivsrt.Capability{}
		}
		if pub := st.pubs[p.id]; pub != nil && pub.live() {
			ps.Publishing = true
			for kind, src := range pub.sources {
				t := trackState{Kind: kind.String(), Muted: p.muted[kind.String()]}
				if c, ok := src.Codec(); ok {
					t.Codec = c.MimeType
				}
				ps.Tracks = append(ps.Tracks, t)
			}
			slices.SortFunc(ps.Tracks, func(a, b trackState) int { return cmp.Compare(a.Kind, b.Kind) })
		}
		msg.Participants = append(msg.Participants, ps)
	}
	slices.SortFunc(msg.Participants, func(a, b participantState) int {
		if c := a.JoinedAt.Compare(b.JoinedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ParticipantID, b.ParticipantID)
	})
	buf, err := json.Marshal(msg)
	if err != nil {
		st.s.logger.Error("encode stage state failed", "error", err)
		return
	}
	for _, p := range st.parts {
		if p.events != nil {
			p.events.setState(buf)
		}
	}
}

// setMuted records that participant id's client muted or unmuted its
// audio or video, which the stage state tells everyone.
func (st *stage) setMuted(id ivsrt.ParticipantID, kind string, muted bool) {
	st.lock()
	defer st.unlock()
	p := st.parts[id]
	if p == nil || p.muted[kind] == muted {
		return
	}
	if p.muted == nil {
		p.muted = map[string]bool{}
	}
	p.muted[kind] = muted
	st.changed = true
}
