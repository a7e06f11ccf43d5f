package layout

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// MaxParticipants is the most participants a composition shows: a stage has
// at most 12 publishers (IVS Real-Time service quotas).
const MaxParticipants = 12

// maxVideoSide bounds the video sizes taken as known. Nothing publishes a
// picture this large; a bigger number is a bad report, and treating it as
// unknown keeps every product of two sizes far from overflowing.
const maxVideoSide = 1 << 15

// Participant is one publisher of the stage, as the layout needs to see it.
type Participant struct {
	// ID is the participant's id, unique in the stage.
	ID string
	// Attributes are the attributes of the participant's token; the
	// layout's attribute names are looked up here.
	Attributes map[string]string
	// JoinOrder orders participants by arrival: smaller joined earlier.
	// Any increasing key does (a join sequence, a join time in nanoseconds).
	JoinOrder int64
	// PublishesVideo is whether the participant publishes a video track at
	// all; an audio-only publisher still has a tile unless stopped video is
	// omitted.
	PublishesVideo bool
	// VideoStopped is whether the published video is stopped (muted).
	VideoStopped bool
	// VideoWidth and VideoHeight are the size of the participant's decoded
	// video, 0 while unknown.
	VideoWidth, VideoHeight int
}

// showsVideo reports whether there is a picture to compose. IVS's
// omitStoppedVideo leaves out participants "with stopped video"; one who
// publishes no video at all has nothing to show either, and a user turning
// the option on wants no empty tiles, so both count as stopped.
func (p Participant) showsVideo() bool { return p.PublishesVideo && !p.VideoStopped }

// videoSize returns the video's size and whether it is known and usable:
// at least 2×2 (a picture of one pixel has no even crop) and not absurd.
func (p Participant) videoSize() (w, h int, ok bool) {
	w, h = p.VideoWidth, p.VideoHeight
	if w < 2 || h < 2 || w > maxVideoSide || h > maxVideoSide {
		return 0, 0, false
	}
	return w, h, true
}

// hasTrueAttribute reports whether the participant's attribute name is the
// string "true", which is how IVS marks the featured and PiP participants.
// The comparison is exact, as the API reference quotes the value. An empty
// name (the option not set) marks no one.
func (p Participant) hasTrueAttribute(name string) bool {
	return name != "" && p.Attributes[name] == "true"
}

// orderValue returns the participant's place from the participantOrderAttribute
// named, and whether it has a usable one. IVS's "Custom Participant Ordering":
// the value sorts numerically and may be negative; a non-numeric value such
// as "abc" or "1.5" is invalid and the participant falls back to arrival
// order. Integers out of int64's range are treated as invalid too.
func (p Participant) orderValue(name string) (int64, bool) {
	if name == "" {
		return 0, false
	}
	v, ok := p.Attributes[name]
	if !ok || v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// checkParticipants rejects input the layout could not place unambiguously:
// a tile is named by its participant's id.
func checkParticipants(participants []Participant) error {
	seen := make(map[string]bool, len(participants))
	for i, p := range participants {
		if p.ID == "" {
			return fmt.Errorf("layout: participant %d has no id", i)
		}
		if seen[p.ID] {
			return fmt.Errorf("layout: participant %q is listed twice", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}

// ordered returns the participants in the composition's order, the order of
// IVS's "Custom Participant Ordering":
//
//  1. participants with a usable participantOrderAttribute value, by value,
//     ascending (negative before positive);
//  2. then everyone else;
//  3. within equal values, and among everyone in 2, by arrival (JoinOrder);
//  4. and, where even arrival ties, by id, so that the result never depends
//     on the order the caller listed participants in.
func ordered(participants []Participant, orderAttribute string) []Participant {
	out := slices.Clone(participants)
	slices.SortFunc(out, func(a, b Participant) int {
		av, aok := a.orderValue(orderAttribute)
		bv, bok := b.orderValue(orderAttribute)
		switch {
		case aok && !bok:
			return -1
		case !aok && bok:
			return 1
		case aok && bok && av != bv:
			return cmp.Compare(av, bv)
		}
		if c := cmp.Compare(a.JoinOrder, b.JoinOrder); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}
