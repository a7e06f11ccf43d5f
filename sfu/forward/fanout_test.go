package forward

import (
	"bytes"
	"fmt"
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

var testVP8 = webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}

// rtcpFeed is a subscriber's RTCP as the DownTrack reads it.
type rtcpFeed struct {
	ch   chan []byte
	done chan struct{}
	once sync.Once
}

func newRTCPFeed() *rtcpFeed { return &rtcpFeed{ch: make(chan []byte), done: make(chan struct{})} }

func (f *rtcpFeed) Read(b []byte, _ interceptor.Attributes) (int, interceptor.Attributes, error) {
	select {
	case p := <-f.ch:
		return copy(b, p), nil, nil
	case <-f.done:
		return 0, nil, ErrClosed
	}
}

func (f *rtcpFeed) send(t testing.TB, pkts ...rtcp.Packet) {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	f.ch <- b
}

func (f *rtcpFeed) close() { f.once.Do(func() { close(f.done) }) }

// feedContext binds a DownTrack whose RTCP comes from a feed.
type feedContext struct {
	fakeContext
	feed *rtcpFeed
}

func (c feedContext) RTCPReader() interceptor.RTCPReader { return c.feed }

// bindDown adds a started subscriber of src that records what it gets.
func bindDown(t testing.TB, src *Source, feed *rtcpFeed) (*DownTrack, *recorder) {
	t.Helper()
	return bindDownWith(t, src, feed, nil)
}

// bindDownWith is bindDown with setup applied to the track before it
// starts.
func bindDownWith(t testing.TB, src *Source, feed *rtcpFeed, setup func(*DownTrack)) (*DownTrack, *recorder) {
	t.Helper()
	d, err := src.NewDownTrack()
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(d)
	}
	w := &recorder{}
	ctx := fakeContext{codecs: []webrtc.RTPCodecParameters{
		{PayloadType: 120, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}}, w: w}
	var bind webrtc.TrackLocalContext = ctx
	if feed != nil {
		bind = feedContext{ctx, feed}
	}
	if _, err := d.Bind(bind); err != nil {
		t.Fatal(err)
	}
	d.Start()
	d.barrier() // the stream starts before what the test writes next
	return d, w
}

// vp8Packet is upstream packet seq; key makes it the start of a keyframe.
func vp8Packet(ssrc uint32, seq uint16, key bool) *rtp.Packet {
	payload := []byte{0x10, 0x01, byte(seq), byte(seq >> 8)}
	if key {
		payload[1] = 0x00
	}
	return &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: ssrc, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: payload}
}

func (r *recorder) headers() []rtp.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rtp.Header(nil), r.got...)
}

func TestNACKRetransmitsFromSource(t *testing.T) {
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher")
	up := src.Attach(testVP8, nil)
	feed := newRTCPFeed()
	defer feed.close()
	d, w := bindDown(t, src, feed)

	// The upstream starts at 1000: the subscriber's stream maps it to
	// itself, so make the publisher switch once to get an offset.
	for seq := uint16(1000); seq < 1010; seq++ {
		if err := up.WriteRTP(vp8Packet(7, seq, seq == 1000)); err != nil {
			t.Fatal(err)
		}
	}
	up = src.Attach(testVP8, nil)
	for seq := uint16(5000); seq < 5020; seq++ {
		if err := up.WriteRTP(vp8Packet(8, seq, seq == 5000)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(w.headers()) >= 30 })
	sent := w.headers()
	if len(sent) != 30 {
		t.Fatalf("forwarded %d packets, want 30", len(sent))
	}
	// Packets 1010, 1012, 1013 of the subscriber's stream are upstream
	// 5000, 5002 and 5003; 1001 belongs to the previous upstream, gone
	// from the mapping; 1040 was never sent.
	lost := []uint16{1010, 1012, 1013, 1001, 1040}
	feed.send(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers(lost)})
	want := []uint16{1010, 1012, 1013}
	var got []rtp.Header
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		got = w.headers()[30:]
	}
	time.Sleep(20 * time.Millisecond)
	got = w.headers()[30:]
	if len(got) != len(want) {
		t.Fatalf("retransmitted %d packets, want %d: %+v", len(got), len(want), got)
	}
	for i, h := range got {
		first := sent[h.SequenceNumber-1000]
		if h.SequenceNumber != want[i] || h.SSRC != 4242 || h.PayloadType != 120 || h.Timestamp != first.Timestamp {
			t.Errorf("retransmission %d got seq %d SSRC %d PT %d ts %d, want seq %d SSRC 4242 PT 120 ts %d",
				i, h.SequenceNumber, h.SSRC, h.PayloadType, h.Timestamp, want[i], first.Timestamp)
		}
	}

	// A NACK for another SSRC is not this track's.
	feed.send(t, &rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{1010})})
	time.Sleep(20 * time.Millisecond)
	d.barrier()
	if n := len(w.headers()); n != 33 {
		t.Errorf("after a NACK for another SSRC: %d packets, want 33", n)
	}
}

