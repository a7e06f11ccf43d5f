package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/plot"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// report gathers what the benchmarks measured into report.md and its
// charts.
type report struct {
	opts       *options
	root       string
	began      time.Time
	total      time.Duration
	idleBefore float64 // cores busy before the suite started
	results    []*sectionResult

	charts   []chartFile
	verdicts []verdict
}

// verdict is one line of the summary: a target and how the run did.
type verdict struct {
	target, result, status string
}

const (
	met    = "met"
	notMet = "**not met**"
	noGoal = "no target"
)

func status(ok bool) string {
	if ok {
		return met
	}
	return notMet
}

// chartFile is an SVG the report links.
type chartFile struct {
	path          string
	width, height int
}

// chart writes c as name (an .svg file in the output folder) and returns
// the Markdown that shows it.
func (r *report) chart(name, alt string, c *plot.Chart) string {
	if c.Width == 0 {
		c.Width = 760
	}
	if c.Height == 0 {
		c.Height = 420
	}
	path := filepath.Join(r.opts.out, name)
	if err := os.WriteFile(path, c.SVG(), 0o644); err != nil {
		return fmt.Sprintf("(chart %s not written: %v)\n\n", name, err)
	}
	r.charts = append(r.charts, chartFile{path, c.Width, c.Height})
	return fmt.Sprintf("![%s](%s)\n\n", alt, name)
}

func (r *report) result(name string) *sectionResult {
	for _, s := range r.results {
		if s.name == name {
			return s
		}
	}
	return nil
}

// decode reads a section's JSON into v; it returns a note for the report
// when the section did not run or failed.
func (r *report) decode(name string, v any) (ran bool, note string) {
	s := r.result(name)
	switch {
	case s == nil:
		return false, fmt.Sprintf("Not run (`--sections` left out %s).\n\n", name)
	case s.err != nil:
		return false, fmt.Sprintf("**The benchmark failed**: %s\n\n", s.err)
	}
	if err := json.Unmarshal(s.data, v); err != nil {
		return false, fmt.Sprintf("**Its results could not be read**: %v\n\n", err)
	}
	return true, ""
}

// write renders report.md and the charts into the output folder.
func (r *report) write() (string, []chartFile, error) {
	var body strings.Builder
	body.WriteString(r.apiSection())
	body.WriteString(r.fanoutSection())
	body.WriteString(r.meetingSection())
	body.WriteString(r.joinSection())
	body.WriteString(r.eventsSection())
	body.WriteString(r.memorySection())

	var b strings.Builder
	fmt.Fprintf(&b, "# ivsrt benchmark suite, %s\n\n", r.began.UTC().Format("2006-01-02 15:04 MST"))
	cmd := "go run ./bench/suite"
	if len(r.opts.args) > 0 {
		cmd += " " + strings.Join(r.opts.args, " ")
	}
	fmt.Fprintf(&b, "```\n%s\n```\n\n", cmd)
	fmt.Fprintf(&b, "- Machine: %s, %d cores, Linux %s, %s\n", procstat.CPUModel(), runtime.NumCPU(), procstat.ReadTrim("/proc/sys/kernel/osrelease"), runtime.Version())
	fmt.Fprintf(&b, "- Code: %s\n", gitDescribe(r.root))
	fmt.Fprintf(&b, "- Everything on 127.0.0.1: each benchmark starts `ivsrt serve` (built from ./cmd/ivsrt) as a process of its own, and its load generator shares the same cores\n")
	fmt.Fprintf(&b, "- Total time: **%s**", r.total.Round(time.Second))
	if r.opts.quick {
		b.WriteString(" (`--quick`: a smoke run, fewer points and 2 s phases; not for publishing)")
	}
	b.WriteString("\n\n")

	// Disturbance: the other work on the machine during each benchmark.
	b.WriteString("| benchmark | ran | took | machine busy (cores) | the benchmark and its servers (cores) | other work (cores) |\n|---|---|--:|--:|--:|--:|\n")
	disturbed := false
	for _, s := range r.results {
		state := "ok"
		if s.err != nil {
			state = "**failed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %.2f | %.2f |\n", s.name, state, s.elapsed.Round(time.Second), s.machineCores, s.childCores, s.otherCores)
		disturbed = disturbed || s.otherCores > 0.15
	}
	fmt.Fprintf(&b, "\nBefore the start the machine had %.2f cores busy. CPU of a benchmark and its servers is from `getrusage(RUSAGE_CHILDREN)` once it ended; other work is the machine's busy time (`/proc/stat`) less that: ", r.idleBefore)
	if disturbed {
		b.WriteString("**other work shared the 2 cores during this run** (the benchmarks' own tables give it per phase as \"other CPU\"); its throughput, loss and latency figures are worse than on an idle machine, CPU per operation much less so.\n\n")
	} else {
		b.WriteString("the machine was otherwise quiet.\n\n")
	}

	b.WriteString("## Targets\n\nThe aims of bench/TARGETS.md (the project's targets) and how this run did; details in each section.\n\n")
	b.WriteString("| target | this run | |\n|---|---|---|\n")
	for _, v := range r.verdicts {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", v.target, v.result, v.status)
	}
	b.WriteString("\n")
	b.WriteString(body.String())

	b.WriteString("## Files\n\n")
	b.WriteString("Each benchmark's own report, data and progress log, from this run, beside this file: ")
	var files []string
	for _, s := range r.results {
		base := strings.TrimSuffix(filepath.Base(s.json), ".json")
		files = append(files, fmt.Sprintf("[%s.md](%s.md) ([JSON](%s.json), [log](%s.log))", base, base, base, base))
	}
	b.WriteString(strings.Join(files, ", ") + ".\n")

	if err := r.saveRecord(); err != nil {
		return "", nil, err
	}
	path := filepath.Join(r.opts.out, "report.md")
	return path, r.charts, os.WriteFile(path, []byte(b.String()), 0o644)
}

