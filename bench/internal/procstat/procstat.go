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
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses, so
	// fields are counted from the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
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
