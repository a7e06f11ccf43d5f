package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt/bot"
)

const botUsage = `usage: ivsrt bot (--token TOKEN ... | --stage-arn ARN) [flags]

Synthetic participants: each joins the stage, publishes a test pattern (VP8
colour bars, a moving box, the frame number) and a tone (Opus, 440 Hz with a
beep every second), optionally subscribes to every other publisher and
counts what it receives, and stays for --duration or until interrupted.
Nothing to install: the video is encoded here, the audio is built in.

With --stage-arn, each bot gets a participant token of its own from the
server (CreateParticipantToken, user id PREFIX-N); with --token, give one
token per bot.

Live statistics go to the terminal every --interval; with --output json
they are JSON lines ({"time":..., "bots":[...]}), the last one the final
count. The exit status is 0 when every bot joined (and published, when it
publishes), 255 otherwise.

Example:
  ivsrt bot --stage-arn arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234 --count 3 --subscribe --duration 30s

Flags:
`

// botFlags are the bot command's flags.
type botFlags struct {
	tokens    stringList
	stageARN  string
	count     int
	duration  time.Duration
	userID    string
	noVideo   bool
	noAudio   bool
	subscribe bool
	size      string
	fps       int
	interval  time.Duration
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func newBotFlagSet(f *botFlags, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ivsrt bot", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Var(&f.tokens, "token", "participant token to join with; repeat it for more bots")
	fs.StringVar(&f.stageARN, "stage-arn", "", "stage to join: each bot gets a token from the server")
	fs.IntVar(&f.count, "count", 0, "how many bots (default: one, or one per --token)")
	fs.DurationVar(&f.duration, "duration", 0, "how long to stay, e.g. 30s or 5m; 0 until interrupted")
	fs.StringVar(&f.userID, "user-id", "bot", "user id of minted tokens: PREFIX-1, PREFIX-2, ...")
	fs.BoolVar(&f.noVideo, "no-video", false, "do not publish video")
	fs.BoolVar(&f.noAudio, "no-audio", false, "do not publish audio")
	fs.BoolVar(&f.subscribe, "subscribe", false, "subscribe to every other publisher and report what arrives")
	fs.StringVar(&f.size, "size", "320x240", "video size, multiples of 16")
	fs.IntVar(&f.fps, "fps", 30, "video frames per second")
	fs.DurationVar(&f.interval, "interval", time.Second, "how often to report")
	fs.Usage = func() {
		fmt.Fprint(out, botUsage)
		fs.PrintDefaults()
		fmt.Fprint(out, "\nAlso: --endpoint-url, --region, --profile (for --stage-arn), --output json.\n")
	}
	return fs
}

// botFlagNames are the bot's flags, for completion.
func botFlagNames() []string {
	var names []string
	newBotFlagSet(&botFlags{}, io.Discard).VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	return names
}

// runBot is `ivsrt bot`.
func runBot(ctx context.Context, g *globals, args []string, io IO) int {
	var f botFlags
	fs := newBotFlagSet(&f, io.Stderr)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		return fail(io, usageErrorf("Unknown options: %s", strings.Join(fs.Args(), ", ")))
	}
	var width, height int
	if _, err := fmt.Sscanf(f.size, "%dx%d", &width, &height); err != nil {
		return fail(io, usageErrorf("argument --size: want WIDTHxHEIGHT, got %q", f.size))
	}
	if _, err := bot.NewPattern(width, height, 0); err != nil {
		return fail(io, usageErrorf("argument --size: %v", err))
	}
	if f.fps < 1 || f.fps > 60 {
		return fail(io, usageErrorf("argument --fps: want 1 to 60, got %d", f.fps))
	}
	if f.interval <= 0 {
		f.interval = time.Second
	}
	switch {
	case len(f.tokens) > 0 && f.stageARN != "":
		return fail(io, usageErrorf("give --token or --stage-arn, not both"))
	case len(f.tokens) == 0 && f.stageARN == "":
		return fail(io, usageErrorf("the following arguments are required: --token or --stage-arn"))
	case len(f.tokens) > 0 && f.count > 0 && f.count != len(f.tokens):
		return fail(io, usageErrorf("--count %d with %d tokens: a token is one participant, give one --token per bot", f.count, len(f.tokens)))
	}
	if f.count == 0 {
		f.count = max(1, len(f.tokens))
	}
	if f.count > 1000 {
		return fail(io, usageErrorf("argument --count: at most 1000 bots, got %d", f.count))
	}

	tokens := []string(f.tokens)
	if f.stageARN != "" {
		var err error
		if tokens, err = mintTokens(ctx, g, io, f); err != nil {
			return fail(io, err)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	bots := make([]*bot.Bot, len(tokens))
	for i, tok := range tokens {
		b, err := bot.New(bot.Config{Token: tok, Index: i, Video: !f.noVideo, Audio: !f.noAudio,
			Width: width, Height: height, FPS: f.fps, Subscribe: f.subscribe, HTTPClient: httpClient})
		if err != nil {
			return fail(io, usageErrorf("argument --token: bot %d: %v", i+1, err))
		}
		bots[i] = b
	}
	var wg sync.WaitGroup
	for _, b := range bots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.Run(runCtx)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	isTerm, _ := io.Terminal()
	json := g.outputGiven && g.output == "json"
	rep := &reporter{out: io.Stdout, json: json, live: isTerm && !json, publish: !f.noVideo || !f.noAudio}
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			rep.report(snapshot(bots), false)
		}
	}
	final := snapshot(bots)
	rep.report(final, true)
	for _, s := range final {
		if s.Error != "" || s.SessionID == "" || rep.publish && s.Sent.VideoFrames+s.Sent.AudioPackets == 0 {
			return ExitOther
		}
	}
	if ctx.Err() != nil {
		return ExitInterrupted
	}
	return ExitOK
}

