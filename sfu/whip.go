package sfu

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// gatherTimeout bounds ICE candidate gathering for an answer. Candidates
// come from the mux sockets, so gathering is immediate in practice.
const gatherTimeout = 5 * time.Second

// publishSession is one WHIP session: one peer connection receiving a
// participant's audio and video.
type publishSession struct {
	id  string
	st  *stage
	pid ivsrt.ParticipantID

	// Guarded by st.mu.
	pc         *webrtc.PeerConnection
	ups        []*forward.Upstream
	simulcast  *forward.Upstream // the video's, when it comes in layers
	rids       []string          // the simulcast layers the offer declares
	videoCodec string            // the answer's first video codec: what the publisher sends
	recPlan    *recordingPlan    // nil: not recorded
	recPlanErr error             // why the stage's recording plan could not be read
	started    bool              // connected: PUBLISH_STARTED recorded
	ended      bool
	lost       lostPath // while the connection has failed
}

// postWHIP creates a WHIP session (RFC 9725, section 4.2): the participant
// and stage come from the bearer token, the body is the SDP offer, and the
// answer comes back with 201 Created and the session's URL in Location.
func (s *Server) postWHIP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	offer, c, st, ok := s.admitOffer(w, r)
	if !ok {
		return
	}
	ps, ref := st.startPublish(ctx, c)
	st.unlock()
	if ref != nil {
		writeRefusal(w, ref)
		return
	}

	answer, ref := s.negotiatePublish(ctx, ps, offer)
	if ref != nil {
		st.lock()
		if !ps.ended {
			// A client that gave up on its request made no error of ours.
			if ctx.Err() == nil {
				st.record(ctx, &ivsrt.Event{Name: ivsrt.EventPublishError, ParticipantID: ps.pid, ErrorCode: eventCode(ref)})
			}
			st.endPublish(ctx, ps)
		}
		st.unlock()
		writeRefusal(w, ref)
		return
	}
	s.writeAnswer(w, r, "/whip/"+ps.id, c.tok, answer)
}

// startPublish checks that the participant may publish and registers its
// new WHIP session, which replaces any previous one. The stage is locked.
func (st *stage) startPublish(ctx context.Context, c claims) (*publishSession, *refusal) {
	tok, ref := st.admit(ctx, c)
	if ref != nil {
		return nil, ref
	}
	id := tok.ParticipantID
	if !tok.Can(ivsrt.CapabilityPublish) {
		st.refuseAction(ctx, tok, c.client, protocolWHIP, ivsrt.EventPublishError, ivsrt.ErrInsufficientCapabilities, "")
		return nil, &refusal{http.StatusForbidden, ivsrt.ErrInsufficientCapabilities, "the participant token does not allow publishing"}
	}
	if st.publishers(id) >= st.s.cfg.MaxPublishers {
		st.refuseAction(ctx, tok, c.client, protocolWHIP, ivsrt.EventPublishError, ivsrt.ErrQuotaExceeded, "")
		return nil, &refusal{http.StatusForbidden, ivsrt.ErrQuotaExceeded,
			"the stage already has the most publishers it may have"}
	}
	p, ref := st.join(ctx, tok, c.client, protocolWHIP)
	if ref != nil {
		return nil, ref
	}
	ps := &publishSession{id: st.s.newResourceID(), st: st, pid: id}
	old := p.pub
	p.pub = ps
	pub := st.publication(id)
	st.resumeRecording(pub)
	pub.session = ps
	if old != nil {
		st.endPublish(ctx, old)
	}
	st.s.addResource(ps.id, ps)
	return ps, nil
}

// negotiatePublish answers a WHIP offer: at most one audio track (Opus)
// and one video track (H.264 or VP8), which may come in up to
// forward.MaxLayers simulcast layers (RFC 8853).
func (s *Server) negotiatePublish(ctx context.Context, ps *publishSession, offer string) (string, *refusal) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer is not valid SDP"}
	}
	audio, video := 0, 0
	for _, m := range parsed.MediaDescriptions {
		switch m.MediaName.Media {
		case "audio":
			audio++
		case "video":
			video++
		}
		if sim, ok := m.Attribute("simulcast"); ok {
			if m.MediaName.Media != "video" {
				return "", &refusal{http.StatusBadRequest, codeInvalidInput, "only video may be sent in simulcast"}
			}
			rids := simulcastRIDs(sim)
			if len(rids) > forward.MaxLayers {
				return "", &refusal{http.StatusBadRequest, codeInvalidInput,
					fmt.Sprintf("simulcast of %d layers: at most %d are accepted", len(rids), forward.MaxLayers)}
			}
			ps.rids = rids
		}
	}
	if audio > 1 || video > 1 || audio+video == 0 {
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer must have one audio track, one video track, or both"}
	}

	st := ps.st
	pc, ref := s.newPeer(s.api, st, func(pc *webrtc.PeerConnection) bool {
		if ps.ended {
			return true
		}
		ps.pc = pc
		return false
	})
	if ref != nil {
		return "", ref
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { s.publishTrack(ps, t, r) })
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) { s.publishState(ps, state) })

	plan, planErr := s.readRecordingPlan(ctx, st.arn)
	answer, ref := s.answer(ctx, pc, offer, planErr == nil && plan != nil && plan.video)
	if ref != nil {
		return "", ref
	}
	kinds, ref := acceptedKinds(answer)
	if ref != nil {
		return "", ref
	}
	st.lock()
	defer st.unlock()
	if ps.ended {
		return "", errSessionEnded
	}
	if pub := st.pubs[ps.pid]; pub != nil && pub.session == ps {
		for _, k := range kinds {
			st.source(pub, k)
		}
	}
	ps.videoCodec = answerVideoCodec(answer)
	ps.recPlan, ps.recPlanErr = plan, planErr
	return answer, nil
}

