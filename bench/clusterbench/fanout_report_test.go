package clusterbench

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
)

// The metrics the fan-out reads of each node.
const (
	mPacketsIn     = "ivsrt_media_received_packets_total"
	mBytesIn       = "ivsrt_media_received_bytes_total"
	mPacketsOut    = "ivsrt_media_forwarded_packets_total"
	mBytesOut      = "ivsrt_media_forwarded_bytes_total"
	mRetransmitted = "ivsrt_media_retransmitted_packets_total"
	mNACKs         = "ivsrt_media_nacks_received_total"
	mPulls         = "ivsrt_edge_pulls"
	mEdgeSubs      = "ivsrt_edge_subscriptions"
	mFeedsOut      = "ivsrt_feeds_out"
	mSubscriptions = "ivsrt_subscriptions"
)

func mDropped(reason string) string {
	return fmt.Sprintf("ivsrt_media_dropped_packets_total{reason=%q}", reason)
}

// publicationKinds is the kinds of media of the publication, audio and
// video: an edge pulls each at most once.
const publicationKinds = 2

// The load the capacity model predicts for.
const (
	modelPublishers  = 12
	modelSubscribers = 25000
	modelUse         = 0.75 // share of a node's cores planned busy
)

func (r *fanoutRun) secs() float64       { return r.wall.Seconds() }
func (r *fanoutRun) origin() *fanoutNode { return r.perNode[0] }
func (r *fanoutRun) edges() []*fanoutNode {
	return r.perNode[1:]
}

// pubRate is the publication's packets per second as the origin received
// them.
func (r *fanoutRun) pubRate() float64 { return r.origin().delta(mPacketsIn) / r.secs() }

// pubMbps is the publication's RTP bit rate as the origin received it.
func (r *fanoutRun) pubMbps() float64 { return r.origin().delta(mBytesIn) * 8 / r.secs() / 1e6 }

// feedPackets is what the edges received from the origin over the
// window.
func (r *fanoutRun) feedPackets() float64 {
	var sum float64
	for _, e := range r.edges() {
		sum += e.delta(mPacketsIn)
	}
	return sum
}

// toSubscribers is the packets node n sent its own subscribers: an
// origin's forwarded packets include its feeds to the edges, which are
// counted as the edges received them.
func (r *fanoutRun) toSubscribers(n *fanoutNode) float64 {
	out := n.delta(mPacketsOut)
	if n.origin {
		out -= r.feedPackets()
	}
	return out
}

func (r *fanoutRun) nodesCPU() time.Duration {
	var sum time.Duration
	for _, n := range r.perNode {
		sum += n.cpu
	}
	return sum
}

// usPerPacket is the CPU of all the nodes per packet forwarded to a
// subscriber.
func (r *fanoutRun) usPerPacket() float64 {
	var pkts float64
	for _, n := range r.perNode {
		pkts += r.toSubscribers(n)
	}
	if pkts <= 0 {
		return math.NaN()
	}
	return float64(r.nodesCPU().Microseconds()) / pkts
}

// subStats summarizes the subscribers' windows: received packets per
// second (median, least), the share of the published packets received
// (median, least), and the share lost on the way (most, and of all).
type subStats struct {
	rateMedian, rateMin   float64
	shareMedian, shareMin float64
	lossMax, lossAll      float64
	below                 int // subscribers under -fanout-min-received
}

func (r *fanoutRun) subStats(node string) subStats {
	var rates, shares, losses []float64
	var expected, unique uint64
	var st subStats
	for _, s := range r.subs {
		if node != "" && s.node != node {
			continue
		}
		rates = append(rates, float64(s.packets)/r.secs())
		share := float64(s.unique) / float64(max(1, r.published))
		shares = append(shares, share)
		if share < *flagFanoutMinRecv {
			st.below++
		}
		loss := 0.0
		if s.expected > 0 && s.expected > s.unique {
			loss = float64(s.expected-s.unique) / float64(s.expected)
		}
		losses = append(losses, loss)
		expected += s.expected
		unique += s.unique
	}
	if len(rates) == 0 {
		return st
	}
	slices.Sort(rates)
	slices.Sort(shares)
	st.rateMedian, st.rateMin = rates[len(rates)/2], rates[0]
	st.shareMedian, st.shareMin = shares[len(shares)/2], shares[0]
	st.lossMax = slices.Max(losses)
	if expected > unique {
		st.lossAll = float64(expected-unique) / float64(expected)
	}
	return st
}