// TestNACKRetransmitsRTX: a subscriber that negotiated RTX (RFC 4588)
// gets what it lost in the retransmission stream: its SSRC and payload
// type, sequence numbers of its own, and the lost packet's sequence
// number before its payload.
// rtxContext binds a subscriber that negotiated VP8 (120) with RTX (121)
// in a retransmission stream of SSRC 4343.
func rtxContext(w *recorder) fakeContext {
	return fakeContext{w: w, rtx: 4343, codecs: []webrtc.RTPCodecParameters{
		{PayloadType: 120, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}},
		{PayloadType: 121, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=120"}},
	}}
}

func TestNACKRetransmitsRTX(t *testing.T) {
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher")
	up := src.Attach(testVP8, nil)
	feed := newRTCPFeed()
	defer feed.close()
	d, err := src.NewDownTrack()
	if err != nil {
		t.Fatal(err)
	}
	w := &recorder{}
	ctx := rtxContext(w)
	if _, err := d.Bind(feedContext{ctx, feed}); err != nil {
		t.Fatal(err)
	}
	d.Start()
	d.barrier()
	for seq := uint16(1000); seq < 1010; seq++ {
		if err := up.WriteRTP(vp8Packet(7, seq, seq == 1000)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(w.headers()) >= 10 })
	sent := w.headers()
	lost := []uint16{sent[3].SequenceNumber, sent[5].SequenceNumber}
	feed.send(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers(lost)})
	waitFor(t, func() bool { return len(w.headers()) >= 12 })
	w.mu.Lock()
	got, payloads := append([]rtp.Header(nil), w.got[10:]...), w.payloads[10:]
	orig := w.payloads[3]
	w.mu.Unlock()
	for i, h := range got {
		osn := uint16(payloads[i][0])<<8 | uint16(payloads[i][1])
		if h.SSRC != 4343 || h.PayloadType != 121 || osn != lost[i] {
			t.Errorf("retransmission %d: SSRC %d PT %d OSN %d, want SSRC 4343 PT 121 OSN %d", i, h.SSRC, h.PayloadType, osn, lost[i])
		}
	}
	if got[1].SequenceNumber != got[0].SequenceNumber+1 {
		t.Errorf("the retransmission stream's sequence numbers %d, %d: want consecutive", got[0].SequenceNumber, got[1].SequenceNumber)
	}
	if !bytes.Equal(payloads[0][2:], orig) || got[0].Timestamp != sent[3].Timestamp {
		t.Errorf("the retransmission's payload or timestamp differs from the packet's")
	}
}

func TestFanoutKeepsOrder(t *testing.T) {
	for _, n := range []int{1, 16, 83} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher")
			up := src.Attach(testVP8, nil)
			var ws []*recorder
			for range n {
				_, w := bindDown(t, src, nil)
				ws = append(ws, w)
			}
			const packets = 200
			for seq := uint16(0); seq < packets; seq++ {
				if err := up.WriteRTP(vp8Packet(7, 60000+seq, seq == 0)); err != nil {
					t.Fatal(err)
				}
			}
			// The writers may still be writing.
			deadline := time.Now().Add(5 * time.Second)
			for _, w := range ws {
				for len(w.headers()) < packets && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
			}
			for i, w := range ws {
				got := w.headers()
				if len(got) != packets {
					t.Fatalf("subscriber %d got %d packets, want %d", i, len(got), packets)
				}
				for j, h := range got {
					if h.SequenceNumber != 60000+uint16(j) {
						t.Fatalf("subscriber %d packet %d got seq %d, want %d", i, j, h.SequenceNumber, 60000+uint16(j))
					}
				}
			}
			src.Close()
		})
	}
}

