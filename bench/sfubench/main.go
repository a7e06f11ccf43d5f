// Command sfubench measures ivsrt's media plane: one publisher sending
// about 2.5 Mbps of VP8 over WHIP, fanned out to N WHEP subscribers, each
// with its own peer connection (DTLS, SRTP). It reports the packets and
// bits forwarded, the loss, the server's CPU per forwarded packet and per
// forwarded gigabit, and the time from a WHEP request to its first packet;
// and, in the same run, the same for a plain UDP relay of the same packets
// (no encryption, no RTP logic), the ceiling of the machine.
//
// Run it from the module root:
//
//	go run ./bench/sfubench --subscribers 10,50,100,200,400 --duration 10s
//
// See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/report"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

func main() {
	for _, a := range os.Args[1:] {
		if a == "--relay" || a == "-relay" {
			if err := runRelay(); err != nil {
				fmt.Fprintln(os.Stderr, "sfubench relay:", err)
				os.Exit(1)
			}
			return
		}
	}
	serverproc.Main("sfubench", run)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sfubench", flag.ContinueOnError)
	subs := fs.String("subscribers", "10,50,100,200,400", "subscriber counts to measure, comma-separated")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each phase, once everyone has joined")
	fs.DurationVar(&o.drain, "drain", 500*time.Millisecond, "wait after a phase for the packets of its window still in flight")
	fs.IntVar(&o.runs, "runs", 1, "runs of the whole sweep; the report gives the median of each figure")
	kbps := fs.Int("bitrate", 2500, "publisher's video bit rate, kbit/s of RTP payload")
	fs.IntVar(&o.stream.payloadSize, "payload", 1200, "largest RTP payload, bytes")
	fs.IntVar(&o.stream.fps, "fps", 30, "frames per second")
	fs.DurationVar(&o.stream.keyframeEvery, "keyframe-interval", 2*time.Second, "time between keyframes (keyframes are also sent when the SFU asks)")
	fs.Float64Var(&o.stream.keyframeSize, "keyframe-size", 3, "size of a keyframe over that of another frame")
	fs.Float64Var(&o.stream.pacing, "pacing", 2.5, "send a frame's packets at this multiple of the average rate; 0 sends each frame in one burst")
	fs.IntVar(&o.joinConcurrency, "join-concurrency", 8, "subscribers joining at the same time")
	fs.DurationVar(&o.joinTimeout, "join-timeout", 10*time.Second, "how long a subscriber may wait for its first packet")
	fs.StringVar(&o.client, "client", "lite", "subscriber implementation: lite (one goroutine per subscriber: ICE checks, DTLS, SRTP decryption in place) or pion (a pion PeerConnection each)")
	fs.BoolVar(&o.rtcpFeedback, "client-rtcp", true, "the publisher, and pion subscribers, send receiver reports and NACKs and answer NACKs, as browsers do")
	fs.BoolVar(&o.clientTWCC, "client-twcc", true, "pion subscribers negotiate TWCC (and send its feedback, with --client-rtcp) and retransmissions in a stream of their own, as browsers do: what the server's bandwidth estimation reads and probes with")
	serverFlags := fs.String("server-flags", "", "extra flags of every ivsrt serve the bench starts, separated by spaces, e.g. --rtc-bandwidth-estimation=false")
	fs.BoolVar(&o.simulcast, "simulcast", false, "the publisher sends its video in simulcast: layers q, h and f at 1/16, 1/4 and all of --bitrate")
	fs.BoolVar(&o.compareBWE, "compare-bwe", false, "measure each subscriber count twice: with the server's bandwidth estimation (its default) and with --rtc-bandwidth-estimation=false")
	fs.BoolVar(&o.baseline, "baseline", true, "also measure the plain UDP relay")
	fs.IntVar(&socketBuffer, "socket-buffer", socketBuffer, "send and receive buffer of the bench's and the relay's UDP sockets, bytes (capped by net.core.rmem_max and wmem_max)")
	fs.StringVar(&o.serverBin, "server", "", "ivsrt binary to measure; default: build ./cmd/ivsrt")
	fs.DurationVar(&o.quietWait, "quiet-wait", 20*time.Second, "before each phase, wait up to this long for the rest of the machine to go idle; 0 to not wait")
	fs.StringVar(&o.perfDir, "perf", "", "record a CPU profile of the server with perf during each measured window, into this folder")
	fs.StringVar(&o.out, "out", "", "report file; default bench/results/<date>/sfu.md (sfu-simulcast.md with --simulcast, sfu-bwe.md with --compare-bwe alone, sfu-meeting.md with --meeting, sfu-record.md with --record), - for none")
	fs.StringVar(&o.jsonOut, "json", "", "also write every phase's measurements, with their samples, as JSON to this file")
	fs.IntVar(&o.meeting, "meeting", 0, "measure a meeting of this many publishers, each subscribed to all the others, instead of the fan-out sweep")
	viewers := fs.String("viewers", "0", "with --meeting: viewer counts, one phase each; a viewer subscribes to every publisher")
	record := fs.String("record", "", "measure individual participant recording instead of the fan-out sweep: publisher counts (H.264 and Opus), e.g. 1,6,12, each with recording off and on")
	fs.IntVar(&o.recordSubs, "record-subscribers", 2, "with --record: subscribers per publisher")
	fs.DurationVar(&o.clipLength, "clip-length", 6*time.Second, "with --record: length of the clip ffmpeg encodes, sent over and over (whole seconds)")
	clipSize := fs.String("clip-size", "1280x720", "with --record: the clip's picture size; its video bit rate is --bitrate")
	gogc := fs.Int("client-gogc", 400, "GOGC of the bench process (the load generator); the server keeps Go's default")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, f := range strings.Split(*subs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--subscribers %q: want positive numbers separated by commas", *subs)
		}
		o.subscribers = append(o.subscribers, n)
	}
	for _, f := range strings.Split(*viewers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--viewers %q: want numbers of 0 or more separated by commas", *viewers)
		}
		o.viewers = append(o.viewers, n)
	}
	if *record != "" {
		for _, f := range strings.Split(*record, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return nil, fmt.Errorf("--record %q: want positive numbers separated by commas", *record)
			}
			o.record = append(o.record, n)
		}
	}
	if w, h, ok := strings.Cut(*clipSize, "x"); ok {
		o.clipWidth, _ = strconv.Atoi(w)
		o.clipHeight, _ = strconv.Atoi(h)
	}
	o.stream.bitrate = *kbps * 1000
	o.serverFlags = strings.Fields(*serverFlags)
	switch {
	case o.duration <= 0:
		return nil, errors.New("--duration: want more than 0")
	case o.runs < 1:
		return nil, errors.New("--runs: want 1 or more")
	case o.stream.bitrate <= 0 || o.stream.fps <= 0:
		return nil, errors.New("--bitrate and --fps: want more than 0")
	case o.stream.payloadSize < 64 || o.stream.payloadSize > 1400:
		return nil, errors.New("--payload: want 64 to 1400 bytes")
	case o.stream.keyframeSize < 1:
		return nil, errors.New("--keyframe-size: want 1 or more")
	case o.client != "lite" && o.client != "pion":
		return nil, errors.New("--client: want lite or pion")
	case o.meeting < 0 || o.meeting == 1:
		return nil, errors.New("--meeting: want 2 publishers or more")
	case o.joinConcurrency < 1:
		return nil, errors.New("--join-concurrency: want 1 or more")
	case o.record != nil && o.meeting > 0:
		return nil, errors.New("--record and --meeting: one mode at a time")
	case o.recordSubs < 1:
		return nil, errors.New("--record-subscribers: want 1 or more")
	case o.clipLength < time.Second || o.clipLength%time.Second != 0:
		return nil, errors.New("--clip-length: want whole seconds, 1s or more")
	case o.clipWidth < 16 || o.clipHeight < 16 || o.clipWidth%2 != 0 || o.clipHeight%2 != 0:
		return nil, fmt.Errorf("--clip-size %q: want WIDTHxHEIGHT, even numbers of 16 or more", *clipSize)
	case (o.simulcast || o.compareBWE) && (o.meeting > 0 || o.record != nil):
		return nil, errors.New("--simulcast and --compare-bwe: the fan-out sweep only, not --meeting or --record")
	case o.compareBWE && strings.Contains(*serverFlags, "rtc-bandwidth-estimation"):
		return nil, errors.New("--compare-bwe sets --rtc-bandwidth-estimation itself: leave it out of --server-flags")
	}
	debug.SetGCPercent(*gogc)
	return o, nil
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "sfubench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	reportName := "sfu.md"
	switch {
	case o.meeting > 0:
		reportName = "sfu-meeting.md"
	case o.record != nil:
		reportName = "sfu-record.md"
	case o.simulcast:
		reportName = "sfu-simulcast.md"
	case o.compareBWE:
		reportName = "sfu-bwe.md"
	}
	if err := serverproc.Defaults(ctx, tmp, &o.serverBin, &o.out, reportName); err != nil {
		return err
	}
	if o.meeting > 0 {
		return runMeetings(ctx, o, tmp)
	}
	if o.record != nil {
		return runRecords(ctx, o, tmp)
	}

	logf("stream: %.2f Mbps, %d fps, %.0f packets/s, %d-byte payloads; %d run(s) of %v", float64(o.stream.bitrate)/1e6,
		o.stream.fps, o.stream.packetsPerSecond(), o.stream.payloadSize, o.runs, o.subscribers)
	if o.simulcast {
		logf("simulcast: layers %v at %.2f, %.2f and %.2f Mbps", simulcastRIDs, float64(o.stream.layer(0).bitrate)/1e6,
			float64(o.stream.layer(1).bitrate)/1e6, float64(o.stream.layer(2).bitrate)/1e6)
	}
	results := make([][]result, o.runs)
	for r := range o.runs {
		for _, n := range o.subscribers {
			var res result
			// With --compare-bwe, the estimation on and off, their order
			// alternating run by run so that a drift of the machine does
			// not favour one.
			order := []bool{true}
			if o.compareBWE {
				order = []bool{true, false}
				if r%2 == 1 {
					order = []bool{false, true}
				}
			}
			for _, bwe := range order {
				what, name, flags := "ivsrt", "sfu", o.serverFlags
				if !bwe {
					what, name = "ivsrt without bandwidth estimation", "sfu-nobwe"
					flags = append(slices.Clone(flags), noBWEFlag)
				}
				logf("run %d, %d subscribers: %s", r+1, n, what)
				m, err := runSFU(ctx, o, tmp, n, r+1, flags, name)
				if err != nil {
					return fmt.Errorf("run %d, %d subscribers, %s: %w", r+1, n, what, err)
				}
				logf("  %s", m.summary())
				if bwe {
					res.sfu = m
				} else {
					res.noBWE = m
				}
			}
			if o.baseline {
				logf("run %d, %d subscribers: relay", r+1, n)
				if res.relay, err = runBaseline(ctx, o, n); err != nil {
					return fmt.Errorf("run %d, %d subscribers, relay: %w", r+1, n, err)
				}
				logf("  %s", res.relay.summary())
			}
			results[r] = append(results[r], res)
		}
	}
	if o.jsonOut != "" {
		j := newJSONReport(o, "fanout")
		for r, run := range results {
			for _, res := range run {
				p := res.sfu.jsonPhase(r+1, o.stream.packetsPerSecond()*float64(res.sfu.n))
				if res.relay != nil {
					f := res.relay.jsonFigures()
					p.Relay = &f
				}
				if res.noBWE != nil {
					f := res.noBWE.jsonFigures()
					p.SFUNoBWE = &f
				}
				j.Phases = append(j.Phases, p)
			}
		}
		if err := report.WriteJSON(o.jsonOut, j); err != nil {
			return err
		}
	}
	return report.Write(o.out, writeReport(o, results))
}

