// Package bwe estimates the bandwidth of the path from the server to one
// subscriber, from the subscriber's transport-wide congestion control
// feedback (TWCC, draft-holmer-rmcat-transport-wide-cc-extensions-01),
// so that the subscriber gets the simulcast layer its path can carry.
//
// Congestion is detected by pion's implementation of Google Congestion
// Control (the delay gradient of packet groups, and loss): when it sees
// the path overused or lossy, the estimate falls to what it measures. Its
// rate controller's increases are not followed, though: they rise by 8% a
// second whatever is sent, so they say nothing of what the path carries
// above the rate a subscriber gets now, and they are slow. The estimate
// rises only to what was carried without congestion: what is sent, and
// probes: when a subscriber could use a higher layer, the
// server sends padding (copies of packets, in the retransmission stream)
// until the subscriber receives at that layer's bitrate for a moment; if
// the path carries it without congestion, the estimate becomes that rate.
// A probe that fails makes the next wait longer, up to maxBackoff.
package bwe

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// Tuning. A probe lasts probeLength, then its feedback is awaited for
// probeSettle before it counts as passed.
const (
	initialEstimate = 1_000_000 // bits per second, until the path says otherwise
	minEstimate     = 100_000
	maxEstimate     = 20_000_000
	probeLength     = time.Second
	probeSettle     = 500 * time.Millisecond
	probeOver       = 1.05
	probeReached    = 0.9                    // of its rate a probe must have sent to count
	probeDelivered  = 0.6                    // of its rate the subscriber must have received
	probeQueued     = 30 * time.Millisecond  // delay growth over a probe that tells a queue
	probeGap        = 500 * time.Millisecond // between two probes
	minBackoff      = 2 * time.Second        // after a failed probe, or congestion
	maxBackoff      = 3 * time.Second
	maxProbeStep    = 3.0 // a probe goes at most this far above the estimate
	decreaseEvery   = 300 * time.Millisecond
	lossCongested   = 0.10 // average loss over which the path is congested
	rateSmoothing   = 0.3
	steadyAfter     = 2 * time.Second // without congestion or probe, for what is sent to count
)

// Estimator is the bandwidth estimate of one subscriber's peer connection.
// Its interceptors (Interceptors) go in that connection's registry; its
// owner calls Update a few times a second. It is safe for concurrent use.
type Estimator struct {
	logs logging.LoggerFactory

	// stats reads the congestion controller: pion's GCC, once the
	// connection's interceptors are built.
	stats     atomic.Pointer[func() map[string]any]
	feedback  atomic.Bool   // the subscriber sends TWCC feedback
	sentBytes atomic.Uint64 // RTP bytes sent, padding included

	pacer directPacer
	recv  delivered // what the subscriber receives

	mu          sync.Mutex
	estimate    float64
	sendRate    float64
	lastAt      time.Time
	lastBytes   uint64
	lastDecr    time.Time
	backoff     time.Duration
	nextProbe   time.Time
	probeRate   float64   // bits per second probed for; 0: no probe
	probeEnd    time.Time // padding stops
	probeFailed bool      // congestion seen since the probe started
	probeDone   time.Time // when the last probe ended
	probeStart  time.Time
	probeBytes  uint64  // sentBytes when the probe started
	probeSent   uint64  // bytes sent during the probe
	probeRecv   float64 // the rate at which what it sent arrived
}

// New returns an estimator; logs receives the congestion controller's
// logging.
func New(logs logging.LoggerFactory) *Estimator {
	return &Estimator{logs: logs, estimate: initialEstimate, backoff: minBackoff,
		pacer: directPacer{writers: map[uint32]interceptor.RTPWriter{}, rtx: map[uint32]uint32{}}}
}

// Interceptors returns the interceptor factories e needs in the
// subscriber's registry, in order, after the others: the congestion
// controller, e's own, which counts what is sent and reads the feedback,
// and the transport-wide sequence numbers both read.
func (e *Estimator) Interceptors() ([]interceptor.Factory, error) {
	controller, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(initialEstimate),
			gcc.SendSideBWEMinBitrate(minEstimate),
			gcc.SendSideBWEMaxBitrate(maxEstimate),
			gcc.SendSideBWEPacer(&e.pacer),
			gcc.WithLoggerFactory(e.logs),
		)
	})
	if err != nil {
		return nil, err
	}
	controller.OnNewPeerConnection(func(_ string, b cc.BandwidthEstimator) {
		if g, ok := b.(*gcc.SendSideBWE); ok {
			stats := g.GetStats
			e.stats.Store(&stats)
		}
	})
	seq, err := twcc.NewHeaderExtensionInterceptor()
	if err != nil {
		return nil, err
	}
	// The watch comes before the sequence numbers, so that it sees the
	// number each packet leaves with.
	return []interceptor.Factory{controller, watchFactory{e}, seq}, nil
}