// unhealthy says why the run's load was not carried, "" if it was.
func (r *fanoutRun) unhealthy() string {
	if st := r.subStats(""); st.below > 0 {
		return fmt.Sprintf("%d of %d subscribers received under %.0f%% of the published packets (least %.1f%%)",
			st.below, len(r.subs), *flagFanoutMinRecv*100, st.shareMin*100)
	}
	return ""
}

func (r *fanoutRun) summary() string {
	var b strings.Builder
	st := r.subStats("")
	fmt.Fprintf(&b, "%d nodes: nodes CPU %.2f cores, %.1f µs per packet to subscribers; publication %.0f packets/s; subscribers %.0f packets/s median, %.1f%% of published at least, %.3f%% lost on the way",
		r.nodes, r.cpu.cores(r.nodesCPU()), r.usPerPacket(), r.pubRate(), st.rateMedian, st.shareMin*100, st.lossAll*100)
	for _, n := range r.perNode {
		fmt.Fprintf(&b, "\n  %s (%s, %d subscribers): CPU %.2f, in %.0f/s, out %.0f/s (to subscribers %.0f/s), %.1f Mbit/s out; pulls %.0f, edge subscriptions %.0f, feeds out %.0f",
			n.id, role(n), n.subscribers, n.cpu.Seconds()/r.secs(), n.delta(mPacketsIn)/r.secs(), n.delta(mPacketsOut)/r.secs(),
			r.toSubscribers(n)/r.secs(), n.delta(mBytesOut)*8/r.secs()/1e6, n.after[mPulls], n.after[mEdgeSubs], n.after[mFeedsOut])
	}
	return b.String()
}

func role(n *fanoutNode) string {
	if n.origin {
		return "origin"
	}
	return "edge"
}

// fanoutReport is a run of TestFanout.
type fanoutReport struct {
	started     time.Time
	root        string
	clip        *clip.Clip
	subscribers int
	runs        []*fanoutRun
	failures    []string
}

const fanoutCommand = "IVSRT_BENCH=1 go test -run TestFanout -count 1 -timeout 30m -v ./bench/clusterbench"

