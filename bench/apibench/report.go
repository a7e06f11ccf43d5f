package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// row is one line of a results table.
type row struct {
	Op              string  `json:"op"`
	Requests        float64 `json:"requests"`
	Errors          float64 `json:"errors"`
	Throughput      float64 `json:"perSecond"`
	P50             float64 `json:"p50Ms"` // milliseconds
	P90             float64 `json:"p90Ms"`
	P99             float64 `json:"p99Ms"`
	Max             float64 `json:"maxMs"`
	ServerCPU       float64 `json:"serverCpuSeconds"`       // negative when unknown
	ServerCPUPerReq float64 `json:"serverCpuMicrosPerCall"` // negative when unknown
	ClientCPUPerReq float64 `json:"clientCpuMicrosPerCall"`
	OtherCPU        float64 `json:"otherCpuSeconds"` // negative when unknown
}

func rowOf(s sample) row {
	serverCPU, otherCPU := -1.0, -1.0
	if s.ServerCPU >= 0 {
		serverCPU = s.ServerCPU.Seconds()
	}
	if s.OtherCPU >= 0 {
		otherCPU = s.OtherCPU.Seconds()
	}
	return row{
		Op:              s.Op,
		Requests:        float64(s.Requests),
		Errors:          float64(s.Errors),
		Throughput:      s.Throughput(),
		P50:             ms(s.Percentile(0.50)),
		P90:             ms(s.Percentile(0.90)),
		P99:             ms(s.Percentile(0.99)),
		Max:             ms(s.Max()),
		ServerCPU:       serverCPU,
		ServerCPUPerReq: s.CPUPerRequest(s.ServerCPU),
		ClientCPUPerReq: s.CPUPerRequest(s.ClientCPU),
		OtherCPU:        otherCPU,
	}
}

