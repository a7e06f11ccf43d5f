package procstat

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// What the reports say of the machine and the code they measured.

// CPUModel is the processor's name, as /proc/cpuinfo gives it.
func CPUModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// ReadTrim is a one-line file of /proc or /sys (a kernel setting), "?"
// when it cannot be read.
func ReadTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}

// GitDescribe names the commit of the checkout in dir ("" for the
// current folder), "-dirty" if it has changes.
func GitDescribe(dir string) string {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "unknown commit"
	}
	return "commit " + strings.TrimSpace(string(out))
}

// WaitQuiet waits, up to max, for the rest of the machine to go idle (at
// most 0.15 cores busy over a second): other work on the same cores makes
// a phase's figures worse than they are. logf is told when it does not.
func WaitQuiet(ctx context.Context, max time.Duration, logf func(format string, args ...any)) error {
	if max <= 0 {
		return nil
	}
	busy, idle, err := WaitIdle(ctx, max, 0.15)
	if err == nil && !idle {
		logf("  the machine is still busy (%.2f cores); measuring anyway", busy)
	}
	return err
}

// Sleep waits for d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Percent is a CPU time over a window in % of one core.
func Percent(cpu, window time.Duration) float64 { return 100 * cpu.Seconds() / window.Seconds() }

// Machine describes the machine a report was measured on: its cores and
// processor, its kernel, and the Go release.
func Machine() string {
	return fmt.Sprintf("%d cores (%s), Linux %s, %s", runtime.NumCPU(), CPUModel(), ReadTrim("/proc/sys/kernel/osrelease"), runtime.Version())
}
