package main

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// tally is what one receiver got: which of the publisher's packets (by
// the counter in their payload, so duplicates count once), how many bytes,
// when the first came, and how late the packets of the measured window
// were.
type tally struct {
	mu      sync.Mutex
	seen    []uint64 // bit i: packet i arrived
	first   time.Time
	latency histogram
	measure bool   // record latency
	arrived uint64 // packets, duplicates included
	lower   uint64 // of those, packets of a lower simulcast layer, which have no counter of the publisher's
	rtx     uint64 // of those, packets that came in the retransmission stream: answers to NACKs, and probes' padding
}

// add records the arrival at now of the packet with counter c, sent at
// sent (unix nanoseconds).
func (t *tally) add(c uint64, sent int64, now time.Time) { t.note(c, true, sent, now, false) }

// note records the arrival at now of a packet sent at sent (unix
// nanoseconds): with counted, the packet of the publisher's counter c;
// without, a packet of a lower simulcast layer. rtx: it came in the
// retransmission stream.
func (t *tally) note(c uint64, counted bool, sent int64, now time.Time, rtx bool) {
	t.mu.Lock()
	if t.first.IsZero() {
		t.first = now
	}
	if rtx {
		t.rtx++
	}
	if !counted {
		t.lower++
		t.arrived++
		if t.measure {
			t.latency.add(time.Duration(now.UnixNano() - sent))
		}
		t.mu.Unlock()
		return
	}
	w := int(c / 64)
	if w >= len(t.seen) {
		if w > 1<<24 { // a counter that cannot be ours
			t.mu.Unlock()
			return
		}
		t.seen = slices.Grow(t.seen, w+1-len(t.seen))[:w+1]
	}
	t.seen[w] |= 1 << (c % 64)
	t.arrived++
	if t.measure {
		t.latency.add(time.Duration(now.UnixNano() - sent))
	}
	t.mu.Unlock()
}

// firstAt returns when the first packet arrived, zero if none did.
func (t *tally) firstAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first
}

// arrivals returns how many packets arrived, duplicates included.
func (t *tally) arrivals() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.arrived
}

// extra returns how many of the arrivals were of a lower simulcast layer,
// and how many came in the retransmission stream.
func (t *tally) extra() (lower, rtx uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lower, t.rtx
}

func (t *tally) setMeasure(on bool) {
	t.mu.Lock()
	t.measure = on
	t.mu.Unlock()
}

// count returns how many distinct packets with counters in [from, to)
// arrived.
func (t *tally) count(from, to uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n uint64
	for c := from; c < to; {
		w := int(c / 64)
		if w >= len(t.seen) {
			break
		}
		word := t.seen[w] >> (c % 64)
		take := min(64-c%64, to-c)
		if take < 64 {
			word &= 1<<take - 1
		}
		n += uint64(bits.OnesCount64(word))
		c += take
	}
	return n
}

// histogram counts durations in buckets 2% apart, from 1 µs to about
// 100 s: percentiles come out within 2%.
type histogram struct {
	b [histBuckets]uint32
	n uint64
}

const (
	histBuckets = 1000
	histRatio   = 1.02
)

var logHistRatio = math.Log(histRatio)

func (h *histogram) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = min(histBuckets-1, int(math.Log(us)/logHistRatio))
	}
	h.b[i]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.b {
		h.b[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1), the middle of its bucket.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var acc uint64
	for i, c := range h.b {
		acc += uint64(c)
		if acc >= rank {
			us := math.Pow(histRatio, float64(i)+0.5)
			return time.Duration(us * float64(time.Microsecond))
		}
	}
	return 0
}

// percentile returns the q-quantile of ds, which it sorts.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// udpDrops returns the datagrams the kernel dropped for lack of room in a
// receive buffer (RcvbufErrors of /proc/net/snmp), machine-wide.
func udpDrops() (uint64, error) {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/net/snmp: no Udp RcvbufErrors")
}

// cpuSample is the CPU time of the server, of the bench and of the whole
// machine at one moment.
type cpuSample struct {
	at       time.Time
	server   time.Duration // the server process and the children it waited for
	children time.Duration // of which the children: ffmpeg making a recording's thumbnails
	self     time.Duration
	machine  time.Duration
	drops    uint64
}

func sampleCPU(serverPID int) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	var err error
	if s.server, err = procstat.ProcessCPU(serverPID); err != nil {
		return s, fmt.Errorf("server CPU: %w", err)
	}
	if s.children, err = procstat.ChildrenCPU(serverPID); err != nil {
		return s, fmt.Errorf("server CPU: %w", err)
	}
	s.server += s.children
	if s.self, err = procstat.ProcessCPU(os.Getpid()); err != nil {
		return s, err
	}
	if s.machine, err = procstat.MachineCPU(); err != nil {
		return s, err
	}
	if s.drops, err = udpDrops(); err != nil {
		return s, err
	}
	return s, nil
}

// processRSS returns the resident memory of process pid (VmRSS of
// /proc/PID/status) in bytes, 0 if it cannot be read.
func processRSS(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