func snapshot(bots []*bot.Bot) []bot.Stats {
	out := make([]bot.Stats, len(bots))
	for i, b := range bots {
		out[i] = b.Stats()
	}
	return out
}

// mintTokens creates a token per bot through the API.
func mintTokens(ctx context.Context, g *globals, io IO, f botFlags) ([]string, error) {
	client, err := newClient(g, io.Getenv, io.Stderr)
	if err != nil {
		return nil, err
	}
	if err := checkCredentials(ctx, client.Options().Credentials); err != nil {
		return nil, err
	}
	op := operationByCommand("create-participant-token")
	tokens := make([]string, f.count)
	for i := range tokens {
		in := newObject()
		in.set("stageArn", f.stageARN)
		in.set("userId", fmt.Sprintf("%s-%d", f.userID, i+1))
		v, err := call(ctx, client, op, in)
		if err != nil {
			return nil, err
		}
		o, _ := v.(*object)
		var tok string
		if o != nil {
			if pt, ok := o.vals["participantToken"].(*object); ok {
				tok, _ = pt.vals["token"].(string)
			}
		}
		if tok == "" {
			return nil, fmt.Errorf("CreateParticipantToken returned no token")
		}
		tokens[i] = tok
	}
	return tokens, nil
}

// reporter prints the bots' statistics: JSON lines, a live table on a
// terminal, or a line per report.
type reporter struct {
	out     io.Writer
	json    bool
	live    bool
	publish bool
	prev    []bot.Stats
	lines   int
}

func (r *reporter) report(stats []bot.Stats, final bool) {
	if r.json {
		line, _ := json.Marshal(struct {
			Time  string      `json:"time"`
			Final bool        `json:"final"`
			Bots  []bot.Stats `json:"bots"`
		}{time.Now().UTC().Format(time.RFC3339Nano), final, stats})
		fmt.Fprintf(r.out, "%s\n", line)
		return
	}
	var b strings.Builder
	if r.live && r.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", r.lines) // over the last report
	}
	lines := 0
	var joined, publishing, failed int
	var sentBits, recvBits, recvFrames float64
	for i, s := range stats {
		switch {
		case s.Error != "":
			failed++
		case s.State == bot.StatePublishing:
			publishing++
			joined++
		case s.State == bot.StateJoined:
			joined++
		}
		// The first report covers the time since each bot's media started.
		var prev *bot.Stats
		if i < len(r.prev) {
			prev = &r.prev[i]
		}
		rates := s.RatesSince(prev)
		sent, recv, frames := rates.SentBits, rates.ReceivedBits, rates.ReceivedFrames
		sentBits += sent
		recvBits += recv
		recvFrames += frames
		if len(stats) <= 20 && (r.live || final) {
			line := fmt.Sprintf("bot %-3d %-12s %-10s sent %s", s.Index+1, s.ParticipantID, s.State, formatBits(sent))
			if len(s.Received) > 0 {
				line += fmt.Sprintf("  received from %d: %s, %.0f frames/s", len(s.Received), formatBits(recv), frames)
			}
			if final {
				line = fmt.Sprintf("bot %-3d %-12s %-10s sent %d frames, %d audio packets", s.Index+1, s.ParticipantID, s.State,
					s.Sent.VideoFrames, s.Sent.AudioPackets)
				for _, rs := range s.Received {
					line += fmt.Sprintf("\n        received from %s: %d frames (%d keyframes), %d audio packets, %s video, %s audio",
						rs.ParticipantID, rs.VideoFrames, rs.Keyframes, rs.AudioPackets, formatBits(rs.VideoBitrate), formatBits(rs.AudioBitrate))
				}
			}
			if s.Error != "" {
				line += "  error: " + s.Error
			}
			b.WriteString(line + "\n")
			lines += strings.Count(line, "\n") + 1
		}
	}
	elapsed := 0.0
	if len(stats) > 0 {
		elapsed = stats[0].Elapsed
	}
	summary := fmt.Sprintf("%5.0fs  bots %d: %d joined, %d publishing, %d failed  sent %s  received %s, %.0f frames/s",
		elapsed, len(stats), joined, publishing, failed, formatBits(sentBits), formatBits(recvBits), recvFrames)
	if final {
		summary = fmt.Sprintf("done after %.0fs: %d bots, %d failed", elapsed, len(stats), failed)
	}
	b.WriteString(summary + "\n")
	lines++
	fmt.Fprint(r.out, b.String())
	r.lines = lines
	if final {
		r.lines = 0
	}
	r.prev = stats
}

func formatBits(bps float64) string {
	switch {
	case bps >= 1e6:
		return strconv.FormatFloat(bps/1e6, 'f', 1, 64) + " Mb/s"
	case bps >= 1e3:
		return strconv.FormatFloat(bps/1e3, 'f', 0, 64) + " kb/s"
	}
	return strconv.FormatFloat(bps, 'f', 0, 64) + " b/s"
}
