// Package serverproc starts the processes a benchmark measures or drives
// (the ivsrt server, a relay, an encoder) and makes sure none outlives
// it: each gets SIGKILL from the kernel should the benchmark die
// (Pdeathsig), and KillAll ends those still running when it exits, on
// an error or Ctrl-C too. It serves bench/sfubench, bench/ingestbench and
// bench/compositionbench, whose main is Main, and which take the server
// binary and their report's path from Defaults unless told.
package serverproc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
)

// children are the processes started with Start and not yet stopped.
var children struct {
	mu    sync.Mutex
	procs map[*os.Process]struct{}
}

// Start starts cmd as a child that ends with the benchmark.
func Start(cmd *exec.Cmd) error {
	// If the benchmark dies without cleaning up, the kernel ends its
	// children.
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

// Stop ends a process started with Start: SIGTERM, then SIGKILL after
// grace. done is closed once the process has been waited for.
func Stop(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	Signal(cmd, done, syscall.SIGTERM, grace)
}

// Signal ends a process started with Start as Stop does, with sig
// instead of SIGTERM (SIGINT for perf, which then writes its file).
func Signal(cmd *exec.Cmd, done <-chan struct{}, sig os.Signal, grace time.Duration) {
	cmd.Process.Signal(sig)
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

// KillAll kills every process started with Start and still running.
func KillAll() {
	children.mu.Lock()
	defer children.mu.Unlock()
	for p := range children.procs {
		p.Kill()
	}
	clear(children.procs)
}

// FreePort returns a TCP port of 127.0.0.1 nobody listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Server is a running `ivsrt serve`.
type Server struct {
	URL  string // http://127.0.0.1:<port>
	Data string // its data folder
	Log  string // its standard output and error

	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts `ivsrt serve --dev` (bin) on a free port of
// 127.0.0.1 with a fresh data folder under dir, without TURN, logging
// warnings, and flags after these, and waits until it answers.
func StartServer(ctx context.Context, bin, dir string, flags []string) (*Server, error) {
	port, err := FreePort()
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
		"--rtc-udp-port", "0", "--rtc-tcp-port", "-1", "--turn-udp-port", "-1", "--rtmp-port", "-1", "--log-level", "warn"}
	cmd := exec.Command(bin, append(args, flags...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := Start(cmd); err != nil {
		return nil, fmt.Errorf("start ivsrt: %w", err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{}), URL: "http://" + addr, Data: data, Log: logPath}
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
			return nil, fmt.Errorf("ivsrt exited at start: %s", Tail(logPath))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("ivsrt did not answer on %s: %s", addr, Tail(logPath))
		}
	}
}

// API returns an SDK client of the server's API that makes one attempt
// per call, with throwaway keys (the server runs with --dev).
func (s *Server) API(hc *http.Client) *ivsrealtime.Client {
	return ivsrealtime.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDIVSRTBENCH", "bench-secret", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       hc,
	}, func(o *ivsrealtime.Options) { o.BaseEndpoint = aws.String(s.URL) })
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server at once: its departures need not be recorded, its
// data folder is thrown away.
func (s *Server) Stop() { Stop(s.cmd, s.done, 0) }

// Tail returns the end of a log file.
func Tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return strings.TrimSpace(string(data))
}