// runMeetings measures the meeting for each viewer count, o.runs times.
func runMeetings(ctx context.Context, o *options, tmp string) error {
	logf("stream: %.2f Mbps, %d fps, %.0f packets/s per publisher; meeting of %d publishers, %d run(s) of viewers %v",
		float64(o.stream.bitrate)/1e6, o.stream.fps, o.stream.packetsPerSecond(), o.meeting, o.runs, o.viewers)
	results := make([][]*measurement, o.runs)
	j := newJSONReport(o, "meeting")
	for r := range o.runs {
		for _, v := range o.viewers {
			logf("run %d, meeting of %d, %d viewers", r+1, o.meeting, v)
			m, err := runMeeting(ctx, o, tmp, v)
			if err != nil {
				return fmt.Errorf("run %d, meeting with %d viewers: %w", r+1, v, err)
			}
			logf("  %s", m.meetingSummary())
			results[r] = append(results[r], m)
			j.Phases = append(j.Phases, m.jsonPhase(r+1, o.stream.packetsPerSecond()*float64(m.n)))
		}
	}
	if o.jsonOut != "" {
		if err := report.WriteJSON(o.jsonOut, j); err != nil {
			return err
		}
	}
	return report.Write(o.out, writeMeetingReport(o, results))
}

// result is one run's measurements for one subscriber count: ivsrt as
// started (with its bandwidth estimation, unless --server-flags turns it
// off), the relay, and with --compare-bwe ivsrt without the estimation.
type result struct {
	sfu, relay, noBWE *measurement
}

// noBWEFlag turns the server's bandwidth estimation off.
const noBWEFlag = "--rtc-bandwidth-estimation=false"

// median returns the median of xs (the mean of the middle two for an
// even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
