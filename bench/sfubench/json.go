package main

import (
	"runtime"
	"time"
)

// jsonReport is what --json writes: every phase of every run, with the
// samples the report's percentiles come from, for other programs (the
// benchmark suite) to read.
type jsonReport struct {
	Mode        string       `json:"mode"` // "fanout", "meeting" or "record"
	Date        time.Time    `json:"date"`
	GoVersion   string       `json:"goVersion"`
	Stream      jsonStream   `json:"stream"`
	Runs        int          `json:"runs"`
	Publishers  int          `json:"publishers,omitempty"`  // meeting only
	Simulcast   bool         `json:"simulcast,omitempty"`   // the fan-out's publisher sent three layers
	ServerFlags []string     `json:"serverFlags,omitempty"` // --server-flags, given to every server
	Phases      []jsonPhase  `json:"phases"`
	Duration    jsonDuration `json:"duration"`
}

type jsonStream struct {
	BitrateKbps      float64 `json:"bitrateKbps"`
	FPS              int     `json:"fps"`
	PacketsPerSecond float64 `json:"packetsPerSecond"`
}

type jsonDuration struct {
	Warmup   float64 `json:"warmupSeconds"`
	Measured float64 `json:"measuredSeconds"`
}

// jsonPhase is one phase: the SFU with N subscribers (and the relay with
// as many receivers), or a meeting with V viewers.
type jsonPhase struct {
	Run         int          `json:"run"`
	Subscribers int          `json:"subscribers"`       // WHEP sessions asked for
	Viewers     int          `json:"viewers,omitempty"` // meeting only
	Offered     float64      `json:"offeredPacketsPerSecond"`
	SFU         jsonFigures  `json:"sfu"`
	Relay       *jsonFigures `json:"relay,omitempty"`
	SFUNoBWE    *jsonFigures `json:"sfuWithoutBwe,omitempty"`      // --compare-bwe: the server with --rtc-bandwidth-estimation=false
	JoinsMs     []float64    `json:"joinsMs"`                      // each WHEP request to its first packet
	PartJoinsMs []float64    `json:"participantJoinsMs,omitempty"` // meeting: to the first packet of the last stream
	RSSIdleMB   float64      `json:"rssIdleMB"`                    // server, stage made, nobody in it
	RSSJoinedMB float64      `json:"rssJoinedMB"`                  // once everyone joined
	RSSEndMB    float64      `json:"rssEndMB"`                     // at the end of the window
	Record      *jsonRecord  `json:"record,omitempty"`             // record mode only
}

// jsonRecord is a record phase's: its publishers, whether the stage
// recorded them, and what the recordings left.
type jsonRecord struct {
	Publishers       int     `json:"publishers"`
	Recording        bool    `json:"recording"`
	KeyframeRequests uint64  `json:"keyframeRequests"`
	Recordings       int     `json:"recordings,omitempty"` // ended, by their metadata
	Failed           int     `json:"failed,omitempty"`
	Playlists        int     `json:"playlists,omitempty"` // with segments and an end list
	RecordedSeconds  float64 `json:"recordedSeconds,omitempty"`
	PublishedSeconds float64 `json:"publishedSeconds,omitempty"`
	BucketBytes      uint64  `json:"bucketBytes,omitempty"`
	FFprobe          string  `json:"ffprobe,omitempty"`
	// The thumbnails (the stage's default: one per recording each 60 s),
	// and the CPU of the ffmpeg runs that made them.
	Thumbnails          int     `json:"thumbnails,omitempty"`
	ThumbnailCPUSeconds float64 `json:"thumbnailCpuSeconds,omitempty"`
}

type jsonFigures struct {
	PacketsPerSecond float64 `json:"packetsPerSecond"`
	Mbps             float64 `json:"mbps"`
	LossPercent      float64 `json:"lossPercent"`
	CPUPercent       float64 `json:"cpuPercent"` // of one core
	CPUMicrosPerPkt  float64 `json:"cpuMicrosPerPacket"`
	CPUSecondsPerGb  float64 `json:"cpuSecondsPerGbit"`
	BenchCPUPercent  float64 `json:"benchCpuPercent"`
	OtherCPUPercent  float64 `json:"otherCpuPercent"`
	JoinP50Ms        float64 `json:"joinP50Ms"`
	JoinP99Ms        float64 `json:"joinP99Ms"`
	LatencyP50Ms     float64 `json:"latencyP50Ms"`
	LatencyP99Ms     float64 `json:"latencyP99Ms"`
	RcvbufDrops      float64 `json:"rcvbufDrops"`
	Joined           float64 `json:"joined"`
	Failed           float64 `json:"failed"`
	// Of the packets forwarded: those of a lower simulcast layer than the
	// top one (% of them), and those of the retransmission stream.
	LowerLayerPercent   float64 `json:"lowerLayerPercent,omitempty"`
	RTXPacketsPerSecond float64 `json:"rtxPacketsPerSecond,omitempty"`
}

func (m *measurement) jsonFigures() jsonFigures {
	f := m.figures()
	return jsonFigures{PacketsPerSecond: f.pps, Mbps: f.mbps, LossPercent: f.loss, CPUPercent: f.cpu,
		CPUMicrosPerPkt: f.usPerPkt, CPUSecondsPerGb: f.sPerGbit, BenchCPUPercent: f.self, OtherCPUPercent: f.other,
		JoinP50Ms: f.joinP50, JoinP99Ms: f.joinP99, LatencyP50Ms: f.latP50, LatencyP99Ms: f.latP99,
		RcvbufDrops: f.drops, Joined: f.subscribed - f.failed, Failed: f.failed,
		LowerLayerPercent: f.lower, RTXPacketsPerSecond: f.rtxPps}
}

func (m *measurement) jsonPhase(run int, offered float64) jsonPhase {
	p := jsonPhase{Run: run, Subscribers: m.n, Viewers: m.viewers, Offered: offered, SFU: m.jsonFigures(),
		RSSIdleMB: mb(m.rssIdle), RSSJoinedMB: mb(m.rssJoined), RSSEndMB: mb(m.rssEnd),
		JoinsMs: msList(m.joins), PartJoinsMs: msList(m.partJoins)}
	return p
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

func msList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

func newJSONReport(o *options, mode string) *jsonReport {
	return &jsonReport{Mode: mode, Date: time.Now().UTC(), GoVersion: runtime.Version(), Runs: o.runs,
		Publishers: o.meeting, Simulcast: o.simulcast, ServerFlags: o.serverFlags,
		Stream: jsonStream{BitrateKbps: float64(o.stream.bitrate) / 1000, FPS: o.stream.fps,
			PacketsPerSecond: o.stream.packetsPerSecond()},
		Duration: jsonDuration{Warmup: o.warmup.Seconds(), Measured: o.duration.Seconds()}}
}