func (r *fanoutReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cpus := runtime.NumCPU()

	p("# ivsrt cluster: one stage's fan-out on 1, 2 and 3 nodes, %s\n\n", r.started.Format("2006-01-02 15:04 UTC"))
	p("```\n%s\n```\n\n", fanoutCommand)
	p("- Machine: %s, %d cores (nproc), Linux %s, %s\n", cpuModel(), cpus, kernel(), runtime.Version())
	p("- Code: %s\n", codeVersion(r.root))
	p("- Publisher: one WHIP publisher (bench/internal/publish, a pion peer connection) sending a %dx%d H.264 "+
		"constrained-baseline clip of x264 (testsrc2 with moving noise, %d fps, a keyframe every %v, %.0f kbit/s) and "+
		"an Opus tone (%.0f kbit/s, 20 ms packets), looped at real-time pace; RTP payloads of at most %d bytes. It "+
		"publishes through node-a; the stage is placed when it joins, and its host is the **origin**\n",
		clipWidth, clipHeight, clip.FPS, clipKeyEvery, r.clip.VideoKbps(), r.clip.OpusKbps(), 1200)
	twcc := "receiver reports and NACKs, no transport-wide congestion control (`-fanout-twcc` for it)"
	if *flagFanoutTWCC {
		twcc = "receiver reports, NACKs and transport-wide congestion control feedback with RTX"
	}
	p("- Subscribers: %d pion peer connections (bench/internal/rtcpeer, each on a UDP socket of its own) receiving the "+
		"publisher's audio and video over WHEP, with %s. Subscriber i POSTs its WHEP offer to node i mod N of "+
		"(origin, edges…), which serves it: the origin itself, or an edge pulling the publication from the origin, once for all its subscribers. "+
		"%d join at once; each waits for its first video packet\n", r.subscribers, twcc, *flagJoinParallel)
	p("- Nodes: `ivsrt serve` on 127.0.0.1, always in cluster mode (`--store <PostgreSQL> --cluster-nats <url> --node-id node-a…`, " +
		"the pgtest PostgreSQL server and a NATS server embedded in the bench), so that only the number of nodes changes " +
		"between deployments; fresh nodes and database for each\n")
	p("- Measured: after every subscriber receives, %v of warm-up, then a window of %v: each node's CPU (user+system of its "+
		"process, /proc/PID/stat), the deltas of its /metrics counters, what every subscriber received (client side), and "+
		"what the publisher sent\n\n", *flagFanoutWarmup, *flagFanoutWindow)
	p("**Everything runs on one machine with %d cores**: the nodes, PostgreSQL, NATS, the publisher and the %d "+
		"subscribers share them, and a pion subscriber costs the bench about as much CPU per packet as the node spends "+
		"sending it. Node CPU is measured per process, so the per-node figures and the CPU per packet hold; what more "+
		"nodes do not show here is more cores.\n\n", cpus, r.subscribers)
	var others []float64
	for _, run := range r.runs {
		others = append(others, run.cpu.cores(run.cpu.other()))
	}
	if len(others) > 0 && slices.Max(others) > 0.3 {
		p("**Disturbed**: other work on the machine kept %.2f to %.2f cores busy during the windows (the other CPU "+
			"column). The nodes' CPU is their own processes', but they shared the cores with it.\n\n", slices.Min(others), slices.Max(others))
	}
	for _, f := range r.failures {
		p("- **%s**\n", f)
	}
	if len(r.failures) > 0 {
		p("\n")
	}
	if len(r.runs) == 0 {
		return b.String()
	}
	shown := r.medianRuns()
	if len(shown) < len(r.runs) {
		p("Each deployment was measured %d times, the deployments in turn; the tables show each deployment's run of median "+
			"CPU per packet (the other runs are in [All runs](#all-runs)), and the capacity model uses those.\n\n", *flagFanoutRuns)
	}

	p("## Cost\n\n")
	p("Packets to subscribers are each node's `ivsrt_media_forwarded_packets_total` delta; the origin's counts its feeds " +
		"to the edges too, which are taken out and shown apart as the edges' `ivsrt_media_received_packets_total` deltas. " +
		"µs per packet: the CPU of all the nodes over all the packets sent to subscribers. Mbps out: forwarded SRTP bytes.\n\n")
	p("| Nodes | subscribers per node | CPU per node, cores (idle before) | nodes CPU, cores | packets/s to subscribers, per node | feed packets/s origin → edges | µs CPU per packet to subscribers | Mbps out per node | PostgreSQL / bench / other / machine CPU |\n")
	p("|--:|---|---|--:|---|--:|--:|---|---|\n")
	for _, run := range shown {
		var subs, cpu, pkts, mbps []string
		for _, n := range run.perNode {
			subs = append(subs, fmt.Sprint(n.subscribers))
			cpu = append(cpu, fmt.Sprintf("%.2f (%.2f)", n.cpu.Seconds()/run.secs(), n.idle))
			pkts = append(pkts, fmt.Sprintf("%.0f", run.toSubscribers(n)/run.secs()))
			mbps = append(mbps, fmt.Sprintf("%.0f", n.delta(mBytesOut)*8/run.secs()/1e6))
		}
		p("| %d | %s | %s | %.2f | %s | %.0f | %.1f | %s | %s / %s / %s / %s |\n", run.nodes,
			strings.Join(subs, " / "), strings.Join(cpu, " / "), run.cpu.cores(run.nodesCPU()),
			strings.Join(pkts, " / "), run.feedPackets()/run.secs(), run.usPerPacket(), strings.Join(mbps, " / "),
			coresText(run.cpu, run.cpu.postgres), coresText(run.cpu, run.cpu.bench), coresText(run.cpu, run.cpu.other()),
			coresText(run.cpu, run.cpu.machine))
	}
	p("\nPer node: origin first, then the edges.\n\n")

	p("## The origin's feeds to its edges\n\n")
	p("The publication's packet rate is what the origin received from the publisher (its `ivsrt_media_received_packets_total`); " +
		"the publisher's own count is beside it. Each edge's feed is what that edge received; the origin's own count of its feeds " +
		"is its forwarded packets less what it sent its own subscribers, taken to be as many each as an edge sent each of " +
		"its subscribers (all from the nodes' counters, read at the same moment).\n\n")
	p("| Nodes | publisher sent, packets/s | publication at the origin, packets/s | publication, Mbit/s | per edge: feed packets/s (× publication) | feeds by the origin's count, packets/s per edge | edge pulls / edge subscriptions / origin feeds out |\n")
	p("|--:|--:|--:|--:|---|--:|---|\n")
	for _, run := range shown {
		var perEdge, gauges []string
		for _, e := range run.edges() {
			rate := e.delta(mPacketsIn) / run.secs()
			perEdge = append(perEdge, fmt.Sprintf("%.0f (%.3f×)", rate, rate/run.pubRate()))
			gauges = append(gauges, fmt.Sprintf("%.0f / %.0f", e.after[mPulls], e.after[mEdgeSubs]))
		}
		originView := "–"
		if len(run.edges()) > 0 {
			o := run.origin()
			var edgeOut float64
			var edgeSubs int
			for _, e := range run.edges() {
				edgeOut += e.delta(mPacketsOut)
				edgeSubs += e.subscribers
			}
			own := edgeOut / float64(max(1, edgeSubs)) * float64(o.subscribers)
			originView = fmt.Sprintf("%.0f", (o.delta(mPacketsOut)-own)/run.secs()/float64(len(run.edges())))
		}
		g := "–"
		if len(gauges) > 0 {
			g = fmt.Sprintf("%s; %.0f", strings.Join(gauges, ", "), run.origin().after[mFeedsOut])
		}
		pe := "–"
		if len(perEdge) > 0 {
			pe = strings.Join(perEdge, ", ")
		}
		p("| %d | %.0f | %.0f | %.2f | %s | %s | %s |\n", run.nodes, float64(run.published)/run.secs(), run.pubRate(),
			run.pubMbps(), pe, originView, g)
	}
	p("\n")

	p("## Health of the load\n\n")
	p("Received: packets read from a subscriber's audio and video tracks per second, retransmissions included. Share of "+
		"published: the distinct packets (by RTP sequence number) a subscriber received over the packets the publisher sent "+
		"in the same window; the SFU numbers a subscriber's packets without gaps for those it chose not to send, so its own "+
		"drops show here. Lost on the way: sequence numbers a subscriber never received (after retransmissions) over those "+
		"it was sent. A run fails when a subscriber receives under %.0f%% of the published packets.\n\n", *flagFanoutMinRecv*100)
	p("| Nodes | node | subscribers | received packets/s, median (least) | share of published, median (least) | lost on the way, all (worst) | dropped by the node: queue full / no keyframe / socket | retransmitted/s | NACKs/s | join p50 / max ms |\n")
	p("|--:|---|--:|---|---|---|---|--:|--:|---|\n")
	for _, run := range shown {
		for i, n := range run.perNode {
			st := run.subStats(n.id)
			join := ""
			if i == 0 && len(run.joins) > 0 {
				join = fmt.Sprintf("%.0f / %.0f (all)", ms(percentile(run.joins, 0.5)), ms(run.joins[len(run.joins)-1]))
			}
			p("| %d | %s (%s) | %d | %.1f (%.1f) | %.2f%% (%.2f%%) | %.3f%% (%.3f%%) | %.0f / %.0f / %.0f | %.1f | %.1f | %s |\n",
				run.nodes, n.id, role(n), n.subscribers, st.rateMedian, st.rateMin, st.shareMedian*100, st.shareMin*100,
				st.lossAll*100, st.lossMax*100, n.delta(mDropped("queue_full")), n.delta(mDropped("no_keyframe")),
				n.delta(mDropped("socket")), n.delta(mRetransmitted)/run.secs(), n.delta(mNACKs)/run.secs(), join)
		}
	}
	p("\n")

	r.findings(p)
	r.capacity(p, shown)
	if len(shown) < len(r.runs) {
		r.allRuns(p)
	}
	return b.String()
}

