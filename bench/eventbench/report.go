package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/events"
)

// percentile returns the value below which q of the sorted samples lie
// (nearest rank); 0 without samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// median returns the median of xs, NaNs (unknown values) left out; NaN if
// nothing is left.
func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// column is one column of a table: its heading and how its values print.
type column struct {
	name   string
	format string // for fmt, of a float64
}

// row is a label and one value per column after the label's.
type row struct {
	label string
	vals  []float64
}

type table struct {
	cols []column // the first is the label's
	rows []row
}

func (t table) String() string {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range t.cols {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n|---|")
	for range t.cols[1:] {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + r.label + " |")
		for i, v := range r.vals {
			if math.IsNaN(v) {
				b.WriteString(" n/a |")
				continue
			}
			fmt.Fprintf(&b, " "+t.cols[i+1].format+" |", v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// medianTable takes, cell by cell, the median of tables of the same shape.
func medianTable(ts []table) table {
	out := table{cols: ts[0].cols}
	for i, r := range ts[0].rows {
		m := row{label: r.label, vals: make([]float64, len(r.vals))}
		for j := range r.vals {
			var xs []float64
			for _, t := range ts {
				if i < len(t.rows) && j < len(t.rows[i].vals) {
					xs = append(xs, t.rows[i].vals[j])
				}
			}
			m.vals[j] = median(xs)
		}
		out.rows = append(out.rows, m)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// seconds is d in seconds, NaN when d is negative (unknown).
func seconds(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return d.Seconds()
}

// The tables of a run, one function each, so that the runs' tables can be
// set side by side and their medians taken.

func deliveryTable(ts []throughput) table {
	t := table{cols: []column{{"stages", ""}, {"clients", "%.0f"}, {"API acks/s", "%.0f"}, {"delivered/s", "%.0f"},
		{"latency p50 ms", "%.0f"}, {"p90 ms", "%.0f"}, {"p99 ms", "%.0f"}, {"max ms", "%.0f"},
		{"backlog at end", "%.0f"}, {"drain s", "%.1f"}, {"drain rate/s", "%.0f"}, {"server CPU s", "%.2f"}, {"other CPU s", "%.2f"}}}
	for _, x := range ts {
		elapsed := x.Hook.End.Sub(x.Hook.Start).Seconds()
		drainRate := math.NaN()
		if x.Drain > 0 {
			drainRate = float64(x.Backlog) / x.Drain.Seconds()
		}
		t.rows = append(t.rows, row{label: fmt.Sprint(x.Stages), vals: []float64{
			float64(x.Clients), x.Hook.Rate(), float64(x.Delivered) / elapsed,
			ms(percentile(x.Latencies, 0.5)), ms(percentile(x.Latencies, 0.9)), ms(percentile(x.Latencies, 0.99)), ms(percentile(x.Latencies, 1)),
			float64(x.Backlog), x.Drain.Seconds(), drainRate, seconds(x.Hook.ServerCPU), seconds(x.Hook.OtherCPU)}})
	}
	return t
}

func baselineTable(ts []throughput) table {
	t := table{cols: []column{{"stages", ""},
		{"acks/s with webhook", "%.0f"}, {"ack p50 ms", "%.1f"}, {"ack p99 ms", "%.1f"}, {"server CPU s", "%.2f"},
		{"acks/s without sink", "%.0f"}, {"ack p50 ms", "%.1f"}, {"ack p99 ms", "%.1f"}, {"server CPU s", "%.2f"},
		{"receiver ceiling posts/s", "%.0f"}, {"posting at once", "%.0f"}, {"post p50 ms", "%.2f"}, {"post p99 ms", "%.2f"}}}
	for _, x := range ts {
		hook, plain := x.Hook.Took(), x.Plain.Took()
		t.rows = append(t.rows, row{label: fmt.Sprint(x.Stages), vals: []float64{
			x.Hook.Rate(), ms(percentile(hook, 0.5)), ms(percentile(hook, 0.99)), seconds(x.Hook.ServerCPU),
			x.Plain.Rate(), ms(percentile(plain, 0.5)), ms(percentile(plain, 0.99)), seconds(x.Plain.ServerCPU),
			x.Ceiling.Rate(), float64(x.Ceiling.Concurrency), ms(percentile(x.Ceiling.Latencies, 0.5)), ms(percentile(x.Ceiling.Latencies, 0.99))}})
	}
	return t
}

func checksTable(ts []throughput) table {
	t := table{cols: []column{{"stages", ""}, {"API errors", "%.0f"}, {"events acked", "%.0f"}, {"missing", "%.0f"},
		{"duplicates", "%.0f"}, {"bad signatures", "%.0f"}, {"stages out of order", "%.0f"},
		{"arrived before the ack", "%.0f"}, {"connections the server opened", "%.0f"}}}
	for _, x := range ts {
		t.rows = append(t.rows, row{label: fmt.Sprint(x.Stages), vals: []float64{
			float64(x.Hook.Errors + x.Plain.Errors), float64(len(x.Hook.Acks)), float64(x.Missing),
			float64(x.Recv.Dups), float64(x.Recv.BadSigs), float64(x.OutOfOrder), float64(x.Early), float64(x.Recv.Conns)}})
	}
	return t
}

func participantsTable(p *participants) table {
	t := table{cols: []column{{"from → to", ""}, {"samples", "%.0f"}, {"p50 ms", "%.1f"}, {"p90 ms", "%.1f"}, {"max ms", "%.1f"}}}
	for _, m := range []struct {
		label string
		d     []time.Duration
	}{
		{"bot Run starts → Participant Joined (WebRTC setup included)", p.Joined},
		{"bot Run starts → Participant Published (WebRTC setup included)", p.Published},
		{"DisconnectParticipant ack → Participant Left", p.Disconnect},
		{"bot's context cancelled → Participant Left", p.Cancel},
	} {
		t.rows = append(t.rows, row{label: m.label, vals: []float64{float64(len(m.d)),
			ms(percentile(m.d, 0.5)), ms(percentile(m.d, 0.9)), ms(percentile(m.d, 1))}})
	}
	return t
}

func outageTable(o *outage) table {
	t := table{cols: []column{{"events", ""}, {"stages", "%.0f"}, {"written in s", "%.2f"}, {"receiver down s", "%.2f"},
		{"queued at restart", "%.0f"}, {"first in after restart s", "%.2f"}, {"all in after restart s", "%.2f"},
		{"events/s after restart", "%.0f"}, {"missing", "%.0f"}, {"duplicates", "%.0f"}, {"stages out of order", "%.0f"},
		{"bad signatures", "%.0f"}, {"failed tries", "%.0f"}}}
	rate := math.NaN()
	if o.All > 0 {
		rate = float64(o.Arrived) / o.All.Seconds()
	}
	t.rows = append(t.rows, row{label: fmt.Sprint(o.Events), vals: []float64{float64(o.Stages), o.Write.Seconds(), o.Down.Seconds(),
		float64(o.Pending), o.First.Seconds(), o.All.Seconds(), rate, float64(o.Missing), float64(o.Recv.Dups),
		float64(o.OutOfOrder), float64(o.Recv.BadSigs), float64(o.FailedTries)}})
	return t
}

// tablesOf returns the tables of a run, in the report's order, with their
// headings.
func tablesOf(r runResult) (headings []string, tables []table) {
	if len(r.Throughput) > 0 {
		headings = append(headings, "Throughput: UpdateStage → webhook", "Baselines: the same load without a sink; the receiver alone",
			"Checks")
		tables = append(tables, deliveryTable(r.Throughput), baselineTable(r.Throughput), checksTable(r.Throughput))
	}
	if r.Participants != nil {
		headings = append(headings, "Participant action → delivery")
		tables = append(tables, participantsTable(r.Participants))
	}
	if r.Outage != nil {
		headings = append(headings, "Outage recovery")
		tables = append(tables, outageTable(r.Outage))
	}
	return headings, tables
}

func formatReport(cfg *config, runs []runResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ivsrt event delivery: eventbench, %s\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "```\n%s\n```\n\n", strings.TrimSpace("go run ./bench/eventbench "+strings.Join(cfg.Args, " ")))
	fmt.Fprintf(&b, "- Machine: %s, %d cores, Linux %s, %s\n", procstat.CPUModel(), runtime.NumCPU(), kernel(), runtime.Version())
	if rev := gitRevision(); rev != "" {
		fmt.Fprintf(&b, "- Code: %s\n", rev)
	}
	b.WriteString("- Server: `ivsrt serve` (built from ./cmd/ivsrt), a process of its own on 127.0.0.1, fresh data folder per phase; SQLite\n")
	b.WriteString("- Receiver: a net/http server inside the bench on 127.0.0.1, verifying every `Ivsrt-Signature` " +
		"(events.VerifySignature), noting each envelope's arrival, answering 200; copies counted by envelope id\n")
	if cfg.Phases["throughput"] {
		fmt.Fprintf(&b, "- Throughput: sink `--webhook-url` with the relay's defaults (%d stages in flight at once, one event per stage at a time); "+
			"C = min(S, %d) SDK clients (SigV4, one attempt), client i owning stages i, i+C, …, each call setting a new name; "+
			"%v warm-up, then %v measured. Latency: the client's ack of UpdateStage → the receiver's arrival of that Stage Updated, "+
			"calls acked in the measured time. Backlog: acked events not arrived at its end (warm-up included)\n",
			events.DefaultConcurrency, cfg.MaxClients, cfg.Warmup, cfg.Duration)
		if cfg.Rate > 0 {
			fmt.Fprintf(&b, "- Offered load: %d UpdateStage calls/s in all, each client on a fixed schedule of rate/C per second\n", cfg.Rate)
		}
		b.WriteString("- Baselines: the same clients on a second server without any sink; " +
			"the bench's own keep-alive client POSTing signed envelopes of the same shape to the same receiver, " +
			fmt.Sprintf("as many at once as the relay would have in flight (min(S, %d))\n", events.DefaultConcurrency))
	}
	if cfg.Phases["participants"] {
		fmt.Fprintf(&b, "- Participants: %d times, one stage, sequentially: a bot (bot package, VP8 video) joins and publishes, "+
			"is disconnected with DisconnectParticipant; a second bot joins, publishes and its context is cancelled\n", cfg.Reps)
	}
	if cfg.Phases["outage"] {
		fmt.Fprintf(&b, "- Outage: sink from `--event-sinks` with minBackoff %v, maxBackoff %v; receiver's listener closed, "+
			"%d UpdateStage on %d stages (one writer per stage), receiver kept down %v more, then started again on the same port\n",
			cfg.MinBackoff, cfg.MaxBackoff, cfg.OutageEvents, cfg.OutageStages, cfg.OutageHold)
	}
	b.WriteString("- CPU: server from /proc/PID/stat (10 ms ticks) over the measured time; other = the whole machine's busy time " +
		"less the server's and the bench's: anything else running, which disturbs the phase\n\n")

	headings, summary := tablesOf(runs[0])
	if len(runs) > 1 {
		for i := range summary {
			var col []table
			for _, r := range runs {
				_, ts := tablesOf(r)
				col = append(col, ts[i])
			}
			summary[i] = medianTable(col)
		}
		fmt.Fprintf(&b, "## Medians of %d runs\n\nEach cell is the median of that cell over the runs.\n", len(runs))
	} else {
		b.WriteString("## Results\n")
	}
	for i, t := range summary {
		fmt.Fprintf(&b, "\n### %s\n\n%s", headings[i], t)
	}
	if len(runs) > 1 {
		for i, r := range runs {
			fmt.Fprintf(&b, "\n## Run %d\n", i+1)
			h, ts := tablesOf(r)
			for j, t := range ts {
				fmt.Fprintf(&b, "\n### %s\n\n%s", h[j], t)
			}
		}
	}
	return b.String()
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
