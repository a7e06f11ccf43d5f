// Command suite runs ivsrt's benchmarks one after the other on this
// machine and writes one report with charts: the control plane against
// concurrency (apibench), one publisher fanned out to many subscribers
// beside a plain UDP relay (sfubench), a 12-publisher meeting (sfubench
// --meeting), join to first packet, event delivery (eventbench) and the
// server's memory per participant.
//
// Run it from the module root:
//
//	go run ./bench/suite            # the whole suite, about 5 minutes on 2 cores
//	go run ./bench/suite --quick    # a smoke run of about 3 minutes
//
// It writes bench/results/<date>/report.md, its SVG charts and the
// benchmarks' own reports and data (suite-*.md, suite-*.json) in the
// same folder. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// options are the suite's flags.
type options struct {
	quick     bool
	out       string
	sections  map[string]bool
	server    string
	quietWait time.Duration
	png       bool
	rewrite   bool
	args      []string
}

// sectionNames are the benchmarks the suite runs, in this order. The join
// and memory sections of the report come from the fan-out and meeting
// measurements.
var sectionNames = []string{"api", "fanout", "meeting", "events"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	killChildren()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{args: args}
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "a smoke run of about 3 minutes: fewer points, 2 s phases")
	fs.StringVar(&o.out, "out", "", "folder for report.md, the charts and the benchmarks' own reports; default bench/results/<date>")
	sections := fs.String("sections", strings.Join(sectionNames, ","), "benchmarks to run, comma-separated: "+strings.Join(sectionNames, ", "))
	fs.StringVar(&o.server, "server", "", "ivsrt binary to measure; default: build ./cmd/ivsrt")
	fs.DurationVar(&o.quietWait, "quiet-wait", 3*time.Second, "before each phase, each benchmark waits up to this long for the rest of the machine to go idle (0 with --quick unless given)")
	fs.BoolVar(&o.png, "png", false, "also render each chart to PNG with a headless Chromium, if one is installed")
	fs.BoolVar(&o.rewrite, "report-only", false, "run nothing: write report.md and the charts again from the suite-*.json already in --out")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick && !set["quiet-wait"] {
		o.quietWait = 0
	}
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(","+strings.Join(sectionNames, ",")+",", ","+s+",") {
			return nil, fmt.Errorf("--sections: unknown %q: want %s", s, strings.Join(sectionNames, ", "))
		}
		o.sections[s] = true
	}
	return o, nil
}

func run(ctx context.Context, args []string) error {
	began := time.Now()
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	root, err := procstat.ModuleRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results", began.Format("2006-01-02"))
	}
	if o.out, err = filepath.Abs(o.out); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "suite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if o.rewrite {
		return rewrite(o, root, began)
	}
	idle := machineBusy(ctx, 2*time.Second)
	logf("the machine had %.2f cores busy before the start", idle)
	logf("building ivsrt and the benchmarks")
	bins, err := build(ctx, root, tmp, o.server)
	if err != nil {
		return err
	}
	r := &report{opts: o, root: root, began: began, idleBefore: idle}
	for _, s := range plan(o, bins) {
		if !o.sections[s.name] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("%s: %s", s.name, s.title)
		res := runSection(ctx, root, s)
		if res.err != nil {
			logf("%s failed: %v", s.name, res.err)
		} else {
			logf("%s done in %s, other work on the machine %.2f cores on average", s.name, res.elapsed.Round(time.Second), res.otherCores)
		}
		r.results = append(r.results, res)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.total = time.Since(began)
	path, charts, err := r.write()
	if err != nil {
		return err
	}
	logf("wrote %s and %d charts", path, len(charts))
	if o.png {
		renderPNGs(ctx, charts)
	}
	logf("total %s", time.Since(began).Round(time.Second))
	return nil
}

// rewrite writes the report again from the JSON of an earlier run.
func rewrite(o *options, root string, began time.Time) error {
	r := &report{opts: o, root: root, began: began}
	var saved runRecord
	if data, err := os.ReadFile(filepath.Join(o.out, runRecordFile)); err == nil {
		if err := json.Unmarshal(data, &saved); err != nil {
			return fmt.Errorf("%s: %w", runRecordFile, err)
		}
		r.began, r.total, r.idleBefore = saved.Began, time.Duration(saved.TotalSeconds*float64(time.Second)), saved.IdleBefore
		o.args, o.quick = saved.Args, saved.Quick
	}
	for _, s := range plan(o, binaries{}) {
		if !o.sections[s.name] {
			continue
		}
		res := &sectionResult{section: s}
		for _, rec := range saved.Sections {
			if rec.Name == s.name {
				res.elapsed = time.Duration(rec.Seconds * float64(time.Second))
				res.machineCores, res.childCores, res.otherCores = rec.MachineCores, rec.ChildCores, rec.OtherCores
				if rec.Error != "" {
					res.err = errors.New(rec.Error)
				}
			}
		}
		if res.err == nil {
			res.data, res.err = os.ReadFile(s.json)
		}
		r.results = append(r.results, res)
	}
	path, charts, err := r.write()
	if err != nil {
		return err
	}
	logf("wrote %s and %d charts", path, len(charts))
	if o.png {
		renderPNGs(context.Background(), charts)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s suite: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
