// Package report writes what the media benchmarks (bench/sfubench,
// bench/ingestbench, bench/compositionbench) report: the Markdown report,
// printed and saved, and the JSON one, whose head tells of the run as
// each of theirs does.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// Write prints text, a benchmark's report, and saves it to path, unless
// path is "-".
func Write(path, text string) error {
	fmt.Print(text)
	if path == "-" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	return nil
}

// WriteJSON saves v to path as indented JSON.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Run is the head of a JSON report: when the run started and how busy
// the machine was then, the machine, the commit measured, the
// benchmark's arguments and how long the run took. Embedded first in a
// report, its fields come first in the JSON.
type Run struct {
	Started     time.Time `json:"started"`
	LoadAverage string    `json:"loadAverage"`
	BusyBefore  float64   `json:"busyCoresBefore"`
	Cores       int       `json:"cores"`
	Commit      string    `json:"commit"`
	Args        []string  `json:"args"`
	ElapsedS    float64   `json:"elapsedSeconds"`
}

// NewRun is the head of the JSON report of a run that started at
// started, with loadAverage (/proc/loadavg) and busyBefore cores busy,
// and took elapsed; args are the benchmark's.
func NewRun(started time.Time, loadAverage string, busyBefore float64, args []string, elapsed time.Duration) Run {
	return Run{Started: started.UTC(), LoadAverage: loadAverage, BusyBefore: busyBefore, Cores: runtime.NumCPU(),
		Commit: procstat.GitDescribe(""), Args: args, ElapsedS: elapsed.Seconds()}
}
