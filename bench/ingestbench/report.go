package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/dist"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/report"
)

// other is the rest of the machine's CPU over the window.
func (p *cpuPhase) other() time.Duration {
	return max(0, p.machine-p.server-p.encoders-p.bench)
}

func (p *cpuPhase) summary() string {
	w := p.window
	return fmt.Sprintf("server %.1f%% of a core (transcoders %.1f%%), %.1f%% per stream; received per subscriber %.1f fps, %.0f kbit/s video, %.1f audio packets/s, %.0f kbit/s; encoders %.1f%%, bench %.1f%%, other %.1f%%",
		procstat.Percent(p.server, w), procstat.Percent(p.transcoders, w), procstat.Percent(p.server, w)/float64(p.streams),
		p.perSub(p.received.frames), p.perSub(p.received.videoBytes)*8/1000, p.perSub(p.received.audioPackets), p.perSub(p.received.audioBytes)*8/1000,
		procstat.Percent(p.encoders, w), procstat.Percent(p.bench, w), procstat.Percent(p.other(), w))
}

// perSub is a count per subscriber per second of the window.
func (p *cpuPhase) perSub(n uint64) float64 {
	return float64(n) / float64(p.streams) / p.window.Seconds()
}

func (p *delayPhase) summary() string {
	v, a := dist.Summarize(p.video), dist.Summarize(p.audio)
	s := fmt.Sprintf("video: %d frames, p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f", v.N, dist.MS(v.P50), dist.MS(v.P90), dist.MS(v.P99), dist.MS(v.Max))
	if p.audioErr != "" {
		return s + "; audio not measured: " + p.audioErr
	}
	return s + fmt.Sprintf("; audio: %d packets, p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f", a.N, dist.MS(a.P50), dist.MS(a.P90), dist.MS(a.P99), dist.MS(a.Max))
}

