// Command apibench measures ivsrt's control plane: C concurrent clients,
// each an ivsrealtime SDK client signing every request, call one operation
// at a time for a fixed duration, against an ivsrt server it starts in a
// process of its own (or one given with --endpoint). In the same run the
// same clients call a plain net/http server that answers {} without any
// checks, the baseline that shows what the client and HTTP stack cost.
//
// See bench/README.md for the flags and how to read the results.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// config is what the flags say.
type config struct {
	Endpoint    string
	ServerPID   int
	Server      string
	Concurrency int
	Clients     []int // a sweep of concurrencies, each measured as --concurrency is
	Rate        int
	Duration    time.Duration
	Warmup      time.Duration
	Ops         []string
	Stages      int
	Runs        int
	Baseline    bool
	CPUProfile  string
	ClientProf  string
	ClientGOGC  int
	Out         string
	JSON        string
	QuietWait   time.Duration
	MaxOther    time.Duration
	Retries     int
	KeyID       string
	Secret      string
}

// hidden flags start the helper servers; they are not for people.
var hidden = map[string]bool{"baseline-server": true, "profile-server": true, "listen": true, "control": true, "data": true}

func main() {
	var (
		cfg            config
		ops            string
		baselineServer bool
		profileServer  bool
		listen         string
		control        string
		data           string
	)
	fs := flag.NewFlagSet("apibench", flag.ContinueOnError)
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "URL of a running ivsrt server; by default apibench builds and starts one")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "with --endpoint: process id of the server, to read its CPU time (local servers only)")
	fs.StringVar(&cfg.Server, "server", "", "ivsrt binary to start; by default apibench builds ./cmd/ivsrt")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "concurrent clients")
	clients := fs.String("clients", "", "a sweep of concurrent clients, comma-separated (e.g. 1,4,16,64): each count measured as --concurrency is, with fresh servers; overrides --concurrency")
	fs.IntVar(&cfg.Rate, "rate", 0, "calls per second to offer in all, spread over the clients; 0 for as many as they can make")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per phase")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before each phase")
	fs.StringVar(&ops, "ops", "CreateParticipantToken,GetStage,ListStages", "operations to measure, one phase each, comma-separated")
	fs.IntVar(&cfg.Stages, "stages", 100, "stages created at setup")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs, each with fresh servers; the summary shows the median of each column")
	fs.BoolVar(&cfg.Baseline, "baseline", true, "also measure the plain HTTP baseline")
	fs.DurationVar(&cfg.QuietWait, "quiet-wait", 20*time.Second, "before each phase, wait up to this long for the rest of the machine to be idle; 0 to not wait")
	fs.DurationVar(&cfg.MaxOther, "max-other", time.Second, "CPU time other work may take during a phase before the phase is measured again")
	fs.IntVar(&cfg.Retries, "retries", 1, "times a disturbed phase is measured again")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "folder for a server CPU profile per phase (the server then runs as this binary's own wiring of the ivsrt API)")
	fs.IntVar(&cfg.ClientGOGC, "client-gogc", 400, "GOGC of the load generator (not of the servers): less of the machine spent collecting the clients' garbage")
	fs.StringVar(&cfg.ClientProf, "client-cpuprofile", "", "file for a CPU profile of the load generator itself, all phases")
	fs.StringVar(&cfg.Out, "out", "", `results file; default bench/results/<date>/api.md in the module, "-" for none`)
	fs.StringVar(&cfg.JSON, "json", "", "also write the results (each run's rows and their medians, per concurrency) as JSON to this file")
	fs.StringVar(&cfg.KeyID, "access-key-id", os.Getenv("AWS_ACCESS_KEY_ID"), "with --endpoint: access key id to sign with (AWS_ACCESS_KEY_ID)")
	fs.StringVar(&cfg.Secret, "secret-access-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "with --endpoint: secret access key (AWS_SECRET_ACCESS_KEY)")
	fs.BoolVar(&baselineServer, "baseline-server", false, "serve the baseline on --listen")
	fs.BoolVar(&profileServer, "profile-server", false, "serve the ivsrt API on --listen, pprof on --control, data in --data")
	fs.StringVar(&listen, "listen", "", "address to serve on")
	fs.StringVar(&control, "control", "", "pprof address")
	fs.StringVar(&data, "data", "", "data folder")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: go run ./bench/apibench [flags]\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if hidden[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  --%s %s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "false" && f.Name != "secret-access-key" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}

	var err error
	switch {
	case baselineServer:
		err = serveBaseline(listen)
	case profileServer:
		err = serveProfiled(listen, control, data, os.Getenv("APIBENCH_KEY_ID"), os.Getenv("APIBENCH_SECRET"))
	default:
		for _, op := range strings.Split(ops, ",") {
			if op = strings.TrimSpace(op); op != "" {
				cfg.Ops = append(cfg.Ops, op)
			}
		}
		if cfg.Clients, err = parseCounts(*clients); err != nil {
			err = fmt.Errorf("--clients %q: %w", *clients, err)
			break
		}
		err = bench(cfg, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	known := operations([]string{"x"})
	if len(c.Ops) == 0 {
		return errors.New("--ops: name at least one operation")
	}
	for _, op := range c.Ops {
		if known[op] == nil {
			return fmt.Errorf("--ops: unknown operation %q: want CreateParticipantToken, GetStage or ListStages", op)
		}
	}
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("--concurrency %d: want 1 or more", c.Concurrency)
	case c.Rate < 0:
		return fmt.Errorf("--rate %d: want 0 or more", c.Rate)
	case c.Duration < time.Second:
		return fmt.Errorf("--duration %v: want 1s or more", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup %v: want 0 or more", c.Warmup)
	case c.Stages < 1:
		return fmt.Errorf("--stages %d: want 1 or more", c.Stages)
	case c.Runs < 1:
		return fmt.Errorf("--runs %d: want 1 or more", c.Runs)
	case c.Endpoint != "" && (c.KeyID == "" || c.Secret == ""):
		return errors.New("--endpoint needs --access-key-id and --secret-access-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	case c.Endpoint != "" && c.CPUProfile != "":
		return errors.New("--cpuprofile needs a server apibench starts; drop --endpoint")
	case c.Endpoint == "" && c.ServerPID != 0:
		return errors.New("--server-pid goes with --endpoint")
	}
	return nil
}

// run is one run: every phase, and the baseline.
type run struct {
	Samples  []sample
	Baseline *sample
}

func bench(cfg config, args []string) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	root, rootErr := procstat.ModuleRoot()
	if cfg.Out == "" {
		if rootErr != nil {
			return rootErr
		}
		cfg.Out = filepath.Join(root, "bench", "results", time.Now().Format("2006-01-02"), "api.md")
	}
	tmp, err := os.MkdirTemp("", "apibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if cfg.Endpoint == "" && cfg.CPUProfile == "" && cfg.Server == "" {
		if rootErr != nil {
			return rootErr
		}
		logf("building ./cmd/ivsrt")
		if cfg.Server, err = procstat.BuildServer(context.Background(), root, tmp); err != nil {
			return err
		}
	}
	if cfg.CPUProfile != "" {
		if err := os.MkdirAll(cfg.CPUProfile, 0o755); err != nil {
			return err
		}
	}
	if cfg.Endpoint == "" {
		cfg.KeyID = "AKIAAPIBENCH" + strings.ToUpper(randomHex(4))
		cfg.Secret = randomHex(20)
	}

	debug.SetGCPercent(cfg.ClientGOGC)
	if cfg.ClientProf != "" {
		f, err := os.Create(cfg.ClientProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	counts := cfg.Clients
	if len(counts) == 0 {
		counts = []int{cfg.Concurrency}
	}
	sweep := make([][]run, len(counts))
	for k, c := range counts {
		cc := cfg
		cc.Concurrency = c
		for i := range cfg.Runs {
			logf("%d clients, run %d of %d", c, i+1, cfg.Runs)
			r, err := benchRun(cc, i+1, filepath.Join(tmp, fmt.Sprintf("c%d-run%d", c, i+1)))
			if err != nil {
				return fmt.Errorf("%d clients, run %d: %w", c, i+1, err)
			}
			sweep[k] = append(sweep[k], r)
		}
	}

	var report string
	if len(cfg.Clients) == 0 {
		report = formatReport(cfg, args, sweep[0])
	} else {
		report = formatSweep(cfg, args, sweep)
	}
	if cfg.JSON != "" {
		if err := writeJSON(cfg, counts, sweep); err != nil {
			return err
		}
	}
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

func benchRun(cfg config, n int, dir string) (run, error) {
	var r run
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}
	self, err := os.Executable()
	if err != nil {
		return r, err
	}

	tgt := target{url: cfg.Endpoint, pid: cfg.ServerPID}
	var pprofAddr string
	if cfg.Endpoint == "" {
		addr, err := freeAddr()
		if err != nil {
			return r, err
		}
		var p *process
		if cfg.CPUProfile != "" {
			if pprofAddr, err = freeAddr(); err != nil {
				return r, err
			}
			os.Setenv("APIBENCH_KEY_ID", cfg.KeyID)
			os.Setenv("APIBENCH_SECRET", cfg.Secret)
			p, err = startProcess("profiling server", self, []string{"--profile-server", "--listen", addr,
				"--control", pprofAddr, "--data", filepath.Join(dir, "data")}, addr, filepath.Join(dir, "server.log"))
		} else {
			p, err = startProcess("ivsrt serve", cfg.Server, []string{"serve", "--listen", addr,
				"--data", filepath.Join(dir, "data"), "--access-key-id", cfg.KeyID, "--secret-access-key", cfg.Secret,
				"--turn-udp-port", "-1", "--rtmp-port", "-1", "--log-level", "warn"}, addr, filepath.Join(dir, "server.log"))
		}
		if err != nil {
			return r, err
		}
		defer p.stop()
		tgt = target{url: "http://" + addr, pid: p.pid()}
	}

	var base target
	if cfg.Baseline {
		addr, err := freeAddr()
		if err != nil {
			return r, err
		}
		p, err := startProcess("baseline server", self, []string{"--baseline-server", "--listen", addr}, addr, filepath.Join(dir, "baseline.log"))
		if err != nil {
			return r, err
		}
		defer p.stop()
		base = target{url: "http://" + addr, pid: p.pid()}
	}

	tr := newTransport(cfg.Concurrency)
	defer tr.CloseIdleConnections()
	ctx := context.Background()
	setup := newClient(tgt.url, cfg.KeyID, cfg.Secret, tr)
	arns, err := createStages(ctx, setup, cfg.Stages)
	if err != nil {
		return r, err
	}
	if cfg.Endpoint != "" {
		defer func() {
			if err := deleteStages(ctx, setup, arns); err != nil {
				logf("cleaning up: %v", err)
			}
		}()
	}
	ops := operations(arns)

	clients := make([]*ivsrealtime.Client, cfg.Concurrency)
	for i := range clients {
		clients[i] = newClient(tgt.url, cfg.KeyID, cfg.Secret, tr)
	}
	for _, op := range cfg.Ops {
		var onMeasure func() error
		if pprofAddr != "" {
			path := filepath.Join(cfg.CPUProfile, fmt.Sprintf("%s-run%d.pprof", op, n))
			onMeasure = func() error { return fetchProfile(pprofAddr, cfg.Duration, path) }
		}
		s, err := cfg.measure(func() (sample, error) {
			return phase(op, clients, tgt, ops[op], cfg.Rate, cfg.Warmup, cfg.Duration, onMeasure)
		})
		if err != nil {
			return r, err
		}
		r.Samples = append(r.Samples, s)
	}

	if cfg.Baseline {
		for i := range clients {
			clients[i] = newClient(base.url, cfg.KeyID, cfg.Secret, tr)
		}
		s, err := cfg.measure(func() (sample, error) {
			return phase(baselineName, clients, base, ops["GetStage"], cfg.Rate, cfg.Warmup, cfg.Duration, nil)
		})
		if err != nil {
			return r, err
		}
		r.Baseline = &s
	}
	return r, nil
}

// measure runs a phase once the machine is quiet, and again (up to
// --retries times) while something else took more than --max-other of CPU
// during it. It keeps the least disturbed attempt.
func (c config) measure(run func() (sample, error)) (sample, error) {
	var best sample
	for attempt := 0; ; attempt++ {
		waitQuiet(c.QuietWait)
		s, err := run()
		if err != nil {
			return s, err
		}
		logSample(s)
		if attempt == 0 || s.OtherCPU < best.OtherCPU {
			best = s
		}
		if s.OtherCPU <= c.MaxOther || attempt >= c.Retries {
			return best, nil
		}
		logf("  disturbed: %.2f s of CPU went to other work; measuring again", s.OtherCPU.Seconds())
	}
}

// waitQuiet waits, up to max, until the machine has been nearly idle for
// a second: other work running during a phase takes cores from it.
func waitQuiet(max time.Duration) {
	if max <= 0 {
		return
	}
	const window, idle = time.Second, 0.15 // cores busy at most
	deadline := time.Now().Add(max)
	logged := false
	for {
		before := machineCPU()
		time.Sleep(window)
		busy := (machineCPU() - before).Seconds() / window.Seconds()
		if busy <= idle {
			return
		}
		if time.Now().After(deadline) {
			logf("machine still busy (%.2f cores) after %v; measuring anyway", busy, max)
			return
		}
		if !logged {
			logf("waiting for the machine to be idle (%.2f cores busy)", busy)
			logged = true
		}
	}
}

const baselineName = "baseline: GetStage answered {}"

// fetchProfile takes a CPU profile of d from a --profile-server and saves it.
func fetchProfile(addr string, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("cpu profile: %s: %s", resp.Status, body)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	logf("wrote %s", path)
	return f.Close()
}

func logSample(s sample) {
	other := -1.0
	if s.OtherCPU >= 0 {
		other = s.OtherCPU.Seconds()
	}
	logf("  %-32s %8d req %6d err %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  µs/req server %s client %s  other %s s",
		s.Op, s.Requests, s.Errors, s.Throughput(), ms(s.Percentile(0.50)), ms(s.Percentile(0.99)),
		fmtMicros(s.CPUPerRequest(s.ServerCPU)), fmtMicros(s.CPUPerRequest(s.ClientCPU)), fmtSeconds(other))
	if s.FirstError != "" {
		logf("    first error: %s", s.FirstError)
	}
}

// parseCounts reads a comma-separated list of positive numbers; "" is
// none.
func parseCounts(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, errors.New("want positive numbers separated by commas")
		}
		out = append(out, n)
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
