package forward

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// vp8Frame returns the first packet of a VP8 frame of layer ssrc; a key
// frame tells its picture size.
func vp8Frame(ssrc uint32, seq uint16, key bool, w, h int, size int) *rtp.Packet {
	payload := make([]byte, max(size, 12))
	payload[0] = 0x10 // S, partition 0
	payload[1] = 0x01 // inter frame
	if key {
		payload[1] = 0x00
		payload[4], payload[5], payload[6] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(payload[7:], uint16(w))
		binary.LittleEndian.PutUint16(payload[9:], uint16(h))
	}
	payload[len(payload)-1] = byte(ssrc) // tells the layer in what the subscriber gets
	return &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: ssrc, PayloadType: 96, SequenceNumber: seq,
		Timestamp: uint32(seq) * 3000}, Payload: payload}
}

// simulcastPublisher sends three layers of VP8: SSRC 1 at 320×180, 2 at
// 640×360 and 3 at 1280×720, each packet of its layer's size.
type simulcastPublisher struct {
	t      *testing.T
	up     *Upstream
	layers [3]*Layer
	seq    [3]uint16
	mu     sync.Mutex
	asked  map[string]int // keyframe requests per rid
}

var simulcastSizes = [3][3]int{{320, 180, 200}, {640, 360, 600}, {1280, 720, 1100}}

