// Command eventbench measures how ivsrt delivers its event stream to a
// webhook: an `ivsrt serve` it starts in a process of its own POSTs every
// event to a receiver inside the bench, which checks each signature and
// notes when each envelope arrives. Three phases:
//
//  1. throughput: concurrent SDK clients call UpdateStage on S stages; the
//     bench reports the API's acks per second, the events delivered per
//     second, the latency from each ack to the arrival of its event and
//     the backlog left at the end; beside it, the same load on a server
//     without a sink, and the bench's own client POSTing to the receiver
//     (its ceiling);
//  2. participants: a bot joins and publishes, is disconnected by the API,
//     another leaves by itself; the time from each to its event;
//  3. outage: the receiver is down while events are written, then comes
//     back; the time until all have arrived, once each and in order.
//
// Run it from the module root:
//
//	go run ./bench/eventbench
//
// See bench/README.md for the flags and how to read the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// hookSecret signs the webhook requests.
const hookSecret = "eventbench-webhook-secret"

// config is what the flags say.
type config struct {
	Runs         int
	Duration     time.Duration
	Warmup       time.Duration
	Stages       []int
	MaxClients   int
	Rate         int
	Reps         int
	OutageEvents int
	OutageStages int
	OutageHold   time.Duration
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	DrainTimeout time.Duration
	QuietWait    time.Duration
	Phases       map[string]bool
	Quick        bool
	Server       string
	Out          string
	JSON         string
	Args         []string
}

var phaseNames = []string{"throughput", "participants", "outage"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	killChildren()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "eventbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	cfg := &config{Args: args}
	fs := flag.NewFlagSet("eventbench", flag.ContinueOnError)
	fs.IntVar(&cfg.Runs, "runs", 3, "runs, each with fresh servers; the summary shows the median of each figure")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time of each throughput phase")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before each throughput phase")
	stages := fs.String("stages", "1,16,64", "stage counts of the throughput sweep, comma-separated")
	fs.IntVar(&cfg.MaxClients, "max-clients", 32, "most concurrent API clients: a sweep point with S stages has min(S, this) clients")
	fs.IntVar(&cfg.Rate, "rate", 0, "UpdateStage calls per second offered in all by the throughput phase's clients; 0 for as many as they can make")
	fs.IntVar(&cfg.Reps, "reps", 20, "times the participant phase joins, disconnects and leaves")
	fs.IntVar(&cfg.OutageEvents, "outage-events", 2000, "events written while the receiver is down")
	fs.IntVar(&cfg.OutageStages, "outage-stages", 16, "stages those events are spread over")
	fs.DurationVar(&cfg.OutageHold, "outage-hold", 2*time.Second, "how long the receiver stays down once the events are written")
	fs.DurationVar(&cfg.MinBackoff, "min-backoff", 100*time.Millisecond, "first wait between tries of the outage phase's sink")
	fs.DurationVar(&cfg.MaxBackoff, "max-backoff", time.Second, "longest wait between tries of the outage phase's sink")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 5*time.Minute, "longest wait for the events still owed after a phase")
	fs.DurationVar(&cfg.QuietWait, "quiet-wait", 10*time.Second, "before each phase, wait up to this long for the rest of the machine to be idle; 0 to not wait")
	phases := fs.String("phases", strings.Join(phaseNames, ","), "phases to run, comma-separated")
	fs.BoolVar(&cfg.Quick, "quick", false, "a fast smoke run: 1 run, 2 s phases, stages 1,16, 3 reps, 400 outage events, no quiet wait, no results file; flags given still win")
	fs.StringVar(&cfg.Server, "server", "", "ivsrt binary to measure; default: build ./cmd/ivsrt")
	fs.StringVar(&cfg.Out, "out", "", `results file; default bench/results/<date>/events.md in the module, "-" for none`)
	fs.StringVar(&cfg.JSON, "json", "", "also write the measurements, with the latency samples, as JSON to this file")
	gogc := fs.Int("client-gogc", 400, "GOGC of the bench process (the load generator and receiver); the server keeps Go's default")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if cfg.Quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]string{"runs": "1", "duration": "2s", "warmup": "500ms", "stages": "1,16", "reps": "3",
			"outage-events": "400", "outage-hold": "1s", "quiet-wait": "0", "drain-timeout": "1m", "out": "-"}
		for name, v := range quick {
			if !set[name] {
				fs.Set(name, v)
			}
		}
	}
	for _, f := range strings.Split(*stages, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--stages %q: want positive numbers separated by commas", *stages)
		}
		cfg.Stages = append(cfg.Stages, n)
	}
	cfg.Phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		p = strings.TrimSpace(p)
		if !strings.Contains(","+strings.Join(phaseNames, ",")+",", ","+p+",") {
			return nil, fmt.Errorf("--phases: unknown phase %q: want %s", p, strings.Join(phaseNames, ", "))
		}
		cfg.Phases[p] = true
	}
	switch {
	case cfg.Runs < 1:
		return nil, errors.New("--runs: want 1 or more")
	case cfg.Duration < 500*time.Millisecond:
		return nil, errors.New("--duration: want 500ms or more")
	case cfg.Warmup < 0:
		return nil, errors.New("--warmup: want 0 or more")
	case cfg.MaxClients < 1:
		return nil, errors.New("--max-clients: want 1 or more")
	case cfg.Rate < 0:
		return nil, errors.New("--rate: want 0 or more")
	case cfg.Reps < 1:
		return nil, errors.New("--reps: want 1 or more")
	case cfg.OutageStages < 1 || cfg.OutageEvents < cfg.OutageStages:
		return nil, errors.New("--outage-stages and --outage-events: want 1 or more stages and at least one event per stage")
	case cfg.MinBackoff <= 0 || cfg.MaxBackoff < cfg.MinBackoff:
		return nil, errors.New("--min-backoff and --max-backoff: want 0 < min ≤ max")
	case cfg.DrainTimeout <= 0:
		return nil, errors.New("--drain-timeout: want more than 0")
	}
	debug.SetGCPercent(*gogc)
	return cfg, nil
}