// HasFeedback reports whether the subscriber sends TWCC feedback; without
// it there is no estimate, and nothing should be limited by one.
func (e *Estimator) HasFeedback() bool { return e.feedback.Load() }

// Update advances the estimate to now and returns it, in bits per second,
// with how many bytes of padding to send now. want is the bitrate the
// subscriber could use (0 when it has what it needs): above the estimate,
// it is probed for.
func (e *Estimator) Update(now time.Time, want int64) (estimate int64, pad int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sent := e.sentBytes.Load()
	dt := now.Sub(e.lastAt).Seconds()
	if e.lastAt.IsZero() || dt <= 0 {
		e.lastAt, e.lastBytes = now, sent
		return int64(e.estimate), 0
	}
	inst := float64(sent-e.lastBytes) * 8 / dt
	e.lastAt, e.lastBytes = now, sent
	e.sendRate += rateSmoothing * (inst - e.sendRate)

	read := e.stats.Load()
	if read == nil || !e.feedback.Load() {
		return int64(e.estimate), 0
	}
	stats := (*read)()
	usage, _ := stats["usage"].(string)
	loss, _ := stats["averageLoss"].(float64)
	delayTarget, _ := stats["delayTargetBitrate"].(int)
	lossTarget, _ := stats["lossTargetBitrate"].(int)
	controller := float64(min(delayTarget, lossTarget))

	recv := e.recv.bitrate()
	// The controller's target is not followed: on a busy machine a
	// moment's overuse comes from a late thread as much as from the path,
	// and each makes it fall. Overuse that lasts, or loss, is congestion.
	if usage == "overuse" || loss > lossCongested {
		if e.probeRate > 0 {
			e.probeFailed = true
		}
		if now.Sub(e.lastDecr) >= decreaseEvery {
			// Down to what the controller measured, or to a little
			// under what is sent if it has not reacted yet.
			// Down to a little under what the subscriber receives;
			// without that, to what the controller measured, or a
			// little under what is sent if it has not reacted yet.
			next := e.estimate
			switch {
			case recv > 0:
				next = min(next, 0.85*recv)
			case controller > 0 && controller < next:
				next = controller
			default:
				next = min(next, 0.85*e.sendRate)
			}
			e.estimate = max(next, minEstimate)
			e.lastDecr = now
			e.nextProbe = now.Add(e.backoff)
		}
	} else if recv > e.estimate && e.probeRate == 0 && now.Sub(e.lastDecr) > steadyAfter && now.Sub(e.probeDone) > steadyAfter {
		// Carrying more than estimated, without congestion, for a
		// while: what the subscriber receives is what the path carries.
		e.estimate = min(recv, maxEstimate)
	}

	switch {
	case e.probeRate > 0 && now.Before(e.probeEnd):
		if e.probeFailed {
			e.endProbe(now, false)
			break
		}
		// What the probe's rate should have sent by now, less what was
		// sent: media, retransmissions and padding alike.
		due := e.probeRate * now.Sub(e.probeStart).Seconds() / 8
		if missing := due - float64(sent-e.probeBytes); missing > 0 {
			pad = int(missing)
		}
	case e.probeRate > 0 && now.Before(e.probeEnd.Add(probeSettle)):
		if e.probeFailed {
			e.endProbe(now, false)
		}
	case e.probeRate > 0:
		// It passes if the probe's rate was sent, all of it, without
		// congestion, its packets took no longer to arrive at its end
		// than at its start (nothing queued on the path), and the
		// subscriber received most of it. What it
		// received is no finer a test than congestion: a receiver short
		// of CPU drops packets a free path delivered, and a path held
		// below the probe's rate may still deliver a share of it.
		sentRate := float64(e.probeSent) * 8 / probeLength.Seconds()
		e.probeRecv = e.recv.sendingRate()
		growth, seen := e.recv.delayGrowth()
		e.endProbe(now, !e.probeFailed && sentRate >= probeReached*e.probeRate && e.probeRecv >= probeDelivered*e.probeRate &&
			seen && growth < probeQueued)
	case want > int64(e.estimate) && !now.Before(e.nextProbe):
		// A little above what is wanted, so that a probe that passes
		// leaves room for it.
		e.probeRate = min(probeOver*float64(want), e.estimate*maxProbeStep, maxEstimate)
		e.probeStart, e.probeEnd = now, now.Add(probeLength)
		e.probeBytes, e.probeSent, e.probeRecv = sent, 0, 0
		e.recv.measureSending(now.UnixNano(), e.probeEnd.UnixNano())
		e.probeFailed = false
	}
	if e.probeRate > 0 && !now.After(e.probeEnd) {
		e.probeSent = sent - e.probeBytes
	}
	return int64(e.estimate), pad
}

