package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/dist"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/report"
)

func (p *delayPhase) summary() string {
	d := dist.Summarize(p.seen())
	return fmt.Sprintf("%d switches, %d seen: p50 %.0f ms, p95 %.0f, max %.0f; listener %.2f pictures/s",
		len(p.delays), d.N, dist.MS(d.P50), dist.MS(d.P95), dist.MS(d.Max), float64(p.pictures)/p.wall.Seconds())
}

// writeReport returns the markdown report.
func writeReport(o *options, r *results) string {
	var b strings.Builder
	c := o.clip
	fmt.Fprintf(&b, "# compositionbench — %s\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "```\ngo run ./bench/compositionbench %s\n```\n\n", strings.Join(o.args, " "))
	fmt.Fprintf(&b, "- machine: %s, %s\n", procstat.Machine(), ffmpegVersion())
	fmt.Fprintf(&b, "- ivsrt: %s\n", procstat.GitDescribe(""))
	fmt.Fprintf(&b, "- other work on the machine: load average %s (1, 5, 15 min) at the start, %.2f cores busy over the second before it; each window's **other CPU** below is the rest of the machine during it\n",
		r.loadAverage, r.busyBefore)
	fmt.Fprintf(&b, "- publishers: pion WHIP peers in the bench, each sending a %v clip ffmpeg encoded once, over and over at real-time pace: H.264 constrained baseline %dx%d, %d fps, no B-frames, a keyframe every %v (x264 veryfast at %d kbit/s: %.0f kbit/s in the clip), `testsrc2` with moving noise, and a %d Hz tone as Opus (%.0f kbit/s)\n",
		c.Length, c.Width, c.Height, clip.FPS, keyInterval, c.Kbps, c.VideoKbps(), clip.ToneHz, c.OpusKbps())
	fmt.Fprintf(&b, "- composite: an encoder configuration of %dx%d, %d fps, %d kbit/s created with CreateEncoderConfiguration; StartComposition with a grid ordered by a token attribute; the server's encoder is x264 veryfast (High profile, no B-frames, a keyframe every 2 s) and AAC 128 kbit/s\n",
		o.out.width, o.out.height, o.out.fps, o.out.kbps)
	fmt.Fprintf(&b, "- whole run: %v\n\n", r.elapsed.Round(time.Second))
	if len(r.cpu) > 0 {
		writeCPU(&b, o, r)
	}
	if len(r.delay) > 0 {
		writeDelay(&b, o, r.delay)
	}
	return b.String()
}

// ffmpegVersion is the first line of `ffmpeg -version`, shortened.
func ffmpegVersion() string {
	out, err := exec.Command("ffmpeg", "-version").Output()
	if err != nil {
		return "ffmpeg of unknown version"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(line)
	if len(f) >= 3 {
		return "ffmpeg " + f[2]
	}
	return strings.TrimSpace(line)
}

func writeCPU(b *strings.Builder, o *options, r *results) {
	base := baselinePct(r.cpu)
	b.WriteString("## 1. What a composition costs the server\n\n")
	fmt.Fprintf(b, "One server (`ivsrt serve --dev --composition-channel %s=rtmp://127.0.0.1:PORT/live/compositionbench`), one stage, %d publishers that stay connected through every window, each after %v of warm-up and %v measured:\n\n"+
		"- **baseline**, and **baseline after** the compositions: the publishers alone, no composition and no subscriber: what the server spends receiving them. A composition's cost is its window's server CPU less the mean of the two (%.1f%%).\n"+
		"- **channel**: StartComposition with a channel destination, which the server maps to the bench's RTMP listener, `ffmpeg -listen 1 -i rtmp://… -c copy -f flv /dev/null -progress pipe:1` (receives and remuxes, does not decode). The window starts %v after the listener's first frame.\n"+
		"- **s3**: StopComposition, then StartComposition with an S3 destination (a bucket of the server's folder store, HLS in %d s segments).\n\n"+
		"**Server CPU** is the user + system time of the server process and every process below it (the composition's ffmpeg decoders and encoder; `/proc/<pid>/stat`, 10 ms ticks), in %% of one core; **of which ffmpeg** is the part below the server: **the encoder** the process whose command line has libx264, **the decoders** the rest.\n\n",
		channelARN, o.publishers, o.warmup, o.duration, base, o.warmup, segmentSeconds)
	b.WriteString("| window | server CPU | of which ffmpeg: the encoder | the decoders | composition's cost (− baseline) | composite at its destination: frames/s | real-time factor | kbit/s received | started in | listener CPU | bench CPU | other CPU |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range r.cpu {
		pc := func(d time.Duration) string { return fmt.Sprintf("%.1f%%", procstat.Percent(d, w.length)) }
		cost, fps, rtf, kbps, started, lis := "—", "—", "—", "—", "—", "—"
		if !w.isBaseline() {
			cost = fmt.Sprintf("**%+.1f%%**", procstat.Percent(w.server, w.length)-base)
			fps = fmt.Sprintf("%.2f", w.fps(o.out.fps))
			rtf = fmt.Sprintf("**%.3f**", w.fps(o.out.fps)/float64(o.out.fps))
			started = fmt.Sprintf("%.2f s", w.startup.Seconds())
		}
		if w.name == windowChannel {
			kbps = fmt.Sprintf("%.0f", w.kbps())
			lis = pc(w.listener)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			w.name, pc(w.server), pc(w.encoder), pc(w.children-w.encoder), cost, fps, rtf, kbps, started, lis, pc(w.bench), pc(w.other()))
	}
	b.WriteString("\n")
	for _, w := range r.cpu {
		if w.isBaseline() {
			continue
		}
		pc := func(d time.Duration) float64 { return procstat.Percent(d, w.length) }
		cost := pc(w.server) - base
		decoders := pc(w.children - w.encoder)
		goCost := cost - pc(w.children)
		fmt.Fprintf(b, "- **%s**: composing %d publishers into %dx%d at %d fps costs **%.1f%% of a core**: %.1f%% in the encoder (x264 and AAC, one per composition and destination), %.1f%% in the decoders (a video and an audio decoder per publisher: %.1f%% per publisher), %+.1f%% in the server's own work (subscribing to the publishers, depacketizing, drawing the canvas, mixing the audio, the pipes; %+.1f%% per publisher). "+
			"The composite reached its destination at %.2f frames/s, a real-time factor of %.3f. GetComposition at the window's end: %s.\n",
			w.name, w.publishers, o.out.width, o.out.height, o.out.fps, cost, pc(w.encoder), decoders, decoders/float64(w.publishers), goCost, goCost/float64(w.publishers),
			w.fps(o.out.fps), w.fps(o.out.fps)/float64(o.out.fps), w.state)
	}
	b.WriteString("\n- **real-time factor**: channel — video frames the listener received per second (its progress reports at the window's ends, `frame=`), over the configured frame rate; the reports' moments are good to a frame at each end, ±0.007 over 10 s. s3 — the media time of the HLS segments completed in the window (their `#EXTINF`, from the playlist in the bucket once stopped) over the wall time from the first completion to the last (a segment is complete when ffmpeg starts the next one's file, in the folder the server uploads from, polled every 20 ms). The compositor keeps the encoder's timeline on the wall clock (it repeats a frame the encoder had no room for), so a factor under 1 means frames lost for good: a stall of over 2 s given up on, or the encoder or the network falling behind.\n" +
		"- **kbit/s received**: the FLV the listener wrote, video and audio, over the same time.\n" +
		"- **started in**: from StartComposition's answer to the first frame the listener reports (its reports come every 0.5 s; it includes the listener's probing of the stream, about 2 s: compare the encoder alone's in section 2) or, for s3, to the first segment's file. The publishers do not answer keyframe requests (keyframes come every second), so a start may wait up to a second for each publisher's next keyframe.\n" +
		"- **bench CPU**: this process, the publishers. **listener CPU**: the RTMP listener ffmpeg (not the server's). **other CPU**: the machine's busy time (`/proc/stat`) less the server, the listener and the bench; more than a few % means the window shared the cores with other work.\n" +
		"- Each window runs once; on this kind of shared machine figures move by a few % of a core from run to run.\n\n")
}

// label names a delay phase in the report.
func (p *delayPhase) label() string {
	switch {
	case p.reference && p.tune != "":
		return fmt.Sprintf("the encoder alone, `-tune %s` (what-if)", p.tune)
	case p.reference:
		return "the encoder alone (reference)"
	case p.publishers == 1:
		return "composition, 1 publisher"
	}
	return fmt.Sprintf("composition, %d publishers", p.publishers)
}

func writeDelay(b *strings.Builder, o *options, phases []*delayPhase) {
	b.WriteString("## 2. Delay: a publisher's picture → the composite\n\n")
	fmt.Fprintf(b, "**Composition** (a fresh server each): a publisher (pion, WHIP) sends a plain colour — %s, each a %v clip of its own (%dx%d H.264 at the publishers' settings, a keyframe every %v), looped. "+
		"Every %v it switches to the next colour, starting the next clip at its first frame (a keyframe), which it holds back a random 0–%.0f ms first so that the switches sample every phase of the compositor's %d fps tick; the bench notes when it sends that frame. "+
		"Alone in its stage its picture fills the canvas; with others (sending the clip, as in section 1) it has the grid's first tile. "+
		"A composition (grid, %dx%d, %d fps, %d kbit/s) sends to the bench's RTMP listener, which decodes it and scales it to %dx%d RGB on its standard output: "+
		"`ffmpeg -fflags nobuffer -flags low_delay -threads 1 -listen 1 -i rtmp://… -vf scale=%d:%d:flags=area -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -flush_packets 1 pipe:1`. "+
		"The bench notes the arrival of each picture and its mean colour over the middle half of the publisher's tile; "+
		"a switch's **delay** is from the send of its first frame to the first picture nearer the new colour than the old. %v of warm-up after the listener's first picture, then %d switches.\n\n"+
		"**The encoder alone** (the baseline, same run, no server; with `--zerolatency`, once more with x264's `-tune zerolatency` added): an ffmpeg with the command line the server gives a composition's encoder (`composition/engine`), fed by the bench as the compositor feeds it — raw %dx%d yuv420p canvases of one colour on its standard input at %d fps, silent PCM on fd 3 every 20 ms — sending to the same listener; the same switches, each timed from the write of the first canvas of the new colour. "+
		"Composition − encoder alone is the server's part: receiving the publisher, its decoder, the compositor's tick and drawing.\n\n",
		colourNames(), colourClipLength, o.width, o.height, keyInterval, o.switchInterval, dist.MS(clip.FrameTime), o.out.fps,
		o.out.width, o.out.height, o.out.fps, o.out.kbps, pictureWidth, pictureHeight, pictureWidth, pictureHeight,
		o.warmup, o.switches, o.out.width, o.out.height, o.out.fps)
	b.WriteString("| path | switches | seen | p50 ms | p95 | max | min | listener pictures/s | started in | server CPU (of which ffmpeg) | listener CPU | bench CPU | other CPU |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var ref, what *delayPhase
	for _, p := range phases {
		if p.reference && p.tune == "" {
			ref = p
		}
		if p.reference && p.tune != "" {
			what = p
		}
		d := dist.Summarize(p.seen())
		lo := time.Duration(0)
		if d.N > 0 {
			lo = slices.Min(p.seen())
		}
		pc := func(x time.Duration) float64 { return procstat.Percent(x, p.length) }
		server := fmt.Sprintf("%.1f%% (%.1f%%)", pc(p.server), pc(p.children))
		if p.reference {
			server = fmt.Sprintf("— (encoder %.1f%%)", pc(p.children))
		}
		fmt.Fprintf(b, "| %s | %d | %d | **%.0f** | **%.0f** | **%.0f** | %.0f | %.2f | %.2f s | %s | %.1f%% | %.1f%% | %.1f%% |\n",
			p.label(), len(p.delays), d.N, dist.MS(d.P50), dist.MS(d.P95), dist.MS(d.Max), dist.MS(lo),
			float64(p.pictures)/p.wall.Seconds(), p.startup.Seconds(), server, pc(p.listener), pc(p.bench), pc(p.other()))
	}
	b.WriteString("\n")
	if ref != nil {
		rd := dist.Summarize(ref.seen())
		for _, p := range phases {
			if p.reference {
				continue
			}
			d := dist.Summarize(p.seen())
			fmt.Fprintf(b, "- %s − the encoder alone: **%+.0f ms** at p50, %+.0f ms at p95: the server's part.\n", p.label(), dist.MS(d.P50-rd.P50), dist.MS(d.P95-rd.P95))
		}
		if what != nil {
			wd := dist.Summarize(what.seen())
			fmt.Fprintf(b, "- The encoder alone − the same with `-tune %s`: **%+.0f ms** at p50: what x264's look-ahead and frame threads hold (the server's encoder does not use the tune; this row is a what-if, not ivsrt).\n",
				what.tune, dist.MS(rd.P50-wd.P50))
		}
	}
	for _, p := range phases {
		var samples []string
		for _, x := range p.delays {
			if x < 0 {
				samples = append(samples, "missed")
			} else {
				samples = append(samples, fmt.Sprintf("%.0f", dist.MS(x)))
			}
		}
		fmt.Fprintf(b, "- %s, every switch in order (ms): %s. Watched: %d×%d pixels at %d,%d of the %dx%d picture, RGB %.0f, %.0f, %.0f before the first switch.\n",
			p.label(), strings.Join(samples, ", "), p.region.w, p.region.h, p.region.x, p.region.y, pictureWidth, pictureHeight, p.startRGB[0], p.startRGB[1], p.startRGB[2])
	}
	fmt.Fprintf(b, "- **missed**: no picture nearer the new colour arrived before the next switch was sent. **started in**: StartComposition's answer (for the encoder alone, its start) → the listener's first picture. **CPU** over the switches, in %% of one core.\n\n")
	fmt.Fprintf(b, "What a composition's delay includes, in order: the publisher's RTP over loopback (SRTP); the server's depacketizing and its pipe to the publisher's video decoder (ffmpeg, one thread, low delay, scaling to the tile); "+
		"the compositor's wait for its next tick (0 to %.1f ms, sampled evenly by the held-back frames); "+
		"the canvas's pipe to the encoder and x264's own buffering (veryfast without `zerolatency` keeps frames for its rate-control look-ahead and its frame threads before it writes one out); "+
		"FLV muxing (interleaving the video with the AAC) and RTMP over loopback; and the listener's side: its FLV demuxing, its H.264 decoder (one thread, so no frame-threading delay; no B-frames, so no reordering), the scaling and the pipe to the bench. "+
		"Everything from the encoder on is in the encoder-alone row too. A viewer of a channel would see this plus the channel's own ingest, transcoding and player buffer, less the listener's decode.\n\n",
		dist.MS(clip.FrameTime))
}

func colourNames() string {
	var names []string
	for _, c := range colours {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// The JSON report: every figure, with the delay samples.
type jsonReport struct {
	report.Run
	Clip      jsonClip     `json:"clip"`
	Composite jsonEncoding `json:"composite"`
	CPU       []jsonWindow `json:"cpu,omitempty"`
	Delay     []jsonDelay  `json:"delay,omitempty"`
}

type jsonClip struct {
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	FPS       int     `json:"fps"`
	LengthS   float64 `json:"lengthSeconds"`
	VideoKbps float64 `json:"videoKbps"`
	OpusKbps  float64 `json:"opusKbps"`
}

type jsonEncoding struct {
	Width  int `json:"width"`
	Height int `json:"height"`
	FPS    int `json:"fps"`
	Kbps   int `json:"kbps"`
}

type jsonWindow struct {
	Name           string  `json:"name"`
	Publishers     int     `json:"publishers"`
	WindowS        float64 `json:"windowSeconds"`
	ServerPct      float64 `json:"serverCpuPct"`
	FFmpegPct      float64 `json:"ffmpegCpuPct"`
	EncoderPct     float64 `json:"encoderCpuPct"`
	CostPct        float64 `json:"compositionCostPct"`
	ListenerPct    float64 `json:"listenerCpuPct"`
	BenchPct       float64 `json:"benchCpuPct"`
	OtherPct       float64 `json:"otherCpuPct"`
	FPS            float64 `json:"compositeFps,omitempty"`
	RealTimeFactor float64 `json:"realTimeFactor,omitempty"`
	Kbps           float64 `json:"receivedKbps,omitempty"`
	Segments       int     `json:"segments,omitempty"`
	StartupS       float64 `json:"startupSeconds,omitempty"`
	State          string  `json:"state,omitempty"`
}

type jsonDelay struct {
	Path           string    `json:"path"`
	Tune           string    `json:"x264Tune,omitempty"` // the encoder alone's what-if
	Publishers     int       `json:"publishers,omitempty"`
	Switches       int       `json:"switches"`
	DelaysMS       []float64 `json:"delaysMs"` // -1: missed
	P50MS          float64   `json:"p50Ms"`
	P95MS          float64   `json:"p95Ms"`
	MaxMS          float64   `json:"maxMs"`
	PicturesPerS   float64   `json:"listenerPicturesPerSecond"`
	StartupS       float64   `json:"startupSeconds"`
	ServerPct      float64   `json:"serverCpuPct"`
	FFmpegPct      float64   `json:"ffmpegCpuPct"`
	ListenerPct    float64   `json:"listenerCpuPct"`
	BenchPct       float64   `json:"benchCpuPct"`
	OtherPct       float64   `json:"otherCpuPct"`
	Region         [4]int    `json:"watchedRegion"` // x, y, w, h of the 64×36 pictures
	RGBBeforeFirst []float64 `json:"rgbBeforeFirstSwitch"`
}

func writeJSON(o *options, r *results) error {
	c := o.clip
	j := jsonReport{Run: report.NewRun(r.started, r.loadAverage, r.busyBefore, o.args, r.elapsed),
		Clip:      jsonClip{Width: c.Width, Height: c.Height, FPS: clip.FPS, LengthS: c.Length.Seconds(), VideoKbps: c.VideoKbps(), OpusKbps: c.OpusKbps()},
		Composite: jsonEncoding{Width: o.out.width, Height: o.out.height, FPS: o.out.fps, Kbps: o.out.kbps}}
	for _, w := range r.cpu {
		pc := func(d time.Duration) float64 { return procstat.Percent(d, w.length) }
		jw := jsonWindow{Name: w.name, Publishers: w.publishers, WindowS: w.length.Seconds(), ServerPct: pc(w.server), FFmpegPct: pc(w.children), EncoderPct: pc(w.encoder),
			ListenerPct: pc(w.listener), BenchPct: pc(w.bench), OtherPct: pc(w.other()), Segments: w.segments, StartupS: w.startup.Seconds(), State: w.state}
		if !w.isBaseline() {
			jw.CostPct = pc(w.server) - baselinePct(r.cpu)
			jw.FPS = w.fps(o.out.fps)
			jw.RealTimeFactor = jw.FPS / float64(o.out.fps)
			jw.Kbps = w.kbps()
		}
		j.CPU = append(j.CPU, jw)
	}
	for _, p := range r.delay {
		d := dist.Summarize(p.seen())
		pc := func(x time.Duration) float64 { return procstat.Percent(x, p.length) }
		jd := jsonDelay{Path: p.label(), Tune: p.tune, Publishers: p.publishers, Switches: len(p.delays), P50MS: dist.MS(d.P50), P95MS: dist.MS(d.P95), MaxMS: dist.MS(d.Max),
			PicturesPerS: float64(p.pictures) / p.wall.Seconds(), StartupS: p.startup.Seconds(),
			ServerPct: pc(p.server), FFmpegPct: pc(p.children), ListenerPct: pc(p.listener), BenchPct: pc(p.bench), OtherPct: pc(p.other()),
			Region: [4]int{p.region.x, p.region.y, p.region.w, p.region.h}, RGBBeforeFirst: p.startRGB[:]}
		for _, x := range p.delays {
			if x < 0 {
				jd.DelaysMS = append(jd.DelaysMS, -1)
			} else {
				jd.DelaysMS = append(jd.DelaysMS, dist.MS(x))
			}
		}
		j.Delay = append(j.Delay, jd)
	}
	return report.WriteJSON(o.jsonOut, j)
}
