package forward

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// watchdog fails the test with every goroutine's stack if the progress
// counter stops moving for stall, and stops when done is closed. A stuck
// forwarding path shows as a stopped counter, which -race cannot see.
func watchdog(t *testing.T, progress *atomic.Int64, stall time.Duration, done <-chan struct{}) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		last, lastAt := progress.Load(), time.Now()
		tick := time.NewTicker(stall / 10)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if n := progress.Load(); n != last {
				last, lastAt = n, time.Now()
				continue
			}
			if time.Since(lastAt) < stall {
				continue
			}
			buf := make([]byte, 1<<22)
			buf = buf[:runtime.Stack(buf, true)]
			os.Stderr.Write(buf)
			// Fatal from a goroutine other than the test's would not stop
			// the test; the stuck goroutines will never return, so end
			// the process after printing the stacks.
			t.Errorf("no progress for %v: the stacks of every goroutine are above", stall)
			os.Exit(2)
		}
	})
	return &wg
}

// gatedWriter is a subscriber's write stream that blocks while its gate is
// closed, as a socket or an encryption that fell behind does.
type gatedWriter struct {
	mu   sync.Mutex
	open chan struct{} // closed while writes pass
	n    atomic.Int64
}

func newGatedWriter() *gatedWriter {
	w := &gatedWriter{open: make(chan struct{})}
	close(w.open)
	return w
}

func (w *gatedWriter) block() {
	w.mu.Lock()
	w.open = make(chan struct{})
	w.mu.Unlock()
}

func (w *gatedWriter) release() {
	w.mu.Lock()
	select {
	case <-w.open:
	default:
		close(w.open)
	}
	w.mu.Unlock()
}

func (w *gatedWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	open := w.open
	w.mu.Unlock()
	<-open
	w.n.Add(1)
	return 12 + len(payload), nil
}

func (w *gatedWriter) Write(b []byte) (int, error) { return len(b), nil }

type gatedContext struct {
	fakeContext
	gw   *gatedWriter
	feed *rtcpFeed
}

func (c gatedContext) WriteStream() webrtc.TrackLocalWriter { return c.gw }
func (c gatedContext) RTCPReader() interceptor.RTCPReader   { return c.feed }

// bindGated adds a subscriber of src whose writes block while its gate
// is closed; the RTCP feed is closed when the test ends.
func bindGated(t *testing.T, src *Source) (*DownTrack, *gatedWriter) {
	t.Helper()
	gw := newGatedWriter()
	d, err := src.NewDownTrack()
	if err != nil {
		t.Fatal(err)
	}
	feed := newRTCPFeed()
	t.Cleanup(feed.close)
	if _, err := d.Bind(gatedContext{fakeContext{codecs: []webrtc.RTPCodecParameters{testVP8}}, gw, feed}); err != nil {
		t.Fatal(err)
	}
	return d, gw
}

// TestStartWhileSubscribersChange is the deadlock the cached-keyframe
// replay brought: one subscriber's writes are stuck, a subscriber starts
// (replaying the cached keyframe) while another is added and the publisher
// sends. With the publisher's fan-out waiting for nobody, everything but
// the stuck subscriber goes on.
func TestStartWhileSubscribersChange(t *testing.T) {
	var progress atomic.Int64
	done := make(chan struct{})
	wd := watchdog(t, &progress, 5*time.Second, done)
	defer func() { close(done); wd.Wait() }()

	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond))
	defer src.Close()
	up := src.Attach(testVP8, func() {})
	d, stuck := bindGated(t, src)
	d.Start()
	seq := uint16(0)
	send := func() {
		seq++
		if err := up.WriteRTP(vp8Packet(7, seq, seq%30 == 1)); err != nil {
			t.Error(err)
		}
		progress.Add(1)
	}
	for range 5 {
		send()
	}
	stuck.block()
	defer stuck.release()
	send() // the stuck subscriber's writer now waits in WriteRTP

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // the publisher
		for {
			select {
			case <-stop:
				return
			default:
			}
			send()
			time.Sleep(100 * time.Microsecond)
		}
	})
	wg.Go(func() { // subscribers come and go
		for {
			select {
			case <-stop:
				return
			default:
			}
			d, w := bindDown(t, src, nil)
			_ = w
			progress.Add(1)
			d.Close()
		}
	})
	for range 200 { // subscribers start, replaying the cached keyframe
		d, err := src.NewDownTrack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Bind(fakeContext{codecs: []webrtc.RTPCodecParameters{testVP8}, w: &recorder{}}); err != nil {
			t.Fatal(err)
		}
		d.Start()
		progress.Add(1)
		d.Close()
	}
	close(stop)
	wg.Wait()
}