// TestCloseWhileForwarding closes subscribers and the source while packets
// are being written; run it with -race.
func TestCloseWhileForwarding(t *testing.T) {
	before := runtime.NumGoroutine()
	src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher")
	up := src.Attach(testVP8, nil)
	var downs []*DownTrack
	var feeds []*rtcpFeed
	for range 96 {
		feed := newRTCPFeed()
		d, _ := bindDown(t, src, feed)
		downs = append(downs, d)
		feeds = append(feeds, feed)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := up.WriteRTP(vp8Packet(7, seq, seq%50 == 0)); err != nil {
				return
			}
		}
	})
	// Subscribers NACK and leave while packets flow; others join.
	for i, d := range downs {
		if i%2 == 0 {
			feeds[i].send(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{1, 2, 3})})
		}
		d.Close()
		feeds[i].close()
		if i%8 == 0 {
			feed := newRTCPFeed()
			bindDown(t, src, feed)
			feeds = append(feeds, feed)
		}
	}
	src.Close()
	close(stop)
	wg.Wait()
	for _, f := range feeds {
		f.close()
	}
	if err := up.WriteRTP(vp8Packet(7, 1, true)); err != ErrDetached {
		t.Errorf("WriteRTP after Close got %v, want ErrDetached", err)
	}
	// Every goroutine a DownTrack or WriteRTP started ends.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after, %d before", n, before)
	}
}

// nullWriter is a subscriber's write stream that only counts.
type nullWriter struct{ n atomic.Int64 }

func (w *nullWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.n.Add(1)
	return 12 + len(payload), nil
}

func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkWriteRTP measures the forwarding code itself, per packet
// written upstream and forwarded to every subscriber, with writes that
// cost nothing: queueing, the writers' wake-ups and the rewriting.
func BenchmarkWriteRTP(b *testing.B) {
	for _, n := range []int{10, 200} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			src := NewSource(webrtc.RTPCodecTypeVideo, "video", "publisher")
			up := src.Attach(testVP8, nil)
			var downs []*DownTrack
			var writers []*nullWriter
			for range n {
				d, err := src.NewDownTrack()
				if err != nil {
					b.Fatal(err)
				}
				w := &nullWriter{}
				if _, err := d.Bind(nullContext{fakeContext{codecs: []webrtc.RTPCodecParameters{testVP8}}, w}); err != nil {
					b.Fatal(err)
				}
				d.Start()
				downs = append(downs, d)
				writers = append(writers, w)
			}
			first := vp8Packet(7, 0, true)
			payload := make([]byte, 1200)
			payload[0] = 0x10
			if err := up.WriteRTP(first); err != nil {
				b.Fatal(err)
			}
			// WriteRTP keeps its packets: each is new, as pion's
			// TrackRemote.ReadRTP returns them (one allocation an
			// operation is the benchmark's own).
			b.ReportAllocs()
			b.ResetTimer()
			for i := 1; b.Loop(); i++ {
				p := &rtp.Packet{Header: first.Header, Payload: payload}
				p.SequenceNumber = uint16(i)
				if err := up.WriteRTP(p); err != nil {
					b.Fatal(err)
				}
				if i%64 == 0 {
					// Keep the queues from overflowing: a real publisher
					// sends at a rate, not as fast as it can.
					downs[len(downs)-1].barrier()
				}
			}
			for _, d := range downs {
				d.barrier()
			}
			b.StopTimer()
			dropped := uint64(0)
			for _, d := range downs {
				dropped += d.Dropped()
			}
			src.Close()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/copy")
			b.ReportMetric(float64(dropped)/float64(b.N*n), "dropped/copy")
		})
	}
}

type nullContext struct {
	fakeContext
	w *nullWriter
}

func (c nullContext) WriteStream() webrtc.TrackLocalWriter { return c.w }
