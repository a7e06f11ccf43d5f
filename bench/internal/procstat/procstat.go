// Package procstat reads what the benchmarks measure from /proc, and finds
// and builds the server they measure. It serves bench/apibench,
// bench/sfubench, bench/ingestbench and bench/compositionbench alike.
package procstat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc (USER_HZ), 100 per
// second on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// ProcessCPU returns the user plus system CPU time all the threads of
// process pid have used so far.
func ProcessCPU(pid int) (time.Duration, error) {
	// utime and stime are fields 14 and 15.
	return statTimes(pid, 11)
}

// ChildrenCPU returns the user plus system CPU time of the children of
// process pid that it has waited for (such as an ffmpeg it ran), so far.
func ChildrenCPU(pid int) (time.Duration, error) {
	// cutime and cstime are fields 16 and 17.
	return statTimes(pid, 13)
}

// statTimes returns the sum of the two clock-tick fields of
// /proc/PID/stat that start at index i of the fields after comm (0 is
// field 3, state).
func statTimes(pid, i int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses, so
	// fields are counted from the last ')'.
	s := string(data)
	j := strings.LastIndexByte(s, ')')
	if j < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[j+1:])
	if len(f) < i+2 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	a, err1 := strconv.ParseUint(f[i], 10, 64)
	b, err2 := strconv.ParseUint(f[i+1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(a+b) * clockTick, nil
}

// MachineCPU returns the busy time of all the machine's cores together so
// far: everything in /proc/stat's first line but idle and iowait (guest
// times are already in user time).
func MachineCPU() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected format")
	}
	var busy uint64
	for i, v := range fields[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest, guest_nice
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// ModuleRoot returns the folder of the ivsrt module's go.mod, looking up
// from the working folder.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/ivsrt/ivsrt\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the github.com/ivsrt/ivsrt module: run from its folder, or name a server binary")
		}
		dir = parent
	}
}

// BuildServer builds ./cmd/ivsrt of the module at root into dir and
// returns the binary's path.
func BuildServer(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "ivsrt")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ivsrt")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ivsrt: %w\n%s", err, out)
	}
	return bin, nil
}

// Tree is the CPU time of a process and of every process below it.
type Tree struct {
	// Process is the user plus system time of the process's own threads.
	Process time.Duration
	// Descendants is that of every live process below it, each with the
	// children it has waited for, and of the children the process itself
	// has waited for: a child that exits and is waited for moves from
	// one to the other without a jump in the sum.
	Descendants time.Duration
}

// Total is the whole tree's.
func (t Tree) Total() time.Duration { return t.Process + t.Descendants }

// TreeCPU returns the CPU time so far of process pid and of the
// processes below it (such as the ffmpeg transcoders a server runs),
// found by their parent ids in /proc/*/stat. A descendant that exits
// between two reads and is not waited for is missed.
func TreeCPU(pid int) (Tree, error) {
	var t Tree
	self, err := readStat(pid)
	if err != nil {
		return t, err
	}
	t.Process, t.Descendants = self.cpu, self.childCPU
	below, err := descendants(pid)
	if err != nil {
		return t, err
	}
	for _, c := range below {
		t.Descendants += c.cpu + c.childCPU
	}
	return t, nil
}

// DescendantCPU returns the live processes below pid, each with its CPU
// time so far (its threads' and that of the children it has waited for),
// by process id: what TreeCPU sums, process by process.
func DescendantCPU(pid int) (map[int]time.Duration, error) {
	below, err := descendants(pid)
	if err != nil {
		return nil, err
	}
	m := make(map[int]time.Duration, len(below))
	for _, c := range below {
		m[c.pid] = c.cpu + c.childCPU
	}
	return m, nil
}

// Cmdline is a process's command line, its arguments joined by spaces;
// "" if it cannot be read.
func Cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// descendants returns the live processes below pid, found by their
// parent ids in /proc/*/stat.
func descendants(pid int) ([]stat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]stat{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		s, err := readStat(p)
		if err != nil {
			continue // it exited meanwhile
		}
		children[s.ppid] = append(children[s.ppid], s)
	}
	var below []stat
	next := []int{pid}
	for len(next) > 0 {
		p := next[len(next)-1]
		next = next[:len(next)-1]
		for _, c := range children[p] {
			below = append(below, c)
			next = append(next, c.pid)
		}
	}
	return below, nil
}

// stat is what TreeCPU and DescendantCPU read of one process.
type stat struct {
	pid, ppid     int
	cpu, childCPU time.Duration
}

func readStat(pid int) (stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	s := string(data)
	j := strings.LastIndexByte(s, ')')
	if j < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After comm: state, ppid, ... utime (14), stime, cutime, cstime.
	f := strings.Fields(s[j+1:])
	if len(f) < 15 {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var n [5]uint64
	for i, k := range []int{1, 11, 12, 13, 14} {
		if n[i], err = strconv.ParseUint(f[k], 10, 64); err != nil {
			return stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return stat{pid: pid, ppid: int(n[0]),
		cpu: time.Duration(n[1]+n[2]) * clockTick, childCPU: time.Duration(n[3]+n[4]) * clockTick}, nil
}

// LoadAverage returns the 1, 5 and 15 minute load averages of
// /proc/loadavg, as written there.
func LoadAverage() (string, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "", errors.New("/proc/loadavg: unexpected format")
	}
	return strings.Join(f[:3], " "), nil
}

// WaitIdle waits, up to max, for the machine to go idle: at most cores
// busy over a second (other work on the same cores makes a benchmark's
// figures worse than they are). It returns the cores busy over the last
// second, and whether that was idle.
func WaitIdle(ctx context.Context, max time.Duration, cores float64) (busy float64, idle bool, err error) {
	deadline := time.Now().Add(max)
	for {
		a, err := MachineCPU()
		if err != nil {
			return 0, false, err
		}
		t := time.Now()
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		b, err := MachineCPU()
		if err != nil {
			return 0, false, err
		}
		busy = (b - a).Seconds() / time.Since(t).Seconds()
		if busy <= cores {
			return busy, true, nil
		}
		if time.Now().After(deadline) {
			return busy, false, nil
		}
	}
}
