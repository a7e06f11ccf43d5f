package clusterbench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is everything one run measured.
type report struct {
	started  time.Time
	root     string
	setups   []setup
	api      []apiRow
	ramps    []rampResult
	failures []string
}

const command = "IVSRT_BENCH=1 go test -run TestReport -count 1 -timeout 30m -v ./bench/clusterbench"

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cpus := runtime.NumCPU()

	p("# ivsrt cluster: clusterbench, %s\n\n", r.started.Format("2006-01-02 15:04 UTC"))
	p("```\n%s\n```\n\n", command)
	p("- Machine: %s, %d cores, Linux %s, %s\n", cpuModel(), cpus, kernel(), runtime.Version())
	p("- Code: %s\n", codeVersion(r.root))
	p("- Nodes: `ivsrt serve` processes built from ./cmd/ivsrt, each on a free port of 127.0.0.1 with " +
		"`--rtc-udp-port 0 --rtc-tcp-port -1 --turn-udp-port -1 --log-level warn`. **SQLite, single server**: no `--store` " +
		"(SQLite in the data folder, no cluster). **PostgreSQL**: `--store <dsn> --cluster-nats <url> " +
		"--node-id node-a…`, the cluster's default lease, heartbeat and dead-after (15 s, 2 s, 10 s)\n")
	pg := "PostgreSQL"
	if pgVersion != "" {
		pg += " " + pgVersion
	}
	p("- %s: the throwaway server of store/postgres/pgtest (fsync, synchronous_commit and "+
		"full_page_writes off), a child of the bench process; a fresh database for each setup and phase\n", pg)
	p("- NATS: nats-server embedded in the bench process\n")
	p("- CPU: nodes = user+system time of every node process, summed (/proc/PID/stat); PostgreSQL = " +
		"its server process and all its backends, live and exited; bench = this test process (load " +
		"generator or bots, and the embedded NATS server; getrusage); other = the machine's busy time " +
		"(/proc/stat) less those: other processes and kernel work outside them, which disturbs the " +
		"measurement when large; machine = all busy time. All in cores: CPU seconds per second of the measured time\n\n")
	p("**Everything runs on one machine with %d cores**: the nodes, PostgreSQL, NATS, the load "+
		"generator and the bots all share them. Three nodes do not bring more cores, so the 3-node rows "+
		"show what coordination costs (proxying, the shared store, NATS), not what scaling out gains; "+
		"on separate machines each node would have its own cores.\n\n", cpus)

	if lo, hi := r.otherRange(); hi > 0.3 {
		p("**Disturbed**: other work on the machine kept %.2f to %.2f cores busy during the measurements "+
			"(the other CPU columns). Throughput, latency and where the ramp stopped are understated; CPU "+
			"per request is less affected. Run again on an idle machine for clean figures.\n\n", lo, hi)
	}
	for _, f := range r.failures {
		p("- **%s**\n", f)
	}
	if len(r.failures) > 0 {
		p("\n")
	}

	if len(r.api) > 0 {
		r.apiSection(p)
	}
	if len(r.ramps) > 0 {
		r.rampSection(p)
	}
	return b.String()
}

func (r *report) apiSection(p func(string, ...any)) {
	p("## API throughput\n\n")
	p("%d concurrent aws-sdk-go-v2 `ivsrealtime` clients (SigV4-signed, one attempt per call, a shared "+
		"keep-alive transport), client i talking to node i mod N; each operation %v of warm-up then %v "+
		"measured, as fast as the clients can. %d stages with 3 tags made at setup, spread over the nodes; "+
		"GetStage and CreateParticipantToken pick a random one per call; UpdateStage renames a random one "+
		"to a name never used before (a store write and a Stage Updated event per call).\n\n",
		*flagConcurrency, *flagWarmup, *flagDuration, *flagStages)
	p("| Setup | Operation | Requests | Errors | req/s | p50 ms | p99 ms | nodes CPU | PostgreSQL CPU | bench CPU | other CPU | machine busy | nodes+PostgreSQL µs/req |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, a := range r.api {
		perReq := "–"
		if a.requests > 0 {
			server := a.cpu.nodes
			if a.cpu.postgres > 0 {
				server += a.cpu.postgres
			}
			perReq = fmt.Sprintf("%.0f", float64(server.Microseconds())/float64(a.requests))
		}
		pgCPU := "–"
		if strings.HasPrefix(a.setup, "PostgreSQL") {
			pgCPU = coresText(a.cpu, a.cpu.postgres)
		}
		p("| %s | %s | %d | %d | %.0f | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n", a.setup, a.op, a.requests,
			a.errors, a.throughput(), ms(percentile(a.latencies, 0.5)), ms(percentile(a.latencies, 0.99)),
			coresText(a.cpu, a.cpu.nodes), pgCPU, coresText(a.cpu, a.cpu.bench), coresText(a.cpu, a.cpu.other()),
			coresText(a.cpu, a.cpu.machine), perReq)
	}
	p("\n")
	for _, a := range r.api {
		if a.errors > 0 {
			p("- %s, %s: %d errors; the first: `%s`\n", a.setup, a.op, a.errors, a.firstErr)
		}
		if a.attempts > 1 {
			p("- %s, %s: measured %d times, other work on the machine using over %v of CPU; the least disturbed attempt is shown\n",
				a.setup, a.op, a.attempts, *flagMaxOther)
		}
	}
	// Throughput of each setup against the one before it, operation by
	// operation.
	var lines []string
	for i, s := range r.setups {
		if i == 0 {
			continue
		}
		prev := r.setups[i-1]
		for _, a := range r.api {
			if a.setup != s.name {
				continue
			}
			for _, o := range r.api {
				if o.setup == prev.name && o.op == a.op && o.throughput() > 0 {
					lines = append(lines, fmt.Sprintf("- %s: %s %.2f× the req/s of %s (%.0f vs %.0f), p99 %.2f vs %.2f ms",
						a.op, s.name, a.throughput()/o.throughput(), prev.name, a.throughput(), o.throughput(),
						ms(percentile(a.latencies, 0.99)), ms(percentile(o.latencies, 0.99))))
				}
			}
		}
	}
	if len(lines) > 0 {
		p("\n%s\n", strings.Join(lines, "\n"))
	}
	p("\n")
}