func newSimulcastPublisher(t *testing.T, src *Source) *simulcastPublisher {
	p := &simulcastPublisher{t: t, up: src.AttachSimulcast(testVP8, nil), asked: map[string]int{}}
	for i, rid := range []string{"q", "h", "f"} {
		l, err := p.up.AddLayer(rid, func() {
			p.mu.Lock()
			p.asked[rid]++
			p.mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		p.layers[i] = l
		p.seq[i] = uint16(1000 * (i + 1))
	}
	if _, err := p.up.AddLayer("x", nil); err != ErrTooManyLayers {
		t.Fatalf("a fourth layer: %v, want ErrTooManyLayers", err)
	}
	return p
}

// frame sends one frame of every layer; key makes them keyframes.
func (p *simulcastPublisher) frame(key bool) {
	for i, l := range p.layers {
		sz := simulcastSizes[i]
		if err := l.WriteRTP(vp8Frame(uint32(i+1), p.seq[i], key, sz[0], sz[1], sz[2])); err != nil {
			p.t.Fatal(err)
		}
		p.seq[i]++
	}
}

func (p *simulcastPublisher) askedOf(rid string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[rid]
}

// layersGot returns the layer (1, 2, 3) of every packet the subscriber got.
func (r *recorder) layersGot() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []byte
	for _, p := range r.payloads {
		out = append(out, p[len(p)-1])
	}
	return out
}

func TestSimulcastSelection(t *testing.T) {
	var (
		neededMu sync.Mutex
		needed   []string
	)
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond),
		WithLayersNeeded(func(rids []string) {
			neededMu.Lock()
			needed = append(needed, strings.Join(rids, ","))
			neededMu.Unlock()
		}))
	src.selectEvery = time.Hour // the test measures and decides itself
	defer src.Close()
	pub := newSimulcastPublisher(t, src)
	sel := src.selectorOf()
	if sel == nil {
		t.Fatal("no selector for a simulcast source")
	}
	// Over a second of video at 30 fps, keyframes first: the layers' sizes and
	// bitrates become known.
	pub.frame(true)
	sel.tick(time.Now())
	for range 75 {
		time.Sleep(30 * time.Millisecond)
		pub.frame(false)
		if len(pub.layers) > 0 && time.Since(sel.last) >= 250*time.Millisecond {
			sel.tick(time.Now())
		}
	}
	sel.tick(time.Now())
	rates := []int64{pub.layers[0].rate.Load(), pub.layers[1].rate.Load(), pub.layers[2].rate.Load()}
	if !(rates[0] > 0 && rates[0] < rates[1] && rates[1] < rates[2]) {
		t.Fatalf("layer bitrates %v: want three rising", rates)
	}
	if w, h := pub.layers[2].width.Load(), pub.layers[2].height.Load(); w != 1280 || h != 720 {
		t.Fatalf("layer f is %d×%d, want 1280×720 from its keyframe", w, h)
	}

	// A subscriber with no limits gets the highest layer, from its next
	// keyframe, which is asked for.
	d, w := bindDown(t, src, nil)
	defer d.Close()
	if got := d.want.Load(); got != 2 {
		t.Fatalf("unlimited subscriber wants layer %d, want 2 (f)", got)
	}
	pub.frame(false)
	pub.frame(true)
	pub.frame(false)
	waitFor(t, func() bool { return len(w.layersGot()) >= 2 })
	if got := w.layersGot(); !slices.Equal(got, []byte{3, 3}) {
		t.Fatalf("unlimited subscriber got layers %v, want f's keyframe and frame", got)
	}
	if rid, ok := d.Layer(); !ok || rid != "f" {
		t.Errorf("Layer() = %q %v, want f", rid, ok)
	}

	// Its bandwidth falls under h's bitrate: it moves to q at q's next
	// keyframe, and gets f until then; the stream stays continuous.
	d.SetBitrateBudget(rates[0] + (rates[1]-rates[0])/2)
	sel.tick(time.Now())
	if got := d.want.Load(); got != 0 {
		t.Fatalf("subscriber under h's bitrate wants layer %d, want 0 (q)", got)
	}
	if d.ProbeTarget() <= rates[1] {
		t.Errorf("ProbeTarget %d: want above h's bitrate %d", d.ProbeTarget(), rates[1])
	}
	pub.frame(false)
	pub.frame(true)
	pub.frame(false)
	waitFor(t, func() bool { return len(w.layersGot()) >= 5 })
	if got := w.layersGot(); !slices.Equal(got, []byte{3, 3, 3, 1, 1}) {
		t.Fatalf("after the bandwidth fell the subscriber got layers %v, want 3 3 3 1 1", got)
	}
	hs := w.headers()
	for i := 1; i < len(hs); i++ {
		if hs[i].SequenceNumber != hs[i-1].SequenceNumber+1 {
			t.Fatalf("sequence numbers %v: not continuous across the switch", seqsOf(hs))
		}
		if hs[i].SSRC != hs[0].SSRC {
			t.Fatalf("the SSRC changed across the switch")
		}
	}

	// A budget just over h's bitrate is not enough to move up (the
	// margin); enough with the margin is.
	d.SetBitrateBudget(rates[1] + rates[1]/20)
	sel.tick(time.Now())
	if got := d.want.Load(); got != 0 {
		t.Errorf("budget 5%% over h's bitrate: wants %d, want to stay at 0", got)
	}
	d.SetBitrateBudget(rates[1] * 13 / 10)
	sel.tick(time.Now())
	if got := d.want.Load(); got != 1 {
		t.Errorf("budget 30%% over h's bitrate: wants %d, want 1 (h)", got)
	}

	// The size it shows the video at bounds the layer, whatever the
	// bandwidth.
	d.SetBitrateBudget(0)
	d.SetMaxSize(300, 170)
	sel.tick(time.Now())
	if got := d.want.Load(); got != 0 {
		t.Errorf("a 300×170 tile wants layer %d, want 0 (320×180)", got)
	}
	d.SetMaxSize(640, 360)
	sel.tick(time.Now())
	if got := d.want.Load(); got != 1 {
		t.Errorf("a 640×360 tile wants layer %d, want 1", got)
	}
	d.SetMaxSize(1920, 1080)
	sel.tick(time.Now())
	if got := d.want.Load(); got != 2 {
		t.Errorf("a 1920×1080 tile wants layer %d, want 2", got)
	}

	// The publisher is told which layers are needed: the lowest always,
	// and those subscribers need; a layer nobody needs any more is let go
	// once the hold time has passed.
	neededMu.Lock()
	told := slices.Clone(needed)
	neededMu.Unlock()
	if len(told) == 0 || told[0] != "q" || told[len(told)-1] != "q,h,f" {
		t.Errorf("layers needed told %q, want q first (no subscriber) and q,h,f last", told)
	}
	d.SetMaxSize(320, 180)
	sel.tick(time.Now())
	sel.tick(time.Now().Add(neededHold + time.Second))
	neededMu.Lock()
	last := needed[len(needed)-1]
	neededMu.Unlock()
	if last != "q" {
		t.Errorf("layers needed once only q is wanted: %q, want q", last)
	}
	if src.counters.layerSwitches.Load() != 1 {
		t.Errorf("%d layer switches counted, want 1", src.counters.layerSwitches.Load())
	}
}

