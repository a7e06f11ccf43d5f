package sfu

import (
	"errors"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/forward"
	"github.com/pion/webrtc/v4"
)

// MediaStats returns what the server is doing and has done: the live
// stages, participants, publishers and subscriptions, and the totals of
// its forwarding.
func (s *Server) MediaStats() ivsrt.MediaStats {
	c := s.counters.Snapshot()
	out := ivsrt.MediaStats{
		PacketsIn:              c.PacketsIn,
		BytesIn:                c.BytesIn,
		PacketsOut:             c.PacketsOut,
		BytesOut:               c.BytesOut,
		Retransmitted:          c.Retransmitted,
		ResendRepeated:         c.ResendRepeated,
		ResendOverBudget:       c.ResendOverBudget,
		Padding:                c.Padding,
		LayerSwitches:          c.LayerSwitches,
		NACKs:                  c.NACKs,
		KeyframeRequestsIn:     c.KeyframeRequestsIn,
		KeyframeRequestsOut:    c.KeyframeRequestsOut,
		DroppedQueueFull:       c.DroppedQueueFull,
		DroppedWaitingKeyframe: c.DroppedWaitingKeyframe,
	}
	if g, ok := s.udpConn.(*udpGroup); ok {
		out.DroppedSocket = g.dropped()
	}
	// The stages are read one at a time, never under the server's lock.
	s.mu.Lock()
	stages := make([]*stage, 0, len(s.stages))
	for _, st := range s.stages {
		stages = append(stages, st)
	}
	s.mu.Unlock()
	for _, st := range stages {
		st.mu.Lock()
		present := 0
		for _, p := range st.parts {
			if !p.present() {
				continue
			}
			present++
			if p.pub != nil || p.replica != nil {
				out.Publishers++
			}
			for _, ss := range p.subs {
				if ss.edge == nil { // an edge node serves the others
					out.Subscriptions++
				}
			}
		}
		st.mu.Unlock()
		if present > 0 {
			out.Stages++
			out.Participants += present
		}
	}
	edge := s.edgeStats()
	out.EdgePulls, out.EdgeSubscriptions = edge.Pulls, edge.Subscriptions
	out.Subscriptions += edge.Subscriptions
	out.EdgePullsOpened = uint64(s.edgePullsOpened.Load())
	s.mu.Lock()
	out.FeedsOut = len(s.feeds)
	s.mu.Unlock()
	return out
}

// receptionAdapter passes the forward package's reports on in the
// domain's terms.
type receptionAdapter struct{ o ivsrt.ReceptionObserver }

func (a receptionAdapter) ObserveReception(kind webrtc.RTPCodecType, r forward.Reception) {
	a.o.ObserveReception(ivsrt.Reception{Kind: kind.String(), FractionLost: r.FractionLost, Jitter: r.Jitter, RTT: r.RTT})
}

// Healthy returns why the media plane cannot serve, or nil: its UDP
// socket must be open.
func (s *Server) Healthy() error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return errors.New("sfu: shutting down")
	}
	if s.udpConn == nil {
		return errors.New("sfu: no media socket")
	}
	return nil
}
