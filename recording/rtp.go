package recording

import (
	"context"
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"
)

// Kind is a track's media kind.
type Kind int

// Kinds of tracks.
const (
	Video Kind = iota
	Audio
)

// RTPRecorder turns a publisher's RTP (H.264 video, Opus audio) into the
// samples of an HLSWriter. The tracks are put on one timeline by when
// their first packets arrived; after that each follows its own RTP clock,
// so that network jitter does not reach the recording.
type RTPRecorder struct {
	w      *HLSWriter
	start  time.Time     // arrival of the first packet of any track
	base   time.Duration // where on the timeline start is: after a break, the end of what was recorded
	tracks [2]rtpTrack
	// Dropped counts packets that could not be depacketized (loss in a
	// fragmented NAL unit, for example): their access unit is skipped.
	Dropped int
}

type rtpTrack struct {
	begun     bool
	clockRate int64
	offset    time.Duration // of the track's first packet on the timeline
	firstTS   int64         // extended RTP timestamp of the first packet
	lastTS    uint32
	extTS     int64
	h264      *rtph264.Decoder
	pendingTS int64 // timestamp of the access unit being assembled
}

// NewRTPRecorder returns a recorder writing to w.
func NewRTPRecorder(w *HLSWriter) *RTPRecorder {
	r := &RTPRecorder{w: w}
	r.tracks[Video].clockRate = videoTimeScale
	r.tracks[Audio].clockRate = audioTimeScale
	return r
}

// WriteRTP records pkt of the track kind, which arrived at arrival.
// Packets must come in order (the forwarding path's munger sees to it).
func (r *RTPRecorder) WriteRTP(ctx context.Context, kind Kind, pkt *rtp.Packet, arrival time.Time) error {
	if r.start.IsZero() {
		r.start = arrival
	}
	t := &r.tracks[kind]
	ts := t.extend(pkt.Timestamp)
	if !t.begun {
		t.begun, t.firstTS, t.offset = true, ts, r.base+arrival.Sub(r.start)
		if kind == Video {
			t.h264 = &rtph264.Decoder{PacketizationMode: 1}
			if err := t.h264.Init(); err != nil {
				return err
			}
		}
	}
	switch kind {
	case Audio:
		if len(pkt.Payload) == 0 {
			return nil
		}
		return r.w.WriteOpus(ctx, t.pts(ts), pkt.Payload)
	default:
		// The decoder returns an access unit when its last packet (marker
		// set) arrives, or when a packet of the next one does (no
		// marker): then the unit is the one of the timestamp before.
		auTS := ts
		if t.pendingTS != 0 && t.pendingTS != ts {
			auTS = t.pendingTS
		}
		au, err := t.h264.Decode(pkt)
		switch {
		case errors.Is(err, rtph264.ErrMorePacketsNeeded):
			t.pendingTS = ts
			return nil
		case err != nil:
			r.Dropped++
			t.pendingTS = 0
			return nil
		}
		if auTS != ts && !pkt.Marker {
			t.pendingTS = ts // this packet starts the next unit
		} else {
			t.pendingTS = 0
		}
		err = r.w.WriteH264(ctx, t.pts(auTS), au)
		if errors.Is(err, ErrNoKeyframe) {
			return nil
		}
		return err
	}
}

// extend unwraps a 32-bit RTP timestamp.
func (t *rtpTrack) extend(ts uint32) int64 {
	if t.extTS == 0 && t.lastTS == 0 {
		t.extTS, t.lastTS = int64(ts)+1<<32, ts // room below for reordering
		return t.extTS
	}
	t.extTS += int64(int32(ts - t.lastTS))
	t.lastTS = ts
	return t.extTS
}

// pts is the time on the recording's timeline of extended timestamp ts.
func (t *rtpTrack) pts(ts int64) time.Duration {
	return t.offset + time.Duration((ts-t.firstTS)*int64(time.Second)/t.clockRate)
}

// Break marks the end of a publisher's stream that another may continue
// (the same participant, back within the reconnect window): what was
// received is uploaded, and the tracks start afresh, their timeline going
// on from where the recording is.
func (r *RTPRecorder) Break(ctx context.Context) error {
	if err := r.w.Pause(ctx); err != nil {
		return err
	}
	r.base, r.start = r.w.End(), time.Time{}
	for i := range r.tracks {
		r.tracks[i] = rtpTrack{clockRate: r.tracks[i].clockRate}
	}
	return nil
}

// Close ends the recording.
func (r *RTPRecorder) Close(ctx context.Context) error { return r.w.Close(ctx) }
