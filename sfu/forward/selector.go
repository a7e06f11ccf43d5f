package forward

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Layer selection. Every subscriber of a simulcast source gets the best
// layer that (a) is no larger than the size it shows the video at and (b)
// fits the bitrate its connection can take, among the layers the
// publisher sends. A selector per source decides, a few times a second,
// from the layers' measured bitrates and picture sizes; the subscriber's
// worker switches at the next keyframe of the layer chosen, which the
// selector asks the publisher for.
//
// Layers the publisher pauses (see WithLayersNeeded) are not sent, but
// are still what subscribers would need: the selector tells which, so
// that the publisher resumes a layer as soon as a subscriber could use it,
// and pauses it only once nobody has needed it for neededHold.

// selectEvery is how often the selector measures the layers and decides.
const selectEvery = 250 * time.Millisecond

// upgradeMargin is how much more bandwidth than a higher layer's bitrate
// a subscriber must have to be moved up to it: enough to absorb the
// layer's keyframes and the estimate's noise, so that the choice does not
// swing between two layers.
const upgradeMargin = 1.15

// largerLayerCost is the least a layer is taken to cost over the one
// below it: simulcast layers are a quarter of the pixels of the next,
// which takes half again as many bits at the least.
const largerLayerCost = 1.5

// neededHold is how long a layer nobody needs is still kept by the
// publisher: a subscriber whose bandwidth dips does not make it pause and
// resume a layer every few seconds.
const neededHold = 5 * time.Second

// rateSmoothing is the weight of each new measurement of a layer's
// bitrate: about a second of history at selectEvery.
const rateSmoothing = 0.25

type selector struct {
	s    *Source
	stop func()

	// Owned by the selector's goroutine, and by pick's callers, which
	// serialize on mu.
	mu         sync.Mutex
	last       time.Time
	upGen      uint64
	neededTill [MaxLayers]time.Time
	told       string // the rids last told, joined
}

// startSelector starts s's selector if it has none: a simulcast upstream
// got its first layer.
func (s *Source) startSelector() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sel.Load() != nil || s.closed || s.kind != videoKind {
		return
	}
	done := make(chan struct{})
	sel := &selector{s: s, stop: sync.OnceFunc(func() { close(done) })}
	s.sel.Store(sel)
	go sel.run(done)
}

// selectorOf returns s's selector, nil until it has a simulcast upstream.
func (s *Source) selectorOf() *selector { return s.sel.Load() }

func (sel *selector) run(done <-chan struct{}) {
	t := time.NewTicker(sel.s.selectEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			sel.tick(now)
		}
	}
}

// tick measures the layers, picks every subscriber's layer and tells the
// publisher which layers are needed.
func (sel *selector) tick(now time.Time) {
	s := sel.s
	u := s.up.Load()
	if u == nil || u.single {
		return
	}
	sel.mu.Lock()
	if sel.upGen != u.gen {
		// A new connection of the publisher sends every layer until
		// told otherwise.
		sel.upGen, sel.last, sel.told = u.gen, time.Time{}, ""
	}
	dt := now.Sub(sel.last)
	first := sel.last.IsZero()
	// Measured over at least most of a period: a shorter one says more
	// of when the last frame came than of the bitrate.
	measure := !first && dt >= selectEvery*4/5
	if first || measure {
		sel.last = now
	}
	for i := range u.layers {
		l := u.layers[i].Load()
		if l == nil || !(first || measure) {
			continue
		}
		b, f := l.bytes.Load(), l.frames.Load()
		inst := float64(b-l.selBytes) * 8 / dt.Seconds()
		instFPS := float64(f-l.selFrames) * 1000 / dt.Seconds()
		l.selBytes, l.selFrames = b, f
		if first || !l.active(now) {
			continue // a paused layer keeps the rates it had when sent
		}
		l.measured(int64(smooth(float64(l.rate.Load()), inst)))
		l.fps.Store(int64(smooth(float64(l.fps.Load()), instFPS)))
	}
	var needed [MaxLayers]bool
	if downs := s.downs.Load(); downs != nil {
		for _, d := range *downs {
			if id := sel.pickLocked(d, u, now); id >= 0 {
				needed[id] = true
			}
		}
	}
	// The lowest layer is always kept: it is what a new subscriber, or
	// one whose bandwidth collapses, can be given at once. A layer never
	// seen yet is kept too: nothing is known to rank it by.
	layers := ranked(u, now, false)
	if len(layers) > 0 {
		needed[layers[0].id] = true
	}
	var rids []string
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil && l.lastAt.Load() == 0 {
			rids = append(rids, l.rid)
		}
	}
	for _, l := range layers {
		if needed[l.id] {
			sel.neededTill[l.id] = now.Add(neededHold)
		}
		if now.Before(sel.neededTill[l.id]) {
			rids = append(rids, l.rid)
		}
	}
	told := strings.Join(rids, " ")
	changed := told != sel.told
	sel.told = told
	sel.mu.Unlock()
	if changed && s.needed != nil {
		s.needed(rids)
	}
}