// runRecordFile keeps what report.md says of the run itself (times,
// disturbance), so that --report-only can write the report again.
const runRecordFile = "suite-run.json"

type runRecord struct {
	Began        time.Time
	TotalSeconds float64
	IdleBefore   float64
	Args         []string
	Quick        bool
	Sections     []sectionRecord
}

type sectionRecord struct {
	Name                                 string
	Seconds                              float64
	MachineCores, ChildCores, OtherCores float64
	Error                                string
}

func (r *report) saveRecord() error {
	rec := runRecord{Began: r.began, TotalSeconds: r.total.Seconds(), IdleBefore: r.idleBefore, Args: r.opts.args, Quick: r.opts.quick}
	for _, s := range r.results {
		e := ""
		if s.err != nil {
			e = s.err.Error()
		}
		rec.Sections = append(rec.Sections, sectionRecord{s.name, s.elapsed.Seconds(), s.machineCores, s.childCores, s.otherCores, e})
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.opts.out, runRecordFile), append(data, '\n'), 0o644)
}

// other describes the other work during a section.
func (r *report) other(name string) string {
	s := r.result(name)
	if s == nil {
		return ""
	}
	if s.otherCores > 0.15 {
		return fmt.Sprintf("Other work on the machine: **%.2f cores on average** while this ran (of 2): the figures are disturbed.\n\n", s.otherCores)
	}
	return fmt.Sprintf("Other work on the machine: %.2f cores on average while this ran.\n\n", s.otherCores)
}

// ---- 1. API ----

var apiOps = []string{"CreateParticipantToken", "GetStage", "ListStages"}

const apiBaseline = "baseline: GetStage answered {}"