func (r *report) rampSection(p func(string, ...any)) {
	p("## Participants per cluster\n\n")
	p("Stages of %d participants: one publisher (a `bot` publishing a %dx%d VP8 test pattern at %d fps, "+
		"no audio) and %d subscribe-only bots (`bot.Config{Subscribe: true}`, tokens with SUBSCRIBE only), "+
		"all in the bench process. Participant j's token is made through node j mod N, so it joins through "+
		"that node (a node that does not host the stage proxies the events WebSocket, WHIP and WHEP to the "+
		"host; the media goes straight to the host). The ramp adds %d participants per step: the step's "+
		"publishers first, waited for until they publish, then all their subscribers at once; then %v "+
		"measured with nobody joining. It stops when a join fails (or a bot is dropped), when a step's "+
		"join p95 exceeds %v, when the nodes, PostgreSQL and the bots keep over %.0f%% of the cores busy in the steady time (other work on the machine does not count), or at %d. "+
		"**Sustained** is the last level whose step passed. Then %v held at the top, measured.\n\n",
		stageSize, videoWidth, videoHeight, videoFPS, stageSize-1, *flagStep, *flagSettle, maxJoinP95, saturatedShare*100,
		*flagMaxParticipants, *flagHold)
	p("Join latency: subscribers from the bot's start (events WebSocket join, then WHEP: ICE, DTLS) to " +
		"its first whole video frame; publishers from start to their first video frame sent (the WHIP connection up).\n\n")
	p("| Setup | Sustained | Stopped because | subscriber join p50 / p95 ms | publisher join p50 / p95 ms | stages per node | participants per node | receiving at the top | CPU at the top: nodes / PostgreSQL / bench (bots) / other / machine |\n")
	p("|---|--:|---|--:|--:|---|---|---|---|\n")
	for _, g := range r.ramps {
		pgCPU := "–"
		if strings.HasPrefix(g.setup, "PostgreSQL") {
			pgCPU = coresText(g.hold, g.hold.postgres)
		}
		p("| %s | %d | %s | %.0f / %.0f | %.0f / %.0f | %s | %s | %d of %d subscribers, %d of %d publishers | %s / %s / %s / %s / %s |\n",
			g.setup, g.sustained, g.stop,
			ms(percentile(g.subLat, 0.5)), ms(percentile(g.subLat, 0.95)),
			ms(percentile(g.pubLat, 0.5)), ms(percentile(g.pubLat, 0.95)),
			perNode(g.stagesByNode, "all on the one server"), perNode(g.participantsByNode, "–"),
			g.receiving, g.watching, g.publishing, g.publishers,
			coresText(g.hold, g.hold.nodes), pgCPU, coresText(g.hold, g.hold.bench), coresText(g.hold, g.hold.other()),
			coresText(g.hold, g.hold.machine))
	}
	p("\n")
	for _, g := range r.ramps {
		p("### Ramp: %s\n\n", g.setup)
		p("| Participants | joins | failed | subscriber join p50 ms | p95 ms | max ms | nodes CPU | PostgreSQL CPU | bench CPU | other CPU | machine busy |\n")
		p("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range g.steps {
			maxLat := time.Duration(0)
			if len(s.subLat) > 0 {
				maxLat = s.subLat[len(s.subLat)-1]
			}
			pgCPU := "–"
			if strings.HasPrefix(g.setup, "PostgreSQL") {
				pgCPU = coresText(s.cpu, s.cpu.postgres)
			}
			p("| %d | %d | %d | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s |\n", s.participants, s.joins, s.failed,
				ms(percentile(s.subLat, 0.5)), ms(percentile(s.subLat, 0.95)), ms(maxLat),
				coresText(s.cpu, s.cpu.nodes), pgCPU, coresText(s.cpu, s.cpu.bench), coresText(s.cpu, s.cpu.other()),
				coresText(s.cpu, s.cpu.machine))
		}
		p("\n")
		for _, s := range g.steps {
			if s.firstErr != "" {
				p("- at %d: `%s`\n", s.participants, s.firstErr)
			}
		}
		p("\n")
	}
}

// otherRange returns the least and the most other work, in cores, of all
// the measurements.
func (r *report) otherRange() (lo, hi float64) {
	var all []float64
	for _, a := range r.api {
		all = append(all, a.cpu.cores(a.cpu.other()))
	}
	for _, g := range r.ramps {
		for _, s := range g.steps {
			all = append(all, s.cpu.cores(s.cpu.other()))
		}
		all = append(all, g.hold.cores(g.hold.other()))
	}
	if len(all) == 0 {
		return 0, 0
	}
	return slices.Min(all), slices.Max(all)
}

// coresText formats d as cores busy over u's wall time.
func coresText(u cpuUse, d time.Duration) string {
	c := u.cores(d)
	if c < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", c)
}

// perNode formats counts by node id, in order of id.
func perNode(m map[string]int, none string) string {
	if len(m) == 0 {
		return none
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s %d", id, m[id])
	}
	return strings.Join(parts, ", ")
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(data))
}

// codeVersion is the commit the module is at, -dirty with changes not
// committed.
func codeVersion(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain").Output(); err == nil && len(st) > 0 {
		v += "-dirty"
	}
	return v
}