// pick chooses d's layer now (a subscriber that starts).
func (sel *selector) pick(d *DownTrack, now time.Time) {
	u := sel.s.up.Load()
	if u == nil || u.single {
		return
	}
	sel.mu.Lock()
	defer sel.mu.Unlock()
	sel.pickLocked(d, u, now)
}

// pickLocked sets the layer d is to get, among those u sends, and returns
// the slot of the layer it would get if every layer were sent (the one it
// needs the publisher to send), -1 if u has none.
func (sel *selector) pickLocked(d *DownTrack, u *Upstream, now time.Time) int {
	all := ranked(u, now, false)
	if len(all) == 0 {
		return -1
	}
	cur := d.want.Load()
	needed := choose(all, d, cur, true, now)
	d.ideal.Store(int32(choose(all, d, cur, false, now).id))
	sent := ranked(u, now, true)
	if len(sent) == 0 {
		return needed.id
	}
	// The best layer sent that is no better than the one chosen, else the
	// least of those sent.
	want := choose(sent, d, cur, true, now)
	if want.id != int(cur) {
		d.want.Store(int32(want.id))
		if d.started.Load() {
			sel.s.requestKeyframe(want)
		}
	}
	return needed.id
}

// smooth adds a measurement to a smoothed value (0: none yet).
func smooth(value, measured float64) float64 {
	if value == 0 {
		return measured
	}
	return value + rateSmoothing*(measured-value)
}

// choose picks among layers, ranked from lowest to highest, the best one
// no larger than d shows the video at whose bitrate fits d's budget; the
// lowest if none fits. cur is the slot d gets now: a move up needs
// upgradeMargin more bandwidth than the layer's bitrate. Without
// byBudget, the bandwidth is not considered. A layer the subscriber
// prefers (SetPreferredLayer) is chosen whatever its size and bitrate,
// if it is among layers; else the best one no larger. Until d has been
// forwarded anything, its InitialLayer, if it has one, decides.
func choose(layers []*Layer, d *DownTrack, cur int32, byBudget bool, now time.Time) *Layer {
	top := len(layers) - 1
	if rid := d.PreferredLayer(); rid != "" {
		if i := slices.IndexFunc(layers, func(l *Layer) bool { return l.rid == rid }); i >= 0 {
			return layers[i]
		}
		// Not sent now: the best of those no larger. A preference is
		// the app's choice over the bandwidth's, for the stand-in too.
		if p := preferred(d, rid); p != nil {
			area := int64(p.width.Load()) * int64(p.height.Load())
			for top > 0 && area > 0 && int64(layers[top].width.Load())*int64(layers[top].height.Load()) > area {
				top--
			}
		}
		return layers[top]
	}
	if d.cur.Load() < 0 { // nothing forwarded yet
		switch InitialLayer(d.initial.Load()) {
		case InitialLowest:
			return layers[0]
		case InitialHighest:
			return layers[len(layers)-1]
		}
	}
	if w, h := d.maxW.Load(), d.maxH.Load(); (w > 0 || h > 0) && d.PreferredLayer() == "" {
		for i, l := range layers {
			lw, lh := l.width.Load(), l.height.Load()
			if lw == 0 || lh == 0 {
				break // sizes not known yet: bandwidth alone decides
			}
			// A layer a little smaller than the tile looks as good
			// scaled up as the next one scaled down, at a fraction of
			// the bitrate.
			if lw*5 >= w*4 || lh*5 >= h*4 {
				top = i
				break
			}
		}
	}
	budget := d.budget.Load()
	if budget <= 0 || !byBudget {
		return layers[top]
	}
	curRank := slices.IndexFunc(layers, func(l *Layer) bool { return int32(l.id) == cur })
	// A larger layer costs more than the one below it, whatever it was
	// measured at: one measured while its encoder was climbing back from
	// a pause looks cheaper than it is.
	needs := make([]float64, len(layers))
	for i, l := range layers {
		needs[i] = float64(l.peakRate.Load())
		if i > 0 {
			needs[i] = max(needs[i], largerLayerCost*needs[i-1])
		}
	}
	for i := top; i > 0; i-- {
		need := needs[i]
		if curRank >= 0 && i > curRank {
			if !layers[i].settled(now) {
				continue
			}
			need *= upgradeMargin
		}
		if need <= float64(budget) {
			return layers[i]
		}
	}
	return layers[0]
}