// TestSimulcastPausedLayer: a layer the publisher stops sending is not
// given, but the subscriber that would need it is still counted as
// needing it, so that the publisher resumes it.
func TestSimulcastPausedLayer(t *testing.T) {
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond))
	src.selectEvery = time.Hour
	defer src.Close()
	pub := newSimulcastPublisher(t, src)
	sel := src.selectorOf()
	// Every layer is sent, then f is paused: only q and h come.
	pub.frame(true)
	time.Sleep(layerIdle + 100*time.Millisecond)
	for i := range 10 {
		for j, l := range pub.layers[:2] {
			sz := simulcastSizes[j]
			if err := l.WriteRTP(vp8Frame(uint32(j+1), pub.seq[j], i == 0, sz[0], sz[1], sz[2])); err != nil {
				t.Fatal(err)
			}
			pub.seq[j]++
		}
	}
	d, w := bindDown(t, src, nil)
	defer d.Close()
	sel.tick(time.Now())
	if got, ideal := d.want.Load(), d.ideal.Load(); got != 1 || ideal != 2 {
		t.Fatalf("with f paused the subscriber wants %d and needs %d, want 1 and 2", got, ideal)
	}
	if err := pub.layers[1].WriteRTP(vp8Frame(2, pub.seq[1], true, 640, 360, 600)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(w.layersGot()) >= 1 })
	if got := w.layersGot(); got[0] != 2 {
		t.Errorf("got layer %d, want h's keyframe", got[0])
	}
}

// TestPadSendsRetransmissions: padding for a bandwidth probe goes in the
// retransmission stream, as copies of packets sent.
func TestPadSendsRetransmissions(t *testing.T) {
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher")
	defer src.Close()
	up := src.Attach(testVP8, nil)
	d, err := src.NewDownTrack()
	if err != nil {
		t.Fatal(err)
	}
	w := &recorder{}
	ctx := rtxContext(w)
	if _, err := d.Bind(ctx); err != nil {
		t.Fatal(err)
	}
	d.Start()
	d.barrier()
	for seq := uint16(10); seq < 20; seq++ {
		if err := up.WriteRTP(vp8Frame(7, seq, seq == 10, 640, 360, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(w.headers()) >= 10 })
	if !d.Pad(2500) {
		t.Fatal("Pad refused with a retransmission stream")
	}
	d.barrier()
	hs := w.headers()
	if len(hs) != 13 {
		t.Fatalf("%d packets after padding 2500 bytes of 1000-byte packets, want 10+3", len(hs))
	}
	for _, h := range hs[10:] {
		if h.SSRC != 4343 {
			t.Errorf("padding on SSRC %d, want the retransmission stream's", h.SSRC)
		}
	}
	waitFor(t, func() bool { return src.counters.padding.Load() == 3 })
	plain, _ := bindDown(t, src, nil)
	defer plain.Close()
	if plain.Pad(1000) {
		t.Error("Pad accepted without a retransmission stream")
	}
}

// TestSimulcastDeclaredLayers: the layers a publisher declares count as
// needed until they are seen, so that it pauses none before it started.
func TestSimulcastDeclaredLayers(t *testing.T) {
	var (
		mu   sync.Mutex
		told []string
	)
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithLayersNeeded(func(rids []string) {
		mu.Lock()
		told = append(told, strings.Join(rids, ","))
		mu.Unlock()
	}))
	src.selectEvery = time.Hour
	defer src.Close()
	up := src.AttachSimulcast(testVP8, []string{"q", "h", "f"})
	q, err := up.AddLayer("q", func() {})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.WriteRTP(vp8Frame(1, 1, true, 320, 180, 200)); err != nil {
		t.Fatal(err)
	}
	sel := src.selectorOf()
	sel.tick(time.Now())
	sel.tick(time.Now().Add(neededHold + time.Second))
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || told[0] != "h,f,q" {
		t.Errorf("layers needed told %q, want h and f (not seen yet) and q (the lowest)", told)
	}
	if l, err := up.AddLayer("f", nil); err != nil || l.id != 2 {
		t.Errorf("AddLayer of a declared rid: slot %v, %v; want its slot 2", l, err)
	}
}