func (r *report) apiSection() string {
	var b strings.Builder
	b.WriteString("## 1. Control plane: throughput and latency against concurrency\n\n")
	var d apiData
	if ok, note := r.decode("api", &d); !ok || len(d.Sweep) == 0 {
		b.WriteString(note)
		r.verdicts = append(r.verdicts, verdict{"API at 64 clients", "not measured", "—"})
		return b.String()
	}
	fmt.Fprintf(&b, "C concurrent clients, each an aws-sdk-go-v2 `ivsrealtime` client signing every request with SigV4 (one attempt, a shared keep-alive transport), "+
		"call one operation as fast as they can: %g s of warm-up, then %g s measured, against a fresh `ivsrt serve` with %d stages of 3 tags. "+
		"CreateParticipantToken and GetStage pick a random stage; ListStages asks for the first 50. "+
		"**Baseline**, at each C: the same clients calling GetStage on a plain `net/http` server in a process of its own that answers `{}` without checking anything "+
		"(the cost of the SDK, signing, HTTP/1.1 on loopback and Go's server). With a fixed number of clients each waiting for its answer, mean latency = C / throughput.\n\n",
		d.WarmupSeconds, d.MeasuredSeconds, d.Stages)
	b.WriteString(r.other("api"))

	rowOf := func(i int, op string) *apiRow {
		for k := range d.Sweep[i].Median {
			if d.Sweep[i].Median[k].Op == op {
				return &d.Sweep[i].Median[k]
			}
		}
		return nil
	}
	xs := make([]float64, len(d.Sweep))
	for i, p := range d.Sweep {
		xs[i] = float64(p.Concurrency)
	}
	get := func(op string, f func(*apiRow) float64) []float64 {
		ys := make([]float64, len(d.Sweep))
		for i := range d.Sweep {
			ys[i] = math.NaN()
			if row := rowOf(i, op); row != nil {
				ys[i] = f(row)
			}
		}
		return ys
	}
	tput := &plot.Chart{Title: "API throughput against concurrency", XLabel: "concurrent clients", YLabel: "calls per second", LogX: true}
	lat := &plot.Chart{Title: "API latency: p99 (solid) and p50 (dashed)", XLabel: "concurrent clients", YLabel: "ms", LogX: true, LogY: true,
		HRefs: []plot.Ref{{Value: 10, Label: "target p99 at 64 clients: 10 ms"}}}
	for i, op := range append(append([]string{}, apiOps...), apiBaseline) {
		name, color := op, plot.Color(i)
		if op == apiBaseline {
			name, color = "baseline (GetStage answered {})", "#777777"
		}
		tput.Series = append(tput.Series, plot.Series{Name: name, X: xs, Y: get(op, func(r *apiRow) float64 { return r.PerSecond }),
			Points: true, Color: color, Dashed: op == apiBaseline})
		lat.Series = append(lat.Series,
			plot.Series{Name: name + " p99", X: xs, Y: get(op, func(r *apiRow) float64 { return r.P99Ms }), Points: true, Color: color},
			plot.Series{Name: name + " p50", X: xs, Y: get(op, func(r *apiRow) float64 { return r.P50Ms }), Dashed: true, Color: color})
	}
	tput.HRefs = []plot.Ref{{Value: 5000, Label: "target at 64 clients: CreateParticipantToken 5k/s"}}
	if maxOf(tput.Series) > 10000 {
		tput.HRefs = append(tput.HRefs, plot.Ref{Value: 20000, Label: "target at 64 clients: GetStage 20k/s"})
	}
	lat.Height = 460
	b.WriteString(r.chart("api-throughput.svg", "API calls per second against concurrent clients", tput))
	b.WriteString(r.chart("api-latency.svg", "API latency p50 and p99 against concurrent clients", lat))

	b.WriteString("| clients | operation | calls/s | of the baseline's | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/call | client CPU µs/call | other CPU s |\n")
	b.WriteString("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for i, p := range d.Sweep {
		base := rowOf(i, apiBaseline)
		for _, op := range append(append([]string{}, apiOps...), apiBaseline) {
			row := rowOf(i, op)
			if row == nil {
				continue
			}
			ratio := "–"
			if base != nil && op != apiBaseline && base.PerSecond > 0 {
				ratio = fmt.Sprintf("%.0f%%", 100*row.PerSecond/base.PerSecond)
			}
			label := op
			if op == apiBaseline {
				label = "*baseline*"
			}
			fmt.Fprintf(&b, "| %d | %s | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %.0f | %s | %.0f | %s |\n",
				p.Concurrency, label, row.PerSecond, ratio, row.P50Ms, row.P90Ms, row.P99Ms, row.MaxMs, row.Errors,
				orNA(row.ServerCPUMicrosPerCall, "%.0f"), row.ClientCPUMicrosPerCall, orNA(row.OtherCPUSeconds, "%.2f"))
		}
	}
	b.WriteString("\n")
	for _, p := range d.Sweep {
		for _, row := range p.Median {
			if row.Errors > 0 {
				fmt.Fprintf(&b, "- %s, %d client(s): %.0f of %.0f calls failed (one attempt each, counted, not retried); the first error of the phase is in [suite-api.log](suite-api.log).\n",
					row.Op, p.Concurrency, row.Errors, row.Requests)
			}
		}
	}

	// Targets at 64 clients.
	at := -1
	for i, p := range d.Sweep {
		if p.Concurrency == 64 {
			at = i
		}
	}
	for _, t := range []struct {
		op   string
		rate float64
	}{{"CreateParticipantToken", 5000}, {"GetStage", 20000}} {
		target := fmt.Sprintf("%s ≥ %s/s, p99 < 10 ms, 64 clients", t.op, plot.Number(t.rate))
		if at < 0 || rowOf(at, t.op) == nil {
			r.verdicts = append(r.verdicts, verdict{target, "64 clients not measured", "—"})
			continue
		}
		row, base := rowOf(at, t.op), rowOf(at, apiBaseline)
		res := fmt.Sprintf("%.0f/s, p99 %.1f ms", row.PerSecond, row.P99Ms)
		if base != nil {
			res += fmt.Sprintf(" (baseline %.0f/s, p99 %.1f ms)", base.PerSecond, base.P99Ms)
		}
		v := verdict{target, res, status(row.PerSecond >= t.rate && row.P99Ms < 10 && row.Errors == 0)}
		r.verdicts = append(r.verdicts, v)
		fmt.Fprintf(&b, "- Target %s: %s: %s\n", v.target, v.result, v.status)
	}
	if at >= 0 && rowOf(at, apiBaseline) != nil {
		base := rowOf(at, apiBaseline)
		fmt.Fprintf(&b, "- On this machine the baseline itself reaches %.0f/s with p99 %.1f ms at 64 clients: the client, signing and HTTP alone cost %.0f µs of CPU per call, "+
			"so a target above what the baseline does cannot be met with the load generator on the same 2 cores.\n",
			base.PerSecond, base.P99Ms, base.ClientCPUMicrosPerCall+base.ServerCPUMicrosPerCall)
	}
	b.WriteString("\n")
	return b.String()
}

func maxOf(ss []plot.Series) float64 {
	m := 0.0
	for _, s := range ss {
		for _, y := range s.Y {
			if !math.IsNaN(y) {
				m = max(m, y)
			}
		}
	}
	return m
}