// preferred returns the layer of rid d's source receives, or nil.
func preferred(d *DownTrack, rid string) *Layer {
	u := d.src.up.Load()
	if u == nil {
		return nil
	}
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil && l.rid == rid {
			return l
		}
	}
	return nil
}

// ranked returns u's layers from lowest to highest: by picture size where
// known, else by bitrate. Layers never seen are left out; with sentOnly,
// so are those whose packets do not flow now.
func ranked(u *Upstream, now time.Time, sentOnly bool) []*Layer {
	var out []*Layer
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil && l.lastAt.Load() != 0 && (!sentOnly || l.active(now)) {
			out = append(out, l)
		}
	}
	slices.SortStableFunc(out, func(a, b *Layer) int {
		aa, ba := int64(a.width.Load())*int64(a.height.Load()), int64(b.width.Load())*int64(b.height.Load())
		if aa != ba && aa > 0 && ba > 0 {
			return cmpInt(aa, ba)
		}
		return cmpInt(a.rate.Load(), b.rate.Load())
	})
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SetMaxSize tells the size, in pixels, the subscriber shows the video
// at: it gets no larger a layer than it needs. 0×0: no limit.
func (d *DownTrack) SetMaxSize(width, height int) {
	d.maxW.Store(uint32(max(width, 0)))
	d.maxH.Store(uint32(max(height, 0)))
}

// SetBitrateBudget tells the bitrate, in bits per second, the subscriber's
// connection can take for this track: it gets no layer whose bitrate
// exceeds it, but the lowest. 0: no limit.
func (d *DownTrack) SetBitrateBudget(bps int64) {
	bps = max(bps, 0)
	if old := d.budget.Swap(bps); old == bps || bps == 0 || (old != 0 && bps > old) {
		return
	}
	// Less bandwidth than the layer takes: move down now rather than at
	// the selector's next turn; every moment on it queues more.
	if sel := d.src.selectorOf(); sel != nil && d.started.Load() && d.Bitrate() > bps {
		sel.pick(d, time.Now())
	}
}

// SetPreferredLayer asks for the layer of the publisher's rid whatever
// the size the video is shown at and the bandwidth; while that layer is
// not sent, the subscriber gets the best of those no larger. "": no
// preference, the layer is chosen for it.
func (d *DownTrack) SetPreferredLayer(rid string) {
	if old := d.prefer.Swap(&rid); old != nil && *old == rid {
		return
	}
	if sel := d.src.selectorOf(); sel != nil && d.started.Load() {
		sel.pick(d, time.Now())
	}
}

// InitialLayer is the layer of a simulcast source a subscriber gets its
// first picture from; after it, its layer is chosen as always.
type InitialLayer int32

const (
	// InitialChosen: the first layer is chosen as every later one, by
	// size and bandwidth.
	InitialChosen InitialLayer = iota
	// InitialLowest: the lowest layer first, the quickest to show.
	InitialLowest
	// InitialHighest: the highest layer first, whatever the size and
	// bandwidth: the best first picture, later to show.
	InitialHighest
)

// SetInitialLayer tells which layer d's first picture is to come from;
// set before d starts. A preferred layer (SetPreferredLayer) comes first.
func (d *DownTrack) SetInitialLayer(l InitialLayer) { d.initial.Store(int32(l)) }

// PreferredLayer returns the rid SetPreferredLayer asked for, "" if none.
func (d *DownTrack) PreferredLayer() string {
	if p := d.prefer.Load(); p != nil {
		return *p
	}
	return ""
}

// LayerInfo describes a layer of a simulcast publisher, as received.
type LayerInfo struct {
	RID           string
	Width, Height int     // of its latest keyframe; 0 if not known
	Bitrate       int64   // bits per second: its peak, as the selector counts it
	FPS           float64 // frames per second
	Active        bool    // its packets flow now (the publisher may pause it)
}