// TestSimulcastPreferredLayer: a subscriber's preferred layer is given
// whatever the size it shows the video at and its bandwidth; while the
// publisher pauses it, the best layer no larger is, and the publisher is
// told it is needed. Layers() tells the layers as received: rid, size,
// bitrate, frame rate.
func TestSimulcastPreferredLayer(t *testing.T) {
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond))
	src.selectEvery = time.Hour
	defer src.Close()
	pub := newSimulcastPublisher(t, src)
	sel := src.selectorOf()
	send := func(layers int, key bool) {
		for j, l := range pub.layers[:layers] {
			sz := simulcastSizes[j]
			p := vp8Frame(uint32(j+1), pub.seq[j], key, sz[0], sz[1], sz[2])
			p.Marker = true // one packet per frame
			if err := l.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
			pub.seq[j]++
		}
	}
	send(3, true)
	sel.tick(time.Now())
	start := time.Now()
	for time.Since(start) < 1200*time.Millisecond {
		time.Sleep(25 * time.Millisecond)
		send(3, false)
		if time.Since(sel.last) >= 250*time.Millisecond {
			sel.tick(time.Now())
		}
	}
	infos := src.Layers()
	if len(infos) != 3 {
		t.Fatalf("Layers() = %+v, want 3", infos)
	}
	for i, want := range []string{"q", "h", "f"} {
		l := infos[i]
		if l.RID != want || l.Width != simulcastSizes[i][0] || l.Height != simulcastSizes[i][1] || !l.Active {
			t.Errorf("layer %d = %+v, want %s %dx%d, active", i, l, want, simulcastSizes[i][0], simulcastSizes[i][1])
		}
		// 25 ms apart plus the time to send: 25 to 40 frames a second.
		if l.FPS < 15 || l.FPS > 45 {
			t.Errorf("layer %s: %.1f frames per second, want about 30-40", l.RID, l.FPS)
		}
		if i > 0 && l.Bitrate <= infos[i-1].Bitrate {
			t.Errorf("layer %s: bitrate %d, not above the layer below's %d", l.RID, l.Bitrate, infos[i-1].Bitrate)
		}
	}

	d, _ := bindDown(t, src, nil)
	defer d.Close()
	d.SetMaxSize(320, 180)
	d.SetBitrateBudget(infos[0].Bitrate * 2)
	sel.tick(time.Now())
	if got := d.want.Load(); got != 0 {
		t.Fatalf("a small, narrow subscriber wants layer %d, want 0", got)
	}
	d.SetPreferredLayer("f")
	if got := d.want.Load(); got != 2 {
		t.Errorf("preferring f: wants layer %d, want 2 at once", got)
	}
	if d.PreferredLayer() != "f" {
		t.Errorf("PreferredLayer() = %q", d.PreferredLayer())
	}

	// f is paused: h, the best layer no larger, until it is back; f is
	// still needed.
	time.Sleep(layerIdle + 100*time.Millisecond)
	send(2, true)
	sel.tick(time.Now())
	if got, ideal := d.want.Load(), d.ideal.Load(); got != 1 || ideal != 2 {
		t.Errorf("f paused: wants %d and needs %d, want 1 (h) and 2 (f)", got, ideal)
	}
	if infos := src.Layers(); infos[2].Active {
		t.Errorf("paused layer f reported active: %+v", infos[2])
	}

	// No preference: the size rules again.
	d.SetPreferredLayer("")
	sel.tick(time.Now())
	if got := d.want.Load(); got != 0 {
		t.Errorf("no preference: wants layer %d, want 0", got)
	}
}

// TestSimulcastInitialLayer: a subscriber's first picture comes from the
// initial layer it asked for, the lowest or the highest, whatever its
// bandwidth; after it, its layer is chosen as always.
func TestSimulcastInitialLayer(t *testing.T) {
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond))
	src.selectEvery = time.Hour // the test measures and decides itself
	defer src.Close()
	pub := newSimulcastPublisher(t, src)
	sel := src.selectorOf()
	pub.frame(true)
	sel.tick(time.Now())
	for range 40 {
		time.Sleep(30 * time.Millisecond)
		pub.frame(false)
		if time.Since(sel.last) >= 250*time.Millisecond {
			sel.tick(time.Now())
		}
	}
	narrow := pub.layers[0].peakRate.Load() * 2 // fits the lowest layer only

	for _, c := range []struct {
		name          string
		initial       InitialLayer
		budget        int64
		first, second int32 // the slots: first for the first picture, then
	}{
		{"highest, on a narrow link", InitialHighest, narrow, 2, 0},
		{"lowest, unlimited", InitialLowest, 0, 0, 2},
		{"chosen, on a narrow link", InitialChosen, narrow, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, w := bindDownWith(t, src, nil, func(d *DownTrack) {
				d.SetInitialLayer(c.initial)
				d.SetBitrateBudget(c.budget)
			})
			defer d.Close()
			if got := d.want.Load(); got != c.first {
				t.Fatalf("before its first picture it wants layer %d, want %d", got, c.first)
			}
			// Its first picture: the cached one of that layer, or the
			// next keyframe.
			pub.frame(true)
			d.barrier()
			if got := w.layersGot(); len(got) == 0 || int32(got[0]) != c.first+1 {
				t.Fatalf("its first packets came from layers %v, want %d", got, c.first+1)
			}
			sel.tick(time.Now())
			if got := d.want.Load(); got != c.second {
				t.Errorf("after its first picture it wants layer %d, want %d", got, c.second)
			}
		})
	}
}
