package sfu

import (
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/sfu/bwe"
	"github.com/ivsrt/ivsrt/sfu/forward"
)

// Adapting a subscription to its path. The bandwidth estimate of the
// subscriber's connection, less what its audio takes, is what its video
// may use: the forward package picks the simulcast layer within it, and
// the estimator probes for the next layer up when the subscriber could
// use it. A subscriber that sends no TWCC feedback has no estimate and is
// not limited.
const (
	adaptEvery   = 100 * time.Millisecond
	probeEvery   = 25 * time.Millisecond // while probing: padding in small bursts
	audioReserve = 64_000                // bits per second an Opus track may take
)

// adaptSubscription keeps video within the estimate until done is closed.
func adaptSubscription(est *bwe.Estimator, video *forward.DownTrack, audio bool, done <-chan struct{}) {
	reserve := int64(0)
	if audio {
		reserve = audioReserve
	}
	t := time.NewTimer(adaptEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			if !video.Simulcast() || !est.HasFeedback() {
				video.SetBitrateBudget(0)
				t.Reset(adaptEvery)
				continue
			}
			want := video.ProbeTarget()
			if want > 0 {
				want += reserve
			}
			estimate, pad := est.Update(now, want)
			video.SetBitrateBudget(max(estimate-reserve, 1))
			if pad > 0 {
				video.Pad(pad)
			}
			if est.Probing() {
				t.Reset(probeEvery)
			} else {
				t.Reset(adaptEvery)
			}
		}
	}
}

// maxVideoSide bounds the sizes a client may tell: more than any layer.
const maxVideoSide = 16384

// maxVideoSizes bounds how many publishers' sizes (or chosen layers) a
// participant keeps: those of publishers that left are dropped when it is
// reached.
const maxVideoSizes = 256

// roomFor reports whether m, kept per publisher, may take an entry for
// remote: it has one already, or fewer than maxVideoSizes once those of
// publishers that left the stage are dropped. The stage is locked.
func roomFor[T any](st *stage, m map[ivsrt.ParticipantID]T, remote ivsrt.ParticipantID) bool {
	if _, ok := m[remote]; ok || len(m) < maxVideoSizes {
		return true
	}
	for other := range m {
		if st.parts[other] == nil {
			delete(m, other)
		}
	}
	return len(m) < maxVideoSizes
}

// setVideoSize records the size participant id shows remote's video at
// and applies it to its subscription, if it has one.
func (st *stage) setVideoSize(id, remote ivsrt.ParticipantID, width, height int) {
	st.lock()
	defer st.unlock()
	p := st.parts[id]
	if p == nil {
		return
	}
	if p.videoSizes == nil {
		p.videoSizes = map[ivsrt.ParticipantID]videoSize{}
	}
	if !roomFor(st, p.videoSizes, remote) {
		return
	}
	if width == 0 && height == 0 {
		// Not shown: the smallest layer, rather than no limit.
		width, height = 1, 1
	}
	p.videoSizes[remote] = videoSize{width, height}
	if ss := p.subs[remote]; ss != nil {
		for _, d := range ss.downs {
			if d.Kind() == webrtc.RTPCodecTypeVideo {
				d.SetMaxSize(width, height)
			}
		}
		st.tellWish(ss)
	}
}

// publishLayersMessage tells a simulcast publisher which of its layers
// subscribers need: {"type":"publishLayers","rids":["q","h"]}. It may
// pause the others.
type publishLayersMessage struct {
	Type string   `json:"type"`
	RIDs []string `json:"rids"`
}

// tellLayersNeeded sends owner's events WebSocket the layers of its video
// that are needed.
func (st *stage) tellLayersNeeded(owner ivsrt.ParticipantID, rids []string) {
	st.lock()
	defer st.unlock()
	if p := st.parts[owner]; p != nil {
		p.layersNeeded = rids
		if p.events != nil {
			p.events.send(publishLayersMessage{Type: "publishLayers", RIDs: rids})
		}
	}
}