// endProbe ends the probe: passed, the estimate becomes its rate.
func (e *Estimator) endProbe(now time.Time, passed bool) {
	if passed {
		e.estimate = max(e.estimate, e.probeRate)
		e.backoff = minBackoff
		e.nextProbe = now.Add(probeGap)
	} else {
		e.nextProbe = now.Add(e.backoff)
		e.backoff = min(2*e.backoff, maxBackoff)
	}
	e.probeRate = 0
	e.probeDone = now
}

// Probing reports whether a probe is under way.
func (e *Estimator) Probing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.probeRate > 0
}

// directPacer hands each packet on at once to the writer of its stream:
// the congestion controller's pacer, without pacing, and without a lock
// held while writing. A retransmission goes to its media stream's writer.
type directPacer struct {
	mu      sync.RWMutex
	writers map[uint32]interceptor.RTPWriter
	rtx     map[uint32]uint32 // retransmission SSRC → media SSRC
}

func (p *directPacer) SetTargetBitrate(int) {}

func (p *directPacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.mu.Lock()
	p.writers[ssrc] = w
	p.mu.Unlock()
}

func (p *directPacer) alias(rtxSSRC, ssrc uint32) {
	p.mu.Lock()
	p.rtx[rtxSSRC] = ssrc
	p.mu.Unlock()
}

func (p *directPacer) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	p.mu.RLock()
	w, ok := p.writers[h.SSRC]
	if !ok {
		w, ok = p.writers[p.rtx[h.SSRC]]
	}
	p.mu.RUnlock()
	if !ok {
		return 0, gcc.ErrUnknownStream
	}
	return w.Write(h, payload, a)
}

func (p *directPacer) Close() error { return nil }

// watchFactory makes the estimator's own interceptor: it counts the bytes
// sent, tells the pacer each stream's retransmission SSRC and notes when
// the subscriber's TWCC feedback arrives.
type watchFactory struct{ e *Estimator }

func (f watchFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &watch{e: f.e}, nil
}

type watch struct {
	interceptor.NoOp
	e *Estimator
}

func (w *watch) BindLocalStream(info *interceptor.StreamInfo, next interceptor.RTPWriter) interceptor.RTPWriter {
	if info.SSRCRetransmission != 0 {
		w.e.pacer.alias(info.SSRCRetransmission, info.SSRC)
	}
	var seqID uint8
	for _, x := range info.RTPHeaderExtensions {
		if x.URI == sdp.TransportCCURI {
			seqID = uint8(x.ID)
		}
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n, err := next.Write(h, payload, a)
		if n > 0 {
			w.e.sentBytes.Add(uint64(n))
			if x := h.GetExtension(seqID); seqID != 0 && len(x) == 2 {
				w.e.recv.sent(uint16(x[0])<<8|uint16(x[1]), n, time.Now().UnixNano())
			}
		}
		return n, err
	})
}

func (w *watch) BindRTCPReader(next interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := next.Read(b, a)
		if err == nil && hasTWCC(b[:n]) {
			w.e.feedback.Store(true)
			if pkts, err := rtcp.Unmarshal(b[:n]); err == nil {
				for _, p := range pkts {
					if fb, ok := p.(*rtcp.TransportLayerCC); ok {
						w.e.recv.feedback(fb)
					}
				}
			}
		}
		return n, a, err
	})
}

// hasTWCC reports whether a compound RTCP packet holds a transport-wide
// congestion control feedback message (RTPFB, FMT 15), from the headers.
func hasTWCC(b []byte) bool {
	for len(b) >= 4 {
		if b[1] == byte(rtcp.TypeTransportSpecificFeedback) && b[0]&0x1f == rtcp.FormatTCC {
			return true
		}
		size := (int(b[2])<<8 | int(b[3]) + 1) * 4
		if size > len(b) {
			return false
		}
		b = b[size:]
	}
	return false
}
