package sfu

import (
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

// maxVideoSizes bounds how many publishers' sizes a participant keeps:
// those of publishers that left are dropped when it is reached.
const maxVideoSizes = 256

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
	if _, ok := p.videoSizes[remote]; !ok && len(p.videoSizes) >= maxVideoSizes {
		for other := range p.videoSizes {
			if st.parts[other] == nil {
				delete(p.videoSizes, other)
			}
		}
		if len(p.videoSizes) >= maxVideoSizes {
			return
		}
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
