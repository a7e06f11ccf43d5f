package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFit(t *testing.T) {
	a, b, ok := fit([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7})
	if !ok || math.Abs(a-1) > 1e-9 || math.Abs(b-2) > 1e-9 {
		t.Errorf("fit = %v, %v, %v; want 1, 2, true", a, b, ok)
	}
	if _, _, ok := fit([]float64{1}, []float64{1}); ok {
		t.Errorf("fit of one point: ok, want not ok")
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for q, want := range map[float64]float64{0.5: 3, 0.99: 5, 0.2: 1, 1: 5} {
		if got := quantile(xs, q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Errorf("quantile of nothing: want NaN")
	}
}

// The JSON of each benchmark, in the shape its --json writes.
var fixtures = map[string]string{
	"suite-api.json": `{"stages": 100, "warmupSeconds": 1, "measuredSeconds": 5, "sweep": [
		{"concurrency": 1, "median": [
			{"op": "GetStage", "requests": 1000, "errors": 0, "perSecond": 2000, "p50Ms": 0.4, "p90Ms": 0.5, "p99Ms": 1, "maxMs": 3, "serverCpuMicrosPerCall": 200, "clientCpuMicrosPerCall": 150, "otherCpuSeconds": 0.1},
			{"op": "baseline: GetStage answered {}", "perSecond": 4000, "p50Ms": 0.2, "p90Ms": 0.3, "p99Ms": 0.6, "maxMs": 2}]},
		{"concurrency": 64, "median": [
			{"op": "GetStage", "perSecond": 21000, "p50Ms": 2, "p90Ms": 4, "p99Ms": 8, "maxMs": 20},
			{"op": "CreateParticipantToken", "perSecond": 3000, "p50Ms": 20, "p90Ms": 30, "p99Ms": 60, "maxMs": 90},
			{"op": "baseline: GetStage answered {}", "perSecond": 13000, "p50Ms": 4, "p90Ms": 8, "p99Ms": 15, "maxMs": 40}]}]}`,
	"suite-sfu.json": `{"mode": "fanout", "stream": {"bitrateKbps": 2500, "fps": 30, "packetsPerSecond": 278}, "duration": {"warmupSeconds": 2, "measuredSeconds": 6},
		"phases": [
		{"run": 1, "subscribers": 100, "offeredPacketsPerSecond": 27800, "sfu": {"packetsPerSecond": 27800, "lossPercent": 0, "cpuPercent": 30, "cpuMicrosPerPacket": 9.5, "joined": 100},
		 "relay": {"packetsPerSecond": 27800, "cpuPercent": 15, "cpuMicrosPerPacket": 5}, "joinsMs": [100, 120, 140], "rssIdleMB": 20, "rssJoinedMB": 50, "rssEndMB": 52},
		{"run": 1, "subscribers": 400, "offeredPacketsPerSecond": 111200, "sfu": {"packetsPerSecond": 100000, "lossPercent": 3, "cpuPercent": 97, "cpuMicrosPerPacket": 9.7, "joined": 400},
		 "relay": {"packetsPerSecond": 111200, "cpuPercent": 55, "cpuMicrosPerPacket": 5}, "joinsMs": [200, 300, 500], "rssIdleMB": 21, "rssJoinedMB": 130, "rssEndMB": 150}]}`,
	"suite-meeting.json": `{"mode": "meeting", "publishers": 12, "stream": {"bitrateKbps": 500, "fps": 30, "packetsPerSecond": 62}, "duration": {"warmupSeconds": 2, "measuredSeconds": 6},
		"phases": [{"run": 1, "subscribers": 132, "offeredPacketsPerSecond": 8184, "sfu": {"packetsPerSecond": 8184, "cpuMicrosPerPacket": 20, "joined": 132},
		 "joinsMs": [90, 100], "participantJoinsMs": [150, 160], "rssIdleMB": 20, "rssEndMB": 60}]}`,
	"suite-events.json": `{"warmupSeconds": 1, "measuredSeconds": 6, "rate": 100, "runs": [{"throughput": [
		{"stages": 1, "clients": 1, "acksPerSecond": 100, "deliveredPerSecond": 100, "p50Ms": 0.7, "p90Ms": 1, "p99Ms": 3, "maxMs": 5, "latencyMs": [0.5, 0.7, 1, 3, 5]}],
		"participants": {"joinedMs": [4, 5], "publishedMs": [12, 13], "disconnectMs": [1, 2], "cancelMs": [4, 5]}}]}`,
}

// TestReport writes a report from fixtures of each benchmark's JSON and
// checks that every section and chart is there and the targets are
// judged.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	o := &options{out: dir, sections: map[string]bool{}}
	r := &report{opts: o, root: ".", began: time.Now(), total: time.Minute}
	for _, s := range plan(o, binaries{}) {
		o.sections[s.name] = true
		res := &sectionResult{section: s, data: []byte(fixtures[filepath.Base(s.json)])}
		r.results = append(r.results, res)
	}
	path, charts, err := r.write()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	for _, want := range []string{
		"## 1. Control plane", "## 2. SFU fan-out", "## 3. A 12-publisher meeting", "## 4. Join to first frame",
		"## 5. Event delivery", "## 6. Server memory",
		"| GetStage ≥ 20k/s, p99 < 10 ms, 64 clients | 21000/s, p99 8.0 ms (baseline 13000/s, p99 15.0 ms) | met |",
		"| CreateParticipantToken ≥ 5k/s, p99 < 10 ms, 64 clients | 3000/s, p99 60.0 ms (baseline 13000/s, p99 15.0 ms) | **not met** |",
		"9.5 µs (relay 5.0 µs) | met |",
		"3.000% loss", "90% at 400 subscribers",
		"![server RSS against connected participants](memory.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if len(charts) != 11 {
		t.Errorf("%d charts, want 11", len(charts))
	}
	for _, c := range charts {
		if _, err := os.Stat(c.path); err != nil {
			t.Errorf("chart: %v", err)
		}
	}
}