// Layers returns the layers the source receives from a simulcast
// publisher, from lowest to highest; none for a publisher of one layer.
func (s *Source) Layers() []LayerInfo {
	u := s.up.Load()
	if u == nil || u.single {
		return nil
	}
	now := time.Now()
	var out []LayerInfo
	for _, l := range ranked(u, now, false) {
		out = append(out, LayerInfo{RID: l.rid, Width: int(l.width.Load()), Height: int(l.height.Load()),
			Bitrate: l.peakRate.Load(), FPS: float64(l.fps.Load()) / 1000, Active: l.active(now)})
	}
	return out
}

// LayerRIDs returns the rids of the layers of the source's simulcast
// upstream, declared or seen, in the order they were declared; none for
// an upstream of one layer.
func (s *Source) LayerRIDs() []string {
	u := s.up.Load()
	if u == nil || u.single {
		return nil
	}
	var out []string
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil {
			out = append(out, l.rid)
		}
	}
	return out
}

// Layer returns the rid of the layer the subscriber gets, and whether it
// gets one.
func (d *DownTrack) Layer() (string, bool) {
	if u := d.src.up.Load(); u != nil {
		if l := u.layer(d.cur.Load()); l != nil {
			return l.rid, true
		}
	}
	return "", false
}

// Bitrate returns the peak bitrate, in bits per second, of the layer the
// subscriber is to get; 0 if it is not known or the source has one layer.
func (d *DownTrack) Bitrate() int64 {
	if u := d.src.up.Load(); u != nil && !u.single {
		if l := u.layer(d.want.Load()); l != nil {
			return l.peakRate.Load()
		}
	}
	return 0
}

// ProbeTarget returns the bitrate, in bits per second, the subscriber would
// need for the next layer up, when its bandwidth is what keeps it from a
// better one; 0 when it gets the layer it needs. A bandwidth estimator
// probes up to it (see Pad) before the layer is given.
func (d *DownTrack) ProbeTarget() int64 {
	u := d.src.up.Load()
	if u == nil || u.single {
		return 0
	}
	ideal, want := d.ideal.Load(), d.want.Load()
	if ideal == want {
		return 0
	}
	layers := ranked(u, time.Now(), false)
	wi := slices.IndexFunc(layers, func(l *Layer) bool { return int32(l.id) == want })
	ii := slices.IndexFunc(layers, func(l *Layer) bool { return int32(l.id) == ideal })
	if wi < 0 || ii <= wi {
		return 0
	}
	need := float64(layers[0].peakRate.Load())
	for _, l := range layers[1 : wi+2] {
		need = max(float64(l.peakRate.Load()), largerLayerCost*need)
	}
	return int64(need * upgradeMargin)
}

// Pad sends about n bytes of padding to the subscriber, in its
// retransmission stream, where it negotiated one: copies of packets it
// was sent last, which its receiver discards. A bandwidth estimator uses
// it to learn whether the path can carry a higher layer before the layer
// is given. It reports whether the track can pad.
func (d *DownTrack) Pad(n int) bool {
	b := d.bound.Load()
	if b == nil || b.rtxSSRC == 0 || n <= 0 {
		return false
	}
	d.push(item{kind: itemPad, pad: n})
	return true
}

// pad handles Pad: the newest packets of the current mapping, newest
// first, sent again in the retransmission stream until n bytes are sent.
func (d *DownTrack) pad(n int) {
	b := d.bound.Load()
	if b == nil || b != d.ptBinding || !d.live || !d.m.synced || !d.ptOK || d.curL == nil {
		return
	}
	rtxPT, ok := b.rtxPT[d.pt]
	if !ok {
		return
	}
	for ext := d.m.highIn; n > 0 && ext >= d.m.baseIn && d.m.highIn-ext < 64; ext-- {
		p := d.curL.cache.get(d.m.gen, d.m.ssrc, uint16(ext))
		if p == nil {
			continue
		}
		sent, _ := d.sendRTX(b, p, d.sentPayload(p), d.m.outSeq(ext), p.Timestamp+d.m.tsOff, rtxPT)
		if sent == 0 {
			return
		}
		d.counted.padding++
		n -= sent
	}
}

// Simulcast reports whether the source's current upstream has several
// layers to choose from.
func (d *DownTrack) Simulcast() bool {
	u := d.src.up.Load()
	return u != nil && !u.single
}
