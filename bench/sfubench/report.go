package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// figures are the derived numbers of one measurement.
type figures struct {
	pps, mbps, loss          float64 // forwarded packets/s, Mbps on the wire, % lost
	cpu, usPerPkt, sPerGbit  float64 // server: % of one core, µs per packet, CPU s per Gbit
	child                    float64 // of the server's: its children's (thumbnails' ffmpeg), % of one core
	self, other              float64 // % of one core: the bench, everything else
	joinP50, joinP99         float64 // ms
	latP50, latP99           float64 // ms
	drops                    float64 // datagrams dropped by full receive buffers, machine-wide
	subscribed, failed, sent float64
	partJoinP50, partJoinP99 float64 // ms, a meeting's participants
	rssMB                    float64 // the server's resident memory at the end of the window
	lower                    float64 // % of the packets forwarded that were of a lower simulcast layer
	rtxPps                   float64 // of the packets forwarded, per second, those of the retransmission stream
}

func (m *measurement) figures() figures {
	secs := m.window.Seconds()
	f := figures{subscribed: float64(m.subscribed), failed: float64(m.failed), sent: float64(m.sent)}
	if secs <= 0 {
		return f
	}
	f.pps = float64(m.arrived) / secs
	f.rtxPps = float64(m.rtx) / secs
	if m.arrived > 0 {
		f.lower = 100 * float64(m.lower) / float64(m.arrived)
	}
	f.mbps = float64(m.wireBytes) * 8 / secs / 1e6
	expected := float64(m.sent) * float64(m.subscribed)
	if m.expected > 0 {
		expected = float64(m.expected)
	}
	if expected > 0 {
		f.loss = 100 * (1 - float64(m.received)/expected)
	}
	f.cpu = 100 * m.serverCPU.Seconds() / secs
	f.child = 100 * m.childCPU.Seconds() / secs
	if m.arrived > 0 {
		f.usPerPkt = float64(m.serverCPU.Microseconds()) / float64(m.arrived)
	}
	if m.wireBytes > 0 {
		f.sPerGbit = m.serverCPU.Seconds() / (float64(m.wireBytes) * 8 / 1e9)
	}
	f.self = 100 * m.selfCPU.Seconds() / secs
	f.other = 100 * max(0, (m.machineCPU-m.serverCPU-m.selfCPU).Seconds()) / secs
	joins := append([]time.Duration(nil), m.joins...)
	f.joinP50 = ms(percentile(joins, 0.50))
	f.joinP99 = ms(percentile(joins, 0.99))
	f.latP50 = ms(m.latency.quantile(0.50))
	f.latP99 = ms(m.latency.quantile(0.99))
	f.drops = float64(m.drops)
	parts := append([]time.Duration(nil), m.partJoins...)
	f.partJoinP50 = ms(percentile(parts, 0.50))
	f.partJoinP99 = ms(percentile(parts, 0.99))
	f.rssMB = float64(m.rssEnd) / (1 << 20)
	return f
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (m *measurement) summary() string {
	f := m.figures()
	s := fmt.Sprintf("%.0f packets/s, %.1f Mbps, loss %.3f%%, server CPU %.0f%% (%.1f µs/packet), bench CPU %.0f%%, other CPU %.0f%%, latency p50 %.1f ms p99 %.1f ms, rcvbuf drops %.0f",
		f.pps, f.mbps, f.loss, f.cpu, f.usPerPkt, f.self, f.other, f.latP50, f.latP99, f.drops)
	if m.lower > 0 || m.rtx > 0 {
		s += fmt.Sprintf(", %.0f RTX packets/s, %.1f%% of a lower layer", f.rtxPps, f.lower)
	}
	if len(m.joins) > 0 {
		s += fmt.Sprintf(", join p50 %.0f ms p99 %.0f ms, %d keyframe requests", f.joinP50, f.joinP99, m.plis)
	}
	if m.failed > 0 {
		s += fmt.Sprintf(", %d failed to join", m.failed)
	}
	return s
}

// medianFigures takes each figure's median over runs on its own.
func medianFigures(fs []figures) figures {
	pick := func(get func(figures) float64) float64 {
		xs := make([]float64, len(fs))
		for i, f := range fs {
			xs[i] = get(f)
		}
		return median(xs)
	}
	return figures{
		pps: pick(func(f figures) float64 { return f.pps }), mbps: pick(func(f figures) float64 { return f.mbps }),
		loss: pick(func(f figures) float64 { return f.loss }), cpu: pick(func(f figures) float64 { return f.cpu }),
		usPerPkt: pick(func(f figures) float64 { return f.usPerPkt }), sPerGbit: pick(func(f figures) float64 { return f.sPerGbit }),
		child: pick(func(f figures) float64 { return f.child }),
		self:  pick(func(f figures) float64 { return f.self }), other: pick(func(f figures) float64 { return f.other }),
		joinP50: pick(func(f figures) float64 { return f.joinP50 }), joinP99: pick(func(f figures) float64 { return f.joinP99 }),
		latP50: pick(func(f figures) float64 { return f.latP50 }), latP99: pick(func(f figures) float64 { return f.latP99 }),
		drops: pick(func(f figures) float64 { return f.drops }), subscribed: pick(func(f figures) float64 { return f.subscribed }),
		failed: pick(func(f figures) float64 { return f.failed }), sent: pick(func(f figures) float64 { return f.sent }),
		partJoinP50: pick(func(f figures) float64 { return f.partJoinP50 }), partJoinP99: pick(func(f figures) float64 { return f.partJoinP99 }),
		rssMB: pick(func(f figures) float64 { return f.rssMB }),
		lower: pick(func(f figures) float64 { return f.lower }), rtxPps: pick(func(f figures) float64 { return f.rtxPps }),
	}
}

// tables renders the SFU table and the relay table of one set of
// figures per subscriber count; with layers, the SFU's says what of the
// packets forwarded came in the retransmission stream and from lower
// simulcast layers.
func tables(b *strings.Builder, ns []int, sfu, relay []figures, layers bool) {
	head, rule, more := "", "", ""
	if layers {
		head, rule = " of which RTX packets/s | of a lower layer |", "---:|---:|"
	}
	b.WriteString("| subscribers | joined | packets/s forwarded |" + head + " Mbps on the wire | loss | SFU CPU (% of one core) | SFU CPU µs/packet | SFU CPU s/Gbit | join → first packet p50 / p99 ms | latency p50 / p99 ms | bench CPU (% of one core) | other CPU | rcvbuf drops |\n")
	b.WriteString("|---:|---:|---:|" + rule + "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, n := range ns {
		f := sfu[i]
		if layers {
			more = fmt.Sprintf(" %s | %s |", kilo(f.rtxPps), share(f.lower))
		}
		fmt.Fprintf(b, "| %d | %.0f | %s |%s %.0f | %s | %.0f%% | %.1f | %.2f | %.0f / %.0f | %.1f / %.1f | %.0f%% | %.0f%% | %.0f |\n",
			n, f.subscribed-f.failed, kilo(f.pps), more, f.mbps, pct(f.loss), f.cpu, f.usPerPkt, f.sPerGbit,
			f.joinP50, f.joinP99, f.latP50, f.latP99, f.self, f.other, f.drops)
	}
	if relay == nil {
		return
	}
	b.WriteString("\nPlain UDP relay of the same packets, same run:\n\n")
	b.WriteString("| subscribers | relay packets/s | relay Mbps | relay loss | relay CPU (% of one core) | relay CPU µs/packet | latency p50 / p99 ms | bench CPU | SFU / relay packet rate | relay / SFU CPU per packet |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, n := range ns {
		r, s := relay[i], sfu[i]
		rate, cost := 0.0, 0.0
		if r.pps > 0 {
			rate = 100 * s.pps / r.pps
		}
		if s.usPerPkt > 0 {
			cost = 100 * r.usPerPkt / s.usPerPkt
		}
		fmt.Fprintf(b, "| %d | %s | %.0f | %s | %.0f%% | %.1f | %.1f / %.1f | %.0f%% | %.0f%% | %.0f%% |\n",
			n, kilo(r.pps), r.mbps, pct(r.loss), r.cpu, r.usPerPkt, r.latP50, r.latP99, r.self, rate, cost)
	}
}

func kilo(x float64) string {
	if x >= 10000 {
		return fmt.Sprintf("%.1fk", x/1000)
	}
	return fmt.Sprintf("%.0f", x)
}

func pct(x float64) string {
	if x < 0.0005 {
		return "0"
	}
	return fmt.Sprintf("%.3f%%", x)
}

// share renders a percentage that is mostly 0 or whole.
func share(x float64) string {
	if x < 0.05 {
		return "0"
	}
	return fmt.Sprintf("%.1f%%", x)
}

// bweTable renders, per subscriber count, the server's figures with its
// bandwidth estimation on (its default) and off, side by side.
func bweTable(b *strings.Builder, ns []int, on, off []figures) {
	b.WriteString("| subscribers | joined on / off | SFU CPU on / off (% of one core) | on − off | SFU CPU µs/packet on / off | packets/s forwarded on / off | of which RTX packets/s on / off | of a lower layer on / off | Mbps on the wire on / off | loss on / off | latency p99 on / off ms | bench CPU on / off | other CPU on / off |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, n := range ns {
		a, z := on[i], off[i]
		diff := fmt.Sprintf("%+.1f", a.cpu-z.cpu)
		if z.cpu > 0 {
			diff += fmt.Sprintf(" (%+.0f%%)", 100*(a.cpu-z.cpu)/z.cpu)
		}
		fmt.Fprintf(b, "| %d | %.0f / %.0f | %.1f%% / %.1f%% | %s | %.1f / %.1f | %s / %s | %s / %s | %s / %s | %.0f / %.0f | %s / %s | %.1f / %.1f | %.0f%% / %.0f%% | %.0f%% / %.0f%% |\n",
			n, a.subscribed-a.failed, z.subscribed-z.failed, a.cpu, z.cpu, diff, a.usPerPkt, z.usPerPkt,
			kilo(a.pps), kilo(z.pps), kilo(a.rtxPps), kilo(z.rtxPps), share(a.lower), share(z.lower), a.mbps, z.mbps,
			pct(a.loss), pct(z.loss), a.latP99, z.latP99, a.self, z.self, a.other, z.other)
	}
}

// writeReport renders the report: the medians over the runs, then each
// run.
func writeReport(o *options, results [][]result) string {
	var b strings.Builder
	writeHeader(&b, o)
	return writeSweep(&b, o, results)
}

// writeHeader writes the report's title and what was measured how.
func writeHeader(b *strings.Builder, o *options) {
	fmt.Fprintf(b, "# sfubench — %s\n\n", time.Now().Format("2006-01-02 15:04"))
	fmt.Fprintf(b, "- machine: %d cores (%s), Linux %s, net.core.rmem_max %s, wmem_max %s\n",
		runtime.NumCPU(), procstat.CPUModel(), procstat.ReadTrim("/proc/sys/kernel/osrelease"),
		procstat.ReadTrim("/proc/sys/net/core/rmem_max"), procstat.ReadTrim("/proc/sys/net/core/wmem_max"))
	fmt.Fprintf(b, "- ivsrt: %s, %s\n", procstat.GitDescribe(""), runtime.Version())
	s := o.stream
	if c := o.clip; c != nil {
		fmt.Fprintf(b, "- publisher: a %v clip ffmpeg encoded (`testsrc2` with moving noise, libx264 at %d kbit/s), sent over and over: H.264 constrained baseline %dx%d at 30 fps, a keyframe every 2 s, %.0f kbit/s of RTP payload in %.0f packets/s (payloads up to %d bytes, a frame paced at %.1f×), and Opus at %.0f kbit/s in 20 ms packets\n",
			c.duration, s.bitrate/1000, c.width, c.height, c.videoKbps(), c.packetsPerSecond(), s.payloadSize, s.pacing, c.audioKbps())
	} else if o.simulcast {
		q, h, f := s.layer(0), s.layer(1), s.layer(2)
		fmt.Fprintf(b, "- publisher: VP8 in simulcast, layers q, h, f of %dx%d, %dx%d, %dx%d at %.2f, %.2f, %.2f Mbps of RTP payload (%.0f, %.0f, %.0f packets/s), each %d fps, payloads up to %d bytes, keyframe every %v (%.0f× a frame) and when the SFU asks for one of that layer, paced at %.1f×\n",
			q.width, q.height, h.width, h.height, f.width, f.height, float64(q.bitrate)/1e6, float64(h.bitrate)/1e6, float64(f.bitrate)/1e6,
			q.packetsPerSecond(), h.packetsPerSecond(), f.packetsPerSecond(), s.fps, s.payloadSize, s.keyframeEvery, s.keyframeSize, s.pacing)
	} else {
		fmt.Fprintf(b, "- publisher: VP8, %.2f Mbps of RTP payload, %d fps, payloads up to %d bytes, keyframe every %v (%.0f× a frame), paced at %.1f×: %.0f packets/s\n",
			float64(s.bitrate)/1e6, s.fps, s.payloadSize, s.keyframeEvery, s.keyframeSize, s.pacing, s.packetsPerSecond())
	}
	if o.meeting == 0 && o.clip == nil {
		fmt.Fprintf(b, "- subscribers: one WHEP peer connection each (DTLS, SRTP), joining %d at a time; receiver reports and NACKs: %v\n",
			o.joinConcurrency, o.rtcpFeedback)
		switch {
		case o.client == "lite":
			b.WriteString("- client lite: the subscribers send no RTCP, no TWCC feedback: the server has no estimate of their bandwidth\n")
		case o.clientTWCC && o.rtcpFeedback:
			b.WriteString("- client pion: the subscribers negotiate TWCC and send its feedback, and take retransmissions (and the server's probes) in an RTX stream, as browsers do\n")
		default:
			b.WriteString("- client pion: the subscribers send no TWCC feedback: the server has no estimate of their bandwidth\n")
		}
	}
	if len(o.serverFlags) > 0 {
		fmt.Fprintf(b, "- server flags: `%s`\n", strings.Join(o.serverFlags, " "))
	}
	if o.compareBWE {
		fmt.Fprintf(b, "- bandwidth estimation: each subscriber count is measured on a server with its default (on) and on one with `%s`, one after the other in the same run, each on a fresh server, their order alternating run by run\n", noBWEFlag)
	}
	fmt.Fprintf(b, "- each phase: %v warm-up once all have joined, %v measured, %d run(s); the figures are medians over the runs, each taken on its own\n",
		o.warmup, o.duration, o.runs)
	fmt.Fprintf(b, "- command: `go run ./bench/sfubench %s`\n", strings.Join(os.Args[1:], " "))
	if o.meeting == 0 && o.clip == nil {
		b.WriteString("\n")
	}
}

// writeSweep writes the fan-out sweep's tables.
func writeSweep(b *strings.Builder, o *options, results [][]result) string {
	median := func(pick func(result) *measurement) []figures {
		out := make([]figures, len(o.subscribers))
		for i := range o.subscribers {
			var fs []figures
			for _, run := range results {
				if m := pick(run[i]); m != nil {
					fs = append(fs, m.figures())
				}
			}
			out[i] = medianFigures(fs)
		}
		return out
	}
	sfu := median(func(r result) *measurement { return r.sfu })
	var relay, off []figures
	if o.baseline {
		relay = median(func(r result) *measurement { return r.relay })
	}
	if o.compareBWE {
		off = median(func(r result) *measurement { return r.noBWE })
	}
	sweepTables(b, o, sfu, relay, off, false)
	if o.runs > 1 {
		for r, run := range results {
			fmt.Fprintf(b, "<details><summary>run %d</summary>\n\n", r+1)
			var sf, rf, of []figures
			for _, res := range run {
				sf = append(sf, res.sfu.figures())
				if res.relay != nil {
					rf = append(rf, res.relay.figures())
				}
				if res.noBWE != nil {
					of = append(of, res.noBWE.figures())
				}
			}
			if !o.baseline {
				rf = nil
			}
			if !o.compareBWE {
				of = nil
			}
			sweepTables(b, o, sf, rf, of, true)
			b.WriteString("</details>\n\n")
		}
	}
	b.WriteString(columnNotes)
	if o.simulcast || o.compareBWE {
		b.WriteString(layerNotes)
	}
	if o.compareBWE {
		b.WriteString(compareNotes)
	}
	return b.String()
}

// sweepTables writes the tables of one set of figures per subscriber
// count: ivsrt's, the relay's (if any), and with --compare-bwe, ivsrt's
// with the bandwidth estimation on and off, side by side, then each on
// its own. One run's, in its details, have no headings.
func sweepTables(b *strings.Builder, o *options, sfu, relay, off []figures, run bool) {
	layers := o.simulcast || o.compareBWE
	heading := func(h string) {
		if run {
			b.WriteString(strings.TrimLeft(h, "# ") + ":\n\n")
		} else {
			b.WriteString(h + "\n\n")
		}
	}
	if off == nil {
		if !run {
			heading("## ivsrt")
		}
		tables(b, o.subscribers, sfu, relay, layers)
		b.WriteString("\n")
		return
	}
	heading("## ivsrt with bandwidth estimation on and off")
	bweTable(b, o.subscribers, sfu, off)
	b.WriteString("\n")
	heading("### Bandwidth estimation on (the server's default)")
	tables(b, o.subscribers, sfu, relay, layers)
	b.WriteString("\n")
	heading(fmt.Sprintf("### Bandwidth estimation off (`%s`)", noBWEFlag))
	tables(b, o.subscribers, off, nil, layers)
	b.WriteString("\n")
}

const columnNotes = `### Columns

- **packets/s forwarded**: RTP packets of the publisher that reached the subscribers during the
  measured window, summed over the subscribers, per second. **loss** is what of the packets the
  publisher sent in the window (× subscribers) never arrived, by the counter in each payload (so
  retransmissions and duplicates count once), after a drain of the packets still in flight: a
  packet later than the drain is lost, as it would be to a player.
- **Mbps on the wire**: the UDP payload bytes the subscribers' sockets received (SRTP with its
  authentication tag, RTCP, STUN), per second.
- **SFU CPU**: user + system time of the server process over the window (` + "`/proc/PID/stat`" + `, 10 ms
  ticks), as % of one core, per forwarded packet, and per forwarded gigabit on the wire.
  On loopback a send also runs the receiving side of the kernel, so it is in these figures.
- **join → first packet**: from the start of the WHEP request to the first RTP packet, over all
  subscribers as they joined (the first packet is the start of a keyframe the SFU asked for).
- **latency**: one-way, publisher send to subscriber receive, of the window's packets (one clock).
- **bench CPU**: the load generator (publisher and subscribers, this process) on the same cores;
  **other CPU**: the rest of the machine. **rcvbuf drops**: datagrams the kernel dropped because
  a receive buffer was full (` + "`/proc/net/snmp`" + ` RcvbufErrors, machine-wide).
- **SFU / relay packet rate**: forwarded packets/s of ivsrt over the relay's for the same offered
  load; it stays near 100% until one of them saturates. **relay / SFU CPU per packet** says how
  many packets the SFU forwards per core-second relative to the relay (its share of the ceiling
  once CPU-bound).
`

const layerNotes = `- **of which RTX packets/s**: of the packets forwarded, those that came in the subscribers'
  retransmission stream (RFC 4588): the server's answers to NACKs and the padding it sends to
  probe a subscriber's bandwidth before it gives it a higher layer (copies of packets already
  sent, which count once in the loss, but in the packets forwarded and their CPU per packet). On
  loopback almost nothing is lost, so they are mostly padding. Only pion subscribers that
  negotiate RTX (` + "`--client pion`" + `, ` + "`--client-twcc`" + `) get any.
- **of a lower layer**: of the packets forwarded, those of the q or h layer. Each layer has its
  own counter; the loss is counted on the top layer's (f), which a subscriber with no size limit
  and enough bandwidth gets. A subscriber the server keeps on a lower layer (its estimate is
  below f's bitrate, or it waits for f's keyframe after a switch) misses f's packets meanwhile,
  and they count as lost: this column says how much of that there was.
`

const compareNotes = `- **on / off**: the server with its bandwidth estimation (the default: each subscriber's
  bandwidth estimated from its TWCC feedback, the layer chosen within it, padding to probe for a
  higher one) and with ` + "`--rtc-bandwidth-estimation=false`" + ` (every subscriber gets the layer its
  size allows, here f). **on − off**: the difference of the server's CPU, in % of one core and
  relative to off. With lite subscribers, or pion ones without TWCC, there is no feedback:
  the difference is what the estimator's interceptors cost on every packet.
`
