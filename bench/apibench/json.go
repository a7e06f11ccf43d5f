package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// jsonReport is what --json writes, for other programs (the benchmark
// suite) to read: per count of clients, each run's rows (baseline last)
// and the median of each column over the runs.
type jsonReport struct {
	Date      time.Time   `json:"date"`
	GoVersion string      `json:"goVersion"`
	Stages    int         `json:"stages"`
	Warmup    float64     `json:"warmupSeconds"`
	Duration  float64     `json:"measuredSeconds"`
	Rate      int         `json:"rate,omitempty"`
	Sweep     []jsonPoint `json:"sweep"`
}

type jsonPoint struct {
	Concurrency int     `json:"concurrency"`
	Median      []row   `json:"median"`
	Runs        [][]row `json:"runs"`
}

func writeJSON(cfg config, counts []int, sweep [][]run) error {
	r := jsonReport{Date: time.Now().UTC(), GoVersion: runtime.Version(), Stages: cfg.Stages,
		Warmup: cfg.Warmup.Seconds(), Duration: cfg.Duration.Seconds(), Rate: cfg.Rate}
	for i, runs := range sweep {
		p := jsonPoint{Concurrency: counts[i]}
		for _, rn := range runs {
			p.Runs = append(p.Runs, rowsOf(rn))
		}
		for j := range p.Runs[0] {
			col := make([]row, len(p.Runs))
			for k, rows := range p.Runs {
				col[k] = rows[j]
			}
			p.Median = append(p.Median, medianRow(col))
		}
		r.Sweep = append(r.Sweep, p)
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