// runResult is what one run measured.
type runResult struct {
	Throughput   []throughput
	Participants *participants
	Outage       *outage
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "eventbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root, rootErr := procstat.ModuleRoot()
	if cfg.Server == "" {
		if rootErr != nil {
			return rootErr
		}
		logf("building ./cmd/ivsrt")
		if cfg.Server, err = procstat.BuildServer(ctx, root, tmp); err != nil {
			return err
		}
	}
	if cfg.Out == "" {
		if rootErr != nil {
			return rootErr
		}
		cfg.Out = filepath.Join(root, "bench", "results", time.Now().Format("2006-01-02"), "events.md")
	}
	rcv, err := newReceiver(hookSecret)
	if err != nil {
		return err
	}
	defer rcv.stop()

	var runs []runResult
	for i := range cfg.Runs {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i+1))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		var r runResult
		if cfg.Phases["throughput"] {
			for _, s := range cfg.Stages {
				logf("run %d of %d: throughput, %d stages", i+1, cfg.Runs, s)
				t, err := measureThroughput(ctx, cfg, dir, rcv, s)
				if err != nil {
					return fmt.Errorf("run %d, throughput with %d stages: %w", i+1, s, err)
				}
				logThroughput(t)
				r.Throughput = append(r.Throughput, t)
			}
		}
		if cfg.Phases["participants"] {
			logf("run %d of %d: participants", i+1, cfg.Runs)
			p, err := measureParticipants(ctx, cfg, dir, rcv)
			if err != nil {
				return fmt.Errorf("run %d, participants: %w", i+1, err)
			}
			logf("  join→Published p50 %.0f ms, disconnect→Left p50 %.1f ms, cancel→Left p50 %.1f ms",
				ms(percentile(p.Published, 0.5)), ms(percentile(p.Disconnect, 0.5)), ms(percentile(p.Cancel, 0.5)))
			r.Participants = &p
		}
		if cfg.Phases["outage"] {
			logf("run %d of %d: outage", i+1, cfg.Runs)
			o, err := measureOutage(ctx, cfg, dir, rcv)
			if err != nil {
				return fmt.Errorf("run %d, outage: %w", i+1, err)
			}
			logf("  %d of %d events in %.2f s after the receiver came back; %d duplicates, %d stages out of order",
				o.Arrived, o.Events, o.All.Seconds(), o.Recv.Dups, o.OutOfOrder)
			r.Outage = &o
		}
		runs = append(runs, r)
		os.RemoveAll(dir)
	}

	if cfg.JSON != "" {
		if err := writeJSON(cfg, runs); err != nil {
			return err
		}
	}
	report := formatReport(cfg, runs)
	fmt.Print(report)
	if cfg.Out != "-" {
		if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(cfg.Out, []byte(report), 0o644); err != nil {
			return err
		}
		logf("wrote %s", cfg.Out)
	}
	return nil
}

func logThroughput(t throughput) {
	logf("  acks %.0f/s (without a sink %.0f/s), delivered %.0f/s, latency p50 %.0f ms p99 %.0f ms, backlog %d drained in %.1f s; ceiling %.0f/s",
		t.Hook.Rate(), t.Plain.Rate(), float64(t.Delivered)/t.Hook.End.Sub(t.Hook.Start).Seconds(),
		ms(percentile(t.Latencies, 0.5)), ms(percentile(t.Latencies, 0.99)), t.Backlog, t.Drain.Seconds(), t.Ceiling.Rate())
	if t.Hook.Errors > 0 {
		logf("  %d UpdateStage errors, the first: %s", t.Hook.Errors, t.Hook.FirstErr)
	}
}

// waitQuiet waits, up to max, until the machine has been nearly idle for
// a second: other work running during a phase takes cores from it.
func waitQuiet(ctx context.Context, max time.Duration) {
	if max <= 0 {
		return
	}
	const window, idle = time.Second, 0.15 // cores busy at most
	deadline := time.Now().Add(max)
	for ctx.Err() == nil {
		before := machineCPU()
		sleep(ctx, window)
		busy := (machineCPU() - before).Seconds() / window.Seconds()
		if busy <= idle {
			return
		}
		if time.Now().After(deadline) {
			logf("  machine still busy (%.2f cores) after %v; measuring anyway", busy, max)
			return
		}
	}
}

// machineCPU is procstat.MachineCPU, 0 when /proc cannot be read.
func machineCPU() time.Duration {
	d, _ := procstat.MachineCPU()
	return d
}

// selfCPU returns the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
