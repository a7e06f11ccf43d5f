package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// machineCPU is procstat.MachineCPU, with 0 when /proc cannot be read: the
// figure that depends on it is only a hint of disturbance.
func machineCPU() time.Duration {
	d, _ := procstat.MachineCPU()
	return d
}

// selfCPU returns the CPU time used so far by this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// process is a server the benchmark started: the ivsrt binary, or this
// binary in its baseline or profiling mode.
type process struct {
	name    string
	cmd     *exec.Cmd
	addr    string // API address, host:port
	control string // pprof address of a profiling server, host:port
	logPath string
	exited  chan struct{}
	waitErr error
}

// startProcess runs bin with args, its output going to logPath, and waits
// until addr accepts connections.
func startProcess(name, bin string, args []string, addr, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	// The server goes when the benchmark goes, however that happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, addr: addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	if err := p.waitReady(addr, 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *process) waitReady(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening (%v); its log:\n%s", p.name, p.waitErr, tail(p.logPath, 2000))
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v; its log:\n%s", p.name, addr, timeout, tail(p.logPath, 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the process to shut down, and kills it if it takes too long.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 15s; killed", p.name)
	}
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}