var errSessionEnded = &refusal{http.StatusConflict, codeSessionEnded, "the session ended while it was being set up"}

// answer applies offer to pc and returns the answer with every candidate.
// With preferH264, the answer lists H.264 first for video, so that a
// client offering both sends H.264: what recordings hold.
func (s *Server) answer(ctx context.Context, pc *webrtc.PeerConnection, offer string, preferH264 bool) (string, *refusal) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		if errors.Is(err, webrtc.ErrConnectionClosed) {
			return "", errSessionEnded
		}
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "the offer was not accepted: " + err.Error()}
	}
	if preferH264 {
		for _, tr := range pc.GetTransceivers() {
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				// Codecs the offer lacks are left out of the answer by pion.
				_ = tr.SetCodecPreferences([]webrtc.RTPCodecParameters{codecH264ConstrainedBaseline, codecH264Baseline, codecVP8})
			}
		}
	}
	return s.completeAnswer(ctx, pc)
}

// completeAnswer creates and applies the answer and waits for candidates.
func (s *Server) completeAnswer(ctx context.Context, pc *webrtc.PeerConnection) (string, *refusal) {
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		if errors.Is(err, webrtc.ErrConnectionClosed) {
			return "", errSessionEnded
		}
		return "", &refusal{http.StatusBadRequest, codeInvalidInput, "no answer to this offer: " + err.Error()}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		if errors.Is(err, webrtc.ErrConnectionClosed) {
			return "", errSessionEnded
		}
		s.logger.Error("set local description failed", "error", err)
		return "", errInternal
	}
	timer := time.NewTimer(gatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		s.logger.Warn("ICE gathering timed out")
	case <-ctx.Done():
		return "", errSessionEnded
	}
	local := pc.LocalDescription()
	if local == nil {
		return "", errSessionEnded
	}
	return local.SDP, nil
}

// acceptedKinds returns the kinds of the media sections an answer
// accepted, refusing an answer that rejected one: the offer had no codec
// in common with this server for it.
func acceptedKinds(answer string) ([]webrtc.RTPCodecType, *refusal) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answer); err != nil {
		return nil, errInternal
	}
	var kinds []webrtc.RTPCodecType
	for _, m := range parsed.MediaDescriptions {
		kind := webrtc.NewRTPCodecType(m.MediaName.Media)
		if kind == 0 {
			continue
		}
		if m.MediaName.Port.Value == 0 {
			if kind == webrtc.RTPCodecTypeAudio {
				return nil, &refusal{http.StatusBadRequest, codeInvalidAudioCodec, "audio must be Opus"}
			}
			return nil, &refusal{http.StatusBadRequest, codeInvalidVideoCodec,
				"video must be H.264 (constrained baseline, packetization mode 1) or VP8"}
		}
		kinds = append(kinds, kind)
	}
	return kinds, nil
}

// answerVideoCodec returns the MIME subtype of the first codec of the
// answer's video (what a browser then sends, "H264" or "VP8"), "" without
// video.
func answerVideoCodec(answer string) string {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answer); err != nil {
		return ""
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "video" || m.MediaName.Port.Value == 0 || len(m.MediaName.Formats) == 0 {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			pt, rest, ok := strings.Cut(a.Value, " ")
			if ok && pt == m.MediaName.Formats[0] {
				name, _, _ := strings.Cut(rest, "/")
				return name
			}
		}
	}
	return ""
}

// eventCode is the error code an event records for a refusal.
func eventCode(ref *refusal) string {
	switch ref.code {
	case codeInvalidInput, codeInvalidAudioCodec, codeInvalidVideoCodec:
		return ref.code
	}
	return ivsrt.ErrInternalServer
}

