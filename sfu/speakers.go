package sfu

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivsrt/ivsrt"
)

// Active speakers. Browsers send the level of each audio packet in the
// ssrc-audio-level header extension (RFC 6464): 0 to 127, the packet's
// level in -dBov. Each publication's audio feeds a meter; every
// speakerInterval the stage judges who spoke in that window, and when the
// set of speakers changes it tells every events WebSocket:
//
//	{"type": "activeSpeakers", "speakers": [{"participantId": "...", "level": -23}]}
//
// loudest first. A publisher is a speaker from the first window in which
// enough of its packets were voice, and stops being one after speakerHold
// quiet windows, so that the pauses between words do not flicker.
const (
	speakerInterval = 200 * time.Millisecond
	voiceLevel      = 50  // a packet louder than -50 dBov is voice
	voiceShare      = 0.3 // of a window's packets, for the window to count
	speakerHold     = 4   // quiet windows before a speaker stops being one
)

// levelMeter counts one publication's audio levels in the current window.
// The publisher's reading goroutine writes it; the judge reads and resets
// it: atomics, no lock.
type levelMeter struct {
	packets, voiced atomic.Uint32
	sum             atomic.Uint64 // of the voiced packets' levels (-dBov)
}

// observe counts a packet of level (-dBov, 0 to 127).
func (m *levelMeter) observe(level uint8) {
	m.packets.Add(1)
	if level < voiceLevel {
		m.voiced.Add(1)
		m.sum.Add(uint64(level))
	}
}

// window returns the window's verdict and starts the next.
func (m *levelMeter) window() (voiced bool, level int) {
	packets, n, sum := m.packets.Swap(0), m.voiced.Swap(0), m.sum.Swap(0)
	if packets == 0 || float64(n) < voiceShare*float64(packets) {
		return false, 0
	}
	return true, -int(sum / uint64(n))
}

// speakerLevel is one active speaker in the activeSpeakers message.
type speakerLevel struct {
	ParticipantID ivsrt.ParticipantID `json:"participantId"`
	Level         int                 `json:"level"` // dBov, the louder the nearer 0
}

type activeSpeakersMessage struct {
	Type     string         `json:"type"` // "activeSpeakers"
	Speakers []speakerLevel `json:"speakers"`
}

// speakers follows a stage's speakers. Its lock is its own: meters are
// added and judged without the stage's.
type speakers struct {
	mu     sync.Mutex
	meters map[ivsrt.ParticipantID]*levelMeter
	quiet  map[ivsrt.ParticipantID]int // a current speaker's quiet windows
	level  map[ivsrt.ParticipantID]int // a current speaker's last voiced level
	sent   []ivsrt.ParticipantID       // the speakers last told, loudest first
}

// meter returns the meter of a publisher's audio, made if needed.
func (sp *speakers) meter(id ivsrt.ParticipantID) *levelMeter {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.meters == nil {
		sp.meters, sp.quiet, sp.level = map[ivsrt.ParticipantID]*levelMeter{}, map[ivsrt.ParticipantID]int{}, map[ivsrt.ParticipantID]int{}
	}
	m := sp.meters[id]
	if m == nil {
		m = &levelMeter{}
		sp.meters[id] = m
	}
	return m
}

// drop forgets a publisher whose publication ended.
func (sp *speakers) drop(id ivsrt.ParticipantID) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	delete(sp.meters, id)
}

// judge closes the window and returns the speakers, loudest first, and
// whether they differ from those last returned.
func (sp *speakers) judge() ([]speakerLevel, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(sp.meters) == 0 && len(sp.quiet) == 0 && len(sp.sent) == 0 {
		return nil, false // a stage whose audio tells no levels: nothing to judge
	}
	for id := range sp.quiet {
		if sp.meters[id] == nil { // its publication ended
			delete(sp.quiet, id)
			delete(sp.level, id)
		}
	}
	for id, m := range sp.meters {
		voiced, level := m.window()
		_, speaking := sp.quiet[id]
		switch {
		case voiced:
			sp.quiet[id], sp.level[id] = 0, level
		case speaking && sp.quiet[id]+1 >= speakerHold:
			delete(sp.quiet, id)
			delete(sp.level, id)
		case speaking:
			sp.quiet[id]++
		}
	}
	out := make([]speakerLevel, 0, len(sp.quiet))
	for id := range sp.quiet {
		out = append(out, speakerLevel{ParticipantID: id, Level: sp.level[id]})
	}
	slices.SortFunc(out, func(a, b speakerLevel) int {
		if a.Level != b.Level {
			return b.Level - a.Level // nearer 0 is louder
		}
		return cmp.Compare(a.ParticipantID, b.ParticipantID)
	})
	ids := make([]ivsrt.ParticipantID, len(out))
	for i, s := range out {
		ids[i] = s.ParticipantID
	}
	changed := !slices.Equal(ids, sp.sent)
	if changed {
		sp.sent = ids
	}
	return out, changed
}

// judgeSpeakers runs until the server closes: every speakerInterval each
// stage judges its speakers, and one whose speakers changed tells its
// events WebSockets.
func (s *Server) judgeSpeakers(stop <-chan struct{}) {
	t := time.NewTicker(speakerInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		stages := make([]*stage, 0, len(s.stages))
		for _, st := range s.stages {
			stages = append(stages, st)
		}
		s.mu.Unlock()
		for _, st := range stages {
			out, changed := st.speakers.judge()
			if !changed {
				continue
			}
			msg := activeSpeakersMessage{Type: "activeSpeakers", Speakers: out}
			st.lock()
			for _, p := range st.parts {
				if p.events != nil {
					p.events.send(msg)
				}
			}
			st.unlock()
		}
	}
}
