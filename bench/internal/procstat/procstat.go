// Package procstat reads what the benchmarks measure from /proc, and finds
// and builds the server they measure. It serves bench/apibench and
// bench/sfubench alike.
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
