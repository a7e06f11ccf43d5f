package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// jsonReport is what --json writes, for other programs (the benchmark
// suite) to read: each run's measurements, with the latency samples.
type jsonReport struct {
	Date      time.Time `json:"date"`
	GoVersion string    `json:"goVersion"`
	Warmup    float64   `json:"warmupSeconds"`
	Duration  float64   `json:"measuredSeconds"`
	Rate      int       `json:"rate,omitempty"` // UpdateStage calls/s offered, 0 for as many as the clients make
	Runs      []jsonRun `json:"runs"`
}

type jsonRun struct {
	Throughput   []jsonThroughput  `json:"throughput,omitempty"`
	Participants *jsonParticipants `json:"participants,omitempty"`
	Outage       *jsonOutage       `json:"outage,omitempty"`
}

type jsonThroughput struct {
	Stages         int       `json:"stages"`
	Clients        int       `json:"clients"`
	AcksPerSecond  float64   `json:"acksPerSecond"`
	Delivered      float64   `json:"deliveredPerSecond"`
	Samples        int       `json:"samples"`
	P50Ms          float64   `json:"p50Ms"`
	P90Ms          float64   `json:"p90Ms"`
	P99Ms          float64   `json:"p99Ms"`
	MaxMs          float64   `json:"maxMs"`
	LatencyMs      []float64 `json:"latencyMs"` // ack → arrival, sorted; at most 2000, evenly spaced in rank
	Backlog        int       `json:"backlog"`
	Missing        int       `json:"missing"`
	ServerCPU      float64   `json:"serverCpuSeconds"` // -1 when unknown
	OtherCPU       float64   `json:"otherCpuSeconds"`  // -1 when unknown
	PlainAcks      float64   `json:"acksPerSecondWithoutSink"`
	PlainAckP50Ms  float64   `json:"ackP50MsWithoutSink"`
	HookAckP50Ms   float64   `json:"ackP50Ms"`
	CeilingPerSec  float64   `json:"receiverCeilingPerSecond"`
	CeilingP50Ms   float64   `json:"receiverCeilingP50Ms"`
	Errors         int       `json:"errors"`
	MeasuredWindow float64   `json:"measuredSeconds"`
}

type jsonParticipants struct {
	JoinedMs     []float64 `json:"joinedMs"`     // bot's Run start → Participant Joined
	PublishedMs  []float64 `json:"publishedMs"`  // bot's Run start → Participant Published
	DisconnectMs []float64 `json:"disconnectMs"` // DisconnectParticipant ack → Participant Left
	CancelMs     []float64 `json:"cancelMs"`     // the bot's context cancelled → Participant Left
}

type jsonOutage struct {
	Events     int     `json:"events"`
	Stages     int     `json:"stages"`
	FirstS     float64 `json:"firstSeconds"`
	AllS       float64 `json:"allSeconds"`
	Arrived    int     `json:"arrived"`
	Missing    int     `json:"missing"`
	Duplicates int     `json:"duplicates"`
	OutOfOrder int     `json:"outOfOrder"`
}

// thin returns at most n of the sorted samples, evenly spaced in rank,
// the largest always kept, in milliseconds.
func thin(sorted []time.Duration, n int) []float64 {
	if len(sorted) <= n {
		out := make([]float64, len(sorted))
		for i, d := range sorted {
			out[i] = ms(d)
		}
		return out
	}
	out := make([]float64, n)
	for i := range n {
		out[i] = ms(sorted[(i+1)*len(sorted)/n-1])
	}
	return out
}

// orMinus is d in seconds, -1 when d is negative (unknown).
func orMinus(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return d.Seconds()
}

func writeJSON(cfg *config, runs []runResult) error {
	r := jsonReport{Date: time.Now().UTC(), GoVersion: runtime.Version(), Warmup: cfg.Warmup.Seconds(),
		Duration: cfg.Duration.Seconds(), Rate: cfg.Rate}
	for _, rn := range runs {
		var j jsonRun
		for _, t := range rn.Throughput {
			took, plain := t.Hook.Took(), t.Plain.Took()
			j.Throughput = append(j.Throughput, jsonThroughput{
				Stages: t.Stages, Clients: t.Clients, AcksPerSecond: t.Hook.Rate(),
				Delivered: float64(t.Delivered) / t.Hook.End.Sub(t.Hook.Start).Seconds(),
				Samples:   len(t.Latencies), P50Ms: ms(percentile(t.Latencies, 0.5)), P90Ms: ms(percentile(t.Latencies, 0.9)),
				P99Ms: ms(percentile(t.Latencies, 0.99)), MaxMs: ms(percentile(t.Latencies, 1)), LatencyMs: thin(t.Latencies, 2000),
				Backlog: t.Backlog, Missing: t.Missing, ServerCPU: orMinus(t.Hook.ServerCPU), OtherCPU: orMinus(t.Hook.OtherCPU),
				PlainAcks: t.Plain.Rate(), PlainAckP50Ms: ms(percentile(plain, 0.5)), HookAckP50Ms: ms(percentile(took, 0.5)),
				CeilingPerSec: t.Ceiling.Rate(), CeilingP50Ms: ms(percentile(t.Ceiling.Latencies, 0.5)),
				Errors: t.Hook.Errors + t.Plain.Errors, MeasuredWindow: t.Hook.End.Sub(t.Hook.Start).Seconds(),
			})
		}
		if p := rn.Participants; p != nil {
			j.Participants = &jsonParticipants{JoinedMs: thin(p.Joined, len(p.Joined)), PublishedMs: thin(p.Published, len(p.Published)),
				DisconnectMs: thin(p.Disconnect, len(p.Disconnect)), CancelMs: thin(p.Cancel, len(p.Cancel))}
		}
		if o := rn.Outage; o != nil {
			j.Outage = &jsonOutage{Events: o.Events, Stages: o.Stages, FirstS: o.First.Seconds(), AllS: o.All.Seconds(),
				Arrived: o.Arrived, Missing: o.Missing, Duplicates: o.Recv.Dups, OutOfOrder: o.OutOfOrder}
		}
		r.Runs = append(r.Runs, j)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.JSON), 0o755); err != nil {
		return err
	}
	return os.WriteFile(cfg.JSON, append(data, '\n'), 0o644)
}