// TestForwardingInterleaved drives every entry point of a source from many
// goroutines at once for a while — subscribers created, bound, started and
// closed, NACKs and PLIs, publishers attaching, detaching and sending —
// under the watchdog, and then checks that a subscriber that stayed gets
// a continuous stream.
func TestForwardingInterleaved(t *testing.T) {
	duration := 3 * time.Second
	if testing.Short() {
		duration = 500 * time.Millisecond
	}
	var progress atomic.Int64
	done := make(chan struct{})
	wd := watchdog(t, &progress, 10*time.Second, done)
	defer func() { close(done); wd.Wait() }()

	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher", WithKeyframeInterval(time.Millisecond))
	var requests atomic.Int64
	up := atomic.Pointer[Upstream]{}
	up.Store(src.Attach(testVP8, func() { requests.Add(1) }))

	stayFeed := newRTCPFeed()
	defer stayFeed.close()
	_, stay := bindDown(t, src, stayFeed)

	stop := make(chan struct{})
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	var wg sync.WaitGroup
	var seq atomic.Uint32
	wg.Go(func() { // the publisher
		for running() {
			s := uint16(seq.Add(1))
			u := up.Load()
			if err := u.WriteRTP(vp8Packet(7, s, s%60 == 1)); err != nil && err != ErrDetached {
				t.Error(err)
			}
			progress.Add(1)
			if s%64 == 0 {
				time.Sleep(200 * time.Microsecond)
			}
		}
	})
	wg.Go(func() { // the publisher reconnects now and then
		for running() {
			time.Sleep(50 * time.Millisecond)
			old := up.Load()
			up.Store(src.Attach(testVP8, func() { requests.Add(1) }))
			old.Detach()
			progress.Add(1)
		}
	})
	for range 4 { // subscribers churn, NACK and ask for keyframes
		wg.Go(func() {
			for running() {
				feed := newRTCPFeed()
				d, err := src.NewDownTrack()
				if err != nil {
					t.Error(err)
					return
				}
				gw := newGatedWriter()
				if _, err := d.Bind(gatedContext{fakeContext{codecs: []webrtc.RTPCodecParameters{testVP8}}, gw, feed}); err != nil {
					t.Error(err)
					return
				}
				d.Start()
				gw.block()
				feed.ch <- mustMarshal(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{1, 2, 3, 4})})
				feed.ch <- mustMarshal(t, &rtcp.PictureLossIndication{MediaSSRC: 4242})
				src.RequestKeyframe()
				time.Sleep(time.Millisecond)
				gw.release()
				d.Close()
				feed.close()
				progress.Add(1)
			}
		})
	}
	time.Sleep(duration)
	close(stop)
	wg.Wait()
	if n := progress.Load(); n < 100 {
		t.Errorf("only %d steps of progress", n)
	}

	// Quiet now: the subscriber that stayed gets what follows, in order,
	// once the next keyframe comes.
	final := src.Attach(testVP8, nil)
	before := len(stay.headers())
	for s := uint16(1); s <= 50; s++ {
		if err := final.WriteRTP(vp8Packet(9, 30000+s, s == 1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(stay.headers()) >= before+50 })
	got := stay.headers()[before:]
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("after the churn, packet %d has sequence %d after %d", i, got[i].SequenceNumber, got[i-1].SequenceNumber)
		}
	}
	src.Close()
}

func mustMarshal(t testing.TB, p rtcp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStuckSubscribersHoldBackNobody: subscribers whose writes never
// return — more of them than there are workers — hold back neither the
// publisher nor the subscribers that keep up, and drop what does not fit
// in their queues.
func TestStuckSubscribersHoldBackNobody(t *testing.T) {
	var progress atomic.Int64
	done := make(chan struct{})
	wd := watchdog(t, &progress, 10*time.Second, done)
	defer func() { close(done); wd.Wait() }()

	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher")
	defer src.Close()
	up := src.Attach(testVP8, func() {})
	var stuck []*DownTrack
	var gates []*gatedWriter
	for range writers.base + 3 {
		d, err := src.NewDownTrack()
		if err != nil {
			t.Fatal(err)
		}
		gw := newGatedWriter()
		gw.block()
		defer gw.release()
		feed := newRTCPFeed()
		defer feed.close()
		if _, err := d.Bind(gatedContext{fakeContext{codecs: []webrtc.RTPCodecParameters{testVP8}}, gw, feed}); err != nil {
			t.Fatal(err)
		}
		d.Start()
		stuck = append(stuck, d)
		gates = append(gates, gw)
	}
	var live []*recorder
	for range 20 {
		_, w := bindDown(t, src, nil)
		live = append(live, w)
	}
	const packets = 600
	for seq := uint16(1); seq <= packets; seq++ {
		if err := up.WriteRTP(vp8Packet(7, seq, seq == 1)); err != nil {
			t.Fatal(err)
		}
		progress.Add(1)
		time.Sleep(500 * time.Microsecond) // a publisher sends at a rate
	}
	for i, w := range live {
		waitFor(t, func() bool { return len(w.headers()) == packets })
		for j, h := range w.headers() {
			if h.SequenceNumber != uint16(j+1) {
				t.Fatalf("subscriber %d packet %d has sequence %d", i, j, h.SequenceNumber)
			}
		}
	}
	for i, d := range stuck {
		if d.Dropped() == 0 {
			t.Errorf("stuck subscriber %d dropped nothing", i)
		}
	}
	// Released, the stuck subscribers get video again from the next
	// keyframe on.
	for _, gw := range gates {
		gw.release()
	}
	before := make([]int64, len(gates))
	for i, gw := range gates {
		before[i] = gw.n.Load()
	}
	for seq := uint16(packets + 1); seq <= packets+100; seq++ {
		if err := up.WriteRTP(vp8Packet(7, seq, seq == packets+50)); err != nil {
			t.Fatal(err)
		}
		progress.Add(1)
		time.Sleep(100 * time.Microsecond)
	}
	for i, gw := range gates {
		waitFor(t, func() bool { return gw.n.Load() >= before[i]+50 })
	}
}