// publishTrack forwards one of the publisher's tracks until it ends.
func (s *Server) publishTrack(ps *publishSession, t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	st := ps.st
	st.lock()
	pub := st.pubs[ps.pid]
	if ps.ended || pub == nil || pub.session != ps {
		st.unlock()
		return
	}
	pc := ps.pc
	ssrc := uint32(t.SSRC())
	askKeyframe := func() {
		pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
	var (
		up  *forward.Upstream
		out interface{ WriteRTP(*rtp.Packet) error }
	)
	if rid := t.RID(); rid != "" && t.Kind() == webrtc.RTPCodecTypeVideo {
		// One layer of a simulcast video: the layers share an upstream.
		if ps.simulcast == nil {
			ps.simulcast = st.source(pub, t.Kind()).AttachSimulcast(t.Codec(), ps.rids)
			ps.ups = append(ps.ups, ps.simulcast)
		}
		up = ps.simulcast
		layer, err := up.AddLayer(rid, askKeyframe)
		if err != nil {
			st.unlock()
			s.logger.Warn("simulcast layer refused", "participant", ps.pid, "rid", rid, "error", err)
			return
		}
		out = layer
	} else {
		up = st.source(pub, t.Kind()).Attach(t.Codec(), askKeyframe)
		ps.ups = append(ps.ups, up)
		out = up
	}
	// The audio's levels, where the publisher sends them, tell who speaks.
	var meter *levelMeter
	levelID := audioLevelID(r.GetParameters().HeaderExtensions)
	if t.Kind() == webrtc.RTPCodecTypeAudio && levelID != 0 {
		meter = st.speakers.meter(ps.pid)
		up.SetAudioLevelID(levelID)
	}
	st.changed = true
	st.unlock()

	// Reading RTCP lets the interceptors see the sender reports.
	go func() {
		read := r.ReadRTCP
		if rid := t.RID(); rid != "" {
			read = func() ([]rtcp.Packet, interceptor.Attributes, error) { return r.ReadSimulcastRTCP(rid) }
		}
		for {
			if _, _, err := read(); err != nil {
				return
			}
		}
	}()
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			if up != ps.simulcast {
				up.Detach() // a simulcast upstream ends with its session
			}
			return
		}
		if meter != nil {
			if ext := pkt.GetExtension(levelID); len(ext) > 0 {
				meter.observe(ext[0] & 0x7f)
			}
		}
		if err := out.WriteRTP(pkt); errors.Is(err, forward.ErrDetached) {
			return
		}
	}
}

// publishState follows the publisher's connection: PUBLISH_STARTED once
// connected; the session ends when the connection fails (the network
// vanished: no ICE traffic for the failed timeout) or closes.
func (s *Server) publishState(ps *publishSession, state webrtc.PeerConnectionState) {
	st := ps.st
	ctx := context.Background()
	switch state {
	case webrtc.PeerConnectionStateConnected:
		st.lock()
		if !ps.ended && !ps.started {
			ps.started = true
			st.record(ctx, &ivsrt.Event{Name: ivsrt.EventPublishStarted, ParticipantID: ps.pid})
			if pub := st.pubs[ps.pid]; pub != nil && pub.session == ps {
				pub.notifyFeeds(ivsrt.FeedResumed)
			}
			st.changed = true
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.startRecording(ps)
			}()
		}
		st.unlock()
	case webrtc.PeerConnectionStateFailed:
		// The path is lost; the client may restart ICE (a PATCH) in the
		// same session within the grace period.
		st.lock()
		if !ps.ended {
			ps.lost.begin(s.restartGrace, func() {
				st.lock()
				if !ps.ended && ps.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
					st.endPublish(ctx, ps)
				}
				st.unlock()
			})
		}
		st.unlock()
	case webrtc.PeerConnectionStateClosed:
		st.lock()
		st.endPublish(ctx, ps)
		st.unlock()
	}
	if state == webrtc.PeerConnectionStateConnected {
		ps.lost.end()
	}
}

// deleteWHIP ends a WHIP session (RFC 9725, section 4.2): its URL is the
// capability to end it.
func (s *Server) deleteWHIP(w http.ResponseWriter, r *http.Request) {
	ps, ok := s.resource(r.PathValue("id")).(*publishSession)
	if !ok {
		writeRefusal(w, &refusal{http.StatusNotFound, codeNotFound, "no such WHIP session"})
		return
	}
	st := ps.st
	st.lock()
	st.endPublish(r.Context(), ps)
	st.unlock()
	w.WriteHeader(http.StatusOK)
}

// audioLevelID returns the id the ssrc-audio-level extension (RFC 6464)
// was negotiated with, 0 if it was not.
func audioLevelID(exts []webrtc.RTPHeaderExtensionParameter) uint8 {
	for _, e := range exts {
		if e.URI == sdp.AudioLevelURI {
			return uint8(e.ID)
		}
	}
	return 0
}

// simulcastRIDs returns the layers an a=simulcast attribute sends (RFC
// 8853, section 5.1): after "send", rids separated by ";", each a list of
// alternatives separated by "," of which the first is kept, "~" marking
// one paused from the start.
func simulcastRIDs(attr string) []string {
	fields := strings.Fields(attr)
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] != "send" {
			continue
		}
		var rids []string
		for _, layer := range strings.Split(fields[i+1], ";") {
			first, _, _ := strings.Cut(layer, ",")
			rids = append(rids, strings.TrimPrefix(first, "~"))
		}
		return rids
	}
	return nil
}
