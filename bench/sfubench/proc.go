package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children are the processes the bench started; every one is killed
// before it exits, Ctrl-C included.
var children struct {
	mu    sync.Mutex
	procs map[*os.Process]struct{}
}

func startChild(cmd *exec.Cmd) error {
	// If the bench dies without cleaning up, the kernel ends its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	children.mu.Lock()
	if children.procs == nil {
		children.procs = map[*os.Process]struct{}{}
	}
	children.procs[cmd.Process] = struct{}{}
	children.mu.Unlock()
	return nil
}

// stopChild ends a process started with startChild: SIGTERM, then SIGKILL
// after grace.
func stopChild(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
	children.mu.Lock()
	delete(children.procs, cmd.Process)
	children.mu.Unlock()
}

// killChildren kills every process still running.
func killChildren() {
	children.mu.Lock()
	defer children.mu.Unlock()
	for p := range children.procs {
		p.Kill()
	}
	clear(children.procs)
}

// freePort returns a TCP port of 127.0.0.1 nobody listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// server is a running `ivsrt serve`.
type server struct {
	cmd  *exec.Cmd
	done chan struct{}
	url  string
	data string // its data folder
	log  string // its stderr
}

// startServer starts `ivsrt serve --dev` on a free port of 127.0.0.1 with
// a fresh data folder under dir, and flags after the bench's own, and
// waits until it answers.
func startServer(ctx context.Context, bin, dir string, flags []string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp(dir, "data-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(data, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"serve", "--dev", "--listen", addr, "--data", data,
		"--rtc-udp-port", "0", "--rtc-tcp-port", "-1", "--turn-udp-port", "-1", "--log-level", "warn"}
	cmd := exec.Command(bin, append(args, flags...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := startChild(cmd); err != nil {
		return nil, fmt.Errorf("start ivsrt: %w", err)
	}
	s := &server{cmd: cmd, done: make(chan struct{}), url: "http://" + addr, data: data, log: logPath}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("ivsrt exited at start: %s", tail(logPath))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("ivsrt did not answer on %s: %s", addr, tail(logPath))
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the server at once: its departures need not be recorded, its
// data folder is thrown away.
func (s *server) stop() { stopChild(s.cmd, s.done, 0) }

// tail returns the end of a log file.
func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return strings.TrimSpace(string(data))
}

// relayProcess is a running relay (this program with --relay).
type relayProcess struct {
	cmd   *exec.Cmd
	done  chan struct{}
	stdin io.WriteCloser
	addr  *net.UDPAddr
}

// startRelay starts the relay in a process of its own and reads the
// address it receives on.
func startRelay(ctx context.Context) (*relayProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "--relay")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := startChild(cmd); err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	r := &relayProcess{cmd: cmd, done: make(chan struct{}), stdin: stdin}
	go func() { cmd.Wait(); close(r.done) }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		addr, err := net.ResolveUDPAddr("udp4", strings.TrimPrefix(l, "relay "))
		if !ok || err != nil {
			r.stop()
			return nil, fmt.Errorf("relay did not say where it listens (%q)", l)
		}
		r.addr = addr
		return r, nil
	case <-time.After(10 * time.Second):
		r.stop()
		return nil, errors.New("relay did not start")
	case <-ctx.Done():
		r.stop()
		return nil, ctx.Err()
	}
}

func (r *relayProcess) pid() int { return r.cmd.Process.Pid }

func (r *relayProcess) stop() {
	r.stdin.Close()
	stopChild(r.cmd, r.done, 2*time.Second)
}
