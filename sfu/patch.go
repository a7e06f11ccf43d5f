package sfu

import (
	"bufio"
	"context"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// PATCH of a WHIP or WHEP session (RFC 9725, section 4.3): a body of
// type application/trickle-ice-sdpfrag (RFC 8840) either trickles the
// client's candidates, or, with an ice-ufrag and ice-pwd other than its
// current ones, restarts ICE: a client whose network changed (Wi-Fi to
// cellular) carries on the same session, its publication or subscription
// going on, without a new offer. The answer to a restart is the server's
// new ufrag, pwd and candidates, as an sdpfrag; to a trickle, 204.

const (
	sdpfragType     = "application/trickle-ice-sdpfrag"
	maxSDPFragBytes = 16 << 10
	restartTimeout  = 5 * time.Second // to gather the server's new candidates
)

// sdpfrag is what a PATCH body says.
type sdpfrag struct {
	ufrag, pwd string
	mid        string // of the candidates: the first media section's
	candidates []string
}

// parseSDPFrag reads an sdpfrag body: the session's or a media section's
// ice-ufrag and ice-pwd, and candidates (with the mid of their section).
func parseSDPFrag(body string) sdpfrag {
	var f sdpfrag
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.pwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case strings.HasPrefix(line, "a=mid:") && f.mid == "":
			f.mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			f.candidates = append(f.candidates, strings.TrimPrefix(line, "a="))
		}
	}
	return f
}

// patch trickles candidates into a session, or restarts its ICE.
func (s *Server) patch(w http.ResponseWriter, r *http.Request) {
	pc, mid, ok := s.sessionPC(r.PathValue("id"))
	if !ok {
		writeRefusal(w, &refusal{http.StatusNotFound, codeNotFound, "no such session"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != sdpfragType {
		w.Header().Set("Accept-Patch", sdpfragType)
		writeRefusal(w, &refusal{http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "a PATCH body is " + sdpfragType})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSDPFragBytes+1))
	if err != nil || len(body) > maxSDPFragBytes {
		writeRefusal(w, &refusal{http.StatusBadRequest, codeInvalidInput, "the sdpfrag is too large or unreadable"})
		return
	}
	frag := parseSDPFrag(string(body))
	if frag.mid == "" {
		frag.mid = mid
	}
	remote := pc.RemoteDescription()
	if remote == nil {
		writeRefusal(w, &refusal{http.StatusConflict, codeSessionEnded, "the session is not negotiated"})
		return
	}
	curUfrag, curPwd := iceCredentials(remote.SDP)
	if frag.ufrag == "" || (frag.ufrag == curUfrag && frag.pwd == curPwd) {
		// Trickle: candidates of the current ICE session.
		for _, c := range frag.candidates {
			if err := pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c, SDPMid: &frag.mid}); err != nil {
				writeRefusal(w, &refusal{http.StatusBadRequest, codeInvalidInput, "a candidate the server cannot take: " + err.Error()})
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if frag.pwd == "" {
		writeRefusal(w, &refusal{http.StatusBadRequest, codeInvalidInput, "an ICE restart needs both a=ice-ufrag and a=ice-pwd"})
		return
	}
	answer, err := s.restartICE(r.Context(), pc, remote.SDP, frag)
	if err != nil {
		s.logger.Warn("ICE restart failed", "error", err)
		writeRefusal(w, &refusal{http.StatusBadRequest, codeInvalidInput, "ICE restart: " + err.Error()})
		return
	}
	ufrag, pwd := iceCredentials(answer)
	var out strings.Builder
	out.WriteString("a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n")
	out.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:" + frag.mid + "\r\n")
	for _, line := range strings.Split(answer, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "a=candidate:") {
			out.WriteString(line + "\r\n")
		}
	}
	out.WriteString("a=end-of-candidates\r\n")
	w.Header().Set("Content-Type", sdpfragType)
	w.Header().Set("ETag", `"`+ufrag+`"`)
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, out.String())
}

// restartICE applies the client's new credentials and candidates as a new
// offer, the old one's but for them, and returns the answer, once the
// server's new candidates are gathered.
func (s *Server) restartICE(ctx context.Context, pc *webrtc.PeerConnection, offer string, frag sdpfrag) (string, error) {
	var b strings.Builder
	inFirstMedia, added := false, false
	addCandidates := func() {
		for _, c := range frag.candidates {
			b.WriteString("a=" + c + "\r\n")
		}
		added = true
	}
	for _, line := range strings.Split(strings.ReplaceAll(offer, "\r\n", "\n"), "\n") {
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			line = "a=ice-ufrag:" + frag.ufrag
		case strings.HasPrefix(line, "a=ice-pwd:"):
			line = "a=ice-pwd:" + frag.pwd
		case strings.HasPrefix(line, "a=candidate:"), line == "a=end-of-candidates":
			continue
		case strings.HasPrefix(line, "m="):
			if inFirstMedia && !added {
				addCandidates()
			}
			inFirstMedia = !added
		}
		b.WriteString(line + "\r\n")
	}
	if !added {
		addCandidates()
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: b.String()}); err != nil {
		return "", err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-time.After(restartTimeout):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// iceCredentials returns the first ice-ufrag and ice-pwd of an SDP.
func iceCredentials(sdp string) (ufrag, pwd string) {
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = v
		} else if v, ok := strings.CutPrefix(line, "a=ice-pwd:"); ok && pwd == "" {
			pwd = v
		}
	}
	return ufrag, pwd
}

// sessionPC returns the peer connection of a live WHIP or WHEP session,
// and the mid of its first media section.
func (s *Server) sessionPC(id string) (*webrtc.PeerConnection, string, bool) {
	var (
		pc *webrtc.PeerConnection
		st *stage
	)
	switch r := s.resource(id).(type) {
	case *publishSession:
		st = r.st
		st.lock()
		if !r.ended {
			pc = r.pc
		}
		st.unlock()
	case *subscribeSession:
		st = r.st
		st.lock()
		if !r.ended {
			pc = r.pc
		}
		st.unlock()
	case *edgeSession:
		s.edgeMu.Lock()
		if !r.ended {
			pc = r.pc
		}
		s.edgeMu.Unlock()
	}
	if pc == nil {
		return nil, "", false
	}
	mid := "0"
	if ts := pc.GetTransceivers(); len(ts) > 0 && ts[0].Mid() != "" {
		mid = ts[0].Mid()
	}
	return pc, mid, true
}

// lostPath is a session's connection that failed (no ICE traffic for the
// failed timeout): the session ends when the grace period passes, unless
// an ICE restart connects it again first.
type lostPath struct {
	mu    sync.Mutex
	timer *time.Timer
}

// begin starts the grace period, if it is not running, calling end once
// it passes.
func (l *lostPath) begin(grace time.Duration, end func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer == nil {
		l.timer = time.AfterFunc(grace, end)
	}
}

// end stops the grace period: the connection is back.
func (l *lostPath) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}