func orNA(v float64, format string) string {
	if v < 0 || math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

// ---- 2. Fan-out ----

func (r *report) fanoutSection() string {
	var b strings.Builder
	b.WriteString("## 2. SFU fan-out: one publisher to N subscribers, beside a plain UDP relay\n\n")
	var d sfuData
	if ok, note := r.decode("fanout", &d); !ok || len(d.Phases) == 0 {
		b.WriteString(note)
		r.verdicts = append(r.verdicts, verdict{"SFU fan-out", "not measured", "—"})
		return b.String()
	}
	fmt.Fprintf(&b, "One publisher sends synthetic VP8 over WHIP (%.0f kbit/s of payload, %d fps, a keyframe every 2 s and on each PLI, paced as browsers pace: %.0f packets/s); "+
		"N subscribers each receive it over a WHEP session of their own (ICE, DTLS, SRTP decryption of every packet), in the bench process. "+
		"%g s of warm-up once all have joined, then %g s measured. Loss counts the publisher's packets of the window that never arrived (by a counter in the payload). "+
		"**Baseline**, for the same N in the same run: a plain UDP relay in a process of its own copying the same packets to N sockets, one `sendto` per copy, "+
		"no encryption, no RTP logic — the ceiling of this machine. CPU is the server's (or relay's) user+system time, in %% of one core.\n\n",
		d.Stream.BitrateKbps, d.Stream.FPS, d.Stream.PacketsPerSecond, d.Duration.WarmupSeconds, d.Duration.MeasuredSeconds)
	b.WriteString(r.other("fanout"))

	var ns, offered, sfuPPS, relayPPS, sfuCPU, relayCPU, sfuCost, relayCost []float64
	for _, p := range d.Phases {
		ns = append(ns, float64(p.Subscribers))
		offered = append(offered, p.OfferedPacketsPerSecond)
		sfuPPS = append(sfuPPS, p.SFU.PacketsPerSecond)
		sfuCPU = append(sfuCPU, p.SFU.CPUPercent)
		sfuCost = append(sfuCost, p.SFU.CPUMicrosPerPacket)
		if p.Relay != nil {
			relayPPS = append(relayPPS, p.Relay.PacketsPerSecond)
			relayCPU = append(relayCPU, p.Relay.CPUPercent)
			relayCost = append(relayCost, p.Relay.CPUMicrosPerPacket)
		} else {
			relayPPS, relayCPU, relayCost = append(relayPPS, math.NaN()), append(relayCPU, math.NaN()), append(relayCost, math.NaN())
		}
	}
	b.WriteString(r.chart("sfu-fanout-packets.svg", "forwarded packets per second against subscribers", &plot.Chart{
		Title: "Fan-out: packets/s delivered to the subscribers", XLabel: "subscribers", YLabel: "packets per second",
		Series: []plot.Series{
			{Name: "ivsrt SFU", X: ns, Y: sfuPPS, Points: true},
			{Name: "plain UDP relay (ceiling)", X: ns, Y: relayPPS, Points: true},
			{Name: "offered (publisher × N)", X: ns, Y: offered, Dashed: true, Color: "#999999"},
		}}))
	b.WriteString(r.chart("sfu-fanout-cpu.svg", "server CPU against subscribers", &plot.Chart{
		Title: "Fan-out: CPU of the forwarding process", XLabel: "subscribers", YLabel: "% of one core", YMin: 0, YMax: 120,
		HRefs: []plot.Ref{{Value: 100, Label: "one core"}},
		Series: []plot.Series{
			{Name: "ivsrt SFU", X: ns, Y: sfuCPU, Points: true},
			{Name: "plain UDP relay", X: ns, Y: relayCPU, Points: true},
		}}))
	b.WriteString(r.chart("sfu-fanout-cost.svg", "CPU per forwarded packet against subscribers", &plot.Chart{
		Title: "Fan-out: CPU per packet delivered", XLabel: "subscribers", YLabel: "µs of CPU per packet",
		HRefs: []plot.Ref{{Value: 10, Label: "target at 100 subscribers: 10 µs"}, {Value: 12, Label: "LiveKit v1.13.5: ~12 µs"}},
		Series: []plot.Series{
			{Name: "ivsrt SFU", X: ns, Y: sfuCost, Points: true},
			{Name: "plain UDP relay", X: ns, Y: relayCost, Points: true},
		}}))

	b.WriteString("| subscribers | joined | offered packets/s | SFU packets/s | relay packets/s | SFU / relay | SFU Mbps | SFU loss | relay loss | SFU CPU | SFU µs/packet | relay CPU | relay µs/packet | SFU latency p50 / p99 ms | bench CPU | other CPU |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range d.Phases {
		rp, rl, rc, rcost, ratio := "–", "–", "–", "–", "–"
		if p.Relay != nil {
			rp, rl, rc, rcost = kilo(p.Relay.PacketsPerSecond), lossText(p.Relay.LossPercent), fmt.Sprintf("%.0f%%", p.Relay.CPUPercent), fmt.Sprintf("%.1f", p.Relay.CPUMicrosPerPacket)
			if p.Relay.PacketsPerSecond > 0 {
				ratio = fmt.Sprintf("%.0f%%", 100*p.SFU.PacketsPerSecond/p.Relay.PacketsPerSecond)
			}
		}
		fmt.Fprintf(&b, "| %d | %.0f | %s | %s | %s | %s | %.0f | %s | %s | %.0f%% | %.1f | %s | %s | %.1f / %.1f | %.0f%% | %.0f%% |\n",
			p.Subscribers, p.SFU.Joined, kilo(p.OfferedPacketsPerSecond), kilo(p.SFU.PacketsPerSecond), rp, ratio, p.SFU.Mbps,
			lossText(p.SFU.LossPercent), rl, p.SFU.CPUPercent, p.SFU.CPUMicrosPerPacket, rc, rcost,
			p.SFU.LatencyP50Ms, p.SFU.LatencyP99Ms, p.SFU.BenchCPUPercent, p.SFU.OtherCPUPercent)
	}
	for _, p := range d.Phases {
		if p.SFU.CPUPercent >= 90 {
			fmt.Fprintf(&b, "At %d subscribers the server used %.0f%% of a core: its forwarding is saturated there, and a single run either keeps up or falls behind and, "+
				"its queues growing, loses what arrives too late (latency p50 %.0f ms); the outcome swings between runs. "+
				"`go run ./bench/sfubench --runs 3` gives medians over three runs.\n\n", p.Subscribers, p.SFU.CPUPercent, p.SFU.LatencyP50Ms)
			break
		}
	}
	b.WriteString("\n**SFU / relay** is ivsrt's delivered packet rate over the relay's for the same offered load: 100% until one of them saturates. " +
		"**Other CPU** is the rest of the machine during the window, in % of one core.\n\n")

	// Targets.
	find := func(n int) *sfuPhase {
		for i := range d.Phases {
			if d.Phases[i].Subscribers == n {
				return &d.Phases[i]
			}
		}
		return nil
	}
	var lines []verdict
	if p := find(100); p != nil {
		lines = append(lines, verdict{"SFU CPU per forwarded packet ≤ 10 µs at 100 subscribers (LiveKit ~12 µs)",
			fmt.Sprintf("%.1f µs (relay %s)", p.SFU.CPUMicrosPerPacket, relayCostText(p)), status(p.SFU.CPUMicrosPerPacket <= 10)})
	} else {
		lines = append(lines, verdict{"SFU CPU per forwarded packet ≤ 10 µs at 100 subscribers", "100 subscribers not measured", "—"})
	}
	if p := find(400); p != nil {
		lines = append(lines, verdict{"one 2.5 Mbps publisher to 400 subscribers, loss < 0.5%",
			fmt.Sprintf("%s loss, %s packets/s, SFU %.0f%% of a core", lossText(p.SFU.LossPercent), kilo(p.SFU.PacketsPerSecond), p.SFU.CPUPercent),
			status(p.SFU.LossPercent < 0.5 && p.SFU.Joined >= 400)})
	} else {
		lines = append(lines, verdict{"400 subscribers with loss < 0.5%", "400 subscribers not measured", "—"})
	}
	// The relay ratio at the largest N measured.
	last := d.Phases[len(d.Phases)-1]
	if last.Relay != nil && last.Relay.PacketsPerSecond > 0 {
		ratio := 100 * last.SFU.PacketsPerSecond / last.Relay.PacketsPerSecond
		lines = append(lines, verdict{"≥ 60% of the plain UDP relay's packet rate, same run",
			fmt.Sprintf("%.0f%% at %d subscribers (%s vs %s packets/s)", ratio, last.Subscribers, kilo(last.SFU.PacketsPerSecond), kilo(last.Relay.PacketsPerSecond)),
			status(ratio >= 60)})
	}
	for _, v := range lines {
		fmt.Fprintf(&b, "- Target: %s — %s: %s\n", v.target, v.result, v.status)
	}
	r.verdicts = append(r.verdicts, lines...)
	b.WriteString("\n")
	return b.String()
}

func relayCostText(p *sfuPhase) string {
	if p.Relay == nil {
		return "not measured"
	}
	return fmt.Sprintf("%.1f µs", p.Relay.CPUMicrosPerPacket)
}

func kilo(x float64) string {
	if x >= 10000 {
		return fmt.Sprintf("%.1fk", x/1000)
	}
	return fmt.Sprintf("%.0f", x)
}

func lossText(x float64) string {
	if x < 0.0005 {
		return "0"
	}
	return fmt.Sprintf("%.3f%%", x)
}

// ---- 3. Meeting ----

func (r *report) meetingSection() string {
	var b strings.Builder
	b.WriteString("## 3. A 12-publisher meeting with viewers\n\n")
	var d sfuData
	if ok, note := r.decode("meeting", &d); !ok || len(d.Phases) == 0 {
		b.WriteString(note)
		return b.String()
	}
	np := d.Publishers
	fmt.Fprintf(&b, "%d publishers, each sending synthetic VP8 at %.0f kbit/s (%.0f packets/s: a tile of a %d-person grid) over WHIP, each subscribed to the %d others; "+
		"V viewers each subscribed to all %d. Every subscription is a WHEP session of its own (ICE, DTLS, SRTP), as a browser opens one per remote participant, "+
		"so the SFU sends %d·%d + %d·V streams. The publishers publish first; then the participants join two at a time, each opening its subscriptions at once. "+
		"%g s of warm-up, then %g s measured. **Participant join** is from a participant's first WHEP request to the first packet of the last of its streams. "+
		"**Baseline**: the fan-out's plain UDP relay above (same machine, same run) costs the CPU per packet given below.\n\n",
		np, d.Stream.BitrateKbps, d.Stream.PacketsPerSecond, np, np-1, np, np, np-1, np, d.Duration.WarmupSeconds, d.Duration.MeasuredSeconds)
	b.WriteString(r.other("meeting"))

	var vs, offered, pps, cpu []float64
	for _, p := range d.Phases {
		vs = append(vs, float64(p.Viewers))
		offered = append(offered, p.OfferedPacketsPerSecond)
		pps = append(pps, p.SFU.PacketsPerSecond)
		cpu = append(cpu, p.SFU.CPUPercent)
	}
	b.WriteString(r.chart("meeting-packets.svg", "meeting: forwarded packets per second against viewers", &plot.Chart{
		Title: fmt.Sprintf("Meeting of %d: packets/s delivered", np), XLabel: "viewers (besides the publishers)", YLabel: "packets per second",
		Series: []plot.Series{
			{Name: "ivsrt SFU", X: vs, Y: pps, Points: true},
			{Name: "offered (streams × publisher rate)", X: vs, Y: offered, Dashed: true, Color: "#999999"},
		}}))
	var cdf []plot.Series
	for _, p := range d.Phases {
		cdf = append(cdf, plot.CDF(fmt.Sprintf("%d viewers", p.Viewers), p.ParticipantJoinsMs))
	}
	b.WriteString(r.chart("meeting-join.svg", "meeting: participant join time distribution", &plot.Chart{
		Title: "Meeting: participant join → all its streams (CDF)", XLabel: "ms", YLabel: "% of participants", Series: cdf, YMin: 0, YMax: 100}))

	b.WriteString("| viewers | participants | subscriptions | set up | offered packets/s | packets/s delivered | Mbps | loss | SFU CPU | SFU µs/packet | subscription join p50 / p99 ms | participant join p50 / p99 ms | latency p50 / p99 ms | server RSS MB | bench CPU | other CPU |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range d.Phases {
		fmt.Fprintf(&b, "| %d | %d | %d | %.0f | %s | %s | %.0f | %s | %.0f%% | %.1f | %.0f / %.0f | %.0f / %.0f | %.1f / %.1f | %.0f | %.0f%% | %.0f%% |\n",
			p.Viewers, np+p.Viewers, p.Subscribers, p.SFU.Joined, kilo(p.OfferedPacketsPerSecond), kilo(p.SFU.PacketsPerSecond), p.SFU.Mbps,
			lossText(p.SFU.LossPercent), p.SFU.CPUPercent, p.SFU.CPUMicrosPerPacket, p.SFU.JoinP50Ms, p.SFU.JoinP99Ms,
			quantile(p.ParticipantJoinsMs, 0.5), quantile(p.ParticipantJoinsMs, 0.99), p.SFU.LatencyP50Ms, p.SFU.LatencyP99Ms,
			p.RSSEndMB, p.SFU.BenchCPUPercent, p.SFU.OtherCPUPercent)
	}
	b.WriteString("\n")
	var fan sfuData
	relayCost := math.NaN()
	if ok, _ := r.decode("fanout", &fan); ok {
		var costs []float64
		for _, p := range fan.Phases {
			if p.Relay != nil && p.Relay.CPUMicrosPerPacket > 0 {
				costs = append(costs, p.Relay.CPUMicrosPerPacket)
			}
		}
		relayCost = median(costs)
	}
	last := d.Phases[len(d.Phases)-1]
	res := fmt.Sprintf("%d viewers: %s packets/s, %s loss, %.1f µs/packet", last.Viewers, kilo(last.SFU.PacketsPerSecond), lossText(last.SFU.LossPercent), last.SFU.CPUMicrosPerPacket)
	if !math.IsNaN(relayCost) {
		res += fmt.Sprintf(" (relay %.1f µs)", relayCost)
		fmt.Fprintf(&b, "- Baseline: the plain UDP relay of section 2 spent %.1f µs of CPU per packet (median over its points); the SFU spent %.1f µs per packet delivered in the largest meeting.\n", relayCost, last.SFU.CPUMicrosPerPacket)
	}
	b.WriteString("- TARGETS.md sets no target for a meeting; its CPU per packet can be held against the fan-out's 10 µs aim, and its joins against the join aim of section 4.\n\n")
	r.verdicts = append(r.verdicts, verdict{fmt.Sprintf("meeting of %d publishers (no target in TARGETS.md)", np), res, noGoal})
	return b.String()
}

// ---- 4. Join ----

func (r *report) joinSection() string {
	var b strings.Builder
	b.WriteString("## 4. Join to first frame\n\n")
	var fan, meet sfuData
	fanOK, note := r.decode("fanout", &fan)
	meetOK, _ := r.decode("meeting", &meet)
	if !fanOK && !meetOK {
		b.WriteString(note)
		r.verdicts = append(r.verdicts, verdict{"join to first frame p50 < 150 ms, p99 < 400 ms", "not measured", "—"})
		return b.String()
	}
	b.WriteString("From the start of a subscriber's WHEP request (the HTTP offer, ICE, DTLS, the SFU's keyframe request to the publisher) to the first RTP packet it decrypts, " +
		"the first packet of a keyframe. Every join of the fan-out phases (subscribers joining 8 at a time) and of the meeting (each participant's subscriptions at once). " +
		"On loopback, so this is the server's and the protocol's share of a join, no network.\n\n")
	type group struct {
		name    string
		samples []float64
		dashed  bool
	}
	var groups []group
	var allFan, allMeet []float64
	for _, p := range fan.Phases {
		groups = append(groups, group{name: fmt.Sprintf("fan-out, %d subscribers", p.Subscribers), samples: p.JoinsMs})
		allFan = append(allFan, p.JoinsMs...)
	}
	for _, p := range meet.Phases {
		allMeet = append(allMeet, p.JoinsMs...)
		groups = append(groups, group{name: fmt.Sprintf("meeting, %d viewers", p.Viewers), samples: p.JoinsMs, dashed: true})
	}
	var series []plot.Series
	for i, g := range groups {
		s := plot.CDF(g.name, g.samples)
		s.Dashed = g.dashed
		s.Color = plot.Color(i)
		series = append(series, s)
	}
	b.WriteString(r.chart("join-cdf.svg", "join to first packet, cumulative distribution", &plot.Chart{
		Title: "WHEP request → first packet (CDF)", XLabel: "ms (log scale)", YLabel: "% of joins", Series: series, YMin: 0, YMax: 100, LogX: true,
		VRefs: []plot.Ref{{Value: 150, Label: "p50 target 150 ms"}, {Value: 400, Label: "p99 target 400 ms"}}}))

	b.WriteString("| joins of | samples | p50 ms | p90 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|--:|\n")
	row := func(name string, s []float64) {
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %.0f |\n", name, len(s), quantile(s, 0.5), quantile(s, 0.9), quantile(s, 0.99), quantile(s, 1))
	}
	for _, g := range groups {
		row(g.name, g.samples)
	}
	if len(allFan) > 0 {
		row("**all fan-out joins**", allFan)
	}
	if len(allMeet) > 0 {
		row("**all meeting subscriptions**", allMeet)
	}
	b.WriteString("\n")
	all := append(append([]float64{}, allFan...), allMeet...)
	p50, p99 := quantile(all, 0.5), quantile(all, 0.99)
	v := verdict{"join to first frame on loopback: p50 < 150 ms, p99 < 400 ms",
		fmt.Sprintf("p50 %.0f ms, p99 %.0f ms over %d joins", p50, p99, len(all)), status(p50 < 150 && p99 < 400)}
	r.verdicts = append(r.verdicts, v)
	fmt.Fprintf(&b, "- Target: %s — %s: %s\n\n", v.target, v.result, v.status)
	return b.String()
}

// ---- 5. Events ----

func (r *report) eventsSection() string {
	var b strings.Builder
	b.WriteString("## 5. Event delivery to a webhook\n\n")
	var d eventsData
	if ok, note := r.decode("events", &d); !ok || len(d.Runs) == 0 {
		b.WriteString(note)
		r.verdicts = append(r.verdicts, verdict{"event delivery (no target in TARGETS.md)", "not measured", "—"})
		return b.String()
	}
	run := d.Runs[0]
	fmt.Fprintf(&b, "`ivsrt serve` with `--webhook-url` posts every event to a receiver inside the bench on 127.0.0.1, which verifies each signature and notes its arrival; "+
		"client and receiver share one clock. **API ack → webhook**: SDK clients call UpdateStage at %d calls/s in all (below what the relay delivers here, so this is delivery, not a backlog) "+
		"on S stages, %g s warm-up then %g s measured; latency from the client's ack to the arrival of that Stage Updated. "+
		"**Participant action → webhook**: a bot (package `bot`, VP8) joins and publishes, is disconnected with DisconnectParticipant; a second one joins and leaves by itself; sequentially, several times. "+
		"**Baselines**, same run: the same UpdateStage load on a server without a sink (the API's own ack latency), and the bench's own client POSTing signed envelopes straight to the receiver (the receiver's ceiling).\n\n",
		d.Rate, d.WarmupSeconds, d.MeasuredSeconds)
	b.WriteString(r.other("events"))

	var ack []plot.Series
	for _, t := range run.Throughput {
		ack = append(ack, plot.CDF(fmt.Sprintf("%d stage(s), %d client(s)", t.Stages, t.Clients), t.LatencyMs))
	}
	b.WriteString(r.chart("events-ack-cdf.svg", "API ack to webhook arrival, cumulative distribution", &plot.Chart{
		Title: "UpdateStage ack → Stage Updated at the webhook (CDF)", XLabel: "ms (log scale)", YLabel: "% of events", LogX: true,
		Series: ack, YMin: 0, YMax: 100}))
	if p := run.Participants; p != nil {
		b.WriteString(r.chart("events-participants-cdf.svg", "participant action to webhook arrival, cumulative distribution", &plot.Chart{
			Title: "Participant action → event at the webhook (CDF)", XLabel: "ms (log scale)", YLabel: "% of samples", LogX: true, YMin: 0, YMax: 100,
			Series: []plot.Series{
				plot.CDF("bot starts → Participant Joined", p.JoinedMs),
				plot.CDF("bot starts → Participant Published", p.PublishedMs),
				plot.CDF("DisconnectParticipant ack → Participant Left", p.DisconnectMs),
				plot.CDF("bot cancelled → Participant Left", p.CancelMs),
			}}))
	}
	b.WriteString("| stages | clients | offered/s | acks/s | delivered/s | ack → webhook p50 ms | p90 ms | p99 ms | max ms | backlog at end | missing | baseline: ack p50 ms with sink / without | receiver ceiling posts/s | other CPU s |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, t := range run.Throughput {
		fmt.Fprintf(&b, "| %d | %d | %d | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %d | %d | %.2f / %.2f | %.0f | %s |\n",
			t.Stages, t.Clients, d.Rate, t.AcksPerSecond, t.DeliveredPerSecond, t.P50Ms, t.P90Ms, t.P99Ms, t.MaxMs, t.Backlog, t.Missing,
			t.AckP50Ms, t.AckP50MsWithoutSink, t.ReceiverCeilingPerSecond, orNA(t.OtherCPUSeconds, "%.2f"))
	}
	b.WriteString("\n")
	if p := run.Participants; p != nil {
		b.WriteString("| from → to | samples | p50 ms | p90 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|--:|\n")
		for _, m := range []struct {
			name string
			s    []float64
		}{
			{"bot starts → Participant Joined (events WebSocket join included)", p.JoinedMs},
			{"bot starts → Participant Published (WHIP: ICE, DTLS included)", p.PublishedMs},
			{"DisconnectParticipant ack → Participant Left", p.DisconnectMs},
			{"bot's context cancelled → Participant Left", p.CancelMs},
		} {
			fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", m.name, len(m.s), quantile(m.s, 0.5), quantile(m.s, 0.9), quantile(m.s, 0.99), quantile(m.s, 1))
		}
		b.WriteString("\n")
	}
	var res []string
	for _, t := range run.Throughput {
		res = append(res, fmt.Sprintf("ack → webhook p50 %.1f ms / p99 %.1f ms (%d stage(s))", t.P50Ms, t.P99Ms, t.Stages))
	}
	if p := run.Participants; p != nil {
		res = append(res, fmt.Sprintf("disconnect → Left p50 %.1f ms", quantile(p.DisconnectMs, 0.5)))
	}
	r.verdicts = append(r.verdicts, verdict{fmt.Sprintf("event delivery at %d events/s (no target in TARGETS.md)", d.Rate), strings.Join(res, "; "), noGoal})
	b.WriteString("TARGETS.md sets no target for events. The saturated relay (as many UpdateStage calls as the clients can make, and the outage recovery) is measured by `go run ./bench/eventbench`: see events.md.\n\n")
	return b.String()
}

// ---- 6. Memory ----

func (r *report) memorySection() string {
	var b strings.Builder
	b.WriteString("## 6. Server memory per participant\n\n")
	var d sfuData
	if ok, note := r.decode("fanout", &d); !ok || len(d.Phases) == 0 {
		b.WriteString(note)
		return b.String()
	}
	b.WriteString("The server's resident memory (`VmRSS` of `/proc/PID/status`) in the fan-out phases of section 2, each with a fresh server: " +
		"**idle** with the stage and its tokens made and nobody connected (0 participants), **after joins** once the publisher and the N subscribers are connected, " +
		"and **end** at the end of the measured window, media flowing. The slope is a least-squares line through the idle point and the end points up to 200 subscribers " +
		"(at 400 the server is saturated and its queues hold packets). A Go process returns freed memory to the system lazily, so RSS is an upper bound of what is live.\n\n")

	var idle []float64
	for _, p := range d.Phases {
		idle = append(idle, p.RSSIdleMB)
	}
	idleMB := median(idle)
	xs, ends, joined := []float64{0}, []float64{idleMB}, []float64{idleMB}
	fitX, fitY := []float64{0}, []float64{idleMB}
	for _, p := range d.Phases {
		n := float64(p.Subscribers + 1)
		xs = append(xs, n)
		ends = append(ends, p.RSSEndMB)
		joined = append(joined, p.RSSJoinedMB)
		if p.Subscribers <= 200 {
			fitX = append(fitX, n)
			fitY = append(fitY, p.RSSEndMB)
		}
	}
	series := []plot.Series{
		{Name: "RSS at the end of the window", X: xs, Y: ends, Points: true},
		{Name: "RSS once all joined", X: xs, Y: joined, Points: true, Dashed: true},
	}
	a, slope, ok := fit(fitX, fitY)
	if ok {
		last := xs[len(xs)-1]
		series = append(series, plot.Series{Name: fmt.Sprintf("fit: %.1f MB + %.2f MB per participant", a, slope), X: []float64{0, last}, Y: []float64{a, a + slope*last}, Dashed: true, Color: "#999999"})
	}
	b.WriteString(r.chart("memory.svg", "server RSS against connected participants", &plot.Chart{
		Title: "Server resident memory against participants", XLabel: "participants connected (one publisher + subscribers)", YLabel: "MB", Series: series}))

	b.WriteString("| subscribers | participants | RSS idle MB | RSS after joins MB | RSS at end MB | (end − idle) / participants MB |\n|--:|--:|--:|--:|--:|--:|\n")
	fmt.Fprintf(&b, "| 0 | 0 | %.1f | – | – | – |\n", idleMB)
	for _, p := range d.Phases {
		n := float64(p.Subscribers + 1)
		fmt.Fprintf(&b, "| %d | %.0f | %.1f | %.1f | %.1f | %.2f |\n", p.Subscribers, n, p.RSSIdleMB, p.RSSJoinedMB, p.RSSEndMB, (p.RSSEndMB-p.RSSIdleMB)/n)
	}
	b.WriteString("\n")
	res := "not enough points"
	if ok {
		res = fmt.Sprintf("%.2f MB per participant (%.1f MB idle)", slope, a)
		fmt.Fprintf(&b, "- Slope: **%.2f MB per connected participant** (%.0f kB), %.1f MB for the idle server.\n", slope, slope*1024, a)
	}
	var meet sfuData
	if ok, _ := r.decode("meeting", &meet); ok && len(meet.Phases) > 0 {
		last := meet.Phases[len(meet.Phases)-1]
		if last.Subscribers > 0 {
			fmt.Fprintf(&b, "- In the meeting with %d viewers (%d participants, %d WHEP sessions and %d WHIP sessions), the server held %.1f MB, %.2f MB per session over its idle %.1f MB.\n",
				last.Viewers, meet.Publishers+last.Viewers, last.Subscribers, meet.Publishers, last.RSSEndMB,
				(last.RSSEndMB-last.RSSIdleMB)/float64(last.Subscribers+meet.Publishers), last.RSSIdleMB)
		}
	}
	b.WriteString("- TARGETS.md sets no memory target.\n\n")
	r.verdicts = append(r.verdicts, verdict{"memory per participant (no target in TARGETS.md)", res, noGoal})
	return b.String()
}

// ---- machine ----

func gitDescribe(root string) string {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
