package main

import (
	"math"
	"slices"
)

// The JSON the benchmarks write with --json; fields match the keys
// without regard to case.

type apiData struct {
	Stages          int
	WarmupSeconds   float64
	MeasuredSeconds float64
	Sweep           []struct {
		Concurrency int
		Median      []apiRow
	}
}

type apiRow struct {
	Op                     string
	Requests, Errors       float64
	PerSecond              float64
	P50Ms, P90Ms, P99Ms    float64
	MaxMs                  float64
	ServerCPUSeconds       float64
	ServerCPUMicrosPerCall float64
	ClientCPUMicrosPerCall float64
	OtherCPUSeconds        float64
}

type sfuData struct {
	Mode   string
	Stream struct {
		BitrateKbps      float64
		FPS              int
		PacketsPerSecond float64
	}
	Publishers int
	Duration   struct {
		WarmupSeconds   float64
		MeasuredSeconds float64
	}
	Phases []sfuPhase
}

type sfuPhase struct {
	Run                     int
	Subscribers             int
	Viewers                 int
	OfferedPacketsPerSecond float64
	SFU                     sfuFigures
	Relay                   *sfuFigures
	JoinsMs                 []float64
	ParticipantJoinsMs      []float64
	RSSIdleMB               float64
	RSSJoinedMB             float64
	RSSEndMB                float64
}

type sfuFigures struct {
	PacketsPerSecond   float64
	Mbps               float64
	LossPercent        float64
	CPUPercent         float64
	CPUMicrosPerPacket float64
	CPUSecondsPerGbit  float64
	BenchCPUPercent    float64
	OtherCPUPercent    float64
	JoinP50Ms          float64
	JoinP99Ms          float64
	LatencyP50Ms       float64
	LatencyP99Ms       float64
	RcvbufDrops        float64
	Joined             float64
	Failed             float64
}

type eventsData struct {
	WarmupSeconds   float64
	MeasuredSeconds float64
	Rate            int
	Runs            []struct {
		Throughput []struct {
			Stages                   int
			Clients                  int
			AcksPerSecond            float64
			DeliveredPerSecond       float64
			Samples                  int
			P50Ms, P90Ms, P99Ms      float64
			MaxMs                    float64
			LatencyMs                []float64
			Backlog                  int
			Missing                  int
			ServerCPUSeconds         float64
			OtherCPUSeconds          float64
			AcksPerSecondWithoutSink float64
			AckP50MsWithoutSink      float64
			AckP50Ms                 float64
			ReceiverCeilingPerSecond float64
			ReceiverCeilingP50Ms     float64
			Errors                   int
		}
		Participants *struct {
			JoinedMs, PublishedMs, DisconnectMs, CancelMs []float64
		}
	}
}

// quantile returns the q-quantile of xs by nearest rank, NaN without
// samples.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// median returns the median of xs, NaN without values.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fit returns the least-squares line y = a + b·x through the points.
func fit(xs, ys []float64) (a, b float64, ok bool) {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0, 0, false
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, 0, false
	}
	b = (n*sxy - sx*sy) / d
	return (sy - b*sx) / n, b, true
}
