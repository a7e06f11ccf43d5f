package clusterbench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// clockTick is the unit of the CPU times in /proc (USER_HZ).
const clockTick = 10 * time.Millisecond

// procStat is what the benchmark reads of one process's /proc/PID/stat.
type procStat struct {
	comm     string
	ppid     int
	own      time.Duration // utime + stime
	children time.Duration // cutime + cstime: children it has waited for
}

func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14 to 17.
	var n [5]uint64
	var errs []error
	for i, j := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseUint(f[j], 10, 64)
		n[i] = v
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{
		comm:     s[open+1 : end],
		ppid:     int(n[0]),
		own:      time.Duration(n[1]+n[2]) * clockTick,
		children: time.Duration(n[3]+n[4]) * clockTick,
	}, nil
}

// allProcs returns the stat of every process there is now.
func allProcs() map[int]procStat {
	paths, _ := filepath.Glob("/proc/[0-9]*")
	out := make(map[int]procStat, len(paths))
	for _, p := range paths {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			out[pid] = st
		}
	}
	return out
}

// postgresPID returns the PostgreSQL server pgtest started as a child of
// this process, 0 if there is none (not started yet, or IVSRT_TEST_POSTGRES
// points at a server of someone else's).
func postgresPID() int {
	self := os.Getpid()
	for pid, st := range allProcs() {
		if st.ppid == self && st.comm == "postgres" {
			return pid
		}
	}
	return 0
}

// treeCPU returns the CPU time used so far by process root and its
// children, those still running and those it has waited for. PostgreSQL's
// backends are children of the server process and have none of their
// own, so one level is the whole tree.
func treeCPU(root int) (time.Duration, error) {
	procs := allProcs()
	st, ok := procs[root]
	if !ok {
		return 0, fmt.Errorf("process %d is gone", root)
	}
	total := st.own + st.children
	for _, c := range procs {
		if c.ppid == root {
			total += c.own + c.children
		}
	}
	return total, nil
}

// selfCPU returns the CPU time this process (the load generator, the
// bots, the embedded NATS server) has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSample is the CPU time used so far by each party, at one moment.
type cpuSample struct {
	at       time.Time
	nodes    time.Duration
	postgres time.Duration // -1 when unknown
	bench    time.Duration
	machine  time.Duration
}

// sampleCPU reads the CPU time of the node processes (summed), of the
// PostgreSQL server pgPID (0 for none), of this process and of the whole
// machine.
func sampleCPU(nodePIDs []int, pgPID int) cpuSample {
	s := cpuSample{at: time.Now(), postgres: -1}
	for _, pid := range nodePIDs {
		if d, err := procstat.ProcessCPU(pid); err == nil {
			s.nodes += d
		}
	}
	if pgPID != 0 {
		if d, err := treeCPU(pgPID); err == nil {
			s.postgres = d
		}
	}
	s.bench = selfCPU()
	s.machine, _ = procstat.MachineCPU()
	return s
}

// cpuUse is the CPU each party used between two samples.
type cpuUse struct {
	wall     time.Duration
	nodes    time.Duration
	postgres time.Duration // -1 when unknown
	bench    time.Duration
	machine  time.Duration
}

func (a cpuSample) until(b cpuSample) cpuUse {
	u := cpuUse{wall: b.at.Sub(a.at), nodes: b.nodes - a.nodes, bench: b.bench - a.bench,
		machine: b.machine - a.machine, postgres: -1}
	if a.postgres >= 0 && b.postgres >= 0 {
		u.postgres = b.postgres - a.postgres
	}
	return u
}

// cores returns d as cores busy on average over the sample's wall time;
// negative when d is.
func (u cpuUse) cores(d time.Duration) float64 {
	if d < 0 || u.wall <= 0 {
		return -1
	}
	return d.Seconds() / u.wall.Seconds()
}

// other is the machine's busy time not charged to the nodes, PostgreSQL
// or the bench: other processes, and kernel work done outside them. Much
// of it means the measurement shared the cores with something else.
func (u cpuUse) other() time.Duration {
	o := u.machine - u.nodes - u.bench
	if u.postgres > 0 {
		o -= u.postgres
	}
	return max(0, o)
}

// waitQuiet waits up to max for the machine to go idle (at most 0.2 cores
// busy over half a second), so that a phase does not start while the last
// one's processes are still winding down.
func waitQuiet(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		a, _ := procstat.MachineCPU()
		time.Sleep(500 * time.Millisecond)
		b, _ := procstat.MachineCPU()
		if b-a <= 100*time.Millisecond {
			return
		}
	}
}