// medianRow takes the median of each column on its own.
func medianRow(rows []row) row {
	med := func(get func(row) float64) float64 {
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = get(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return row{
		Op:              rows[0].Op,
		Requests:        med(func(r row) float64 { return r.Requests }),
		Errors:          med(func(r row) float64 { return r.Errors }),
		Throughput:      med(func(r row) float64 { return r.Throughput }),
		P50:             med(func(r row) float64 { return r.P50 }),
		P90:             med(func(r row) float64 { return r.P90 }),
		P99:             med(func(r row) float64 { return r.P99 }),
		Max:             med(func(r row) float64 { return r.Max }),
		ServerCPU:       med(func(r row) float64 { return r.ServerCPU }),
		ServerCPUPerReq: med(func(r row) float64 { return r.ServerCPUPerReq }),
		ClientCPUPerReq: med(func(r row) float64 { return r.ClientCPUPerReq }),
		OtherCPU:        med(func(r row) float64 { return r.OtherCPU }),
	}
}

// rowsOf returns the rows of every run, phase by phase, baseline last.
func rowsOf(r run) []row {
	var rows []row
	for _, s := range r.Samples {
		rows = append(rows, rowOf(s))
	}
	if r.Baseline != nil {
		rows = append(rows, rowOf(*r.Baseline))
	}
	return rows
}

func table(rows []row) string {
	var b strings.Builder
	b.WriteString("| Operation | Requests | Errors | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU s | server CPU µs/req | client CPU µs/req | other CPU s |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s |\n",
			r.Op, r.Requests, r.Errors, r.Throughput, r.P50, r.P90, r.P99, r.Max,
			fmtSeconds(r.ServerCPU), fmtMicros(r.ServerCPUPerReq), fmtMicros(r.ClientCPUPerReq), fmtSeconds(r.OtherCPU))
	}
	return b.String()
}

// targets are the goals the results are held against, per operation.
var targets = []struct {
	op         string
	throughput float64
	p99        float64
	source     string
}{
	{"CreateParticipantToken", 2000, 25, "minimum"},
	{"GetStage", 10000, 25, "minimum"},
	{"CreateParticipantToken", 5000, 10, "TARGETS.md aim"},
	{"GetStage", 20000, 10, "TARGETS.md aim"},
}

func formatReport(cfg config, args []string, runs []run) string {
	var b strings.Builder
	formatHeader(&b, cfg, args, fmt.Sprint(cfg.Concurrency))
	formatResults(&b, cfg, runs, "##")
	return b.String()
}

// formatSweep is the report of a --clients sweep: one section per count
// of clients.
func formatSweep(cfg config, args []string, sweep [][]run) string {
	var b strings.Builder
	counts := make([]string, len(cfg.Clients))
	for i, c := range cfg.Clients {
		counts[i] = fmt.Sprint(c)
	}
	formatHeader(&b, cfg, args, strings.Join(counts, ", then "))
	for i, runs := range sweep {
		fmt.Fprintf(&b, "## %d concurrent clients\n\n", cfg.Clients[i])
		c := cfg
		c.Concurrency = cfg.Clients[i]
		formatResults(&b, c, runs, "###")
		b.WriteString("\n")
	}
	return b.String()
}

// formatHeader writes the title and how the measurements were made.
func formatHeader(b *strings.Builder, cfg config, args []string, concurrency string) {
	fmt.Fprintf(b, "# ivsrt control plane: apibench, %s\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "```\n%s\n```\n\n", strings.TrimSpace("go run ./bench/apibench "+strings.Join(args, " ")))
	server := "`ivsrt serve` (built from ./cmd/ivsrt), a process of its own"
	switch {
	case cfg.Endpoint != "":
		server = cfg.Endpoint
	case cfg.CPUProfile != "":
		server = "apibench --profile-server (the ivsrt API wired as `ivsrt serve` wires it, with pprof), a process of its own"
	}
	fmt.Fprintf(b, "- Machine: %s, %d cores, Linux %s, %s\n", procstat.CPUModel(), runtime.NumCPU(), kernel(), runtime.Version())
	if rev := gitRevision(); rev != "" {
		fmt.Fprintf(b, "- Code: %s\n", rev)
	}
	fmt.Fprintf(b, "- Server: %s; SQLite WAL, synchronous=FULL\n", server)
	fmt.Fprintf(b, "- Load: %s concurrent ivsrealtime SDK clients (SigV4-signed, one attempt, shared keep-alive transport) on the same cores; "+
		"%d stages with 3 tags each; %v warm-up then %v measured per phase\n", concurrency, cfg.Stages, cfg.Warmup, cfg.Duration)
	if cfg.Rate > 0 {
		fmt.Fprintf(b, "- Offered load: %d calls/s in all, on a fixed schedule; latency counts from each call's scheduled start\n", cfg.Rate)
	}
	fmt.Fprintf(b, "- Baseline: the same clients calling GetStage on a plain net/http server, another process, answering `{}` without checking anything\n")
	fmt.Fprintf(b, "- CPU: server from /proc/PID/stat (10 ms ticks), client (this load generator) from getrusage, "+
		"other = the whole machine's busy time (/proc/stat) less those two: anything else running, which disturbs the phase\n\n")
}

// formatResults writes the tables of runs and the targets; level is the
// heading level of its sections.
func formatResults(b *strings.Builder, cfg config, runs []run, level string) {
	summary := rowsOf(runs[0])
	if len(runs) > 1 {
		for i := range summary {
			col := make([]row, len(runs))
			for j, r := range runs {
				col[j] = rowsOf(r)[i]
			}
			summary[i] = medianRow(col)
		}
		fmt.Fprintf(b, "%s Medians of %d runs\n\n", level, len(runs))
	} else {
		b.WriteString(level + " Results\n\n")
	}
	b.WriteString(table(summary))

	var checks []string
	for _, t := range targets {
		if cfg.Rate > 0 {
			break // the throughput is what was offered, not what the server can do
		}
		if len(cfg.Clients) > 0 && cfg.Concurrency != 64 {
			break // the targets are for 64 clients
		}
		for _, r := range summary {
			if r.Op != t.op {
				continue
			}
			ok := r.Throughput >= t.throughput && r.P99 < t.p99 && r.Errors == 0
			verdict := "met"
			if !ok {
				verdict = "**not met**"
			}
			checks = append(checks, fmt.Sprintf("- %s ≥ %.0f/s with p99 < %.0f ms (%s): %.0f/s, p99 %.2f ms: %s",
				t.op, t.throughput, t.p99, t.source, r.Throughput, r.P99, verdict))
		}
	}
	if len(checks) > 0 {
		b.WriteString("\n" + strings.Join(checks, "\n") + "\n")
	}

	if len(runs) > 1 {
		for i, r := range runs {
			fmt.Fprintf(b, "\n%s Run %d\n\n", level, i+1)
			b.WriteString(table(rowsOf(r)))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMicros(us float64) string {
	if us < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", us)
}

func fmtSeconds(s float64) string {
	if s < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", s)
}

func kernel() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(data))
}

func gitRevision() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