// validRID reports whether rid may name a simulcast layer (RFC 8851:
// letters, digits, '-' and '_'; at most 16 here), or is "" for none.
func validRID(rid string) bool {
	if len(rid) > 16 {
		return false
	}
	for _, c := range rid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// setPreferredLayer records the simulcast layer participant id asks for
// of remote's video ("" for none) and applies it to its subscription, if
// it has one.
func (st *stage) setPreferredLayer(id, remote ivsrt.ParticipantID, rid string) {
	st.lock()
	defer st.unlock()
	p := st.parts[id]
	if p == nil {
		return
	}
	if rid == "" {
		delete(p.preferredLayers, remote)
	} else {
		if p.preferredLayers == nil {
			p.preferredLayers = map[ivsrt.ParticipantID]string{}
		}
		if !roomFor(st, p.preferredLayers, remote) {
			return
		}
		p.preferredLayers[remote] = rid
	}
	if ss := p.subs[remote]; ss != nil {
		for _, d := range ss.downs {
			if d.Kind() == webrtc.RTPCodecTypeVideo {
				d.SetPreferredLayer(rid)
			}
		}
		st.tellWish(ss)
	}
}

// layersMessage tells a subscriber the simulcast layers of a publisher's
// video it receives, which one it gets and which it asked for.
type layersMessage struct {
	Type          string              `json:"type"`
	ParticipantID ivsrt.ParticipantID `json:"participantId"`
	Layers        []layerState        `json:"layers"`
	Selected      string              `json:"selected,omitempty"`
	Preferred     string              `json:"preferred,omitempty"`
}

type layerState struct {
	RID             string `json:"rid"`
	Width           int    `json:"width,omitempty"`
	Height          int    `json:"height,omitempty"`
	BitrateBps      int64  `json:"bitrateBps"`
	FramesPerSecond int    `json:"framesPerSecond"`
	Active          bool   `json:"active"`
}

const (
	// layersEvery is how often a subscription's layers are looked at.
	layersEvery = 500 * time.Millisecond
	// layersQuiet is how long a change of bitrates or frame rates alone
	// waits before it is told: they move all the time.
	layersQuiet = 3 * time.Second
)

// roughly rounds a bitrate to two significant digits: enough to compare
// layers, and it does not change with every measurement.
func roughly(bps int64) int64 {
	step := int64(1)
	for bps/step >= 100 {
		step *= 10
	}
	return (bps + step/2) / step * step
}

// reportLayers tells the subscriber of ss the layers of the publisher's
// video, as they change, until the session ends: what changes the
// choice (the layers, their sizes, the one it gets, the one it asked
// for) at once, bitrates and frame rates at most every layersQuiet. A
// publisher of one layer has none to tell.
func (st *stage) reportLayers(ss *subscribeSession, src *forward.Source, selection func() (selected string, ok bool, preferred string)) {
	t := time.NewTicker(layersEvery)
	defer t.Stop()
	var (
		toldTo    *eventsConn
		toldShape string
		toldRates string
		toldAt    time.Time
	)
	for {
		select {
		case <-ss.done:
			return
		case now := <-t.C:
			infos := src.Layers()
			if len(infos) == 0 && toldShape == "" {
				continue
			}
			selected, ok, preferred := selection()
			msg := layersMessage{Type: "layers", ParticipantID: ss.remote, Layers: make([]layerState, 0, len(infos)),
				Preferred: preferred}
			if ok {
				msg.Selected = selected
			}
			shape := msg.Selected + "/" + msg.Preferred
			rates := ""
			for _, l := range infos {
				ls := layerState{RID: l.RID, Width: l.Width, Height: l.Height, Active: l.Active,
					BitrateBps: roughly(l.Bitrate), FramesPerSecond: int(l.FPS + 0.5)}
				msg.Layers = append(msg.Layers, ls)
				shape += fmt.Sprintf("/%s %dx%d %v", ls.RID, ls.Width, ls.Height, ls.Active)
				rates += fmt.Sprintf("/%d %d", ls.BitrateBps, ls.FramesPerSecond)
			}
			st.lock()
			p := st.parts[ss.pid]
			var ec *eventsConn
			if p != nil {
				ec = p.events
			}
			tell := ec != nil && (ec != toldTo || shape != toldShape || rates != toldRates && now.Sub(toldAt) >= layersQuiet)
			if tell {
				ec.send(msg)
				toldTo, toldShape, toldRates, toldAt = ec, shape, rates, now
			}
			st.unlock()
		}
	}
}