// writeReport returns the markdown report.
func writeReport(o *options, r *results) string {
	var b strings.Builder
	c := o.clip
	fmt.Fprintf(&b, "# ingestbench — %s\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "```\ngo run ./bench/ingestbench %s\n```\n\n", strings.Join(o.args, " "))
	fmt.Fprintf(&b, "- machine: %s\n", procstat.Machine())
	fmt.Fprintf(&b, "- ivsrt: %s\n", procstat.GitDescribe(""))
	fmt.Fprintf(&b, "- other work on the machine: load average %s (1, 5, 15 min) at the start, %.2f cores busy over the second before it; each phase's **other CPU** below is the rest of the machine during its window\n",
		r.loadAverage, r.busyBefore)
	fmt.Fprintf(&b, "- media: a %v clip ffmpeg encoded once, sent over and over: H.264 constrained baseline %dx%d, %d fps, no B-frames, a keyframe every %v (x264 veryfast at %d kbit/s: %.0f kbit/s in the clip), `testsrc2` with moving noise; a 440 Hz tone in stereo as AAC-LC 48 kHz (%.0f kbit/s) for RTMP and as Opus in 20 ms packets for WHIP (libopus asked for %d kbit/s, as the server's transcoder asks for stereo AAC: %.0f kbit/s in the clip)\n",
		c.Length, c.Width, c.Height, clip.FPS, keyInterval, c.Kbps, c.VideoKbps(), c.AACKbps(), clip.OpusKbps, c.OpusKbps())
	fmt.Fprintf(&b, "- whole run: %v\n\n", r.elapsed.Round(time.Second))

	if len(r.cpu) > 0 {
		writeCPU(&b, o, r)
	}
	if r.delay[0] != nil {
		writeDelay(&b, o, r)
	}
	return b.String()
}

func writeCPU(b *strings.Builder, o *options, r *results) {
	b.WriteString("## 1. Server CPU per ingest stream\n\n")
	fmt.Fprintf(b, "N streams at once, each in a stage of its own with one subscriber (a pion WHEP peer connection that sends receiver reports, NACKs and TWCC feedback, as a browser does). "+
		"**RTMP**: each publisher is an ffmpeg process publishing the clip's FLV with `-re -stream_loop -1 -c copy` to the stage's RTMP endpoint with an ingest configuration's stream key; "+
		"the server passes the H.264 through as RTP and transcodes the AAC to Opus with an ffmpeg child per stream. "+
		"**WHIP** (the baseline, same run): the same H.264 access units and the Opus, as RTP from a pion peer connection in the bench, each frame's packets at once. "+
		"Each phase on a fresh server: %v of warm-up once every subscriber has its first frame and audio packet, then %v measured. "+
		"**Server CPU** is the user + system time of the server process and every process below it (its ffmpeg transcoders; `/proc/<pid>/stat`, 10 ms ticks), in %% of one core.\n\n",
		o.warmup, o.duration)
	b.WriteString("| streams | in | server CPU | of which transcoders | server CPU per stream | received per subscriber: video fps, kbit/s | audio packets/s, kbit/s | encoders CPU | bench CPU | other CPU |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, pair := range r.cpu {
		for _, p := range pair {
			w := p.window
			enc := "—"
			if p.path == pathRTMP {
				enc = fmt.Sprintf("%.1f%%", procstat.Percent(p.encoders, w))
			}
			fmt.Fprintf(b, "| %d | %s | %.1f%% | %.1f%% | **%.1f%%** | %.1f, %.0f | %.1f, %.0f | %s | %.1f%% | %.1f%% |\n",
				p.streams, p.path, procstat.Percent(p.server, w), procstat.Percent(p.transcoders, w), procstat.Percent(p.server, w)/float64(p.streams),
				p.perSub(p.received.frames), p.perSub(p.received.videoBytes)*8/1000,
				p.perSub(p.received.audioPackets), p.perSub(p.received.audioBytes)*8/1000,
				enc, procstat.Percent(p.bench, w), procstat.Percent(p.other(), w))
		}
	}
	b.WriteString("\nWhat RTMP and the transcoding cost over WHIP, per stream (RTMP − WHIP, same run):\n\n")
	b.WriteString("| streams | RTMP per stream | WHIP per stream | RTMP − WHIP | of which the transcoder | of which the rest of the server |\n|---:|---:|---:|---:|---:|---:|\n")
	per := func(p *cpuPhase, d time.Duration) float64 { return procstat.Percent(d, p.window) / float64(p.streams) }
	for _, pair := range r.cpu {
		rt, wh := pair[0], pair[1]
		diff, tc := per(rt, rt.server)-per(wh, wh.server), per(rt, rt.transcoders)
		fmt.Fprintf(b, "| %d | %.1f%% | %.1f%% | **%+.1f%%** | %.1f%% | %+.1f%% |\n", rt.streams,
			per(rt, rt.server), per(wh, wh.server), diff, tc, diff-tc)
	}
	rt, wh := r.cpu[len(r.cpu)-1][0], r.cpu[len(r.cpu)-1][1]
	diff, tc := per(rt, rt.server)-per(wh, wh.server), per(rt, rt.transcoders)
	fmt.Fprintf(b, "\nAt %d stream(s), an RTMP stream costs the server %+.1f%% of a core over the same media published over WHIP: %.1f%% in its ffmpeg transcoder, "+
		"and %+.1f%% in the server itself (reading RTMP and packetizing the H.264, against receiving SRTP with its RTCP over WHIP).\n\n",
		rt.streams, diff, tc, diff-tc)
	b.WriteString("- **of which transcoders**: the ffmpeg processes below the server (AAC → Opus, one per RTMP stream); the rest of an RTMP stream's cost is the server's own: RTMP, the H.264 packetization, the forwarding.\n" +
		"- **received per subscriber**: what each subscriber got in the window (RTP payloads): the two paths deliver the same video, and Opus at about the same rate.\n" +
		"- **encoders CPU**: the ffmpeg processes publishing over RTMP (not the server's). The WHIP publishers are in the bench, in **bench CPU** with the subscribers.\n" +
		"- **other CPU**: the machine's busy time (`/proc/stat`) less the server, the encoders and the bench: other work on the machine. More than a few % means the phase shared the cores.\n" +
		"- Each phase runs once. On this kind of shared machine a single stream's figures move by a few % of a core from run to run (more than RTMP − WHIP at one stream), the 4-stream rows much less: read those.\n\n")
}

func writeDelay(b *strings.Builder, o *options, r *results) {
	b.WriteString("## 2. Delay: RTMP in → WebRTC out\n\n")
	fmt.Fprintf(b, "One stream, its publisher and its subscriber both in the bench process (one clock), on a fresh server; %v of warm-up, then %v measured. "+
		"**RTMP**: gortmplib's client publishes the clip's H.264 access units and AAC frames at real-time pace, each written when its pts is due; the bench notes the time of each write. "+
		"**WHIP** (the baseline, same run): a pion peer connection writes the same access units as RTP (each frame's packets at once) and the Opus packets, at the same pace. "+
		"The subscriber (pion, WHEP) notes the arrival of each video frame's last packet (its RTP marker) and of each audio packet.\n\n",
		o.warmup, o.delayDuration)
	b.WriteString("| in | video frames | video p50 ms | p90 | p99 | max | audio packets | audio p50 ms | p90 | p99 | max |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.delay {
		v, a := dist.Summarize(p.video), dist.Summarize(p.audio)
		fmt.Fprintf(b, "| %s | %d | **%.1f** | %.1f | %.1f | %.1f |", p.path, v.N, dist.MS(v.P50), dist.MS(v.P90), dist.MS(v.P99), dist.MS(v.Max))
		if p.audioErr != "" {
			b.WriteString(" — | — | — | — | — |\n")
			continue
		}
		fmt.Fprintf(b, " %d | **%.1f** | %.1f | %.1f | %.1f |\n", a.N, dist.MS(a.P50), dist.MS(a.P90), dist.MS(a.P99), dist.MS(a.Max))
	}
	rt, wh := r.delay[0], r.delay[1]
	rv, wv := dist.Summarize(rt.video), dist.Summarize(wh.video)
	fmt.Fprintf(b, "\nRTMP − WHIP, same run: video **%+.1f ms** at p50, %+.1f ms at p99", dist.MS(rv.P50-wv.P50), dist.MS(rv.P99-wv.P99))
	if rt.audioErr == "" && wh.audioErr == "" {
		ra, wa := dist.Summarize(rt.audio), dist.Summarize(wh.audio)
		fmt.Fprintf(b, "; audio (transcoded) **%+.1f ms** at p50, %+.1f ms at p99", dist.MS(ra.P50-wa.P50), dist.MS(ra.P99-wa.P99))
	}
	b.WriteString(".\n\n")
	for _, p := range r.delay {
		if p.audioErr != "" {
			fmt.Fprintf(b, "- %s audio not measured: %s\n", p.path, p.audioErr)
		}
	}
	b.WriteString("- **video**: from the write of a frame (RTMP: its whole access unit to the TCP connection; WHIP: its first RTP packet) to the arrival of its last packet. " +
		"The server may offset a subscriber's timestamps but keeps their differences, so the frames are mapped to the frames sent by RTP timestamp differences from the first frame received, a keyframe: " +
		"the latest keyframe sent before it arrived (keyframes are 1 s apart), or the one before if that had some frame arrive before it was sent (a keyframe the server kept). " +
		"RTMP carries times in whole milliseconds, within the mapping's tolerance of 3 ms.\n" +
		"- **audio**: from the write of the unit of media that holds an audio packet's first sample (RTMP: the AAC frame, 21.3 ms; WHIP: the Opus packet itself) to the arrival of the packet. " +
		"So the transcoded audio's delay has a floor in the codecs: a 20 ms Opus packet can be made once its 20 ms and libopus's 6.5 ms of look-ahead are in, and they come in AAC frames of 21.3 ms, each written when its pts is due: 26.5 ms on average (21.3 or 42.7 ms for a given packet); the rest is ffmpeg's work and the pipes to and from it. " +
		"Audio has no keyframe to anchor a mapping: the server stamps both tracks with the publication's pts × the clock rate from one origin, and the video's mapping shows that this subscriber's timestamps are not offset, so an audio packet's timestamp is its pts (an Opus packet's pts is that of the AAC sample it starts with, as the transcoder keeps it).\n\n")
}

// The JSON report: every phase's figures, with the delay samples.
type jsonReport struct {
	report.Run
	Clip  jsonClip    `json:"clip"`
	CPU   []jsonCPU   `json:"cpu"`
	Delay []jsonDelay `json:"delay"`
}

type jsonClip struct {
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	FPS       int     `json:"fps"`
	LengthS   float64 `json:"lengthSeconds"`
	VideoKbps float64 `json:"videoKbps"`
	AACKbps   float64 `json:"aacKbps"`
	OpusKbps  float64 `json:"opusKbps"`
}

type jsonCPU struct {
	Path             string  `json:"path"`
	Streams          int     `json:"streams"`
	WindowS          float64 `json:"windowSeconds"`
	ServerPct        float64 `json:"serverCpuPct"`
	TranscodersPct   float64 `json:"transcodersCpuPct"`
	ServerPerStream  float64 `json:"serverCpuPctPerStream"`
	EncodersPct      float64 `json:"encodersCpuPct"`
	BenchPct         float64 `json:"benchCpuPct"`
	OtherPct         float64 `json:"otherCpuPct"`
	FramesPerSubS    float64 `json:"framesPerSubscriberPerSecond"`
	VideoKbpsPerSub  float64 `json:"videoKbpsPerSubscriber"`
	AudioPacketsPerS float64 `json:"audioPacketsPerSubscriberPerSecond"`
	AudioKbpsPerSub  float64 `json:"audioKbpsPerSubscriber"`
	WireKbpsPerSub   float64 `json:"wireKbpsPerSubscriber"`
	VideoPacketsPerS float64 `json:"videoPacketsPerSubscriberPerSecond"`
}

type jsonDelay struct {
	Path        string    `json:"path"`
	WindowS     float64   `json:"windowSeconds"`
	VideoMS     []float64 `json:"videoMs"`
	AudioMS     []float64 `json:"audioMs,omitempty"`
	AudioError  string    `json:"audioError,omitempty"`
	VideoOffset uint32    `json:"videoTimestampOffset"`
}

func writeJSON(o *options, r *results) error {
	c := o.clip
	j := jsonReport{Run: report.NewRun(r.started, r.loadAverage, r.busyBefore, o.args, r.elapsed),
		Clip: jsonClip{Width: c.Width, Height: c.Height, FPS: clip.FPS, LengthS: c.Length.Seconds(),
			VideoKbps: c.VideoKbps(), AACKbps: c.AACKbps(), OpusKbps: c.OpusKbps()}}
	for _, pair := range r.cpu {
		for _, p := range pair {
			w := p.window
			j.CPU = append(j.CPU, jsonCPU{Path: p.path, Streams: p.streams, WindowS: w.Seconds(),
				ServerPct: procstat.Percent(p.server, w), TranscodersPct: procstat.Percent(p.transcoders, w), ServerPerStream: procstat.Percent(p.server, w) / float64(p.streams),
				EncodersPct: procstat.Percent(p.encoders, w), BenchPct: procstat.Percent(p.bench, w), OtherPct: procstat.Percent(p.other(), w),
				FramesPerSubS: p.perSub(p.received.frames), VideoKbpsPerSub: p.perSub(p.received.videoBytes) * 8 / 1000,
				AudioPacketsPerS: p.perSub(p.received.audioPackets), AudioKbpsPerSub: p.perSub(p.received.audioBytes) * 8 / 1000,
				WireKbpsPerSub: p.perSub(p.received.wire) * 8 / 1000, VideoPacketsPerS: p.perSub(p.received.videoPackets)})
		}
	}
	for _, p := range r.delay {
		if p == nil {
			continue
		}
		d := jsonDelay{Path: p.path, WindowS: p.window.Seconds(), AudioError: p.audioErr, VideoOffset: p.videoOffset}
		for _, v := range p.video {
			d.VideoMS = append(d.VideoMS, dist.MS(v))
		}
		for _, a := range p.audio {
			d.AudioMS = append(d.AudioMS, dist.MS(a))
		}
		j.Delay = append(j.Delay, d)
	}
	return report.WriteJSON(o.jsonOut, j)
}