// medianRuns returns, for each number of nodes in the order first
// measured, its run of median CPU per packet (the lower of the two middle
// ones).
func (r *fanoutReport) medianRuns() []*fanoutRun {
	var order []int
	by := map[int][]*fanoutRun{}
	for _, run := range r.runs {
		if by[run.nodes] == nil {
			order = append(order, run.nodes)
		}
		by[run.nodes] = append(by[run.nodes], run)
	}
	var out []*fanoutRun
	for _, n := range order {
		runs := slices.Clone(by[n])
		slices.SortFunc(runs, func(a, b *fanoutRun) int { return cmpFloat(a.usPerPacket(), b.usPerPacket()) })
		out = append(out, runs[(len(runs)-1)/2])
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// allRuns lists every run's main figures.
func (r *fanoutReport) allRuns(p func(string, ...any)) {
	p("## All runs\n\n")
	p("| Nodes | run | µs CPU per packet to subscribers | nodes CPU, cores | CPU per node, cores | feed packets/s per edge (× publication) | share of published, least | lost on the way, all | other CPU, cores |\n")
	p("|--:|--:|--:|--:|---|---|--:|--:|--:|\n")
	runs := slices.Clone(r.runs)
	slices.SortStableFunc(runs, func(a, b *fanoutRun) int { return a.nodes - b.nodes })
	for _, run := range runs {
		var cpu, feeds []string
		for _, n := range run.perNode {
			cpu = append(cpu, fmt.Sprintf("%.2f", n.cpu.Seconds()/run.secs()))
		}
		for _, e := range run.edges() {
			rate := e.delta(mPacketsIn) / run.secs()
			feeds = append(feeds, fmt.Sprintf("%.0f (%.3f×)", rate, rate/run.pubRate()))
		}
		f := "–"
		if len(feeds) > 0 {
			f = strings.Join(feeds, ", ")
		}
		st := run.subStats("")
		p("| %d | %d | %.1f | %.2f | %s | %s | %.2f%% | %.3f%% | %s |\n", run.nodes, run.round, run.usPerPacket(),
			run.cpu.cores(run.nodesCPU()), strings.Join(cpu, " / "), f, st.shareMin*100, st.lossAll*100,
			coresText(run.cpu, run.cpu.other()))
	}
	p("\n")
}

// findings lists what departs from the expected: an edge fed more or
// less than the publication, losses, drops.
func (r *fanoutReport) findings(p func(string, ...any)) {
	var lines []string
	for _, run := range r.runs {
		at := fmt.Sprintf("%d nodes, run %d", run.nodes, run.round)
		for _, e := range run.edges() {
			ratio := e.delta(mPacketsIn) / run.secs() / run.pubRate()
			if ratio > 1.02 || ratio < 0.98 {
				lines = append(lines, fmt.Sprintf("%s: the origin fed %s %.3f× the publication's packets", at, e.id, ratio))
			}
			// A pull per kind of the publication (audio, video) at most.
			if pulls := e.after[mPulls]; pulls < 1 || pulls > publicationKinds {
				lines = append(lines, fmt.Sprintf("%s: %s has %.0f pulls of the one publication of %d kinds", at, e.id, pulls, publicationKinds))
			}
		}
		if len(run.edges()) > 0 {
			var pulls float64
			for _, e := range run.edges() {
				pulls += e.after[mPulls]
			}
			if f := run.origin().after[mFeedsOut]; f != pulls {
				lines = append(lines, fmt.Sprintf("%s: the origin has %.0f feeds out for its edges' %.0f pulls", at, f, pulls))
			}
		}
		for _, n := range run.perNode {
			st := run.subStats(n.id)
			if st.lossAll > 0.001 {
				lines = append(lines, fmt.Sprintf("%s: %s's subscribers lost %.2f%% on the way (worst %.2f%%)", at, n.id, st.lossAll*100, st.lossMax*100))
			}
			if st.shareMin < 0.99 {
				lines = append(lines, fmt.Sprintf("%s: a subscriber of %s received %.2f%% of the published packets", at, n.id, st.shareMin*100))
			}
			if d := n.delta(mDropped("queue_full")) + n.delta(mDropped("socket")); d > 0 {
				lines = append(lines, fmt.Sprintf("%s: %s dropped %.0f packets (queue full or socket)", at, n.id, d))
			}
		}
	}
	p("## Findings\n\n")
	if len(lines) == 0 {
		p("Nothing out of the ordinary in any run: every edge was fed the publication's packet rate (within 2%%), at most one " +
			"pull per kind of the publication at each edge, one feed at the origin per pull; no subscriber lost over 0.1%% on the way or received under 99%% of the published packets; no node dropped packets for a full queue or socket.\n\n")
		return
	}
	for _, l := range lines {
		p("- %s\n", l)
	}
	p("\n")
}

// capacity writes the capacity model computed from the runs.
func (r *fanoutReport) capacity(p func(string, ...any), shown []*fanoutRun) {
	cpus := float64(runtime.NumCPU())
	// The edges of the run with the most nodes: their cost per subscriber
	// includes their share of the pull.
	var run *fanoutRun
	for _, x := range shown {
		if len(x.edges()) > 0 && (run == nil || x.nodes > run.nodes) {
			run = x
		}
	}
	p("## Capacity model\n\n")
	if run == nil {
		p("No run with edges: nothing to model.\n")
		return
	}
	secs := run.secs()
	var edgeCores, edgeIdle, edgeBytesOut, edgeIn, edgeBytesIn float64
	var edgeSubs int
	for _, e := range run.edges() {
		edgeCores += e.cpu.Seconds() / secs
		edgeIdle += e.idle
		edgeSubs += e.subscribers
		edgeBytesOut += e.delta(mBytesOut)
		edgeIn += e.delta(mPacketsIn)
		edgeBytesIn += e.delta(mBytesIn)
	}
	nEdges := float64(len(run.edges()))
	idlePerEdge := edgeIdle / nEdges
	perSubAll := edgeCores / float64(edgeSubs)
	perSub := max(edgeCores-edgeIdle, 0) / float64(edgeSubs) // the idle node's own cost aside
	subsPerCore := 1 / perSub
	mbpsPerSub := edgeBytesOut * 8 / secs / 1e6 / float64(edgeSubs)
	feedMbps := edgeBytesIn * 8 / secs / 1e6 / nEdges
	feedPps := edgeIn / secs / nEdges
	o := run.origin()
	originUs := max(o.cpu.Seconds()-o.idle*secs, 0) * 1e6 / o.delta(mPacketsOut)

	// An edge of this machine's size, planned at modelUse of its cores
	// (and at all of them), less what it costs idle.
	streams := func(use float64) float64 { return math.Floor((cpus*use - idlePerEdge) / perSub) }
	edgesAt := func(use float64) float64 {
		return math.Ceil(modelSubscribers / math.Floor(streams(use)/modelPublishers))
	}
	streamsPerEdge := streams(modelUse)
	viewersPerEdge := math.Floor(streamsPerEdge / modelPublishers)
	edges := edgesAt(modelUse)
	feeds := edges * modelPublishers
	originCores := feeds * feedPps * originUs / 1e6
	totalGbps := float64(modelSubscribers) * modelPublishers * mbpsPerSub / 1000

	p("From the %d-node run's edges (%d subscribers on %d edges, each edge pulling the publication once for all its subscribers): %.3f cores "+
		"for %d subscribers, of which %.3f the edges cost idle (before the stage started): **%.4f cores per subscriber** "+
		"of one %.2f Mbit/s publication (audio and video), the edge's share of the pull included (%.4f with the idle cost "+
		"spread over these few subscribers). That is **%.0f subscribers per core** at this bit rate, %.0f on a node of this "+
		"machine's %.0f cores at full use. Each subscriber takes %.2f Mbit/s out (SRTP), so a full %.0f-core edge sends **%.0f Mbit/s**.",
		run.nodes, edgeSubs, len(run.edges()), edgeCores, edgeSubs, edgeIdle, perSub, run.pubMbps(), perSubAll,
		subsPerCore, streams(1), cpus, mbpsPerSub, cpus, streams(1)*mbpsPerSub)
	var single *fanoutRun
	for _, x := range shown {
		if x.nodes == 1 {
			single = x
		}
	}
	singlePerSub := math.NaN()
	if single != nil {
		n := single.origin()
		singlePerSub = max(n.cpu.Seconds()/single.secs()-n.idle, 0) / float64(n.subscribers)
		p(" The single node, publisher and all, spent %.4f cores per subscriber beyond its idle cost (%.0f per core) "+
			"with %d subscribers: the cost per packet falls as a node's fan-out grows, so the edges' figure, from %d "+
			"subscribers each, is the cautious one. Spread over %d nodes, the same %d subscribers took %.2f× the CPU "+
			"of one node (%.1f against %.1f µs per packet to subscribers).",
			singlePerSub, 1/singlePerSub, n.subscribers, edgeSubs/len(run.edges()), run.nodes, r.subscribers,
			run.nodesCPU().Seconds()/run.secs()/(single.nodesCPU().Seconds()/single.secs()), run.usPerPacket(), single.usPerPacket())
	}
	p(" The origin spent %.1f µs per packet it forwarded beyond its idle cost, its feeds among them; each feed to an edge is "+
		"%.0f packets/s, %.2f Mbit/s of RTP.\n\n", originUs, feedPps, feedMbps)

	p("**One stage of %d publishers and %d subscribers**, each subscriber watching every publisher:\n\n", modelPublishers, modelSubscribers)
	p("- %d × %d = %d subscriptions of one publication each, %.0f Gbit/s out to subscribers in all.\n",
		modelSubscribers, modelPublishers, modelSubscribers*modelPublishers, totalGbps)
	p("- An edge of this machine's size (%.0f cores) planned at %.0f%% busy carries %.0f subscriptions, i.e. %.0f "+
		"subscribers watching all %d: **%.0f edge nodes** (%.0f at 100%% busy), each sending %.0f Mbit/s and pulling %d "+
		"publications (%.0f Mbit/s in).\n",
		cpus, modelUse*100, streamsPerEdge, viewersPerEdge, modelPublishers, edges, edgesAt(1),
		viewersPerEdge*modelPublishers*mbpsPerSub, modelPublishers, modelPublishers*feedMbps)
	p("- **The origin's outbound to the edges**: %.0f edges × %d publications = %.0f feeds, %.1f Gbit/s and %.0f packets/s; "+
		"at the %.1f µs per packet the origin spent here, **%.0f cores** for the feeds alone, against %.0f on a node of this "+
		"size: one origin of this size feeds at most about %.0f edges pulling all %d publications. Its ingest of the %d "+
		"publishers (%.0f packets/s) is small beside it.\n",
		edges, modelPublishers, feeds, feeds*feedMbps/1000, feeds*feedPps, originUs, originCores, cpus,
		math.Floor(streams(modelUse)/modelPublishers), modelPublishers, modelPublishers, modelPublishers*run.pubRate())
	if single != nil {
		lean := math.Ceil(modelSubscribers / math.Floor(math.Floor((cpus*modelUse-idlePerEdge)/singlePerSub)/modelPublishers))
		p("- At the single node's cost per subscriber instead (an edge carrying hundreds of subscribers comes nearer to "+
			"it than these edges of a few dozen), **%.0f edge nodes**: the range to expect is between the two.\n", lean)
	}
	p("- Assumptions: a subscriber's cost is proportional to the publications it receives (%.2f Mbit/s each, as "+
		"measured) and a node's capacity to its cores, less what it costs idle; an edge's pulls cost what they did here "+
		"(one per publication, shared by its subscribers); a feed packet costs the origin what a forwarded packet did "+
		"here; nodes of %.0f cores as this machine, with their cores to themselves (here they shared them with the "+
		"subscribers, PostgreSQL and other work); no simulcast, no bandwidth estimation, every subscriber taking every "+
		"publication at full rate; the network carries the Mbit/s above.\n",
		run.pubMbps(), cpus)
	p("\n")
}
